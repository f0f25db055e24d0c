"""What every venue's stream handler shares: the rows it appends, the records it quarantines or
absorbs, and the count that proves every raw record was accounted for.

A handler is the state of one websocket connection (its order books, its subscriptions). The live
client and the capture replay drive it the same way, one message at a time:

- ``on_message(recv_ns, raw)`` for each message the venue sent, returning the native symbols whose
  book now needs a fresh snapshot (Binance: fetch REST depth and call ``on_snapshot``; Coinbase and
  Kraken: resubscribe, the snapshot then arrives in-band);
- ``on_snapshot(recv_ns, symbol, raw)`` for a REST book snapshot (Binance);
- ``note(reason)`` for a record that carries no market data (a connect or a sent line);
- ``close()`` at the end: records still waiting for a snapshot are quarantined.

``drain()`` hands over the rows appended so far (the live client calls it as often as it likes);
``parsed()`` returns everything as a ``Parsed`` whose counts reconcile.
"""

from __future__ import annotations

import abc
import logging
from collections import Counter

import polars as pl

from arbiter.platform.normalise import UnknownSymbol, canonical_symbol
from arbiter.platform.schema import CONTRACT
from arbiter.platform.sources.base import Parsed
from arbiter.platform.sources.exchange_rest.records import FieldError
from arbiter.platform.sources.stream.books import Top

log = logging.getLogger("arbiter.stream")

BOOK_TICKER = "book_ticker"  # the venue's own best bid/offer channel
WS_BOOK = "ws_book"  # the top of a book we maintain from snapshot + diffs

# Reasons a record is quarantined or absorbed, in one place so tests and checks share the words.
BOOK_RESYNC = "book_resync"  # arrived while the book was being rebuilt after a gap or bad checksum
NO_SNAPSHOT = "no_snapshot"  # a book diff for which no snapshot ever arrived
STALE_DIFF = "stale_diff"  # a diff the book's snapshot already contains
BOOK_UNCHANGED = "book_unchanged"  # a diff that did not move the best bid or ask
MALFORMED_JSON = "malformed_json"
UNKNOWN_MESSAGE = "unknown_message"


def contract_frame(table: str, rows: list[tuple]) -> pl.DataFrame:
    """Row tuples (in the contract's column order, times as integer ns) as a contract frame."""
    schema = pl.from_arrow(CONTRACT[table].empty_table()).schema
    times = [name for name, dtype in schema.items() if isinstance(dtype, pl.Datetime)]
    frame = pl.DataFrame(rows, schema={**schema, **dict.fromkeys(times, pl.Int64)}, orient="row")
    return frame.with_columns(pl.col(times).cast(pl.Datetime("ns", "UTC")))


