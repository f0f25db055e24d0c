"""Features: batch (Polars) and incremental (ring buffers) agree on simulated and captured quotes,
never look ahead, and give the values worked out by hand on a few quotes."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from arbiter.platform import features as F
from arbiter.platform.normalise import quotes_from_simulator
from arbiter.platform.schema import DOCUMENT_EVENTS, QUOTES
from arbiter.platform.sources.base import RawSnapshot
from arbiter.platform.sources.simulator import SimulatorConfig, instruments, simulate_hour
from arbiter.platform.sources.stream import parse

HOUR = datetime(2026, 1, 1, tzinfo=UTC)
CAPTURE = Path(__file__).parents[1] / "data" / "stream" / "binance_20240808"
CAPTURE_FEES = "binance:spot=0.00023,binance:linear_perp=0.00017"
T0 = datetime(2026, 3, 1, tzinfo=UTC)
QUOTE_SCHEMA = pl.from_arrow(QUOTES.empty_table()).schema


@cache
def simulated() -> pl.DataFrame:
    return quotes_from_simulator(simulate_hour(HOUR, SimulatorConfig(rate_scale=0.3)).raw).rows


@cache
def captured() -> pl.DataFrame:
    frames = []
    for path in sorted(CAPTURE.glob("*.gz")):
        snapshot = RawSnapshot(source="capture", origin=str(path), body=path.read_bytes(), received_at=0, meta={})
        frames.append(parse(snapshot, "2024-08-08").frames["quotes"])
    return pl.concat(frames).filter(pl.col("channel") == "book_ticker")


def simulated_blocking() -> pl.DataFrame:
    """Kraken BTC transfers blocked for ten minutes, and Coinbase USDT from 00:50 on (open-ended)."""
    return pl.DataFrame(
        {
            "venue": ["kraken", "coinbase"],
            "asset": ["BTC", "USDT"],
            "start": [HOUR + timedelta(minutes=10), HOUR + timedelta(minutes=50)],
            "end": [HOUR + timedelta(minutes=20), None],
        },
        schema={
            "venue": pl.String,
            "asset": pl.String,
            "start": pl.Datetime("ns", "UTC"),
            "end": pl.Datetime("ns", "UTC"),
        },
    )


def replay(quotes: pl.DataFrame, fees, blocking=None):
    """The incremental path tick by tick: its pair rows and each updated market's features."""
    engine = F.FeatureEngine(fees, blocking)
    accepted = F.prepare_quotes(quotes).accepted
    ticks = accepted.select(
        "venue", "market", "symbol", pl.col("ts", "recv_ts").cast(pl.Int64), "bid", "ask", "bid_size", "ask_size"
    )
    pair_rows, market_rows = [], []
    for tick in ticks.iter_rows():
        pair_rows.extend(engine.update(*tick))
        market_rows.append(engine.markets[tick[:3]].features_at(tick[4]))
    markets = pl.DataFrame(market_rows, schema=dict.fromkeys(F.MARKET_FEATURES, pl.Float64), orient="row")
    # Batch rows come grouped by (symbol, pair), each pair in decision order; the engine emits by tick.
    pairs = F.rows_frame(pair_rows).sort("symbol", "pair", maintain_order=True)
    return engine, pairs, markets


def assert_close(batch: pl.DataFrame, live: pl.DataFrame, rel: float = 1e-9) -> None:
    """Same shape, equal keys, equal nulls, and relative error <= rel on every float column."""
    assert batch.columns == live.columns
    assert batch.height == live.height
    for name in batch.columns:
        b, c = batch.get_column(name), live.get_column(name)
        if b.dtype != pl.Float64:
            assert (b == c).all(), name
            continue
        assert (b.is_null() == c.is_null()).all(), f"{name}: nulls differ"
        x, y = b.drop_nulls().to_numpy(), c.drop_nulls().to_numpy()
        scale = np.maximum(np.abs(x), np.abs(y))
        err = np.where(x == y, 0.0, np.abs(x - y) / np.where(scale > 0, scale, 1.0))
        assert err.max(initial=0.0) <= rel, f"{name}: relative error {err.max()}"


