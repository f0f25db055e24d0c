"""Tables derived partition by partition from another lake table, recomputed only where needed.

An enrichment table (``document_events`` from ``documents``, ``image_features`` from ``listings``)
mirrors its source's partitions: source partition ``source=files/file=a.jsonl`` becomes the
derived partition of the same keys. Each derived partition is written with a stamp in its file's
metadata saying what it was made from (the source partition's version: size and modification
time) and by what (``method``: extractor and prompt version, say), and whether every source row
was dealt with. ``plan`` compares the stamps with the source, so a run derives only partitions
that are new, whose source was rewritten, that an other method made, or that a run left
incomplete (a language-model budget ran out, say), and never recomputes the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import polars as pl

from arbiter.platform.lake import Lake, Partition, partition_label

SOURCE_KEY = "arbiter/source_version"
METHOD_KEY = "arbiter/method"
COMPLETE_KEY = "arbiter/complete"


@dataclass(frozen=True)
class Pending:
    """A source partition whose derived partition must be (re)computed, and why."""

    partition: dict[str, str]
    source_version: str
    reason: str  # new | source changed | method changed | incomplete

    @property
    def label(self) -> str:
        return partition_label(self.partition)


def stamp(pending: Pending, method: str, complete: bool = True) -> dict[str, str]:
    """What to store with the derived partition of ``pending`` made by ``method``."""
    return {SOURCE_KEY: pending.source_version, METHOD_KEY: method, COMPLETE_KEY: "true" if complete else "false"}


def plan(lake: Lake, source: str, derived: str, method: str) -> tuple[list[Pending], int]:
    """The partitions of ``source`` whose ``derived`` partition ``method`` must compute, and how
    many are up to date."""
    pending, current = [], 0
    for partition in lake.partitions(source):
        version = lake.version_of(source, partition)
        if version is None:  # rewritten away between listing and looking
            continue
        reason = _why(lake.stamp_of(derived, partition), version, method)
        if reason is None:
            current += 1
        else:
            pending.append(Pending(dict(partition), version, reason))
    return pending, current


def _why(stamped: dict[str, str] | None, version: str, method: str) -> str | None:
    if stamped is None:
        return "new"
    if stamped.get(SOURCE_KEY) != version:
        return "source changed"
    if stamped.get(METHOD_KEY) != method:
        return "method changed"
    if stamped.get(COMPLETE_KEY) != "true":
        return "incomplete"
    return None


@dataclass
class Derivation:
    """What a derived partition holds: its rows, the source rows quarantined instead (the contract's
    ``quarantine`` columns), and whether every source row was dealt with; ``detail`` is whatever
    the caller wants back about the partition (counts for a report, say)."""

    rows: pl.DataFrame
    quarantine: pl.DataFrame
    complete: bool = True
    detail: Any = None


def derive_pending(
    lake: Lake, pending: list[Pending], target: str, method: str, compute: Callable[[Pending], Derivation]
) -> Iterator[tuple[Pending, Derivation]]:
    """``compute`` each pending partition and publish it: the quarantine first (under
    ``target=<target>`` and the same keys), then the rows with their stamp, so a partition whose
    second write fails is not stamped as derived and the next run computes it again."""
    for todo in pending:
        result = compute(todo)
        lake.write("quarantine", result.quarantine, {"target": target, **todo.partition})
        lake.write(target, result.rows, todo.partition, stamp=stamp(todo, method, result.complete))
        yield todo, result


__all__ = ["Derivation", "Partition", "Pending", "derive_pending", "plan", "stamp"]
