"""Coinbase Advanced Trade REST (api/v3/brokerage/market): ticker, product_book, product(s).

Decimal strings throughout; times are ISO-8601 with microseconds. The ticker's trades carry the
aggressor's side; its best bid and ask come without sizes, which stay null.
"""

from __future__ import annotations

from arbiter.platform.sources.exchange_rest.records import (
    Batch,
    RestResponse,
    get,
    instrument_row,
    iso_to_ns,
    quote_row,
    symbol_of,
    trade_row,
)

MARKETS = {"SPOT": "spot", "FUTURE": "future"}


def ticker(response: RestResponse, batch: Batch) -> None:
    body = response.json()
    trades = body.get("trades") or []
    product = response.params.get("product_id") or (trades[0].get("product_id") if trades else None)
    batch.add_all(
        "trades",
        trades,
        lambda r: trade_row(
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
    batch.add(
        "quotes",
        body,
        lambda: quote_row(
            response,
            market="spot",
            symbol=symbol_of(product or get(body, "product_id", "symbol")),
            channel="rest_ticker",
            bid=get(body, "best_bid", "bid"),
            ask=get(body, "best_ask", "ask"),
        ),
    )


def product_book(response: RestResponse, batch: Batch) -> None:
    book = response.json().get("pricebook") or {}

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
    records = body.get("products", [body]) if isinstance(body, dict) else body
    batch.add_all(
        "instruments",
        records,
        lambda p: instrument_row(
            response.venue,
            market=MARKETS.get(str(get(p, "product_type", "market")), "spot"),
            symbol=symbol_of(f"{get(p, 'base_currency_id', 'base')}-{get(p, 'quote_currency_id', 'quote')}"),
            tick=get(p, "price_increment", "tick_size"),
            step=get(p, "base_increment", "lot_size"),
            min_notional=p.get("quote_min_size"),
            valid_from=response.fetched_at,
        ),
    )


PARSERS = {"ticker": ticker, "product_book": product_book, "products": products, "product": products}
