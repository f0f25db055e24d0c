"""Real recorded REST responses of Binance, Coinbase and Kraken → the contract, exactly, through the
adapter protocol: recognised by content, parsed with counts that reconcile, drift counted."""

import gzip
import json
from pathlib import Path

import pytest

from arbiter.platform.lake import Lake
from arbiter.platform.sources.base import RawSnapshot
from arbiter.platform.sources.exchange_rest import (
    ADAPTER,
    RejectedResponse,
    UnknownFormat,
    parse,
    recognise,
)
from arbiter.platform.sources.exchange_rest.recognise import HEAD_BYTES, partial_json

DATA = Path(__file__).parents[2] / "data" / "rest"
FETCHED = 1_700_000_000_123_456_789
BINANCE = "https://api.binance.com/api/v3"
COINBASE = "https://api.coinbase.com/api/v3/brokerage/market"
KRAKEN = "https://api.kraken.com/0/public"


def pairs(j) -> int:
    return sum(1 for k in j["result"] if k != "last")


def rows_of_pairs(j) -> int:
    return sum(len(v) for k, v in j["result"].items() if k != "last")


# file, the URL it was fetched from, format recognised, rows per table, absorbed, the response's own
# record count (counted here from the JSON, independently of the parser)
SAMPLES = [
    ("binance_spot/http_spot_market_book_ticker.json", f"{BINANCE}/ticker/bookTicker?symbol=BTCUSDT",
     "binance/book_ticker", {"quotes": 1}, {}, lambda j: 1),
    ("binance_spot/http_spot_market_depth.json", f"{BINANCE}/depth?symbol=BTCUSDT&limit=10",
     "binance/depth", {"quotes": 1}, {}, lambda j: 1),
    ("binance_spot/http_spot_market_trades.json", f"{BINANCE}/trades?symbol=BTCUSDT&limit=10",
     "binance/trades", {"trades": 10}, {}, len),
    ("binance_spot/http_spot_market_historical_trades.json", f"{BINANCE}/historicalTrades?symbol=BTCUSDT&limit=10",
     "binance/trades", {"trades": 10}, {}, len),
    ("binance_spot/http_spot_market_agg_trades.json", f"{BINANCE}/aggTrades?symbol=BTCUSDT&limit=10",
     "binance/agg_trades", {"trades": 10}, {}, len),
    ("binance_spot/http_spot_market_klines.json", f"{BINANCE}/klines?symbol=BTCUSDT&interval=1m&limit=10",
     "binance/klines", {"bars": 10}, {}, len),
    ("binance_spot/http_spot_market_exchange_info.json", f"{BINANCE}/exchangeInfo",
     "binance/exchange_info", {"instruments": 2}, {}, lambda j: len(j["symbols"])),
    ("binance_spot/http_spot_market_avg_price.json", f"{BINANCE}/avgPrice?symbol=BTCUSDT",
     "binance/avg_price", {}, {"average_price_is_not_a_quote": 1}, lambda j: 1),
    ("binance_spot/http_spot_market_ticker_price.json", f"{BINANCE}/ticker/price?symbol=BTCUSDT",
     "binance/ticker_price", {}, {"last_price_is_not_a_quote": 1}, lambda j: 1),
    ("coinbase_advanced_trade/http_ticker.json", f"{COINBASE}/products/BTC-USD/ticker?limit=3",
     "coinbase/ticker", {"quotes": 1, "trades": 3}, {}, lambda j: len(j["trades"]) + 1),
    ("coinbase_advanced_trade/http_product_book.json", f"{COINBASE}/product_book?product_id=BTC-USD&limit=5",
     "coinbase/product_book", {"quotes": 1}, {}, lambda j: 1),
    ("coinbase_advanced_trade/http_products.json", f"{COINBASE}/products",
     "coinbase/products", {"instruments": 2}, {}, lambda j: len(j["products"])),
    ("coinbase_advanced_trade/http_product.json", f"{COINBASE}/products/BTC-USD",
     "coinbase/products", {"instruments": 1}, {}, lambda j: 1),
    ("coinbase_advanced_trade/http_candles.json", f"{COINBASE}/products/BTC-USD/candles?granularity=ONE_HOUR",
     "coinbase/candles", {"bars": 2}, {}, lambda j: len(j["candles"])),
    ("coinbase_pro/http_products_2021.json", "https://api.pro.coinbase.com/products",
     "coinbase/pro_products", {"instruments": 162}, {}, len),
    ("kraken/http_ticker.json", f"{KRAKEN}/Ticker?pair=XBTUSDT", "kraken/ticker", {"quotes": 1}, {}, pairs),
    ("kraken/http_order_book.json", f"{KRAKEN}/Depth?pair=XBTUSDT&count=5", "kraken/depth", {"quotes": 1}, {}, pairs),
    ("kraken/http_trades.json", f"{KRAKEN}/Trades?pair=XBTUSDT", "kraken/trades", {"trades": 1000}, {}, rows_of_pairs),
    ("kraken/http_ohlc.json", f"{KRAKEN}/OHLC?pair=XBTUSDT&interval=1",
     "kraken/ohlc", {"bars": 721}, {}, rows_of_pairs),
    ("kraken/http_asset_pairs.json", f"{KRAKEN}/AssetPairs?pair=XBTUSDT",
     "kraken/asset_pairs", {"instruments": 1}, {}, pairs),
    ("kraken/http_asset_pairs_2021.json", f"{KRAKEN}/AssetPairs",
     "kraken/asset_pairs", {"instruments": 293}, {"dark_pool_pair": 11}, pairs),
    ("kraken/http_futures_tickers.json", "https://futures.kraken.com/derivatives/api/v3/tickers",
     "kraken_futures/tickers", {"quotes": 2}, {}, lambda j: len(j["tickers"])),
    ("kraken/http_futures_public_executions.json",
     "https://futures.kraken.com/api/history/v3/market/PF_XBTUSD/executions",
     "kraken_futures/executions", {"trades": 3}, {}, lambda j: len(j["elements"])),
]  # fmt: skip


