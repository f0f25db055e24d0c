"""Normalised top-of-book quotes, with rejected records kept in quarantine and quality checks."""

import dagster as dg
import polars as pl

from arbiter.assets.partitions import HOURLY
from arbiter.platform import quality
from arbiter.platform.normalise import quotes_from_simulator

MAX_QUARANTINE_SHARE = 0.01

QUOTE_CHECKS = [
    dg.AssetCheckSpec(
        name,
        asset="quotes",
        description=(rule.__doc__ or "").strip().splitlines()[0],
    )
    for name, rule in quality.QUOTE_RULES.items()
] + [
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
        ),
        "quotes_quarantine": dg.AssetOut(
            description="Raw records rejected while normalising quotes, each with its reason and field "
            "and the original record. Stored in the shared `quarantine` table under target=quotes.",
            code_version="1",
            owners=["team:data-engineering"],
            metadata={"lake/table": "quarantine", "lake/prefix": {"target": "quotes"}},
        ),
    },
    ins={"simulator_ticks": dg.AssetIn()},
    group_name="ingestion",
    partitions_def=HOURLY,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=QUOTE_CHECKS,
)
def normalised_quotes(context: dg.AssetExecutionContext, simulator_ticks: dict[str, pl.DataFrame]):
    results = {
        key: quotes_from_simulator(raw, source="simulator", partition=key) for key, raw in simulator_ticks.items()
    }
    reasons: dict[str, int] = {}
    for r in results.values():
        for reason, n in r.reasons.items():
            reasons[reason] = reasons.get(reason, 0) + n
    yield dg.Output(
        {k: r.rows for k, r in results.items()}, output_name="quotes", metadata={"quarantined": sum(reasons.values())}
    )
    yield dg.Output(
        {k: r.quarantine for k, r in results.items()},
        output_name="quotes_quarantine",
        metadata={"reasons": dg.MetadataValue.json(reasons)},
    )

    for name, rule in quality.QUOTE_RULES.items():
        outcomes = {k: rule(r.rows) for k, r in results.items()}
        failing = {k: o.detail for k, o in outcomes.items() if not o.passed}
        yield dg.AssetCheckResult(
            asset_key="quotes",
            check_name=name,
            passed=not failing,
            severity=dg.AssetCheckSeverity.WARN if name in quality.SOFT_RULES else dg.AssetCheckSeverity.ERROR,
            metadata={
                "offending": sum(o.offending for o in outcomes.values()),
                "by_partition": dg.MetadataValue.json(failing),
            },
        )
    raw_rows = sum(raw.height for raw in simulator_ticks.values())
    share = sum(reasons.values()) / raw_rows if raw_rows else 0.0
    yield dg.AssetCheckResult(
        asset_key="quotes_quarantine",
        check_name="quarantine_share_below_1pct",
        passed=share < MAX_QUARANTINE_SHARE,
        metadata={"share": share},
    )
