"""The REST poller against real HTTP servers on loopback: URLs built per venue and symbol, one
shared Fetcher holding each venue's published limit (by weight for Binance), snapshots that
parse, and an outage of one venue that fails only that venue's poll."""

import math
from pathlib import Path

import httpx
import pytest

from arbiter.platform.sources.exchange_rest import parse
from arbiter.platform.sources.exchange_rest.loopback import FaultServer, WindowLimit
from arbiter.platform.sources.exchange_rest.poller import (
    ENDPOINTS,
    PUBLISHED_LIMITS,
    Poller,
    PollError,
    native_symbol,
)
from arbiter.platform.sources.fetch import Fetcher, VenueLimits
from benchmarks.rest_soak import rest_soak

DATA = Path(__file__).parents[2] / "data" / "rest"
FAST = VenueLimits(requests_per_s=1000, burst=1000, timeout_s=1.0, attempts=2, backoff_s=0.01, backoff_max_s=0.02)
# Paths of each venue and the real sample answering them.
SAMPLES = {
    "/api/v3/ticker/bookTicker": "binance_spot/http_spot_market_book_ticker.json",
    "/api/v3/trades": "binance_spot/http_spot_market_trades.json",
    "/api/v3/brokerage/market/products/BTC-USD/ticker": "coinbase_advanced_trade/http_ticker.json",
    "/0/public/Ticker": "kraken/http_ticker.json",
    "/0/public/Trades": "kraken/http_trades.json",
}


@pytest.fixture
def venue():
    with FaultServer() as server:
        for path, file in SAMPLES.items():
            server.script(path, ("ok", (DATA / file).read_bytes()))
        yield server


def fast_fetcher(**overrides) -> Fetcher:
    limits = VenueLimits(**{**FAST.__dict__, **overrides})
    return Fetcher(limits=dict.fromkeys(("binance", "coinbase", "kraken"), limits))


def test_symbols_in_each_venues_spelling():
    assert [native_symbol(v, "BTC-USDT") for v in ("binance", "coinbase", "kraken")] == [
        "BTCUSDT",
        "BTC-USDT",
        "XBTUSDT",
    ]
    assert native_symbol("kraken", "DOGE-USD") == "XDGUSD"
    with pytest.raises(ValueError, match="venue 'binance': symbol 'BTCUSDT' is not canonical"):
        native_symbol("binance", "BTCUSDT")


def test_requests_per_venue_endpoint_and_symbol():
    poller = Poller(base_urls={"binance": "http://127.0.0.1:1", "kraken": "http://127.0.0.1:2/"})
    binance = poller.requests("binance", ["BTC-USDT", "ETH-USDT"])
    assert [(r.url, dict(r.params), r.weight) for r in binance] == [
        ("http://127.0.0.1:1/api/v3/ticker/bookTicker", {"symbol": "BTCUSDT"}, 2),
        ("http://127.0.0.1:1/api/v3/ticker/bookTicker", {"symbol": "ETHUSDT"}, 2),
        ("http://127.0.0.1:1/api/v3/trades", {"symbol": "BTCUSDT", "limit": "100"}, 25),
        ("http://127.0.0.1:1/api/v3/trades", {"symbol": "ETHUSDT", "limit": "100"}, 25),
    ]
    kraken = poller.requests("kraken", ["BTC-USD", "ETH-USD"], ["ticker", "ohlc"])
    assert [(r.url, dict(r.params)) for r in kraken] == [  # one Ticker call names every pair
        ("http://127.0.0.1:2/0/public/Ticker", {"pair": "XBTUSD,ETHUSD"}),
        ("http://127.0.0.1:2/0/public/OHLC", {"pair": "XBTUSD", "interval": "1"}),
        ("http://127.0.0.1:2/0/public/OHLC", {"pair": "ETHUSD", "interval": "1"}),
    ]
    (candles,) = poller.requests("coinbase", ["BTC-USD"], ["candles"])
    assert candles.url == "https://api.coinbase.com/api/v3/brokerage/market/products/BTC-USD/candles"
    assert int(candles.params["end"]) - int(candles.params["start"]) == 3600
    with pytest.raises(ValueError, match="venue 'kraken': unknown endpoint 'klines'"):
        poller.requests("kraken", ["BTC-USD"], ["klines"])


def test_published_limits_hold_even_in_a_sliding_window():
    for venue, limit in PUBLISHED_LIMITS.items():
        # At most burst + rate * window units pass in any window (whole requests for request-counted venues).
        most = limit.burst + limit.rate * limit.window_s
        assert (math.floor(most) if limit.unit == "requests" else most) <= limit.capacity, venue
        assert limit.burst >= max(e.weight for e in ENDPOINTS[venue].values()), venue  # every request can pass


