"""Entity clusters on real labelled product pairs (ProMap, and Walmart-Amazon never tuned on), on the
simulator's marketplaces with and without pictures; stable ids; quarantine; lexical rules; and
instrument clusters on the simulator's quotes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from arbiter.platform.enrich.cluster_tracking import matched_clusters, stability, stable_ids
from arbiter.platform.enrich.entity_clusters import cluster_listings, pairwise_scores, product_pairs
from arbiter.platform.enrich.image_features import image_features, image_records
from arbiter.platform.enrich.instrument_clusters import cluster_instruments, cluster_windows
from arbiter.platform.enrich.product_pairs import PairFileError, load_pairs
from arbiter.platform.enrich.text_features import TextEmbedder, conflicts, lexical_features
from arbiter.platform.normalise import quotes_from_simulator
from arbiter.platform.sources.listings_sim import simulate_listings
from arbiter.platform.sources.simulator import SimulatorConfig, simulate_hour

PRODUCTS = Path(__file__).resolve().parents[2] / "data" / "products"
HOUR = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def embedder() -> TextEmbedder:
    """One embedder for the module: each title is embedded once, whatever test asks again."""
    return TextEmbedder()


@pytest.fixture(scope="module")
def promap():
    return load_pairs(PRODUCTS / "promap_walmart_amazon.csv", ("walmart", "amazon"))


@pytest.fixture(scope="module")
def promap_clusters(promap, embedder):
    return cluster_listings(promap.listings, embedder=embedder)


@pytest.fixture(scope="module")
def simulated():
    listings = simulate_listings(seed=3, n_products=24)
    return listings, product_pairs(listings.truth)


def test_promap_pairs_reach_the_target(promap, promap_clusters):
    assert promap.truth.height == 311 and promap.truth["match"].sum() == 101
    scores = pairwise_scores(promap_clusters.rows, promap.truth)
    assert scores["f1"] >= 0.75, scores


def test_unseen_catalogue_reaches_the_target(embedder):
    pairs = load_pairs(PRODUCTS / "amazon_walmart_names.csv", ("shop_a", "shop_b"), listing_key="title")
    assert pairs.truth.height == 629 and pairs.truth["match"].sum() == 228
    result = cluster_listings(pairs.listings, embedder=embedder)
    scores = pairwise_scores(result.rows, pairs.truth)
    assert scores["f1"] >= 0.70, scores


def test_noise_stays_unclustered_and_clusters_span_venues(promap, promap_clusters):
    rows = promap_clusters.rows
    assert rows.height == promap.listings.height
    noise = rows.filter(pl.col("cluster_id").is_null())
    assert noise.height > 200  # many ProMap listings have no partner in the file
    assert noise["probability"].null_count() == noise.height
    clusters = rows.filter(pl.col("cluster_id").is_not_null()).group_by("cluster_id").agg(
        pl.len().alias("members"), pl.col("venue").n_unique().alias("venues"), pl.col("probability").min()
    )
    assert clusters["members"].min() >= 2 and clusters["venues"].min() == 2
    assert clusters["probability"].min() > 0


def test_a_listing_with_no_counterpart_is_noise(embedder):
    listings = pl.DataFrame(
        {
            "venue": ["a", "b", "a"],
            "listing_id": ["1", "2", "3"],
            "title": [
                "Lodge Cast Iron Skillet 10.25 inch L8SK3",
                "Lodge L8SK3 10-1/4 Inch Cast Iron Skillet, Pre-Seasoned",
                "Maxell 60 min MiniDV tapes for camcorders, 4 pack",
            ],
        }
    )
    rows = cluster_listings(listings, embedder=embedder).rows.sort("listing_id")
    assert rows["cluster_id"][0] is not None and rows["cluster_id"][0] == rows["cluster_id"][1]
    assert rows["cluster_id"][2] is None and rows["probability"][2] is None


def test_simulated_marketplaces_cluster_by_product(simulated, embedder):
    listings, pairs = simulated
    scores = pairwise_scores(cluster_listings(listings.listings, embedder=embedder).rows, pairs)
    assert scores["f1"] >= 0.95, scores


def test_pictures_carry_the_match_when_titles_say_nothing(simulated, embedder):
    listings, pairs = simulated
    features, rejected = image_features(image_records(listings.listings, listings.images))
    assert rejected.is_empty()
    blank = listings.listings.with_columns(title=pl.lit("Art print"), brand=pl.lit(None, pl.String))
    text_only = pairwise_scores(cluster_listings(blank, embedder=embedder).rows, pairs)
    with_pictures = pairwise_scores(cluster_listings(blank, features, embedder=embedder).rows, pairs)
    assert text_only["precision"] < 0.1  # identical titles: text alone calls everything one product
    assert with_pictures["f1"] >= 0.9, with_pictures


def test_bad_records_are_quarantined_and_the_run_goes_on(embedder):
    listings = pl.DataFrame(
        {
            "venue": ["a", "b", "b", None],
            "listing_id": ["1", "2", "3", "4"],
            "title": ["Lodge Cast Iron Skillet L8SK3", "Lodge L8SK3 Cast Iron Skillet", "  ", "Lodge skillet"],
        }
    )
    pictures = pl.DataFrame(
        {
            "venue": ["a", "b"],
            "listing_id": ["1", "2"],
            "embedding": [[0.6, 0.8, 0.0], [float("nan"), 1.0, 0.0]],
            "phash": ["not-a-hash", "ffffffffffffffff"],
        },
        schema={"venue": pl.String, "listing_id": pl.String, "embedding": pl.List(pl.Float32), "phash": pl.String},
    )
    result = cluster_listings(listings, pictures, embedder=embedder, partition="2026-03-01")
    assert result.rows.height == 2 and result.rows["cluster_id"].null_count() == 0
    assert result.rows["cluster_id"].n_unique() == 1
    quarantine = result.quarantine.sort("reason", "field")
    assert quarantine.select("reason", "field").rows() == [
        ("bad_embedding", "embedding"),
        ("bad_phash", "phash"),
        ("missing_field", "title"),
        ("missing_field", "venue"),
    ]
    assert set(quarantine["target"]) == {"entity_clusters"} and set(quarantine["partition"]) == {"2026-03-01"}
    assert b'"listing_id": "3"' in quarantine.filter(pl.col("field") == "title")["raw"][0]
    with pytest.raises(ValueError, match="'title'"):
        cluster_listings(listings.drop("title"), embedder=embedder)


def test_ids_are_stable_across_a_rerun_in_any_order(promap, promap_clusters, embedder):
    shuffled = promap.listings.sample(fraction=1.0, shuffle=True, seed=5)
    again = cluster_listings(shuffled, embedder=embedder, previous=promap_clusters.rows).rows
    first = promap_clusters.rows.sort("venue", "listing_id")
    assert again.sort("venue", "listing_id")["cluster_id"].equals(first["cluster_id"])
    fresh = cluster_listings(shuffled, embedder=embedder).rows  # no previous: numbering by first member
    assert fresh.sort("venue", "listing_id")["cluster_id"].equals(first["cluster_id"])


def test_ids_are_stable_after_adding_listings(promap, embedder):
    categories = promap.truth["category"].unique().sort().to_list()
    early_ids = promap.truth.filter(pl.col("category").is_in(categories[:5]))
    keep = pl.concat(
        [
            early_ids.select(venue="venue_a", listing_id="listing_id_a"),
            early_ids.select(venue="venue_b", listing_id="listing_id_b"),
        ]
    ).unique()
    before = cluster_listings(promap.listings.join(keep, on=["venue", "listing_id"]), embedder=embedder).rows
    after = cluster_listings(promap.listings, embedder=embedder, previous=before).rows

    def member_sets(rows: pl.DataFrame) -> dict[frozenset, int]:
        grouped = rows.filter(pl.col("cluster_id").is_not_null()).group_by("cluster_id").agg("listing_id")
        return {frozenset(members): cid for cid, members in grouped.iter_rows()}

    old, new = member_sets(before), member_sets(after)
    unchanged = old.keys() & new.keys()
    assert len(unchanged) >= 0.9 * len(old)
    assert all(old[members] == new[members] for members in unchanged)
    newcomers = [cid for members, cid in new.items() if not members & set().union(*old)]
    assert newcomers and min(newcomers) > before["cluster_id"].max()


def test_stable_ids_pair_clusters_by_overlap():
    key = ["venue", "listing_id"]
    previous = pl.DataFrame({"venue": ["a"] * 7, "listing_id": list("pqrstuv"), "cluster_id": [7, 7, 9, 9, 9, None, 4]})
    # New run: 7's members renamed 0; 9 lost a member to a new cluster; u left the noise; 4 is gone.
    new = pl.DataFrame({"venue": ["a"] * 7, "listing_id": list("pqrstuv"), "cluster_id": [0, 0, 1, 1, 2, 2, None]})
    renamed = stable_ids(new, previous, key=key)
    assert renamed["cluster_id"].to_list() == [7, 7, 9, 9, 10, 10, None]
    pairs = matched_clusters(new, previous, key)
    assert pairs.rows() == [(0, 7, 1.0), (1, 9, pytest.approx(2 / 3))]
    moved = stability(renamed, previous, key=key)
    assert moved["members"] == 7 and 0 < moved["adjusted_rand"] < 1
    assert stability(previous, previous, key=key)["adjusted_rand"] == pytest.approx(1.0)
    assert stability(previous, previous, key=key)["matched_jaccard"] == pytest.approx(1.0)


def test_pairwise_scores_count_noise_and_missing_listings_as_no_match():
    clusters = pl.DataFrame(
        {"venue": ["a", "b", "a", "b"], "listing_id": ["1", "1", "2", "2"], "cluster_id": [5, 5, None, None]},
        schema={"venue": pl.String, "listing_id": pl.String, "cluster_id": pl.Int64},
    )
    truth = pl.DataFrame(
        {
            "venue_a": ["a", "a", "a", "a"],
            "listing_id_a": ["1", "2", "9", "1"],
            "venue_b": ["b", "b", "b", "b"],
            "listing_id_b": ["1", "2", "1", "2"],
            "match": [True, True, True, False],
        }
    )
    scores = pairwise_scores(clusters, truth)
    assert (scores["true_positives"], scores["predicted"], scores["positives"]) == (1, 1, 3)
    assert scores["precision"] == 1.0 and scores["recall"] == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("a", "b", "differ"),
    [
        ("Samsung Galaxy S20 FE 5G Screen Protector", "Samsung Galaxy S21 FE 5G Screen Protector", 1),
        ("Lysol Wipes 80 ct. (Pack of 6)", "Lysol Wipes 80 ct, 2-Pack", 1),
        ('Alta 20" Checked Luggage - Red', "Alta 20 inch Checked Luggage, Black", 1),
        ("Dell Latitude E6440 14 inch", "Dell Latitude E6430 14-inch", 1),
        ("sony npfh50 h series battery", "Sony NP-FH50 H Series InfoLithium Battery", 0),
        ('MacBook Pro 13.3" 8GB', "MacBook Pro 13-inch 8 GB", 0),  # marketplaces round sizes
        ("Lodge Skillet 10.25 inch", "Lodge Skillet 10-1/4 Inch", 0),  # fractions are numbers
        ("Intel Core i5-3210M laptop, 4GB", "Intel Core i5 laptop 4 GB RAM", 0),  # 3210M is no quantity
        ("Kenmore 53294 Type O Vacuum Bags, 6 Pack", "Kenmore Type O HEPA bags 6-pack", 0),  # one-sided code
    ],
)
def test_conflicts_tell_close_non_matches_apart(a, b, differ):
    assert conflicts(lexical_features(a), lexical_features(b)) == differ


def test_a_brand_counts_only_when_the_title_states_it():
    seller = lexical_features("Random Squishy Bread Toy", brand="Auchen")
    maker = lexical_features("M-Gigi Random Squishy Bread Toy", brand="M-Gigi")
    other = lexical_features("Kawaii Squishy Bread Toy by Auchen", brand="Auchen")
    assert seller.brand is None and maker.brand == "mgigi"
    assert conflicts(seller, maker) == 0 and conflicts(other, maker) == 1


def test_embeddings_are_unit_length_and_cached(embedder):
    before = embedder.cached
    vectors = embedder.encode(["a unique title for the cache test", "a unique title for the cache test"])
    assert vectors.shape == (2, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.cached == before + 1


def test_pair_files_are_read_strictly(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("id1,name1,id2,name2,match\n1,Lodge Skillet,2,Lodge L8SK3 Skillet,yes\n")
    with pytest.raises(PairFileError, match="line 2, column 'match'"):
        load_pairs(path, ("a", "b"))
    path.write_text("id1,name1,id2,match\n1,x,2,1\n")
    with pytest.raises(PairFileError, match="no column 'name2'"):
        load_pairs(path, ("a", "b"))
    specification = '"[{""key"": ""Brand"", ""value"": ""Acme""}]"'
    path.write_text(f'id1,name1,specification1,id2,name2,match\n1,"A &amp; B",{specification},2,C,1\n')
    pairs = load_pairs(path, ("a", "b"))
    assert pairs.listings["title"].to_list() == ["A & B", "C"]
    assert pairs.listings["brand"].to_list() == ["Acme", None]


@pytest.fixture(scope="module")
def simulated_quotes() -> pl.DataFrame:
    config = SimulatorConfig(rate_scale=0.2)
    return pl.concat([quotes_from_simulator(simulate_hour(HOUR + timedelta(hours=h), config).raw).rows for h in (0, 1)])


def test_each_asset_clusters_across_all_venues(simulated_quotes):
    result = cluster_instruments(simulated_quotes.filter(pl.col("ts") < HOUR + timedelta(hours=1)))
    rows = result.rows
    assert rows.height == 12 and rows["cluster_id"].null_count() == 0
    by_symbol = rows.group_by("symbol").agg(pl.col("cluster_id").n_unique(), pl.col("venue").n_unique().alias("venues"))
    assert by_symbol["cluster_id"].to_list() == [1, 1, 1]  # every venue's BTC in one cluster, and so on
    assert set(by_symbol["venues"]) == {3}
    assert rows["cluster_id"].n_unique() == 3
    assert rows["mean_correlation"].min() > 0.3


def test_instrument_ids_and_grouping_hold_from_hour_to_hour(simulated_quotes):
    result = cluster_windows(simulated_quotes, window="1h")
    assert result.stability["adjusted_rand"].to_list() == [None, pytest.approx(1.0)]
    assert result.stability["matched_jaccard"][1] == pytest.approx(1.0)
    hours = result.rows.partition_by("window_start", as_dict=False)
    key = ["venue", "market", "symbol"]
    assert hours[0].sort(key)["cluster_id"].equals(hours[1].sort(key)["cluster_id"])


def test_unusable_quotes_are_quarantined(simulated_quotes):
    sample = simulated_quotes.head(2000).with_columns(pl.col(c).cast(pl.String) for c in ("venue", "market", "symbol"))
    broken = pl.concat(
        [
            sample,
            sample.head(3).with_columns(bid=pl.Series([-1.0, 10.0, None]), ask=pl.Series([5.0, 9.0, 3.0])),
        ]
    )
    result = cluster_instruments(broken, partition="h0")
    assert sorted(result.quarantine.select("reason", "field").rows()) == [
        ("crossed_book", "bid"),
        ("unusable_price", "bid"),
    ]
    assert result.one_sided == 1 and set(result.quarantine["target"]) == {"instrument_clusters"}