def test_parity_on_a_simulated_hour_with_blocking_windows():
    quotes, fees, blocking = simulated(), F.fee_table(instruments()), simulated_blocking()
    batch = F.pair_features(quotes, fees, blocking)
    _, live, live_markets = replay(quotes, fees, blocking)
    assert batch.rejected.height == 0
    assert batch.frame.height > 100_000
    assert batch.frame.get_column("symbol").n_unique() == 3
    assert batch.frame.get_column("pair").n_unique() == 18  # four markets per symbol, three symbols
    assert_close(batch.frame, live)
    market = F.market_features(quotes)
    assert_close(market.select(F.MARKET_FEATURES), live_markets)
    # The windows did something, where they should: only cross-venue pairs touching the venue.
    blocked = batch.frame.filter(pl.col("can_move_funds") == 0.0)
    assert blocked.height > 0
    assert blocked.filter(~pl.col("pair").str.contains("kraken|coinbase")).height == 0
    assert blocked.filter(pl.col("venue_a") == pl.col("venue_b")).height == 0
    assert (
        blocked.filter(pl.col("symbol") != "BTC-USDT", pl.col("decision_ts") < HOUR + timedelta(minutes=50)).height == 0
    )
    coinbase_late = batch.frame.filter(
        pl.col("pair").str.contains("coinbase"), pl.col("decision_ts") >= HOUR + timedelta(minutes=50)
    )
    assert coinbase_late.height > 0 and (coinbase_late.get_column("can_move_funds") == 0.0).all()


def test_parity_on_the_binance_spot_versus_perpetual_capture():
    quotes, fees = captured(), F.fee_table(None, CAPTURE_FEES)
    batch = F.pair_features(quotes, fees)
    _, live, live_markets = replay(quotes, fees)
    frame = batch.frame
    assert frame.get_column("pair").unique().to_list() == ["BTC-USDT binance:linear_perp|binance:spot"]
    both_quoted = quotes.group_by("market").agg(pl.col("recv_ts").min()).get_column("recv_ts").max()
    assert frame.height == quotes.filter(pl.col("recv_ts") >= both_quoted).height  # once both legs quote
    assert (frame.get_column("fee_bps") == 4.0).all()
    assert (frame.get_column("can_move_funds") == 1.0).all()  # same venue
    assert frame.get_column("buy_ret_bps").null_count() > 0  # the first second has no return
    assert_close(frame, live)
    assert_close(F.market_features(quotes).select(F.MARKET_FEATURES), live_markets)


def test_features_do_not_see_the_future():
    quotes = simulated()
    # Kraken BTC sends only rest tickers until t0; the altered future adds its book_ticker feed.
    kraken_btc = (pl.col("venue") == "kraken") & (pl.col("symbol") == "BTC-USDT")
    quotes = quotes.with_columns(
        channel=pl.when(kraken_btc).then(pl.lit("rest_ticker")).otherwise(pl.col("channel").cast(pl.String))
    )
    t0 = HOUR + timedelta(minutes=30)
    past, future = quotes.filter(pl.col("recv_ts") <= t0), quotes.filter(pl.col("recv_ts") > t0)
    altered = pl.concat(
        [
            past,
            future.with_columns(
                pl.col("bid", "ask") * 1.01,
                pl.col("bid_size") * 3,
                channel=pl.when(kraken_btc).then(pl.lit("book_ticker")).otherwise(pl.col("channel")),
            )
            .with_row_index("_i")
            .filter(pl.col("_i") % 3 != 0)  # drop a third of the future
            .drop("_i"),
            future.head(5000).with_columns(
                pl.col("recv_ts") + pl.duration(milliseconds=1, time_unit="ns"), pl.col("bid") * 0.999
            ),
        ]
    )
    fees = F.fee_table(instruments())
    blocking = simulated_blocking()

    def upto(frame: pl.DataFrame, column: str) -> pl.DataFrame:
        return frame.filter(pl.col(column) <= t0)

    original = F.pair_features(quotes, fees, blocking).frame
    changed = F.pair_features(altered, fees, blocking).frame
    assert upto(original, "decision_ts").height > 50_000
    assert_frame_equal(upto(original, "decision_ts"), upto(changed, "decision_ts"))
    assert not original.filter(pl.col("decision_ts") > t0).equals(changed.filter(pl.col("decision_ts") > t0))
    assert_frame_equal(upto(F.market_features(quotes), "recv_ts"), upto(F.market_features(altered), "recv_ts"))


