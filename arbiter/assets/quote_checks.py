"""The quality rules of ``arbiter.platform.quality`` as Dagster asset checks on a quotes asset.

One place turns rules into check specs and per-run results, so every asset that writes quotes
(the simulator's and each source's) carries the same checks with the same severities.
"""

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime

import dagster as dg
import polars as pl

from arbiter.platform import quality


def _describe(rule) -> str:
    return (rule.__doc__ or "").strip().splitlines()[0]


def specs(asset: str) -> list[dg.AssetCheckSpec]:
    rules = {**quality.QUOTE_RULES, **quality.WINDOW_RULES}
    return [dg.AssetCheckSpec(name, asset=asset, description=_describe(rule)) for name, rule in rules.items()]


def results(
    asset: str, quotes: Mapping[str, pl.DataFrame], window_end: Callable[[str], datetime]
) -> Iterator[dg.AssetCheckResult]:
    """One result per rule over all partitions of the run; failing partitions are named with detail."""
    rules = {name: (lambda q, k, rule=rule: rule(q)) for name, rule in quality.QUOTE_RULES.items()}
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
