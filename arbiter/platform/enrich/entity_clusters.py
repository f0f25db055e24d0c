"""Which listings on different marketplaces are the same product: HDBSCAN over a sparse link graph.

``cluster_listings`` works in four steps, none of which ever builds a dense n x n matrix:

1. **Features.** Each listing's title embedding (``text_features.TextEmbedder``), word TF-IDF
   vector, lexical facts (``text_features.lexical_features``: model codes, quantities, colours,
   brand) and, when an ``image_features`` frame is given, its picture's embedding and pHash.
2. **Candidates.** The embeddings are reduced (PCA to ``reduced_dims``) and every listing is paired
   with its ``neighbours`` nearest listings on each *other* marketplace (one nearest-neighbour index
   per marketplace), by text and, where pictures exist, by picture. Same-marketplace pairs are
   never candidates: a cluster groups listings from different venues.
3. **Scores.** Each candidate pair gets a similarity: embedding cosine and TF-IDF cosine mixed by
   ``lexical_weight``, minus ``conflict_penalty`` for each fact the two state differently (a
   different model code, pack size, colour or brand: what separates close non-matches), mixed with
   the pictures' cosine by ``image_weight`` when both have one, plus ``near_duplicate_bonus`` when
   their pHashes are within ``phash_bits``. A pair becomes a *link* when its score reaches
   ``min_score`` and each listing is the other's best match on that marketplace, within ``margin``
   (a product is listed about once per marketplace, so the runner-up is usually the close
   non-match: another size, colour or model of the same line).
4. **Clusters.** HDBSCAN (the ``hdbscan`` package, ``metric="precomputed"``) runs on the sparse
   graph of links with distance ``1 - score``. Unlinked listings stay noise: ``cluster_id`` null.
   HDBSCAN splits a chain of links where it is weakest (but never below ``merge_distance``, so a
   product on four marketplaces is not cut in two pairs), and its membership probability says
   how firmly each listing belongs.

The reduction in step 2 is what keeps 50,000 listings fast (``benchmarks/cluster_figures.py``):
neighbours are searched in ``reduced_dims`` dimensions, only candidate pairs are ever scored (on
the full embeddings), and HDBSCAN sees only the links.

Ids are made stable across runs with ``cluster_tracking.stable_ids`` against the previous run's
clusters. ``pairwise_scores`` scores a clustering on labelled pairs (same cluster = match).

Records that cannot be clustered are quarantined, never dropped: a listing without venue, id or
title; an image feature row whose embedding is empty, of another length than the rest, or not
finite, or whose pHash is not 16 hex digits (the listing is then clustered on its text alone).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import hdbscan
import numpy as np
import polars as pl
from scipy import sparse
from sklearn.decomposition import PCA
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.neighbors import NearestNeighbors

from arbiter.platform.enrich.cluster_tracking import stable_ids
from arbiter.platform.enrich.text_features import TextEmbedder, conflicts, lexical_features, plain_words
from arbiter.platform.schema import QUARANTINE

TARGET = "entity_clusters"
KEY = ("venue", "listing_id")
CLUSTERS_SCHEMA = {
    "venue": pl.String,
    "listing_id": pl.String,
    "cluster_id": pl.Int64,  # null: noise, the listing matched nothing
    "probability": pl.Float64,  # HDBSCAN membership strength, 0..1; null for noise
}
QUARANTINE_SCHEMA = pl.from_arrow(QUARANTINE.empty_table()).schema
_BRIDGE = 4.0  # distance joining the link graph's components: above any link (scores are >= -1)
_FLOOR = 1e-6  # a zero distance would read as "no edge" in a sparse matrix
_CHUNK = 65_536


@dataclass(frozen=True)
class ClusterSettings:
    """How listings are linked and clustered. The text defaults (``lexical_weight``,
    ``conflict_penalty``, ``min_score``, ``margin``) were chosen on the ProMap pairs, the picture
    ones and ``merge_distance`` on the simulator's marketplaces; ``benchmarks/cluster_figures.py``
    measures them on pairs never used for a choice."""

    neighbours: int = 10  # candidates per listing on each other marketplace
    reduced_dims: int = 32  # PCA dimensions of the embeddings searched for candidates
    lexical_weight: float = 0.5  # share of TF-IDF cosine in the text score (the rest: embedding cosine)
    conflict_penalty: float = 0.5  # subtracted per fact stated differently (code, quantity, colour, brand)
    image_weight: float = 0.3  # share of the picture cosine in the score, when both listings have one
    phash_bits: int = 8  # pHash Hamming distance up to which two pictures are near-duplicates
    near_duplicate_bonus: float = 0.1
    min_score: float = 0.55  # a pair scoring less is never a link
    margin: float = 0.0  # how far below a listing's best match on a marketplace a link may score
    min_cluster_size: int = 2
    cluster_selection_method: str = "eom"
    merge_distance: float = 0.3  # HDBSCAN's cluster_selection_epsilon: clusters joined closer are not split
    seed: int = 0


@dataclass(frozen=True)
class ClusteredListings:
    rows: pl.DataFrame  # CLUSTERS_SCHEMA, one row per listing that could be clustered, noise included
    quarantine: pl.DataFrame  # the contract's QUARANTINE
    links: int  # pairs linked before HDBSCAN
    candidates: int  # candidate pairs scored


def _raw(row: dict) -> bytes:
    return json.dumps(row, default=str, sort_keys=True).encode("utf-8")


def _quarantine_rows(rejects: list[tuple[dict, str, str]], partition: str) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "target": TARGET,
                "source": str(row.get("venue") or ""),
                "partition": partition,
                "reason": reason,
                "field": field,
                "raw": _raw(row),
            }
            for row, reason, field in rejects
        ],
        schema=QUARANTINE_SCHEMA,
        orient="row",
    )


def _screen_listings(listings: pl.DataFrame) -> tuple[pl.DataFrame, list[tuple[dict, str, str]]]:
    """Listings that can be clustered (the latest version of each key), and the rejects."""
    missing = [c for c in ("venue", "listing_id", "title") if c not in listings.columns]
    if missing:
        raise ValueError(f"listings: no column {', '.join(map(repr, missing))}")
    blank = {c: pl.col(c).is_null() | (pl.col(c).cast(pl.String).str.strip_chars() == "") for c in (*KEY, "title")}
    bad = pl.any_horizontal(blank.values())
    rejects = [
        (row, "missing_field", next(c for c in (*KEY, "title") if not str(row.get(c) or "").strip()))
        for row in listings.filter(bad).iter_rows(named=True)
    ]
    good = listings.filter(~bad)
    if "ts" in good.columns:  # a listing scraped again replaces its earlier version
        good = good.sort("ts")
    good = good.unique(subset=list(KEY), keep="last").sort(list(KEY))
    return good, rejects


@dataclass(frozen=True)
class _Pictures:
    """Picture features per listing, in listing order."""

    vectors: np.ndarray  # unit embeddings; rows of zeros where the listing has no picture
    present: np.ndarray  # bool: the listing has a picture embedding
    phash: np.ndarray  # uint64
    hashed: np.ndarray  # bool: the listing has a pHash


@dataclass(frozen=True)
class ListingFeatures:
    """What clustering reads of each listing, in one order: ``keys`` (venue, listing_id)."""

    keys: pl.DataFrame
    titles: list[str]
    brands: list[str | None]
    embeddings: np.ndarray  # unit rows, one per listing
    pictures: _Pictures | None


def _pictures(image_features: pl.DataFrame, listings: pl.DataFrame) -> tuple[_Pictures | None, list]:
    """The pictures of ``listings`` (the mean embedding when a listing has several), and the
    rejected image feature rows; None when no listing has a usable picture."""
    n = listings.height
    rejects: list[tuple[dict, str, str]] = []
    index = {k: i for i, k in enumerate(listings.select(*KEY).iter_rows())}
    rows = [r for r in image_features.iter_rows(named=True) if (r.get("venue"), r.get("listing_id")) in index]
    lengths = [len(r["embedding"]) for r in rows if r.get("embedding") is not None and len(r["embedding"])]
    dim = max(set(lengths), key=lengths.count) if lengths else 0
    vectors = np.zeros((n, dim), dtype=np.float32)
    present = np.zeros(n, dtype=bool)
    phash = np.zeros(n, dtype=np.uint64)
    hashed = np.zeros(n, dtype=bool)
    for row in rows:
        i = index[(row["venue"], row["listing_id"])]
        vector = np.asarray(row.get("embedding") if row.get("embedding") is not None else [], dtype=np.float64)
        if not dim or len(vector) != dim or not np.isfinite(vector).all() or not np.any(vector):
            rejects.append((row, "bad_embedding", "embedding"))
            continue
        vectors[i] += vector / np.linalg.norm(vector)
        present[i] = True
        text = row.get("phash")
        if text is not None:
            try:
                if len(text) != 16:
                    raise ValueError(text)
                phash[i], hashed[i] = np.uint64(int(text, 16)), True
            except (TypeError, ValueError):
                rejects.append((row, "bad_phash", "phash"))
    if not present.any():
        return None, rejects
    vectors[present] /= np.linalg.norm(vectors[present], axis=1, keepdims=True)
    return _Pictures(vectors, present, phash, hashed), rejects


def _reduce(vectors: np.ndarray, dims: int, seed: int) -> np.ndarray:
    """Unit rows of ``vectors`` projected on their first ``dims`` principal components."""
    if vectors.shape[0] > dims and vectors.shape[1] > dims:
        vectors = PCA(n_components=dims, random_state=seed, svd_solver="randomized").fit_transform(vectors)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _cross_venue_neighbours(points: np.ndarray, venues: np.ndarray, k: int, rows: np.ndarray) -> np.ndarray:
    """Pairs ``(i, j)``, ``i < j``, j among i's ``k`` nearest on j's venue or the reverse, for the
    listings ``rows`` (indexes into the full listing list) whose points are ``points``."""
    pairs = []
    for venue in np.unique(venues):
        inside, outside = rows[venues == venue], rows[venues != venue]
        if not len(inside) or not len(outside):
            continue
        index = NearestNeighbors(n_neighbors=min(k, len(inside))).fit(points[venues == venue])
        _, found = index.kneighbors(points[venues != venue])
        pairs.append(np.column_stack([np.repeat(outside, found.shape[1]), inside[found.ravel()]]))
    if not pairs:
        return np.zeros((0, 2), dtype=np.int64)
    both = np.concatenate(pairs)
    return np.sort(both, axis=1)


def _row_dots(a: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    out = np.empty(len(i), dtype=np.float32)
    for start in range(0, len(i), _CHUNK):
        stop = start + _CHUNK
        out[start:stop] = np.einsum("ij,ij->i", a[i[start:stop]], a[j[start:stop]])
    return out


def _popcount(x: np.ndarray) -> np.ndarray:
    return np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)


def _pair_cosine(texts: list[str], i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Word TF-IDF cosine of the texts of each pair, the IDF from this run's texts: a word most
    listings use weighs little, a rare one (a model name, a flavour) a lot."""
    tfidf = TfidfVectorizer(token_pattern=r"[a-z0-9]+", sublinear_tf=True).fit_transform(map(plain_words, texts))
    return np.asarray(tfidf[i].multiply(tfidf[j]).sum(axis=1)).ravel()