# --- Worked by hand --------------------------------------------------------------------------------


def quote(venue, recv_ms, bid, ask, bid_size=None, ask_size=None, ts_ms=None, channel="book_ticker", market="spot"):
    return {
        "ts": T0 + timedelta(milliseconds=recv_ms if ts_ms is None else ts_ms),
        "ts_source": "venue",
        "recv_ts": T0 + timedelta(milliseconds=recv_ms),
        "venue": venue,
        "market": market,
        "symbol": "BTC-USDT",
        "channel": channel,
        "bid": bid,
        "ask": ask,
        "bid_size": bid_size,
        "ask_size": ask_size,
        "seq": None,
    }


def assert_values(got: list, expected: list, name: str) -> None:
    assert len(got) == len(expected), name
    for g, e in zip(got, expected, strict=True):
        assert (g is None) == (e is None), f"{name}: {got} != {expected}"
        assert e is None or math.isclose(g, e, rel_tol=1e-12, abs_tol=1e-12), f"{name}: {got} != {expected}"


def frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=QUOTE_SCHEMA)


# alpha quotes with sizes (venue time a little behind ours); beta first without sizes.
HAND = [
    quote("alpha", 0, 99.0, 101.0, 3.0, 1.0, ts_ms=-5),  # mid 100
    quote("beta", 1000, 100.5, 101.5),  # mid 101
    quote("alpha", 1500, 100.0, 102.0, 3.0, 1.0, ts_ms=1490),  # mid 101
    quote("alpha", 2000, 100.0, 102.0, 3.0, 1.0, ts_ms=1990),  # unchanged
    quote("beta", 2500, 103.0, 104.0, 1.0, 1.0),  # mid 103.5
]
HAND_FEES = {("alpha", "spot"): 0.001, ("beta", "spot"): 0.002}
HAND_BLOCKING = pl.DataFrame(
    {"venue": ["beta"], "asset": ["USDT"], "start": [T0 + timedelta(seconds=1.5)], "end": [T0 + timedelta(seconds=2)]}
)


def test_market_features_by_hand():
    got = F.market_features(frame(HAND))
    assert got.get_column("venue").to_list() == ["alpha", "beta", "alpha", "alpha", "beta"]
    up = 1e4 * math.log(1.01)  # alpha's move from mid 100 to 101
    beta_up = 1e4 * math.log(103.5 / 101)
    expected = {
        "mid": [100.0, 101.0, 101.0, 101.0, 103.5],
        "spread_bps": [200.0, 1e4 / 101, 2e4 / 101, 2e4 / 101, 1e4 / 103.5],
        "imbalance": [0.5, None, 0.5, 0.5, 0.0],
        # as of t - 1 s: none at the start; at 1.5 s and 2 s alpha's row at 0 s; beta at 2.5 s: its 1 s row
        "ret_bps": [None, None, up, up, beta_up],
        "vol_bps": [0.0, 0.0, up, up, beta_up],
        "age_ms": [5.0, 0.0, 10.0, 10.0, 0.0],
        "unchanged_ms": [0.0, 0.0, 0.0, 500.0, 0.0],
        "bid_notional": [297.0, None, 300.0, 300.0, 103.0],
        "ask_notional": [101.0, None, 102.0, 102.0, 104.0],
    }
    for name, values in expected.items():
        assert_values(got.get_column(name).to_list(), values, name)


