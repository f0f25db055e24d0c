"""File feeds: each landed file is a partition. Its bytes are kept as a raw snapshot, then parsed
into the contract tables by whichever adapter recognises it.

Partitions are dynamic (one per file key) and added by the landing sensor or ``arbiter ingest``;
re-materialising a partition re-reads the file and replaces its rows, so a changed file replaces
its old version and the same file seen twice still yields one snapshot.
"""

import dagster as dg
import polars as pl

from arbiter.assets import parsed_tables, table_checks
from arbiter.platform import ingest
from arbiter.resources.lake import LandingResource

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
    "partition per file key. Stored in the shared `raw_snapshots` table under source=files.",
)
def landed_file(context: dg.AssetExecutionContext, config: LandingOptions, landing: LandingResource):
    uri = landing.locate(context.partition_key)
    snapshot = ingest.read_snapshot(uri, SOURCE, config.options(), landing.s3())
    adapter, fmt = ingest.recognise(snapshot)  # fail here, before storing, on a file nobody can read
    frame = ingest.raw_frame([snapshot])
    yield dg.Output(frame, metadata={"format": f"{adapter.kind}/{fmt}", "bytes": len(snapshot.body), "origin": uri})
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
def file_rows(context: dg.AssetExecutionContext, landed_file: pl.DataFrame):
    (snapshot,) = ingest.snapshots_of(landed_file)
    yield from parsed_tables.emit("file", ingest.parse(snapshot, context.partition_key), context.partition_key)