def _score_pairs(pairs: np.ndarray, features: ListingFeatures, settings: ClusterSettings) -> np.ndarray:
    """Each candidate pair's similarity (see the module docstring, step 3)."""
    i, j = pairs[:, 0], pairs[:, 1]
    lexical = _pair_cosine(features.titles, i, j)
    text = (1 - settings.lexical_weight) * _row_dots(features.embeddings, i, j) + settings.lexical_weight * lexical
    text_share = np.ones(len(i))
    score = text.astype(np.float64)
    pictures = features.pictures
    if pictures is not None:
        both = np.flatnonzero(pictures.present[i] & pictures.present[j])
        text_share[both] = 1 - settings.image_weight
        score[both] = text_share[both] * text[both] + settings.image_weight * _row_dots(
            pictures.vectors, i[both], j[both]
        )
        hashed = both[pictures.hashed[i[both]] & pictures.hashed[j[both]]]
        differing_bits = _popcount(np.bitwise_xor(pictures.phash[i[hashed]], pictures.phash[j[hashed]]))
        score[hashed[differing_bits <= settings.phash_bits]] += settings.near_duplicate_bonus
    # Conflicts only lower a score: count them only where the pair could still become a link.
    hopeful = np.flatnonzero(score >= settings.min_score)
    if len(hopeful):
        facts = {int(k): lexical_features(features.titles[k], features.brands[k]) for k in np.unique(pairs[hopeful])}
        disagreements = np.array([conflicts(facts[int(i[k])], facts[int(j[k])]) for k in hopeful])
        score[hopeful] -= text_share[hopeful] * settings.conflict_penalty * disagreements
    return score


