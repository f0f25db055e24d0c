"""Binance websocket streams — spot, USD-M perpetuals and Binance.US — into the data contract.

Messages: ``bookTicker`` (a ``book_ticker`` quote; spot's carries no event time, so its ``ts`` is
the receive time), ``trade`` and ``aggTrade`` (``m`` true means the buyer was the maker, so the
aggressor sold), ``kline`` (a bar once closed, ``x`` true) and ``depthUpdate`` (diffs of a book
rebuilt from a REST depth snapshot, yielding ``ws_book`` quotes). Both the combined-stream
envelope ``{"stream": ..., "data": {...}}`` and bare payloads are read.

Book rules, as Binance documents them ("How to manage a local order book correctly"):

- diffs that arrive before the snapshot are buffered; on the snapshot, those it already contains
  are dropped (spot: ``u <= lastUpdateId``; USD-M: ``u < lastUpdateId``);
- the first diff applied must straddle the snapshot (spot: ``U <= lastUpdateId + 1 <= u``;
  USD-M: ``U <= lastUpdateId <= u``), and each later one must follow the previous (spot:
  ``U == previous u + 1``; USD-M: ``pu == previous u``);
- anything else is a gap: the book is discarded, the symbol is reported as needing a new
  snapshot, and diffs are buffered again until it comes. Buffered diffs that the new snapshot
  makes redundant are quarantined as ``book_resync``: the quotes they carried are lost, and the
  quarantine says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

from arbiter.platform.normalise import UnknownSymbol, canonical_symbol
from arbiter.platform.sources.exchange_rest.records import FieldError
from arbiter.platform.sources.stream.books import NegativeSize, OrderBook, Top
from arbiter.platform.sources.stream.handler import (
    BOOK_RESYNC,
    BOOK_TICKER,
    BOOK_UNCHANGED,
    MALFORMED_JSON,
    NO_SNAPSHOT,
    STALE_DIFF,
    UNKNOWN_MESSAGE,
    WS_BOOK,
    StreamHandler,
    integer,
    levels_of,
    ms_ns,
    need,
    number,
)

SPOT = "spot"
PERP = "linear_perp"

_decode = msgspec.json.Decoder().decode


def same_market(native: str, given: str) -> bool:
    """Whether a native symbol (BTCUSDT) is the one a user named in any spelling."""
    if native.upper() == given.upper():
        return True
    try:
        return canonical_symbol(native) == canonical_symbol(given)
    except UnknownSymbol:
        return False


@dataclass(slots=True)
class Diff:
    """One ``depthUpdate``: its ids and the levels in whatever form the book applies."""

    recv_ns: int
    raw: bytes | str
    symbol: str  # native, e.g. BTCUSDT
    event_ns: int | None  # E
    first_id: int  # U
    last_id: int  # u
    prev_id: int | None  # pu: USD-M only
    levels: object  # OrderBook: (bids, asks) float pairs; GridBook: an index into its GridDiffs


@dataclass(slots=True)
class DepthState:
    """One symbol's book and where it stands in the update-id sequence."""

    book: object | None = None  # None: waiting for a snapshot
    last_id: int = 0  # the last update id the book contains
    first: bool = False  # the next diff is the first after the snapshot
    resyncing: bool = False  # a gap was seen and the snapshot that repairs it has not come
    asked: bool = False  # the symbol was reported as needing a snapshot
    pending: list[Diff] = field(default_factory=list)
    top: Top | None = None  # the last top emitted


