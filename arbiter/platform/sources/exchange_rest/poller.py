"""Polling venues' public REST endpoints for a list of symbols, within each venue's published limit.

One shared ``Fetcher`` carries every request, so its per-venue token bucket and circuit breaker
hold across all callers. Each answer becomes a ``RawSnapshot`` (the URL without secrets, status,
the headers that matter, the receive time, and the format its parser reads), ready for
``exchange_rest.parse``. A venue that is down fails its own poll with an error naming it; the
other venues' polls go on (``poll_venues`` runs each venue in its own thread).

Published limits (public market data, per IP), with the token bucket we hold ourselves to:

| venue    | published limit                         | our bucket: rate, burst | source |
|----------|-----------------------------------------|-------------------------|--------|
| binance  | 6000 request weight per minute [1]      | 90 weight/s, 300        | [2]    |
| coinbase | 10 requests per second                  | 8.5 requests/s, 1       | [3]    |
| kraken   | about 1 request per second [4]          | 0.9 requests/s, 1       | [5]    |

[1] each endpoint costs its weight: bookTicker 2, depth (limit <= 100) 5, trades 25,
    historicalTrades 25, aggTrades 4, klines 2, exchangeInfo 20 (the ``weight`` in ``ENDPOINTS``)
[2] https://developers.binance.com/docs/binance-spot-api-docs/rest-api/limits and each endpoint's page
[3] https://docs.cdp.coinbase.com/advanced-trade/docs/rest-api-rate-limits (public endpoints)
[4] "calling the public endpoints at a frequency of 1 per second (or less) would remain within the
    rate limits"; no burst size is published, so we take none
[5] https://support.kraken.com/articles/206548367-what-are-the-api-rate-limits

The figures live once, in ``PUBLISHED_LIMITS``. Our bucket stays under the published figure even
where the venue counts in a sliding window: a bucket of rate r and burst B lets at most B + r * W
units through in any window W, and every row keeps that under the limit with room for network
jitter (Binance 300 + 90 * 60 = 5700 of 6000; Coinbase 1 + 8.5 = 9 whole requests of 10; Kraken
1 + 0.9 = 1 whole request of 1).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from arbiter.platform.sources.base import RawSnapshot
from arbiter.platform.sources.fetch import CircuitOpen, Fetcher, FetchError, VenueLimits


@dataclass(frozen=True)
class PublishedLimit:
    """A venue's published budget and the token bucket we hold ourselves to within it."""

    capacity: float  # units per window, as published
    window_s: float
    unit: str  # "weight" (Binance prices each endpoint) or "requests"
    rate: float  # our bucket: units per second ...
    burst: float  # ... and at most this many at once
    source: str
    weight_header: str | None = None  # the venue's report of the weight used in its window

    def venue_limits(self) -> VenueLimits:
        return VenueLimits(
            requests_per_s=self.rate,
            burst=int(self.burst),
            weight_header=self.weight_header,
            weight_capacity=int(self.capacity) if self.weight_header else None,
        )


PUBLISHED_LIMITS: dict[str, PublishedLimit] = {
    "binance": PublishedLimit(
        6000,
        60,
        "weight",
        rate=90,
        burst=300,
        source="https://developers.binance.com/docs/binance-spot-api-docs/rest-api/limits",
        weight_header="x-mbx-used-weight-1m",
    ),
    "coinbase": PublishedLimit(
        10,
        1,
        "requests",
        rate=8.5,
        burst=1,
        source="https://docs.cdp.coinbase.com/advanced-trade/docs/rest-api-rate-limits",
    ),
    "kraken": PublishedLimit(
        1,
        1,
        "requests",
        rate=0.9,
        burst=1,
        source="https://support.kraken.com/articles/206548367-what-are-the-api-rate-limits",
    ),
}

BASE_URLS = {
    "binance": "https://api.binance.com",
    "coinbase": "https://api.coinbase.com",
    "kraken": "https://api.kraken.com",
}


@dataclass(frozen=True)
class Endpoint:
    """One public endpoint: its path and query (``{symbol}``, ``{symbols}``, ``{start}``, ``{end}``
    are filled in), the format its parser reads, and its weight in the venue's budget."""

    format: str  # "<venue>/<endpoint>", as ``exchange_rest.recognise`` names it
    path: str
    params: Mapping[str, str] = field(default_factory=dict)
    weight: int = 1
    scope: str = "symbol"  # "symbol": one request each; "batch": one naming all; "venue": one, no symbol