def _links(pairs: np.ndarray, scores: np.ndarray, venues: np.ndarray, settings: ClusterSettings) -> np.ndarray:
    """The mask of pairs that are links: good enough, and each within ``margin`` of the other's
    best score on its venue."""
    edge = np.arange(len(scores))
    ends = np.concatenate([pairs[:, 0], pairs[:, 1]])
    others = np.concatenate([pairs[:, 1], pairs[:, 0]])
    both_ways = pl.DataFrame(
        {"edge": np.concatenate([edge, edge]), "end": ends, "venue": venues[others], "score": np.tile(scores, 2)}
    )
    near_best = (
        both_ways.with_columns(best=pl.col("score").max().over("end", "venue"))
        .group_by("edge")
        .agg((pl.col("score") >= pl.col("best") - settings.margin).all().alias("ok"))
    )
    mask = np.zeros(len(scores), dtype=bool)
    mask[near_best.filter("ok")["edge"].to_numpy()] = True
    return mask & (scores >= settings.min_score)


def _hdbscan(n: int, pairs: np.ndarray, scores: np.ndarray, settings: ClusterSettings) -> tuple[np.ndarray, np.ndarray]:
    """HDBSCAN labels (-1 noise) and probabilities over the link graph of ``n`` listings.

    Listings without a link are noise from the start. HDBSCAN's sparse mode needs one connected
    graph, so the components of the linked listings are chained by bridges far longer than any
    link: every component then splits off at the bridges' level, and HDBSCAN only decides whether
    to keep each component whole or split it further.
    """
    labels, probabilities = np.full(n, -1), np.zeros(n)
    linked = np.unique(pairs)
    if len(linked) < max(2, settings.min_cluster_size):
        return labels, probabilities
    local = np.searchsorted(linked, pairs)
    m = len(linked)
    graph = sparse.coo_matrix((np.maximum(1.0 - scores, _FLOOR), (local[:, 0], local[:, 1])), shape=(m, m)).tocsr()
    count, component = sparse.csgraph.connected_components(graph, directed=False)
    if count > 1:
        first = np.unique(component, return_index=True)[1]
        bridges = sparse.coo_matrix((np.full(count - 1, _BRIDGE), (first[:-1], first[1:])), shape=(m, m))
        graph = graph + bridges
    model = hdbscan.HDBSCAN(
        metric="precomputed",
        min_cluster_size=settings.min_cluster_size,
        min_samples=1,
        cluster_selection_method=settings.cluster_selection_method,
        cluster_selection_epsilon=settings.merge_distance,
        allow_single_cluster=count == 1,  # else one linked group could never be a cluster
    ).fit(graph.maximum(graph.T).tocsr())
    labels[linked], probabilities[linked] = model.labels_, model.probabilities_
    return labels, probabilities


