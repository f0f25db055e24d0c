"""The live websocket client for Binance, Coinbase and Kraken public market data.

One ``LiveStream`` is one venue connection driving that venue's stream handler (``new_handler``):
it subscribes, feeds every message to ``handler.on_message`` and hands over the contract frames
from ``handler.drain()`` in batches. What it does about the network:

- reconnects with exponential backoff and jitter (a small loop, not tenacity: the wait depends on
  whether the last connection delivered anything, which a retry decorator does not see); each
  delay is ``min(backoff_max_s, backoff_s * 2**failures) * uniform(0.5, 1)``;
- protocol pings are answered by ``websockets``; venue heartbeats (Kraken ``heartbeat`` events,
  Coinbase's ``heartbeat`` channel) are messages like any other, so a connection that sends
  nothing for ``silence_timeout_s`` is dead and is replaced;
- on every connection ``handler.on_connect`` runs and the subscription is sent again;
- books the handler reports out of sequence are repaired: Binance from the REST depth snapshot
  (through ``Fetcher``, which retries and rate-limits), Coinbase and Kraken by resubscribing the
  symbol (the venue then sends a snapshot in-band).

Reconnects and resyncs are logged with venue and reason, and counted in ``stats``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import polars as pl
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from arbiter.platform.sources.fetch import Fetcher, FetchError
from arbiter.platform.sources.stream.binance import PERP, SPOT
from arbiter.platform.sources.stream.replay import new_handler

log = logging.getLogger("arbiter.stream.live")

WS_URLS = {
    ("binance", SPOT): "wss://stream.binance.com:9443",
    ("binance", PERP): "wss://fstream.binance.com",
    ("binance_us", SPOT): "wss://stream.binance.us:9443",
    ("coinbase", SPOT): "wss://ws-feed.exchange.coinbase.com",
    ("kraken", SPOT): "wss://ws.kraken.com",
}
REST_URLS = {
    ("binance", SPOT): "https://api.binance.com",
    ("binance", PERP): "https://fapi.binance.com",
    ("binance_us", SPOT): "https://api.binance.us",
}
DEPTH_PATHS = {SPOT: "/api/v3/depth", PERP: "/fapi/v1/depth"}
BINANCE_CHANNELS = ("bookTicker", "depth@100ms", "trade")
COINBASE_CHANNELS = ("level2", "ticker", "matches", "heartbeat")


class Silence(Exception):
    """The venue sent nothing, not even a heartbeat, for longer than the silence timeout."""


@dataclass
class LiveStats:
    messages: int = 0  # websocket messages received
    connects: int = 0  # connections opened
    connect_attempts: int = 0
    reconnects: int = 0  # connections lost (or refused) after which we tried again
    resyncs: int = 0  # book repairs asked for (REST snapshot or resubscribe)
    snapshots: int = 0  # REST depth snapshots fetched
    backoffs: list[float] = field(default_factory=list)  # each wait before reconnecting, s
    reasons: list[str] = field(default_factory=list)  # why each reconnect happened


class LiveStream:
    """One live connection to ``venue`` for ``symbols`` (native: ``BTCUSDT``, ``BTC-USD``, ``XBT/USD``)."""

    def __init__(
        self,
        venue: str,
        symbols: Sequence[str],
        *,
        market: str = SPOT,
        url: str | None = None,
        rest_url: str | None = None,
        fetcher: Fetcher | None = None,
        source: str = "live_stream",
        partition: str = "",
        silence_timeout_s: float = 30.0,
        open_timeout_s: float = 10.0,
        backoff_s: float = 0.5,
        backoff_max_s: float = 30.0,
        batch_messages: int = 1000,
        kraken_depth: int = 10,
        coinbase_channels: Sequence[str] = COINBASE_CHANNELS,
    ):
        if not symbols:
            raise ValueError(f"live stream {venue!r}: no symbols to subscribe")
        self.venue, self.market, self.symbols = venue, market, list(symbols)
        self.handler = new_handler(venue, market, source=source, partition=partition)
        base = url or WS_URLS.get((venue, market))
        if base is None:
            raise ValueError(f"live stream: no websocket URL known for venue {venue!r} market {market!r}")
        self.base_url = base.rstrip("/")
        self.rest_url = (rest_url or REST_URLS.get((venue, market), "")).rstrip("/")
        self.fetcher = fetcher
        self.silence_timeout_s, self.open_timeout_s = silence_timeout_s, open_timeout_s
        self.backoff_s, self.backoff_max_s = backoff_s, backoff_max_s
        self.batch_messages = batch_messages
        self.kraken_depth, self.coinbase_channels = kraken_depth, list(coinbase_channels)
        self.stats = LiveStats()
        self._wanted: dict[str, float] = {}  # Binance symbols whose snapshot fetch failed -> retry at

    # the subscription ------------------------------------------------------------------------

    def connect_url(self) -> str:
        """The URL to open: Binance names its streams in the URL, the others subscribe by message."""
        if self.venue.startswith("binance"):
            streams = "/".join(f"{s.lower()}@{channel}" for s in self.symbols for channel in BINANCE_CHANNELS)
            return f"{self.base_url}/stream?streams={streams}"
        return self.base_url

    def subscribe_messages(self, symbols: Sequence[str] | None = None, book_only: bool = False) -> list[str]:
        """The subscribe requests for ``symbols`` (all by default); ``book_only`` for a resync."""
        symbols = list(symbols or self.symbols)
        if self.venue == "kraken":
            book = {"event": "subscribe", "pair": symbols, "subscription": {"name": "book", "depth": self.kraken_depth}}
            if book_only:
                return [json.dumps(book)]
            others = [{"event": "subscribe", "pair": symbols, "subscription": {"name": n}} for n in ("ticker", "trade")]
            return [json.dumps(m) for m in (book, *others)]
        if self.venue == "coinbase":
            channels = ["level2"] if book_only else self.coinbase_channels
            return [json.dumps({"type": "subscribe", "product_ids": symbols, "channels": channels})]
        return []

    def unsubscribe_messages(self, symbols: Sequence[str]) -> list[str]:
        """Dropping a book subscription before asking again (Kraken refuses a duplicate subscribe)."""
        if self.venue == "kraken":
            book = {"name": "book", "depth": self.kraken_depth}
            return [json.dumps({"event": "unsubscribe", "pair": list(symbols), "subscription": book})]
        if self.venue == "coinbase":
            return [json.dumps({"type": "unsubscribe", "product_ids": list(symbols), "channels": ["level2"]})]
        return []

    # running ---------------------------------------------------------------------------------

    async def batches(
        self,
        *,
        duration_s: float | None = None,
        max_messages: int | None = None,
        until: Callable[[], bool] | None = None,
    ) -> AsyncIterator[dict[str, pl.DataFrame]]:
        """Contract frames as they come (a batch every ``batch_messages`` messages and whenever a
        connection ends), until ``duration_s`` passes, ``max_messages`` arrive or ``until()`` is
        true. At the end the handler is closed and the last batch holds what it quarantined."""
        deadline = None if duration_s is None else time.monotonic() + duration_s
        failures, since_drain = 0, 0

        def done() -> bool:
            return (
                (deadline is not None and time.monotonic() >= deadline)
                or (max_messages is not None and self.stats.messages >= max_messages)
                or (until is not None and until())
            )

        while not done():
            self.stats.connect_attempts += 1
            delivered = False
            try:
                async with connect(self.connect_url(), open_timeout=self.open_timeout_s, max_size=None) as ws:
                    self.stats.connects += 1
                    self.handler.on_connect(time.time_ns())
                    for message in self.subscribe_messages():
                        await ws.send(message)
                    while not done():
                        wait = self.silence_timeout_s
                        if deadline is not None:
                            wait = min(wait, max(0.0, deadline - time.monotonic()))
                        try:
                            raw = await asyncio.wait_for(ws.recv(decode=False), timeout=max(wait, 0.001))
                        except TimeoutError:
                            if deadline is not None and time.monotonic() >= deadline:
                                break
                            raise Silence(f"nothing for {self.silence_timeout_s} s") from None
                        delivered = True
                        self.stats.messages += 1
                        since_drain += 1
                        need = self.handler.on_message(time.time_ns(), raw)
                        if need or self._wanted:
                            await self._resync(ws, need)
                        if since_drain >= self.batch_messages:
                            since_drain = 0
                            if batch := self.handler.drain():
                                yield batch
                    else:
                        break
                    if deadline is not None and time.monotonic() >= deadline:
                        break
            except (ConnectionClosed, OSError, TimeoutError, InvalidHandshake, Silence) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            except InvalidURI:
                raise
            else:
                break
            if batch := self.handler.drain():
                since_drain = 0
                yield batch
            if done():
                break
            failures = 0 if delivered else failures + 1
            delay = min(self.backoff_max_s, self.backoff_s * 2**failures) * random.uniform(0.5, 1.0)
            self.stats.reconnects += 1
            self.stats.backoffs.append(delay)
            self.stats.reasons.append(reason)
            log.warning("stream reconnect: venue=%s reason=%s backoff=%.2fs", self.venue, reason, delay)
            await asyncio.sleep(delay)
        self.handler.close()
        if batch := self.handler.drain():
            yield batch

    async def collect(self, **stop) -> dict[str, pl.DataFrame]:
        """Every batch of ``batches(**stop)`` concatenated per table."""
        parts: dict[str, list[pl.DataFrame]] = {}
        async for batch in self.batches(**stop):
            for table, frame in batch.items():
                parts.setdefault(table, []).append(frame)
        return {table: pl.concat(frames) for table, frames in parts.items()}

    def run(
        self,
        duration_s: float | None = None,
        max_messages: int | None = None,
        until: Callable[[], bool] | None = None,
        on_batch: Callable[[dict[str, pl.DataFrame]], None] | None = None,
    ) -> dict[str, pl.DataFrame]:
        """From sync code: stream until a stop condition, calling ``on_batch`` per batch when given
        (then nothing is kept), else returning every frame collected."""
        if duration_s is None and max_messages is None and until is None:
            raise ValueError(f"live stream {self.venue!r}: run needs duration_s, max_messages or until")

        async def main() -> dict[str, pl.DataFrame]:
            if on_batch is None:
                return await self.collect(duration_s=duration_s, max_messages=max_messages, until=until)
            async for batch in self.batches(duration_s=duration_s, max_messages=max_messages, until=until):
                on_batch(batch)
            return {}

        return asyncio.run(main())

    # books -----------------------------------------------------------------------------------

    async def _resync(self, ws, symbols: list[str]) -> None:
        """Repair the books of ``symbols``: Binance by REST snapshot, the others by resubscribing."""
        if not self.venue.startswith("binance"):
            self.stats.resyncs += len(symbols)
            log.warning("stream resync: venue=%s symbols=%s reason=resubscribe", self.venue, ",".join(symbols))
            for message in (*self.unsubscribe_messages(symbols), *self.subscribe_messages(symbols, book_only=True)):
                await ws.send(message)
            return
        now = time.monotonic()
        queue = list(dict.fromkeys([*symbols, *(s for s, at in self._wanted.items() if at <= now)]))
        while queue:
            symbol = queue.pop(0)
            self._wanted.pop(symbol, None)
            self.stats.resyncs += 1
            log.warning("stream resync: venue=%s symbol=%s reason=rest_snapshot", self.venue, symbol)
            try:
                body = await asyncio.to_thread(self._fetch_depth, symbol)
            except FetchError as exc:
                log.warning("stream snapshot failed: venue=%s symbol=%s reason=%s", self.venue, symbol, exc)
                self._wanted[symbol] = time.monotonic() + 1.0  # try again on a later message
                continue
            self.stats.snapshots += 1
            queue.extend(s for s in self.handler.on_snapshot(time.time_ns(), symbol, body) if s not in queue)

    def _fetch_depth(self, symbol: str) -> bytes:
        if not self.rest_url:
            raise FetchError(f"venue {self.venue!r}: no REST URL for depth snapshots")
        if self.fetcher is None:
            self.fetcher = Fetcher()
        url = self.rest_url + DEPTH_PATHS.get(self.market, DEPTH_PATHS[SPOT])
        return self.fetcher.get(self.venue, url, params={"symbol": symbol.upper(), "limit": "1000"}).body
