"""Websocket captures replayed end to end: reconciliation, exact values read from the files, books
that agree with the venue's own best bid/offer, and the vectorised path equal to the reference."""

from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from arbiter.platform import quality
from arbiter.platform.sources.base import Adapter, RawSnapshot
from arbiter.platform.sources.stream import ADAPTER, CaptureFormatError, parse, parse_many, recognise
from arbiter.platform.sources.stream.captures import CRYPTOFEED, NS_LINES, seconds_to_ns
from arbiter.platform.sources.stream.kraken import KrakenHandler
from arbiter.platform.sources.stream.replay import replay

DATA = Path(__file__).parents[2] / "data" / "stream"
HFT = DATA / "binance_20240808"
CF = DATA / "captures_2021"
SAMPLES = sorted(HFT.glob("*.gz")) + sorted(CF.glob("*.gz"))


def snapshot(path: Path, **meta: str) -> RawSnapshot:
    return RawSnapshot(source="capture", origin=str(path), body=path.read_bytes(), received_at=0, meta=meta)


@cache
def parsed(name: str):
    path = HFT / name if (HFT / name).exists() else CF / name
    return parse(snapshot(path), "2024-08-08")


def lines(path: Path) -> list[str]:
    return gzip.decompress(path.read_bytes()).decode().splitlines()


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_every_sample_file_reconciles(path):
    result = parsed(path.name)
    assert result.unaccounted() == 0
    assert result.raw_records > 0
    assert result.resyncs == 0  # the samples have no gaps and every Kraken checksum matches
    for table, frame in result.frames.items():
        assert frame.height > 0, table
    if "quotes" in result.frames:  # the checks that fail a partition hold on every sample
        for rule in (quality.duplicates, quality.out_of_order, quality.crossed):
            assert rule(result.frames["quotes"]).passed, rule.__name__


@pytest.mark.parametrize(
    "names",
    [
        ["BINANCE.http.0.0.gz", "BINANCE.ws.1.0.gz"],
        ["BINANCE_FUTURES.http.0.0.gz", "BINANCE_FUTURES.ws.1.0.gz"],
        ["KRAKEN.0.gz", "KRAKEN.ws.48.0.gz", "KRAKEN.ws.49.0.gz", "KRAKEN.ws.50.0.gz"],
    ],
)
def test_captures_of_one_session_reconcile_and_rest_snapshots_build_books(names):
    result = parse_many([snapshot(CF / n) for n in names], "2021")
    assert result.unaccounted() == 0
    assert result.raw_records == sum(parsed(n).raw_records for n in names)
    assert "quarantine" not in result.frames  # alone, the Binance .ws. diffs have no snapshot
    assert result.frames["quotes"].filter(pl.col("channel") == "ws_book").height > 0


def test_binance_diffs_without_a_snapshot_are_quarantined_not_dropped():
    result = parsed("BINANCE_US.ws.1.0.gz")  # no .http. file was recorded for Binance.US
    quarantine = result.frames["quarantine"]
    depth_lines = [line for line in lines(CF / "BINANCE_US.ws.1.0.gz") if '"e":"depthUpdate"' in line]
    assert quarantine.get_column("reason").unique().to_list() == ["no_snapshot"]
    assert quarantine.height == len(depth_lines)
    assert quarantine.get_column("raw")[0] == depth_lines[0].split(": ", 1)[1].encode()


