"""Network sources (venues' REST APIs, announcement pages), partitioned by source and hour.

``source_snapshots`` keeps every response received in a window, byte for byte, with its fetch
metadata; materialising the current window polls once more and adds to what the window already
holds, while a closed window keeps what it received (polling reads only the present).
``source_rows`` parses a window's stored snapshots into the contract tables, so any window can be
re-normalised or backfilled from the UI without asking the network again.
"""

import time
from datetime import UTC, datetime

import dagster as dg
import polars as pl

from arbiter.assets import parsed_tables, table_checks
from arbiter.assets.partitions import CURRENT_HOURLY
from arbiter.platform import ingest
from arbiter.platform.sources import network
from arbiter.platform.sources.base import RawSnapshot
from arbiter.platform.sources.exchange_rest.poller import PollError
from arbiter.platform.sources.fetch import MalformedBody
from arbiter.resources.io_manager import hive_keys
from arbiter.resources.lake import LakeResource, NetworkResource

SOURCE_WINDOWS = dg.MultiPartitionsDefinition(
    {"source": dg.StaticPartitionsDefinition(list(network.NETWORK_SOURCES)), "hour": CURRENT_HOURLY}
)
ONE_WINDOW_PER_RUN = dg.BackfillPolicy.multi_run(1)  # a window polls the present or keeps what it has


def _window(context: dg.AssetExecutionContext) -> tuple[str, dg.TimeWindow]:
    keys = SOURCE_WINDOWS.get_partition_key_from_str(context.partition_key).keys_by_dimension
    return keys["source"], CURRENT_HOURLY.time_window_for_partition_key(keys["hour"])


@dg.asset(
    partitions_def=SOURCE_WINDOWS,
    group_name="network_sources",
    code_version="1",
    owners=["team:data-engineering"],
    metadata={"lake/table": "raw_snapshots"},
    op_tags={"arbiter/stage": "ingestion"},
    backfill_policy=ONE_WINDOW_PER_RUN,
    check_specs=[table_checks.intact_spec("source_snapshots")],
    description="Every response a network source sent in the window, byte for byte, with URL (no "
    "secrets), status, the headers that matter and receive time. Stored in `raw_snapshots`.",
)
def source_snapshots(context: dg.AssetExecutionContext, network_sources: NetworkResource, lake: LakeResource):
    source, window = _window(context)
    partition = hive_keys(SOURCE_WINDOWS, context.partition_key)
    store = lake.lake()
    stored = store.read("raw_snapshots", [partition]) if store.exists("raw_snapshots", partition) else None
    previous = ingest.snapshots_of(stored) if stored is not None else []
    failure: Exception | None = None
    fresh: list[RawSnapshot] = []
    if window.start <= datetime.now(UTC) < window.end:
        try:
            fresh = network.collect(source, network_sources.config(), previous)
        except PollError as exc:
            failure, fresh = exc, exc.snapshots + _malformed(source, exc)
    else:
        context.log.info(f"{source}: window {window.start:%Y-%m-%d %H:%M} is closed; keeping what it received")
    frames = [f for f in (stored, ingest.raw_frame(fresh) if fresh else None) if f is not None]
    frame = pl.concat(frames).unique(["origin", "sha256"], keep="first", maintain_order=True) if frames else None
    if frame is None:
        frame = ingest.raw_frame([])
    yield dg.Output(frame, metadata={"new_snapshots": len(fresh), "kept_snapshots": len(previous)})
    yield table_checks.intact_result("source_snapshots", frame)
    if failure is not None:  # what arrived is stored above; the partition still fails, naming the venue
        raise dg.Failure(description=f"source {source!r}, partition {context.partition_key}: {failure}")


def _malformed(source: str, error: PollError) -> list[RawSnapshot]:
    """Bodies that stayed truncated or malformed after a retry, kept so they reach quarantine."""
    return [
        RawSnapshot(source, f.url, f.body, time.time_ns(), {"problem": str(f)})
        for f in error.failures
        if isinstance(f, MalformedBody)
    ]


@dg.multi_asset(
    outs=parsed_tables.outs("source", "a network source's window (source=<source>/date=/hour=)"),
    ins={"source_snapshots": dg.AssetIn()},
    partitions_def=SOURCE_WINDOWS,
    group_name="network_sources",
    can_subset=False,
    backfill_policy=ONE_WINDOW_PER_RUN,
    check_specs=parsed_tables.check_specs("source"),
    op_tags={"arbiter/stage": "ingestion"},
)
def source_rows(context: dg.AssetExecutionContext, source_snapshots: pl.DataFrame, lake: LakeResource):
    source, _ = _window(context)
    parsed, errors = network.parse(source, ingest.snapshots_of(source_snapshots), context.partition_key)
    yield from parsed_tables.emit("source", parsed, context.partition_key, lake.lake())
    if errors:
        raise dg.Failure(
            description=f"source {source!r}, partition {context.partition_key}: {len(errors)} response(s) "
            f"unusable (kept in quarantine); first: {errors[0]}"
        )
