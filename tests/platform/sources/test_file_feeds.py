"""File feeds: venue downloads, Tardis exports and mapped generic files into the contract.

Real samples (tests/data/files, see its README) where we have them; small files written here, in
the venues' documented layouts, where we do not. Values are checked exactly against the decimal
text they came from.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import zipfile
from pathlib import Path

import boto3
import polars as pl
import pytest

from arbiter.platform.lake import S3Options
from arbiter.platform.sources.base import RawSnapshot
from arbiter.platform.sources.files import (
    ADAPTER,
    FileFeedError,
    FileFeeds,
    FileHints,
    MissingHint,
    UnknownField,
    UnrecognisedFile,
    parse_column_map,
)
from arbiter.platform.sources.files.landing import changes, list_landing, read_bytes

DATA = Path(__file__).resolve().parents[2] / "data" / "files"
RECEIVED = 1_763_700_000_000_000_000  # the snapshot's receive time, UTC ns
PARTITION = "date=2026-11-21"


def parse(body: bytes, origin: str, **hints):
    """Parse one snapshot and check its accounting: every record became a row, was quarantined or absorbed."""
    parsed = FileFeeds(FileHints(**hints)).parse(RawSnapshot("files", origin, body, RECEIVED), PARTITION)
    assert parsed.unaccounted() == 0, parsed.summary()
    return parsed


def ns(frame: pl.DataFrame, column: str = "ts") -> list[int]:
    return frame.get_column(column).dt.epoch("ns").to_list()


def sha12(body: bytes) -> str:
    return hashlib.sha1(body).hexdigest()[:12]


# Binance public data -------------------------------------------------------------------------


def test_binance_spot_klines_sample_every_value_exact():
    path = DATA / "binance" / "ADABTC-1m-2021-11-27.csv"
    body = path.read_bytes()
    assert FileFeeds().recognise(body[:512], path.name) == "binance_klines"
    bars = parse(body, str(path)).frames["bars"]
    lines = list(csv.reader(io.StringIO(body.decode())))
    assert bars.height == len(lines) == 10
    assert set(bars["venue"]) == {"binance"} and set(bars["market"]) == {"spot"} and set(bars["symbol"]) == {"ADA-BTC"}
    assert set(bars["interval"]) == {"1m"} and set(bars["ts_source"]) == {"venue"}
    assert ns(bars, "recv_ts") == [RECEIVED] * 10
    assert ns(bars) == [int(line[0]) * 1_000_000 for line in lines]
    for i, name in enumerate(("open", "high", "low", "close", "volume"), start=1):
        assert bars[name].to_list() == [float(line[i]) for line in lines], name
    assert bars["quote_volume"].to_list() == [float(line[7]) for line in lines]
    assert bars["trade_count"].to_list() == [int(line[8]) for line in lines]
    assert bars.row(0, named=True) | {"ts": None, "recv_ts": None} == {
        "ts": None,
        "ts_source": "venue",
        "recv_ts": None,
        "venue": "binance",
        "market": "spot",
        "symbol": "ADA-BTC",
        "interval": "1m",
        "open": 0.00002853,
        "high": 0.00002854,
        "low": 0.00002851,
        "close": 0.00002854,
        "volume": 36304.2,
        "quote_volume": 1.03547608,
        "trade_count": 79,
    }


def test_binance_klines_in_microseconds_and_with_futures_header():
    # Spot files since 2025 carry µs times; the same rule reads them.
    spot = (
        b"1735689600000000,93576.00000000,93610.93000000,93537.50000000,93610.93000000,8.21827000,"
        b"1735689659999999,769089.51438110,1345,4.74458000,443967.48573920,0\n"
    )
    bars = parse(spot, "BTCUSDT-1m-2025-01-01.csv").frames["bars"]
    assert ns(bars) == [1735689600000000 * 1000]
    assert bars.select("symbol", "market", "interval", "open", "trade_count").row(0) == (
        "BTC-USDT",
        "spot",
        "1m",
        93576.0,
        1345,
    )
    futures = (
        b"open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
        b"taker_buy_quote_volume,ignore\n"
        b"1704067200000,42314.00,42480.00,42289.60,42450.10,5834.371,1704070799999,247349432.43740,60364,"
        b"3144.672,133325069.16460,0\n"
    )
    bars = parse(futures, "data/futures/um/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01-01.csv").frames["bars"]
    assert bars.select("market", "interval", "high", "volume", "quote_volume").row(0) == (
        "linear_perp",
        "1h",
        42480.0,
        5834.371,
        247349432.4374,
    )


def test_binance_trades_agg_trades_and_book_ticker():
    spot_trades = (
        b"3359468101,42283.58000000,0.00103000,43.55208740,1704067200009,True,True\n"
        b"3359468102,42283.59000000,0.00020000,8.45671800,1704067200009,False,True\n"
    )
    assert FileFeeds().recognise(spot_trades, "x.csv") == "binance_trades"
    trades = parse(spot_trades, "BTCUSDT-trades-2024-01-01.csv").frames["trades"]
    assert trades.select("trade_id", "price", "size", "side", "market").rows() == [
        ("3359468101", 42283.58, 0.00103, "sell", "spot"),
        ("3359468102", 42283.59, 0.0002, "buy", "spot"),
    ]
    assert ns(trades) == [1704067200009_000_000] * 2

    agg = b"2854357812,42283.58000000,0.00123000,3359468101,3359468102,1704067200009,True,True\n"
    assert FileFeeds().recognise(agg, "x.csv") == "binance_agg_trades"
    row = parse(agg, "BTCUSDT-aggTrades-2024-01-01.csv").frames["trades"].row(0, named=True)
    assert (row["trade_id"], row["size"], row["side"], row["symbol"]) == ("agg:2854357812", 0.00123, "sell", "BTC-USDT")

    um_trades = b"id,price,qty,quote_qty,time,is_buyer_maker\n4408131236,42313.90,0.002,84.6278,1704067200006,false\n"
    row = parse(um_trades, "BTCUSDT-trades-2024-01-01.csv").frames["trades"].row(0, named=True)
    assert (row["market"], row["price"], row["side"]) == ("linear_perp", 42313.9, "buy")

    ticker = (
        b"update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,transaction_time,event_time\n"
        b"3899553434431,42313.90,6.461,42314.00,2.924,1704067200006,1704067200011\n"
    )
    assert FileFeeds().recognise(ticker, "x.csv") == "binance_book_ticker"
    quotes = parse(ticker, "BTCUSDT-bookTicker-2024-01-01.csv").frames["quotes"]
    assert quotes.select("market", "channel", "bid", "bid_size", "ask", "ask_size", "seq").row(0) == (
        "linear_perp",
        "book_ticker",
        42313.9,
        6.461,
        42314.0,
        2.924,
        3899553434431,
    )
    assert ns(quotes) == [1704067200006_000_000]


def test_binance_bad_rows_are_quarantined_with_field_and_line():
    good = b"1637971200000,0.00002853,0.00002854,0.00002851,0.00002854,36304.2,1637971259999,1.03,79,1.0,0.5,0\n"
    bad_open = b"1637971260000,abc,0.00002860,0.00002854,0.00002859,89196.6,1637971319999,2.54,98,1.0,0.5,0"
    short = b"1637971320000,0.00002859,0.00002860"
    missing_close = b"1637971380000,0.00002858,0.00002862,0.00002849,,162305.7,1637971439999,4.63,158,1.0,0.5,0"
    body = good * 4 + bad_open + b"\r\n" + short + b"\n\n" + missing_close + b"\n"
    parsed = parse(body, "ADABTC-1m-2021-11-27.csv")
    assert parsed.raw_records == 7 and parsed.frames["bars"].height == 4
    quarantine = parsed.frames["quarantine"]
    assert quarantine.select("target", "source", "partition", "reason", "field", "raw").rows() == [
        ("bars", "files", PARTITION, "unparseable", "open", bad_open),
        ("bars", "files", PARTITION, "wrong_field_count", None, short),
        ("bars", "files", PARTITION, "missing_field", "close", missing_close),
    ]


def test_binance_order_book_samples():
    snap = (DATA / "binance" / "btcusdt-depth-snap.csv").read_bytes()
    update = (DATA / "binance" / "btcusdt-depth-update.csv").read_bytes()
    parsed = parse(snap, "btcusdt-depth-snap.csv")
    quotes = parsed.frames["quotes"]
    # The snapshot holds 100 bid levels and no ask: one quote, its best bid the highest level.
    assert quotes.select(
        "venue", "market", "symbol", "channel", "bid", "bid_size", "ask", "ask_size", "seq"
    ).rows() == [("binance", "linear_perp", "BTC-USDT", "book_rebuild", 20377.0, 1.77, None, None, 2098021528332)]
    assert ns(quotes) == [1667346579146_000_000]
    assert parsed.absorbed == {"merged_into_quote": 99}

    alone = parse(update, "btcusdt-depth-update.csv")
    assert alone.rows() == {} and alone.absorbed == {"awaiting_snapshot": 100}

    # Snapshot then that update: 2098041693435 does not follow 2098021528332, a gap.
    both = parse(snap + update.split(b"\n", 1)[1], "btcusdt-depth.csv")
    assert both.rows() == {"quotes": 1} and both.resyncs == 1
    assert both.absorbed == {"merged_into_quote": 99, "awaiting_snapshot": 100}


def test_order_book_rebuild_follows_update_ids():
    header = "symbol,timestamp,first_update_id,last_update_id,side,update_type,price,qty,pu\n"
    rows = [
        "BTCUSDT,1667346579000,10,10,b,snap,100.0,1.0,-1",
        "BTCUSDT,1667346579000,10,10,b,snap,99.5,2.0,-1",
        "BTCUSDT,1667346579000,10,10,a,snap,101.0,3.0,-1",
        "BTCUSDT,1667346579000,10,10,a,snap,102.0,4.0,-1",
        "BTCUSDT,1667346579001,5,9,b,set,100.5,9.0,4",  # already in the snapshot
        "BTCUSDT,1667346579002,9,12,b,set,100.5,1.5,8",  # spans the snapshot: new best bid
        "BTCUSDT,1667346579002,9,12,a,set,105.0,1.0,8",
        "BTCUSDT,1667346579003,13,13,a,set,103.0,1.0,12",  # below the best ask: top unchanged
        "BTCUSDT,1667346579004,14,15,b,set,100.5,0.000,13",  # best bid removed: back to 100.0
        "BTCUSDT,1667346579005,16,16,a,set,101.0,abc,15",  # unparseable: quarantined, not applied
        "BTCUSDT,1667346579006,18,18,a,set,101.0,0,17",  # pu 17 does not follow 15: gap
        "BTCUSDT,1667346579007,19,19,a,set,101.0,0,18",  # waits for a snapshot
        "BTCUSDT,1667346579008,30,30,b,snap,98.0,1.0,-1",
    ]
    parsed = parse((header + "\n".join(rows) + "\n").encode(), "BTCUSDT-depth.csv")
    quotes = parsed.frames["quotes"]
    assert quotes.select("bid", "bid_size", "ask", "ask_size", "seq").rows() == [
        (100.0, 1.0, 101.0, 3.0, 10),
        (100.5, 1.5, 101.0, 3.0, 12),
        (100.0, 1.0, 101.0, 3.0, 15),
        (98.0, 1.0, None, None, 30),
    ]
    assert ns(quotes) == [(1667346579000 + k) * 1_000_000 for k in (0, 2, 4, 8)]
    assert parsed.resyncs == 1
    assert parsed.absorbed == {
        "merged_into_quote": 4,
        "in_snapshot": 1,
        "top_unchanged": 1,
        "awaiting_snapshot": 2,
    }
    assert parsed.frames["quarantine"].select("reason", "field", "raw").rows() == [
        ("unparseable", "size", rows[9].encode())
    ]


def test_parquet_samples_need_a_market():
    trades_path = DATA / "binance" / "btcusdt-trades.parquet"
    body = trades_path.read_bytes()
    assert FileFeeds().recognise(body[:4096], trades_path.name) == "parquet"
    with pytest.raises(MissingHint, match=r"no market.*--market"):
        parse(body, str(trades_path))
    trades = parse(body, str(trades_path), market="spot").frames["trades"]
    source = pl.read_parquet(trades_path)
    assert trades.height == source.height == 2001
    assert trades.select("venue", "market", "symbol").unique().rows() == [("binance", "spot", "BTC-USDT")]
    assert trades["price"].to_list() == source["price"].to_list()
    assert trades["size"].to_list() == source["quantity"].to_list()
    assert trades["trade_id"].to_list() == [str(i) for i in source["trade_id"]]
    assert trades["side"].to_list() == ["sell" if m == "True" else "buy" for m in source["buyer_maker"]]
    assert ns(trades)[0] == 1610064000278_000_000

    quotes_path = DATA / "binance" / "btcusdt-quotes.parquet"
    quotes = parse(quotes_path.read_bytes(), str(quotes_path), market="spot").frames["quotes"]
    source = pl.read_parquet(quotes_path)
    assert quotes.height == 451 and set(quotes["symbol"]) == {"BTC-USDT"} and set(quotes["venue"]) == {"binance"}
    assert quotes.select("bid", "ask", "bid_size", "ask_size").rows()[0] == (39432.99, 39433.62, 0.0031, 0.066851)
    assert quotes["ask_size"].to_list() == source["ask_size"].to_list()
    with pytest.raises(MissingHint, match="no venue"):  # outside a venue's folder nothing names the venue
        parse(quotes_path.read_bytes(), "drop/btcusdt-quotes.parquet", market="spot")


# Kraken downloadable history -------------------------------------------------------------------


def test_kraken_ohlcvt():
    body = b"1381095000,122.0,122.0,122.0,122.0,0.1,1\n1381098600,123.61,123.61,122.5,123.0,4.30500000,7\n"
    assert FileFeeds().recognise(body, "XBTUSD_60.csv") == "kraken_ohlcvt"
    bars = parse(body, "Kraken_OHLCVT/XBTUSD_60.csv").frames["bars"]
    assert bars.select("venue", "market", "symbol", "interval", "open", "low", "volume", "trade_count").rows() == [
        ("kraken", "spot", "BTC-USD", "1h", 122.0, 122.0, 0.1, 1),
        ("kraken", "spot", "BTC-USD", "1h", 123.61, 122.5, 4.305, 7),
    ]
    assert ns(bars) == [1381095000 * 10**9, 1381098600 * 10**9]
    assert parse(body, "ETHUSD_1440.csv").frames["bars"]["interval"][0] == "1d"
    with pytest.raises(MissingHint, match="no interval"):
        parse(body, "XBTUSD.csv")


def test_kraken_time_and_sales_keeps_repeated_prints_and_quarantines_a_bad_row():
    lines = [
        b"1381095255.5,122.00000,0.10000000",
        b"1381095255.5,122.00000,0.10000000",  # the same print again: a second trade, kept
        b"1381095301.123456789,123.61000,0.01000000",
        b"1381095302,12x,0.5",
    ]
    body = b"\n".join(lines) + b"\n"
    assert FileFeeds().recognise(body, "XBTUSD.csv") == "kraken_time_and_sales"
    parsed = parse(body, "XBTUSD.csv")
    trades = parsed.frames["trades"]
    assert trades.select("venue", "symbol", "price", "size", "side").rows() == [
        ("kraken", "BTC-USD", 122.0, 0.1, None),
        ("kraken", "BTC-USD", 122.0, 0.1, None),
        ("kraken", "BTC-USD", 123.61, 0.01, None),
    ]
    assert ns(trades) == [1381095255_500_000_000, 1381095255_500_000_000, 1381095301_123_456_789]
    assert trades["trade_id"].to_list() == [f"{sha12(body)}:{row}" for row in (0, 1, 2)]
    assert parsed.frames["quarantine"].select("reason", "field", "raw").rows() == [("unparseable", "price", lines[3])]


# Tardis.dev ------------------------------------------------------------------------------------


def test_tardis_quotes_trades_and_book_snapshot():
    quotes_csv = (
        b"exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount\n"
        b"binance-futures,BTCUSDT,1585699200245000,1585699200263509,0.138,6423.14,6422.99,1.043\n"
        b"binance-futures,BTCUSDT,1585699200280000,1585699200291113,0.02,6423.14,,\n"
    )
    assert FileFeeds().recognise(quotes_csv, "x.csv") == "tardis_quotes"
    quotes = parse(quotes_csv, "binance-futures_quotes_2020-04-01_BTCUSDT.csv").frames["quotes"]
    assert quotes.select("venue", "market", "symbol", "channel", "bid", "bid_size", "ask", "ask_size").rows() == [
        ("binance", "linear_perp", "BTC-USDT", "book_rebuild", 6422.99, 1.043, 6423.14, 0.138),
        ("binance", "linear_perp", "BTC-USDT", "book_rebuild", None, None, 6423.14, 0.02),
    ]
    assert ns(quotes) == [1585699200245000_000, 1585699200280000_000]
    assert ns(quotes, "recv_ts") == [1585699200263509_000, 1585699200291113_000]

    trades_csv = (
        b"exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
        b"bitmex,XBTUSD,1585699209920000,1585699209934201,fba7c65b-c9ff-9b2c-3d29-0a25b5e8c9d1,sell,6479,2\n"
        b"bitmex,XBTUSD,1585699209920000,1585699209934201,,unknown,6479,2\n"
    )
    with pytest.raises(MissingHint, match="no market"):  # BitMEX lists several market types
        parse(trades_csv, "bitmex_trades.csv")
    trades = parse(trades_csv, "bitmex_trades.csv", market="inverse_perp").frames["trades"]
    assert trades.select("venue", "market", "symbol", "side", "price", "size", "trade_id").rows() == [
        ("bitmex", "inverse_perp", "BTC-USD", "sell", 6479.0, 2.0, "fba7c65b-c9ff-9b2c-3d29-0a25b5e8c9d1"),
        ("bitmex", "inverse_perp", "BTC-USD", None, 6479.0, 2.0, f"{sha12(trades_csv)}:1"),
    ]

    levels = ",".join(f"{s}[{i}].{w}" for i in range(5) for s in ("asks", "bids") for w in ("price", "amount"))
    book = (
        f"exchange,symbol,timestamp,local_timestamp,{levels}\n"
        "binance,BTCUSDT,1585699200245000,1585699200263509,"
        "6423.14,0.138,6422.99,1.043,6423.15,0.5,6422.98,0.2,6423.2,1,6422.9,2,6423.3,1,6422.8,1,6423.4,1,6422.7,1\n"
    ).encode()
    assert FileFeeds().recognise(book, "x.csv") == "tardis_book_snapshot"
    top = parse(book, "binance_book_snapshot_5.csv").frames["quotes"]
    assert top.select("market", "channel", "bid", "bid_size", "ask", "ask_size").row(0) == (
        "spot",
        "book_snapshot",
        6422.99,
        1.043,
        6423.14,
        0.138,
    )


# Generic files with a column map ---------------------------------------------------------------

LISTING_MAP = "listing_id=id,title=title,description=description,brand=manufacturer,price=price"


def test_listings_from_a_product_csv_with_a_map():
    path = DATA / "products" / "walmart_products.csv"
    body = path.read_bytes()
    mapping = parse_column_map(LISTING_MAP)
    assert FileFeeds(FileHints(column_map=mapping)).recognise(body[:4096], path.name) == "generic"
    source = pl.read_csv(path, infer_schema=False)
    listings = parse(body, str(path), venue="walmart", column_map=mapping).frames["listings"]
    assert listings.height == source.height == 8
    assert listings["listing_id"].to_list() == source["id"].to_list()
    assert listings["description"].to_list() == source["description"].to_list()  # commas and line breaks kept
    assert listings.row(0, named=True) | {"ts": None} == {
        "ts": None,
        "venue": "walmart",
        "listing_id": "https://walmart.com/ip/Lysol-Disinfecting-Wipes-Lemon-Lime-Blossom-Flatpack-80-ct-Pack-of-6/660256513",
        "title": "Lysol Disinfecting Wipes - Lemon & Lime Blossom Flatpack 80 ct. (Pack of 6)",
        "description": source["description"][0],
        "brand": "LYSOL",
        "price": 16.99,
        "currency": None,
        "image_uri": None,
    }
    assert ns(listings) == [RECEIVED] * 8
    assert listings["brand"][1] is None  # no manufacturer given: null, not invented

    bad = b'https://walmart.com/ip/x/1,"Mop, ""spin"" bucket","two\nlines",ACME,n/a\n'
    parsed = parse(body + bad, str(path), venue="walmart", column_map=mapping)
    assert parsed.frames["listings"].height == 8
    assert parsed.frames["quarantine"].select("target", "reason", "field", "raw").rows() == [
        ("listings", "unparseable", "price", bad.rstrip(b"\n"))
    ]


def test_hints_recorded_in_the_snapshot_meta_apply_on_replay():
    body = (DATA / "products" / "walmart_products.csv").read_bytes()
    snapshot = RawSnapshot("files", "drop/products.csv", body, RECEIVED, {"venue": "walmart", "map": LISTING_MAP})
    assert ADAPTER.formats(snapshot) == ["generic"]
    parsed = ADAPTER.parse(snapshot, PARTITION)
    assert parsed.rows() == {"listings": 8} and set(parsed.frames["listings"]["venue"]) == {"walmart"}
    overridden = FileFeeds(FileHints(venue="amazon")).parse(snapshot, PARTITION)  # the snapshot's record wins
    assert set(overridden.frames["listings"]["venue"]) == {"walmart"}


def test_map_errors_name_the_field_and_the_flag():
    body = (DATA / "products" / "walmart_products.csv").read_bytes()
    with pytest.raises(UnknownField, match=r"'maker'.*not in the file.*id, title, description, manufacturer, price"):
        parse(
            body, "products.csv", venue="walmart", column_map=parse_column_map("listing_id=id,title=title,brand=maker")
        )
    with pytest.raises(MissingHint, match=r"no venue.*--venue"):
        parse(body, "products.csv", column_map=parse_column_map(LISTING_MAP))
    with pytest.raises(ValueError, match="not COLUMN=FIELD"):
        parse_column_map("listing_id")
    jsonl = b'{"headline": "a", "text": "b"}\n{"headline": "c", "text": "d", "link": "https://e.example"}\n'
    with pytest.raises(UnknownField, match=r"'summary' is not in the file \(its fields: headline, text, link\)"):
        parse(jsonl, "news.jsonl", venue="news", column_map=parse_column_map("title=headline,body=summary"))


def test_json_lines_documents_and_trades():
    lines = [
        b'{"headline": "Binance Will Delist X", "text": "Trading stops at 03:00 UTC.", "link": "https://b.example/1", '
        b'"published": "2025-09-01T03:00:00Z"}',
        b'{"headline": "Maintenance", "text": "Wallets pause.", "published": "2025-09-02T04:30:00.250+02:00"}',
        b'{"headline": "broken", "text": ',
        b'{"headline": "no body", "published": "2025-09-03T00:00:00Z"}',
    ]
    mapping = parse_column_map("title=headline,body=text,url=link,ts=published")
    parsed = parse(b"\n".join(lines) + b"\n", "announcements.jsonl", venue="binance_announcements", column_map=mapping)
    docs = parsed.frames["documents"]
    assert docs.select("source", "title", "body", "url").rows() == [
        ("binance_announcements", "Binance Will Delist X", "Trading stops at 03:00 UTC.", "https://b.example/1"),
        ("binance_announcements", "Maintenance", "Wallets pause.", None),
    ]
    assert docs["doc_id"].to_list() == [hashlib.sha1(b.encode()).hexdigest() for b in docs["body"].to_list()]
    assert ns(docs) == [1756695600_000_000_000, 1756780200_250_000_000]
    assert parsed.frames["quarantine"].select("reason", "field", "raw").rows() == [
        ("malformed_json", None, lines[2]),
        ("missing_field", "body", lines[3]),
    ]

    trades = b'{"t": 1700000000123456789, "p": "42000.10", "q": 0.25, "s": "BTC-USDT", "side": "B"}\n'
    rows = parse(
        trades,
        "fills.jsonl",
        venue="coinbase",
        market="spot",
        column_map=parse_column_map("ts=t,price=p,size=q,symbol=s,side=side"),
    ).frames["trades"]
    assert ns(rows) == [1700000000123456789]  # 19 digits, exact
    assert rows.select("symbol", "price", "size", "side", "trade_id").row(0) == (
        "BTC-USDT",
        42000.1,
        0.25,
        "buy",
        f"{sha12(trades)}:0",
    )


def test_kind_without_map_takes_our_column_names():
    body = b"ts,symbol,bid,ask,extra\n2024-01-01T00:00:00.5Z,ETH/USDT,2280.1,2280.2,x\n"
    with pytest.raises(UnrecognisedFile):
        parse(body, "q.csv", venue="okx", market="spot")
    quotes = parse(body, "q.csv", kind="quotes", venue="okx", market="spot").frames["quotes"]
    assert quotes.select("venue", "symbol", "channel", "bid", "ask", "bid_size").row(0) == (
        "okx",
        "ETH-USDT",
        "file",
        2280.1,
        2280.2,
        None,
    )
    assert ns(quotes) == [1704067200_500_000_000]


def test_unrecognised_file_says_what_it_saw_and_which_flags_help():
    with pytest.raises(UnrecognisedFile) as caught:
        parse(b"when;what;how much\n2024-01-01;x;3\n", "mystery.csv")
    message = str(caught.value)
    assert "source 'files', partition 'date=2026-11-21', file 'mystery.csv'" in message
    assert "first line 'when;what;how much', delimiter ';', 3 columns" in message
    for flag in ("--venue", "--kind", "--symbol", "--map"):
        assert flag in message
    snapshot = RawSnapshot("files", "mystery.csv", b"when;what;how much\n2024-01-01;x;3\n", RECEIVED)
    with pytest.raises(UnrecognisedFile, match="delimiter ';'"):  # refused before anything is stored
        ADAPTER.formats(snapshot)


def test_other_sources_bytes_are_left_to_them():
    """REST responses and websocket captures (gzipped or not) are not file feeds; a CSV with a
    header row is claimed last, as ``generic``, for a column map to describe."""
    klines = (DATA.parent / "rest" / "binance_spot" / "http_spot_market_klines.json").read_bytes()
    assert FileFeeds().recognise(klines[:4096], "klines.json") is None
    capture = b'1723161253937085768 {"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255208}}\n'
    assert FileFeeds().recognise(gzip.compress(capture * 3), "spot_btcusdt.gz") is None
    assert FileFeeds().recognise(b"1;2;3\n4;5;6\n", "numbers.csv") is None
    assert FileFeeds().recognise(b"when,what\n2024-01-01,x\n", "notes.csv") == "generic"


def test_explicit_hint_that_contradicts_the_file_is_an_error():
    body = (DATA / "binance" / "ADABTC-1m-2021-11-27.csv").read_bytes()
    with pytest.raises(FileFeedError, match="--symbol 'BTC-USDT' contradicts the file's name"):
        parse(body, "ADABTC-1m-2021-11-27.csv", symbol="BTCUSDT")
    with pytest.raises(FileFeedError, match="fills bars, not --kind trades"):
        parse(body, "ADABTC-1m-2021-11-27.csv", kind="trades")
    bars = parse(body, "klines.csv", symbol="ADABTC").frames["bars"]  # a name that says nothing: the hint
    assert set(bars["symbol"]) == {"ADA-BTC"}


# Containers ------------------------------------------------------------------------------------


def test_zip_with_two_members_and_gzip():
    klines = (DATA / "binance" / "ADABTC-1m-2021-11-28.csv").read_bytes()
    kraken = b"1381095000,122.0,122.0,122.0,122.0,0.1,1\n"
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("daily/", b"")
        zf.writestr("daily/ADABTC-1m-2021-11-28.csv", klines)
        zf.writestr("XBTUSD_60.csv", kraken)
    body = archive.getvalue()
    assert FileFeeds().recognise(body[:2048], "drop.zip") == "binance_klines"
    parsed = parse(body, "landing/drop.zip")
    bars = parsed.frames["bars"]
    assert parsed.raw_records == 12 and bars.height == 12
    assert bars.group_by("venue", "symbol", "interval").len().sort("venue").rows() == [
        ("binance", "ADA-BTC", "1m", 11),
        ("kraken", "BTC-USD", "1h", 1),
    ]

    broken = io.BytesIO()
    with zipfile.ZipFile(broken, "w") as zf:
        zf.writestr("ADABTC-1m-2021-11-28.csv", klines)
        zf.writestr("notes.txt", b"hello;there\n")
    with pytest.raises(UnrecognisedFile, match=r"file 'landing/drop.zip!notes.txt'"):
        parse(broken.getvalue(), "landing/drop.zip")

    trades = b"3359468101,42283.58000000,0.00103000,43.55208740,1704067200009,True,True\n"
    gz = gzip.compress(trades)
    assert FileFeeds().recognise(gz, "BTCUSDT-trades-2024-01-01.csv.gz") == "binance_trades"
    row = parse(gz, "BTCUSDT-trades-2024-01-01.csv.gz").frames["trades"].row(0, named=True)
    assert (row["symbol"], row["trade_id"]) == ("BTC-USDT", "3359468101")
    with pytest.raises(FileFeedError, match="corrupt zip"):
        parse(body[:-30], "landing/drop.zip")


# Landing area ----------------------------------------------------------------------------------


def test_landing_cursor_on_a_local_folder(tmp_path):
    (tmp_path / "binance").mkdir()
    (tmp_path / "_staging").mkdir()
    (tmp_path / "a.csv").write_bytes(b"1")
    (tmp_path / "binance" / "b.csv").write_bytes(b"22")
    (tmp_path / ".c.csv.part").write_bytes(b"in flight")
    (tmp_path / "_staging" / "d.csv").write_bytes(b"x")
    entries = list_landing(str(tmp_path))
    assert [(e.key, e.size) for e in entries] == [
        (str(tmp_path / "a.csv"), 1),
        (str(tmp_path / "binance" / "b.csv"), 2),
    ]
    fresh, cursor = changes(entries, None)
    assert fresh == entries
    assert changes(list_landing(str(tmp_path)), cursor) == ([], cursor)  # seen twice: nothing the second time
    assert read_bytes(entries[1].key) == b"22"

    (tmp_path / "a.csv").write_bytes(b"111")
    (tmp_path / "binance" / "b.csv").unlink()
    fresh, cursor = changes(list_landing(str(tmp_path)), cursor)
    assert [(e.key, e.size) for e in fresh] == [(str(tmp_path / "a.csv"), 3)]
    assert list(json.loads(cursor)) == [str(tmp_path / "a.csv")]
    (tmp_path / "binance" / "b.csv").write_bytes(b"22")  # back again: new to the cursor
    fresh, cursor = changes(list_landing(str(tmp_path)), cursor)
    assert [e.key for e in fresh] == [str(tmp_path / "binance" / "b.csv")]
    assert list_landing(str(tmp_path / "nowhere")) == []
    with pytest.raises(ValueError, match="cursor"):
        changes(entries, "[1, 2]")


def test_landing_cursor_on_s3(s3_env):
    client = boto3.client("s3", endpoint_url=s3_env.endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="landing")
    klines = (DATA / "binance" / "ADABTC-1m-2021-11-27.csv").read_bytes()
    client.put_object(Bucket="landing", Key="drops/binance/ADABTC-1m-2021-11-27.csv", Body=klines)
    ohlcvt = b"1381095000,122.0,122.0,122.0,122.0,0.1,1\n"
    client.put_object(Bucket="landing", Key="drops/XBTUSD_60.csv", Body=ohlcvt)
    client.put_object(Bucket="landing", Key="other/ignored.csv", Body=b"x")
    s3 = S3Options.from_env()
    entries = list_landing("s3://landing/drops", s3)
    assert [(e.key, e.size) for e in entries] == [
        ("s3://landing/drops/XBTUSD_60.csv", len(ohlcvt)),
        ("s3://landing/drops/binance/ADABTC-1m-2021-11-27.csv", len(klines)),
    ]
    fresh, cursor = changes(entries, None)
    assert len(fresh) == 2 and changes(list_landing("s3://landing/drops", s3), cursor) == ([], cursor)

    body = read_bytes(entries[1].key, s3)
    bars = parse(body, entries[1].key).frames["bars"]
    assert bars.height == 10 and set(bars["venue"]) == {"binance"}

    client.put_object(Bucket="landing", Key="drops/XBTUSD_60.csv", Body=ohlcvt.replace(b"0.1,1", b"0.25,2"))
    fresh, _ = changes(list_landing("s3://landing/drops", s3), cursor)
    assert [(e.key, e.size) for e in fresh] == [("s3://landing/drops/XBTUSD_60.csv", len(ohlcvt) + 1)]
