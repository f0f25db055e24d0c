"""The quality rules of ``arbiter.platform.quality`` as Dagster asset checks.

One place turns rules into check specs and per-run results, so every asset that writes quotes
(the simulator's and each source's) carries the same checks with the same severities, every
asset that writes quotes or trades is checked against the markets in ``instruments``, every
other table asset is checked for facts stored twice, and every raw snapshot asset for bytes
that no longer match their recorded hash.
"""

import contextlib
import hashlib
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime

import dagster as dg
import polars as pl

from arbiter.platform import quality
from arbiter.platform.lake import Lake, PartitionNotFound


def _describe(rule) -> str:
    return (rule.__doc__ or "").strip().splitlines()[0]


def specs(asset: str, windowed: bool = True) -> list[dg.AssetCheckSpec]:
    """Check specs for ``asset``; window rules only where partitions are time windows."""
    rules = {**quality.QUOTE_RULES, **(quality.WINDOW_RULES if windowed else {})}
    return [dg.AssetCheckSpec(name, asset=asset, description=_describe(rule)) for name, rule in rules.items()]


def results(
    asset: str, quotes: Mapping[str, pl.DataFrame], window_end: Callable[[str], datetime] | None
) -> Iterator[dg.AssetCheckResult]:
    """One result per rule over all partitions of the run; failing partitions are named with detail.
    Without ``window_end`` (partitions that are not time windows) the window rules are not judged."""
    rules = {name: (lambda q, k, rule=rule: rule(q)) for name, rule in quality.QUOTE_RULES.items()}
    if window_end is not None:
        rules |= {name: (lambda q, k, rule=rule: rule(q, window_end(k))) for name, rule in quality.WINDOW_RULES.items()}
    soft = quality.SOFT_RULES | set(quality.WINDOW_RULES)
    for name, judge in rules.items():
        outcomes = {key: judge(frame, key) for key, frame in quotes.items()}
        failing = {key: o.detail for key, o in outcomes.items() if not o.passed}
        yield dg.AssetCheckResult(
            asset_key=asset,
            check_name=name,
            passed=not failing,
            severity=dg.AssetCheckSeverity.WARN if name in soft else dg.AssetCheckSeverity.ERROR,
            metadata={
                "offending": sum(o.offending for o in outcomes.values()),
                "by_partition": dg.MetadataValue.json(failing),
            },
        )


UNIQUE = "no_duplicate_rows"
INTACT = "snapshots_intact"


def unique_spec(asset: str, table: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        UNIQUE, asset=asset, description=f"no two rows share the key ({', '.join(quality.ROW_KEYS[table])})"
    )


def unique_result(asset: str, table: str, frame: pl.DataFrame) -> dg.AssetCheckResult:
    outcome = quality.duplicate_keys(table, frame)
    return dg.AssetCheckResult(
        asset_key=asset, check_name=UNIQUE, passed=outcome.passed, metadata={"duplicates": outcome.offending}
    )


def intact_spec(asset: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        INTACT, asset=asset, description="every stored snapshot's bytes still hash to its recorded sha256"
    )


def intact_result(asset: str, raw: pl.DataFrame) -> dg.AssetCheckResult:
    bad = [
        o
        for o, body, sha in raw.select("origin", "body", "sha256").iter_rows()
        if hashlib.sha256(body).hexdigest() != sha
    ]
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=INTACT,
        passed=not bad,
        metadata={"snapshots": raw.height, "mismatched": dg.MetadataValue.json(bad[:10])},
    )


KNOWN = "no_unknown_markets"
MARKET_ROWS = ("quotes", "trades")  # the tables whose rows must name a market ``instruments`` knows
NO_INSTRUMENTS = (
    "the lake holds no `instruments` rows yet: materialise `instruments` or ingest the venues' metadata "
    "(exchangeInfo, products, AssetPairs), then materialise this asset again"
)


def known_spec(asset: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(KNOWN, asset=asset, description=_describe(quality.unknown_markets))


def known_markets(lake: Lake, *written: pl.DataFrame | None) -> pl.DataFrame | None:
    """The markets of every ``instruments`` row in the lake (all sources and partitions, every
    ``valid_from``) and of ``written`` (instruments the same run writes); None when there are none."""
    frames = [f for f in written if f is not None]
    with contextlib.suppress(PartitionNotFound):  # no instruments anywhere yet
        frames.append(lake.read("instruments"))
    markets = [f.select(pl.col(*quality.MARKET).cast(pl.String)) for f in frames if f.height]
    return pl.concat(markets).unique() if markets else None


def known_result(asset: str, rows: Mapping[str, pl.DataFrame], instruments: pl.DataFrame | None) -> dg.AssetCheckResult:
    """Each partition's rows against the known markets (``known_markets``). With no instruments at
    all nothing can be vouched for: any row fails the check, whose description says what to build."""
    reference = pl.DataFrame(schema=dict.fromkeys(quality.MARKET, pl.String)) if instruments is None else instruments
    outcomes = {key: quality.unknown_markets(frame, reference) for key, frame in rows.items()}
    failing = {key: o.detail for key, o in outcomes.items() if not o.passed}
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=KNOWN,
        passed=not failing,
        severity=dg.AssetCheckSeverity.ERROR,
        description=NO_INSTRUMENTS if instruments is None and failing else None,
        metadata={
            "offending": sum(o.offending for o in outcomes.values()),
            "known_markets": reference.height,
            "by_partition": dg.MetadataValue.json(failing),
        },
    )
