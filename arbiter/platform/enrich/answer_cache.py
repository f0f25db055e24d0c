"""Language-model answers kept by (document hash, model, prompt version): an unchanged document is
never sent to the same model with the same prompt twice.

Both outcomes are kept: the validated answer, and the reason a document's answers were rejected
(invalid twice, or refused), so a quarantined document costs nothing on the next run either. What
is not an answer (an endpoint error, a budget reached) is not cached: the next run asks again.

``LakeAnswerCache`` keeps them in the lake's ``model_answers`` table, one new partition per run
(``model=<m>/prompt_version=<v>/batch=<time>-<uuid>``): a partition is never rewritten, so two runs
never overwrite each other's answers, and each partition appears atomically. Analysts can read it
with DuckDB like any table (what was asked, what it cost). ``InMemoryAnswerCache`` serves tests and
one-off evaluations.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple, Protocol

import polars as pl

from arbiter.platform.lake import Lake
from arbiter.platform.schema import MODEL_ANSWERS

TABLE = "model_answers"
ANSWERED, QUARANTINED = "answered", "quarantined"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class AnswerKey(NamedTuple):
    doc_hash: str  # sha256 of the document's title and body as the model reads them
    model: str
    prompt_version: str


@dataclass(frozen=True)
class CachedAnswer:
    """What ``key`` got: the answer JSON, or (quarantined) the reason and offending field."""

    key: AnswerKey
    answer: str | None
    reason: str | None = None
    field: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    answered_at: datetime | None = None

    @property
    def quarantined(self) -> bool:
        return self.answer is None


class AnswerCache(Protocol):
    def get(self, keys: Collection[AnswerKey]) -> dict[AnswerKey, CachedAnswer]:
        """The cached answers among ``keys``."""
        ...

    def put(self, answers: Collection[CachedAnswer]) -> None:
        """Keep ``answers`` (a run's new ones, written together)."""
        ...


class InMemoryAnswerCache:
    """Answers in a dict, for tests and one-off evaluations."""

    def __init__(self) -> None:
        self.answers: dict[AnswerKey, CachedAnswer] = {}

    def get(self, keys: Collection[AnswerKey]) -> dict[AnswerKey, CachedAnswer]:
        return {k: self.answers[k] for k in keys if k in self.answers}

    def put(self, answers: Collection[CachedAnswer]) -> None:
        self.answers.update((a.key, a) for a in answers)


class LakeAnswerCache:
    """Answers in the lake's ``model_answers`` table.

    Each (model, prompt version) is read once per instance, from all its batches (the newest
    answer for a document wins); ``put`` writes one new batch per (model, prompt version) and
    keeps it in memory too. A lake that cannot be read or written raises the lake's error.
    """

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self._loaded: dict[tuple[str, str], dict[str, CachedAnswer]] = {}

    def get(self, keys: Collection[AnswerKey]) -> dict[AnswerKey, CachedAnswer]:
        found = {}
        for key in keys:
            if (hit := self._answers(key.model, key.prompt_version).get(key.doc_hash)) is not None:
                found[key] = hit
        return found

    def put(self, answers: Collection[CachedAnswer]) -> None:
        groups: dict[tuple[str, str], list[CachedAnswer]] = {}
        for answer in answers:
            groups.setdefault((answer.key.model, answer.key.prompt_version), []).append(answer)
        now = datetime.now(UTC)
        for (model, prompt_version), group in groups.items():
            partition = {
                "model": safe_segment(model),
                "prompt_version": safe_segment(prompt_version),
                "batch": f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:12]}",
            }
            self.lake.write(TABLE, answers_frame(group, now), partition, schema=MODEL_ANSWERS)
            self._answers(model, prompt_version).update((a.key.doc_hash, a) for a in group)

    def _answers(self, model: str, prompt_version: str) -> dict[str, CachedAnswer]:
        if (model, prompt_version) not in self._loaded:
            self._loaded[model, prompt_version] = self._read(model, prompt_version)
        return self._loaded[model, prompt_version]

    def _read(self, model: str, prompt_version: str) -> dict[str, CachedAnswer]:
        wanted = {"model": safe_segment(model), "prompt_version": safe_segment(prompt_version)}
        batches = [p for p in self.lake.partitions(TABLE) if all(p.get(k) == v for k, v in wanted.items())]
        if not batches:
            return {}
        rows = (
            self.lake.read(TABLE, batches)
            .filter((pl.col("model") == model) & (pl.col("prompt_version") == prompt_version))
            .sort("answered_at")
            .iter_rows(named=True)
        )
        return {
            row["doc_hash"]: CachedAnswer(
                key=AnswerKey(row["doc_hash"], model, prompt_version),
                answer=row["answer"] if row["status"] == ANSWERED else None,
                reason=row["reason"],
                field=row["field"],
                prompt_tokens=row["prompt_tokens"],
                completion_tokens=row["completion_tokens"],
                answered_at=row["answered_at"],
            )
            for row in rows
        }


def answers_frame(answers: Iterable[CachedAnswer], default_time: datetime) -> pl.DataFrame:
    """``answers`` as ``model_answers`` rows."""
    rows = [
        {
            "doc_hash": a.key.doc_hash,
            "model": a.key.model,
            "prompt_version": a.key.prompt_version,
            "status": QUARANTINED if a.quarantined else ANSWERED,
            "answer": a.answer,
            "reason": a.reason,
            "field": a.field,
            "prompt_tokens": a.prompt_tokens,
            "completion_tokens": a.completion_tokens,
            "answered_at": a.answered_at or default_time,
        }
        for a in answers
    ]
    return pl.DataFrame(rows, schema=pl.from_arrow(MODEL_ANSWERS.empty_table()).schema, orient="row")


def safe_segment(value: str) -> str:
    """``value`` usable as a Hive partition value (no ``/``, ``=``, spaces): other characters become
    ``_``. Rows keep the exact value, so two names that map alike are still told apart."""
    return _UNSAFE.sub("_", value) or "_"
