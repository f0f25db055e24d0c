"""Replaying captures through the venue handlers: which handler a capture needs, and the loop that
feeds it every record in order.

A capture is one connection (or, for cryptofeed's ``.http.`` files, the REST requests made beside
it). Which venue and market it is comes from, in order: the snapshot's ``meta`` (``venue``,
``market``), the URL the capture names, the file name, the messages themselves.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from urllib.parse import parse_qs, urlsplit

from arbiter.platform.sources.base import Parsed, RawSnapshot, merge
from arbiter.platform.sources.stream.binance import PERP, SPOT, BinanceHandler
from arbiter.platform.sources.stream.captures import (
    BAD,
    CONFIG,
    CONNECT,
    NS_LINES,
    REST,
    SENT,
    CaptureFormatError,
    Record,
    gunzip,
    read_records,
    recognise,
)
from arbiter.platform.sources.stream.coinbase import CoinbaseHandler
from arbiter.platform.sources.stream.handler import StreamHandler
from arbiter.platform.sources.stream.kraken import KrakenHandler

# host -> (venue, market) for the websocket and REST hosts captures name
HOSTS = {
    "stream.binance.com": ("binance", SPOT),
    "api.binance.com": ("binance", SPOT),
    "data-stream.binance.vision": ("binance", SPOT),
    "fstream.binance.com": ("binance", PERP),
    "fapi.binance.com": ("binance", PERP),
    "stream.binance.us": ("binance_us", SPOT),
    "api.binance.us": ("binance_us", SPOT),
    "ws-feed.pro.coinbase.com": ("coinbase", SPOT),
    "ws-feed.exchange.coinbase.com": ("coinbase", SPOT),
    "api.pro.coinbase.com": ("coinbase", SPOT),
    "api.exchange.coinbase.com": ("coinbase", SPOT),
    "ws.kraken.com": ("kraken", SPOT),
    "api.kraken.com": ("kraken", SPOT),
}
HANDLERS: dict[str, type[StreamHandler]] = {
    "binance": BinanceHandler,
    "binance_us": BinanceHandler,
    "coinbase": CoinbaseHandler,
    "kraken": KrakenHandler,
}
# File-name hints for captures that name no URL (ns_lines): USD-M futures files say so.
HEAD_BYTES = 65536  # how much of a capture is looked at to tell its format and venue
_PERP_HINTS = ("usdm", "usd-m", "futures", "perp", "fapi", "fstream")


def new_handler(venue: str, market: str, *, source: str, partition: str = "") -> StreamHandler:
    """A fresh handler for one connection to ``venue``'s ``market``."""
    if venue not in HANDLERS:
        raise CaptureFormatError(f"no stream handler for venue {venue!r} (known: {', '.join(HANDLERS)})")
    return HANDLERS[venue](source=source, partition=partition, market=market, venue=venue)


def venue_of_url(url: str) -> tuple[str, str] | None:
    return HOSTS.get(urlsplit(url).hostname or "")


def identify(snapshot: RawSnapshot, partition: str, fmt: str, head: bytes, urls: Iterable[str]) -> tuple[str, str]:
    """(venue, market) of a capture; CaptureFormatError naming source, partition and origin when
    it cannot be told."""
    venue, market = snapshot.meta.get("venue"), snapshot.meta.get("market")
    if venue and market:
        return venue, market
    for url in urls:
        found = venue_of_url(url)
        if found:
            return venue or found[0], market or found[1]
    if fmt == NS_LINES and (b'"e":"depthUpdate"' in head or b'"stream":"' in head or b"lastUpdateId" in head):
        name = snapshot.origin.lower()
        perp = any(hint in name for hint in _PERP_HINTS) or b'"pu":' in head or b'"e":"bookTicker"' in head
        return venue or "binance", market or (PERP if perp else SPOT)
    raise CaptureFormatError(
        f"source {snapshot.source!r}, partition {partition!r}, field 'venue': cannot tell the venue of "
        f"{snapshot.origin!r}; pass meta venue= and market="
    )


