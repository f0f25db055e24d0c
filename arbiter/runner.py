"""Materialising assets from the command line: synchronously, in this process, recorded in the
Dagster instance so every run shows in the UI exactly like one launched there.

A selection uses Dagster's own syntax (``quotes``, ``group:ingestion``, ``quotes+``, ``*``) and
is widened to whole multi-assets, whose outputs are produced together. Partitioned assets run
over the partitions named with ``--partition`` (``KEY`` or ``START...END``); without it, over
every partition whose upstream data exists in the lake. Consecutive partitions run as one
single-run backfill per range.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from arbiter import assets
from arbiter.assets.parsed_tables import RECONCILE
from arbiter.definitions import build_definitions
from arbiter.platform.lake import Lake
from arbiter.platform.settings import Settings
from arbiter.resources import build_resources

RANGE = "..."
# Runs started here keep the terminal for the command's own output: a failure is reported as one
# line by the caller, and the UI keeps every event of the run, stack traces included.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


class SelectionError(ValueError):
    """The selection or partition names nothing that can run; the message says which."""


@dataclass
class RunOutcome:
    run_id: str
    success: bool
    asset_keys: list[str]
    partitions: str  # "" when unpartitioned, else "KEY" or "START...END"
    failed_checks: list[str] = field(default_factory=list)  # ERROR-severity checks that did not pass
    warned_checks: list[str] = field(default_factory=list)  # WARN-severity checks that did not pass
    error: str = ""  # the failing step and its error, in one line
    written: list[dict] = field(default_factory=list)  # per materialised partition: asset, partition, rows, path
    reconciled: list[dict] = field(default_factory=list)  # per parsed partition: raw records, rows, absorbed

    @property
    def label(self) -> str:
        return ", ".join(self.asset_keys) + (f" [{self.partitions}]" if self.partitions else "")


def _hive_start(keys: dict[str, str]) -> datetime | None:
    if "date" not in keys:
        return None
    start = datetime.strptime(keys["date"], "%Y-%m-%d").replace(tzinfo=UTC)
    return start + timedelta(hours=int(keys["hour"])) if "hour" in keys else start


def _upstream_windows(graph, key: dg.AssetKey, lake: Lake) -> list[tuple[datetime, datetime]]:
    """Time windows of the partitions of ``key``'s parents that exist in the lake."""
    windows = []
    for parent in graph.get(key).parent_keys:
        node = graph.get(parent)
        if node.partitions_def is None:  # reference data (``instruments``): no windows to follow
            continue
        table = node.metadata.get("lake/table") or parent.path[-1]
        prefix = node.metadata.get("lake/prefix") or {}
        length = timedelta(hours=1)
        if isinstance(node.partitions_def, dg.TimeWindowPartitionsDefinition):
            first = node.partitions_def.time_window_for_partition_key(node.partitions_def.get_first_partition_key())
            length = first.end - first.start
        for keys in lake.partitions(table):
            if any(keys.get(k) != v for k, v in prefix.items()):
                continue
            start = _hive_start(keys)
            if start is not None:
                windows.append((start, start + length))
    return windows


def _keys_with_upstream(graph, key: dg.AssetKey, lake: Lake) -> list[str]:
    pdef = graph.get(key).partitions_def
    if not isinstance(pdef, dg.TimeWindowPartitionsDefinition):
        raise SelectionError(f"{key.to_user_string()}: pass --partition (its partitions are not time windows)")
    if not graph.get(key).parent_keys:
        raise SelectionError(
            f"{key.to_user_string()} has no upstream in the lake to follow: pass --partition KEY or START{RANGE}END"
        )
    existing = set(pdef.get_partition_keys())
    keys: set[str] = set()
    for start, end in _upstream_windows(graph, key, lake):
        # Every partition of ours that overlaps the upstream window (an hour lies in one day).
        first = pdef.get_partition_key_for_timestamp(start.timestamp())
        last = pdef.get_partition_key_for_timestamp((end - timedelta(microseconds=1)).timestamp())
        if first in existing and last in existing:
            keys.update(pdef.get_partition_keys_in_range(dg.PartitionKeyRange(first, last)))
    return sorted(keys)


def _parse_partition(pdef: dg.PartitionsDefinition, text: str, instance: dg.DagsterInstance) -> list[str]:
    """``KEY`` or ``START...END`` → the partition keys, each checked to exist (dynamic partitions
    are the instance's)."""
    all_keys = pdef.get_partition_keys(dynamic_partitions_store=instance)
    if RANGE in text:
        start, end = (p.strip() for p in text.split(RANGE, 1))
        for k in (start, end):
            if k not in all_keys:
                raise SelectionError(f"partition {k!r} does not exist (partitions: {pdef})")
        keys = all_keys[all_keys.index(start) : all_keys.index(end) + 1]
        if not keys:
            raise SelectionError(f"partition range {text!r} is empty: START must not come after END")
        return keys
    if text not in all_keys:
        raise SelectionError(f"partition {text!r} does not exist (partitions: {pdef})")
    return [text]


def _contiguous(pdef: dg.PartitionsDefinition, keys: list[str], instance: dg.DagsterInstance) -> list[list[str]]:
    order = {k: i for i, k in enumerate(pdef.get_partition_keys(dynamic_partitions_store=instance))}
    runs: list[list[str]] = []
    for k in sorted(set(keys), key=order.__getitem__):
        if runs and order[k] == order[runs[-1][-1]] + 1:
            runs[-1].append(k)
        else:
            runs.append([k])
    return runs