class BinanceHandler(StreamHandler):
    """One Binance connection (one market). See the module docstring for the book rules."""

    venue = "binance"
    MAX_PENDING = 100_000  # buffered diffs per symbol while waiting for a snapshot

    def __init__(
        self,
        *,
        source: str,
        partition: str = "",
        market: str = SPOT,
        venue: str = "binance",
        book_factory: Callable[[str], object] | None = None,
        snapshot_symbol: str | None = None,
    ):
        super().__init__(source=source, partition=partition, market=market, venue=venue)
        self.depth: dict[str, DepthState] = {}
        self.new_book = book_factory or (lambda symbol: OrderBook())
        # Whose book a symbol-less REST snapshot in the stream (the ns_lines format) belongs to.
        self.snapshot_symbol = snapshot_symbol

    # driving ---------------------------------------------------------------------------------

    def on_message(self, recv_ns: int, raw: bytes) -> list[str]:
        self.records += 1
        try:
            message = _decode(raw)
        except msgspec.DecodeError:
            self.reject("stream", raw, MALFORMED_JSON, None)
            return []
        data = message.get("data", message) if isinstance(message, dict) else None
        if not isinstance(data, dict):
            self.reject("stream", raw, UNKNOWN_MESSAGE, None)
            return []
        event = data.get("e")
        stream = message.get("stream") or ""
        if event == "depthUpdate":
            return self._guard("quotes", raw, self._depth_update, recv_ns, raw, data) or []
        if event == "bookTicker" or (event is None and (stream.endswith("@bookTicker") or "A" in data)):
            self._guard("quotes", raw, self._book_ticker, recv_ns, raw, data)
        elif event == "trade" or event == "aggTrade":
            self._guard("trades", raw, self._trade, recv_ns, raw, data, event == "aggTrade")
        elif event == "kline":
            self._guard("bars", raw, self._kline, recv_ns, raw, data)
        elif "lastUpdateId" in data:
            symbol = self._snapshot_owner()
            if symbol is None:
                self.reject("quotes", raw, "unknown_snapshot_symbol", "symbol")
                return []
            return self._guard("quotes", raw, self._rest_snapshot, recv_ns, symbol, raw, data) or []
        elif "result" in data and "id" in data:
            self.absorb("subscription_ack")
        elif "code" in data or "error" in data:
            self.reject("stream", raw, "venue_error", None)
        else:
            self.reject("stream", raw, UNKNOWN_MESSAGE, None)
        return []

    def on_snapshot(self, recv_ns: int, symbol: str, raw: bytes) -> list[str]:
        """A REST ``depth`` response for ``symbol`` (native, e.g. BTCUSDT)."""
        self.records += 1
        try:
            body = _decode(raw)
        except msgspec.DecodeError:
            self.reject("quotes", raw, MALFORMED_JSON, None)
            return []
        return self._guard("quotes", raw, self._rest_snapshot, recv_ns, symbol.upper(), raw, body) or []

    def close(self) -> None:
        for state in self.depth.values():
            for diff in state.pending:
                self.reject("quotes", diff.raw, BOOK_RESYNC if state.resyncing else NO_SNAPSHOT, None)
            state.pending.clear()

    def awaiting_snapshot(self) -> set[str]:
        """Native symbols whose book is waiting for a snapshot."""
        return {symbol for symbol, state in self.depth.items() if state.book is None}

    # messages --------------------------------------------------------------------------------

    def _guard(self, target: str, raw, handle, *args):
        """Run ``handle``; a failing field quarantines the message with the field's name."""
        try:
            return handle(*args)
        except FieldError as exc:
            self.reject(target, raw, exc.reason, exc.field)
        except (KeyError, IndexError, TypeError, AttributeError, ValueError):
            self.reject(target, raw, "malformed_record", None)
        return None

    def _book_ticker(self, recv_ns: int, raw, d: dict) -> None:
        symbol = self.symbol(need(d, "s"))
        top = Top(
            number(need(d, "b"), "bid"),
            number(need(d, "B"), "bid_size"),
            number(need(d, "a"), "ask"),
            number(need(d, "A"), "ask_size"),
        )
        event = d.get("E")
        self.quote(
            recv_ns,
            None if event is None else ms_ns(event, "E"),
            symbol,
            BOOK_TICKER,
            top,
            integer(d.get("u"), "u"),
            raw,
        )

    def _trade(self, recv_ns: int, raw, d: dict, aggregate: bool) -> None:
        symbol = self.symbol(need(d, "s"))
        maker = d.get("m")
        if not isinstance(maker, bool):
            raise FieldError("m", "missing_field" if maker is None else "unparseable")
        trade_id = f"agg:{integer(d.get('a'), 'a')}" if aggregate else str(integer(d.get("t"), "t"))
        self.trade(
            recv_ns,
            ms_ns(need(d, "T"), "T"),
            symbol,
            number(need(d, "p"), "price"),
            number(need(d, "q"), "size"),
            "sell" if maker else "buy",
            trade_id,
            raw,
        )

    def _kline(self, recv_ns: int, raw, d: dict) -> None:
        k = need(d, "k")
        if k.get("x") is not True:
            self.absorb("kline_not_final")
            return
        symbol = self.symbol(need(k, "s") if "s" in k else need(d, "s"))
        values = (
            str(need(k, "i")),
            number(need(k, "o"), "open"),
            number(need(k, "h"), "high"),
            number(need(k, "l"), "low"),
            number(need(k, "c"), "close"),
            number(need(k, "v"), "volume"),
            None if k.get("q") is None else number(k["q"], "quote_volume"),
            None if k.get("n") is None else integer(k["n"], "trade_count"),
        )
        self.bar(recv_ns, ms_ns(need(k, "t"), "t"), symbol, values, raw)

    def _depth_update(self, recv_ns: int, raw, d: dict) -> list[str]:
        pu = d.get("pu")
        event = d.get("E")
        diff = Diff(
            recv_ns,
            raw,
            need(d, "s"),
            None if event is None else ms_ns(event, "E"),
            integer(d.get("U"), "U"),
            integer(d.get("u"), "u"),
            None if pu is None else integer(pu, "pu"),
            (levels_of(d.get("b"), "b"), levels_of(d.get("a"), "a")),
        )
        return self.on_diff(diff)

    def _rest_snapshot(self, recv_ns: int, symbol: str, raw, body: dict) -> list[str]:
        self.symbol(symbol)  # an unknown symbol is quarantined before it touches a book
        event = body.get("E")
        levels = (levels_of(body.get("bids"), "bids"), levels_of(body.get("asks"), "asks"))
        last_id = integer(body.get("lastUpdateId"), "lastUpdateId")
        return self.on_book_snapshot(
            recv_ns, symbol, last_id, None if event is None else ms_ns(event, "E"), levels, raw
        )

    def _snapshot_owner(self) -> str | None:
        """The symbol a symbol-less snapshot belongs to: the configured one, else the only symbol
        waiting for a snapshot, else the only symbol with a book."""
        if self.snapshot_symbol:  # as the user wrote it: BTCUSDT, BTC-USDT, btc/usdt
            named = [native for native in self.depth if same_market(native, self.snapshot_symbol)]
            return named[0] if named else re.sub(r"[-/_]", "", self.snapshot_symbol.upper())
        waiting = self.awaiting_snapshot()
        if len(waiting) == 1:
            return next(iter(waiting))
        return next(iter(self.depth)) if len(self.depth) == 1 else None

    # books -----------------------------------------------------------------------------------

    def on_diff(self, diff: Diff) -> list[str]:
        """Apply one decoded ``depthUpdate``; returns ``[symbol]`` when it now needs a snapshot."""
        self.symbol(diff.symbol)
        state = self.depth.get(diff.symbol)
        if state is None:
            state = self.depth[diff.symbol] = DepthState()
        if state.book is None:
            self._buffer(state, diff)
        else:
            self._sync(state, diff)
        if state.book is None and not state.asked:
            state.asked = True
            return [diff.symbol]
        return []

    def on_book_snapshot(
        self, recv_ns: int, symbol: str, last_id: int, event_ns: int | None, levels: object, raw
    ) -> list[str]:
        """Rebuild ``symbol``'s book from a snapshot, then replay the diffs buffered for it."""
        state = self.depth.get(symbol)
        if state is None:
            state = self.depth[symbol] = DepthState()
        repairing = state.resyncing
        state.book = self.new_book(symbol)
        state.book.load_snapshot(levels)
        state.last_id, state.first, state.resyncing, state.asked, state.top = last_id, True, False, False, None
        self.emit(state, symbol, recv_ns, event_ns, last_id, raw)
        pending, state.pending = state.pending, []
        for i, diff in enumerate(pending):
            if state.book is None:  # a buffered diff did not follow: the rest wait for another
                state.pending.extend(pending[i:])
                break
            # The top a buffered diff yields is known only now, with the snapshot: received now.
            diff.recv_ns = max(diff.recv_ns, recv_ns)
            if self._stale(state, diff):
                if repairing:
                    self.reject("quotes", diff.raw, BOOK_RESYNC, "u")
                else:
                    self.absorb(STALE_DIFF)
            else:
                self._sync(state, diff)
        if state.book is None and not state.asked:
            state.asked = True
            return [symbol]
        return []

    def _buffer(self, state: DepthState, diff: Diff) -> None:
        state.pending.append(diff)
        if len(state.pending) > self.MAX_PENDING:
            oldest = state.pending.pop(0)
            self.reject("quotes", oldest.raw, BOOK_RESYNC if state.resyncing else NO_SNAPSHOT, None)

    @staticmethod
    def _stale(state: DepthState, diff: Diff) -> bool:
        # USD-M keeps the diff whose u equals the snapshot's id (it straddles it); spot drops it.
        if state.first and diff.prev_id is not None:
            return diff.last_id < state.last_id
        return diff.last_id <= state.last_id

    @staticmethod
    def _follows(state: DepthState, diff: Diff) -> bool:
        last = state.last_id
        if diff.prev_id is not None:  # USD-M
            return diff.first_id <= last <= diff.last_id if state.first else diff.prev_id == last
        return diff.first_id <= last + 1 <= diff.last_id if state.first else diff.first_id == last + 1

    def _sync(self, state: DepthState, diff: Diff) -> None:
        if self._stale(state, diff):
            self.absorb(STALE_DIFF)
            return
        if not self._follows(state, diff):
            self._discard(
                state,
                diff.symbol,
                "sequence_gap",
                book_last_u=state.last_id,
                U=diff.first_id,
                u=diff.last_id,
                pu=diff.prev_id,
            )
            self._buffer(state, diff)  # it may follow the next snapshot
            return
        try:
            state.book.apply_diff(diff.levels)
        except NegativeSize:
            self._discard(state, diff.symbol, "negative_size", u=diff.last_id)
            self.reject("quotes", diff.raw, "non_positive", "b")
            return
        state.first, state.last_id = False, diff.last_id
        self.emit(state, diff.symbol, diff.recv_ns, diff.event_ns, diff.last_id, diff.raw)

    def emit(self, state: DepthState, symbol: str, recv_ns: int, event_ns: int | None, seq: int, raw) -> None:
        """A ``ws_book`` quote when the best bid or ask (price or size) moved, else absorbed."""
        top = state.book.top()
        if top == state.top:
            self.absorb(BOOK_UNCHANGED)
            return
        if top.crossed():  # a book that crosses has lost a message somewhere: rebuild it
            self._discard(state, symbol, "crossed_book", u=seq, bid=top.bid, ask=top.ask)
            self.reject("quotes", raw, BOOK_RESYNC, "b")
            return
        state.top = top
        self.quote(recv_ns, event_ns, self.symbol(symbol), WS_BOOK, top, seq, raw)

    def _discard(self, state: DepthState, symbol: str, why: str, **ids) -> None:
        self.resync(symbol, why, **ids)
        state.book, state.resyncing, state.top = None, True, None
