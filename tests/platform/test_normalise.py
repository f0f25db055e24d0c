import json
from datetime import UTC, datetime

import polars as pl
import pytest

from arbiter.platform.normalise import UnknownSymbol, canonical_symbol, quotes_from_simulator
from arbiter.platform.schema import QUOTES, conform
from arbiter.platform.sources.simulator import RAW_SCHEMA, SimulatorConfig, simulate_hour


@pytest.mark.parametrize(
    ("native", "canonical"),
    [
        ("BTCUSDT", "BTC-USDT"),
        ("XBT/USDT", "BTC-USDT"),
        ("XXBTZUSD", "BTC-USD"),
        ("btc-usd", "BTC-USD"),
        ("ETHBTC", "ETH-BTC"),
        ("SOL_USDC", "SOL-USDC"),
        ("XETHZEUR", "ETH-EUR"),
        ("BTCFDUSD", "BTC-FDUSD"),
    ],
)
def test_canonical_symbols(native, canonical):
    assert canonical_symbol(native) == canonical


def test_unsplittable_symbol_raises():
    with pytest.raises(UnknownSymbol):
        canonical_symbol("FOOBAR")


def _raw(rows: list[dict]) -> pl.DataFrame:
    base = {
        "recv_ns": 0,
        "venue": "binance",
        "market": "spot",
        "native_symbol": "BTCUSDT",
        "event_time": 1,
        "event_time_unit": "ms",
        "update_id": None,
        "bid_px": "1.00",
        "bid_qty": "1",
        "ask_px": "2.00",
        "ask_qty": "1",
    }
    return pl.DataFrame([{**base, **r} for r in rows], schema=RAW_SCHEMA)


def test_each_rule_quarantines_with_reason_and_field():
    raw = _raw(
        [
            {"recv_ns": 1, "update_id": 10},
            {"recv_ns": 2, "update_id": 12},
            {"recv_ns": 3, "update_id": 10},  # re-sent: duplicate
            {"recv_ns": 4, "update_id": 11},  # arrived after 12: late
            {"recv_ns": 5, "update_id": 13, "bid_px": "3.00"},  # crossed
            {"recv_ns": 6, "update_id": 14, "ask_qty": "n/a"},  # unparseable size
            {"recv_ns": 7, "update_id": 15, "native_symbol": "FOOBAR"},  # unknown symbol
            {"recv_ns": 8, "update_id": 16},
        ]
    )
    out = quotes_from_simulator(raw, partition="2026-11-20-03:00")
    assert out.rows["seq"].to_list() == [10, 12, 16]
    q = out.quarantine.sort("raw")
    got = {(r, f) for r, f in zip(q["reason"], q["field"], strict=True)}
    assert got == {
        ("duplicate", "seq"),
        ("out_of_order", "seq"),
        ("crossed_book", "bid"),
        ("unparseable", "ask_size"),
        ("unknown_symbol", "symbol"),
    }
    assert set(q["partition"]) == {"2026-11-20-03:00"} and set(q["target"]) == {"quotes"}
    late = next(json.loads(r) for r, reason in zip(q["raw"], q["reason"], strict=True) if reason == "out_of_order")
    assert late["update_id"] == 11 and late["ask_px"] == "2.00"  # the original record, intact


def test_timestamps_and_their_source():
    raw = _raw(
        [
            {"recv_ns": 2_000_000_000, "event_time": 1_500, "event_time_unit": "ms"},
            {
                "recv_ns": 3_000_000_000,
                "event_time": 2_500_000,
                "event_time_unit": "us",
                "venue": "coinbase",
                "native_symbol": "BTC-USDT",
            },
            {
                "recv_ns": 4_000_000_000,
                "event_time": None,
                "event_time_unit": None,
                "venue": "kraken",
                "native_symbol": "XBT/USDT",
            },
        ]
    )
    rows = quotes_from_simulator(raw).rows
    assert rows["ts"].dt.epoch("ns").to_list() == [1_500_000_000, 2_500_000_000, 4_000_000_000]
    assert rows["ts_source"].cast(pl.String).to_list() == ["venue", "venue", "receive"]
    assert rows["symbol"].cast(pl.String).to_list() == ["BTC-USDT"] * 3


def test_a_simulated_hour_loses_nothing_and_meets_the_contract():
    raw = simulate_hour(datetime(2026, 11, 20, 3, tzinfo=UTC), SimulatorConfig(rate_scale=0.3)).raw
    out = quotes_from_simulator(raw)
    assert out.rows.height + out.quarantine.height == raw.height
    assert set(out.reasons) == {"duplicate", "out_of_order", "crossed_book", "unparseable"}
    conform(out.rows, QUOTES, name="quotes", partition="p")  # raises on any contract violation
    assert not out.rows.select((pl.col("bid") >= pl.col("ask")).any()).item()
