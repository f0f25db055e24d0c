"""Binance's downloadable market data (data.binance.vision, and the USD-M order-book download).

Spot files have no header; futures files written since 2022 have one. Times are epoch ms, and µs
in spot files since 2025 (read by magnitude, so both work). ``is_buyer_maker`` true means the
aggressor sold. Aggregate trade ids are a sequence of their own and are kept apart as ``agg:<id>``,
as the REST adapter does. The order-book CSVs (``symbol,timestamp,first_update_id,
last_update_id,side,update_type,price,qty,pu``) become top-of-book quotes through ``book.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial

import polars as pl

from arbiter.platform.sources.base import Parsed
from arbiter.platform.sources.files import book, tabular
from arbiter.platform.sources.files.formats import BOOLEAN, DECIMAL, EPOCH_MS_OR_US, INTEGER, Format, Sniff
from arbiter.platform.sources.files.hints import FileContext, interval_label, symbol_or_none
from arbiter.platform.sources.files.tabular import Field

VENUE = "binance"

KLINES = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore"
)
KLINES_CM = (
    "open_time,open,high,low,close,volume,close_time,base_volume,count,taker_buy_volume,taker_buy_base_volume,ignore"
)
TRADES_SPOT = "id,price,qty,quote_qty,time,is_buyer_maker,is_best_match"
TRADES_UM, TRADES_CM = "id,price,qty,quote_qty,time,is_buyer_maker", "id,price,qty,base_qty,time,is_buyer_maker"
AGG_TRADES_SPOT = "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker,is_best_match"
AGG_TRADES_FUTURES = "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker"
BOOK_TICKER = "update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,transaction_time,event_time"
DEPTH = "symbol,timestamp,first_update_id,last_update_id,side,update_type,price,qty,pu"
PARQUET_TRADES = {"timestamp", "trade_id", "price", "quantity", "buyer_maker"}
PARQUET_QUOTES = {"timestamp", "symbol", "bid", "ask", "bid_size", "ask_size"}

# Headers of the futures files, with the market type each implies (COIN-M's name its columns
# after the base asset); and value shapes of the headerless layouts (spot, and futures files from
# before 2022, which lack spot's last flag), with theirs.
HEADERS = {
    KLINES: "linear_perp",
    KLINES_CM: "inverse_perp",
    TRADES_UM: "linear_perp",
    TRADES_CM: "inverse_perp",
    AGG_TRADES_FUTURES: "linear_perp",
    BOOK_TICKER: "linear_perp",
    DEPTH: "linear_perp",
}
_T, _D, _I, _B = EPOCH_MS_OR_US, DECIMAL, INTEGER, BOOLEAN
HEADERLESS = {
    KLINES: ("spot", (_T, _D, _D, _D, _D, _D, _T, _D, _I, _D, _D, None)),
    TRADES_SPOT: ("spot", (_I, _D, _D, _D, _T, _B, _B)),
    TRADES_UM: ("linear_perp", (_I, _D, _D, _D, _T, _B)),
    AGG_TRADES_SPOT: ("spot", (_I, _D, _D, _I, _I, _T, _B, _B)),
    AGG_TRADES_FUTURES: ("linear_perp", (_I, _D, _D, _I, _I, _T, _B)),
    BOOK_TICKER: ("linear_perp", (_I, _D, _D, _D, _D, _T, _T)),
}
# data.binance.vision names: BTCUSDT-1m-2024-01-01.csv, BTCUSD_PERP-trades-2024-01.csv, ...
NAME = re.compile(r"^(?P<symbol>[A-Za-z0-9]+(?:_[A-Za-z0-9]+)?)-[A-Za-z0-9]+-\d{4}-\d{2}(?:-\d{2})?\.")


@dataclass(frozen=True)
class Layout:
    header: bool
    columns: tuple[str, ...]
    market: str  # the market type the layout implies when nothing else says


def layout(sniff: Sniff, *candidates: str) -> Layout | None:
    """The first of ``candidates`` whose header the file has, or whose value shapes it has."""
    if sniff.layout != "delimited" or sniff.delimiter != ",":
        return None
    first = ",".join(sniff.header)
    for columns in candidates:
        if first == columns and columns in HEADERS:
            return Layout(True, tuple(columns.split(",")), HEADERS[columns])
        if columns in HEADERLESS and sniff.matches(*HEADERLESS[columns][1]):
            return Layout(False, tuple(columns.split(",")), HEADERLESS[columns][0])
    return None


def binance_symbol(native: str) -> tuple[str | None, str | None]:
    """(canonical symbol, market type it implies): ``BTCUSD_PERP`` is COIN-M's inverse perpetual,
    ``BTCUSDT_240628`` a delivery future; a plain ``BTCUSDT`` implies no market type."""
    base, _, suffix = native.upper().partition("_")
    market = None if not suffix else ("inverse_perp" if suffix == "PERP" else "future")
    return symbol_or_none(base), market


def _identity(ctx: FileContext, default_market: str | None) -> dict:
    """venue, market, symbol of a file whose rows do not name them: from its name and path, the
    caller's hints, and what the layout implies."""
    named = NAME.match(ctx.name)
    symbol, market = binance_symbol(named.group("symbol")) if named else (ctx.symbol_in_name(), None)
    return {
        "venue": ctx.resolve("venue", name=ctx.venue_in_path(), default=VENUE),
        "market": ctx.resolve("market", name=market or ctx.market_in_path(), default=default_market),
        "symbol": ctx.resolve("symbol", name=symbol),
    }


