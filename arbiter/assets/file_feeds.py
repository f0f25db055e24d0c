"""File feeds: each landed file is a partition. Its bytes are kept as a raw snapshot, then parsed
into the contract tables by whichever adapter recognises it.

Partitions are dynamic (one per file key) and added by the landing sensor or ``arbiter ingest``;
re-materialising a partition re-reads the file and replaces its rows, so a changed file replaces
its old version and the same file seen twice still yields one snapshot. Capture logs of one
recording session ingested together share one partition, keyed ``<folder>/<EXCHANGE>.*``
(``ingest.group``): one raw snapshot per file, parsed together.
"""

import dagster as dg
import polars as pl

from arbiter.assets import parsed_tables, table_checks
from arbiter.platform import ingest
from arbiter.resources.lake import LakeResource, LandingResource

LANDED_FILES = dg.DynamicPartitionsDefinition(name="file")
SOURCE = "files"
ONE_FILE_PER_RUN = dg.BackfillPolicy.multi_run(1)  # a file is read whole; files run side by side


class LandingOptions(dg.Config):
    """What the file's content does not say; recorded with the snapshot so later runs reuse it."""

    venue: str | None = None
    kind: str | None = None
    symbol: str | None = None
    market: str | None = None
    column_map: str | None = None  # COLUMN=FIELD,... (ours = the file's)
    files: list[str] = []  # a session partition's files (absolute paths or URIs); none: its key says

    def options(self) -> ingest.IngestOptions:
        return ingest.IngestOptions(
            venue=self.venue,
            kind=self.kind,
            symbol=self.symbol,
            market=self.market,
            mapping=ingest.IngestOptions.parse_map(self.column_map),
        )


@dg.asset(
    partitions_def=LANDED_FILES,
    group_name="file_feeds",
    code_version="1",
    owners=["team:data-engineering"],
    metadata={"lake/table": "raw_snapshots", "lake/prefix": {"source": SOURCE}},
    op_tags={"arbiter/stage": "ingestion"},
    backfill_policy=ONE_FILE_PER_RUN,
    check_specs=[table_checks.intact_spec("landed_file")],
    description="A landed file exactly as read (bytes, size, modification time, options given), one "
    "partition per file key, or per recording session of capture logs (one snapshot per file). Stored in "
    "the shared `raw_snapshots` table under source=files.",
)
def landed_file(context: dg.AssetExecutionContext, config: LandingOptions, landing: LandingResource):
    uris = ingest.members(landing.locate(context.partition_key), config.files, landing.s3())
    snapshots = [ingest.read_snapshot(uri, SOURCE, config.options(), landing.s3()) for uri in uris]
    formats = [ingest.recognise(s) for s in snapshots]  # fail here, before storing, on a file nobody can read
    frame = ingest.raw_frame(snapshots)
    yield dg.Output(
        frame,
        metadata={
            "format": ", ".join(dict.fromkeys(f"{adapter.kind}/{fmt}" for adapter, fmt in formats)),
            "bytes": sum(len(s.body) for s in snapshots),
            "origin": "\n".join(uris),
        },
    )
    yield table_checks.intact_result("landed_file", frame)


@dg.multi_asset(
    outs=parsed_tables.outs("file", "one landed file (source=files/file=<key>)", {"source": SOURCE}),
    ins={"landed_file": dg.AssetIn()},
    partitions_def=LANDED_FILES,
    group_name="file_feeds",
    can_subset=False,
    backfill_policy=ONE_FILE_PER_RUN,
    check_specs=parsed_tables.check_specs("file"),
    op_tags={"arbiter/stage": "ingestion"},
)
def file_rows(context: dg.AssetExecutionContext, landed_file: pl.DataFrame, lake: LakeResource):
    parsed = ingest.parse_together(ingest.snapshots_of(landed_file), context.partition_key)
    yield from parsed_tables.emit("file", parsed, context.partition_key, lake.lake())
