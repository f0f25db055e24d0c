"""What every source's parsing asset shares: one optional output per contract table, stored in the
shared lake table, and the checks that go with each (quote rules on quotes, markets known to
``instruments`` on quotes and trades, no facts stored twice elsewhere, and raw records reconciled
against rows, quarantine and absorbed records)."""

from collections.abc import Iterator

import dagster as dg

from arbiter.assets import table_checks
from arbiter.platform.lake import Lake
from arbiter.platform.sources.base import Parsed, empty_frame

TABLES = ("quotes", "trades", "bars", "instruments", "documents", "listings", "quarantine")
RECONCILE = "records_reconcile"


def outs(prefix: str, where: str, lake_prefix: dict[str, str] | None = None) -> dict[str, dg.AssetOut]:
    """``{table: AssetOut}`` with asset keys ``<prefix>_<table>``, each stored in the shared table."""
    metadata = {"lake/prefix": lake_prefix} if lake_prefix else {}
    return {
        table: dg.AssetOut(
            key=dg.AssetKey(f"{prefix}_{table}"),
            is_required=False,
            code_version="1",
            owners=["team:data-engineering"],
            metadata={"lake/table": table, **metadata},
            description=f"`{table}` rows parsed from {where}, stored in the shared `{table}` table.",
        )
        for table in TABLES
    }


def check_specs(prefix: str) -> list[dg.AssetCheckSpec]:
    specs = [
        dg.AssetCheckSpec(
            RECONCILE,
            asset=f"{prefix}_quarantine",
            description="every raw record became a row, was quarantined or was absorbed for a stated reason",
        ),
        *table_checks.specs(f"{prefix}_quotes", windowed=False),
        *(table_checks.known_spec(f"{prefix}_{t}") for t in table_checks.MARKET_ROWS),
    ]
    return specs + [table_checks.unique_spec(f"{prefix}_{t}", t) for t in TABLES if t not in ("quotes", "quarantine")]


def emit(prefix: str, parsed: Parsed, partition_key: str, lake: Lake) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """The non-empty tables of ``parsed`` as outputs, then the checks of what was written; ``lake``
    holds the instruments that quotes and trades are checked against."""
    for table, frame in parsed.frames.items():
        yield dg.Output(frame, output_name=table)
    yield dg.AssetCheckResult(
        asset_key=f"{prefix}_quarantine",
        check_name=RECONCILE,
        passed=parsed.unaccounted() == 0,
        metadata={"unaccounted": parsed.unaccounted(), "summary": dg.MetadataValue.json(parsed.summary())},
    )
    # Instruments are read only when there are market rows to judge; this snapshot's own count too.
    market_rows = any(parsed.rows().get(t) for t in table_checks.MARKET_ROWS)
    known = table_checks.known_markets(lake, parsed.frames.get("instruments")) if market_rows else None
    # Every declared check reports, also on a table this snapshot did not write (judged empty).
    for table in TABLES:
        frame = parsed.frames.get(table)
        frame = empty_frame(table) if frame is None else frame
        if table == "quotes":
            yield from table_checks.results(f"{prefix}_quotes", {partition_key: frame}, None)
        elif table != "quarantine":
            yield table_checks.unique_result(f"{prefix}_{table}", table, frame)
        if table in table_checks.MARKET_ROWS:
            yield table_checks.known_result(f"{prefix}_{table}", {partition_key: frame}, known)
