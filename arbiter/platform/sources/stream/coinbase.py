"""Coinbase (Pro / Exchange) websocket feed into the data contract.

Messages: ``snapshot`` + ``l2update`` (the level2 channel: a book we keep, yielding ``ws_book``
quotes), ``ticker`` (a ``book_ticker`` quote of best bid and ask; sizes only where the feed sends
``best_bid_size``), ``match`` and ``last_match`` (trades: ``side`` is the *maker's* side, so the
aggressor is the other one), ``subscriptions`` and ``heartbeat`` (absorbed), ``error``
(quarantined).

level2 carries no sequence numbers, so a lost message cannot be seen by its ids; what can be
seen is a book that crosses, and that forces a resync (resubscribe; the venue then sends a new
``snapshot``). ``ticker`` and ``match`` carry ``sequence``, kept as ``seq``.
"""

from __future__ import annotations

import msgspec

from arbiter.platform.sources.exchange_rest.records import FieldError, iso_to_ns
from arbiter.platform.sources.stream.books import NegativeSize, OrderBook, Top
from arbiter.platform.sources.stream.handler import (
    BOOK_RESYNC,
    BOOK_TICKER,
    BOOK_UNCHANGED,
    MALFORMED_JSON,
    NO_SNAPSHOT,
    UNKNOWN_MESSAGE,
    WS_BOOK,
    StreamHandler,
    integer,
    levels_of,
    need,
    number,
)

_decode = msgspec.json.Decoder().decode
_SIDES = {"buy": True, "sell": False}  # l2update change side -> is bid
_AGGRESSOR = {"buy": "sell", "sell": "buy"}  # maker side -> taker side


class CoinbaseHandler(StreamHandler):
    venue = "coinbase"

    def __init__(self, *, source: str, partition: str = "", market: str = "spot", venue: str = "coinbase"):
        super().__init__(source=source, partition=partition, market=market, venue=venue)
        self.books: dict[str, OrderBook] = {}  # product id -> book, present only once synced
        self.tops: dict[str, Top] = {}
        self.resyncing: set[str] = set()

    def on_connect(self, recv_ns: int) -> None:
        # A new connection subscribes afresh: books restart from the snapshot it will send.
        self.books.clear()
        self.tops.clear()

    def on_message(self, recv_ns: int, raw: bytes) -> list[str]:
        self.records += 1
        try:
            message = _decode(raw)
        except msgspec.DecodeError:
            self.reject("stream", raw, MALFORMED_JSON, None)
            return []
        kind = message.get("type") if isinstance(message, dict) else None
        try:
            if kind == "l2update":
                return self._l2update(recv_ns, raw, message)
            if kind == "snapshot":
                self._snapshot(recv_ns, raw, message)
            elif kind == "ticker":
                self._ticker(recv_ns, raw, message)
            elif kind in ("match", "last_match"):
                self._match(recv_ns, raw, message)
            elif kind in ("subscriptions", "heartbeat"):
                self.absorb("subscription_ack" if kind == "subscriptions" else "heartbeat")
            elif kind == "error":
                self.reject("stream", raw, "venue_error", "message")
            else:
                self.reject("stream", raw, UNKNOWN_MESSAGE, "type")
        except FieldError as exc:
            self.reject("trades" if kind in ("match", "last_match") else "quotes", raw, exc.reason, exc.field)
        except (KeyError, IndexError, TypeError, AttributeError, ValueError):
            self.reject("trades" if kind in ("match", "last_match") else "quotes", raw, "malformed_record", None)
        return []

    def awaiting_snapshot(self) -> set[str]:
        return set(self.resyncing)

    def _snapshot(self, recv_ns: int, raw: bytes, m: dict) -> None:
        product = need(m, "product_id")
        symbol = self.symbol(product)
        book = OrderBook()
        try:
            book.load(levels_of(m.get("bids"), "bids"), levels_of(m.get("asks"), "asks"))
        except NegativeSize:
            raise FieldError("bids", "unparseable") from None
        self.books[product] = book
        self.resyncing.discard(product)
        self.tops.pop(product, None)
        self._emit(product, symbol, recv_ns, None, raw)

    def _l2update(self, recv_ns: int, raw: bytes, m: dict) -> list[str]:
        product = need(m, "product_id")
        symbol = self.symbol(product)
        book = self.books.get(product)
        if book is None:
            self.reject("quotes", raw, BOOK_RESYNC if product in self.resyncing else NO_SNAPSHOT, None)
            return []
        time = m.get("time")
        ts = None if time is None else iso_to_ns(time, "time")
        changes = need(m, "changes")
        bids, asks = [], []
        for change in changes:
            is_bid = _SIDES.get(change[0])
            if is_bid is None:
                raise FieldError("changes", "unparseable")
            (bids if is_bid else asks).append((number(change[1], "changes"), number(change[2], "changes")))
        try:
            book.apply(bids, asks)
        except NegativeSize:
            raise FieldError("changes", "unparseable") from None
        return self._emit(product, symbol, recv_ns, ts, raw)

    def _emit(self, product: str, symbol: str, recv_ns: int, ts: int | None, raw: bytes) -> list[str]:
        top = self.books[product].top()
        if top == self.tops.get(product):
            self.absorb(BOOK_UNCHANGED)
            return []
        if top.crossed():
            self.resync(product, "crossed_book", bid=top.bid, ask=top.ask)
            del self.books[product]
            self.tops.pop(product, None)
            self.resyncing.add(product)
            self.reject("quotes", raw, BOOK_RESYNC, "changes")
            return [product]
        self.tops[product] = top
        self.quote(recv_ns, ts, symbol, WS_BOOK, top, None, raw)
        return []

    def _ticker(self, recv_ns: int, raw: bytes, m: dict) -> None:
        symbol = self.symbol(need(m, "product_id"))
        time = m.get("time")  # the first ticker after subscribing has none
        top = Top(
            number(need(m, "best_bid"), "bid"),
            None if m.get("best_bid_size") is None else number(m["best_bid_size"], "bid_size"),
            number(need(m, "best_ask"), "ask"),
            None if m.get("best_ask_size") is None else number(m["best_ask_size"], "ask_size"),
        )
        seq = m.get("sequence")
        self.quote(
            recv_ns,
            None if time is None else iso_to_ns(time, "time"),
            symbol,
            BOOK_TICKER,
            top,
            None if seq is None else integer(seq, "sequence"),
            raw,
        )

    def _match(self, recv_ns: int, raw: bytes, m: dict) -> None:
        symbol = self.symbol(need(m, "product_id"))
        maker_side = need(m, "side")
        if maker_side not in _AGGRESSOR:
            raise FieldError("side", "unparseable")
        self.trade(
            recv_ns,
            iso_to_ns(need(m, "time"), "time"),
            symbol,
            number(need(m, "price"), "price"),
            number(need(m, "size"), "size"),
            _AGGRESSOR[maker_side],
            str(integer(m.get("trade_id"), "trade_id")),
            raw,
        )
