"""A websocket server on loopback that plays a capture back as if it were the venue, for the live
client's tests and benchmarks (it binds 127.0.0.1 on a free port and never anything else).

The capture is one timeline shared by every connection: a client that reconnects picks up where
the venue has got to, as with a real venue. The server keeps the venue's own book state (a handler
of the same venue fed with everything the timeline contains), so it can answer what a venue
answers after a reconnect or a resync:

- Binance: the REST depth snapshot (``/api/v3/depth``, ``/fapi/v1/depth``) is served over HTTP by a
  ``FaultServer`` from the book as it stands at that moment; the capture's own snapshot lines seed
  that book and are never sent on the websocket;
- Kraken and Coinbase: a ``subscribe`` after the first connection (or a resubscribe of one pair)
  is answered with a book snapshot message built from that book.

Faults: ``drop_at`` closes the connection after that many timeline messages (each once);
``lose_on_drop`` timeline messages then pass while nobody is connected (they move the books but
are never sent); ``silent_connections`` connections get nothing at all (the heartbeat timeout).
What can go wrong: a capture that is not ``ns_lines``/cryptofeed raises ``CaptureFormatError``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Sequence
from urllib.parse import parse_qs

import msgspec
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from arbiter.platform.sources.exchange_rest.loopback import Action, FaultServer
from arbiter.platform.sources.stream.binance import BinanceHandler
from arbiter.platform.sources.stream.captures import (
    RECEIVED,
    CaptureFormatError,
    gunzip,
    read_records,
    recognise,
)
from arbiter.platform.sources.stream.coinbase import CoinbaseHandler
from arbiter.platform.sources.stream.kraken import KrakenHandler
from arbiter.platform.sources.stream.replay import new_handler

_decode = msgspec.json.Decoder().decode


def is_rest_snapshot(payload: bytes) -> bool:
    """A bare Binance REST depth body inside an ``ns_lines`` capture (not a stream message)."""
    return payload.startswith(b'{"lastUpdateId"')


def timeline(capture: bytes) -> list[tuple[int, bytes]]:
    """The received records of a capture (gzip or not) as ``(recv_ns, payload)``, in order."""
    data = gunzip(capture)
    fmt = recognise(data[:65536])
    if fmt is None:
        raise CaptureFormatError("replay server: the capture is neither '<ns> <json>' lines nor a cryptofeed log")
    return [(r.recv_ns, r.payload) for r in read_records(data, fmt) if r.kind == RECEIVED]


class ReplayServer:
    """``with ReplayServer(capture, "kraken") as server: ... server.url ...``; counts what it did."""

    def __init__(
        self,
        capture: bytes,
        venue: str,
        market: str = "spot",
        *,
        drop_at: Sequence[int] = (),
        lose_on_drop: int = 0,
        silent_connections: int = 0,
        pace: float | None = None,
    ):
        self.venue, self.market = venue, market
        self.records = timeline(capture)
        self.model = new_handler(venue, market, source="replay_server")
        self.drop_at, self.lose_on_drop = sorted(drop_at), lose_on_drop
        self.silent_connections, self.pace = silent_connections, pace
        self.position = 0  # the next timeline record
        self.connections = 0
        self.sent = 0  # websocket messages sent, synthesized snapshots included
        self.lost: list[bytes] = []  # timeline messages that passed while nobody was connected
        self.paths: list[str] = []  # request paths of the websocket connections
        self.received: list[dict] = []  # what clients sent (subscribe requests)
        self.snapshots_sent = 0
        self.finished = threading.Event()  # the whole timeline has been played
        self._lock = threading.Lock()  # the model is read by the HTTP thread
        self._channels: dict[str, int] = {}  # Kraken pair -> book channel id seen in the capture
        self.rest = FaultServer(answer=self._depth_answer) if isinstance(self.model, BinanceHandler) else None
        self.port = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"replay-{venue}")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def rest_url(self) -> str:
        if self.rest is None:
            raise ValueError(f"replay server: venue {self.venue!r} has no REST snapshot server")
        return self.rest.url

    # lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> ReplayServer:
        if self.rest is not None:
            self.rest.__enter__()
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("replay server did not start within 10 s")
        return self

    def __exit__(self, *exc) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        if self.rest is not None:
            self.rest.__exit__(*exc)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with serve(self._serve, "127.0.0.1", 0, max_size=None) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await self._stop.wait()

    # the timeline ----------------------------------------------------------------------------

    def _advance(self) -> bytes | None:
        """Apply the next timeline record to the model; its payload when it goes on the wire."""
        recv_ns, payload = self.records[self.position]
        self.position += 1
        with self._lock:
            self.model.on_message(recv_ns, payload)
        if isinstance(self.model, BinanceHandler) and is_rest_snapshot(payload):
            return None
        if isinstance(self.model, KrakenHandler) and payload.startswith(b"["):
            self._note_channel(payload)
        return payload

    def _note_channel(self, payload: bytes) -> None:
        message = _decode(payload)
        if isinstance(message[-2], str) and message[-2].startswith("book"):
            self._channels.setdefault(message[-1], message[0])

    async def _serve(self, ws: ServerConnection) -> None:
        self.connections += 1
        first = self.connections == 1
        self.paths.append(ws.request.path if ws.request else "")
        subscribed = asyncio.Event()
        reader = asyncio.create_task(self._read(ws, first, subscribed))
        try:
            if self.connections <= self.silent_connections:
                await ws.wait_closed()
                return
            if not isinstance(self.model, BinanceHandler):
                await subscribed.wait()  # Kraken and Coinbase send nothing until asked
            await self._play(ws)
        except ConnectionClosed:
            pass
        finally:
            reader.cancel()

    async def _play(self, ws: ServerConnection) -> None:
        previous_ns = None
        while self.position < len(self.records):
            if self.drop_at and self.position >= self.drop_at[0]:
                self.drop_at.pop(0)
                await ws.close(1012, "replay drop")  # a venue restarting: a clean close
                for _ in range(min(self.lose_on_drop, len(self.records) - self.position)):
                    payload = self._advance()
                    if payload is not None:
                        self.lost.append(payload)
                return
            recv_ns = self.records[self.position][0]
            if self.pace and previous_ns is not None and recv_ns > previous_ns:
                await asyncio.sleep((recv_ns - previous_ns) / 1e9 / self.pace)
            previous_ns = recv_ns
            payload = self._advance()
            if payload is not None:
                await ws.send(payload.decode())
                self.sent += 1
            if self.position == len(self.records):  # only once the last message is counted as sent
                self.finished.set()
        await ws.wait_closed()  # the timeline is over: stay connected, quiet, like an idle venue

    async def _read(self, ws: ServerConnection, first: bool, subscribed: asyncio.Event) -> None:
        """Answer what the client sends. A subscribe opens the stream; any subscribe but the very
        first (whose snapshot is in the capture) gets a book snapshot from the venue's books."""
        async for text in ws:
            try:
                request = json.loads(text)
            except ValueError:
                continue
            self.received.append(request)
            if (request.get("event") or request.get("type")) != "subscribe":
                continue
            if not (first and not subscribed.is_set()):
                for message in self._book_snapshots(request):
                    await ws.send(message)
                    self.sent += 1
                    self.snapshots_sent += 1
            subscribed.set()

    # what a venue answers --------------------------------------------------------------------

    def _book_snapshots(self, request: dict) -> list[str]:
        """Snapshot messages for the books a subscribe request asks for (Kraken ``book``,
        Coinbase ``level2``), from the venue's book as it stands."""
        out = []
        with self._lock:
            if isinstance(self.model, KrakenHandler) and request.get("subscription", {}).get("name") == "book":
                for pair in request.get("pair", []):
                    book = self.model.books.get(pair)
                    if book is None:
                        continue
                    stamp = f"{time.time():.6f}"
                    asks = [[*book.ask_text[p], stamp] for p in book.book.best_asks(book.depth)]
                    bids = [[*book.bid_text[p], stamp] for p in book.book.best_bids(book.depth)]
                    channel = self._channels.get(pair, 0)
                    out.append(json.dumps([channel, {"as": asks, "bs": bids}, f"book-{book.depth}", pair]))
            elif isinstance(self.model, CoinbaseHandler) and "level2" in request.get("channels", []):
                for product in request.get("product_ids", []):
                    book = self.model.books.get(product)
                    if book is None:
                        continue
                    bids = [[repr(p), repr(book.bids[p])] for p in book.best_bids(len(book.bids))]
                    asks = [[repr(p), repr(book.asks[p])] for p in book.best_asks(len(book.asks))]
                    out.append(json.dumps({"type": "snapshot", "product_id": product, "bids": bids, "asks": asks}))
        return out

    def _depth_answer(self, path: str, query: str) -> Action:
        """Binance REST depth: the model's book for ``symbol`` now, ``limit`` levels a side."""
        if not path.endswith("/depth"):
            return ("status", 404)
        args = parse_qs(query)
        symbol = (args.get("symbol") or [""])[0].upper()
        limit = int((args.get("limit") or ["1000"])[0])
        with self._lock:
            state = self.model.depth.get(symbol)
            if state is None or state.book is None:
                return ("status", 503)  # the venue has no book for it yet: the fetcher retries
            book = state.book
            body = {
                "lastUpdateId": state.last_id,
                "bids": [[repr(p), repr(book.bids[p])] for p in book.best_bids(limit)],
                "asks": [[repr(p), repr(book.asks[p])] for p in book.best_asks(limit)],
            }
        return ("ok", json.dumps(body).encode())
