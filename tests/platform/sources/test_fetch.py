"""Every fault a venue or proxy produces, injected by a real HTTP server on loopback, with the
stated outcome and the number of requests the server saw."""

import time

import pytest

from arbiter.platform.sources.exchange_rest.loopback import FaultServer
from arbiter.platform.sources.fetch import (
    CircuitOpen,
    Fetcher,
    FetchError,
    MalformedBody,
    UnexpectedContent,
    VenueLimits,
    redact,
)

OK = ("ok", b'{"ok": true}')
FAST = VenueLimits(requests_per_s=1000, burst=1000, timeout_s=0.5, attempts=4, backoff_s=0.01, backoff_max_s=0.05)


@pytest.fixture
def server():
    with FaultServer() as s:
        yield s


def fetcher(**overrides) -> Fetcher:
    return Fetcher(limits={"binance": VenueLimits(**{**FAST.__dict__, **overrides})})


def test_429_with_retry_after_waits_then_succeeds(server):
    url = server.script("/t", ("status", 429, {"Retry-After": "2"}), OK)
    start = time.monotonic()
    got = fetcher().get("binance", url)
    assert time.monotonic() - start >= 2.0  # the venue asked for two seconds: it got them
    assert (got.status, got.attempts, server.count("/t")) == (200, 2, 2)


def test_server_errors_twice_then_success(server):
    url = server.script("/t", ("status", 500), ("status", 502), OK)
    assert fetcher().get("binance", url).body == b'{"ok": true}'
    assert server.count("/t") == 3


def test_an_outage_fails_naming_the_venue_and_opens_the_circuit_until_recovery(server):
    url = server.script("/t", ("status", 503))
    f = fetcher(failures_to_open=1, cooldown_s=0.3)
    with pytest.raises(FetchError, match=r"venue 'binance': HTTP 503 .* after 4 attempts"):
        f.get("binance", url)
    assert server.count("/t") == 4  # within the retry budget
    with pytest.raises(CircuitOpen, match="venue 'binance'"):
        f.get("binance", url)
    assert server.count("/t") == 4  # an open circuit sends nothing
    other = server.script("/other", OK)
    assert f.get("kraken", other).status == 200  # other venues keep ingesting
    server.script("/t", OK)
    time.sleep(0.35)
    assert f.get("binance", url).status == 200  # recovery closes the circuit
    assert not f.breaker("binance").is_open


def test_a_hang_past_the_timeout_is_retried(server):
    url = server.script("/t", ("hang", 1.5, OK), OK)
    assert fetcher().get("binance", url).attempts == 2
    assert server.count("/t") == 2


def test_a_reset_connection_is_retried(server):
    url = server.script("/t", ("reset",), OK)
    assert fetcher().get("binance", url).attempts == 2


def test_a_truncated_body_is_retried_once_then_kept_for_quarantine(server):
    url = server.script("/t", ("truncate", b'{"price": "1.0'))
    with pytest.raises(MalformedBody, match="truncated body") as info:
        fetcher().get("binance", url)
    assert info.value.body == b'{"price": "1.0' and server.count("/t") == 2


def test_malformed_json_once_is_retried(server):
    url = server.script("/t", ("ok", b"{not json"), OK)
    assert fetcher().get("binance", url).attempts == 2
    persistent = server.script("/bad", ("ok", b"{not json"))
    with pytest.raises(MalformedBody, match="malformed JSON"):
        fetcher().get("binance", persistent)
    assert server.count("/bad") == 2


def test_an_html_page_with_status_200_is_not_data(server):
    url = server.script("/t", ("ok", b"<html>maintenance</html>", "text/html; charset=utf-8"))
    with pytest.raises(UnexpectedContent, match="got text/html"):
        fetcher().get("binance", url)
    assert server.count("/t") == 1


def test_the_rate_limit_is_shared_and_held(server):
    url = server.script("/t", OK)
    f = fetcher(requests_per_s=20, burst=2)
    for _ in range(12):
        f.get("binance", url)
    times = server.requests["/t"]
    # In any half second the server saw at most burst + rate * 0.5 requests.
    assert max(sum(1 for t in times if s <= t < s + 0.5) for s in times) <= 2 + 10 + 1


def test_the_venues_weight_header_drains_the_bucket(server):
    url = server.script("/t", ("ok", b"{}", "application/json", {"X-MBX-USED-WEIGHT-1M": "1200"}))
    f = fetcher(burst=10, weight_header="x-mbx-used-weight-1m", weight_capacity=1200)
    assert f.get("binance", url).headers["x-mbx-used-weight-1m"] == "1200"
    assert f.bucket("binance")._tokens < 1  # the venue's whole minute is used: we wait too


def test_urls_are_kept_without_secrets():
    assert redact("https://u:p@api.x.com/v3/order?symbol=BTCUSDT&signature=abc&apiKey=k") == (
        "https://api.x.com/v3/order?symbol=BTCUSDT"
    )