def _constants(ctx: FileContext, **identity) -> dict:
    return {"ts_source": "venue", "recv_ts": ctx.received_at, **identity}


def _side(frame: pl.DataFrame, column: str) -> Field:
    maker = tabular.as_bool(frame, column)
    side = pl.when(maker).then(pl.lit("sell")).when(maker.not_()).then(pl.lit("buy"))
    return Field("side", side, tabular.given(frame, column), required=False)


def _finish(records: tabular.Records, table: str, rows: pl.DataFrame, rejected: pl.DataFrame, ctx: FileContext, **kw):
    return tabular.finish(
        records, {table: rows}, rejected, target=table, source=ctx.source, partition=ctx.partition, **kw
    )


def parse_klines(body: bytes, sniff: Sniff, ctx: FileContext) -> Parsed:
    found = layout(sniff, KLINES, KLINES_CM)
    records = tabular.delimited(body, ",", header=found.header, names=found.columns)
    frame = records.frame
    fields = [
        Field.of(frame, "ts", "open_time", "timestamp"),
        *[Field.of(frame, name, name, "float") for name in ("open", "high", "low", "close", "volume")],
        Field.of(frame, "close_time", "close_time", "timestamp"),
        Field.of(frame, "trade_count", "count", "int", required=False),
    ]
    if "quote_volume" in frame.columns:  # COIN-M's eighth column is base volume instead
        fields.append(Field.of(frame, "quote_volume", "quote_volume", "float", required=False))
    accepted, rejected = tabular.check(frame, fields)
    # The interval is in the content: a bar closes one unit (ms or µs) before the next one opens.
    seconds = (pl.col("close_time") - pl.col("ts")).dt.total_nanoseconds().add(999_999_999) // tabular.NS_PER_S
    labels = {s: interval_label(s) for s in accepted.select(seconds).to_series().unique().to_list()}
    bars = accepted.with_columns(interval=seconds.replace_strict(labels, return_dtype=pl.String))
    rows = tabular.contract(bars, "bars", ctx.partition, **_constants(ctx, **_identity(ctx, found.market)))
    return _finish(records, "bars", rows, rejected, ctx)


