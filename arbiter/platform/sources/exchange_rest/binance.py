"""Binance spot REST (api/v3): bookTicker, depth, trades, historicalTrades, aggTrades, klines,
exchangeInfo, and the two price-only tickers (avgPrice, ticker/price).

Binance sends decimal strings and millisecond times; book endpoints carry no time, so their
quotes take the receive time. ``isBuyerMaker``/``m`` true means the aggressor sold. Trades, depth
and klines do not name their symbol: it comes from the request (``RestResponse.requested_symbol``).
"""

from __future__ import annotations

from arbiter.platform.sources.exchange_rest.recognise import first, has
from arbiter.platform.sources.exchange_rest.records import (
    Batch,
    RestResponse,
    bar_row,
    book_top_row,
    get,
    instrument_row,
    interval_name,
    ms_to_ns,
    quote_row,
    symbol_of,
    trade_row,
)

MARKET = "spot"
MONTH_MS = 28 * 86_400_000  # a kline this long or longer is Binance's calendar-month interval, "1M"

# Fields of each record as Binance documents them; anything else is counted as drift.
BOOK_TICKER_FIELDS = frozenset({"symbol", "bidPrice", "bidQty", "askPrice", "askQty"})
DEPTH_FIELDS = frozenset({"lastUpdateId", "bids", "asks"})
TRADE_KEYS = frozenset({"id", "price", "qty", "quoteQty", "time", "isBuyerMaker", "isBestMatch"})
AGG_TRADE_KEYS = frozenset({"a", "p", "q", "f", "l", "T", "m", "M"})
KLINE_LENGTH = 12  # open time, o, h, l, c, volume, close time, quote volume, trades, taker buy base/quote, unused
EXCHANGE_INFO_FIELDS = frozenset({"timezone", "serverTime", "rateLimits", "exchangeFilters", "symbols", "sors"})
SYMBOL_FIELDS = frozenset(
    {
        "symbol",
        "status",
        "baseAsset",
        "baseAssetPrecision",
        "quoteAsset",
        "quotePrecision",
        "quoteAssetPrecision",
        "baseCommissionPrecision",
        "quoteCommissionPrecision",
        "orderTypes",
        "icebergAllowed",
        "ocoAllowed",
        "otoAllowed",
        "quoteOrderQtyMarketAllowed",
        "allowTrailingStop",
        "cancelReplaceAllowed",
        "amendAllowed",
        "isSpotTradingAllowed",
        "isMarginTradingAllowed",
        "filters",
        "permissions",
        "permissionSets",
        "defaultSelfTradePreventionMode",
        "allowedSelfTradePreventionModes",
        "pegInstructionsAllowed",
    }
)


def _taker_side(buyer_is_maker) -> str | None:
    return None if buyer_is_maker is None else ("sell" if buyer_is_maker else "buy")


def book_ticker(response: RestResponse, batch: Batch) -> None:
    body = response.json()
    for r in body if isinstance(body, list) else [body]:
        batch.drift("book_ticker", r, BOOK_TICKER_FIELDS)
        batch.add(
            "quotes",
            r,
            lambda r=r: quote_row(
                response,
                market=MARKET,
                symbol=symbol_of(get(r, "symbol")),
                channel="rest_ticker",
                bid=get(r, "bidPrice", "bid"),
                ask=get(r, "askPrice", "ask"),
                bid_size=get(r, "bidQty", "bid_size"),
                ask_size=get(r, "askQty", "ask_size"),
            ),
        )


def depth(response: RestResponse, batch: Batch) -> None:
    body = response.json()
    batch.drift("depth", body, DEPTH_FIELDS)

    def top() -> dict:
        seq = int(get(body, "lastUpdateId", "seq"))
        return book_top_row(response, body, market=MARKET, symbol=response.requested_symbol(), seq=seq)

    batch.add("quotes", body, top)


# Field names of the two trade layouts; aggregate ids are a sequence of their own, kept apart.
TRADE_FIELDS = {"time": "time", "price": "price", "size": "qty", "maker": "isBuyerMaker", "id": "id", "id_prefix": ""}
AGG_TRADE_FIELDS = {"time": "T", "price": "p", "size": "q", "maker": "m", "id": "a", "id_prefix": "agg:"}