def test_a_poll_returns_snapshots_ready_to_parse(venue):
    base = venue.url.replace("http://", "http://user:secret@")  # credentials in the URL never reach a snapshot
    poller = Poller(fast_fetcher(), base_urls={"binance": base, "coinbase": venue.url, "kraken": venue.url})
    snapshots = poller.poll("binance", ["BTC-USDT"])
    assert [s.origin for s in snapshots] == [
        f"{venue.url}/api/v3/ticker/bookTicker?symbol=BTCUSDT",
        f"{venue.url}/api/v3/trades?symbol=BTCUSDT&limit=100",
    ]
    first = snapshots[0]
    assert first.source == "binance_rest" and first.body == (DATA / SAMPLES["/api/v3/ticker/bookTicker"]).read_bytes()
    assert first.meta["status"] == "200" and first.meta["content-type"] == "application/json"
    assert first.meta["format"] == "binance/book_ticker" and first.received_at > 0
    assert [parse(s, "p").rows() for s in snapshots] == [{"quotes": 1}, {"trades": 10}]
    kraken = poller.poll("kraken", ["BTC-USDT"])
    assert [parse(s, "p").rows() for s in kraken] == [{"quotes": 1}, {"trades": 1000}]
    (coinbase,) = poller.poll("coinbase", ["BTC-USD"])
    assert parse(coinbase, "p").rows() == {"quotes": 1, "trades": 3}


def test_binance_requests_take_their_endpoint_weight_from_the_shared_bucket(venue):
    fetcher = fast_fetcher(requests_per_s=0.001, burst=100)  # no refill to speak of during the test
    poller = Poller(fetcher, base_urls={"binance": venue.url})
    poller.poll("binance", ["BTC-USDT"])  # bookTicker 2 + trades 25
    assert fetcher.bucket("binance")._tokens == pytest.approx(100 - 27, abs=0.01)
    other = Poller(fetcher, base_urls={"binance": venue.url})  # another caller shares the same budget
    other.poll("binance", ["BTC-USDT"], ["book_ticker"])
    assert fetcher.bucket("binance")._tokens == pytest.approx(100 - 29, abs=0.01)


def test_an_outage_of_one_venue_fails_its_poll_naming_it_while_the_others_go_on(venue):
    venue.script("/api/v3/ticker/bookTicker", ("status", 503))
    poller = Poller(fast_fetcher(failures_to_open=1, cooldown_s=60), base_urls=dict.fromkeys(ENDPOINTS, venue.url))
    plan = {"binance": ["BTC-USDT", "ETH-USDT"], "coinbase": ["BTC-USD"], "kraken": ["BTC-USDT"]}
    results = poller.poll_venues(plan)
    down = results["binance"]
    assert isinstance(down, PollError)
    assert str(down).startswith(
        "venue 'binance': poll failed: 2 of 4 requests failed, 2 skipped; first: venue 'binance'"
    )
    assert "HTTP 503" in str(down.failures[0]) and "circuit open" in str(down.failures[1])
    assert venue.count("/api/v3/ticker/bookTicker") == 2 and venue.count("/api/v3/trades") == 0  # fails fast
    assert [parse(s, "p").rows() for s in results["coinbase"]] == [{"quotes": 1, "trades": 3}]
    assert [s.meta["format"] for s in results["kraken"]] == ["kraken/ticker", "kraken/trades"]


def test_a_failed_request_keeps_what_did_arrive(venue):
    venue.script("/api/v3/trades", ("status", 404))  # not retried, and one failure does not open the circuit
    poller = Poller(fast_fetcher(failures_to_open=3), base_urls={"binance": venue.url})
    with pytest.raises(PollError, match=r"venue 'binance': poll failed: 1 of 2 requests failed; .*HTTP 404") as info:
        poller.poll("binance", ["BTC-USDT"])
    assert [s.meta["format"] for s in info.value.snapshots] == ["binance/book_ticker"]


def test_the_loopback_enforces_a_sliding_window_with_429_and_the_used_weight():
    limit = WindowLimit(50, 60, cost=lambda path, query: 20 if path == "/heavy" else 1, used_header="X-Used-Weight")
    with FaultServer(answer=lambda path, query: ("ok", b"{}"), limit=limit) as server, httpx.Client() as client:
        statuses = [client.get(f"{server.url}/heavy") for _ in range(3)]
        assert [r.status_code for r in statuses] == [200, 200, 429]
        assert [r.headers["x-used-weight"] for r in statuses] == ["20", "40", "40"]
        assert int(statuses[2].headers["retry-after"]) == 60  # until the first request leaves the window
        assert client.get(f"{server.url}/light").status_code == 200  # 41 of 50: a cheap one still fits
        assert (limit.rejected, limit.peak, server.count()) == (1, 41, 4)


def test_a_client_ignoring_the_limit_is_refused_by_the_loopback():
    """The soak's zero is meaningful: the same enforcement refuses a client without a limit."""
    limit = WindowLimit(10, 1.0)
    with FaultServer(answer=lambda path, query: ("ok", b"{}"), limit=limit) as server, httpx.Client() as client:
        codes = [client.get(server.url + "/x").status_code for _ in range(30)]
    assert codes.count(429) >= 10 and server.limit.rejected == codes.count(429)


def test_a_short_soak_stays_within_every_published_limit():
    figure = rest_soak(duration_s=3, symbols_per_venue=5)
    assert figure["value"] == 0 and figure["unit"] == "429 responses"
    for venue, tally in figure["venues"].items():
        assert tally["429"] == 0 and tally["fetch_errors"] == 0, venue
        assert tally["requests"] >= 3 and tally["snapshots"] == tally["requests"], venue
        assert tally["rows"] > 0 and tally["unaccounted_records"] == 0, venue
