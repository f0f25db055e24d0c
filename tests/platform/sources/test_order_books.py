"""Order books and the venues' sequence rules, on hand-written message sequences: gaps, stale
diffs, checksum failures and the resyncs they force, driven the way a live client drives them."""

from __future__ import annotations

import gzip
import json
import logging
import random
import zlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from arbiter.platform.sources.stream.binance import BinanceHandler
from arbiter.platform.sources.stream.books import NegativeSize, OrderBook, Top
from arbiter.platform.sources.stream.coinbase import CoinbaseHandler
from arbiter.platform.sources.stream.grid_book import GridBook, GridDiffs
from arbiter.platform.sources.stream.kraken import KrakenHandler, checksum, checksum_text

DATA = Path(__file__).parents[2] / "data" / "stream"
SYMBOL = "BTCUSDT"


def enc(message) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def spot_diff(first: int, last: int, bids=(), asks=(), event: int = 1_700_000_000_000) -> bytes:
    data = {"e": "depthUpdate", "E": event, "s": SYMBOL, "U": first, "u": last, "b": list(bids), "a": list(asks)}
    return enc({"stream": "btcusdt@depth@100ms", "data": data})


def perp_diff(first: int, last: int, prev: int, bids=(), asks=()) -> bytes:
    data = {
        "e": "depthUpdate",
        "E": 1,
        "T": 1,
        "s": SYMBOL,
        "U": first,
        "u": last,
        "pu": prev,
        "b": list(bids),
        "a": list(asks),
    }
    return enc({"stream": "btcusdt@depth@0ms", "data": data})


def depth_snapshot(last_id: int, bids=(("100.0", "1"), ("99.0", "2")), asks=(("101.0", "1"), ("102.0", "2"))) -> bytes:
    return enc({"lastUpdateId": last_id, "bids": [list(b) for b in bids], "asks": [list(a) for a in asks]})


def reasons(handler) -> list[tuple[str, str | None]]:
    return [(row[3], row[4]) for row in handler.quarantine]


def tops(handler) -> list[tuple]:
    return [(q[7], q[8], q[9], q[10], q[11]) for q in handler.quotes]  # bid, ask, bid size, ask size, seq


# the book ------------------------------------------------------------------------------------


def test_order_book_levels_top_and_depth():
    book = OrderBook()
    book.load([(100.0, 1.0), (99.0, 2.0), (98.0, 3.0)], [(101.0, 1.0), (102.0, 2.0)])
    assert book.top() == Top(100.0, 1.0, 101.0, 1.0)
    book.apply([(100.0, 0.0), (99.5, 4.0)], [(101.0, 0.0), (100.5, 5.0), (103.0, 0.0)])  # 103 was never there
    assert book.top() == Top(99.5, 4.0, 100.5, 5.0)
    assert book.best_bids(2) == [99.5, 99.0] and book.best_asks(5) == [100.5, 102.0]
    assert book.truncate(2) == ([98.0], [])
    assert len(book) == 4
    with pytest.raises(NegativeSize):
        book.apply([(99.0, -1.0)], [])
    book.clear()
    assert book.top() == Top(None, None, None, None) and not book.top().crossed()


def test_grid_book_matches_order_book_on_random_diffs():
    rng = random.Random(7)
    prices = [round(100 + 0.5 * i, 1) for i in range(-40, 41)]
    diffs = []
    for _ in range(400):
        bids = [(p, rng.choice([0.0, 0.0, 1.0, 2.5])) for p in rng.sample(prices[:45], rng.randint(0, 6))]
        asks = [(p, rng.choice([0.0, 0.0, 1.0, 2.5])) for p in rng.sample(prices[36:], rng.randint(0, 6))]
        diffs.append((bids, asks))
    diffs[17] = ([(99.0, 3.0), (99.0, 0.0)], [])  # one price twice in a diff, the last time removed
    # Orders resting far from the market: beyond the dense part of the tick grid.
    diffs[30] = ([(0.5, 1.0)], [(1_000_000.0, 2.0)])
    diffs[31] = ([(p, 0.0) for p in prices[:45]], [(p, 0.0) for p in prices[36:]])  # only they remain
    diffs[200] = ([(0.5, 0.0)], [(1_000_000.0, 0.0)])

    def arrays(side):
        levels = [lv for d in diffs for lv in d[side]]
        return (
            np.array([p for p, _ in levels], dtype=float),
            np.array([q for _, q in levels], dtype=float),
            np.array([len(d[side]) for d in diffs]),
        )

    for decimals in (None, 1):
        diffs_on_grid = GridDiffs.build(*arrays(0), *arrays(1), decimals=decimals)
        assert len(diffs_on_grid.grid) < 1000  # dense around the market, sparse beyond
        grid = GridBook(diffs_on_grid)
        book = OrderBook()
        for k, (bids, asks) in enumerate(diffs):
            book.apply(bids, asks)
            grid.apply_diff(k)
            assert grid.top() == book.top(), k


