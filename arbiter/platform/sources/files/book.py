"""Top of book rebuilt from an order-book download: snapshots and level updates, in file order.

Binance's USD-M rules decide what may be applied: a snapshot (rows ``snap`` sharing one update
id) replaces the book; the first update applied after it must span the snapshot's id
(``first_id <= snapshot id + 1``, ``last_id >= snapshot id``), updates wholly before it are already in it; every later
update's ``prev_id`` (``pu``) must equal the previous update's ``last_id``. A break is a gap: the
book is no longer known, which counts as a resync, and updates wait for the next snapshot. Each
applied event that moves the best bid or ask (price or size) yields one quote; every other row is
absorbed with its reason, so the rows reconcile.

The walk over events is plain Python: it is sequential by nature (each event depends on the book
the previous one left), and a dict per side with a cached best level keeps it to a few dict
operations per row.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import groupby

import polars as pl

from arbiter.platform.sources.files.tabular import UTC_NS


@dataclass
class Side:
    """One side of a book: price -> size, with the best price cached until it is removed."""

    bids: bool
    levels: dict[float, float] = field(default_factory=dict)
    best: float | None = None
    stale: bool = False

    def set(self, price: float, size: float) -> None:
        if size == 0:
            if self.levels.pop(price, None) is not None and price == self.best:
                self.stale = True
            return
        self.levels[price] = size
        if not self.stale and (self.best is None or (price > self.best if self.bids else price < self.best)):
            self.best = price

    def top(self) -> tuple[float | None, float | None]:
        if self.stale:
            self.best = (max if self.bids else min)(self.levels) if self.levels else None
            self.stale = False
        return (self.best, self.levels[self.best]) if self.best is not None else (None, None)


@dataclass
class Book:
    bids: Side = field(default_factory=lambda: Side(bids=True))
    asks: Side = field(default_factory=lambda: Side(bids=False))
    synced: bool = False  # a snapshot has been applied and no gap seen since
    last_id: int = 0  # last update id applied
    applied_since_snapshot: int = 0
    quoted: tuple | None = None  # the top last quoted
    event: tuple | None = None  # (update type, last id) of the event last applied

    def top(self) -> tuple:
        bid, bid_size = self.bids.top()
        ask, ask_size = self.asks.top()
        return bid, bid_size, ask, ask_size


EVENT = ("symbol", "update_type", "first_id", "last_id", "prev_id", "ts")


def rebuild(rows: pl.DataFrame) -> tuple[pl.DataFrame, Counter, int]:
    """(quotes, absorbed reasons, resyncs) from accepted depth rows (``symbol, ts, first_id,
    last_id, prev_id, side, update_type, price, size``) in file order, one book per symbol."""
    books: dict[str, Book] = {}
    quotes: list[tuple] = []
    absorbed: Counter = Counter()
    resyncs = 0
    columns = rows.select(*EVENT[:5], pl.col("ts").dt.epoch("ns"), "side", "price", "size")
    for key, group in groupby(columns.iter_rows(), key=lambda r: r[:6]):
        symbol, kind, first_id, last_id, prev_id, ts = key
        levels = [(side, price, size) for *_, side, price, size in group]
        book = books.setdefault(symbol, Book())
        if book.event == (kind, last_id):
            pass  # the rest of the event last applied, after rows of another symbol
        elif kind == "snap":
            book.bids, book.asks = Side(bids=True), Side(bids=False)
            book.synced, book.last_id, book.applied_since_snapshot = True, last_id, 0
        elif not book.synced:
            absorbed["awaiting_snapshot"] += len(levels)
            continue
        elif book.applied_since_snapshot == 0 and last_id < book.last_id:
            absorbed["in_snapshot"] += len(levels)
            continue
        elif (first_id > book.last_id + 1) if book.applied_since_snapshot == 0 else (prev_id != book.last_id):
            resyncs += 1
            book.synced, book.event = False, None
            absorbed["awaiting_snapshot"] += len(levels)
            continue
        else:
            book.last_id, book.applied_since_snapshot = last_id, book.applied_since_snapshot + 1
        book.event = (kind, last_id)
        for side, price, size in levels:
            (book.bids if side == "b" else book.asks).set(price, size)
        top = book.top()
        if top == book.quoted:
            absorbed["top_unchanged"] += len(levels)
            continue
        book.quoted = top
        quotes.append((ts, symbol, *top, last_id))
        absorbed["merged_into_quote"] += len(levels) - 1
    frame = pl.DataFrame(
        quotes,
        schema={"ts": pl.Int64, "symbol": pl.String, "bid": pl.Float64, "bid_size": pl.Float64}
        | {"ask": pl.Float64, "ask_size": pl.Float64, "seq": pl.Int64},
        orient="row",
    )
    return frame.with_columns(pl.col("ts").cast(UTC_NS)), +absorbed, resyncs
