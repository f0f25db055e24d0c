"""Coinbase REST: Advanced Trade (api/v3/brokerage/market: ticker, product_book, products,
product, candles) and the older Coinbase Pro / Exchange layouts (/products, /products/<id>/book,
/products/<id>/candles, /products/<id>/trades), which differ in shape and field names.

Decimal strings throughout; Advanced Trade times are ISO-8601 with microseconds, its candle
starts epoch seconds. The Advanced Trade ticker's trades carry the aggressor's side, Coinbase
Pro's trades the *maker's* side (so the aggressor is the opposite). The ticker's best bid and
ask come without sizes, which stay null.
"""

from __future__ import annotations

from arbiter.platform.sources.exchange_rest.recognise import first, has
from arbiter.platform.sources.exchange_rest.records import (
    Batch,
    FieldError,
    RestResponse,
    bar_row,
    book_top_row,
    get,
    instrument_row,
    interval_name,
    iso_to_ns,
    quote_row,
    symbol_of,
    trade_row,
)

MARKETS = {"SPOT": "spot", "FUTURE": "future"}
# Advanced Trade names candle lengths; Coinbase Pro gives them in seconds.
GRANULARITY_S = {
    "ONE_MINUTE": 60,
    "FIVE_MINUTE": 300,
    "FIFTEEN_MINUTE": 900,
    "THIRTY_MINUTE": 1800,
    "ONE_HOUR": 3600,
    "TWO_HOUR": 7200,
    "FOUR_HOUR": 14400,
    "SIX_HOUR": 21600,
    "ONE_DAY": 86400,
}
MAKER_TO_TAKER = {"buy": "sell", "sell": "buy"}

TICKER_FIELDS = frozenset({"trades", "best_bid", "best_ask"})
TICKER_TRADE_FIELDS = frozenset({"trade_id", "product_id", "price", "size", "time", "side", "bid", "ask", "exchange"})
BOOK_ENVELOPE_FIELDS = frozenset({"pricebook", "last", "mid_market", "spread_bps", "spread_absolute"})
PRICEBOOK_FIELDS = frozenset({"product_id", "bids", "asks", "time"})
PRODUCTS_FIELDS = frozenset({"products", "num_products", "pagination"})
PRODUCT_FIELDS = frozenset(
    {
        "product_id",
        "price",
        "price_percentage_change_24h",
        "volume_24h",
        "volume_percentage_change_24h",
        "base_increment",
        "quote_increment",
        "quote_min_size",
        "quote_max_size",
        "base_min_size",
        "base_max_size",
        "base_name",
        "quote_name",
        "watched",
        "is_disabled",
        "new",
        "status",
        "cancel_only",
        "limit_only",
        "post_only",
        "trading_disabled",
        "auction_mode",
        "product_type",
        "quote_currency_id",
        "base_currency_id",
        "fcm_trading_session_details",
        "mid_market_price",
        "alias",
        "alias_to",
        "base_display_symbol",
        "quote_display_symbol",
        "view_only",
        "price_increment",
        "display_name",
        "product_venue",
        "approximate_quote_24h_volume",
        "new_at",
        "market_cap",
        "base_cbrn",
        "quote_cbrn",
        "product_cbrn",
        "icon_color",
        "icon_url",
        "display_name_overwrite",
        "is_alpha_testing",
        "about_description",
        "best_bid_price",
        "best_ask_price",
        "future_product_details",
    }
)
CANDLE_FIELDS = frozenset({"start", "low", "high", "open", "close", "volume"})
PRO_PRODUCT_FIELDS = frozenset(
    {
        "id",
        "base_currency",
        "quote_currency",
        "base_min_size",
        "base_max_size",
        "quote_increment",
        "base_increment",
        "display_name",
        "min_market_funds",
        "max_market_funds",
        "margin_enabled",
        "post_only",
        "limit_only",
        "cancel_only",
        "trading_disabled",
        "status",
        "status_message",
        "fx_stablecoin",
        "max_slippage_percentage",
        "auction_mode",
        "high_bid_limit_percentage",
    }
)
PRO_BOOK_FIELDS = frozenset({"bids", "asks", "sequence", "auction_mode", "auction", "time"})
PRO_TRADE_FIELDS = frozenset({"time", "trade_id", "price", "size", "side"})
PRO_CANDLE_LENGTH = 6  # time, low, high, open, close, volume


