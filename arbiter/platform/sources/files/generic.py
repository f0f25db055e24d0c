"""Any CSV, JSON-lines or Parquet file, read through a column map ``{our column: the file's field}``
into ``quotes``, ``trades``, ``documents`` or ``listings``.

The table is ``--kind``, or what the map implies (``listing_id`` → listings, ``body`` → documents,
``bid``/``ask`` → quotes, ``price`` and ``size`` → trades). With ``--kind`` and no map, the file's
fields named like our columns are taken as they are. A map naming a field the file lacks is an
error naming that field. Without a mapped ``ts`` a row's time is the receive time (``ts_source``
says so); a trade without an id gets one derived from the file and the row; a document's
``doc_id`` is the SHA-1 of its body unless mapped.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

import polars as pl

from arbiter.platform.sources.base import Parsed
from arbiter.platform.sources.files import tabular
from arbiter.platform.sources.files.formats import Format, Sniff
from arbiter.platform.sources.files.hints import FileContext, FileFeedError, MissingHint, UnknownField, symbol_or_none
from arbiter.platform.sources.files.tabular import ROW, Field

# Columns a map may fill, per table, with their conversion; the rest of a row is constants.
COLUMNS: dict[str, dict[str, str]] = {
    "quotes": {
        "ts": "timestamp",
        "symbol": "symbol",
        "bid": "float",
        "ask": "float",
        "bid_size": "float",
        "ask_size": "float",
        "seq": "int",
    },
    "trades": {
        "ts": "timestamp",
        "symbol": "symbol",
        "price": "float",
        "size": "float",
        "side": "side",
        "trade_id": "text",
    },
    "documents": {"ts": "timestamp", "doc_id": "text", "title": "text", "body": "text", "url": "text"},
    "listings": {
        "ts": "timestamp",
        "listing_id": "text",
        "title": "text",
        "description": "text",
        "brand": "text",
        "price": "float",
        "currency": "text",
        "image_uri": "text",
    },
}
REQUIRED = {"quotes": (), "trades": ("price", "size"), "documents": ("body",), "listings": ("listing_id", "title")}
SIDES = {"buy": "buy", "b": "buy", "bid": "buy", "sell": "sell", "s": "sell", "ask": "sell", "offer": "sell"}


def recognise(sniff: Sniff) -> bool:
    """A layout the generic reader can map: delimited with a header row, JSON lines, Parquet."""
    return sniff.layout in ("json_lines", "parquet") or (sniff.layout == "delimited" and bool(sniff.rows))


_FIELD_NAME = re.compile(r"^[A-Za-z_][\w .\[\]()/-]{0,63}$")


def looks_mappable(sniff: Sniff) -> bool:
    """Content a column map could describe, for ``recognise`` to claim as a last resort: Parquet,
    JSON objects one per line, or a delimited file whose first row is a header of field names."""
    if sniff.layout == "delimited":
        return bool(sniff.rows) and all(_FIELD_NAME.match(name) for name in sniff.header)
    return bool(sniff.keys)


def table_of(ctx: FileContext) -> str:
    """The table from ``--kind``, or from the columns the map fills."""
    if ctx.hints.kind:
        return ctx.hints.kind
    mapped = set(ctx.hints.column_map)
    implied = [
        table
        for table, cue in (("listings", {"listing_id"}), ("documents", {"body"}), ("quotes", {"bid", "ask"}))
        if mapped & cue
    ] + (["trades"] if {"price", "size"} <= mapped and "listing_id" not in mapped else [])
    if len(implied) != 1:
        raise ctx.error(
            MissingHint, f"no table kind: the map {dict(ctx.hints.column_map)} does not imply one; pass --kind"
        )
    return implied[0]


def column_map(ctx: FileContext, table: str, fields: list[str]) -> dict[str, str]:
    """The map to apply: the caller's, checked against ``fields`` (the file's), or our column
    names the file happens to use."""
    allowed = COLUMNS[table]
    given = dict(ctx.hints.column_map) or {c: c for c in allowed if c in fields}
    unknown = [ours for ours in given if ours not in allowed]
    if unknown:
        raise ctx.error(FileFeedError, f"--map column {unknown[0]!r} is not one of {table}'s: {', '.join(allowed)}")
    missing = [theirs for theirs in given.values() if theirs not in fields]
    if missing:
        raise ctx.error(
            UnknownField, f"--map field {missing[0]!r} is not in the file (its fields: {', '.join(fields)})"
        )
    lacking = [c for c in REQUIRED[table] if c not in given]
    if lacking or (table == "quotes" and not {"bid", "ask"} & set(given)):
        need = lacking[0] if lacking else "bid or ask"
        raise ctx.error(MissingHint, f"--map gives no field for {need}, which {table} needs")
    return given


def _read(body: bytes, sniff: Sniff, ctx: FileContext, table: str) -> tuple[tabular.Records, dict[str, str]]:
    if sniff.layout == "parquet":
        records = tabular.parquet(body)
        return records, column_map(ctx, table, [c for c in records.frame.columns if c not in (ROW, tabular.MALFORMED)])
    if sniff.layout == "json_lines":
        # Keys vary from object to object: a field counts as the file's if any record has it.
        wanted = sorted(set(ctx.hints.column_map.values()) or set(COLUMNS[table]))
        records = tabular.json_lines(body, wanted)
        found = [f for f in wanted if f not in sniff.keys and records.frame.get_column(f).null_count() < records.count]
        return records, column_map(ctx, table, [*sniff.keys, *found])
    mapping = column_map(ctx, table, list(sniff.header))
    return tabular.delimited(body, sniff.delimiter or ",", header=True), mapping


def _field(frame: pl.DataFrame, ours: str, theirs: str, kind: str, required: bool, symbols: Mapping) -> Field:
    if kind == "symbol":
        value = tabular.as_text(frame, theirs).replace_strict(symbols, default=None, return_dtype=pl.String)
        return Field(ours, value, tabular.given(frame, theirs), required)
    if kind == "side":
        text = tabular.as_text(frame, theirs).str.to_lowercase()
        return Field(
            ours, text.replace_strict(SIDES, default=None, return_dtype=pl.String), tabular.given(frame, theirs), False
        )
    return Field.of(frame, ours, theirs, kind, required=required)


def _sha1(bodies: pl.Series) -> pl.Series:
    # Per row, in Python: hashlib has no vectorised form, and documents come by the thousand, not million.
    return pl.Series([hashlib.sha1(b.encode()).hexdigest() for b in bodies.to_list()], dtype=pl.String)


def parse(body: bytes, sniff: Sniff, ctx: FileContext) -> Parsed:
    table = table_of(ctx)
    records, mapping = _read(body, sniff, ctx, table)
    frame = records.frame
    symbols = {}
    if "symbol" in mapping:
        natives = frame.get_column(mapping["symbol"]).cast(pl.String).drop_nulls().str.strip_chars().unique()
        symbols = {native: symbol_or_none(native) for native in natives.to_list()}
        for symbol in filter(None, symbols.values()):
            ctx.resolve("symbol", content=symbol)
    required = {*REQUIRED[table], "ts", "symbol"}
    fields = [
        _field(frame, ours, theirs, COLUMNS[table][ours], ours in required, symbols) for ours, theirs in mapping.items()
    ]
    accepted, rejected = tabular.check(frame, fields)
    constants: dict = {"recv_ts": ctx.received_at} if table in ("quotes", "trades") else {}
    if "ts" not in mapping:
        accepted = accepted.with_columns(ts=pl.lit(ctx.received_at, tabular.UTC_NS))
    if table in ("quotes", "trades"):
        constants["ts_source"] = "venue" if "ts" in mapping else "receive"
        constants["venue"] = ctx.resolve("venue", name=ctx.venue_in_path())
        constants["market"] = ctx.resolve("market", name=ctx.market_in_path())
        if "symbol" not in mapping:
            constants["symbol"] = ctx.resolve("symbol", name=ctx.symbol_in_name())
    if table == "quotes":
        constants["channel"] = "file"
    if table == "trades" and "trade_id" not in mapping:
        accepted = accepted.with_columns(trade_id=pl.format("{}:{}", pl.lit(tabular.file_id(body)), pl.col(ROW)))
    if table == "documents":
        constants["source"] = ctx.resolve("venue", name=ctx.venue_in_path())
        if "doc_id" not in mapping:
            accepted = accepted.with_columns(doc_id=pl.col("body").map_batches(_sha1, return_dtype=pl.String))
    if table == "listings":
        constants["venue"] = ctx.resolve("venue", name=ctx.venue_in_path())
    rows = tabular.contract(accepted, table, ctx.partition, **constants)
    return tabular.finish(records, {table: rows}, rejected, target=table, source=ctx.source, partition=ctx.partition)


FORMAT = Format("generic", "", recognise, parse)
