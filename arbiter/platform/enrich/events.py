"""One event a document states, as every extractor returns it, and the ``document_events`` frame.

The offline rules build ``Event``s directly; a language model's answer is validated into the same
model, so both paths meet the same contract (``arbiter.platform.schema.DOCUMENT_EVENTS``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Literal

import polars as pl
import pyarrow as pa
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from arbiter.platform.schema import DOCUMENT_EVENTS, EVENT_TYPES

SUSPENSIONS = ("deposit_suspension", "withdrawal_suspension", "deposit_withdrawal_suspension")
# Events that stop funds moving in or out of a venue, so their window matters to transfers.
BLOCKING = (*SUSPENSIONS, "maintenance", "network_upgrade")
FRAME_SCHEMA = pl.from_arrow(DOCUMENT_EVENTS.empty_table()).schema
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


class Event(BaseModel):
    """An event of ``event_type`` at ``venue`` concerning ``assets`` (tickers, upper case), on
    ``network`` where one is named, effective from ``effective_start`` to ``effective_end`` (UTC;
    None where the text does not say), with the extractor's ``confidence`` in it (0..1).

    ``event_index`` ranks the document's events by confidence: 0 is its main event. ``brand``,
    ``product_model``, ``variant``, ``condition`` and ``quantity`` describe the product of a
    marketplace listing (``model`` being the language model that read it); announcements leave
    them None."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    doc_id: str = Field(min_length=1)
    event_index: int = Field(ge=0)
    venue: str = Field(min_length=1)
    assets: tuple[str, ...] = ()
    network: str | None = None
    event_type: Literal[EVENT_TYPES]
    effective_start: AwareDatetime | None = None
    effective_end: AwareDatetime | None = None
    confidence: float = Field(ge=0.0, le=1.0)
    extractor: str = Field(min_length=1)
    model: str | None = None
    prompt_version: str = Field(min_length=1)
    brand: str | None = None
    product_model: str | None = None
    variant: str | None = None
    condition: str | None = None
    quantity: int | None = Field(default=None, ge=0)

    @field_validator("effective_start", "effective_end")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else value.astimezone(UTC)

    @model_validator(mode="after")
    def _ordered(self) -> Event:
        if self.effective_start and self.effective_end and self.effective_end < self.effective_start:
            raise ValueError("effective_end is before effective_start")
        return self


def events_frame(events: Iterable[Event]) -> pl.DataFrame:
    """``events`` as a ``document_events`` frame (the contract's columns and types, in order)."""
    names = [n for n in FRAME_SCHEMA if n != "assets"]
    columns: dict[str, list] = {name: [] for name in names}
    offsets, assets = [0], []
    for event in events:
        for name in names:
            columns[name].append(getattr(event, name))
        assets += event.assets
        offsets.append(len(assets))
    for name in ("effective_start", "effective_end"):  # as integers: building from datetimes is slow
        columns[name] = [None if t is None else (t - EPOCH) // MICROSECOND * 1000 for t in columns[name]]
    schema = {n: pl.Int64 if n.startswith("effective_") else FRAME_SCHEMA[n] for n in names}
    listed = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(assets, pa.string()))
    return (
        pl.DataFrame(columns, schema=schema)
        .with_columns(pl.from_arrow(listed).alias("assets"))
        .select(list(FRAME_SCHEMA))
        .cast(FRAME_SCHEMA)
    )
