"""Kraken REST: spot (0/public: Ticker, Depth, Trades, AssetPairs) and futures (derivatives/api/v3
tickers, history executions).

Spot answers ``{"error": [...], "result": {PAIR: ...}}`` with legacy pair names (``XXBTZUSD``) or
new ones (``XBTUSDT``); trade times are fractional epoch seconds, read exactly from their decimal
text; the side is the aggressor's. Futures symbols carry the contract type in their prefix and
send plain JSON numbers, which are read from their text the same way.
"""

from __future__ import annotations

from arbiter.platform.sources.exchange_rest.records import (
    Batch,
    FieldError,
    RestResponse,
    book_top_row,
    get,
    instrument_row,
    iso_to_ns,
    ms_to_ns,
    num,
    quote_row,
    seconds_to_ns,
    symbol_of,
    trade_row,
)

SIDES = {"b": "buy", "s": "sell"}
# Futures contract types by symbol prefix: PI_ inverse perpetual (BTC-margined), PF_ linear
# multi-collateral perpetual, FI_/FF_ dated futures.
FUTURES_MARKETS = {"PI": "inverse_perp", "PF": "linear_perp", "FI": "future", "FF": "future"}


class VenueError(RuntimeError):
    """Kraken answered with a non-empty ``error`` list."""


def _result(response: RestResponse) -> dict:
    body = response.json()
    if body.get("error"):
        raise VenueError(f"kraken {response.endpoint}: {'; '.join(map(str, body['error']))}")
    return get(body, "result")


def _pairs(result: dict) -> dict:
    return {k: v for k, v in result.items() if k != "last"}


def ticker(response: RestResponse, batch: Batch) -> None:
    for pair, t in _pairs(_result(response)).items():
        batch.add(
            "quotes",
            {pair: t},
            lambda p=pair, t=t: quote_row(
                response,
                market="spot",
                symbol=symbol_of(p),
                channel="rest_ticker",
                bid=get(t, "b", "bid")[0],
                bid_size=get(t, "b", "bid_size")[2],
                ask=get(t, "a", "ask")[0],
                ask_size=get(t, "a", "ask_size")[2],
            ),
        )


def depth(response: RestResponse, batch: Batch) -> None:
    for pair, book in _pairs(_result(response)).items():

        def top(p=pair, book=book) -> dict:
            return book_top_row(response, book, market="spot", symbol=symbol_of(p))

        batch.add("quotes", {pair: book}, top)


def trades(response: RestResponse, batch: Batch) -> None:
    for pair, rows in _pairs(_result(response)).items():
        symbol = symbol_of(pair)
        for i, r in enumerate(rows):

            def build(r=r, i=i, symbol=symbol) -> dict:
                if len(r) < 4:
                    raise FieldError("trade", "missing_field")
                # Layouts before 2024 have no trade id (6 fields): derive one from response and row,
                # so repeated identical prints are all kept.
                trade_id = r[6] if len(r) > 6 else f"{response.fetched_at}-{i}"
                return trade_row(
                    response,
                    market="spot",
                    symbol=symbol,
                    ts=seconds_to_ns(r[2], "ts"),
                    price=r[0],
                    size=r[1],
                    side=SIDES.get(r[3]),
                    trade_id=trade_id,
                )

            batch.add("trades", r, build)


def asset_pairs(response: RestResponse, batch: Batch) -> None:
    def instrument(item) -> dict:
        name, p = item
        fees, maker_fees = p.get("fees") or [], p.get("fees_maker") or []
        return instrument_row(
            response.venue,
            market="spot",
            symbol=symbol_of(p.get("wsname") or name),
            tick=p.get("tick_size") or f"1e-{get(p, 'pair_decimals', 'tick_size')}",
            step=f"1e-{get(p, 'lot_decimals', 'lot_size')}",
            min_notional=p.get("costmin"),
            # fee tiers are published in percent; the entry tier applies to a new account
            taker=num(fees[0][1], "taker_fee") / 100 if fees else None,
            maker=num(maker_fees[0][1], "maker_fee") / 100 if maker_fees else None,
            valid_from=response.fetched_at,
        )

    batch.add_all("instruments", _result(response).items(), instrument)


def _futures_market(symbol: str) -> tuple[str, str]:
    """``PF_XBTUSD`` → (``linear_perp``, ``BTC-USD``)."""
    prefix, _, rest = symbol.upper().partition("_")
    if prefix not in FUTURES_MARKETS:
        raise FieldError("symbol", "unknown_symbol")
    return FUTURES_MARKETS[prefix], symbol_of(rest.split("_")[0])


def futures_tickers(response: RestResponse, batch: Batch) -> None:
    body = response.json()
    ts = iso_to_ns(body["serverTime"], "ts") if body.get("serverTime") else None
    # Index and rate tickers (in_, rr_) are not markets: only contract prefixes are read.
    tradeable = [t for t in get(body, "tickers") if str(t.get("symbol", "")).split("_")[0].upper() in FUTURES_MARKETS]

    def quote(t: dict) -> dict:
        market, symbol = _futures_market(get(t, "symbol"))
        return quote_row(
            response,
            market=market,
            symbol=symbol,
            channel="rest_ticker",
            ts=ts,
            bid=t.get("bid"),
            bid_size=t.get("bidSize"),
            ask=t.get("ask"),
            ask_size=t.get("askSize"),
        )

    batch.add_all("quotes", tradeable, quote)


def futures_executions(response: RestResponse, batch: Batch) -> None:
    def trade(element: dict) -> dict:
        execution = get(get(get(element, "event"), "Execution"), "execution")
        taker = get(execution, "takerOrder")
        market, symbol = _futures_market(get(taker, "tradeable", "symbol"))
        return trade_row(
            response,
            market=market,
            symbol=symbol,
            ts=ms_to_ns(get(execution, "timestamp", "ts"), "ts"),
            price=get(execution, "price"),
            size=get(execution, "quantity", "size"),
            side=str(get(taker, "direction", "side")).lower(),
            trade_id=get(execution, "uid", "trade_id"),
        )

    batch.add_all("trades", get(response.json(), "elements"), trade)


PARSERS = {"ticker": ticker, "depth": depth, "trades": trades, "asset_pairs": asset_pairs}
FUTURES_PARSERS = {"tickers": futures_tickers, "executions": futures_executions}