def test_pair_features_by_hand():
    got = F.pair_features(frame(HAND), HAND_FEES, HAND_BLOCKING).frame
    # No event before both legs have quoted: the first row (alpha alone) emits nothing.
    assert got.get_column("decision_ts").to_list() == [T0 + timedelta(seconds=s) for s in (1, 1.5, 2, 2.5)]
    assert got.row(0, named=True)["pair"] == "BTC-USDT alpha:spot|beta:spot"
    up = 1e4 * math.log(1.01)
    expected = {
        # 1 s: buy alpha at 101, sell beta at 100.5 (mean mid 100.5); 1.5 s and 2 s: both ways lose
        # 1.5 on mean mid 101 (a tie keeps direction +1); 2.5 s: buy alpha at 102, sell beta at 103.
        "gross_spread_bps": [-0.5e4 / 100.5, -1.5e4 / 101, -1.5e4 / 101, 1e4 / 102.25],
        "fee_bps": [30.0] * 4,
        "net_spread_bps": [-0.5e4 / 100.5 - 30, -1.5e4 / 101 - 30, -1.5e4 / 101 - 30, 1e4 / 102.25 - 30],
        "direction": [1.0] * 4,
        "buy_spread_bps": [200.0, 2e4 / 101, 2e4 / 101, 2e4 / 101],
        "sell_spread_bps": [1e4 / 101, 1e4 / 101, 1e4 / 101, 1e4 / 103.5],
        "buy_imbalance": [0.5] * 4,
        "sell_imbalance": [None, None, None, 0.0],
        # beta at 2 s: its row at exactly t - 1 s counts (as of is inclusive), so its return is 0
        "buy_ret_bps": [0.0, up, up, 0.0],
        "sell_ret_bps": [None, None, 0.0, 1e4 * math.log(103.5 / 101)],
        "buy_vol_bps": [0.0, up, up, up],
        "sell_vol_bps": [0.0, 0.0, 0.0, 1e4 * math.log(103.5 / 101)],
        "buy_age_ms": [1005.0, 10.0, 10.0, 510.0],
        "sell_age_ms": [0.0, 500.0, 1000.0, 0.0],
        "buy_unchanged_ms": [1000.0, 0.0, 500.0, 1000.0],
        "sell_unchanged_ms": [0.0, 500.0, 1000.0, 0.0],
        "buy_depth_notional": [101.0, 102.0, 102.0, 102.0],
        "sell_depth_notional": [None, None, None, 103.0],
        "lead_lag_bps": [None, None, -up, 1e4 * math.log(103.5 / 101)],
        # beta's USDT blocked on [1.5 s, 2 s): the start counts, the end does not
        "can_move_funds": [1.0, 0.0, 1.0, 1.0],
    }
    assert set(expected) == set(F.PAIR_FEATURES)
    for name, values in expected.items():
        assert_values(got.get_column(name).to_list(), values, name)
    _, live, _ = replay(frame(HAND), HAND_FEES, HAND_BLOCKING)
    assert_close(got, live, rel=0.0)


def test_direction_follows_the_better_side():
    rows = [quote("alpha", 0, 100.0, 100.1), quote("beta", 10, 99.0, 99.1)]  # beta is cheaper: buy beta
    got = F.pair_features(frame(rows), HAND_FEES).frame.row(0, named=True)
    mid_ref = (100.05 + 99.05) / 2
    assert got["direction"] == -1.0
    assert got["gross_spread_bps"] == pytest.approx(1e4 * (100.0 - 99.1) / mid_ref)
    assert got["buy_spread_bps"] == pytest.approx(1e4 * 0.1 / 99.05)  # beta's
    assert got["sell_spread_bps"] == pytest.approx(1e4 * 0.1 / 100.05)  # alpha's


def test_rejected_quotes_are_returned_with_their_reason_and_change_nothing():
    bad = [
        quote("alpha", 700, 101.0, 100.0, 1.0, 1.0),  # crossed
        quote("alpha", 800, 100.0, 100.0, 1.0, 1.0),  # locked
        quote("alpha", 900, None, 100.0),  # no bid
        quote("beta", 1200, 100.0, -1.0),  # negative ask
        quote("beta", 1300, 100.0, 101.0, float("nan"), 1.0),  # NaN size
    ]
    with_bad = F.pair_features(frame(HAND + bad), HAND_FEES)
    clean = F.pair_features(frame(HAND), HAND_FEES)
    assert_frame_equal(with_bad.frame, clean.frame)
    rejected = with_bad.rejected
    assert rejected.select("reason", "field").rows() == [
        ("crossed_book", "bid"),
        ("crossed_book", "bid"),
        ("missing_price", "bid"),
        ("bad_price", "ask"),
        ("bad_size", "bid_size"),
    ]
    assert rejected.get_column("recv_ts").to_list() == [
        T0 + timedelta(milliseconds=ms) for ms in (700, 800, 900, 1200, 1300)
    ]
    with pytest.raises(F.RejectedQuotes, match="alpha:spot:BTC-USDT crossed_book"):
        F.market_features(frame(HAND + bad))
    engine = F.FeatureEngine(HAND_FEES)
    with pytest.raises(F.QuoteRejected) as err:
        engine.update("alpha", "spot", "BTC-USDT", 0, 0, 101.0, 100.0, 1.0, 1.0)
    assert (err.value.reason, err.value.field) == ("crossed_book", "bid")
    assert engine.markets == {}  # the rejected tick left no state behind
    with pytest.raises(F.QuoteRejected, match="missing_price"):
        engine.update("alpha", "spot", "BTC-USDT", 0, 0, None, 100.0, None, None)


