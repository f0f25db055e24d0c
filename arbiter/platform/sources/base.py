"""The one small protocol every source adapter follows.

An adapter receives bytes (a REST response, a websocket capture, a dropped file, a web page),
keeps them as a ``RawSnapshot`` exactly as received with where and when they came from, and
``parse`` turns one snapshot into contract frames plus ``quarantine``. ``Parsed`` carries the
accounting that proves nothing was dropped: every raw record became a row, was quarantined with
a reason, or was absorbed for a stated reason (a book diff that did not move the best level, a
subscription acknowledgement), so ``raw_records == rows + quarantined + absorbed`` for every
snapshot.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import polars as pl

from arbiter.platform.schema import CONTRACT

# Tables an adapter may produce, besides quarantine; ``documents`` and ``listings`` have no
# market key, the rest do.
MARKET_TABLES = ("quotes", "trades", "bars", "instruments")


@dataclass(frozen=True)
class RawSnapshot:
    """What a source delivered, byte for byte, and the facts of its delivery."""

    source: str  # e.g. binance_rest, binance_capture, binance_files, web_announcements
    origin: str  # the URL without secrets, or the file's path or object key
    body: bytes
    received_at: int  # UTC ns
    meta: Mapping[str, str] = field(default_factory=dict)  # status, content type, ETag, params, ...


@dataclass
class Parsed:
    """Contract frames from one snapshot with the counts that reconcile them against its records."""

    frames: dict[str, pl.DataFrame]
    raw_records: int
    absorbed: Counter = field(default_factory=Counter)  # reason -> records that yield no row
    ignored_fields: Counter = field(default_factory=Counter)  # schema drift: unknown field -> times seen
    resyncs: int = 0  # order-book resynchronisations forced by a gap or a checksum failure

    def rows(self) -> dict[str, int]:
        return {table: frame.height for table, frame in self.frames.items()}

    def unaccounted(self) -> int:
        """Raw records neither normalised, quarantined nor absorbed: zero for a correct adapter."""
        produced = sum(self.rows().values())
        return self.raw_records - produced - sum(self.absorbed.values())

    def summary(self) -> dict:
        return {
            "raw_records": self.raw_records,
            "rows": self.rows(),
            "absorbed": dict(self.absorbed),
            "ignored_fields": dict(self.ignored_fields),
            "resyncs": self.resyncs,
        }


class Adapter(Protocol):
    """A source kind: recognises its formats by content and parses its snapshots."""

    kind: str

    def recognise(self, head: bytes, name: str) -> str | None:
        """The format name when the first bytes (and the file name) are this adapter's, else None."""

    def parse(self, snapshot: RawSnapshot, partition: str) -> Parsed:
        """Contract frames (``quarantine`` included) from one snapshot."""


def empty_frame(table: str) -> pl.DataFrame:
    return pl.from_arrow(CONTRACT[table].empty_table())


def concat_frames(parts: list[dict[str, pl.DataFrame]]) -> dict[str, pl.DataFrame]:
    """Merge per-snapshot frames table by table (``how="vertical_relaxed"``: the contract types)."""
    tables: dict[str, list[pl.DataFrame]] = {}
    for frames in parts:
        for table, frame in frames.items():
            tables.setdefault(table, []).append(frame)
    return {table: pl.concat(frames, how="vertical_relaxed") for table, frames in tables.items()}


def merge(parsed: list[Parsed]) -> Parsed:
    """Many snapshots' results as one: frames concatenated table by table, every count summed."""
    return Parsed(
        frames=concat_frames([p.frames for p in parsed]),
        raw_records=sum(p.raw_records for p in parsed),
        absorbed=sum((p.absorbed for p in parsed), Counter()),
        ignored_fields=sum((p.ignored_fields for p in parsed), Counter()),
        resyncs=sum(p.resyncs for p in parsed),
    )
