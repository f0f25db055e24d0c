"""The lake IO manager: every table asset is stored as Hive-partitioned Parquet through ``Lake``.

Why not ``UPathIOManager``: ``Lake`` already owns paths, atomic replacement and schema checks over
pyarrow filesystems; a second path layer (universal-pathlib, and s3fs for S3) would only add
ways for the two to disagree. What this class adds is the Dagster side: partition keys to Hive
keys, several partitions per run (single-run backfills), and materialisation metadata.

An asset may set ``lake/table`` (store under another table name) and ``lake/prefix`` (extra
leading Hive keys) in its output metadata: that is how every normaliser's rejects land in the one
``quarantine`` table, under ``target=<table>``.
"""

from __future__ import annotations

import typing
from datetime import timedelta
from urllib.parse import quote

import dagster as dg
import polars as pl

from arbiter.platform.lake import WriteResult, time_partition
from arbiter.resources.lake import LakeResource

PREVIEW_ROWS = 5


def hive_keys(partitions_def: dg.PartitionsDefinition, key: str, name: str = "partition") -> dict[str, str]:
    """A Dagster partition key as ordered Hive keys (time windows become ``date``/``hour``)."""
    if isinstance(partitions_def, dg.MultiPartitionsDefinition):
        by_dimension = partitions_def.get_partition_key_from_str(key).keys_by_dimension
        keys: dict[str, str] = {}
        # What the data is (a source) before when it is: ``source=x/date=/hour=`` like every table.
        dimensions = sorted(
            partitions_def.partitions_defs,
            key=lambda d: isinstance(d.partitions_def, dg.TimeWindowPartitionsDefinition),
        )
        for dimension in dimensions:
            keys.update(hive_keys(dimension.partitions_def, by_dimension[dimension.name], dimension.name))
        return keys
    if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        window = partitions_def.time_window_for_partition_key(key)
        length = window.end - window.start
        if length == timedelta(hours=1):
            return time_partition(window.start, "hour")
        if length == timedelta(days=1):
            return time_partition(window.start, "day")
        raise dg.DagsterInvariantViolationError(f"lake: time partitions of {length} are not mapped to Hive keys")
    if isinstance(partitions_def, dg.DynamicPartitionsDefinition) and partitions_def.name:
        name = partitions_def.name
    # A key may be a path or URI (a landed file): percent-encoded it stays one directory level.
    return {name: quote(key, safe="")}


def _markdown(frame: pl.DataFrame) -> str:
    head = frame.head(PREVIEW_ROWS)
    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * len(head.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in head.iter_rows()]
    return "\n".join(lines)


def _metadata(result: WriteResult, frame: pl.DataFrame) -> dict[str, typing.Any]:
    """What the UI shows for one written partition: rows, bytes, where, schema and a preview."""
    return {
        "dagster/row_count": result.rows,
        "bytes": result.bytes,
        "path": dg.MetadataValue.path(result.uri),
        "dagster/column_schema": dg.TableSchema(columns=[dg.TableColumn(f.name, str(f.type)) for f in result.schema]),
        "preview": dg.MetadataValue.md(_markdown(frame)),
    }


class LakeIOManager(dg.ConfigurableIOManager):
    """Stores Polars frames as Hive-partitioned Parquet in the lake, atomically, one file per partition."""

    lake: LakeResource

    def _target(self, metadata: typing.Mapping, asset_key: dg.AssetKey) -> tuple[str, dict[str, str]]:
        table = metadata.get("lake/table") or asset_key.path[-1]
        return str(table), dict(metadata.get("lake/prefix") or {})

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame | dict[str, pl.DataFrame] | None) -> None:
        if obj is None:
            return
        lake = self.lake.lake()
        table, prefix = self._target(context.definition_metadata or {}, context.asset_key)
        if not context.has_asset_partitions:
            context.add_output_metadata(_metadata(lake.write(table, obj, prefix or None), obj))
            return
        keys = context.asset_partition_keys
        frames = obj if isinstance(obj, dict) else {keys[0]: obj} if len(keys) == 1 else None
        if frames is None or set(frames) != set(keys):
            got = "one frame" if frames is None else sorted(frames)
            raise dg.DagsterInvariantViolationError(
                f"asset {context.asset_key.to_user_string()}: a run over partitions {keys} must return "
                f"a dict with one frame per partition key (got {got})"
            )
        for key in keys:
            result = lake.write(table, frames[key], {**prefix, **hive_keys(context.asset_partitions_def, key)})
            # Scoped to the partition, so each partition of a single-run backfill shows its own figures.
            context.step_context.add_asset_metadata(
                _metadata(result, frames[key]), asset_key=context.asset_key, partition_key=key
            )

    def load_input(self, context: dg.InputContext) -> pl.DataFrame | dict[str, pl.DataFrame]:
        lake = self.lake.lake()
        upstream = context.upstream_output
        table, prefix = self._target(upstream.definition_metadata or {}, context.asset_key)
        if not context.has_asset_partitions:
            return lake.read(table, [prefix or None])
        pdef = context.asset_partitions_def
        parts = {k: {**prefix, **hive_keys(pdef, k)} for k in context.asset_partition_keys}
        if typing.get_origin(context.dagster_type.typing_type) is dict:
            return {k: lake.read(table, [p]) for k, p in parts.items()}
        return lake.read(table, parts.values())