def materialize_selection(
    selection: str,
    *,
    partition: str | None = None,
    root_partition: str | None = None,
    settings: Settings | None = None,
    instance: dg.DagsterInstance,
    on_run: Callable[[str], None] = lambda _: None,
) -> list[RunOutcome]:
    """Materialise ``selection`` into ``instance``; one run per partitions definition and range.

    ``root_partition`` applies to partitioned assets with no upstream (the demo's window), while
    ``partition`` applies to every partitioned asset in the selection. ``on_run`` hears a short
    label before each run starts (for progress displays).
    """
    settings = settings or Settings.from_env()
    defs = build_definitions(settings=settings)
    graph = defs.resolve_asset_graph()
    try:
        picked = dg.AssetSelection.from_string(selection).resolve(graph)
    except Exception as exc:
        raise SelectionError(f"selection {selection!r} is not valid: {exc}") from exc
    picked = {k for key in picked if graph.get(key).is_materializable for k in graph.get(key).assets_def.keys}
    if not picked:
        raise SelectionError(f"selection {selection!r} matches no asset")
    resources = build_resources(settings)
    lake = Lake(settings.lake)
    outcomes = []
    for level in graph.toposorted_asset_keys_by_level:
        level_keys = [k for k in level if k in picked]
        by_pdef: dict[dg.PartitionsDefinition | None, list[dg.AssetKey]] = {}
        for k in level_keys:
            by_pdef.setdefault(graph.get(k).partitions_def, []).append(k)
        for pdef, keys in by_pdef.items():
            if pdef is None:
                outcomes.append(_run(keys, None, resources, instance, on_run))
                continue
            chosen: list[str] = []
            for k in keys:
                if partition:
                    chosen += _parse_partition(pdef, partition, instance)
                elif root_partition and not graph.get(k).parent_keys:
                    chosen += _parse_partition(pdef, root_partition, instance)
                else:
                    chosen += _keys_with_upstream(graph, k, lake)
            for run_keys in _contiguous(pdef, chosen, instance):
                outcomes.append(_run(keys, run_keys, resources, instance, on_run))
    return outcomes


def ingest_files(
    partitions: dict[str, list[str]],
    options: dict,
    *,
    settings: Settings | None = None,
    instance: dg.DagsterInstance,
    on_run: Callable[[str], None] = lambda _: None,
) -> list[RunOutcome]:
    """Ingest files as partitions of the file-feed assets, ``partitions`` mapping each key to its
    files as ``ingest.group`` makes them (a file alone is keyed by its own path or URI; a session's
    files share its key), with the ``LandingOptions`` given as ``options``; one run per partition."""
    from arbiter.assets.file_feeds import LANDED_FILES, file_rows, landed_file

    settings = settings or Settings.from_env()
    resources = build_resources(settings)
    keys = [*landed_file.keys, *file_rows.keys]
    instance.add_dynamic_partitions(LANDED_FILES.name, list(partitions))
    outcomes = []
    for key, files in partitions.items():
        config = {"ops": {"landed_file": {"config": {**options, **({"files": files} if files != [key] else {})}}}}
        outcomes.append(_run(keys, [key], resources, instance, on_run, config))
    return outcomes


def _run(keys, partition_keys, resources, instance, on_run, run_config: dict | None = None) -> RunOutcome:
    names = sorted(k.to_user_string() for k in keys)
    label = ""
    tags = {}
    if partition_keys and len(partition_keys) == 1:
        label = partition_keys[0]
        tags = {"dagster/partition": label}
    elif partition_keys:
        label = f"{partition_keys[0]}{RANGE}{partition_keys[-1]}"
        tags = {ASSET_PARTITION_RANGE_START_TAG: partition_keys[0], ASSET_PARTITION_RANGE_END_TAG: partition_keys[-1]}
    on_run(f"{', '.join(names)}" + (f" [{label}]" if label else ""))
    result = dg.materialize(
        assets.ALL,
        selection=keys,
        resources=resources,
        instance=instance,
        tags=tags,
        run_config={**QUIET, **(run_config or {})},
        raise_on_error=False,
    )
    outcome = RunOutcome(result.run_id, result.success, names, label, error=_step_error(result))
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        meta = materialization.metadata
        outcome.written.append(
            {
                "asset": materialization.asset_key.to_user_string(),
                "partition": materialization.partition,
                "rows": meta["dagster/row_count"].value if "dagster/row_count" in meta else None,
                "path": meta["path"].value if "path" in meta else None,
            }
        )
    for evaluation in result.get_asset_check_evaluations():
        if evaluation.check_name == RECONCILE and "summary" in evaluation.metadata:
            outcome.reconciled.append(evaluation.metadata["summary"].value)
        if not evaluation.passed:
            name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
            if evaluation.severity == dg.AssetCheckSeverity.ERROR:
                outcome.failed_checks.append(name)
            else:
                outcome.warned_checks.append(name)
    return outcome


def _step_error(result: dg.ExecuteInProcessResult) -> str:
    """The first failed step and the error our code raised there (not Dagster's wrapper), in one line."""
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            while error.cause is not None:
                error = error.cause
            return " ".join(f"step {event.step_key}: {error.message}".split())
    return ""
