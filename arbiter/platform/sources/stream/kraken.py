"""Kraken websocket API v1 into the data contract.

Channel messages are arrays ``[channelID, payload(, payload), channelName, pair]``:

- ``book-N``: a snapshot (``as``/``bs``) then updates (``a``/``b``; an entry
  ``[price, volume, time(, "r")]``, volume 0 removes the level, ``"r"`` marks a republished
  level, applied like any other). The book is kept at the subscribed depth N (Kraken does not
  say when a level falls out of it) and every update's CRC32 checksum ``c`` is verified over the
  top 10 levels, per Kraken's documented algorithm. A mismatch forces a resync: the book is
  discarded and its updates are quarantined as ``book_resync`` until a new snapshot arrives
  (the live client resubscribes the pair).
- ``ticker``: a ``book_ticker`` quote (``a``/``b`` are ``[price, whole lot volume, lot volume]``).
- ``trade``: one raw record per trade in the message; Kraken v1 trades carry no id, so
  ``trade_id`` is derived from the receive time and the trade's position in the message.

Events (``heartbeat``, ``systemStatus``, ``subscriptionStatus``) are absorbed; a failed
subscription is quarantined.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import msgspec

from arbiter.platform.sources.exchange_rest.records import FieldError
from arbiter.platform.sources.stream.books import OrderBook, Top
from arbiter.platform.sources.stream.captures import seconds_to_ns
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
    need,
    number,
)

_decode = msgspec.json.Decoder().decode
CHECKSUM_LEVELS = 10


def checksum_text(price: str, volume: str) -> str:
    """One level's part of the checksum input: each decimal without its '.' and leading zeros."""
    return price.replace(".", "").lstrip("0") + volume.replace(".", "").lstrip("0")


def checksum(asks: list[tuple[str, str]], bids: list[tuple[str, str]]) -> int:
    """Kraken's book checksum: CRC32 of the 10 best asks (lowest first) then the 10 best bids
    (highest first), each level as ``checksum_text``; compared with ``c`` as an unsigned int."""
    text = "".join(checksum_text(p, v) for p, v in asks[:CHECKSUM_LEVELS])
    text += "".join(checksum_text(p, v) for p, v in bids[:CHECKSUM_LEVELS])
    return zlib.crc32(text.encode("ascii"))


@dataclass
class KrakenBook:
    """A pair's book plus each level's text as Kraken sent it (the checksum is over the text)."""

    depth: int
    book: OrderBook = field(default_factory=OrderBook)
    bid_text: dict[float, tuple[str, str]] = field(default_factory=dict)
    ask_text: dict[float, tuple[str, str]] = field(default_factory=dict)
    top: Top | None = None

    def apply(self, levels: list[tuple[bool, float, float, str, str]]) -> None:
        """Apply parsed levels ``(is_bid, price, volume, price text, volume text)``."""
        for is_bid, price, volume, price_text, volume_text in levels:
            self.book.set_level(is_bid, price, volume)
            text = self.bid_text if is_bid else self.ask_text
            if volume:
                text[price] = (price_text, volume_text)
            else:
                text.pop(price, None)

    def keep_depth(self) -> None:
        dropped_bids, dropped_asks = self.book.truncate(self.depth)
        for price in dropped_bids:
            del self.bid_text[price]
        for price in dropped_asks:
            del self.ask_text[price]

    def checksum(self) -> int:
        asks = [self.ask_text[p] for p in self.book.best_asks(CHECKSUM_LEVELS)]
        bids = [self.bid_text[p] for p in self.book.best_bids(CHECKSUM_LEVELS)]
        return checksum(asks, bids)


