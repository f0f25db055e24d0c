from datetime import UTC, datetime

import polars as pl

from arbiter.platform import quality
from arbiter.platform.schema import QUOTES
from arbiter.platform.sources import simulator

DEFAULT = {
    "ts": 0,
    "ts_source": "venue",
    "recv_ts": 0,
    "venue": "binance",
    "market": "spot",
    "symbol": "BTC-USDT",
    "channel": "book_ticker",
    "bid": 100.0,
    "ask": 101.0,
    "bid_size": 1.0,
    "ask_size": 1.0,
    "seq": None,
}


def frame(rows: list[dict]) -> pl.DataFrame:
    """Quotes from partial rows; ``ts``/``recv_ts`` given in integer nanoseconds."""
    return pl.DataFrame(
        [{**DEFAULT, **r} for r in rows],
        schema=pl.from_arrow(QUOTES.empty_table()).schema | {"ts": pl.Int64, "recv_ts": pl.Int64},
    )


S = 1_000_000_000


def test_clean_feed_passes_every_rule():
    rows = [{"seq": i, "ts": i * S, "recv_ts": i * S, "bid": 100.0 + i % 2, "ask": 102.0 + i % 2} for i in range(20)]
    clean = frame(rows).with_columns(pl.col("ts", "recv_ts").cast(pl.Datetime("ns", "UTC")))
    assert clean.height == 20
    for name, rule in quality.QUOTE_RULES.items():
        assert rule(clean).passed, name


def test_each_rule_catches_its_violation():
    def f(rows):
        return frame(rows).with_columns(pl.col("ts", "recv_ts").cast(pl.Datetime("ns", "UTC")))

    base = [{"seq": i, "ts": i * S, "recv_ts": i * S, "bid": 100.0 + i % 2, "ask": 102.0} for i in range(5)]
    assert quality.duplicates(f([*base, {**base[2], "recv_ts": 9 * S, "ts": 9 * S}])).offending == 1
    assert quality.out_of_order(f([*base, {"seq": 9, "ts": 2 * S, "recv_ts": 9 * S}])).offending == 1
    # Channels are separate streams: Binance's bookTicker and our rebuilt book share update ids,
    # and a book's venue time may trail the ticker's receive time.
    book = {"channel": "ws_book", "seq": 2, "ts": 1 * S, "recv_ts": 9 * S}
    assert quality.duplicates(f([*base, book])).passed and quality.out_of_order(f([*base, book])).passed
    assert quality.crossed(f([*base, {"seq": 9, "bid": 3.0, "ask": 2.0}])).offending == 1
    frozen = [{"seq": i, "ts": i * S, "recv_ts": i * S} for i in range(15)]
    assert not quality.stale(f(frozen), max_unchanged_s=10).passed
    assert quality.gaps(f([*base, {"seq": 9, "ts": 60 * S, "recv_ts": 60 * S}]), max_gap_s=5).offending == 1
    venues = [{"venue": v, "seq": 1, "ts": 9 * S, "recv_ts": 9 * S} for v in ("coinbase", "kraken", "okx")]
    spike = {"seq": 9, "ts": 9 * S, "recv_ts": 9 * S, "bid": 300.0, "ask": 301.0}
    outlier = quality.outliers(f([*venues, spike]))
    assert outlier.offending == 1 and outlier.detail == {"threshold_bps": 500.0, "binance/spot/BTC-USDT": 1}
    # Alone on its symbol, or with one other venue, nothing sets a reference: never flagged.
    assert quality.outliers(f([venues[0], spike])).passed


def test_late_arrivals_and_freshness_measure_against_the_window_end():
    def f(rows):
        return frame(rows).with_columns(pl.col("ts", "recv_ts").cast(pl.Datetime("ns", "UTC")))

    end = datetime.fromtimestamp(100, UTC)
    on_time = [{"seq": i, "ts": (90 + i) * S, "recv_ts": (90 + i) * S} for i in range(5)]
    late = quality.late_arrivals(f([*on_time, {"seq": 9, "ts": 99 * S, "recv_ts": 103 * S}]), end)
    assert (late.offending, late.detail["max_late_s"]) == (1, 3.0)
    assert quality.late_arrivals(f(on_time), end).passed
    silent_venue = {"venue": "kraken", "seq": 1, "ts": 10 * S, "recv_ts": 10 * S}
    fresh = quality.freshness(f([*on_time, silent_venue]), end, max_silence_s=30)
    assert (fresh.offending, fresh.detail["kraken/spot/BTC-USDT"]) == (1, 90.0)


def test_unknown_markets_are_counted_and_named_by_their_full_key():
    def f(rows):
        return frame(rows).with_columns(pl.col("ts", "recv_ts").cast(pl.Datetime("ns", "UTC")))

    instruments = simulator.instruments()  # every version counts: a later one changes nothing
    instruments = pl.concat([instruments, instruments.with_columns(pl.col("valid_from").dt.offset_by("1d"))])
    known = [{"seq": i, "ts": i * S, "recv_ts": i * S} for i in range(3)]  # binance/spot/BTC-USDT
    assert quality.unknown_markets(f(known), instruments) == quality.RuleOutcome(True, 0, {"markets": 0})
    # Same venue and symbol on another market type, and a symbol nobody lists: each is its own market.
    perp = [{"market": "inverse_perp", "seq": 9}]
    doge = [{"symbol": "DOGE-USDT", "seq": i} for i in range(2)]
    outcome = quality.unknown_markets(
        f([*known, *perp, *doge]).with_columns(pl.col("venue").cast(pl.Categorical)), instruments
    )
    assert outcome == quality.RuleOutcome(
        False, 3, {"markets": 2, "binance/spot/DOGE-USDT": 2, "binance/inverse_perp/BTC-USDT": 1}
    )
    assert list(outcome.detail)[1:] == ["binance/spot/DOGE-USDT", "binance/inverse_perp/BTC-USDT"]  # busiest first
    # No reference data at all: every row is unknown.
    assert quality.unknown_markets(f(known), instruments.clear()).offending == 3
