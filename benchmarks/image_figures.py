"""Figures for image features: throughput of the whole per-image pipeline on 512x512 JPEGs, and
the held-out quality of classification and near-duplicate matching on the simulator's listings."""

from __future__ import annotations

import io
import statistics
import time
from functools import cache

import polars as pl

from arbiter.platform.enrich.image_classifier import OnnxClassifier, train_onnx_classifier
from arbiter.platform.enrich.image_evaluate import evaluate_images
from arbiter.platform.enrich.image_features import default_workers, image_features, image_records
from arbiter.platform.sources.listings_sim import base_picture, product_pool, simulate_listings

REPEATS = 5
IMAGES = 1_000
SIDE = 512
SEED = 0


@cache
def _simulated() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Features (no classifier) and truth of the simulator's listings of every product."""
    simulated = simulate_listings(SEED)
    features, _ = image_features(image_records(simulated.listings, simulated.images))
    return features, simulated.truth


@cache
def _evaluation() -> dict:
    features, truth = _simulated()
    return evaluate_images(features, truth, seed=SEED)


def _jpeg_records(n: int) -> pl.DataFrame:
    """``n`` image records of 512x512 JPEGs: the simulator's product pictures in turn, each copy at
    its own quality (75 to 94), so no two files are the same bytes."""
    pictures = [base_picture(p).resize((SIDE, SIDE)) for p in product_pool()]
    data = []
    for i in range(n):
        out = io.BytesIO()
        pictures[i % len(pictures)].save(out, format="JPEG", quality=75 + i % 20)
        data.append(out.getvalue())
    return pl.DataFrame(
        {
            "venue": ["bench"] * n,
            "listing_id": [str(i) for i in range(n)],
            "image_uri": [f"images/bench/{i}.jpg" for i in range(n)],
            "image": data,
        },
        schema={"venue": pl.String, "listing_id": pl.String, "image_uri": pl.String, "image": pl.Binary},
    )


def _rate(records: pl.DataFrame, classifier: OnnxClassifier, workers: int) -> tuple[float, int]:
    times, rows = [], 0
    for _ in range(REPEATS):
        start = time.perf_counter()
        features, _ = image_features(records, classifier, workers=workers)
        times.append(time.perf_counter() - start)
        rows = features.height
    return records.height / statistics.median(times), rows


def image_features_per_s() -> dict:
    """``image_features`` over 1,000 512x512 JPEGs, the full pipeline: safe decode (JPEG draft),
    pHash, dHash, colour histogram, edge and texture statistics, embedding, and the class from the
    ONNX classifier (trained on the simulator's listings) through onnxruntime; median of 5 runs.
    Details: the rate on one thread, and the bytes per image."""
    features, truth = _simulated()
    classifier = train_onnx_classifier(features, truth)
    records = _jpeg_records(IMAGES)
    workers = default_workers()
    rate, rows = _rate(records, classifier, workers)
    one_thread, _ = _rate(records, classifier, 1)
    return {
        "value": round(rate),
        "unit": "images/s",
        "images": IMAGES,
        "described": rows,
        "side_px": SIDE,
        "mean_bytes": round(records.get_column("image").bin.size().mean()),
        "threads": workers,
        "one_thread_images_per_s": round(one_thread),
        "target_images_per_s": 200,
        "repeats": REPEATS,
    }


def image_holdout_accuracy() -> dict:
    """Classification accuracy on listings whose source photographs were held out of training
    (``evaluate_images``: folds by photograph, ONNX classifier per fold); details per category and
    per augmentation kind."""
    result = _evaluation()
    return {
        "value": result["accuracy"],
        "unit": "accuracy",
        "listings": result["listings"],
        "source_photos": result["source_photos"],
        "folds": result["folds"],
        "by_category": {k: v["accuracy"] for k, v in result["accuracy_by_category"].items()},
        "by_augmentation": {k: v["accuracy"] for k, v in result["accuracy_by_augmentation"].items()},
    }


def image_near_duplicate_f1() -> dict:
    """Near-duplicate matching (mutual best match across venues, threshold fitted on training
    photographs) on held-out listings: F1, with precision and recall overall and per augmentation kind."""
    result = _evaluation()
    overall = result["near_duplicates"]
    return {
        "value": overall["f1"],
        "unit": "F1",
        "precision": overall["precision"],
        "recall": overall["recall"],
        "true_pairs": overall["true_pairs"],
        "by_augmentation": {
            k: {"precision": v["precision"], "recall": v["recall"]}
            for k, v in result["near_duplicates_by_augmentation"].items()
        },
        "thresholds": sorted(set(result["match_thresholds"])),
    }