def snapshot(file: str, origin: str = "", **meta: str) -> RawSnapshot:
    return RawSnapshot("test_rest", origin or file, (DATA / file).read_bytes(), FETCHED, meta)


def raw(file: str):
    return json.loads((DATA / file).read_text(), parse_float=str)


def test_every_sample_file_is_covered():
    assert {s[0] for s in SAMPLES} == {str(p.relative_to(DATA)) for p in DATA.glob("*/*.json")}


@pytest.mark.parametrize(("file", "origin", "fmt", "rows", "absorbed", "records"), SAMPLES, ids=lambda v: str(v)[:40])
def test_every_sample_is_recognised_and_parsed_with_counts_that_reconcile(
    tmp_path, file, origin, fmt, rows, absorbed, records
):
    body = (DATA / file).read_bytes()
    assert recognise(body[:HEAD_BYTES], "renamed.json") == fmt  # by content: the name says nothing
    parsed = ADAPTER.parse(snapshot(file, origin), partition="p")
    assert parsed.raw_records == records(raw(file))  # the response's own count of records
    assert parsed.rows() == rows and dict(parsed.absorbed) == absorbed
    assert parsed.unaccounted() == 0 and not parsed.ignored_fields  # nothing lost, no unknown field
    lake = Lake(str(tmp_path))
    for table, frame in parsed.frames.items():
        lake.write(table, frame, {"source": "rest"})  # validates against the contract


def test_the_adapter_follows_the_protocol():
    assert ADAPTER.kind == "exchange_rest"
    assert ADAPTER.recognise(b'{"error":[],"result":{"XXBTZUSD":{"a":["1.0","1","1.000"]', "x") == "kraken/ticker"


def test_partial_json_reads_what_the_head_holds():
    assert partial_json(b'{"a": [1, 2.5, {"b": "x"}, {"c": "unterminat') == {"a": [1, 2.5, {"b": "x"}, {}]}
    assert partial_json(b'  [[1634943780000, "60685.2') == [[1634943780000]]
    assert partial_json(b"1700000000 {}") == 1700000000 and partial_json(b"<html>") is None


