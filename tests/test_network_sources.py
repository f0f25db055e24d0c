"""Network sources through Dagster against venues on loopback: the current window polls and keeps
what it received byte for byte, re-normalising reads the stored window again, and an outage of one
venue fails that venue's partition (naming it) while another venue's partition succeeds."""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from arbiter.assets.partitions import CURRENT_HOURLY
from arbiter.platform.lake import Lake
from arbiter.platform.settings import Settings
from arbiter.platform.sources.exchange_rest.loopback import FaultServer
from arbiter.runner import materialize_selection
from tests.conftest import check_evaluations

REST = Path(__file__).parent / "data" / "rest" / "binance_spot"


def binance_from_samples(path: str, query: str) -> tuple:
    """Binance as recorded: the real bookTicker and trades responses of the samples."""
    files = {
        "/api/v3/ticker/bookTicker": "http_spot_market_book_ticker.json",
        "/api/v3/trades": "http_spot_market_trades.json",
        "/api/v3/exchangeInfo": "http_spot_market_exchange_info.json",
    }
    return ("ok", (REST / files[path]).read_bytes()) if path in files else ("status", 404)


def window(source: str, hour: str) -> str:
    return str(dg.MultiPartitionKey({"source": source, "hour": hour}))


@pytest.fixture
def venues(tmp_path, monkeypatch):
    with (
        FaultServer(answer=binance_from_samples) as binance,
        FaultServer(answer=lambda p, q: ("status", 503)) as coinbase,
    ):
        monkeypatch.setenv("ARBITER_LAKE", str(tmp_path / "lake"))
        monkeypatch.setenv("ARBITER_REST_SYMBOLS", "BTC-USDT")
        monkeypatch.setenv("ARBITER_REST_BASE_URLS", f"binance={binance.url},coinbase={coinbase.url}")
        yield Settings.from_env(), binance, coinbase


def test_polling_keeps_raw_bytes_and_normalises_the_window(venues):
    settings, binance, _ = venues
    instance = dg.DagsterInstance.ephemeral()
    hour = CURRENT_HOURLY.get_partition_key_for_timestamp(datetime.now(UTC).timestamp())
    outcomes = materialize_selection(
        "group:network_sources", partition=window("binance_rest", hour), settings=settings, instance=instance
    )
    assert [o.success for o in outcomes] == [True, True], [o.error for o in outcomes]
    lake = Lake(settings.lake)
    (part,) = lake.partitions("raw_snapshots")
    assert part["source"] == "binance_rest"
    raw = lake.read("raw_snapshots")
    recorded = (
        "http_spot_market_book_ticker.json",
        "http_spot_market_trades.json",
        "http_spot_market_exchange_info.json",
    )
    assert sorted(raw["body"].to_list()) == sorted((REST / name).read_bytes() for name in recorded)
    quotes, trades = lake.read("quotes"), lake.read("trades")
    assert quotes.height == 1 and quotes["symbol"][0] == "BTC-USDT" and quotes["venue"][0] == "binance"
    assert trades.height > 0 and set(trades["symbol"]) == {"BTC-USDT"}
    # The window's first poll fetched the venue's exchangeInfo too: its instruments vouch for the rows.
    assert binance.count() == 3 and binance.count("/api/v3/exchangeInfo") == 1
    assert "BTC-USDT" in lake.read("instruments").filter(venue="binance")["symbol"].to_list()
    assert outcomes[1].failed_checks == []
    ((_, vouched),) = check_evaluations(instance, "source_trades", "no_unknown_markets")
    assert vouched.passed

    # Re-normalising a stored window parses what it holds again: the same rows, nothing fetched.
    again = materialize_selection(
        "source_trades", partition=window("binance_rest", hour), settings=settings, instance=instance
    )
    assert all(o.success for o in again) and binance.count() == 3
    assert lake.read("trades").equals(trades)

    # Another poll of the window fetches market data only: the window already holds the metadata.
    (poll,) = materialize_selection(
        "source_snapshots", partition=window("binance_rest", hour), settings=settings, instance=instance
    )
    assert poll.success and binance.count() == 5 and binance.count("/api/v3/exchangeInfo") == 1


def test_an_outage_fails_only_that_venue(venues):
    settings, binance, coinbase = venues
    instance = dg.DagsterInstance.ephemeral()
    hour = CURRENT_HOURLY.get_partition_key_for_timestamp(datetime.now(UTC).timestamp())
    # Each poll's request fails (retried within its budget); after three failed fetches the
    # venue's circuit opens and the next poll fails fast without a request reaching the venue.
    errors = []
    for _ in range(4):
        (down,) = materialize_selection(
            "source_snapshots", partition=window("coinbase_rest", hour), settings=settings, instance=instance
        )
        assert not down.success and "coinbase" in down.error and window("coinbase_rest", hour) in down.error
        errors.append(down.error)
    assert ["circuit open" in e for e in errors] == [False, False, False, True]
    assert coinbase.count() == 3 * 4  # three polls of four attempts each, none after the circuit opened
    (up,) = materialize_selection(
        "source_snapshots", partition=window("binance_rest", hour), settings=settings, instance=instance
    )
    assert up.success, up.error and binance.count() == 3