def test_symbols_venues_and_markets():
    expected = {
        "spot_btcusdt.gz": ("binance", "spot", {"BTC-USDT"}),
        "usdm_btcusdt.gz": ("binance", "linear_perp", {"BTC-USDT"}),
        "BINANCE.ws.1.0.gz": ("binance", "spot", {"NKN-USDT", "BLZ-ETH", "LRC-BTC", "RUNE-EUR"}),
        "BINANCE_FUTURES.ws.1.0.gz": ("binance", "linear_perp", {"SUSHI-USDT", "AKRO-USDT", "KEEP-USDT", "CTK-USDT"}),
        "BINANCE_US.ws.1.0.gz": ("binance_us", "spot", {"CRV-USDT", "COMP-USDT", "OMG-BUSD", "ZRX-USDT"}),
        "COINBASE.ws.28.0.gz": ("coinbase", "spot", None),
        "KRAKEN.ws.50.0.gz": ("kraken", "spot", None),
    }
    for name, (venue, market, symbols) in expected.items():
        frames = parsed(name).frames
        rows = pl.concat([frames[t].select("venue", "market", "symbol") for t in ("quotes", "trades") if t in frames])
        assert rows.get_column("venue").unique().to_list() == [venue], name
        assert rows.get_column("market").unique().to_list() == [market], name
        if symbols is not None:
            assert set(rows.get_column("symbol").unique().to_list()) <= symbols, name
    kraken = set(parsed("KRAKEN.ws.50.0.gz").frames["quotes"].get_column("symbol").unique().to_list())
    assert {"BTC-CHF", "XMR-USD", "WAVES-EUR"} <= kraken  # XBT/CHF is BTC-CHF


def test_first_book_ticker_and_trade_read_exactly_from_the_files():
    spot = parsed("spot_btcusdt.gz").frames
    first = ints(spot["quotes"]).filter(pl.col("channel") == "book_ticker").row(0, named=True)
    # line 3: {"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000",...}
    assert (first["bid"], first["bid_size"], first["ask"], first["ask_size"]) == (61837.63, 3.78826, 61837.64, 1.54698)
    assert first["seq"] == 50093239212
    assert first["ts_source"] == "receive"  # spot bookTicker has no event time
    assert first["recv_ts"] == first["ts"] == 1723161254087891268
    trade = ints(spot["trades"]).row(0, named=True)
    # {"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000",
    #  "T":1723161255342,"m":true,...}: the buyer was the maker, so the aggressor sold
    assert (trade["price"], trade["size"], trade["side"], trade["trade_id"]) == (61837.63, 0.02, "sell", "3735683259")
    assert trade["ts"] == 1723161255342 * 1_000_000 and trade["ts_source"] == "venue"

    perp = parsed("usdm_btcusdt.gz").frames
    first = ints(perp["quotes"]).filter(pl.col("channel") == "book_ticker").row(0, named=True)
    assert (first["bid"], first["bid_size"], first["ask"], first["ask_size"]) == (61800.2, 2.507, 61800.3, 2.51)
    assert first["ts"] == 1723161256313 * 1_000_000 and first["ts_source"] == "venue"
    trade = perp["trades"].row(0, named=True)
    assert (trade["price"], trade["size"], trade["side"], trade["trade_id"]) == (61800.3, 0.006, "buy", "5266583935")


def test_cryptofeed_values_and_exact_receive_times():
    kraken = ints(parsed("KRAKEN.ws.48.0.gz").frames["trades"]).row(0, named=True)
    # 1618678142.592855: [993,[["354.11000000","0.89594024","1618678142.557535","s","l",""]],"trade","XMR/USD"]
    assert (kraken["symbol"], kraken["price"], kraken["size"], kraken["side"]) == (
        "XMR-USD",
        354.11,
        0.89594024,
        "sell",
    )
    assert kraken["ts"] == 1618678142557535000 and kraken["recv_ts"] == 1618678142592855000
    assert kraken["trade_id"] == "1618678142592855000:0"
    coinbase = parsed("COINBASE.ws.28.0.gz").frames
    match = coinbase["trades"].filter(pl.col("trade_id") == "280232").row(0, named=True)
    # {"type":"match","trade_id":280232,...,"side":"sell","size":"985","price":"0.00001305","product_id":"SKL-BTC"}
    assert (match["symbol"], match["price"], match["size"], match["side"]) == ("SKL-BTC", 0.00001305, 985.0, "buy")
    ticker = coinbase["quotes"].filter(pl.col("channel") == "book_ticker").row(0, named=True)
    assert (ticker["symbol"], ticker["bid"], ticker["ask"], ticker["seq"]) == ("BAND-GBP", 14.755, 14.806, 333938798)
    assert ticker["bid_size"] is None  # the 2021 ticker carried no sizes: null, not invented
    binance = ints(parsed("BINANCE.ws.1.0.gz").frames["quotes"]).row(0, named=True)
    assert binance["recv_ts"] == 1633998513377805000
    assert seconds_to_ns("1633998512.0633569") == 1633998512063356900
    bars = parsed("BINANCE_FUTURES.ws.1.0.gz").frames["bars"]
    assert bars.height == 4 and set(bars.get_column("interval").to_list()) == {"1m"}
    assert (bars.get_column("low") <= bars.get_column("high")).all()


