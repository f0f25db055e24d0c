"""Tardis.dev CSV exports (``datasets``): quotes, trades and book_snapshot_N.

Every file starts ``exchange,symbol,timestamp,local_timestamp``: the exchange's time and ours
(receive time), both in µs since the epoch. Exchange ids say venue and market type together
(``binance-futures`` is Binance's USD-M perpetuals); the ones not listed here need ``--market``.
A trade's side is ``buy``, ``sell`` or ``unknown`` (null); an empty id is derived from the file
and the row.
"""

from __future__ import annotations

import re

import polars as pl

from arbiter.platform.sources.base import Parsed
from arbiter.platform.sources.files import tabular
from arbiter.platform.sources.files.formats import Format, Sniff
from arbiter.platform.sources.files.hints import FileContext, FileFeedError, symbol_or_none
from arbiter.platform.sources.files.tabular import ROW, Field

PREFIX = ("exchange", "symbol", "timestamp", "local_timestamp")
QUOTES = (*PREFIX, "ask_amount", "ask_price", "bid_price", "bid_amount")
TRADES = (*PREFIX, "id", "side", "price", "amount")
US = 1_000

# Tardis exchange id -> (venue, market type); None leaves the market to --market.
EXCHANGES: dict[str, tuple[str, str | None]] = {
    "binance": ("binance", "spot"),
    "binance-us": ("binance_us", "spot"),
    "binance-futures": ("binance", "linear_perp"),
    "binance-delivery": ("binance", "inverse_perp"),
    "coinbase": ("coinbase", "spot"),
    "kraken": ("kraken", "spot"),
    "cryptofacilities": ("kraken_futures", None),
    "bitstamp": ("bitstamp", "spot"),
    "bybit-spot": ("bybit", "spot"),
    "bybit": ("bybit", None),
    "okex": ("okx", "spot"),
    "okex-swap": ("okx", None),
    "bitmex": ("bitmex", None),
    "deribit": ("deribit", None),
}
_DERIBIT_PERPETUAL = re.compile(r"^([A-Z]+)(?:_([A-Z]+))?-PERPETUAL$")


def tardis_symbol(native: str) -> str | None:
    """Canonical symbol of a Tardis (exchange-native, upper-case) symbol; Deribit's ``BTC-PERPETUAL``
    settles in USD, ``BTC_USDC-PERPETUAL`` in USDC."""
    perpetual = _DERIBIT_PERPETUAL.match(native.upper())
    if perpetual:
        return f"{perpetual.group(1)}-{perpetual.group(2) or 'USD'}"
    return symbol_or_none(native)


