"""What every extractor returns for a batch of documents, and the offline extractor in that shape.

An extractor reads a ``documents`` frame (doc_id, source, title, body, ...) of one lake partition
and returns an ``Extraction``: the ``document_events`` rows, the documents it could not read in
quarantine (with the reason and the document as JSON), and how many it left for a later run (a
language model's budget ran out). Every document is accounted for: it has events, is quarantined
or is pending. ``method`` names the extractor and its version, so a partition read by another
method or version is read again (``arbiter.platform.derived``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import polars as pl

from arbiter.platform.enrich.events import FRAME_SCHEMA
from arbiter.platform.enrich.offline_extract import EXTRACTOR, RULES_VERSION, extract_frame
from arbiter.platform.schema import CONTRACT

TARGET = "document_events"
QUARANTINE_SCHEMA = pl.from_arrow(CONTRACT["quarantine"].empty_table()).schema
EMPTY_QUARANTINE = pl.DataFrame(schema=QUARANTINE_SCHEMA)


@dataclass
class Extraction:
    events: pl.DataFrame
    quarantine: pl.DataFrame
    pending: list[str] = field(default_factory=list)  # doc_ids not attempted (budget reached)
    usage: dict = field(default_factory=dict)  # calls, tokens, cost, cache hits: what the run spent

    @property
    def complete(self) -> bool:
        return not self.pending

    def unaccounted(self, documents: pl.DataFrame) -> list[str]:
        """doc_ids of ``documents`` that have no event, are not quarantined and are not pending."""
        seen = {*self.events.get_column("doc_id").to_list(), *self.pending, *quarantined_doc_ids(self.quarantine)}
        return [d for d in documents.get_column("doc_id").to_list() if d not in seen]


class Extractor(Protocol):
    method: str  # extractor, model and prompt version: what a derived partition is stamped with

    def extract(self, documents: pl.DataFrame, partition: str) -> Extraction: ...


def quarantine_documents(documents: pl.DataFrame, reason: pl.Expr | str, partition: str) -> pl.DataFrame:
    """``documents`` as quarantine rows for ``document_events``: the reason, and each document's
    doc_id, source, title and body as JSON."""
    reason_expr = pl.lit(reason) if isinstance(reason, str) else reason
    return documents.select(
        target=pl.lit(TARGET),
        source=pl.col("source").cast(pl.String),
        partition=pl.lit(partition),
        reason=reason_expr,
        field=pl.lit(None, pl.String),
        raw=pl.struct("doc_id", "source", "title", "body").struct.json_encode().cast(pl.Binary),
    ).cast(QUARANTINE_SCHEMA)


def quarantined_doc_ids(quarantine: pl.DataFrame) -> list[str]:
    """The doc_ids of quarantined documents (read back from their JSON)."""
    if quarantine.is_empty():
        return []
    return quarantine.get_column("raw").cast(pl.String).str.json_path_match("$.doc_id").drop_nulls().to_list()


class OfflineExtractor:
    """The offline rules (``offline_extract``): deterministic, no network, the embedded default.

    The rules are total over well-formed documents; should they fail on one, the batch is read
    again document by document and the failing ones go to quarantine with the error."""

    method = f"{EXTRACTOR}/{RULES_VERSION}"

    def extract(self, documents: pl.DataFrame, partition: str) -> Extraction:
        try:
            events = extract_frame(documents)
        except Exception:
            return self._one_by_one(documents, partition)
        return Extraction(events, EMPTY_QUARANTINE)

    @staticmethod
    def _one_by_one(documents: pl.DataFrame, partition: str) -> Extraction:
        """Each document alone, so the one that fails is quarantined and the others are read."""
        frames, rejected = [], [EMPTY_QUARANTINE]
        for row in documents.iter_slices(1):
            try:
                frames.append(extract_frame(row))
            except Exception as exc:  # a bad document is quarantined, never fatal
                rejected.append(quarantine_documents(row, f"extract_failed: {type(exc).__name__}: {exc}", partition))
        events = pl.concat(frames) if frames else pl.DataFrame(schema=FRAME_SCHEMA)
        return Extraction(events, pl.concat(rejected))