def parse_trades(body: bytes, sniff: Sniff, ctx: FileContext, *, aggregate: bool) -> Parsed:
    found = layout(
        sniff, *((AGG_TRADES_SPOT, AGG_TRADES_FUTURES) if aggregate else (TRADES_SPOT, TRADES_UM, TRADES_CM))
    )
    records = tabular.delimited(body, ",", header=found.header, names=found.columns)
    frame = records.frame
    trade_id = tabular.as_text(frame, "agg_trade_id" if aggregate else "id")
    fields = [
        Field.of(frame, "ts", "transact_time" if aggregate else "time", "timestamp"),
        Field.of(frame, "price", "price", "float"),
        Field.of(frame, "size", "quantity" if aggregate else "qty", "float"),
        _side(frame, "is_buyer_maker"),
        Field(
            "trade_id",
            pl.concat_str(pl.lit("agg:"), trade_id) if aggregate else trade_id,
            tabular.given(frame, "agg_trade_id" if aggregate else "id"),
        ),
    ]
    accepted, rejected = tabular.check(frame, fields)
    rows = tabular.contract(accepted, "trades", ctx.partition, **_constants(ctx, **_identity(ctx, found.market)))
    return _finish(records, "trades", rows, rejected, ctx)


def parse_book_ticker(body: bytes, sniff: Sniff, ctx: FileContext) -> Parsed:
    found = layout(sniff, BOOK_TICKER)
    records = tabular.delimited(body, ",", header=found.header, names=found.columns)
    frame = records.frame
    fields = [
        Field.of(frame, "ts", "transaction_time", "timestamp"),
        Field.of(frame, "bid", "best_bid_price", "float"),
        Field.of(frame, "bid_size", "best_bid_qty", "float"),
        Field.of(frame, "ask", "best_ask_price", "float"),
        Field.of(frame, "ask_size", "best_ask_qty", "float"),
        Field.of(frame, "seq", "update_id", "int"),
    ]
    accepted, rejected = tabular.check(frame, fields)
    identity = _identity(ctx, found.market)
    rows = tabular.contract(accepted, "quotes", ctx.partition, channel="book_ticker", **_constants(ctx, **identity))
    return _finish(records, "quotes", rows, rejected, ctx)


def _symbols(frame: pl.DataFrame, ctx: FileContext) -> tuple[Field, str | None]:
    """The rows' own ``symbol`` column as a field (an unknown one is rejected), and the market type
    the symbols imply when they all imply the same one. An explicit ``--symbol`` must agree."""
    natives = frame.get_column("symbol").drop_nulls().str.strip_chars().unique().to_list()
    parsed = {native: binance_symbol(native) for native in natives}
    for symbol, _ in parsed.values():
        if symbol:
            ctx.resolve("symbol", content=symbol)
    canonical = {native: symbol for native, (symbol, _) in parsed.items()}
    markets = {market for _, market in parsed.values()}
    value = tabular.as_text(frame, "symbol").replace_strict(canonical, default=None, return_dtype=pl.String)
    return Field("symbol", value, tabular.given(frame, "symbol")), markets.pop() if len(markets) == 1 else None


def _one_of(frame: pl.DataFrame, column: str, values: list[str]) -> Field:
    text = tabular.as_text(frame, column)
    return Field(column, pl.when(text.is_in(values)).then(text), tabular.given(frame, column))


def parse_depth(body: bytes, sniff: Sniff, ctx: FileContext) -> Parsed:
    """The USD-M order-book download: snapshot rows (``snap``) and level updates (``set``) in file
    order, rebuilt into one quote per update that moved the top of the book (see ``book.py``)."""
    records = tabular.delimited(body, ",", header=True)
    frame = records.frame
    symbol, symbol_market = _symbols(frame, ctx)
    fields = [
        symbol,
        Field.of(frame, "ts", "timestamp", "timestamp"),
        Field.of(frame, "first_id", "first_update_id", "int"),
        Field.of(frame, "last_id", "last_update_id", "int"),
        Field.of(frame, "prev_id", "pu", "int"),
        _one_of(frame, "side", ["a", "b"]),
        _one_of(frame, "update_type", ["snap", "set"]),
        Field.of(frame, "price", "price", "float"),
        Field.of(frame, "size", "qty", "float"),
    ]
    accepted, rejected = tabular.check(frame, fields)
    identity = {
        "venue": ctx.resolve("venue", name=ctx.venue_in_path(), default=VENUE),
        "market": ctx.resolve("market", content=symbol_market, name=ctx.market_in_path(), default=HEADERS[DEPTH]),
    }
    tops, absorbed, resyncs = book.rebuild(accepted)
    rows = tabular.contract(tops, "quotes", ctx.partition, channel="book_rebuild", **_constants(ctx, **identity))
    return _finish(records, "quotes", rows, rejected, ctx, absorbed=absorbed, resyncs=resyncs)