ENDPOINTS: dict[str, dict[str, Endpoint]] = {
    "binance": {
        "book_ticker": Endpoint("binance/book_ticker", "/api/v3/ticker/bookTicker", {"symbol": "{symbol}"}, weight=2),
        "depth": Endpoint("binance/depth", "/api/v3/depth", {"symbol": "{symbol}", "limit": "100"}, weight=5),
        "trades": Endpoint("binance/trades", "/api/v3/trades", {"symbol": "{symbol}", "limit": "100"}, weight=25),
        "agg_trades": Endpoint("binance/agg_trades", "/api/v3/aggTrades", {"symbol": "{symbol}"}, weight=4),
        "klines": Endpoint(
            "binance/klines", "/api/v3/klines", {"symbol": "{symbol}", "interval": "1m", "limit": "60"}, weight=2
        ),
        "exchange_info": Endpoint("binance/exchange_info", "/api/v3/exchangeInfo", weight=20, scope="venue"),
    },
    "coinbase": {
        "ticker": Endpoint("coinbase/ticker", "/api/v3/brokerage/market/products/{symbol}/ticker", {"limit": "100"}),
        "product_book": Endpoint(
            "coinbase/product_book", "/api/v3/brokerage/market/product_book", {"product_id": "{symbol}", "limit": "10"}
        ),
        "candles": Endpoint(
            "coinbase/candles",
            "/api/v3/brokerage/market/products/{symbol}/candles",
            {"granularity": "ONE_MINUTE", "start": "{start}", "end": "{end}"},
        ),
        "products": Endpoint("coinbase/products", "/api/v3/brokerage/market/products", scope="venue"),
    },
    "kraken": {
        "ticker": Endpoint("kraken/ticker", "/0/public/Ticker", {"pair": "{symbols}"}, scope="batch"),
        "depth": Endpoint("kraken/depth", "/0/public/Depth", {"pair": "{symbol}", "count": "10"}),
        "trades": Endpoint("kraken/trades", "/0/public/Trades", {"pair": "{symbol}", "count": "100"}),
        "ohlc": Endpoint("kraken/ohlc", "/0/public/OHLC", {"pair": "{symbol}", "interval": "1"}),
        "asset_pairs": Endpoint("kraken/asset_pairs", "/0/public/AssetPairs", {"pair": "{symbols}"}, scope="batch"),
    },
}
# What a poll fetches when not told: top of book and recent trades (Coinbase's ticker holds both).
DEFAULT_ENDPOINTS = {"binance": ("book_ticker", "trades"), "coinbase": ("ticker",), "kraken": ("ticker", "trades")}
# Where each venue describes its markets (``instruments``: precision, tick and lot sizes).
METADATA_ENDPOINTS = {"binance": "exchange_info", "coinbase": "products", "kraken": "asset_pairs"}
CANDLE_WINDOW_S = 3600  # Coinbase candles need a time range: the last hour

# Kraken's own names for assets it spells differently (the reverse of normalise.ASSET_ALIASES).
KRAKEN_ASSETS = {"BTC": "XBT", "DOGE": "XDG"}


class UnknownVenue(ValueError):
    pass


class PollError(RuntimeError):
    """A venue's poll failed; the message names the venue. ``snapshots`` keeps what did arrive
    (nothing fetched is lost) and ``failures`` each request's error."""

    def __init__(self, message: str, snapshots: list[RawSnapshot], failures: list[FetchError]):
        super().__init__(message)
        self.snapshots, self.failures = snapshots, failures


def native_symbol(venue: str, symbol: str) -> str:
    """Canonical ``BASE-QUOTE`` in the venue's spelling: BTCUSDT (Binance), BTC-USD (Coinbase),
    XBTUSD (Kraken)."""
    base, sep, quote = symbol.upper().partition("-")
    if not sep:
        raise ValueError(f"venue {venue!r}: symbol {symbol!r} is not canonical BASE-QUOTE")
    if venue == "coinbase":
        return f"{base}-{quote}"
    if venue == "kraken":
        return KRAKEN_ASSETS.get(base, base) + KRAKEN_ASSETS.get(quote, quote)
    return base + quote


@dataclass(frozen=True)
class Request:
    venue: str
    url: str
    params: Mapping[str, str]
    format: str
    weight: int


