"""The Dagster definitions: the whole platform as one code location (the embedded default), and
one per stage for production, where each stage is its own code location and can be redeployed
alone. Loaded by ``workspace.yaml`` (``python_module: arbiter.definitions``).
"""

import dagster as dg

from arbiter import assets
from arbiter.platform.settings import Settings
from arbiter.resources import build_resources
from arbiter.sensors.landing import ingest_landed_files_job, landing_sensor
from arbiter.sensors.schedules import (
    daily_stats_job,
    ingest_hourly,
    ingest_simulator_job,
    poll_schedules,
    poll_sources_job,
    stats_daily,
)


def build_definitions(stage_assets: list | None = None, settings: Settings | None = None) -> dg.Definitions:
    """Definitions for the given assets (default: all of them) with the resources ``settings``
    describe (default: the process environment's)."""
    selected = assets.ALL if stage_assets is None else stage_assets
    full = stage_assets is None
    return dg.Definitions(
        assets=selected,
        jobs=[ingest_simulator_job, daily_stats_job, ingest_landed_files_job, poll_sources_job] if full else [],
        schedules=[ingest_hourly, stats_daily, *poll_schedules] if full else [],
        sensors=[landing_sensor] if full else [],
        resources=build_resources(settings),
    )


defs = build_definitions()
ingestion = build_definitions(assets.INGESTION)
enrichment = build_definitions(assets.ENRICHMENT)
analytics = build_definitions(assets.ANALYTICS)