@pytest.mark.parametrize(
    "body",
    [
        b'{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1.0","q":"1.0","T":1,"m":true}',  # a websocket message
        b'{"u":400900217,"s":"BNBUSDT","b":"25.35","B":"31.21","a":"25.36","A":"40.66"}',  # ws bookTicker
        b'[1234,{"a":["5525.4","1","1.000"]},"ticker","XBT/USD"]',  # Kraken websocket
        b"1723161240000000000 {}",  # a capture line
        b"ts,bid,ask\n1,2,3\n",
        b"<html>maintenance</html>",
        b'{"lastUpdateId":1,"E":2,"T":3,"bids":[["1","2"]],"asks":[]}',  # a USD-M futures book: not spot
        b"",
    ],
)
def test_what_is_not_an_exchange_rest_response_is_not_claimed(body):
    assert recognise(body, "response.json") is None


def test_a_short_head_is_enough():
    for file, _, fmt, *_ in SAMPLES:
        assert recognise((DATA / file).read_bytes()[:1024], "") == fmt, file


def test_a_gzipped_response_reads_as_sent():
    body = gzip.compress((DATA / "kraken/http_ticker.json").read_bytes())
    assert parse(RawSnapshot("t", "ticker.json.gz", body, FETCHED), "p").rows() == {"quotes": 1}


def test_unknown_bodies_fail_naming_source_partition_and_origin():
    with pytest.raises(UnknownFormat, match=r"source 'test_rest', partition 'p', origin 'x.csv'"):
        parse(RawSnapshot("test_rest", "x.csv", b"a,b\n1,2\n", FETCHED), "p")


# --- exact values ----------------------------------------------------------------------------


def instrument(file: str, origin: str = "") -> dict:
    return parse(snapshot(file, origin), "p").frames["instruments"].row(0, named=True)


def test_binance_values_and_times():
    spot = instrument("binance_spot/http_spot_market_exchange_info.json")
    assert (spot["symbol"], spot["price_precision"], spot["size_precision"]) == ("BTC-USDT", 2, 5)
    assert spot["valid_from"].timestamp() == 1634942465.856
    file = "binance_spot/http_spot_market_trades.json"
    trades = parse(snapshot(file, f"{BINANCE}/trades?symbol=BTCUSDT"), "p").frames["trades"]
    for row, venue_row in zip(trades.iter_rows(named=True), raw(file), strict=True):
        assert (row["price"], row["size"]) == (float(venue_row["price"]), float(venue_row["qty"]))
        assert row["trade_id"] == str(venue_row["id"]) and row["symbol"] == "BTC-USDT"
        assert trades["ts"].dt.epoch("ms")[0] == raw(file)[0]["time"]
        assert row["side"] == ("sell" if venue_row["isBuyerMaker"] else "buy")
    book = parse(snapshot("binance_spot/http_spot_market_depth.json", f"{BINANCE}/depth?symbol=BTCUSDT"), "p")
    top = book.frames["quotes"].row(0, named=True)
    assert top["seq"] == 14527958487 and (top["bid"], top["ask"]) == (60650.0, 60650.01)
    assert top["ts_source"] == "receive" and top["ts"] == top["recv_ts"]


def test_binance_klines_become_bars_exactly():
    file = "binance_spot/http_spot_market_klines.json"
    bars = parse(snapshot(file, f"{BINANCE}/klines?symbol=BTCUSDT&interval=1m"), "p").frames["bars"]
    first = bars.row(0, named=True)
    assert first["ts"].timestamp() == 1634943780.0 and first["interval"] == "1m" and first["ts_source"] == "venue"
    assert (first["open"], first["high"], first["low"], first["close"]) == (60685.22, 60729.84, 60670.9, 60719.27)
    assert (first["volume"], first["quote_volume"], first["trade_count"]) == (21.63272, 1313200.0134041, 617)
    for row, k in zip(bars.iter_rows(named=True), raw(file), strict=True):
        assert row["ts"].timestamp() * 1000 == k[0]
        assert [row[c] for c in ("open", "high", "low", "close", "volume", "quote_volume")] == [
            float(k[i]) for i in (1, 2, 3, 4, 5, 7)
        ]
        assert row["trade_count"] == k[8]


