"""Normalised top-of-book quotes, with rejected records kept in quarantine and quality checks."""

import dagster as dg
import polars as pl

from arbiter.assets import table_checks
from arbiter.assets.partitions import HOURLY
from arbiter.platform import plots
from arbiter.platform.normalise import quotes_from_simulator
from arbiter.resources.lake import LakeResource

MAX_QUARANTINE_SHARE = 0.01

QUOTE_CHECKS = [
    *table_checks.specs("quotes"),
    table_checks.known_spec("quotes"),
    dg.AssetCheckSpec(
        "quarantine_share_below_1pct",
        asset="quotes_quarantine",
        description="fewer than 1% of raw records were rejected",
    ),
]


@dg.multi_asset(
    outs={
        "quotes": dg.AssetOut(
            description="Top-of-book quotes in the data contract: one row per update, market = (venue, "
            "market, symbol), canonical BASE-QUOTE symbols, UTC ns timestamps with their source.",
            code_version="1",
            owners=["team:data-engineering"],
            metadata={"lake/prefix": {"source": "simulator"}},
        ),
        "quotes_quarantine": dg.AssetOut(
            description="Raw records rejected while normalising quotes, each with its reason and field "
            "and the original record. Stored in the shared `quarantine` table under target=quotes.",
            code_version="1",
            owners=["team:data-engineering"],
            metadata={"lake/table": "quarantine", "lake/prefix": {"target": "quotes", "source": "simulator"}},
        ),
    },
    ins={"simulator_ticks": dg.AssetIn()},
    # The simulator's markets are the ones `instruments` describes: built first, then checked against.
    deps=["instruments"],
    internal_asset_deps={
        "quotes": {dg.AssetKey("simulator_ticks"), dg.AssetKey("instruments")},
        "quotes_quarantine": {dg.AssetKey("simulator_ticks")},
    },
    group_name="ingestion",
    partitions_def=HOURLY,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=QUOTE_CHECKS,
)
def normalised_quotes(context: dg.AssetExecutionContext, simulator_ticks: dict[str, pl.DataFrame], lake: LakeResource):
    results = {
        key: quotes_from_simulator(raw, source="simulator", partition=key) for key, raw in simulator_ticks.items()
    }
    reasons: dict[str, int] = {}
    for r in results.values():
        for reason, n in r.reasons.items():
            reasons[reason] = reasons.get(reason, 0) + n
    last = max(results)
    yield dg.Output(
        {k: r.rows for k, r in results.items()},
        output_name="quotes",
        metadata={
            "quarantined": sum(reasons.values()),
            "mid_by_market": dg.MetadataValue.md(
                plots.markdown_image(plots.mid_by_market(results[last].rows, f"mid per market, {last}"), "mid")
            ),
        },
    )
    yield dg.Output(
        {k: r.quarantine for k, r in results.items()},
        output_name="quotes_quarantine",
        metadata={
            "reasons": dg.MetadataValue.json(reasons),
            "reasons_plot": dg.MetadataValue.md(
                plots.markdown_image(plots.counts_bar(reasons, "quarantined records by reason"), "reasons")
            ),
        },
    )

    rows = {k: r.rows for k, r in results.items()}
    yield from table_checks.results("quotes", rows, lambda k: HOURLY.time_window_for_partition_key(k).end)
    yield table_checks.known_result("quotes", rows, table_checks.known_markets(lake.lake()))
    raw_rows = sum(raw.height for raw in simulator_ticks.values())
    share = sum(reasons.values()) / raw_rows if raw_rows else 0.0
    yield dg.AssetCheckResult(
        asset_key="quotes_quarantine",
        check_name="quarantine_share_below_1pct",
        passed=share < MAX_QUARANTINE_SHARE,
        metadata={"share": share},
    )