def test_book_ticker_is_used_once_a_market_has_it_decided_row_by_row():
    rows = [
        quote("alpha", 0, 99.0, 101.0, channel="rest_ticker"),  # used: no book_ticker yet
        quote("alpha", 100, 99.5, 100.5),
        quote("alpha", 200, 90.0, 91.0, channel="rest_ticker"),  # not used: alpha has book_ticker now
        quote("alpha", 300, 99.6, 100.6),
    ]
    prepared = F.prepare_quotes(frame(rows))
    assert prepared.accepted.get_column("recv_ts").to_list() == [
        T0 + timedelta(milliseconds=ms) for ms in (0, 100, 300)
    ]
    assert prepared.unused == 1 and prepared.rejected.height == 0
    assert F.market_features(frame(rows)).get_column("mid").to_list() == [100.0, 100.0, 100.1]


def test_rows_are_ordered_by_receive_time_stably():
    rows = [quote("alpha", 50, 99.0, 101.0), quote("alpha", 10, 98.0, 100.0), quote("alpha", 10, 97.0, 99.0)]
    mids = F.market_features(frame(rows)).get_column("mid").to_list()
    assert mids == [99.0, 98.0, 100.0]  # 10 ms (input order among ties), then 50 ms


def test_fee_table_from_instruments_and_overrides():
    ref = instruments()
    later = ref.filter(pl.col("venue") == "kraken").with_columns(
        taker_fee=pl.lit(0.002), valid_from=pl.col("valid_from") + pl.duration(days=1, time_unit="ns")
    )
    table = F.fee_table(pl.concat([ref, later]), "binance:spot=0.00023, coinbase:spot=0")
    assert table[("kraken", "spot")] == 0.002  # the latest valid_from wins
    assert table[("binance", "spot")] == 0.00023  # the override wins
    assert table[("coinbase", "spot")] == 0.0
    assert table[("binance", "linear_perp")] == 0.0005
    for bad in ("binance=0.1", "binance:spot=x", "binance:spot=1.5", "binance:spot"):
        with pytest.raises(ValueError, match="fee override"):
            F.fee_table(None, bad)
    no_fee = pl.concat([ref, later.with_columns(taker_fee=pl.lit(None, pl.Float64))])
    assert ("kraken", "spot") not in F.fee_table(no_fee)


def test_a_pair_whose_market_has_no_fee_raises_naming_it():
    fees = {("alpha", "spot"): 0.001}
    with pytest.raises(KeyError, match="beta:spot"):
        F.pair_features(frame(HAND), fees)
    engine = F.FeatureEngine(fees)
    engine.update("alpha", "spot", "BTC-USDT", 0, 0, 99.0, 101.0, None, None)
    with pytest.raises(KeyError, match="beta:spot"):
        engine.update("beta", "spot", "BTC-USDT", 0, 1, 99.0, 101.0, None, None)


def test_engine_refuses_time_going_backwards():
    engine = F.FeatureEngine(HAND_FEES)
    engine.update("alpha", "spot", "BTC-USDT", 0, 1_000, 99.0, 101.0, None, None)
    with pytest.raises(ValueError, match="before the clock"):
        engine.update("beta", "spot", "BTC-USDT", 0, 999, 99.0, 101.0, None, None)