def test_kraken_ohlc_becomes_bars_exactly_with_the_interval_from_the_url_or_the_spacing():
    file = "kraken/http_ohlc.json"
    with_url = parse(snapshot(file, f"{KRAKEN}/OHLC?pair=XBTUSDT&interval=1"), "p").frames["bars"]
    from_spacing = parse(snapshot(file), "p").frames["bars"]
    assert with_url.equals(from_spacing) and set(with_url["interval"]) == {"1m"}
    rows = raw(file)["result"]["XBTUSDT"]
    assert set(with_url["symbol"]) == {"BTC-USDT"}
    for row, k in zip(with_url.iter_rows(named=True), rows, strict=True):
        assert row["ts"].timestamp() == k[0]
        assert [row[c] for c in ("open", "high", "low", "close", "volume")] == [float(k[i]) for i in (1, 2, 3, 4, 6)]
        assert row["trade_count"] == k[7] and row["quote_volume"] is None  # Kraken sends VWAP, not quote volume
    third = with_url.row(2, named=True)
    assert (third["close"], third["volume"], third["trade_count"]) == (106038.3, 0.00032101, 1)


def test_coinbase_candles_become_bars_exactly():
    file = "coinbase_advanced_trade/http_candles.json"
    bars = parse(snapshot(file, f"{COINBASE}/products/BTC-USD/candles?granularity=ONE_HOUR"), "p").frames["bars"]
    assert bars.select("symbol", "interval").unique().rows() == [("BTC-USD", "1h")]
    first = bars.row(0, named=True)
    assert first["ts"].timestamp() == 1712192400
    assert (first["open"], first["high"], first["low"], first["close"]) == (66312.4, 66331.99, 66055.14, 66181.6)
    assert (first["volume"], first["quote_volume"], first["trade_count"]) == (355.82896243, None, None)
    # Without the URL the spacing of the candles gives the interval, and the symbol must be named.
    spaced = parse(snapshot(file, symbol="BTC-USD"), "p").frames["bars"]
    assert spaced.equals(bars)


def test_kraken_symbols_times_and_sides():
    pair = instrument("kraken/http_asset_pairs.json")
    assert (pair["symbol"], pair["price_precision"], pair["size_precision"]) == ("BTC-USDT", 1, 8)
    assert (pair["taker_fee"], pair["maker_fee"], pair["min_notional"]) == (0.004, 0.0025, 0.5)
    trades = parse(snapshot("kraken/http_trades.json"), "p").frames["trades"]
    first = raw("kraken/http_trades.json")["result"]["XBTUSDT"][0]
    assert trades["ts"].dt.epoch("ns")[0] == 1762795433971744500  # from "1762795433.9717445", exactly
    assert (trades["side"][0], trades["trade_id"][0]) == ("buy", str(first[6]))
    ticker = parse(snapshot("kraken/http_ticker.json"), "p").frames["quotes"].row(0, named=True)
    assert (ticker["symbol"], ticker["bid"], ticker["ask"]) == ("BTC-USDT", 105944.2, 105944.3)


def test_kraken_2021_asset_pairs_keep_legacy_names_and_skip_dark_pools():
    pairs_2021 = parse(snapshot("kraken/http_asset_pairs_2021.json"), "p").frames["instruments"]
    btc_usd = pairs_2021.filter(symbol="BTC-USD").row(0, named=True)  # XXBTZUSD, wsname XBT/USD
    assert (btc_usd["price_precision"], btc_usd["size_precision"], btc_usd["taker_fee"]) == (1, 8, 0.0026)
    assert pairs_2021["symbol"].n_unique() == pairs_2021.height  # a dark pool never doubles its lit market


def test_kraken_futures_markets_from_the_symbol_prefix_and_index_tickers_absorbed():
    body = raw("kraken/http_futures_tickers.json")
    body["tickers"].append({"symbol": "in_xbtusd", "last": 91400.0})  # an index, not a market
    parsed = parse(RawSnapshot("test_rest", "tickers", json.dumps(body).encode(), FETCHED), "p")
    quotes = parsed.frames["quotes"]
    assert quotes.select("symbol", "market").rows() == [("BTC-USD", "inverse_perp"), ("ETH-USD", "linear_perp")]
    assert quotes["ts_source"].to_list() == ["venue", "venue"]  # the venue's serverTime
    assert parsed.absorbed == {"index_ticker": 1} and parsed.unaccounted() == 0
    trades = parse(snapshot("kraken/http_futures_public_executions.json"), "p").frames["trades"]
    assert set(trades["symbol"]) == {"BTC-USD"} and set(trades["market"]) == {"linear_perp"}