def ticker(response: RestResponse, batch: Batch) -> None:
    body = response.json()
    batch.drift("ticker", body, TICKER_FIELDS)
    trades = body.get("trades") or []
    for r in trades:
        batch.drift("trade", r, TICKER_TRADE_FIELDS)
        batch.add(
            "trades",
            r,
            lambda r=r: trade_row(
                response,
                market="spot",
                symbol=symbol_of(get(r, "product_id", "symbol")),
                ts=iso_to_ns(get(r, "time", "ts"), "ts"),
                price=get(r, "price"),
                size=get(r, "size"),
                side=str(get(r, "side")).lower(),
                trade_id=get(r, "trade_id"),
            ),
        )

    def top() -> dict:
        named = trades[0].get("product_id") if trades and isinstance(trades[0], dict) else None
        return quote_row(
            response,
            market="spot",
            symbol=symbol_of(named) if named else response.requested_symbol(),
            channel="rest_ticker",
            bid=get(body, "best_bid", "bid"),
            ask=get(body, "best_ask", "ask"),
        )

    batch.add("quotes", {k: v for k, v in body.items() if k != "trades"}, top)


def product_book(response: RestResponse, batch: Batch) -> None:
    body = response.json()
    batch.drift("product_book", body, BOOK_ENVELOPE_FIELDS)
    book = body.get("pricebook") or {}
    batch.drift("pricebook", book, PRICEBOOK_FIELDS)

    def top() -> dict:
        # Levels are objects here ({"price", "size"}); an empty side leaves its price null.
        bids, asks = get(book, "bids", "bid"), get(book, "asks", "ask")
        bid, ask = (bids[0] if bids else {}), (asks[0] if asks else {})
        return quote_row(
            response,
            market="spot",
            symbol=symbol_of(get(book, "product_id", "symbol")),
            channel="rest_book",
            bid=bid.get("price"),
            bid_size=bid.get("size"),
            ask=ask.get("price"),
            ask_size=ask.get("size"),
            ts=iso_to_ns(get(book, "time", "ts"), "ts"),
        )

    batch.add("quotes", book, top)


def products(response: RestResponse, batch: Batch) -> None:
    body = response.json()
    if "products" in body:
        batch.drift("products", body, PRODUCTS_FIELDS)
    for p in body.get("products", [body]):
        batch.drift("product", p, PRODUCT_FIELDS)
        batch.add(
            "instruments",
            p,
            lambda p=p: instrument_row(
                response.venue,
                market=MARKETS.get(str(get(p, "product_type", "market")), "spot"),
                symbol=symbol_of(f"{get(p, 'base_currency_id', 'base')}-{get(p, 'quote_currency_id', 'quote')}"),
                tick=get(p, "price_increment", "tick_size"),
                step=get(p, "base_increment", "lot_size"),
                min_notional=p.get("quote_min_size"),
                valid_from=response.fetched_at,
            ),
        )


def _interval(response: RestResponse, starts: list[int]) -> str:
    """From the request's granularity (a name or seconds), else from the spacing of the bars."""
    granularity = response.params.get("granularity")
    if granularity:
        seconds = GRANULARITY_S.get(granularity.upper()) or (int(granularity) if granularity.isdigit() else None)
        if seconds is None:
            raise FieldError("interval", "unparseable")
        return interval_name(seconds)
    if len(starts) < 2:
        raise FieldError("interval", "missing_field")
    return interval_name(abs(starts[0] - starts[1]))