def capture_format(snapshot: RawSnapshot, partition: str, data: bytes) -> str:
    fmt = recognise(data[:HEAD_BYTES], snapshot.origin)
    if fmt is None:
        raise CaptureFormatError(
            f"source {snapshot.source!r}, partition {partition!r}, field 'body': {snapshot.origin!r} is not a "
            "websocket capture (neither '<ns> <json>' lines nor a cryptofeed log)"
        )
    return fmt


def feed(handler: StreamHandler, record: Record) -> None:
    """Give one capture record to its handler."""
    if record.kind == CONNECT:
        handler.on_connect(record.recv_ns)
        handler.note("connect")
    elif record.kind == SENT:
        handler.note("sent_request")
    elif record.kind == CONFIG:
        handler.note("capture_config")
    elif record.kind == BAD:
        handler.records += 1
        handler.reject("stream", record.payload, "malformed_line", None)
    elif record.kind == REST:
        symbol = depth_snapshot_symbol(record.url or "")
        if symbol and isinstance(handler, BinanceHandler):
            handler.on_snapshot(record.recv_ns, symbol, record.payload)
        else:
            handler.note("reference_data")  # products, asset pairs: not market events
    else:
        handler.on_message(record.recv_ns, record.payload)


def depth_snapshot_symbol(url: str) -> str | None:
    """The symbol of a Binance REST depth request (``.../depth?symbol=BTCUSDT``), else None."""
    parts = urlsplit(url)
    if not parts.path.endswith("/depth"):
        return None
    symbols = parse_qs(parts.query).get("symbol")
    return symbols[0].upper() if symbols else None


def replay(snapshot: RawSnapshot, partition: str, data: bytes | None = None) -> Parsed:
    """One capture file through a fresh handler, record by record (the reference path).
    ``data``: the body already decompressed, when the caller has it."""
    data = gunzip(snapshot.body) if data is None else data
    fmt = capture_format(snapshot, partition, data)
    records = list(read_records(data, fmt))
    venue, market = identify(snapshot, partition, fmt, data[:HEAD_BYTES], (r.url for r in records[:1] if r.url))
    handler = new_handler(venue, market, source=snapshot.source, partition=partition)
    if isinstance(handler, BinanceHandler):
        handler.snapshot_symbol = snapshot.meta.get("symbol")
    for record in records:
        feed(handler, record)
    handler.close()
    return handler.parsed()


def replay_together(snapshots: Sequence[RawSnapshot], partition: str) -> Parsed:
    """Several captures of one session replayed in receive-time order, each connection with its
    own handler; REST depth snapshots (cryptofeed ``.http.`` files) go to the connection of the
    same venue and market that streams that symbol, so its book can be built."""
    streams: list[tuple[list[Record], StreamHandler, tuple[str, str]]] = []
    for snapshot in snapshots:
        data = gunzip(snapshot.body)
        fmt = capture_format(snapshot, partition, data)
        records = list(read_records(data, fmt))
        key = identify(snapshot, partition, fmt, data[:HEAD_BYTES], (r.url for r in records[:1] if r.url))
        handler = new_handler(*key, source=snapshot.source, partition=partition)
        streams.append((records, handler, key))
    ws_handlers = [(key, handler) for records, handler, key in streams if any(r.kind != REST for r in records[:50])]

    def route(record: Record, own: StreamHandler, key: tuple[str, str]) -> StreamHandler:
        if record.kind != REST:
            return own
        symbol = depth_snapshot_symbol(record.url or "")
        candidates = [h for k, h in ws_handlers if k == key and isinstance(h, BinanceHandler)]
        streaming = [h for h in candidates if symbol in h.depth]
        return (streaming or candidates or [own])[0]

    merged = heapq.merge(
        *(((r.recv_ns, i, r) for r in records) for i, (records, _, _) in enumerate(streams)),
        key=lambda item: (item[0], item[1]),
    )
    for _, i, record in merged:
        _, own, key = streams[i]
        feed(route(record, own, key), record)
    parts = []
    for _, handler, _ in streams:
        handler.close()
        parts.append(handler.parsed())
    return merge(parts)