def test_ring_buffers_grow_with_the_window_and_stay_bounded():
    n = 30_000  # alpha at 1 kHz for 30 s: 10,000 rows in the volatility window; beta at 10 Hz
    ms = np.arange(n)
    rng = np.random.default_rng(3)
    alpha_mid = 100 + np.cumsum(rng.choice([-0.01, 0.0, 0.01], n))
    rows = pl.DataFrame(
        {
            "recv_ts": [T0 + timedelta(milliseconds=int(m)) for m in ms],
            "venue": "alpha",
            "bid": alpha_mid - 0.005,
            "ask": alpha_mid + 0.005,
        }
    )
    beta = rows.gather_every(100).with_columns(pl.lit("beta").alias("venue"), pl.col("bid", "ask") + 0.02)
    quotes = pl.concat([rows, beta]).sort("recv_ts", maintain_order=True)
    quotes = quotes.with_columns(
        ts=pl.col("recv_ts"),
        ts_source=pl.lit("receive"),
        market=pl.lit("spot"),
        symbol=pl.lit("BTC-USDT"),
        channel=pl.lit("book_ticker"),
        bid_size=pl.lit(1.0),
        ask_size=pl.lit(2.0),
        seq=pl.lit(None, pl.Int64),
    ).select(QUOTES.names)
    engine, live, _ = replay(quotes, HAND_FEES)
    alpha = engine.markets[("alpha", "spot", "BTC-USDT")]
    assert 10_000 < alpha.capacity <= 16_384  # grew from 64 by doubling, no further
    assert engine.markets[("beta", "spot", "BTC-USDT")].capacity <= 128
    assert_close(F.pair_features(quotes, HAND_FEES).frame, live)


def test_warm_start_continues_exactly_like_an_uninterrupted_run():
    quotes, fees = captured(), F.fee_table(None, CAPTURE_FEES)
    cut = quotes.get_column("recv_ts").sort()[quotes.height // 2]
    engine = F.FeatureEngine(fees)
    assert engine.warm(quotes.filter(pl.col("recv_ts") <= cut)).height == 0
    rest = F.prepare_quotes(quotes.filter(pl.col("recv_ts") > cut)).accepted
    live = F.rows_frame(engine.replay(rest, collect=True))
    batch = F.pair_features(quotes, fees).frame.filter(pl.col("decision_ts") > cut)
    assert live.height == batch.height > 10_000
    assert_close(batch, live)


def test_blocking_windows_from_document_events_start_when_published():
    events = pl.DataFrame(
        {
            "doc_id": ["d1", "d2", "d3", "d4"],
            "event_index": [0, 0, 0, 0],
            "venue": ["kraken", "binance", "kraken", "binance"],
            "assets": [["BTC", "ETH"], ["SOL"], ["BTC"], ["ETH"]],
            "network": [None] * 4,
            "event_type": ["withdrawal_suspension", "listing", "maintenance", "deposit_suspension"],
            "effective_start": [T0 - timedelta(hours=1), T0, None, T0 - timedelta(hours=2)],
            "effective_end": [T0 + timedelta(hours=2), None, None, T0 - timedelta(hours=1)],
            "confidence": [0.9, 0.9, 0.8, 0.9],
            "extractor": ["offline"] * 4,
            "model": [None] * 4,
            "prompt_version": ["v1"] * 4,
            **{c: [None] * 4 for c in ("brand", "product_model", "variant", "condition", "quantity")},
        },
        schema=pl.from_arrow(DOCUMENT_EVENTS.empty_table()).schema,
    )
    # d4's suspension was over before it was published: it blocks nothing anyone could have known of.
    published = pl.DataFrame({"doc_id": ["d1", "d2", "d3", "d4"], "ts": [T0, T0, T0 + timedelta(hours=3), T0]})
    got = F.blocking_windows(events, published).sort("start", "asset")
    assert got.rows() == [
        ("kraken", "BTC", T0, T0 + timedelta(hours=2)),  # stated an hour early: known only at T0
        ("kraken", "ETH", T0, T0 + timedelta(hours=2)),
        ("kraken", "BTC", T0 + timedelta(hours=3), None),  # no stated start: from publication, open-ended
    ]
    with pytest.raises(ValueError, match="d3"):
        F.blocking_windows(events)
