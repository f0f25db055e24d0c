"""Opportunities valued by hand: fills after latency on the venues' own clocks, the close at the
horizon, four taker fees; a quote received late is not a price; the future moves outcomes only."""

from __future__ import annotations

import polars as pl
import pytest

from arbiter.platform import features
from arbiter.platform.opportunities import OutcomeConfig, opportunities

S = 1_000_000_000
FEES = {("alpha", "spot"): 0.001, ("beta", "spot"): 0.001}


def quote(venue: str, t: float, bid: float, ask: float, recv: float | None = None) -> dict:
    return {
        "ts": int(t * S),
        "ts_source": "venue",
        "recv_ts": int((t if recv is None else recv) * S),
        "venue": venue,
        "market": "spot",
        "symbol": "BTC-USDT",
        "channel": "book_ticker",
        "bid": bid,
        "ask": ask,
        "bid_size": 1.0,
        "ask_size": 2.0,
        "seq": None,
    }


def frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows).with_columns(
        pl.col("ts", "recv_ts").cast(pl.Datetime("ns", "UTC")), pl.col("seq").cast(pl.Int64)
    )


CONFIG = OutcomeConfig(latency_ms=500, horizon_ms=2_000)


def value(rows: list[dict], config: OutcomeConfig = CONFIG) -> pl.DataFrame:
    quotes = frame(rows)
    pairs = features.pair_features(quotes, FEES)
    return opportunities(pairs.frame, features.prepare_quotes(quotes).accepted, FEES, config)


def book() -> list[dict]:
    return [
        quote("alpha", 0.0, 100.0, 100.1),
        quote("beta", 0.1, 100.0, 100.1),
        quote("beta", 1.0, 101.0, 101.1),  # beta rich: buy alpha at its ask, sell beta at its bid
        quote("alpha", 1.2, 100.2, 100.3),  # alpha when our orders arrive (1.0 + 0.5 s latency)
        quote("beta", 1.3, 100.9, 101.0),
        quote("alpha", 3.0, 100.5, 100.6),  # both at the close (1.5 + 2 s horizon)
        quote("beta", 3.1, 100.5, 100.6),
        quote("alpha", 9.0, 100.5, 100.6),  # the data reaches past the exit
        quote("beta", 9.0, 100.5, 100.6),
    ]


def test_a_round_trip_by_hand():
    rows = value(book())
    first = rows.row(0, named=True)
    assert first["decision_ts"].timestamp() == pytest.approx(1.0)
    # 101.0 - 100.1 = 0.9 gross at the sight, minus 2 x 10 bps: net ~ 69.9 bps
    assert first["net_spread_bps"] == pytest.approx(1e4 * 0.9 / 100.55 - 20.0)
    assert (first["buy_entry"], first["sell_entry"]) == (100.3, 100.9)  # the books 0.5 s later
    assert (first["buy_exit"], first["sell_exit"]) == (100.5, 100.6)  # and 2 s after that
    gross = 1e4 * ((100.9 - 100.3) + (100.5 - 100.6)) / 100.3
    fees = 1e4 * 0.001 * (100.3 + 100.5 + 100.9 + 100.6) / 100.3
    assert first["gross_pnl_bps"] == pytest.approx(gross)
    assert first["net_pnl_bps"] == pytest.approx(gross - fees)
    assert first["depth_notional"] == pytest.approx(min(100.3 * 2.0, 100.9 * 1.0))
    assert (rows.get_column("net_spread_bps") > 0).all()


def test_a_quote_received_late_is_not_a_fill_price():
    """alpha's update at venue time 1.2 s reaches us only at 5 s: we decided without it, but our
    order at 1.5 s meets it on alpha's book."""
    late = [
        q if not (q["venue"] == "alpha" and q["ts"] == int(1.2 * S)) else quote("alpha", 1.2, 100.2, 100.3, 5.0)
        for q in book()
    ]
    first = value(sorted(late, key=lambda q: q["recv_ts"])).row(0, named=True)
    assert first["buy_entry"] == 100.3


def test_the_future_changes_outcomes_but_never_features():
    base = value(book())
    shifted = [
        dict(q, bid=q["bid"] - 0.4, ask=q["ask"] - 0.4) if q["ts"] > 1.0 * S and q["venue"] == "alpha" else q
        for q in book()
    ]
    moved = value(shifted).filter(pl.col("decision_ts") == base.get_column("decision_ts")[0])
    assert moved.select(features.PAIR_FEATURES).row(0) == base.select(features.PAIR_FEATURES).row(0)
    assert moved.get_column("net_pnl_bps")[0] != base.get_column("net_pnl_bps")[0]


def test_an_exit_beyond_the_data_is_unknown_not_guessed():
    # the data now ends at 3.6 s: after the first decision's exit (3.5 s), before the next ones'
    rows = value([*book()[:-2], quote("alpha", 3.6, 100.5, 100.6), quote("beta", 3.6, 100.5, 100.6)])
    assert rows.get_column("net_pnl_bps").null_count() > 0
    assert rows.get_column("net_pnl_bps")[0] is not None