def test_book_top_equals_the_venues_book_ticker():
    """The book rebuilt from the snapshot and diffs against Binance's own best bid/offer: at the
    same update id (bookTicker ``u`` and depth ``u`` count the same book updates) they agree
    exactly; matched by receive time, they agree except around updates in flight."""
    for name in ("spot_btcusdt.gz", "usdm_btcusdt.gz"):
        quotes = parsed(name).frames["quotes"]
        book = quotes.filter(pl.col("channel") == "ws_book")
        ticker = quotes.filter(pl.col("channel") == "book_ticker")
        same_id = book.join(ticker, on="seq", suffix="_ticker")
        assert same_id.height > 500, name
        for column in ("bid", "ask", "bid_size", "ask_size"):
            assert (same_id.get_column(column) == same_id.get_column(f"{column}_ticker")).all(), (name, column)
        by_time = (
            book.sort("recv_ts")
            .join_asof(ticker.sort("recv_ts"), on="recv_ts", suffix="_ticker")
            .drop_nulls("bid_ticker")
        )
        agree = (
            (by_time.get_column("bid") == by_time.get_column("bid_ticker"))
            & (by_time.get_column("ask") == by_time.get_column("ask_ticker"))
        ).mean()
        assert agree > 0.99, name


@pytest.mark.parametrize(
    ("name", "price_decimals", "size_decimals"), [("spot_btcusdt.gz", 8, 8), ("usdm_btcusdt.gz", 2, 3)]
)
def test_prices_formatted_at_the_venues_decimals_give_the_original_strings(name, price_decimals, size_decimals):
    originals, trades = {}, {}
    for line in lines(HFT / name):
        data = json.loads(line.split(" ", 1)[1]).get("data", {})
        if "A" in data and "u" in data:
            originals[data["u"]] = (data["b"], data["a"], data["B"], data["A"])
        elif data.get("e") == "trade":
            trades[str(data["t"])] = (data["p"], data["q"])
    frames = parsed(name).frames
    tickers = frames["quotes"].filter(pl.col("channel") == "book_ticker")
    assert tickers.height == len(originals)
    for seq, bid, ask, bid_size, ask_size in tickers.select("seq", "bid", "ask", "bid_size", "ask_size").iter_rows():
        p, s = price_decimals, size_decimals
        assert (f"{bid:.{p}f}", f"{ask:.{p}f}", f"{bid_size:.{s}f}", f"{ask_size:.{s}f}") == originals[seq]
    assert frames["trades"].height == len(trades)
    for trade_id, price, size in frames["trades"].select("trade_id", "price", "size").iter_rows():
        assert (f"{price:.{price_decimals}f}", f"{size:.{size_decimals}f}") == trades[trade_id]


@pytest.mark.parametrize("name", ["spot_btcusdt.gz", "usdm_btcusdt.gz"])
def test_vectorised_path_equals_message_by_message_replay(name):
    fast, reference = parsed(name), replay(snapshot(HFT / name), "2024-08-08")
    assert fast.summary() == reference.summary()
    for table, frame in reference.frames.items():
        assert_frame_equal(fast.frames[table].sort(pl.all()), frame.sort(pl.all()))