def parse_parquet_trades(body: bytes, sniff: Sniff, ctx: FileContext) -> Parsed:
    """Trades as Parquet (``timestamp, trade_id, price, quantity, buyer_maker``): Binance's fields,
    so venue defaults to Binance; the market type comes from the path or ``--market``."""
    records = tabular.parquet(body)
    frame = records.frame
    fields = [
        Field.of(frame, "ts", "timestamp", "timestamp"),
        Field.of(frame, "price", "price", "float"),
        Field.of(frame, "size", "quantity", "float"),
        _side(frame, "buyer_maker"),
        Field.of(frame, "trade_id", "trade_id", "text"),
    ]
    accepted, rejected = tabular.check(frame, fields)
    rows = tabular.contract(accepted, "trades", ctx.partition, **_constants(ctx, **_identity(ctx, None)))
    return _finish(records, "trades", rows, rejected, ctx)


def parse_parquet_quotes(body: bytes, sniff: Sniff, ctx: FileContext) -> Parsed:
    """Quotes as Parquet (``timestamp, symbol, bid, ask, bid_size, ask_size``). Nothing in them says
    which venue or market published them: those come from the path or ``--venue``/``--market``."""
    records = tabular.parquet(body)
    frame = records.frame
    symbol, symbol_market = _symbols(frame, ctx)
    fields = [
        Field.of(frame, "ts", "timestamp", "timestamp"),
        symbol,
        *[Field.of(frame, name, name, "float") for name in ("bid", "ask", "bid_size", "ask_size")],
    ]
    accepted, rejected = tabular.check(frame, fields)
    identity = {
        "venue": ctx.resolve("venue", name=ctx.venue_in_path()),
        "market": ctx.resolve("market", content=symbol_market, name=ctx.market_in_path()),
    }
    rows = tabular.contract(accepted, "quotes", ctx.partition, channel="file", **_constants(ctx, **identity))
    return _finish(records, "quotes", rows, rejected, ctx)


FORMATS = (
    Format("binance_klines", "bars", lambda s: layout(s, KLINES, KLINES_CM) is not None, parse_klines),
    Format(
        "binance_agg_trades",
        "trades",
        lambda s: layout(s, AGG_TRADES_SPOT, AGG_TRADES_FUTURES) is not None,
        partial(parse_trades, aggregate=True),
    ),
    Format(
        "binance_trades",
        "trades",
        lambda s: layout(s, TRADES_SPOT, TRADES_UM, TRADES_CM) is not None,
        partial(parse_trades, aggregate=False),
    ),
    Format("binance_book_ticker", "quotes", lambda s: layout(s, BOOK_TICKER) is not None, parse_book_ticker),
    Format("binance_depth", "quotes", lambda s: layout(s, DEPTH) is not None, parse_depth),
    Format(
        "binance_parquet_trades",
        "trades",
        lambda s: s.layout == "parquet" and set(s.keys) >= PARQUET_TRADES,
        parse_parquet_trades,
    ),
    Format(
        "parquet_quotes",
        "quotes",
        lambda s: s.layout == "parquet" and set(s.keys) >= PARQUET_QUOTES,
        parse_parquet_quotes,
    ),
)
