"""Honest quality figures for image features: classification and near-duplicate matching, measured
on listings whose source photographs were held apart from everything fitted.

The simulator cuts every product from a source photograph, and tiles of one photograph share its
look, so a split by listing or by product would test the classifier on pictures it has all but
seen. The split here is by source photograph: fold k holds out the k-th photograph of every
category (in an order fixed by ``seed``), so each photograph is held out exactly once and every
fold still trains on every category. In each fold the classifier is trained on the other
photographs' listings, exported to ONNX and run with onnxruntime on the held-out listings (the
path production takes), and the match threshold is fitted on the training listings' pairs only.

Matching is scored on cross-venue pairs: a true pair is two listings of the same product; a pair
is called when ``image_matching`` makes it a match (mutual best over *all* listings, held-out and
training, so every listing competes with the whole catalogue). Each pair is scored in one fold
(the lower of its two listings' folds), with that fold's threshold. Figures are reported overall,
per category, and per augmentation kind the simulator applies (a listing counts for every kind it
went through, a pair for every kind either side went through; ``none`` is the untouched copies).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import polars as pl

from arbiter.platform.enrich.image_classifier import OnnxClassifier, export_onnx, train_classifier
from arbiter.platform.enrich.image_features import embedding_matrix
from arbiter.platform.enrich.image_matching import fit_threshold, mutual_best_pairs
from arbiter.platform.sources.listings_sim import AUGMENTATIONS

NONE = "none"
KINDS = (NONE, *AUGMENTATIONS)


def photo_folds(truth: pl.DataFrame, seed: int = 0) -> dict[str, int]:
    """Each source photograph's fold: the k-th photograph of every category (seeded order) is held
    out in fold k. Raises ``ValueError`` when a category has a single photograph (it could not be
    both trained on and held out)."""
    rng = np.random.default_rng([seed, 3])
    folds = {}
    photos = truth.select("category", "source_photo").unique().sort("category", "source_photo")
    for (category,), group in photos.group_by("category", maintain_order=True):
        names = group.get_column("source_photo").to_list()
        if len(names) < 2:
            raise ValueError(f"category {category!r} has one source photo ({names[0]}); held-out evaluation needs two")
        for k, name in enumerate(rng.permutation(names)):
            folds[str(name)] = k
    return folds


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def _f1(precision: float | None, recall: float | None) -> float | None:
    if not precision or not recall:
        return None if precision is None or recall is None else 0.0
    return round(2 * precision * recall / (precision + recall), 4)


def evaluate_images(features: pl.DataFrame, truth: pl.DataFrame, *, seed: int = 0) -> dict[str, object]:
    """Held-out classification accuracy and near-duplicate precision/recall of ``features`` (an
    ``image_features`` frame) against the simulator's ``truth``, overall and per augmentation kind.

    Listings without features (quarantined images) and truth rows of problem files are left out.
    Raises ``ValueError`` when no listing joins its truth or a category has one source photo.
    """
    joined = features.select("venue", "listing_id", "embedding").join(
        truth.filter(pl.col("defect").is_null()).select(
            "venue", "listing_id", "product_id", "category", "source_photo", "augmentations"
        ),
        on=["venue", "listing_id"],
        how="inner",
        maintain_order="left",
    )
    if joined.height == 0:
        raise ValueError("image evaluation: no listing of the features has a truth row")
    folds = photo_folds(joined, seed)
    fold = np.array([folds[p] for p in joined.get_column("source_photo")])
    embeddings = embedding_matrix(joined)
    categories = np.array(joined.get_column("category").to_list(), dtype=object)
    products = joined.get_column("product_id").to_numpy()
    venues = joined.get_column("venue").to_numpy()
    kinds = [set(a) or {NONE} for a in joined.get_column("augmentations").to_list()]

    predicted = np.empty(len(joined), dtype=object)
    a, b, similarity = mutual_best_pairs(embeddings, venues)
    same = products[a] == products[b]
    pair_fold = np.minimum(fold[a], fold[b])
    true_a, true_b = _true_pairs(products, venues)
    true_fold = fold[true_a]  # both sides show one product, cut from one photo: one fold
    called = np.zeros(len(a), dtype=bool)
    thresholds = []
    for k in range(int(fold.max()) + 1):
        train, test = fold != k, fold == k
        classifier = OnnxClassifier(export_onnx(train_classifier(embeddings[train], categories[train].tolist())))
        predicted[test] = classifier.predict(embeddings[test])[0]
        in_train = train[a] & train[b]
        threshold = fit_threshold(similarity[in_train], same[in_train], int((train[true_a]).sum()))
        thresholds.append(threshold)
        scored = pair_fold == k
        called[scored] = similarity[scored] >= threshold
    correct = predicted == categories
    return {
        "listings": len(joined),
        "source_photos": len(folds),
        "folds": len(thresholds),
        "accuracy": _ratio(int(correct.sum()), len(correct)),
        "accuracy_by_category": _accuracy_by(categories.tolist(), correct),
        "accuracy_by_photo": _accuracy_by(joined.get_column("source_photo").to_list(), correct),
        "accuracy_by_augmentation": _accuracy_by_kind(kinds, correct),
        "near_duplicates": _match_figures(same & called, called, len(true_a)),
        "near_duplicates_by_augmentation": _matches_by_kind(kinds, a, b, same, called, true_a, true_b),
        "match_thresholds": [round(t, 4) for t in thresholds],
        "true_pairs_by_fold": np.bincount(true_fold, minlength=len(thresholds)).tolist(),
    }


def _true_pairs(products: np.ndarray, venues: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every cross-venue pair of listings of the same product, as index arrays ``a < b``."""
    by_product = defaultdict(list)
    for i, product in enumerate(products):
        by_product[product].append(i)
    pairs = [(i, j) for members in by_product.values() for x, i in enumerate(members) for j in members[x + 1 :]]
    pairs = [(i, j) for i, j in pairs if venues[i] != venues[j]]
    if not pairs:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    a, b = np.array(pairs, dtype=np.int64).T
    return a, b


