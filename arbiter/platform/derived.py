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

from dataclasses import dataclass

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


__all__ = ["Partition", "Pending", "plan", "stamp"]