# Binance spot ------------------------------------------------------------------------------


def test_binance_spot_snapshot_buffered_diffs_stale_diff_and_gap(caplog):
    handler = BinanceHandler(source="binance_ws", partition="p")
    # A diff before any snapshot is buffered, and the symbol is reported once as needing one.
    assert handler.on_message(1, spot_diff(95, 100, bids=[["100.0", "5"]])) == [SYMBOL]
    assert handler.on_message(2, spot_diff(101, 103, asks=[["100.5", "1"]])) == []
    assert handler.awaiting_snapshot() == {SYMBOL}
    # The snapshot (lastUpdateId 101) contains the first diff (stale) and the second straddles it.
    assert handler.on_snapshot(3, SYMBOL, depth_snapshot(101)) == []
    assert handler.absorbed["stale_diff"] == 1
    assert tops(handler) == [(100.0, 101.0, 1.0, 1.0, 101), (100.0, 100.5, 1.0, 1.0, 103)]
    # A re-sent diff already in the book (u <= last id) is absorbed, not an error.
    handler.on_message(4, spot_diff(102, 103, asks=[["100.5", "9"]]))
    assert handler.absorbed["stale_diff"] == 2
    # A diff far from the top changes the book but not its best level: absorbed as such.
    handler.on_message(5, spot_diff(104, 104, bids=[["90.0", "1"]]))
    assert handler.absorbed["book_unchanged"] == 1
    # A gap: 105 is missing. The book is discarded, the resync counted and logged with the ids.
    with caplog.at_level(logging.WARNING, logger="arbiter.stream"):
        assert handler.on_message(6, spot_diff(106, 107, bids=[["100.2", "1"]])) == [SYMBOL]
    assert handler.resyncs == 1
    assert "venue=binance" in caplog.text and "symbol=BTCUSDT" in caplog.text and "U=106" in caplog.text
    assert "book_last_u=104" in caplog.text
    handler.on_message(7, spot_diff(108, 110, bids=[["100.3", "1"]]))
    handler.on_message(8, spot_diff(111, 112, bids=[["100.4", "1"]]))
    # The new snapshot (110) makes the first two buffered diffs redundant: their quotes are lost,
    # so they are quarantined as book_resync; the third straddles it and is applied.
    handler.on_snapshot(9, SYMBOL, depth_snapshot(110, bids=[["100.3", "1"]]))
    assert reasons(handler) == [("book_resync", "u"), ("book_resync", "u")]
    assert tops(handler)[-2:] == [(100.3, 101.0, 1.0, 1.0, 110), (100.4, 101.0, 1.0, 1.0, 112)]
    handler.close()
    assert handler.parsed().unaccounted() == 0


def test_binance_messages_after_a_gap_are_quarantined_when_no_snapshot_comes():
    handler = BinanceHandler(source="binance_ws", partition="p")
    handler.on_message(1, spot_diff(1, 1))
    handler.on_snapshot(2, SYMBOL, depth_snapshot(5))
    handler.on_message(3, spot_diff(6, 7, bids=[["100.1", "1"]]))
    handler.on_message(4, spot_diff(9, 9, bids=[["100.2", "1"]]))  # 8 missing
    handler.on_message(5, spot_diff(10, 10, bids=[["100.3", "1"]]))
    handler.close()
    parsed = handler.parsed()
    assert parsed.resyncs == 1 and parsed.unaccounted() == 0
    quarantine = parsed.frames["quarantine"]
    assert quarantine.get_column("reason").to_list() == ["book_resync", "book_resync"]
    assert quarantine.get_column("raw")[0] == spot_diff(9, 9, bids=[["100.2", "1"]])
    assert quarantine.get_column("source").unique().to_list() == ["binance_ws"]


def test_binance_snapshot_older_than_the_buffered_diffs_asks_again():
    handler = BinanceHandler(source="binance_ws")
    handler.on_message(1, spot_diff(50, 60, bids=[["100.5", "1"]]))
    # lastUpdateId 40: the first buffered diff starts at 50 > 41, so this snapshot cannot be used.
    assert handler.on_snapshot(2, SYMBOL, depth_snapshot(40)) == [SYMBOL]
    assert handler.resyncs == 1 and handler.awaiting_snapshot() == {SYMBOL}
    assert handler.on_snapshot(3, SYMBOL, depth_snapshot(55)) == []
    assert tops(handler)[-1][-1] == 60