def test_coinbase_times_keep_microseconds_and_sizes_stay_null_where_absent():
    product = instrument("coinbase_advanced_trade/http_products.json")
    assert (product["price_precision"], product["size_precision"], product["min_notional"]) == (2, 8, 1.0)
    out = parse(snapshot("coinbase_advanced_trade/http_ticker.json"), "p").frames
    assert out["trades"]["ts"].dt.epoch("ns")[0] == 1775521738544778000
    assert out["trades"]["side"].to_list() == ["sell", "sell", "buy"]
    quote = out["quotes"].row(0, named=True)
    assert (quote["bid"], quote["ask"], quote["bid_size"], quote["ask_size"]) == (68923.66, 68923.67, None, None)
    book = parse(snapshot("coinbase_advanced_trade/http_product_book.json"), "p").frames["quotes"]
    assert book.select("bid", "bid_size", "ask", "ask_size", "ts_source").row(0) == (
        68923.66,
        0.17189468,
        68923.67,
        0.16987193,
        "venue",
    )


def test_coinbase_pro_layouts():
    """Bodies in the Coinbase Pro (now Exchange) documented layouts, which no sample holds: books
    with [price, size, orders] levels and a sequence, trades with the *maker's* side, candles as
    [time, low, high, open, close, volume]."""
    pro = "https://api.pro.coinbase.com/products/BTC-USD"
    book = b'{"bids":[["61000.01","0.5",3]],"asks":[["61000.02","1.25",1]],"sequence":24733071337}'
    assert recognise(book, "") == "coinbase/pro_book"
    quote = parse(RawSnapshot("t", f"{pro}/book?level=2", book, FETCHED), "p").frames["quotes"].row(0, named=True)
    assert (quote["symbol"], quote["bid"], quote["ask_size"], quote["seq"]) == ("BTC-USD", 61000.01, 1.25, 24733071337)
    assert quote["ts_source"] == "receive"
    timed = book[:-1] + b',"auction_mode":false,"auction":null,"time":"2021-04-17T16:43:37.123456Z"}'
    quote = parse(RawSnapshot("t", f"{pro}/book", timed, FETCHED), "p").frames["quotes"].row(0, named=True)
    assert quote["ts_source"] == "venue" and quote["ts"].timestamp() == pytest.approx(1618677817.123456)
    trades = b'[{"time":"2021-04-17T16:43:36.5Z","trade_id":170,"price":"61000.01","size":"0.01","side":"sell"}]'
    assert recognise(trades, "") == "coinbase/pro_trades"
    trade = parse(RawSnapshot("t", f"{pro}/trades", trades, FETCHED), "p").frames["trades"].row(0, named=True)
    assert (trade["side"], trade["trade_id"], trade["price"]) == ("buy", "170", 61000.01)  # the maker sold
    candles = b"[[1618677660,60990.5,61010,61000,61005.25,12.5],[1618677600,60900,61000,60950,60990.5,7.25]]"
    assert recognise(candles, "") == "coinbase/pro_candles"
    bar = parse(RawSnapshot("t", f"{pro}/candles", candles, FETCHED), "p").frames["bars"].row(0, named=True)
    assert (bar["interval"], bar["low"], bar["high"], bar["open"], bar["close"]) == (
        "1m",
        60990.5,
        61010,
        61000,
        61005.25,
    )


# --- the instrument's precision gives back the venue's strings ------------------------------------


def as_venue_wrote_it(value: float, precision: int, venue_text) -> bool:
    """Our stored float formatted at the instrument's precision is the venue's decimal.

    The digits a venue prints are a rendering choice, not the precision: Binance pads every decimal
    to 8 places ("60650.00000000" for a 0.01 tick), Kraken pads prices to 5 ("105944.30000" for
    pair_decimals 1), Coinbase trims trailing zeros ("68923" for a 0.01 increment). So the venue's
    text is compared at the instrument's precision: its digits up to the precision (right-padded
    with zeros where it trimmed) must equal ours exactly, and every digit it printed past the
    precision must be zero, else the precision would be wrong.
    """
    text = str(venue_text)
    whole, _, fraction = text.partition(".")
    assert not fraction[precision:].strip("0"), f"{text} has a digit past precision {precision}"
    venue = f"{whole}.{fraction[:precision].ljust(precision, '0')}" if precision else whole
    return f"{value:.{precision}f}" == venue


