"""Reference data: the tradable markets and their precision and fees."""

import dagster as dg
import polars as pl

from arbiter.platform.sources import simulator
from arbiter.resources.lake import SimulatorResource

INSTRUMENT_CHECKS = [
    dg.AssetCheckSpec(
        "one_row_per_market", asset="instruments", description="(venue, market, symbol) identifies one instrument"
    ),
    dg.AssetCheckSpec(
        "tick_size_matches_precision",
        asset="instruments",
        description="tick_size is 10^-price_precision, so stored prices format back exactly",
    ),
]


@dg.asset(
    group_name="reference",
    code_version="1",
    owners=["team:data-engineering"],
    check_specs=INSTRUMENT_CHECKS,
    description="Every tradable market (venue, market type, canonical symbol) with its price and size "
    "precision, tick and lot size, fees and contract size. Source: the simulator's venue definitions.",
)
def instruments(simulator_settings: SimulatorResource):
    frame = simulator.instruments(simulator_settings.config())
    yield dg.Output(frame)
    dupes = frame.select(pl.struct("venue", "market", "symbol").is_duplicated().sum()).item()
    yield dg.AssetCheckResult(check_name="one_row_per_market", passed=dupes == 0, metadata={"duplicates": dupes})
    off = frame.filter((pl.col("tick_size") - 10.0 ** -pl.col("price_precision")).abs() > 1e-15).height
    yield dg.AssetCheckResult(check_name="tick_size_matches_precision", passed=off == 0, metadata={"mismatches": off})