def listing_features(
    listings: pl.DataFrame,
    image_features: pl.DataFrame | None = None,
    *,
    embedder: TextEmbedder | None = None,
    partition: str = "",
) -> tuple[ListingFeatures, pl.DataFrame]:
    """The features of the listings that can be clustered (the latest version of each key), and
    the quarantine rows of those that cannot. Raises ``ValueError`` when a required column is
    missing (``venue``, ``listing_id``, ``title``)."""
    good, rejects = _screen_listings(listings)
    pictures = None
    if image_features is not None:
        pictures, image_rejects = _pictures(image_features, good)
        rejects = rejects + image_rejects
    titles = good["title"].to_list()
    embedder = embedder or TextEmbedder()
    features = ListingFeatures(
        keys=good.select(pl.col(c).cast(pl.String) for c in KEY),
        titles=titles,
        brands=good["brand"].to_list() if "brand" in good.columns else [None] * good.height,
        embeddings=embedder.encode([plain_words(t) for t in titles]),
        pictures=pictures,
    )
    return features, _quarantine_rows(rejects, partition)


def cluster_features(
    features: ListingFeatures, settings: ClusterSettings = ClusterSettings(), *, previous: pl.DataFrame | None = None
) -> tuple[pl.DataFrame, int, int]:
    """Steps 2 to 4 of the module docstring: CLUSTERS_SCHEMA rows (ids kept from ``previous``
    where clusters continue), the number of links and the number of candidate pairs scored."""
    venues, pictures = features.keys["venue"].to_numpy(), features.pictures
    reduced = _reduce(features.embeddings, settings.reduced_dims, settings.seed)
    pairs = _cross_venue_neighbours(reduced, venues, settings.neighbours, np.arange(len(venues)))
    if pictures is not None:
        pictured = np.flatnonzero(pictures.present)
        points = _reduce(pictures.vectors[pictured], settings.reduced_dims, settings.seed)
        by_picture = _cross_venue_neighbours(points, venues[pictured], settings.neighbours, pictured)
        pairs = np.concatenate([pairs, by_picture])
    pairs = np.unique(pairs, axis=0) if len(pairs) else pairs
    if len(pairs):
        scores = _score_pairs(pairs, features, settings)
        linked = _links(pairs, scores, venues, settings)
    else:
        scores, linked = np.zeros(0), np.zeros(0, dtype=bool)
    labels, probabilities = _hdbscan(len(venues), pairs[linked], scores[linked], settings)
    clustered = pl.Series(labels >= 0)
    rows = features.keys.with_columns(
        cluster_id=pl.when(clustered).then(pl.Series(labels, dtype=pl.Int64)),
        probability=pl.when(clustered).then(pl.Series(probabilities, dtype=pl.Float64)),
    )
    rows = stable_ids(rows, previous, key=KEY).select(list(CLUSTERS_SCHEMA)).cast(CLUSTERS_SCHEMA)
    return rows, int(linked.sum()), len(pairs)