def test_the_comparison_can_fail():
    assert not as_venue_wrote_it(60650.0, 2, "60650.01000000")
    assert not as_venue_wrote_it(0.1 + 0.2, 17, "0.30000000000000000")  # float noise shows at too high a precision
    with pytest.raises(AssertionError, match="past precision 2"):
        as_venue_wrote_it(60650.005, 2, "60650.00500000")


def test_binance_prices_and_sizes_at_exchange_info_precision_give_back_the_venue_strings():
    info = parse(snapshot("binance_spot/http_spot_market_exchange_info.json"), "p").frames["instruments"]
    spot = info.filter(symbol="BTC-USDT").row(0, named=True)
    price, size = spot["price_precision"], spot["size_precision"]
    quote = parse(snapshot("binance_spot/http_spot_market_book_ticker.json"), "p").frames["quotes"].row(0, named=True)
    venue = raw("binance_spot/http_spot_market_book_ticker.json")
    assert quote["symbol"] == spot["symbol"]
    for ours, theirs, p in [("bid", "bidPrice", price), ("ask", "askPrice", price), ("bid_size", "bidQty", size)]:
        assert as_venue_wrote_it(quote[ours], p, venue[theirs])
    for file, fields in [
        ("binance_spot/http_spot_market_trades.json", ("price", "qty")),
        ("binance_spot/http_spot_market_historical_trades.json", ("price", "qty")),
        ("binance_spot/http_spot_market_agg_trades.json", ("p", "q")),
    ]:
        trades = parse(snapshot(file, f"{BINANCE}/trades?symbol=BTCUSDT"), "p").frames["trades"]
        for row, venue_row in zip(trades.iter_rows(named=True), raw(file), strict=True):
            assert row["symbol"] == spot["symbol"]
            assert as_venue_wrote_it(row["price"], price, venue_row[fields[0]])
            assert as_venue_wrote_it(row["size"], size, venue_row[fields[1]])
    file = "binance_spot/http_spot_market_klines.json"
    bars = parse(snapshot(file, f"{BINANCE}/klines?symbol=BTCUSDT"), "p").frames["bars"]
    for row, k in zip(bars.iter_rows(named=True), raw(file), strict=True):
        assert all(
            as_venue_wrote_it(row[c], price, k[i]) for c, i in (("open", 1), ("high", 2), ("low", 3), ("close", 4))
        )
        assert as_venue_wrote_it(row["volume"], size, k[5])


def test_kraken_prices_and_sizes_at_asset_pairs_precision_give_back_the_venue_strings():
    pair = instrument("kraken/http_asset_pairs.json")
    price, size = pair["price_precision"], pair["size_precision"]
    ticker = parse(snapshot("kraken/http_ticker.json"), "p").frames["quotes"].row(0, named=True)
    venue = raw("kraken/http_ticker.json")["result"]["XBTUSDT"]
    assert ticker["symbol"] == pair["symbol"]
    assert as_venue_wrote_it(ticker["bid"], price, venue["b"][0]) and as_venue_wrote_it(
        ticker["ask"], price, venue["a"][0]
    )
    assert as_venue_wrote_it(ticker["bid_size"], size, venue["b"][2])
    book = parse(snapshot("kraken/http_order_book.json"), "p").frames["quotes"].row(0, named=True)
    levels = raw("kraken/http_order_book.json")["result"]["XBTUSDT"]
    assert as_venue_wrote_it(book["bid"], price, levels["bids"][0][0])
    assert as_venue_wrote_it(book["ask_size"], size, levels["asks"][0][1])
    trades = parse(snapshot("kraken/http_trades.json"), "p").frames["trades"]
    for row, t in zip(trades.iter_rows(named=True), raw("kraken/http_trades.json")["result"]["XBTUSDT"], strict=True):
        assert as_venue_wrote_it(row["price"], price, t[0]) and as_venue_wrote_it(row["size"], size, t[1])
    bars = parse(snapshot("kraken/http_ohlc.json"), "p").frames["bars"]
    for row, k in zip(bars.iter_rows(named=True), raw("kraken/http_ohlc.json")["result"]["XBTUSDT"], strict=True):
        assert as_venue_wrote_it(row["close"], price, k[4]) and as_venue_wrote_it(row["volume"], size, k[6])


