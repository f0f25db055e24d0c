"""The landing sensor: new or changed files in the landing folder (or S3 prefix) become partitions
of ``landed_file`` and are materialised with their parsed rows.

The cursor maps each file key to ``size:version`` (modification time, or S3's Last-Modified); a file is
requested again only when that changes, and the run key carries it, so the same file seen twice
yields one snapshot.
"""

import dagster as dg

from arbiter.assets.file_feeds import LANDED_FILES, file_rows, landed_file
from arbiter.platform.sources.files import landing as landing_files
from arbiter.resources.lake import LandingResource

MAX_FILES_PER_TICK = 50  # a folder of thousands catches up over several ticks, not one huge one

ingest_landed_files_job = dg.define_asset_job(
    "ingest_landed_files",
    selection=dg.AssetSelection.assets(landed_file, file_rows),
    description="Read one landed file, keep its bytes, and parse it into the contract tables.",
    tags={"arbiter/stage": "ingestion"},
)


@dg.sensor(
    job=ingest_landed_files_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Notices new or changed files under $ARBITER_LANDING and ingests each once.",
)
def landing_sensor(context: dg.SensorEvaluationContext, landing: LandingResource):
    entries = landing_files.list_landing(landing.root, landing.s3())
    changed, cursor = landing_files.changes(entries, context.cursor)
    if not changed:
        return dg.SkipReason(f"no new or changed files under {landing.root} ({len(entries)} seen)")
    batch = changed[:MAX_FILES_PER_TICK]
    if len(batch) < len(changed):  # the cursor forgets the rest, so the next tick sees them as new
        later = {entry.key for entry in changed[MAX_FILES_PER_TICK:]}
        _, cursor = landing_files.changes([e for e in entries if e.key not in later], context.cursor)
    keys = [entry.key for entry in batch]
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=entry.key, run_key=f"{entry.key}:{entry.token}") for entry in batch],
        dynamic_partitions_requests=[LANDED_FILES.build_add_request(keys)],
        cursor=cursor,
    )