class StreamHandler(abc.ABC):
    """Rows, quarantine and accounting for one connection's messages. Venue handlers subclass it."""

    venue = ""

    def __init__(self, *, source: str, partition: str = "", market: str = "spot", venue: str | None = None):
        self.source, self.partition, self.market = source, partition, market
        if venue is not None:
            self.venue = venue
        self.quotes: list[tuple] = []
        self.trades: list[tuple] = []
        self.bars: list[tuple] = []
        self.quarantine: list[tuple] = []
        self.records = 0  # raw records seen (a message, or each trade of a multi-trade message)
        self.absorbed: Counter = Counter()
        self.resyncs = 0
        self._symbols: dict[str, str | None] = {}

    # the driving interface ------------------------------------------------------------------

    @abc.abstractmethod
    def on_message(self, recv_ns: int, raw: bytes) -> list[str]:
        """Apply one received message; returns the native symbols whose book needs a fresh snapshot."""

    def on_snapshot(self, recv_ns: int, symbol: str, raw: bytes) -> list[str]:
        """A REST book snapshot for ``symbol`` (native). Venues whose snapshots arrive in-band
        quarantine it: nothing here would apply it."""
        self.records += 1
        self.reject("quotes", raw, "unexpected_snapshot", None)
        return []

    def on_connect(self, recv_ns: int) -> None:  # noqa: B027  (an optional hook: most venues keep no state)
        """A new connection: in-band books start over from the snapshot the venue will send."""

    def note(self, reason: str) -> None:
        """Account for one record that carries no market data (connect line, sent request, ...)."""
        self.records += 1
        self.absorbed[reason] += 1

    def close(self) -> None:  # noqa: B027  (an optional hook: only buffering venues override it)
        """End of the stream: quarantine whatever still waits for a snapshot."""

    # rows ------------------------------------------------------------------------------------

    def symbol(self, native: str) -> str:
        """Canonical ``BASE-QUOTE`` of a native symbol (cached), or FieldError ``unknown_symbol``."""
        canonical = self._symbols.get(native, "")
        if canonical == "":
            try:
                canonical = canonical_symbol(native)
            except (UnknownSymbol, AttributeError):
                canonical = None
            self._symbols[native] = canonical
        if canonical is None:
            raise FieldError("symbol", "unknown_symbol")
        return canonical

    def quote(
        self,
        recv_ns: int,
        ts: int | None,
        symbol: str,
        channel: str,
        top: Top,
        seq: int | None,
        raw: bytes | str,
    ) -> bool:
        """Append a quote, or quarantine ``raw`` when the quote breaks the contract (crossed book,
        a price that is not positive, a negative size). True when a row was appended."""
        bid, bid_size, ask, ask_size = top
        if (bid is not None and bid <= 0) or (ask is not None and ask <= 0):
            self.reject("quotes", raw, "non_positive", "bid" if bid is not None and bid <= 0 else "ask")
            return False
        if (bid_size is not None and bid_size < 0) or (ask_size is not None and ask_size < 0):
            self.reject(
                "quotes", raw, "non_positive", "bid_size" if bid_size is not None and bid_size < 0 else "ask_size"
            )
            return False
        if bid is not None and ask is not None and bid >= ask:
            self.reject("quotes", raw, "crossed_book", "bid")
            return False
        self.quotes.append(
            (
                recv_ns if ts is None else ts,
                "receive" if ts is None else "venue",
                recv_ns,
                self.venue,
                self.market,
                symbol,
                channel,
                bid,
                ask,
                bid_size,
                ask_size,
                seq,
            )
        )
        return True

    def trade(
        self,
        recv_ns: int,
        ts: int | None,
        symbol: str,
        price: float,
        size: float,
        side: str | None,
        trade_id: str,
        raw: bytes | str,
    ) -> None:
        if not price > 0:
            self.reject("trades", raw, "non_positive", "price")
        elif not size > 0:
            self.reject("trades", raw, "non_positive", "size")
        else:
            self.trades.append(
                (
                    recv_ns if ts is None else ts,
                    "receive" if ts is None else "venue",
                    recv_ns,
                    self.venue,
                    self.market,
                    symbol,
                    price,
                    size,
                    side,
                    trade_id,
                )
            )

    def bar(self, recv_ns: int, ts: int, symbol: str, values: tuple, raw: bytes | str) -> None:
        """``values``: interval, open, high, low, close, volume, quote_volume, trade_count."""
        open_, high, low, close = values[1:5]
        if min(open_, high, low, close) <= 0:
            self.reject("bars", raw, "non_positive", "low")
        elif not low <= min(open_, close) <= max(open_, close) <= high:
            self.reject("bars", raw, "inconsistent_bar", "high")
        else:
            self.bars.append((ts, "venue", recv_ns, self.venue, self.market, symbol, *values))

    def reject(self, target: str, raw: bytes | str, reason: str, field: str | None) -> None:
        data = raw.encode() if isinstance(raw, str) else bytes(raw)
        self.quarantine.append((target, self.source, self.partition, reason, field, data))

    def absorb(self, reason: str, count: int = 1) -> None:
        self.absorbed[reason] += count

    def resync(self, symbol: str, why: str, **ids) -> None:
        """Count and log a forced book resynchronisation (the caller discards the book)."""
        self.resyncs += 1
        detail = " ".join(f"{k}={v}" for k, v in ids.items())
        log.warning(
            "book resync: venue=%s market=%s symbol=%s reason=%s %s", self.venue, self.market, symbol, why, detail
        )

    # output ----------------------------------------------------------------------------------

    def drain(self) -> dict[str, pl.DataFrame]:
        """The non-empty contract frames appended since the last drain (``quarantine`` included)."""
        out = {}
        for table in ("quotes", "trades", "bars", "quarantine"):
            rows = getattr(self, table)
            if rows:
                out[table] = contract_frame(table, rows)
                rows.clear()
        return out

    def parsed(self, extra: dict[str, list[pl.DataFrame]] | None = None) -> Parsed:
        """Everything as one ``Parsed``; call ``close()`` first. ``extra`` adds frames produced
        outside the handler (the vectorised replay) to the tables they belong to."""
        frames = {table: [frame] for table, frame in self.drain().items()}
        for table, parts in (extra or {}).items():
            frames.setdefault(table, []).extend(p for p in parts if p.height)
        merged = {}
        for table, parts in frames.items():
            if not parts:
                continue
            frame = pl.concat(parts, how="vertical_relaxed") if len(parts) > 1 else parts[0]
            # Receive order is capture order; sort stably so rows from both paths interleave in it.
            merged[table] = frame.sort("recv_ts", maintain_order=True) if "recv_ts" in frame.columns else frame
        return Parsed(frames=merged, raw_records=self.records, absorbed=Counter(self.absorbed), resyncs=self.resyncs)


# field conversions: each failure names the field ---------------------------------------------


def need(record: dict, key: str):
    """``record[key]``, or FieldError ``missing_field`` when it is absent, null or empty."""
    value = record.get(key)
    if value is None or value == "":
        raise FieldError(key, "missing_field")
    return value


def number(value, name: str) -> float:
    """A venue decimal (string, or a JSON number) as a finite float, else FieldError ``unparseable``."""
    if isinstance(value, bool):
        raise FieldError(name, "unparseable")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise FieldError(name, "unparseable") from None
    if out != out or out in (float("inf"), float("-inf")):
        raise FieldError(name, "unparseable")
    return out


def integer(value, name: str) -> int:
    if isinstance(value, bool) or value is None:
        raise FieldError(name, "missing_field" if value is None else "unparseable")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise FieldError(name, "unparseable") from None


def ms_ns(value, name: str) -> int:
    """Epoch milliseconds as ns."""
    return integer(value, name) * 1_000_000


def levels_of(levels, name: str) -> list[tuple[float, float]]:
    """``[[price, size, ...], ...]`` as float pairs, or FieldError naming the side."""
    if not isinstance(levels, list):
        raise FieldError(name, "missing_field" if levels is None else "unparseable")
    try:
        return [(number(level[0], name), number(level[1], name)) for level in levels]
    except (IndexError, KeyError, TypeError):
        raise FieldError(name, "unparseable") from None