def test_coinbase_prices_and_sizes_at_product_precision_give_back_the_venue_strings():
    products = parse(snapshot("coinbase_advanced_trade/http_products.json"), "p").frames["instruments"]
    product = products.filter(symbol="BTC-USD").row(0, named=True)
    price, size = product["price_precision"], product["size_precision"]
    out = parse(snapshot("coinbase_advanced_trade/http_ticker.json"), "p").frames
    venue = raw("coinbase_advanced_trade/http_ticker.json")
    for row, t in zip(out["trades"].iter_rows(named=True), venue["trades"], strict=True):
        assert row["symbol"] == product["symbol"]
        assert as_venue_wrote_it(row["price"], price, t["price"]) and as_venue_wrote_it(row["size"], size, t["size"])
    assert as_venue_wrote_it(out["quotes"]["bid"][0], price, venue["best_bid"])
    book = parse(snapshot("coinbase_advanced_trade/http_product_book.json"), "p").frames["quotes"].row(0, named=True)
    best = raw("coinbase_advanced_trade/http_product_book.json")["pricebook"]["bids"][0]
    assert as_venue_wrote_it(book["bid"], price, best["price"]) and as_venue_wrote_it(
        book["bid_size"], size, best["size"]
    )
    file = "coinbase_advanced_trade/http_candles.json"
    bars = parse(snapshot(file, f"{COINBASE}/products/BTC-USD/candles"), "p").frames["bars"]
    for row, c in zip(bars.iter_rows(named=True), raw(file)["candles"], strict=True):
        assert as_venue_wrote_it(row["open"], price, c["open"]) and as_venue_wrote_it(row["volume"], size, c["volume"])


# --- drift, bad records, unusable responses ---------------------------------------------------


def test_bad_records_are_quarantined_with_their_field_and_drift_is_counted():
    records = raw("binance_spot/http_spot_market_trades.json")
    records[1].pop("price")  # missing required field
    records[2]["qty"] = "lots"  # unparseable
    records[3]["time"] = None  # null in a required field
    records[4]["newField"] = 1  # schema drift: ignored, counted
    records[6]["newField"] = 2
    records[5]["price"] = 60650.01  # a number instead of a string: still read
    body = json.dumps(records).encode()
    out = parse(RawSnapshot("binance_rest", f"{BINANCE}/trades?symbol=BTCUSDT", body, FETCHED), "2026-11-21")
    assert out.rows() == {"trades": 7, "quarantine": 3} and out.raw_records == len(records)
    assert out.ignored_fields == {"trade.newField": 2}
    q = out.frames["quarantine"]
    assert q.select("reason", "field").rows() == [
        ("missing_field", "price"),
        ("unparseable", "size"),
        ("missing_field", "ts"),
    ]
    assert set(q["target"]) == {"trades"} and set(q["partition"]) == {"2026-11-21"}
    assert set(q["source"]) == {"binance_rest"}
    assert json.loads(q["raw"][1])["qty"] == "lots"  # the original record, intact
    assert out.frames["trades"].filter(trade_id=str(records[5]["id"]))["price"].to_list() == [60650.01]