class KrakenHandler(StreamHandler):
    venue = "kraken"

    def __init__(self, *, source: str, partition: str = "", market: str = "spot", venue: str = "kraken"):
        super().__init__(source=source, partition=partition, market=market, venue=venue)
        self.books: dict[str, KrakenBook] = {}  # pair -> book, present only once synced
        self.resyncing: set[str] = set()
        self.checksums_verified = 0

    def on_connect(self, recv_ns: int) -> None:
        self.books.clear()

    def awaiting_snapshot(self) -> set[str]:
        return set(self.resyncing)

    def on_message(self, recv_ns: int, raw: bytes) -> list[str]:
        self.records += 1
        try:
            message = _decode(raw)
        except msgspec.DecodeError:
            self.reject("stream", raw, MALFORMED_JSON, None)
            return []
        if isinstance(message, dict):
            self._event(raw, message)
            return []
        if not (isinstance(message, list) and len(message) >= 4 and isinstance(message[-2], str)):
            self.reject("stream", raw, UNKNOWN_MESSAGE, None)
            return []
        channel, pair, payloads = message[-2], message[-1], message[1:-2]
        target = "trades" if channel == "trade" else "quotes"
        try:
            if channel.startswith("book"):
                return self._book(recv_ns, raw, channel, pair, payloads)
            if channel == "ticker":
                self._ticker(recv_ns, raw, pair, payloads[0])
            elif channel == "trade":
                self._trades(recv_ns, raw, pair, payloads[0])
            else:
                self.reject("stream", raw, UNKNOWN_MESSAGE, "channelName")
        except FieldError as exc:
            self.reject(target, raw, exc.reason, exc.field)
        except (KeyError, IndexError, TypeError, AttributeError, ValueError):
            self.reject(target, raw, "malformed_record", None)
        return []

    def _event(self, raw: bytes, m: dict) -> None:
        event = m.get("event")
        if event == "heartbeat":
            self.absorb("heartbeat")
        elif event in ("systemStatus", "pong"):
            self.absorb("system_status")
        elif event == "subscriptionStatus":
            if m.get("status") == "error":
                self.reject("stream", raw, "subscription_error", "errorMessage")
            else:
                self.absorb("subscription_ack")
        else:
            self.reject("stream", raw, UNKNOWN_MESSAGE, "event")

    def _book(self, recv_ns: int, raw: bytes, channel: str, pair: str, payloads: list) -> list[str]:
        symbol = self.symbol(pair)
        if any("as" in p or "bs" in p for p in payloads):
            levels, _ = _levels(payloads, ("as", "bs"))
            book = KrakenBook(int(channel.rpartition("-")[2]) if "-" in channel else CHECKSUM_LEVELS)
            book.apply(levels)
            book.keep_depth()
            self.books[pair] = book
            self.resyncing.discard(pair)
            return self._emit(book, pair, symbol, recv_ns, None, raw)
        book = self.books.get(pair)
        if book is None:
            self.reject("quotes", raw, BOOK_RESYNC if pair in self.resyncing else NO_SNAPSHOT, None)
            return []
        levels, newest = _levels(payloads, ("a", "b"))  # parsed whole before the book changes
        expected = next((integer(p["c"], "c") for p in payloads if "c" in p), None)
        book.apply(levels)
        book.keep_depth()
        if expected is not None:
            got = book.checksum()
            if got != expected:
                return self._discard(pair, raw, "checksum_mismatch", c=expected, computed=got)
            self.checksums_verified += 1
        return self._emit(book, pair, symbol, recv_ns, newest, raw)

    def _emit(self, book: KrakenBook, pair: str, symbol: str, recv_ns: int, ts: int | None, raw: bytes) -> list[str]:
        top = book.book.top()
        if top == book.top:
            self.absorb(BOOK_UNCHANGED)
            return []
        if top.crossed():
            return self._discard(pair, raw, "crossed_book", bid=top.bid, ask=top.ask)
        book.top = top
        self.quote(recv_ns, ts, symbol, WS_BOOK, top, None, raw)
        return []

    def _discard(self, pair: str, raw: bytes, why: str, **ids) -> list[str]:
        self.resync(pair, why, **ids)
        del self.books[pair]
        self.resyncing.add(pair)
        self.reject("quotes", raw, BOOK_RESYNC, "c" if why == "checksum_mismatch" else "b")
        return [pair]

    def _ticker(self, recv_ns: int, raw: bytes, pair: str, t: dict) -> None:
        ask, bid = need(t, "a"), need(t, "b")
        top = Top(number(bid[0], "bid"), number(bid[2], "bid_size"), number(ask[0], "ask"), number(ask[2], "ask_size"))
        self.quote(recv_ns, None, self.symbol(pair), BOOK_TICKER, top, None, raw)

    def _trades(self, recv_ns: int, raw: bytes, pair: str, trades: list) -> None:
        symbol = self.symbol(pair)
        if not isinstance(trades, list) or not trades:
            raise FieldError("trades", "missing_field")
        self.records += len(trades) - 1  # each trade is a raw record of its own
        for i, t in enumerate(trades):
            try:
                side = {"b": "buy", "s": "sell"}.get(t[3])
                if side is None:
                    raise FieldError("side", "unparseable")
                ts = _seconds(t[2], "ts")
                price, size = number(t[0], "price"), number(t[1], "size")
            except FieldError as exc:
                self.reject("trades", raw, exc.reason, exc.field)
            except (IndexError, TypeError, KeyError):
                self.reject("trades", raw, "malformed_record", None)
            else:
                self.trade(recv_ns, ts, symbol, price, size, side, f"{recv_ns}:{i}", raw)


def _seconds(value, name: str) -> int:
    try:
        return seconds_to_ns(str(value))
    except ValueError:
        raise FieldError(name, "unparseable") from None


def _levels(payloads: list, keys: tuple[str, str]) -> tuple[list[tuple[bool, float, float, str, str]], int | None]:
    """Book entries of the payloads as ``(is_bid, price, volume, price text, volume text)``, asks
    first, and the newest entry time (ns). FieldError on an entry that is not two decimals and a
    time, or a negative volume."""
    levels, newest = [], None
    for payload in payloads:
        for key, is_bid in zip(keys, (False, True), strict=True):
            for entry in payload.get(key, ()):
                price, volume = number(entry[0], "price"), number(entry[1], "volume")
                if volume < 0:
                    raise FieldError("volume", "unparseable")
                ts = _seconds(entry[2], "time")
                newest = ts if newest is None else max(newest, ts)
                levels.append((is_bid, price, volume, entry[0], entry[1]))
    return levels, newest
