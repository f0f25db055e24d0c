"""``document_events`` from ``documents``, partition by partition, only where something is new.

Each ``documents`` partition (``source=simulator/date=/hour=``, ``source=files/file=<key>``, ...)
has a ``document_events`` partition of the same keys, and the documents its extractor could not
read go to ``quarantine`` under ``target=document_events`` and the same keys. ``derived.plan``
picks the partitions to read: new, rewritten, read by another extractor, or left incomplete by a
run whose language-model budget ran out. Both partitions are written only after the whole
partition has been read, each in one atomic step, so a reader never sees half a partition.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import polars as pl

from arbiter.platform import derived
from arbiter.platform.enrich.extraction import TARGET, Extractor
from arbiter.platform.lake import Lake

SOURCE = "documents"
DOCUMENT_COLUMNS = ["doc_id", "source", "title", "body"]


@dataclass
class PartitionRead:
    partition: str
    reason: str  # why it was read: new, source changed, method changed, incomplete
    documents: int
    events: int
    quarantined: int
    pending: int
    unaccounted: list[str]


@dataclass
class DerivedEvents:
    method: str
    up_to_date: int = 0  # partitions left alone
    reads: list[PartitionRead] = field(default_factory=list)
    usage: Counter = field(default_factory=Counter)
    quarantine_reasons: Counter = field(default_factory=Counter)

    def totals(self) -> dict[str, int]:
        keys = ("documents", "events", "quarantined", "pending")
        return {k: sum(getattr(r, k) for r in self.reads) for k in keys}

    def unaccounted(self) -> dict[str, list[str]]:
        return {r.partition: r.unaccounted for r in self.reads if r.unaccounted}


def derive_events(lake: Lake, extractor: Extractor) -> DerivedEvents:
    """Read the documents of every partition ``extractor`` has not read yet into ``document_events``."""
    report = DerivedEvents(extractor.method)
    pending, report.up_to_date = derived.plan(lake, SOURCE, TARGET, extractor.method)

    def extract(todo: derived.Pending) -> derived.Derivation:
        documents = lake.read(SOURCE, [todo.partition]).select(DOCUMENT_COLUMNS).cast({"source": pl.String})
        extraction = extractor.extract(documents, todo.label)
        return derived.Derivation(
            extraction.events, extraction.quarantine, extraction.complete, (documents, extraction)
        )

    for todo, result in derived.derive_pending(lake, pending, TARGET, extractor.method, extract):
        documents, extraction = result.detail
        report.reads.append(
            PartitionRead(
                partition=todo.label,
                reason=todo.reason,
                documents=documents.height,
                events=extraction.events.height,
                quarantined=extraction.quarantine.height,
                pending=len(extraction.pending),
                unaccounted=extraction.unaccounted(documents),
            )
        )
        report.usage.update({k: v for k, v in extraction.usage.items() if isinstance(v, int | float)})
        report.quarantine_reasons.update(
            r.split(":", 1)[0] for r in extraction.quarantine.get_column("reason").to_list()
        )
    return report