def venue_limits(limits: Mapping[str, PublishedLimit] = PUBLISHED_LIMITS) -> dict[str, VenueLimits]:
    """The Fetcher's per-venue limits from the published table."""
    return {venue: limit.venue_limits() for venue, limit in limits.items()}


class Poller:
    """Builds and fetches the endpoint requests of each venue for a list of symbols.

    ``base_urls`` overrides where a venue is reached (tests point it at loopback); ``fetcher``
    defaults to one configured with the published limits.
    """

    def __init__(self, fetcher: Fetcher | None = None, base_urls: Mapping[str, str] | None = None):
        self.fetcher = fetcher or Fetcher(limits=venue_limits())
        self.base_urls = {**BASE_URLS, **(base_urls or {})}

    def requests(self, venue: str, symbols: Sequence[str], endpoints: Sequence[str] | None = None) -> list[Request]:
        """The requests one poll of ``venue`` makes, in order; raises ``UnknownVenue`` or a
        ``ValueError`` naming an endpoint or symbol the venue does not have."""
        if venue not in ENDPOINTS:
            raise UnknownVenue(f"venue {venue!r}: no REST endpoints known (known: {', '.join(ENDPOINTS)})")
        natives = [native_symbol(venue, s) for s in symbols]
        end = int(time.time())
        out = []
        for name in endpoints or DEFAULT_ENDPOINTS[venue]:
            endpoint = ENDPOINTS[venue].get(name)
            if endpoint is None:
                raise ValueError(f"venue {venue!r}: unknown endpoint {name!r} (known: {', '.join(ENDPOINTS[venue])})")
            fills = [{"symbol": s} for s in natives] if endpoint.scope == "symbol" else [{}]
            for fill in fills:
                values = {**fill, "symbols": ",".join(natives), "start": str(end - CANDLE_WINDOW_S), "end": str(end)}
                out.append(
                    Request(
                        venue,
                        self.base_urls[venue].rstrip("/") + endpoint.path.format(**values),
                        {k: v.format(**values) for k, v in endpoint.params.items()},
                        endpoint.format,
                        endpoint.weight,
                    )
                )
        return out

    def fetch(self, request: Request) -> RawSnapshot:
        """One request through the shared Fetcher, as a snapshot; raises ``FetchError`` naming the venue."""
        fetched = self.fetcher.get(request.venue, request.url, params=request.params, weight=request.weight)
        meta = {"format": request.format, "status": str(fetched.status), "attempts": str(fetched.attempts)}
        return RawSnapshot(
            source=f"{request.venue}_rest",
            origin=fetched.url,
            body=fetched.body,
            received_at=fetched.fetched_at,
            meta={**meta, **fetched.headers},
        )

    def poll(self, venue: str, symbols: Sequence[str], endpoints: Sequence[str] | None = None) -> list[RawSnapshot]:
        """Every request of one poll of ``venue``. A failed request does not stop the others, but
        an open circuit does (the venue is down: fail fast); either way ``PollError`` names the
        venue and carries what did arrive."""
        requests = self.requests(venue, symbols, endpoints)
        snapshots: list[RawSnapshot] = []
        failures: list[FetchError] = []
        for request in requests:
            try:
                snapshots.append(self.fetch(request))
            except CircuitOpen as exc:
                failures.append(exc)
                break
            except FetchError as exc:
                failures.append(exc)
        if failures:
            skipped = len(requests) - len(snapshots) - len(failures)
            raise PollError(
                f"venue {venue!r}: poll failed: {len(failures)} of {len(requests)} requests failed"
                + (f", {skipped} skipped" if skipped else "")
                + f"; first: {failures[0]}",
                snapshots,
                failures,
            )
        return snapshots

    def poll_venues(
        self, plan: Mapping[str, Sequence[str]], endpoints: Mapping[str, Sequence[str]] | None = None
    ) -> dict[str, list[RawSnapshot] | PollError]:
        """Poll each venue of ``plan`` (venue -> symbols) in its own thread: a venue that fails
        gets its ``PollError`` in the result while the others' snapshots arrive as usual."""

        def one(venue: str) -> list[RawSnapshot] | PollError:
            try:
                return self.poll(venue, plan[venue], (endpoints or {}).get(venue))
            except PollError as exc:
                return exc

        with ThreadPoolExecutor(max_workers=max(1, len(plan)), thread_name_prefix="poll") as pool:
            return dict(zip(plan, pool.map(one, plan), strict=True))
