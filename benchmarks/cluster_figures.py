"""Figures for entity clustering: its speed on 50,000 listings and its quality on labelled pairs.

``hdbscan_50k_s`` times ``cluster_features`` (PCA reduction, cross-venue neighbour search,
scoring, linking, HDBSCAN) on 50,000 synthetic listings: 12,500 products on 4 marketplaces.
Products come in lines (a brand's product type in several variants that differ only in colour,
size, pack count or model code: the close non-matches), and each marketplace words a title its
own way. The titles are real text, scored by the real TF-IDF and lexical rules; the embeddings are
synthetic 384-dimensional unit vectors built like sentence embeddings of such titles (the sum of a
product-type, brand, line and variant direction plus per-listing noise), because embedding 50,000
titles with MiniLM on this machine takes minutes and is not what the figure measures. Its own
throughput is measured on real titles and reported beside (``embed_titles_per_s``).

``promap_f1`` and ``unseen_f1`` cluster the labelled product pairs shipped in
``tests/data/products`` with the default settings and score them pairwise (same cluster = match):
ProMap Walmart-Amazon (the set the settings were chosen on) and the classic Walmart-Amazon
product-name pairs (never used for any choice).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import polars as pl

from arbiter.platform.enrich.entity_clusters import (
    ClusterSettings,
    ListingFeatures,
    cluster_features,
    cluster_listings,
    pairwise_scores,
)
from arbiter.platform.enrich.product_pairs import load_pairs
from arbiter.platform.enrich.text_features import EMBEDDING_DIM, TextEmbedder, plain_words

REPEATS = 3
PRODUCTS = 12_500
VENUES = ("amazon", "walmart", "ebay", "target")
SAMPLES = Path(__file__).resolve().parents[1] / "tests" / "data" / "products"
PROMAP = SAMPLES / "promap_walmart_amazon.csv"
UNSEEN = SAMPLES / "amazon_walmart_names.csv"

_TYPES = (
    "Wireless Mouse", "Mechanical Keyboard", "USB-C Hub", "Laptop Sleeve", "Phone Case", "Screen Protector",
    "Bluetooth Speaker", "Over-Ear Headphones", "Coffee Grinder", "Toaster Oven", "Blender", "Air Fryer",
    "Dog Food", "Cat Litter", "Fish Food", "Bird Seed", "Protein Shake", "Vitamin D3", "Hand Soap", "Dish Soap",
    "Laundry Pods", "Dryer Sheets", "Paper Towels", "Trash Bags", "Garden Hose", "Pruning Shears", "Yoga Mat",
    "Water Bottle", "Backpack", "Duffel Bag", "Travel Pillow", "Desk Lamp", "LED Bulb", "Extension Cord",
    "Power Bank", "HDMI Cable", "SD Card", "Flash Drive", "External SSD", "Webcam", "Gaming Chair", "Office Chair",
    "Sneakers", "Rain Jacket", "Wool Socks", "Board Game", "Puzzle", "Building Blocks", "Action Figure", "Plush Toy",
)  # fmt: skip
_COLOURS = ("Black", "White", "Red", "Blue", "Green", "Grey", "Pink", "Silver", "Navy", "Beige")
_SIZES = ("8 oz", "12 oz", "16 oz", "32 oz", "1 lb", "5 lb", "64GB", "128GB", "256GB", "13 inch", "15 inch", "17 inch")
_PACKS = (1, 2, 3, 4, 6, 8, 12, 24)
_SYLLABLES = ("ka", "lo", "mi", "tr", "ven", "zo", "pex", "ri", "sun", "qua", "dor", "bel", "na", "tek", "vo", "ly")
_FLUFF = ("New", "Premium", "Original", "Best Seller", "Fast Shipping", "Genuine", "2024 Model", "Top Rated")


def _brand(rng: np.random.Generator) -> str:
    return "".join(rng.choice(_SYLLABLES, int(rng.integers(2, 4)))).title()


def synthetic_listings(products: int = PRODUCTS, seed: int = 0) -> tuple[ListingFeatures, np.ndarray]:
    """``products`` products on every venue of ``VENUES`` as ``ListingFeatures`` (see the module
    docstring), and each listing's product number (the truth)."""
    rng = np.random.default_rng(seed)
    brands = [_brand(rng) for _ in range(products // 10)]
    type_dirs = rng.normal(size=(len(_TYPES), EMBEDDING_DIM))
    brand_dirs = rng.normal(size=(len(brands), EMBEDDING_DIM))
    line_dirs: dict[int, np.ndarray] = {}
    rows, vectors, truth = [], [], []
    for product in range(products):
        line = int(rng.integers(0, products // 4))  # about 4 variants per product line
        line_rng = np.random.default_rng([seed, line])
        kind, brand = int(line_rng.integers(len(_TYPES))), int(line_rng.integers(len(brands)))
        line_dirs.setdefault(line, line_rng.normal(size=EMBEDDING_DIM))
        colour, size, pack = rng.choice(_COLOURS), rng.choice(_SIZES), int(rng.choice(_PACKS))
        code = f"{brands[brand][:2].upper()}{int(rng.integers(100, 10_000))}"
        centre = (
            type_dirs[kind]
            + 0.6 * brand_dirs[brand]
            + 0.4 * line_dirs[line]
            + 0.25 * rng.normal(size=EMBEDDING_DIM)
        )
        for v, venue in enumerate(VENUES):
            name, kind_name = brands[brand], _TYPES[kind]
            title = (
                f"{name} {kind_name} {size}, {colour}, Pack of {pack} - {code}",
                f"{name} {code} {kind_name} {colour} {size} ({pack}-Pack)",
                f"{rng.choice(_FLUFF).upper()} {name.upper()} {kind_name.upper()} {code} {size} {pack} CT",
                f"{kind_name} by {name}, {colour.lower()}, {size}, {pack} count {rng.choice(_FLUFF)}",
            )[v]
            rows.append((venue, f"{venue}-{product}", title))
            vectors.append(centre + 0.35 * rng.normal(size=EMBEDDING_DIM))
            truth.append(product)
    embeddings = np.asarray(vectors, dtype=np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    keys = pl.DataFrame([(v, i) for v, i, _ in rows], schema=["venue", "listing_id"], orient="row")
    titles = [t for _, _, t in rows]
    features = ListingFeatures(keys, titles, [None] * len(rows), embeddings, None)
    return features, np.asarray(truth)


def _synthetic_f1(rows: pl.DataFrame, truth: np.ndarray) -> dict[str, float]:
    """Pairwise precision and recall over all same-cluster pairs against the product truth."""
    labelled = rows.with_columns(product=pl.Series(truth)).filter(pl.col("cluster_id").is_not_null())
    per_cluster = labelled.group_by("cluster_id").agg(pl.len().alias("n"), pl.col("product"))
    predicted = int((per_cluster["n"] * (per_cluster["n"] - 1) // 2).sum())
    same = labelled.group_by("cluster_id", "product").len()
    true_positive = int((same["len"] * (same["len"] - 1) // 2).sum())
    positives = len(truth) // len(VENUES) * (len(VENUES) * (len(VENUES) - 1) // 2)
    precision = true_positive / predicted if predicted else 0.0
    recall = true_positive / positives
    return {"precision": round(precision, 4), "recall": round(recall, 4)}


def hdbscan_50k_s() -> dict:
    """``cluster_features`` over 50,000 synthetic listings; median of ``REPEATS``."""
    features, truth = synthetic_listings()
    times, rows, links, candidates = [], None, 0, 0
    for _ in range(REPEATS):
        start = time.perf_counter()
        rows, links, candidates = cluster_features(features)
        times.append(time.perf_counter() - start)
    sample = [plain_words(t) for t in features.titles[:1000]]
    embedder = TextEmbedder()
    embedder.encode(sample[:8])  # load the model outside the timing
    start = time.perf_counter()
    embedder.encode(sample)
    embed_rate = len(sample) / (time.perf_counter() - start)
    return {
        "value": round(statistics.median(times), 2),
        "unit": "s",
        "listings": features.keys.height,
        "candidates": candidates,
        "links": links,
        "clusters": rows["cluster_id"].n_unique() - int(rows["cluster_id"].null_count() > 0),
        "noise": rows["cluster_id"].null_count(),
        **{f"synthetic_{k}": v for k, v in _synthetic_f1(rows, truth).items()},
        "target_s": 60.0,
        "repeats": REPEATS,
        "embed_titles_per_s": round(embed_rate),
        "embed_50k_s_projected": round(features.keys.height / embed_rate),
    }


def _pair_figure(path: Path, venues: tuple[str, str], **load) -> dict:
    pairs = load_pairs(path, venues, **load)
    start = time.perf_counter()
    result = cluster_listings(pairs.listings, settings=ClusterSettings())
    seconds = time.perf_counter() - start
    scores = pairwise_scores(result.rows, pairs.truth)
    return {
        "value": round(scores["f1"], 4),
        "unit": "F1",
        "precision": round(scores["precision"], 4),
        "recall": round(scores["recall"], 4),
        "pairs": scores["pairs"],
        "matches": scores["positives"],
        "listings": pairs.listings.height,
        "clusters": result.rows["cluster_id"].drop_nulls().n_unique(),
        "seconds_with_embedding": round(seconds, 1),
        "target": 0.75 if path == PROMAP else 0.70,
    }


def promap_f1() -> dict:
    """Pairwise F1 on the ProMap Walmart-Amazon pairs (311 pairs, 101 matches)."""
    figure = _pair_figure(PROMAP, ("walmart", "amazon"))
    return figure | {"dataset": "ProMapEn Walmart-Amazon pairs (settings chosen on it)"}


def unseen_f1() -> dict:
    """Pairwise F1 on the Walmart-Amazon product-name pairs (629 pairs, 228 matches), never tuned on;
    details include ChatGPT's F1 on the same pairs as published with the file."""
    figure = _pair_figure(UNSEEN, ("shop_a", "shop_b"), listing_key="title")
    published = pl.read_csv(UNSEEN)
    said, truth = published["predicted_match_chatgpt_pairs_merged"] == 1, published["match"] == 1
    chatgpt = 2 * (said & truth).sum() / (said.sum() + truth.sum())
    return figure | {"dataset": "Walmart-Amazon names (ProMap repo)", "chatgpt_pairs_f1": round(float(chatgpt), 4)}
