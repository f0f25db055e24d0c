"""Raw snapshots from the market simulator, and the ground truth of the arbitrage it injected."""

import dagster as dg
import polars as pl

from arbiter.assets.partitions import HOURLY
from arbiter.platform.sources import simulator
from arbiter.resources.lake import SimulatorResource


@dg.multi_asset(
    outs={
        "simulator_ticks": dg.AssetOut(
            description="Raw simulator messages per hour, as the venues sent them: native symbols, decimal "
            "strings at each venue's precision, event time in the venue's unit (or none), receive time. "
            "Kept as received so any normalisation can be replayed.",
            code_version="1",
            owners=["team:data-engineering"],
        ),
        "simulated_arbitrage": dg.AssetOut(
            description="Ground truth: the dislocation windows the simulator injected (asset, venue, "
            "direction, size in bps). Real arbitrage windows to judge detectors and policies against.",
            code_version="1",
            owners=["team:data-engineering"],
        ),
    },
    group_name="ingestion",
    partitions_def=HOURLY,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[
        dg.AssetCheckSpec(
            "every_market_reports",
            asset="simulator_ticks",
            description="each simulated venue-market sent messages in every hour",
        ),
    ],
)
def simulator_snapshots(context: dg.AssetExecutionContext, simulator_settings: SimulatorResource):
    cfg = simulator_settings.config()
    ticks, truth = {}, {}
    for key in context.partition_keys:
        hour = simulate_hour_for(key, cfg)
        ticks[key], truth[key] = hour.raw, hour.truth
    yield dg.Output(ticks, output_name="simulator_ticks")
    yield dg.Output(truth, output_name="simulated_arbitrage")
    expected = {(v.venue, v.market, v.native_symbol(a.base)) for v in cfg.venues for a in cfg.assets}
    silent = {
        key: sorted(
            "/".join(m)
            for m in expected
            - set(frame.select("venue", "market", "native_symbol").unique().cast(pl.String).iter_rows())
        )
        for key, frame in ticks.items()
    }
    silent = {k: v for k, v in silent.items() if v}
    yield dg.AssetCheckResult(
        check_name="every_market_reports", passed=not silent, metadata={"silent_markets": dg.MetadataValue.json(silent)}
    )


def simulate_hour_for(partition_key: str, cfg: simulator.SimulatorConfig) -> simulator.SimulatedHour:
    return simulator.simulate_hour(HOURLY.time_window_for_partition_key(partition_key).start, cfg)