def _accuracy_by(groups: list[str], correct: np.ndarray) -> dict[str, dict]:
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for group, ok in zip(groups, correct, strict=True):
        tally[group][0] += int(ok)
        tally[group][1] += 1
    return {g: {"listings": n, "accuracy": _ratio(hits, n)} for g, (hits, n) in sorted(tally.items())}


def _accuracy_by_kind(kinds: list[set[str]], correct: np.ndarray) -> dict[str, dict]:
    result = {}
    for kind in KINDS:
        has = np.array([kind in k for k in kinds])
        result[kind] = {"listings": int(has.sum()), "accuracy": _ratio(int(correct[has].sum()), int(has.sum()))}
    return result


def _match_figures(hits: np.ndarray, called: np.ndarray, positives: int) -> dict:
    precision, recall = _ratio(int(hits.sum()), int(called.sum())), _ratio(int(hits.sum()), positives)
    return {
        "precision": precision,
        "recall": recall,
        "f1": _f1(precision, recall),
        "true_pairs": positives,
        "called_pairs": int(called.sum()),
    }


def _matches_by_kind(
    kinds: list[set[str]],
    a: np.ndarray,
    b: np.ndarray,
    same: np.ndarray,
    called: np.ndarray,
    true_a: np.ndarray,
    true_b: np.ndarray,
) -> dict[str, dict]:
    """Match figures over the pairs where either side went through each augmentation kind."""
    result = {}
    for kind in KINDS:
        has = np.array([kind in k for k in kinds])
        if kind == NONE:  # untouched copies: both sides must be untouched
            pair_has, true_has = has[a] & has[b], has[true_a] & has[true_b]
        else:
            pair_has, true_has = has[a] | has[b], has[true_a] | has[true_b]
        result[kind] = _match_figures(same & called & pair_has, called & pair_has, int(true_has.sum()))
    return result
