"""Kraken's downloadable history: OHLCVT and time-and-sales CSVs, one file per pair.

Neither has a header nor names its pair: the file name does (``XBTUSD_60.csv`` is XBT/USD bars of
60 minutes; ``XBTUSD.csv`` its trades). OHLCVT rows are ``timestamp (s), open, high, low, close,
volume, trades``; time-and-sales rows are ``timestamp (s, with a fraction), price, volume`` with
no side and no trade id, so the side stays null and the id is derived from the file and the row.
"""

from __future__ import annotations

import re

import polars as pl

from arbiter.platform.sources.base import Parsed
from arbiter.platform.sources.files import tabular
from arbiter.platform.sources.files.formats import DECIMAL, EPOCH_S, INTEGER, Format, Sniff
from arbiter.platform.sources.files.hints import FileContext, interval_label, symbol_or_none
from arbiter.platform.sources.files.tabular import ROW, Field

VENUE = "kraken"
OHLCVT = ("timestamp", "open", "high", "low", "close", "volume", "trades")
TIME_AND_SALES = ("timestamp", "price", "volume")
NAME = re.compile(r"^(?P<pair>[A-Za-z0-9]+?)(?:_(?P<minutes>\d+))?\.(csv|txt)", re.IGNORECASE)


def _is_ohlcvt(sniff: Sniff) -> bool:
    return sniff.delimiter == "," and sniff.matches(EPOCH_S, DECIMAL, DECIMAL, DECIMAL, DECIMAL, DECIMAL, INTEGER)


def _is_time_and_sales(sniff: Sniff) -> bool:
    return sniff.delimiter == "," and sniff.matches(EPOCH_S, DECIMAL, DECIMAL)


def _identity(ctx: FileContext) -> dict:
    named = NAME.match(ctx.name)
    return {
        "venue": ctx.resolve("venue", name=ctx.venue_in_path(), default=VENUE),
        "market": ctx.resolve("market", name=ctx.market_in_path(), default="spot"),
        "symbol": ctx.resolve("symbol", name=symbol_or_none(named.group("pair")) if named else None),
    }


def _constants(ctx: FileContext) -> dict:
    return {"ts_source": "venue", "recv_ts": ctx.received_at, **_identity(ctx)}


def parse_ohlcvt(body: bytes, sniff: Sniff, ctx: FileContext) -> Parsed:
    named = NAME.match(ctx.name)
    minutes = named.group("minutes") if named else None
    interval = ctx.resolve("interval", name=interval_label(int(minutes) * 60) if minutes else None)
    records = tabular.delimited(body, ",", header=False, names=OHLCVT)
    frame = records.frame
    fields = [
        Field.of(frame, "ts", "timestamp", "timestamp", unit_ns=tabular.NS_PER_S),
        *[Field.of(frame, name, name, "float") for name in ("open", "high", "low", "close", "volume")],
        Field.of(frame, "trade_count", "trades", "int", required=False),
    ]
    accepted, rejected = tabular.check(frame, fields)
    rows = tabular.contract(accepted, "bars", ctx.partition, interval=interval, **_constants(ctx))
    return tabular.finish(records, {"bars": rows}, rejected, target="bars", source=ctx.source, partition=ctx.partition)


def parse_time_and_sales(body: bytes, sniff: Sniff, ctx: FileContext) -> Parsed:
    records = tabular.delimited(body, ",", header=False, names=TIME_AND_SALES)
    frame = records.frame
    fields = [
        Field.of(frame, "ts", "timestamp", "timestamp", unit_ns=tabular.NS_PER_S),
        Field.of(frame, "price", "price", "float"),
        Field.of(frame, "size", "volume", "float"),
    ]
    accepted, rejected = tabular.check(frame, fields)
    # No trade id in the file: the file's identity and the row, so identical prints all stay.
    trades = accepted.with_columns(trade_id=pl.format("{}:{}", pl.lit(tabular.file_id(body)), pl.col(ROW)))
    rows = tabular.contract(trades, "trades", ctx.partition, **_constants(ctx))
    return tabular.finish(
        records, {"trades": rows}, rejected, target="trades", source=ctx.source, partition=ctx.partition
    )


FORMATS = (
    Format("kraken_ohlcvt", "bars", _is_ohlcvt, parse_ohlcvt),
    Format("kraken_time_and_sales", "trades", _is_time_and_sales, parse_time_and_sales),
)