def _start_seconds(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise FieldError("ts", "unparseable") from None


def candles(response: RestResponse, batch: Batch) -> None:
    body = response.json()
    batch.drift("candles", body, frozenset({"candles"}))
    rows = get(body, "candles")
    starts = [_start_seconds(c.get("start")) for c in rows[:2] if isinstance(c, dict) and c.get("start")]

    def bar(c: dict) -> dict:
        return bar_row(
            response,
            market="spot",
            symbol=response.requested_symbol(),
            interval=_interval(response, starts),
            ts=_start_seconds(get(c, "start", "ts")) * 1_000_000_000,
            open_=get(c, "open"),
            high=get(c, "high"),
            low=get(c, "low"),
            close=get(c, "close"),
            volume=get(c, "volume"),
        )

    for c in rows:
        batch.drift("candle", c, CANDLE_FIELDS)
        batch.add("bars", c, lambda c=c: bar(c))


def pro_products(response: RestResponse, batch: Batch) -> None:
    body = response.json()
    for p in body if isinstance(body, list) else [body]:
        batch.drift("product", p, PRO_PRODUCT_FIELDS)
        batch.add(
            "instruments",
            p,
            lambda p=p: instrument_row(
                response.venue,
                market="spot",
                symbol=symbol_of(f"{get(p, 'base_currency', 'base')}-{get(p, 'quote_currency', 'quote')}"),
                tick=get(p, "quote_increment", "tick_size"),
                step=get(p, "base_increment", "lot_size"),
                min_notional=p.get("min_market_funds"),
                valid_from=response.fetched_at,
            ),
        )


def pro_book(response: RestResponse, batch: Batch) -> None:
    body = response.json()
    batch.drift("book", body, PRO_BOOK_FIELDS)

    def top() -> dict:
        row = book_top_row(
            response, body, market="spot", symbol=response.requested_symbol(), seq=int(get(body, "sequence", "seq"))
        )
        if body.get("time"):  # newer Exchange responses state the book's time
            row.update(ts=iso_to_ns(body["time"], "ts"), ts_source="venue")
        return row

    batch.add("quotes", body, top)


def pro_trades(response: RestResponse, batch: Batch) -> None:
    for r in response.json():
        batch.drift("trade", r, PRO_TRADE_FIELDS)
        batch.add(
            "trades",
            r,
            lambda r=r: trade_row(
                response,
                market="spot",
                symbol=response.requested_symbol(),
                ts=iso_to_ns(get(r, "time", "ts"), "ts"),
                price=get(r, "price"),
                size=get(r, "size"),
                side=MAKER_TO_TAKER.get(str(get(r, "side")).lower()),
                trade_id=get(r, "trade_id"),
            ),
        )


def pro_candles(response: RestResponse, batch: Batch) -> None:
    rows = response.json()
    starts = [_start_seconds(first(c)) for c in rows[:2] if isinstance(c, list) and c]

    def bar(c: list) -> dict:
        return bar_row(
            response,
            market="spot",
            symbol=response.requested_symbol(),
            interval=_interval(response, starts),
            ts=_start_seconds(c[0]) * 1_000_000_000,
            low=c[1],
            high=c[2],
            open_=c[3],
            close=c[4],
            volume=c[5],
        )

    for c in rows:
        batch.drift("candle", c, PRO_CANDLE_LENGTH)
        batch.add("bars", c, lambda c=c: bar(c))


PARSERS = {
    "ticker": ticker,
    "product_book": product_book,
    "products": products,
    "candles": candles,
    "pro_products": pro_products,
    "pro_book": pro_book,
    "pro_trades": pro_trades,
    "pro_candles": pro_candles,
}


def _pro_candle(row) -> bool:
    return isinstance(row, list) and isinstance(first(row), int) and not any(isinstance(v, str) for v in row)


SIGNATURES = {
    "ticker": lambda b: has(b, "trades") and (has(first(b["trades"]), "trade_id", "product_id") or "best_bid" in b),
    "product_book": lambda b: has(b, "pricebook"),
    "products": lambda b: (
        has(first(b.get("products")) if isinstance(b, dict) else None, "product_id")
        or has(b, "product_id", "base_increment")
    ),
    "candles": lambda b: has(b, "candles"),
    "pro_products": lambda b: has(first(b), "id", "base_currency", "quote_currency"),
    # Pro books may open with 50 levels before "sequence": the three-element levels
    # ([price, size, orders]) tell them from Binance's two-element ones.
    "pro_book": lambda b: (
        has(b, "bids")
        and "lastUpdateId" not in b
        and ("sequence" in b or (isinstance(first(b["bids"]), list) and len(first(b["bids"])) == 3))
    ),
    "pro_trades": lambda b: has(first(b), "trade_id", "side", "time") and "product_id" not in first(b),
    "pro_candles": lambda b: _pro_candle(first(b)),
}