def _book_depth(sniff: Sniff) -> int | None:
    """N of a book_snapshot_N file: levels of ``asks[i].price,asks[i].amount,bids[i].price,...``."""
    levels = sniff.header[len(PREFIX) :]
    if tuple(sniff.header[: len(PREFIX)]) != PREFIX or not levels or len(levels) % 4:
        return None
    expected = [
        f"{side}[{i}].{what}"
        for i in range(len(levels) // 4)
        for side in ("asks", "bids")
        for what in ("price", "amount")
    ]
    return len(levels) // 4 if list(levels) == expected else None


def _is(columns: tuple[str, ...]):
    return lambda sniff: sniff.layout == "delimited" and sniff.delimiter == "," and tuple(sniff.header) == columns


def _market_fields(frame: pl.DataFrame, ctx: FileContext) -> tuple[list[Field], dict]:
    """Fields and constants naming each row's market: exchange -> venue and market type, symbol ->
    canonical; one venue and market per file (Tardis exports one exchange per file)."""
    exchanges = frame.get_column("exchange").drop_nulls().str.strip_chars().unique().to_list()
    if len(exchanges) > 1:
        raise ctx.error(FileFeedError, f"expected one exchange per file, found {sorted(exchanges)}")
    venue, market = EXCHANGES.get(exchanges[0], (exchanges[0].split("-")[0], None)) if exchanges else (None, None)
    natives = frame.get_column("symbol").drop_nulls().str.strip_chars().unique().to_list()
    canonical = {native: tardis_symbol(native) for native in natives}
    for symbol in canonical.values():
        if symbol:
            ctx.resolve("symbol", content=symbol)
    constants = {
        "venue": ctx.resolve("venue", content=venue),
        "market": ctx.resolve("market", content=market, name=ctx.market_in_path()),
        "ts_source": "venue",
    }
    symbol = tabular.as_text(frame, "symbol").replace_strict(canonical, default=None, return_dtype=pl.String)
    fields = [
        Field("symbol", symbol, tabular.given(frame, "symbol")),
        Field.of(frame, "ts", "timestamp", "timestamp", unit_ns=US),
        Field.of(frame, "recv_ts", "local_timestamp", "timestamp", unit_ns=US),
    ]
    return fields, constants


def parse_quotes(body: bytes, sniff: Sniff, ctx: FileContext, *, snapshot: bool = False) -> Parsed:
    """quotes, or book_snapshot_N's best levels (``asks[0]``, ``bids[0]``): a side may be empty."""
    records = tabular.delimited(body, ",", header=True)
    frame = records.frame
    market, constants = _market_fields(frame, ctx)
    names = (
        {"bid": "bids[0].price", "bid_size": "bids[0].amount", "ask": "asks[0].price", "ask_size": "asks[0].amount"}
        if snapshot
        else {"bid": "bid_price", "bid_size": "bid_amount", "ask": "ask_price", "ask_size": "ask_amount"}
    )
    fields = [*market, *[Field.of(frame, ours, theirs, "float", required=False) for ours, theirs in names.items()]]
    accepted, rejected = tabular.check(frame, fields)
    channel = "book_snapshot" if snapshot else "book_rebuild"  # Tardis rebuilds quotes from the book
    rows = tabular.contract(accepted, "quotes", ctx.partition, channel=channel, **constants)
    return tabular.finish(
        records, {"quotes": rows}, rejected, target="quotes", source=ctx.source, partition=ctx.partition
    )


def parse_trades(body: bytes, sniff: Sniff, ctx: FileContext) -> Parsed:
    records = tabular.delimited(body, ",", header=True)
    frame = records.frame
    market, constants = _market_fields(frame, ctx)
    side = tabular.as_text(frame, "side").str.to_lowercase()
    fields = [
        *market,
        Field.of(frame, "price", "price", "float"),
        Field.of(frame, "size", "amount", "float"),
        Field("side", pl.when(side.is_in(["buy", "sell", "unknown"])).then(side), tabular.given(frame, "side"), False),
        Field("trade_id", tabular.as_text(frame, "id"), tabular.given(frame, "id"), required=False),
    ]
    accepted, rejected = tabular.check(frame, fields)
    derived = pl.format("{}:{}", pl.lit(tabular.file_id(body)), pl.col(ROW))
    trades = accepted.with_columns(
        side=pl.when(pl.col("side") != "unknown").then(pl.col("side")),
        trade_id=pl.coalesce(pl.col("trade_id"), derived),
    )
    rows = tabular.contract(trades, "trades", ctx.partition, **constants)
    return tabular.finish(
        records, {"trades": rows}, rejected, target="trades", source=ctx.source, partition=ctx.partition
    )


def parse_book_snapshot(body: bytes, sniff: Sniff, ctx: FileContext) -> Parsed:
    return parse_quotes(body, sniff, ctx, snapshot=True)


FORMATS = (
    Format("tardis_quotes", "quotes", _is(QUOTES), parse_quotes),
    Format("tardis_trades", "trades", _is(TRADES), parse_trades),
    Format(
        "tardis_book_snapshot",
        "quotes",
        lambda s: s.delimiter == "," and _book_depth(s) is not None,
        parse_book_snapshot,
    ),
)
