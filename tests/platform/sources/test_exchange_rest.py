"""Real recorded REST responses of Binance, Coinbase and Kraken → the contract, exactly."""

import json
from decimal import Decimal
from pathlib import Path

import pytest

from arbiter.platform.lake import Lake
from arbiter.platform.sources.exchange_rest import RejectedResponse, RestResponse, UnknownEndpoint, parse

DATA = Path(__file__).parents[2] / "data" / "rest"
FETCHED = 1_700_000_000_123_456_789

SAMPLES = [  # venue, endpoint, file, params, expected rows per table
    ("binance", "book_ticker", "binance_spot/http_spot_market_book_ticker.json", {}, {"quotes": 1}),
    ("binance", "depth", "binance_spot/http_spot_market_depth.json", {"symbol": "BTCUSDT"}, {"quotes": 1}),
    ("binance", "trades", "binance_spot/http_spot_market_trades.json", {"symbol": "BTCUSDT"}, {"trades": 10}),
    (
        "binance",
        "historical_trades",
        "binance_spot/http_spot_market_historical_trades.json",
        {"symbol": "BTCUSDT"},
        {"trades": 10},
    ),
    ("binance", "agg_trades", "binance_spot/http_spot_market_agg_trades.json", {"symbol": "BTCUSDT"}, {"trades": 10}),
    ("binance", "exchange_info", "binance_spot/http_spot_market_exchange_info.json", {}, {"instruments": 2}),
    ("coinbase", "ticker", "coinbase_advanced_trade/http_ticker.json", {}, {"quotes": 1, "trades": 3}),
    ("coinbase", "product_book", "coinbase_advanced_trade/http_product_book.json", {}, {"quotes": 1}),
    ("coinbase", "products", "coinbase_advanced_trade/http_products.json", {}, {"instruments": 2}),
    ("coinbase", "product", "coinbase_advanced_trade/http_product.json", {}, {"instruments": 1}),
    ("kraken", "ticker", "kraken/http_ticker.json", {}, {"quotes": 1}),
    ("kraken", "depth", "kraken/http_order_book.json", {}, {"quotes": 1}),
    ("kraken", "trades", "kraken/http_trades.json", {}, {"trades": 1000}),
    ("kraken", "asset_pairs", "kraken/http_asset_pairs.json", {}, {"instruments": 1}),
    ("kraken_futures", "tickers", "kraken/http_futures_tickers.json", {}, {"quotes": 2}),
    ("kraken_futures", "executions", "kraken/http_futures_public_executions.json", {}, {"trades": 3}),
]


def response(venue: str, endpoint: str, file: str, params: dict | None = None) -> RestResponse:
    return RestResponse(venue, endpoint, (DATA / file).read_bytes(), FETCHED, params or {})


def raw(file: str):
    return json.loads((DATA / file).read_text(), parse_float=str)


@pytest.mark.parametrize(("venue", "endpoint", "file", "params", "expected"), SAMPLES, ids=lambda v: str(v)[:30])
def test_every_sample_parses_fully_into_the_contract(tmp_path, venue, endpoint, file, params, expected):
    frames = parse(response(venue, endpoint, file, params), partition="p")
    assert {t: f.height for t, f in frames.items()} == expected  # nothing quarantined, nothing lost
    lake = Lake(str(tmp_path))
    for table, frame in frames.items():
        lake.write(table, frame, {"source": venue})  # validates against the contract


def exact(value: float, precision: int, venue_text) -> bool:
    """Formatting the stored float at the instrument's precision gives the venue's decimal back."""
    return Decimal(f"{value:.{precision}f}") == Decimal(str(venue_text))


def instrument(venue: str, endpoint: str, file: str) -> dict:
    return parse(response(venue, endpoint, file))["instruments"].row(0, named=True)


def test_binance_values_are_exact_at_the_instruments_precision():
    spot = instrument("binance", "exchange_info", "binance_spot/http_spot_market_exchange_info.json")
    assert (spot["symbol"], spot["price_precision"], spot["size_precision"]) == ("BTC-USDT", 2, 5)
    assert spot["valid_from"].timestamp() == 1634942465.856
    file = "binance_spot/http_spot_market_trades.json"
    trades = parse(response("binance", "trades", file, {"symbol": "BTCUSDT"}))["trades"]
    for row, venue_row in zip(trades.iter_rows(named=True), raw(file), strict=True):
        assert exact(row["price"], spot["price_precision"], venue_row["price"])
        assert exact(row["size"], spot["size_precision"], venue_row["qty"])
        assert row["trade_id"] == str(venue_row["id"])
        assert row["ts"].timestamp() * 1000 == pytest.approx(venue_row["time"], abs=0.01)
        assert row["side"] == ("sell" if venue_row["isBuyerMaker"] else "buy")
    book = parse(response("binance", "depth", "binance_spot/http_spot_market_depth.json", {"symbol": "BTCUSDT"}))
    top = book["quotes"].row(0, named=True)
    assert top["seq"] == 14527958487 and (top["bid"], top["ask"]) == (60650.0, 60650.01)
    assert top["ts_source"] == "receive" and top["ts"] == top["recv_ts"]


