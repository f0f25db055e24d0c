"""Schedules and the jobs they run."""

import dagster as dg

# Partitioning is inferred from the selected assets (hourly ingestion, daily stats).

ingest_simulator_job = dg.define_asset_job(
    "ingest_simulator",
    selection=dg.AssetSelection.groups("ingestion"),
    description="Simulate one hour of every venue and normalise it into quotes (and quarantine).",
    tags={"arbiter/stage": "ingestion"},
)

daily_stats_job = dg.define_asset_job(
    "daily_market_stats",
    selection=dg.AssetSelection.assets("market_stats_daily"),
    description="Aggregate a day of quotes per market with DuckDB.",
    tags={"arbiter/stage": "analytics"},
)

# Stopped by default: the embedded demo builds history on demand; turn these on in the UI to
# keep the lake current.
ingest_hourly = dg.build_schedule_from_partitioned_job(
    ingest_simulator_job, minute_of_hour=5, default_status=dg.DefaultScheduleStatus.STOPPED
)
stats_daily = dg.build_schedule_from_partitioned_job(
    daily_stats_job, hour_of_day=0, minute_of_hour=30, default_status=dg.DefaultScheduleStatus.STOPPED
)