def test_binance_crossed_book_forces_a_resync():
    handler = BinanceHandler(source="binance_ws")
    handler.on_message(1, spot_diff(1, 1))
    handler.on_snapshot(2, SYMBOL, depth_snapshot(1))
    assert handler.on_message(3, spot_diff(2, 2, bids=[["101.5", "1"]])) == [SYMBOL]
    assert reasons(handler) == [("book_resync", "b")]
    assert handler.resyncs == 1


# Binance USD-M ------------------------------------------------------------------------------


def test_binance_usdm_follows_pu_and_keeps_the_diff_straddling_the_snapshot():
    handler = BinanceHandler(source="binance_ws", market="linear_perp")
    handler.on_message(1, perp_diff(90, 99, 89))  # u < lastUpdateId: dropped
    handler.on_message(2, perp_diff(100, 105, 99, bids=[["100.5", "1"]]))  # U <= 104 <= u: first
    handler.on_snapshot(3, SYMBOL, depth_snapshot(104))
    assert handler.absorbed["stale_diff"] == 1
    assert tops(handler)[-1] == (100.5, 101.0, 1.0, 1.0, 105)
    handler.on_message(4, perp_diff(106, 108, 105, asks=[["100.8", "2"]]))
    assert tops(handler)[-1] == (100.5, 100.8, 1.0, 2.0, 108)
    assert handler.on_message(5, perp_diff(110, 111, 109)) == [SYMBOL]  # pu 109 != 108
    assert handler.resyncs == 1


def test_binance_reads_pretty_printed_and_bare_messages():
    handler = BinanceHandler(source="s")
    for name in ("ws_spot_trade.json", "ws_spot_agg_trade.json"):
        handler.on_message(1, (DATA / "messages" / name).read_bytes())
    trades = [(t[5], t[6], t[7], t[8], t[9]) for t in handler.trades]
    assert trades == [
        ("ETH-USDT", 4149.74, 0.4387, "sell", "705291099"),
        ("ETH-USDT", 1632.46, 0.34305, "buy", "agg:226532"),
    ]
    perp = BinanceHandler(source="s", market="linear_perp")
    assert perp.on_message(1, (DATA / "messages" / "ws_futures_depth_update.json").read_bytes()) == [SYMBOL]
    handler.on_message(
        1,
        b'{"e":"kline","E":1,"s":"BTCUSDT","k":{"t":60000,"i":"1m","o":"1","h":"2","l":"0.5","c":"1.5","v":"10","n":3,"x":true,"q":"15"}}',
    )
    assert handler.bars[0][6:] == ("1m", 1.0, 2.0, 0.5, 1.5, 10.0, 15.0, 3)


# Kraken ------------------------------------------------------------------------------------


def kraken_book(asks, bids, pair="XBT/USD") -> bytes:
    return enc([42, {"as": asks, "bs": bids}, "book-10", pair])


def kraken_update(side: str, entries, c: int, pair="XBT/USD") -> bytes:
    return enc([42, {side: entries, "c": str(c)}, "book-10", pair])


ASKS = [["5541.30000", "2.50700000", "1534614248.123678"], ["5541.80000", "0.33000000", "1534614098.345543"]]
BIDS = [["5541.20000", "1.52900000", "1534614248.765567"], ["5539.90000", "0.30000000", "1534614241.769870"]]


def test_kraken_checksum_text_and_value():
    # Kraken's documented rule: drop '.', then leading zeros, price then volume, asks then bids.
    assert checksum_text("0.05005", "0.00000500") == "5005500"
    assert checksum_text("5541.30000", "2.50700000") == "554130000250700000"
    asks, bids = [(a[0], a[1]) for a in ASKS], [(b[0], b[1]) for b in BIDS]
    text = b"5541300002507000005541800003300000055412000015290000055399000030000000"
    assert checksum(asks, bids) == zlib.crc32(text)


