"""The Dagster definitions: the whole platform as one code location (the embedded default), and
one per stage for production, where each stage is its own code location and can be redeployed
alone. Loaded by ``workspace.yaml`` (``python_module: arbiter.definitions``).
"""

import dagster as dg

from arbiter import assets
from arbiter.assets.learning import rollback_champion_job
from arbiter.platform.settings import Settings
from arbiter.resources import build_resources
from arbiter.sensors.landing import ingest_landed_files_job, landing_sensor
from arbiter.sensors.learning import (
    drift_sensor,
    opportunities_hourly,
    opportunities_job,
    retrain_nightly,
    retrain_policy_job,
)
from arbiter.sensors.schedules import (
    daily_stats_job,
    ingest_hourly,
    ingest_simulator_job,
    poll_schedules,
    poll_sources_job,
    stats_daily,
)

LEARNING_JOBS = [opportunities_job, retrain_policy_job, rollback_champion_job]
LEARNING_SCHEDULES = [opportunities_hourly, retrain_nightly]


def build_definitions(
    stage_assets: list | None = None,
    settings: Settings | None = None,
    jobs: list | None = None,
    schedules: list | None = None,
    sensors: list | None = None,
) -> dg.Definitions:
    """Definitions for the given assets (default: all of them, with every job, schedule and sensor)
    with the resources ``settings`` describe (default: the process environment's)."""
    full = stage_assets is None
    return dg.Definitions(
        assets=assets.ALL if full else stage_assets,
        jobs=[ingest_simulator_job, daily_stats_job, ingest_landed_files_job, poll_sources_job, *LEARNING_JOBS]
        if full
        else jobs or [],
        schedules=[ingest_hourly, stats_daily, *poll_schedules, *LEARNING_SCHEDULES] if full else schedules or [],
        sensors=[landing_sensor, drift_sensor] if full else sensors or [],
        resources=build_resources(settings),
    )


defs = build_definitions()
ingestion = build_definitions(assets.INGESTION)
enrichment = build_definitions(assets.ENRICHMENT)
learning = build_definitions(
    [*assets.LEARNING, *assets.LEARNING_CHECKS],
    jobs=LEARNING_JOBS,
    schedules=LEARNING_SCHEDULES,
    sensors=[drift_sensor],
)
analytics = build_definitions(assets.ANALYTICS)