@pytest.mark.parametrize("break_by", ["crossing_diff", "lost_diff"])
@pytest.mark.parametrize("name", ["spot_btcusdt.gz", "usdm_btcusdt.gz"])
def test_vectorised_books_discard_on_a_gap_or_a_crossed_diff_as_the_handler_does(tmp_path, name, break_by):
    """Runs of diffs are applied in one compiled loop; a diff that crosses the book, or a missing
    diff (a gap), ends the run exactly where the message-by-message replay discards the book."""
    text = lines(HFT / name)[:6000]
    depth = [i for i, line in enumerate(text) if '"depthUpdate"' in line]
    at = depth[len(depth) // 2]
    if break_by == "crossing_diff":
        stamp, payload = text[at].split(" ", 1)
        message = json.loads(payload)
        message.get("data", message)["b"] = [["99999999.00", "1.000"]]  # a bid above every ask
        text[at] = f"{stamp} {json.dumps(message, separators=(',', ':'))}"
    else:
        del text[at]
    path = tmp_path / name
    path.write_bytes(gzip.compress("\n".join(text).encode()))
    fast, reference = parse(snapshot(path), "p"), replay(snapshot(path), "p")
    assert fast.resyncs == reference.resyncs == 1
    assert fast.summary() == reference.summary() and fast.unaccounted() == 0
    for table, frame in reference.frames.items():
        assert_frame_equal(fast.frames[table].sort(pl.all()), frame.sort(pl.all()))
    # The crossing diff and every diff after the break (it waits for a snapshot that never comes)
    # are quarantined, not dropped.
    resynced = fast.frames["quarantine"].filter(pl.col("reason") == "book_resync").height
    assert resynced == sum('"depthUpdate"' in line for line in text[at:])


def test_vectorised_path_hands_odd_lines_to_the_handler(tmp_path):
    """Lines the column decoders cannot take (other layouts, bad fields, crossed quotes, unknown
    messages) get the handler's exact treatment, and the totals still reconcile."""
    text = lines(HFT / "spot_btcusdt.gz")[:400]
    bt = next(i for i, line in enumerate(text) if "@bookTicker" in line and i > 20)
    ns = text[bt].split(" ", 1)[0]
    text += [
        f'{ns} {{"stream":"btcusdt@bookTicker","data":{{"u":1,"s":"BTCUSDT","b":"9.0","B":"1","a":"8.0","A":"1"}}}}',
        f'{ns} {{"stream":"btcusdt@bookTicker","data":{{"s":"BTCUSDT","u":2,"b":"x","B":"1","a":"8.0","A":"1"}}}}',
        f'{ns} {{"stream":"btcusdt@bookTicker","data":{{"u":3,"s":"BTCUSDT","b":"inf","B":"1","a":"8.0","A":"1"}}}}',
        # keys in another order at the same places: read by key, not by place
        f'{ns} {{"stream":"btcusdt@bookTicker","data":{{"u":5,"s":"BTCUSDT","B":"1.5","b":"100","a":"101","A":"1"}}}}',
        f'{ns} {{"stream":"x@trade","data":{{"e":"trade","E":1,"s":"NOPE","t":1,"p":"1","q":"1","T":1,"m":true}}}}',
        f'{ns} {{"result":null,"id":1}}',
        f"{ns} {{notjson",
    ]
    path = tmp_path / "spot_odd.gz"
    path.write_bytes(gzip.compress("\n".join(text).encode()))
    fast, reference = parse(snapshot(path), "p"), replay(snapshot(path), "p")
    assert fast.unaccounted() == 0 and fast.summary() == reference.summary()
    reasons = fast.frames["quarantine"].select("reason", "field").sort("reason").rows()
    assert reasons == [
        ("crossed_book", "bid"),
        ("malformed_json", None),
        ("unknown_symbol", "symbol"),
        ("unparseable", "bid"),
        ("unparseable", "bid"),
    ]
    assert fast.absorbed["subscription_ack"] == 1
    swapped = fast.frames["quotes"].filter(pl.col("seq") == 5).select("bid", "bid_size", "ask", "ask_size").rows()
    assert swapped == [(100.0, 1.5, 101.0, 1.0)]


def test_bad_lines_and_messages_are_quarantined_with_their_bytes(tmp_path):
    path = tmp_path / "capture.log"
    path.write_bytes(
        b"wss://ws.kraken.com <-> 1618678132.3858151\n"
        b'1618678132.8258188: {"event":"heartbeat"}\n'
        b"garbage without a timestamp\n"
        b'1618678132.9: [1,{"b":[["1.0","1.0","1618678133.1"]],"c":"1"},"book-10","XBT/USD"]\n'
        b'1618678133.0: {"event":"subscriptionStatus","status":"error","errorMessage":"bad"}\n'
    )
    result = parse(snapshot(path), "p")
    assert result.unaccounted() == 0
    quarantine = {row["reason"]: row for row in result.frames["quarantine"].iter_rows(named=True)}
    assert quarantine["malformed_line"]["raw"] == b"garbage without a timestamp"
    assert quarantine["no_snapshot"]["target"] == "quotes"
    assert quarantine["subscription_error"]["source"] == "capture"
    assert quarantine["subscription_error"]["partition"] == "p"


def test_not_a_capture_names_source_partition_and_field(tmp_path):
    path = tmp_path / "prices.csv"
    path.write_text("ts,price\n1,2\n")
    with pytest.raises(CaptureFormatError, match=r"source 'capture', partition 'p', field 'body'"):
        parse(snapshot(path), "p")
    unknown = tmp_path / "unknown.log"
    unknown.write_text('1618678132.1: {"hello":1}\n')
    with pytest.raises(CaptureFormatError, match=r"field 'venue'"):
        parse(snapshot(unknown), "p")
    assert parse(snapshot(unknown, venue="kraken", market="spot"), "p").frames["quarantine"].height == 1


def test_recognise_tells_the_formats_apart_from_their_first_bytes():
    assert recognise((HFT / "usdm_btcusdt.gz").read_bytes()[:2048], "usdm_btcusdt.gz") == NS_LINES
    assert recognise((CF / "KRAKEN.ws.50.0.gz").read_bytes()[:512], "x") == CRYPTOFEED
    assert recognise(gzip.decompress((CF / "COINBASE.ws.28.0.gz").read_bytes())[:300], "x") == CRYPTOFEED
    assert recognise(b'1633998512.0633569: {"stream":"a"}', "x") == CRYPTOFEED
    assert recognise(b"ts,price\n", "x.csv") is None
    assert recognise(b'{"lastUpdateId":1}', "x.json") is None
    assert recognise(gzip.compress(b"hello world\n"), "x.gz") is None
    adapter: Adapter = ADAPTER
    assert adapter.kind == "stream_capture" and adapter.recognise(b'1723161253937085768 {"e":1}', "x") == NS_LINES


def test_every_kraken_update_checksum_is_verified_on_the_sample():
    handler = KrakenHandler(source="capture")
    updates = 0
    for line in lines(CF / "KRAKEN.ws.50.0.gz"):
        if not line or line.startswith("wss://"):
            continue
        stamp, payload = line.split(": ", 1)
        handler.on_message(seconds_to_ns(stamp), payload.encode())
        updates += '"c":"' in payload
    assert updates > 4000 and handler.checksums_verified == updates and handler.resyncs == 0


def ints(frame: pl.DataFrame) -> pl.DataFrame:
    """Timestamps as integer ns (a Python ``datetime`` would drop the nanoseconds)."""
    return frame.with_columns(pl.col(pl.Datetime("ns", "UTC")).cast(pl.Int64))


def test_the_snapshot_belongs_to_the_symbol_the_user_names_in_any_spelling():
    """``arbiter ingest --symbol`` passes the symbol as typed; the capture's REST snapshot line
    names none, so it is matched to the depth stream of that market however it is spelled."""
    expected = parsed("spot_btcusdt.gz").summary()
    for spelling in ("BTC-USDT", "btcusdt"):
        given = snapshot(HFT / "spot_btcusdt.gz", symbol=spelling)
        assert parse(given, "2024-08-08").summary() == expected
        assert replay(given, "2024-08-08").summary() == expected