def test_kraken_checksum_mismatch_forces_a_resync_until_the_next_snapshot(caplog):
    handler = KrakenHandler(source="kraken_ws", partition="p")
    handler.on_message(1, kraken_book(ASKS, BIDS))
    update = [["5541.20000", "2.00000000", "1534614250.000001"]]
    good = checksum([(a[0], a[1]) for a in ASKS], [("5541.20000", "2.00000000"), (BIDS[1][0], BIDS[1][1])])
    handler.on_message(2, kraken_update("b", update, good))
    assert handler.checksums_verified == 1 and tops(handler)[-1] == (5541.2, 5541.3, 2.0, 2.507, None)
    with caplog.at_level(logging.WARNING, logger="arbiter.stream"):
        assert handler.on_message(3, kraken_update("a", [["5541.30000", "1.00000000", "1534614251.0"]], good)) == [
            "XBT/USD"
        ]
    assert "checksum_mismatch" in caplog.text and "venue=kraken" in caplog.text and f"c={good}" in caplog.text
    handler.on_message(4, kraken_update("a", [["5541.40000", "1.00000000", "1534614252.0"]], 1))
    assert reasons(handler) == [("book_resync", "c"), ("book_resync", None)]
    assert handler.awaiting_snapshot() == {"XBT/USD"}
    handler.on_message(5, kraken_book(ASKS, BIDS))  # resubscribed: a new snapshot
    assert handler.awaiting_snapshot() == set() and handler.resyncs == 1
    parsed = handler.parsed()
    assert parsed.unaccounted() == 0 and parsed.resyncs == 1
    assert parsed.frames["quarantine"].get_column("raw")[0] == kraken_update(
        "a", [["5541.30000", "1.00000000", "1534614251.0"]], good
    )


def test_kraken_real_sample_checksums_pass():
    """The first book snapshot and update of XMR/USD as recorded, checksum as Kraken computed it."""
    text = gzip.decompress((DATA / "captures_2021" / "KRAKEN.ws.50.0.gz").read_bytes()).decode()
    messages = [line.split(": ", 1)[1] for line in text.splitlines() if line[:1].isdigit() and '"XMR/USD"]' in line]
    snapshot = next(m for m in messages if '"as"' in m)
    update = next(m for m in messages[messages.index(snapshot) :] if '"c":"' in m)
    handler = KrakenHandler(source="kraken_ws")
    handler.on_message(1, snapshot.encode())
    handler.on_message(2, update.encode())
    assert handler.checksums_verified == 1 and handler.resyncs == 0
    assert handler.books["XMR/USD"].checksum() == int(json.loads(update)[-3]["c"])


# Coinbase ----------------------------------------------------------------------------------


def test_coinbase_snapshot_updates_and_crossed_book():
    handler = CoinbaseHandler(source="coinbase_ws")
    handler.on_message(
        1,
        enc(
            {
                "type": "l2update",
                "product_id": "BTC-USD",
                "changes": [["buy", "1", "1"]],
                "time": "2021-04-17T16:43:37.075687Z",
            }
        ),
    )
    handler.on_message(
        2, enc({"type": "snapshot", "product_id": "BTC-USD", "bids": [["100.0", "1"]], "asks": [["101.0", "2"]]})
    )
    handler.on_message(
        3,
        enc(
            {
                "type": "l2update",
                "product_id": "BTC-USD",
                "changes": [["sell", "100.5", "3"]],
                "time": "2021-04-17T16:43:37.075687Z",
            }
        ),
    )
    assert tops(handler) == [(100.0, 101.0, 1.0, 2.0, None), (100.0, 100.5, 1.0, 3.0, None)]
    assert handler.quotes[-1][0] == 1618677817075687000 and handler.quotes[-1][1] == "venue"
    crossed = enc(
        {
            "type": "l2update",
            "product_id": "BTC-USD",
            "changes": [["buy", "100.7", "1"]],
            "time": "2021-04-17T16:43:38Z",
        }
    )
    assert handler.on_message(4, crossed) == ["BTC-USD"]
    assert reasons(handler) == [("no_snapshot", None), ("book_resync", "changes")]
    handler.close()
    assert handler.parsed().unaccounted() == 0


# the incremental interface -----------------------------------------------------------------


def test_drain_hands_over_rows_as_contract_frames():
    handler = BinanceHandler(source="binance_ws", partition="p")
    handler.on_message(
        1_700_000_000_000_000_001, enc({"u": 7, "s": "BTCUSDT", "b": "1.5", "B": "2", "a": "1.6", "A": "3"})
    )
    frames = handler.drain()
    quotes = frames["quotes"]
    assert quotes.schema["ts"] == pl.Datetime("ns", "UTC")
    assert quotes.select(pl.col("ts").cast(pl.Int64)).item() == 1_700_000_000_000_000_001
    assert quotes.row(0, named=True)["channel"] == "book_ticker"
    assert handler.drain() == {}