def _trades(response: RestResponse, batch: Batch, f: dict[str, str], record: str, known: frozenset) -> None:
    for r in response.json():
        batch.drift(record, r, known)
        batch.add(
            "trades",
            r,
            lambda r=r: trade_row(
                response,
                market=MARKET,
                symbol=response.requested_symbol(),
                ts=ms_to_ns(get(r, f["time"], "ts"), "ts"),
                price=get(r, f["price"], "price"),
                size=get(r, f["size"], "size"),
                side=_taker_side(r.get(f["maker"])),
                trade_id=f"{f['id_prefix']}{get(r, f['id'], 'trade_id')}",
            ),
        )


def trades(response: RestResponse, batch: Batch) -> None:
    _trades(response, batch, TRADE_FIELDS, "trade", TRADE_KEYS)


def agg_trades(response: RestResponse, batch: Batch) -> None:
    _trades(response, batch, AGG_TRADE_FIELDS, "agg_trade", AGG_TRADE_KEYS)


def klines(response: RestResponse, batch: Batch) -> None:
    def bar(k: list) -> dict:
        opened, closed = ms_to_ns(k[0], "ts"), ms_to_ns(k[6], "close_time")
        # The interval is in each kline itself: close time is the last millisecond of the bar.
        length_ms = (closed - opened) // 1_000_000 + 1
        return bar_row(
            response,
            market=MARKET,
            symbol=response.requested_symbol(),
            interval="1M" if length_ms >= MONTH_MS else interval_name(length_ms // 1000),
            ts=opened,
            open_=k[1],
            high=k[2],
            low=k[3],
            close=k[4],
            volume=k[5],
            quote_volume=k[7],
            trade_count=k[8],
        )

    for k in response.json():
        batch.drift("kline", k, KLINE_LENGTH)
        batch.add("bars", k, lambda k=k: bar(k))


def exchange_info(response: RestResponse, batch: Batch) -> None:
    body = response.json()
    batch.drift("exchange_info", body, EXCHANGE_INFO_FIELDS)
    valid_from = ms_to_ns(body["serverTime"], "valid_from") if "serverTime" in body else response.fetched_at

    def instrument(s: dict) -> dict:
        filters = {f.get("filterType"): f for f in get(s, "filters")}
        notional = filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL") or {}
        return instrument_row(
            response.venue,
            market=MARKET,
            symbol=symbol_of(f"{get(s, 'baseAsset')}-{get(s, 'quoteAsset')}"),
            tick=get(filters.get("PRICE_FILTER", {}), "tickSize", "tick_size"),
            step=get(filters.get("LOT_SIZE", {}), "stepSize", "lot_size"),
            min_notional=notional.get("minNotional"),
            valid_from=valid_from,
        )

    for s in get(body, "symbols"):
        batch.drift("symbol", s, SYMBOL_FIELDS)
        batch.add("instruments", s, lambda s=s: instrument(s))


def _price_only(reason: str):
    """avgPrice and ticker/price carry one price and no book: nothing in the contract holds them."""

    def parse(response: RestResponse, batch: Batch) -> None:
        body = response.json()
        for _ in body if isinstance(body, list) else [body]:
            batch.absorb(reason)

    return parse


PARSERS = {
    "book_ticker": book_ticker,
    "depth": depth,
    "trades": trades,
    "agg_trades": agg_trades,
    "klines": klines,
    "exchange_info": exchange_info,
    "avg_price": _price_only("average_price_is_not_a_quote"),
    "ticker_price": _price_only("last_price_is_not_a_quote"),
}


def _one(body):
    return first(body) if isinstance(body, list) else body


# How each response begins. trades and historicalTrades share one layout (and one parser); a
# futures depth snapshot carries "E"/"T" and is not a spot book, so it is not claimed here.
SIGNATURES = {
    "book_ticker": lambda b: has(_one(b), "symbol", "bidPrice"),
    "depth": lambda b: has(b, "lastUpdateId", "bids") and "E" not in b,
    "trades": lambda b: has(first(b), "id", "price", "qty"),
    "agg_trades": lambda b: has(first(b), "a", "p", "q", "T"),
    "klines": lambda b: isinstance(first(b), list) and isinstance(first(first(b)), int) and len(first(b)) >= 9,
    "exchange_info": lambda b: has(b, "timezone", "serverTime"),
    "avg_price": lambda b: has(b, "mins", "price"),
    "ticker_price": lambda b: has(_one(b), "symbol", "price") and len(_one(b)) == 2,
    "error": lambda b: has(b, "code", "msg") and len(b) == 2,
}
