"""Kraken REST: spot (0/public: Ticker, Depth, Trades, OHLC, AssetPairs) and futures
(derivatives/api/v3 tickers, history executions).

Spot answers ``{"error": [...], "result": {PAIR: ...}}`` with legacy pair names (``XXBTZUSD``) or
new ones (``XBTUSDT``); trade times are fractional epoch seconds, read exactly from their decimal
text; the side is the aggressor's. Futures symbols carry the contract type in their prefix and
send plain JSON numbers, which are read from their text the same way.
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

ENVELOPE_FIELDS = frozenset({"error", "result"})
TICKER_FIELDS = frozenset({"a", "b", "c", "v", "p", "t", "l", "h", "o"})
DEPTH_FIELDS = frozenset({"asks", "bids"})
TRADE_LENGTH = 7  # price, volume, time, side, order type, misc, trade id (the id since 2024)
OHLC_LENGTH = 8  # time, open, high, low, close, vwap, volume, count
ASSET_PAIR_FIELDS = frozenset(
    {
        "altname",
        "wsname",
        "aclass_base",
        "base",
        "aclass_quote",
        "quote",
        "lot",
        "cost_decimals",
        "pair_decimals",
        "lot_decimals",
        "lot_multiplier",
        "leverage_buy",
        "leverage_sell",
        "fees",
        "fees_maker",
        "fee_volume_currency",
        "margin_call",
        "margin_stop",
        "ordermin",
        "costmin",
        "tick_size",
        "status",
        "long_position_limit",
        "short_position_limit",
    }
)
FUTURES_TICKERS_FIELDS = frozenset({"result", "serverTime", "tickers"})
FUTURES_TICKER_FIELDS = frozenset(
    {
        "symbol",
        "last",
        "lastTime",
        "tag",
        "pair",
        "markPrice",
        "bid",
        "bidSize",
        "ask",
        "askSize",
        "vol24h",
        "volumeQuote",
        "openInterest",
        "open24h",
        "high24h",
        "low24h",
        "lastSize",
        "fundingRate",
        "fundingRatePrediction",
        "suspended",
        "indexPrice",
        "postOnly",
        "change24h",
    }
)
EXECUTIONS_FIELDS = frozenset({"elements", "len", "continuationToken"})
ELEMENT_FIELDS = frozenset({"uid", "timestamp", "event"})
EXECUTION_FIELDS = frozenset(
    {"uid", "makerOrder", "takerOrder", "timestamp", "quantity", "price", "markPrice", "limitFilled", "usdValue"}
)


class VenueError(RuntimeError):
    """Kraken answered with a non-empty ``error`` list."""


def _result(response: RestResponse, batch: Batch) -> dict:
    body = response.json()
    batch.drift("response", body, ENVELOPE_FIELDS)
    errors = [e for e in body.get("error") or [] if not str(e).startswith("W")]  # "W..." are warnings
    if errors:
        raise VenueError(f"kraken {response.endpoint}: {'; '.join(map(str, errors))}")
    return get(body, "result")


def _pairs(result: dict) -> dict:
    """The per-pair entries of a result; ``last`` is the paging cursor, not a record."""
    return {k: v for k, v in result.items() if k != "last"}


def ticker(response: RestResponse, batch: Batch) -> None:
    for pair, t in _pairs(_result(response, batch)).items():
        batch.drift("ticker", t, TICKER_FIELDS)
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
    for pair, book in _pairs(_result(response, batch)).items():
        batch.drift("depth", book, DEPTH_FIELDS)
        batch.add(
            "quotes",
            {pair: book},
            lambda p=pair, book=book: book_top_row(response, book, market="spot", symbol=symbol_of(p)),
        )


def trades(response: RestResponse, batch: Batch) -> None:
    for pair, rows in _pairs(_result(response, batch)).items():
        for i, r in enumerate(rows):

            def build(r=r, i=i, pair=pair) -> dict:
                if len(r) < 4:
                    raise FieldError("trade", "missing_field")
                # Layouts before 2024 have no trade id (6 fields): derive one from response and row,
                # so repeated identical prints are all kept.
                trade_id = r[6] if len(r) > 6 else f"{response.fetched_at}-{i}"
                return trade_row(
                    response,
                    market="spot",
                    symbol=symbol_of(pair),
                    ts=seconds_to_ns(r[2], "ts"),
                    price=r[0],
                    size=r[1],
                    side=SIDES.get(r[3]),
                    trade_id=trade_id,
                )

            batch.drift("trade", r, TRADE_LENGTH)
            batch.add("trades", r, build)


def ohlc(response: RestResponse, batch: Batch) -> None:
    for pair, rows in _pairs(_result(response, batch)).items():

        def interval(rows=rows) -> str:
            # The request's ``interval`` is in minutes; without it, the spacing of the bars says.
            minutes = response.params.get("interval")
            if minutes:
                return interval_name(int(num(minutes, "interval")) * 60)
            if len(rows) < 2:
                raise FieldError("interval", "missing_field")
            return interval_name(int(rows[1][0]) - int(rows[0][0]))

        for r in rows:
            batch.drift("ohlc", r, OHLC_LENGTH)
            batch.add(
                "bars",
                r,
                lambda r=r, pair=pair, interval=interval: bar_row(
                    response,
                    market="spot",
                    symbol=symbol_of(pair),
                    interval=interval(),
                    ts=seconds_to_ns(r[0], "ts"),
                    open_=r[1],
                    high=r[2],
                    low=r[3],
                    close=r[4],
                    volume=r[6],  # r[5] is the bar's VWAP, which the contract does not hold
                    trade_count=r[7],
                ),
            )


def asset_pairs(response: RestResponse, batch: Batch) -> None:
    def instrument(name: str, p: dict) -> dict:
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

    for name, p in _result(response, batch).items():
        if name.endswith(".d"):  # a dark-pool book: no public quotes, and not the lit market
            batch.absorb("dark_pool_pair")
            continue
        batch.drift("asset_pair", p, ASSET_PAIR_FIELDS)
        batch.add("instruments", {name: p}, lambda name=name, p=p: instrument(name, p))


def _futures_market(symbol: str) -> tuple[str, str]:
    """``PF_XBTUSD`` → (``linear_perp``, ``BTC-USD``)."""
    prefix, _, rest = symbol.upper().partition("_")
    if prefix not in FUTURES_MARKETS:
        raise FieldError("symbol", "unknown_symbol")
    return FUTURES_MARKETS[prefix], symbol_of(rest.split("_")[0])


def _is_contract(ticker) -> bool:
    return isinstance(ticker, dict) and str(ticker.get("symbol", "")).split("_")[0].upper() in FUTURES_MARKETS


def futures_tickers(response: RestResponse, batch: Batch) -> None:
    body = response.json()
    batch.drift("tickers", body, FUTURES_TICKERS_FIELDS)
    ts = iso_to_ns(body["serverTime"], "ts") if body.get("serverTime") else None

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

    for t in get(body, "tickers"):
        if not _is_contract(t) and isinstance(t, dict) and t.get("symbol"):
            batch.absorb("index_ticker")  # in_/rr_ tickers are indices and reference rates, not markets
            continue
        batch.drift("ticker", t, FUTURES_TICKER_FIELDS)
        batch.add("quotes", t, lambda t=t: quote(t))


def futures_executions(response: RestResponse, batch: Batch) -> None:
    body = response.json()
    batch.drift("executions", body, EXECUTIONS_FIELDS)

    def trade(element: dict) -> dict:
        execution = get(get(get(element, "event"), "Execution"), "execution")
        batch.drift("execution", execution, EXECUTION_FIELDS)
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

    for element in get(body, "elements"):
        batch.drift("element", element, ELEMENT_FIELDS)
        batch.add("trades", element, lambda e=element: trade(e))


PARSERS = {"ticker": ticker, "depth": depth, "trades": trades, "ohlc": ohlc, "asset_pairs": asset_pairs}
FUTURES_PARSERS = {"tickers": futures_tickers, "executions": futures_executions}


def _first_pair(body):
    """The first per-pair entry of a spot ``result``, or None."""
    result = body.get("result") if has(body, "error", "result") else None
    if not isinstance(result, dict):
        return None
    return next((v for k, v in result.items() if k != "last"), None)


def _row_starts_with(body, kind: type) -> bool:
    row = first(_first_pair(body))
    return isinstance(row, list) and isinstance(first(row), kind)


def _is_executions(body) -> bool:
    if not has(body, "elements"):
        return False
    element = first(body["elements"])
    return element is None or (isinstance(element, dict) and has(element.get("event"), "Execution"))


SIGNATURES = {
    "error": lambda b: (
        has(b, "error") and isinstance(b["error"], list) and any(not str(e).startswith("W") for e in b["error"])
    ),
    "ticker": lambda b: has(_first_pair(b), "a"),  # ask, bid, last trade, ... in that order
    "depth": lambda b: has(_first_pair(b), "asks") or has(_first_pair(b), "bids"),
    "trades": lambda b: _row_starts_with(b, str),
    "ohlc": lambda b: _row_starts_with(b, int),
    "asset_pairs": lambda b: has(_first_pair(b), "altname"),
}
FUTURES_SIGNATURES = {
    "tickers": lambda b: has(b, "tickers") and (has(first(b["tickers"]), "symbol") or "serverTime" in b),
    "executions": _is_executions,
}