def test_kraken_symbols_times_and_sides():
    pair = instrument("kraken", "asset_pairs", "kraken/http_asset_pairs.json")
    assert (pair["symbol"], pair["price_precision"], pair["size_precision"]) == ("BTC-USDT", 1, 8)
    assert (pair["taker_fee"], pair["maker_fee"], pair["min_notional"]) == (0.004, 0.0025, 0.5)
    file = "kraken/http_trades.json"
    trades = parse(response("kraken", "trades", file))["trades"]
    first = raw(file)["result"]["XBTUSDT"][0]
    row = trades.row(0, named=True)
    assert trades["ts"].dt.epoch("ns")[0] == 1762795433971744500  # from "1762795433.9717445", exactly
    assert (row["side"], row["trade_id"]) == ("buy", str(first[6]))
    for r, venue_row in zip(trades.iter_rows(named=True), raw(file)["result"]["XBTUSDT"], strict=True):
        assert exact(r["price"], pair["price_precision"], venue_row[0])
        assert exact(r["size"], pair["size_precision"], venue_row[1])
    ticker = parse(response("kraken", "ticker", "kraken/http_ticker.json"))["quotes"].row(0, named=True)
    assert (ticker["symbol"], ticker["bid"], ticker["ask"]) == ("BTC-USDT", 105944.2, 105944.3)


def test_kraken_futures_markets_from_the_symbol_prefix():
    quotes = parse(response("kraken_futures", "tickers", "kraken/http_futures_tickers.json"))["quotes"]
    assert quotes.select("symbol", "market").rows() == [("BTC-USD", "inverse_perp"), ("ETH-USD", "linear_perp")]
    assert quotes["ts_source"].to_list() == ["venue", "venue"]  # the venue's serverTime
    trades = parse(response("kraken_futures", "executions", "kraken/http_futures_public_executions.json"))["trades"]
    assert set(trades["symbol"]) == {"BTC-USD"} and set(trades["market"]) == {"linear_perp"}


def test_coinbase_times_keep_microseconds_and_sizes_stay_null_where_absent():
    product = instrument("coinbase", "products", "coinbase_advanced_trade/http_products.json")
    assert (product["price_precision"], product["size_precision"], product["min_notional"]) == (2, 8, 1.0)
    out = parse(response("coinbase", "ticker", "coinbase_advanced_trade/http_ticker.json"))
    assert out["trades"]["ts"].dt.epoch("ns")[0] == 1775521738544778000
    assert out["trades"]["side"].to_list() == ["sell", "sell", "buy"]
    quote = out["quotes"].row(0, named=True)
    assert (quote["bid"], quote["ask"], quote["bid_size"], quote["ask_size"]) == (68923.66, 68923.67, None, None)
    book = parse(response("coinbase", "product_book", "coinbase_advanced_trade/http_product_book.json"))["quotes"]
    assert book.select("bid", "bid_size", "ask", "ask_size", "ts_source").row(0) == (
        68923.66,
        0.17189468,
        68923.67,
        0.16987193,
        "venue",
    )


def test_bad_records_are_quarantined_with_their_field_and_the_rest_kept():
    records = raw("binance_spot/http_spot_market_trades.json")
    records[1].pop("price")  # missing required field
    records[2]["qty"] = "lots"  # unparseable
    records[3]["time"] = None  # null
    records[4]["newField"] = 1  # schema drift: ignored
    records[5]["price"] = 60650.01  # a number instead of a string: still read
    body = json.dumps(records).encode()
    out = parse(RestResponse("binance", "trades", body, FETCHED, {"symbol": "BTCUSDT"}), partition="2026-11-21")
    assert out["trades"].height == 7
    q = out["quarantine"]
    assert q.select("reason", "field").rows() == [
        ("missing_field", "price"),
        ("unparseable", "size"),
        ("missing_field", "ts"),
    ]
    assert set(q["target"]) == {"trades"} and set(q["partition"]) == {"2026-11-21"}
    assert json.loads(q["raw"][1])["qty"] == "lots"  # the original record, intact
    assert out["trades"].height + q.height == len(records)  # raw = normalised + quarantined


def test_unusable_responses_are_rejected_whole_with_their_bytes():
    with pytest.raises(RejectedResponse, match=r"source 'binance_rest', partition 'p'.*malformed_response") as info:
        parse(RestResponse("binance", "trades", b'[{"id": 1, "price": "1.0"', FETCHED, {"symbol": "BTCUSDT"}), "p")
    assert info.value.quarantine["raw"][0] == b'[{"id": 1, "price": "1.0"'
    error = b'{"error": ["EGeneral:Too many requests"], "result": {}}'
    with pytest.raises(RejectedResponse, match=r"venue_error.*Too many requests"):
        parse(RestResponse("kraken", "ticker", error, FETCHED), "p")
    with pytest.raises(UnknownEndpoint, match="binance/klines"):
        parse(RestResponse("binance", "klines", b"[]", FETCHED))


def test_kraken_trades_without_ids_get_derived_ones_so_identical_prints_survive():
    body = json.dumps(
        {"error": [], "result": {"XXBTZUSD": [["100.0", "1.0", 1.5, "s", "m", ""]] * 2, "last": "1"}}
    ).encode()
    trades = parse(RestResponse("kraken", "trades", body, FETCHED))["trades"]
    assert trades.height == 2 and trades["trade_id"].n_unique() == 2 and set(trades["symbol"]) == {"BTC-USD"}