def cluster_listings(
    listings: pl.DataFrame,
    image_features: pl.DataFrame | None = None,
    settings: ClusterSettings = ClusterSettings(),
    *,
    embedder: TextEmbedder | None = None,
    previous: pl.DataFrame | None = None,
    partition: str = "",
) -> ClusteredListings:
    """Cluster ``listings`` (the contract's LISTINGS columns; ``venue``, ``listing_id`` and
    ``title`` required) into products; see the module docstring.

    ``image_features`` (optional): rows keyed by ``venue`` and ``listing_id`` with a fixed-length
    ``embedding`` and a 16-hex-digit ``phash``. ``embedder``: reuse one across runs to reuse its
    cache. ``previous``: the last run's rows, whose ids are kept for continuing clusters.
    Raises ``ValueError`` when a required column is missing; bad records are quarantined.
    """
    features, quarantine = listing_features(listings, image_features, embedder=embedder, partition=partition)
    rows, links, candidates = cluster_features(features, settings, previous=previous)
    return ClusteredListings(rows, quarantine, links, candidates)


def pairwise_scores(clusters: pl.DataFrame, truth_pairs: pl.DataFrame) -> dict[str, float | int]:
    """Precision, recall and F1 of ``clusters`` on labelled pairs: a pair is predicted a match when
    both listings are in the same cluster (noise or a missing listing: no match).

    ``truth_pairs``: ``venue_a``, ``listing_id_a``, ``venue_b``, ``listing_id_b``, boolean ``match``.
    """
    ids = clusters.select(*KEY, "cluster_id")
    scored = (
        truth_pairs.join(
            ids.rename({"venue": "venue_a", "listing_id": "listing_id_a", "cluster_id": "cluster_a"}),
            on=["venue_a", "listing_id_a"],
            how="left",
        )
        .join(
            ids.rename({"venue": "venue_b", "listing_id": "listing_id_b", "cluster_id": "cluster_b"}),
            on=["venue_b", "listing_id_b"],
            how="left",
        )
        .with_columns(predicted=(pl.col("cluster_a") == pl.col("cluster_b")).fill_null(False))
    )
    tp = scored.filter(pl.col("predicted") & pl.col("match")).height
    predicted, positives = scored["predicted"].sum(), scored["match"].sum()
    precision = tp / predicted if predicted else 0.0
    recall = tp / positives if positives else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "pairs": scored.height,
        "positives": int(positives),
        "predicted": int(predicted),
        "true_positives": tp,
    }


def product_pairs(members: pl.DataFrame) -> pl.DataFrame:
    """Every cross-venue pair of ``members`` (``venue``, ``listing_id``, ``product_id``: a ground
    truth such as the simulator's), labelled ``match`` when both are the same product; the
    ``truth_pairs`` ``pairwise_scores`` takes."""
    members = members.select("venue", "listing_id", "product_id")
    return (
        members.join(members, how="cross", suffix="_b")
        .filter(pl.col("venue") < pl.col("venue_b"))
        .select(
            venue_a="venue",
            listing_id_a="listing_id",
            venue_b="venue_b",
            listing_id_b="listing_id_b",
            match=pl.col("product_id") == pl.col("product_id_b"),
        )
    )
