"""Analyst-facing aggregates, written in SQL against the lake's DuckDB views."""

import dagster as dg
import polars as pl

from arbiter.assets.partitions import DAILY
from arbiter.resources.lake import DuckDBResource

DAILY_STATS_SQL = """
select venue, market, symbol,
       count(*) as quotes,
       count(distinct hour) as hours,
       median((ask - bid) / ((ask + bid) / 2)) * 1e4 as spread_bps_p50,
       quantile_cont((ask - bid) / ((ask + bid) / 2), 0.99) * 1e4 as spread_bps_p99,
       median(epoch_us(recv_ts::timestamptz) - epoch_us(ts::timestamptz)) filter (where ts_source = 'venue') / 1e3
           as venue_latency_ms_p50,
       min((ask + bid) / 2) as mid_low,
       max((ask + bid) / 2) as mid_high
from quotes
where date = ?::date
group by all
order by all
"""


@dg.asset(
    group_name="analytics",
    code_version="1",
    owners=["team:quant"],
    partitions_def=DAILY,
    deps=[dg.AssetDep("quotes", partition_mapping=dg.TimeWindowPartitionMapping())],
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[
        dg.AssetCheckSpec(
            "spreads_positive", asset="market_stats_daily", description="every market's median spread is above zero"
        )
    ],
    description="Per market and day: quote count, hours covered, median and p99 spread in bps, venue "
    "latency, price range. Computed by DuckDB over the hourly quotes in the lake.",
)
def market_stats_daily(context: dg.AssetExecutionContext, duckdb: DuckDBResource):
    con = duckdb.connect()
    frames = {key: con.sql(DAILY_STATS_SQL, params=[key]).pl() for key in context.partition_keys}
    yield dg.Output(frames)
    bad = {k: f.filter(pl.col("spread_bps_p50") <= 0).height for k, f in frames.items()}
    yield dg.AssetCheckResult(
        check_name="spreads_positive",
        passed=not any(bad.values()),
        metadata={"markets_with_nonpositive_spread": sum(bad.values())},
    )
