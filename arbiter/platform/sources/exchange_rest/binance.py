"""Binance spot REST (api/v3): bookTicker, depth, trades, historicalTrades, aggTrades, exchangeInfo.

Binance sends decimal strings and millisecond times; book endpoints carry no time, so their
quotes take the receive time. ``isBuyerMaker``/``m`` true means the aggressor sold.
"""

from __future__ import annotations

from arbiter.platform.sources.exchange_rest.records import (
    Batch,
    RestResponse,
    book_top_row,
    get,
    instrument_row,
    ms_to_ns,
    quote_row,
    symbol_of,
    trade_row,
)

MARKET = "spot"


def _taker_side(buyer_is_maker) -> str | None:
    return None if buyer_is_maker is None else ("sell" if buyer_is_maker else "buy")


def _requested_symbol(response: RestResponse) -> str:
    return symbol_of(get(response.params, "symbol"))


def book_ticker(response: RestResponse, batch: Batch) -> None:
    body = response.json()
    batch.add_all(
        "quotes",
        body if isinstance(body, list) else [body],
        lambda r: quote_row(
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

    def top() -> dict:
        seq = int(get(body, "lastUpdateId", "seq"))
        return book_top_row(response, body, market=MARKET, symbol=_requested_symbol(response), seq=seq)

    batch.add("quotes", body, top)


# Field names of the two trade layouts; aggregate ids are a sequence of their own, kept apart.
TRADE_FIELDS = {"time": "time", "price": "price", "size": "qty", "maker": "isBuyerMaker", "id": "id", "id_prefix": ""}
AGG_TRADE_FIELDS = {"time": "T", "price": "p", "size": "q", "maker": "m", "id": "a", "id_prefix": "agg:"}


def _trades(response: RestResponse, batch: Batch, f: dict[str, str]) -> None:
    symbol = _requested_symbol(response)
    batch.add_all(
        "trades",
        response.json(),
        lambda r: trade_row(
            response,
            market=MARKET,
            symbol=symbol,
            ts=ms_to_ns(get(r, f["time"], "ts"), "ts"),
            price=get(r, f["price"], "price"),
            size=get(r, f["size"], "size"),
            side=_taker_side(r.get(f["maker"])),
            trade_id=f"{f['id_prefix']}{get(r, f['id'], 'trade_id')}",
        ),
    )


def trades(response: RestResponse, batch: Batch) -> None:
    _trades(response, batch, TRADE_FIELDS)


def agg_trades(response: RestResponse, batch: Batch) -> None:
    _trades(response, batch, AGG_TRADE_FIELDS)


def exchange_info(response: RestResponse, batch: Batch) -> None:
    body = response.json()
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

    batch.add_all("instruments", get(body, "symbols"), instrument)


PARSERS = {
    "book_ticker": book_ticker,
    "depth": depth,
    "trades": trades,
    "historical_trades": trades,
    "agg_trades": agg_trades,
    "exchange_info": exchange_info,
}