def test_drift_is_counted_in_every_layout():
    ticker = raw("kraken/http_ticker.json")
    ticker["result"]["XBTUSDT"]["x"] = ["1"]  # a new ticker field
    ticker["result"]["XBTUSDT"]["y"] = ["2"]
    out = parse(RawSnapshot("t", "Ticker", json.dumps(ticker).encode(), FETCHED), "p")
    assert out.ignored_fields == {"ticker.x": 1, "ticker.y": 1} and out.rows() == {"quotes": 1}
    trades = {"error": [], "result": {"XBTUSDT": [["1.0", "2.0", 1.5, "s", "m", "", 7, "new"]], "last": "1"}}
    out = parse(RawSnapshot("t", "Trades", json.dumps(trades).encode(), FETCHED), "p")
    assert out.ignored_fields == {"trade[7]": 1} and out.rows() == {"trades": 1}  # an array grew a position
    products = raw("coinbase_advanced_trade/http_products.json")
    products["products"][0]["new_flag"] = True
    products["new_envelope"] = 1
    out = parse(RawSnapshot("t", "products", json.dumps(products).encode(), FETCHED), "p")
    assert out.ignored_fields == {"product.new_flag": 1, "products.new_envelope": 1}


def test_a_null_in_a_required_field_of_a_bar_quarantines_that_bar_only():
    klines = raw("binance_spot/http_spot_market_klines.json")
    klines[0][4] = None  # close
    klines[1][1] = "60719.28"  # numbers as strings are what Binance sends: parsed
    out = parse(RawSnapshot("t", f"{BINANCE}/klines?symbol=BTCUSDT", json.dumps(klines).encode(), FETCHED), "p")
    assert out.rows() == {"bars": 9, "quarantine": 1} and out.frames["quarantine"]["field"][0] == "close"


def test_a_missing_symbol_is_named_and_the_snapshot_can_supply_it():
    file = "binance_spot/http_spot_market_trades.json"
    out = parse(snapshot(file, "trades.json"), "p")  # a file with no URL: whose trades?
    assert out.rows() == {"quarantine": 10} and set(out.frames["quarantine"]["field"]) == {"symbol"}
    named = parse(snapshot(file, "trades.json", symbol="BTC-USDT"), "p")  # e.g. `arbiter ingest --symbol`
    assert named.rows() == {"trades": 10} and set(named.frames["trades"]["symbol"]) == {"BTC-USDT"}


def test_unusable_responses_are_rejected_whole_with_their_bytes():
    truncated = b'[{"id": 1, "price": "1.0", "qty": "2", "time": 1, "isBuyerMaker": true}, {"id"'
    with pytest.raises(RejectedResponse, match=r"source 'binance_rest', partition 'p'.*malformed_response") as info:
        parse(RawSnapshot("binance_rest", f"{BINANCE}/trades?symbol=BTCUSDT", truncated, FETCHED), "p")
    assert info.value.quarantine["raw"][0] == truncated and info.value.quarantine["target"][0] == "snapshot"
    error = b'{"error": ["EGeneral:Too many requests"], "result": {}}'
    assert recognise(error, "") == "kraken/error"
    with pytest.raises(RejectedResponse, match=r"venue_error.*Too many requests"):
        parse(RawSnapshot("kraken_rest", "Ticker", error, FETCHED), "p")
    binance_error = b'{"code":-1121,"msg":"Invalid symbol."}'
    with pytest.raises(RejectedResponse, match=r"format 'binance/error': venue_error.*Invalid symbol"):
        parse(RawSnapshot("binance_rest", "x", binance_error, FETCHED), "p")
    no_symbols = b'{"timezone":"UTC","serverTime":1634942465856,"rateLimits":[]}'
    with pytest.raises(RejectedResponse, match=r"missing_field: field 'symbols'") as info:
        parse(RawSnapshot("binance_rest", "x", no_symbols, FETCHED), "p")
    assert info.value.quarantine["field"].to_list() == ["symbols"]  # the whole snapshot, once
    with pytest.raises(RejectedResponse, match=r"malformed_response: gzip"):
        parse(RawSnapshot("binance_rest", "x.json.gz", b"\x1f\x8bnot gzip at all", FETCHED), "p")


def test_kraken_trades_without_ids_get_derived_ones_so_identical_prints_survive():
    body = json.dumps(
        {"error": [], "result": {"XXBTZUSD": [["100.0", "1.0", 1.5, "s", "m", ""]] * 2, "last": "1"}}
    ).encode()
    trades = parse(RawSnapshot("t", "Trades", body, FETCHED), "p").frames["trades"]
    assert trades.height == 2 and trades["trade_id"].n_unique() == 2 and set(trades["symbol"]) == {"BTC-USD"}
