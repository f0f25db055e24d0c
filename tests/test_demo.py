"""The demo end to end: a fresh Dagster home and lake, then DuckDB reads back what it printed."""

import re

import dagster as dg
import duckdb

from tests.conftest import check_evaluations

TABLES = {
    "document_events",
    "documents",
    "entity_clusters",
    "image_features",
    "instrument_clusters",
    "instruments",
    "listing_images",
    "listings",
    "models",
    "opportunities",
    "training_set",
    "policies",
    "policy_evaluation",
    "policy_champions",
    "simulated_listing_truth",
    "market_stats_daily",
    "quarantine",
    "quotes",
    "simulated_announcement_events",
    "simulated_arbitrage",
    "simulator_ticks",
}


def printed_counts(stdout: str) -> dict[str, int]:
    block = stdout.split("rows per table:")[1].split("\n\n")[0]
    return {m[1]: int(m[2].replace(",", "")) for m in re.finditer(r"^\s+(\w+)\s+([\d,]+)$", block, re.M)}


def test_demo_summary_matches_the_lake(demo):
    counts = printed_counts(demo.stdout)
    assert set(counts) == TABLES
    assert counts["quotes"] > 1000 and counts["quarantine"] > 0
    con = duckdb.connect()
    for table, n in counts.items():
        pattern = f"{demo.lake}/{table}/**/*.parquet"
        assert con.execute(f"select count(*) from read_parquet('{pattern}')").fetchall()[0][0] == n, table
    # every raw record is either a quote or in quarantine: nothing silently dropped
    rejected = f"{demo.lake}/quarantine/target=quotes/**/*.parquet"
    assert (
        counts["simulator_ticks"]
        == counts["quotes"] + con.execute(f"select count(*) from '{rejected}'").fetchall()[0][0]
    )
    # the broken pictures the listings simulator plants are quarantined by image_features, not lost
    assert counts["image_features"] < counts["listings"]
    assert "checks: 0 failed" in demo.stdout


def test_demo_history_is_in_the_instance(demo):
    instance = dg.DagsterInstance.from_config(str(demo.home))
    runs = instance.get_runs()
    assert runs and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    quotes = instance.fetch_materializations(dg.AssetKey("quotes"), limit=100).records
    assert len(quotes) == 2  # two hourly partitions in the small profile
    # Every simulated market is in `instruments`, built before the quotes are checked against it.
    ((_, known),) = check_evaluations(instance, "quotes", "no_unknown_markets")
    assert known.passed and known.metadata["offending"].value == 0 and known.metadata["known_markets"].value == 12
    assert (demo.home / "dagster.yaml").read_text().count("telemetry") == 1
