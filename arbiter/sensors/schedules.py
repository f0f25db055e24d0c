"""Schedules and the jobs they run."""

import dagster as dg

from arbiter.assets.partitions import CURRENT_HOURLY

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


poll_sources_job = dg.define_asset_job(
    "poll_network_sources",
    selection=dg.AssetSelection.groups("network_sources"),
    description="Poll one network source now, keep what it sent, and parse the window.",
    tags={"arbiter/stage": "ingestion"},
)

# How often each source is worth asking: venues' market data every minute (within their published
# limits), announcement pages every 15 minutes (conditional GETs make unchanged pages cheap).
SOURCE_CADENCE = {
    "binance_rest": "* * * * *",
    "coinbase_rest": "* * * * *",
    "kraken_rest": "* * * * *",
    "announcements_web": "*/15 * * * *",
}


def _poll_schedule(source: str, cron: str) -> dg.ScheduleDefinition:
    def requests(context: dg.ScheduleEvaluationContext):
        hour = CURRENT_HOURLY.get_partition_key_for_timestamp(context.scheduled_execution_time.timestamp())
        key = dg.MultiPartitionKey({"source": source, "hour": hour})
        return dg.RunRequest(run_key=f"{source}:{context.scheduled_execution_time.isoformat()}", partition_key=key)

    return dg.ScheduleDefinition(
        name=f"poll_{source}",
        job=poll_sources_job,
        cron_schedule=cron,
        execution_timezone="UTC",
        execution_fn=requests,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=f"Poll {source} into the current hour's partition ({cron}).",
    )


poll_schedules = [_poll_schedule(source, cron) for source, cron in SOURCE_CADENCE.items()]
