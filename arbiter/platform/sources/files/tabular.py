"""A file's records as columns, cast to the contract in Polars, with every failing record kept.

Reading keeps each value as the file's own text (CSV and JSON lines) or the file's own type
(Parquet), so a price is parsed once, from its decimal text, into float64. Casting is vectorised:
``strict=False`` casts turn a bad value into a null, and a record whose required value is missing
or failed to cast goes to quarantine with the reason, the field and the record's original bytes.
No per-record Python runs unless a record is rejected.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import polars as pl

from arbiter.platform.schema import CONTRACT, conform
from arbiter.platform.sources.base import Parsed

NS_PER_S = 1_000_000_000
UTC_NS = pl.Datetime("ns", "UTC")
ROW = "_row"  # the record's position in its file (header and blank lines not counted)
MALFORMED = "_malformed"  # why a record could not even be split into fields, else null


def file_id(body: bytes) -> str:
    """The file's identity for ids derived from it: 12 hex digits of the SHA-1 of its bytes."""
    return hashlib.sha1(body).hexdigest()[:12]


@dataclass(frozen=True)
class Records:
    """One file's records in file order: a column per field (text, or Parquet's types), ``_row``
    and ``_malformed``, and a way back to any record's original bytes."""

    frame: pl.DataFrame
    raw: Callable[[pl.Series], pl.Series]  # rows (``_row`` values) -> the records' original bytes

    @property
    def count(self) -> int:
        return self.frame.height


class NotText(ValueError):
    """The bytes are not UTF-8 text, so no line of them can be read."""


def _lines(body: bytes) -> pl.DataFrame:
    """Non-blank lines (``\\r\\n`` or ``\\n``) as ``_line``."""
    try:
        lines = pl.read_lines(body, name="_line")
    except pl.exceptions.ComputeError as exc:
        raise NotText(f"not UTF-8 text ({exc})") from None
    return lines.filter(pl.col("_line").str.strip_chars() != "")


def _line_raw(lines: pl.DataFrame) -> Callable[[pl.Series], pl.Series]:
    return lambda rows: lines.get_column("_line").gather(rows).cast(pl.Binary)


def delimited(body: bytes, delimiter: str, *, header: bool, names: Sequence[str] | None = None) -> Records:
    """Delimited text (CSV, TSV, ...): one record per line, or Polars' CSV reader when values are quoted.

    ``names`` name the columns of a headerless file. In an unquoted file a line with another number
    of fields than the header (or ``names``) is marked ``wrong_field_count``; Polars' CSV reader
    pads a short quoted record with nulls (then missing fields) and cuts a long one.
    Raises ``NotText`` for bytes that are not UTF-8.
    """
    if b'"' in body:
        return _quoted(body, delimiter, header=header, names=names)
    lines = _lines(body)
    if header:
        columns = [c.strip() for c in lines.get_column("_line")[0].split(delimiter)] if lines.height else []
        lines = lines.slice(1)
    else:
        columns = list(names or [])
    line = pl.col("_line")
    fields = line.str.split_exact(delimiter, max(len(columns) - 1, 0))
    frame = lines.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias(ROW),
        *[fields.struct.field(f"field_{i}").alias(name) for i, name in enumerate(columns)],
        pl.when(line.str.count_matches(delimiter, literal=True) != len(columns) - 1)
        .then(pl.lit("wrong_field_count"))
        .alias(MALFORMED),
    )
    return Records(frame, _line_raw(lines))


# One CSV record: quoted fields may hold delimiters, quotes ("") and line breaks.
_CSV_RECORD = re.compile(rb'(?:"(?:[^"]|"")*"|[^"\n])*')


def _quoted(body: bytes, delimiter: str, *, header: bool, names: Sequence[str] | None) -> Records:
    frame = pl.read_csv(
        body.removeprefix(codecs.BOM_UTF8),
        has_header=header,
        new_columns=None if header else list(names or []) or None,
        separator=delimiter,
        infer_schema=False,
        truncate_ragged_lines=True,
    )
    frame = frame.rename({c: c.strip() for c in frame.columns})
    # Polars reads a blank line as a row of nulls; it is no record, as in ``delimited``.
    frame = frame.filter(~pl.all_horizontal(pl.all().is_null())) if frame.width else frame
    frame = frame.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias(ROW), pl.all(), pl.lit(None, pl.String).alias(MALFORMED)
    )

    def raw(rows: pl.Series) -> pl.Series:
        # Only rejected records come here: find each record's exact bytes by scanning for record
        # boundaries (C speed); if the scan disagrees with the reader, keep the fields as JSON.
        records = [m.group().rstrip(b"\r") for m in _CSV_RECORD.finditer(body)]
        records = [r for r in records if r.strip()][1 if header else 0 :]
        if len(records) != frame.height:
            return _json_raw(frame.drop(ROW, MALFORMED))(rows)
        return pl.Series([records[i] for i in rows.to_list()], dtype=pl.Binary)

    return Records(frame, raw)


def json_lines(body: bytes, fields: Sequence[str]) -> Records:
    """JSON lines, one object per line, keeping ``fields`` as text (numbers as their digits).

    A line that is not a JSON object is marked ``malformed_json``; the rest are read in one pass.
    Raises ``NotText`` for bytes that are not UTF-8.
    """
    lines = _lines(body).with_row_index(ROW).with_columns(pl.col(ROW).cast(pl.Int64))
    line = pl.col("_line").str.strip_chars()
    valid = line.str.starts_with("{") & line.str.json_path_match("$").is_not_null()
    lines = lines.with_columns(_valid=valid)
    good = lines.filter("_valid")
    schema = dict.fromkeys(fields, pl.String)
    values = (
        pl.read_ndjson("\n".join(good.get_column("_line").to_list()).encode(), schema=schema)
        if good.height
        else pl.DataFrame(schema=schema)
    )
    frame = pl.concat(
        [
            good.select(ROW).hstack(values),
            lines.filter(~pl.col("_valid")).select(ROW, *[pl.lit(None, pl.String).alias(f) for f in fields]),
        ]
    ).sort(ROW)
    frame = frame.with_columns(
        pl.when(pl.col(ROW).is_in(good.get_column(ROW).implode()).not_())
        .then(pl.lit("malformed_json"))
        .alias(MALFORMED)
    )
    return Records(frame, _line_raw(lines))


def _json_raw(frame: pl.DataFrame) -> Callable[[pl.Series], pl.Series]:
    return lambda rows: frame[rows].select(pl.struct(pl.all()).struct.json_encode().cast(pl.Binary)).to_series()


def parquet(body: bytes) -> Records:
    """A Parquet file with its own column types; a rejected record is kept as its row in JSON."""
    frame = pl.read_parquet(io.BytesIO(body))
    raw = _json_raw(frame)
    frame = frame.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias(ROW), pl.all(), pl.lit(None, pl.String).alias(MALFORMED)
    )
    return Records(frame, raw)


# Conversions: each takes the column's dtype into account and yields null where the value is
# missing or does not parse, so "given but null" means unparseable.


def given(frame: pl.DataFrame, column: str) -> pl.Expr:
    """True where the record has a value for ``column`` (text that is not blank)."""
    col = pl.col(column)
    if frame.schema[column] == pl.String:
        return col.is_not_null() & (col.str.strip_chars() != "")
    return col.is_not_null()


def as_float(frame: pl.DataFrame, column: str) -> pl.Expr:
    """float64 of the decimal text (the same double as ``float("…")``); NaN and infinities are null."""
    col = pl.col(column)
    value = (col.str.strip_chars() if frame.schema[column] == pl.String else col).cast(pl.Float64, strict=False)
    return pl.when(value.is_finite()).then(value)


def as_int(frame: pl.DataFrame, column: str) -> pl.Expr:
    col = pl.col(column)
    return (col.str.strip_chars() if frame.schema[column] == pl.String else col).cast(pl.Int64, strict=False)


def as_text(frame: pl.DataFrame, column: str) -> pl.Expr:
    col = pl.col(column)
    return pl.when(given(frame, column)).then(col.cast(pl.String).str.strip_chars())


def as_bool(frame: pl.DataFrame, column: str) -> pl.Expr:
    """``true``/``false`` in any case (and 1/0) as Boolean; anything else is null."""
    if frame.schema[column] == pl.Boolean:
        return pl.col(column)
    text = pl.col(column).cast(pl.String).str.strip_chars().str.to_lowercase()
    return text.replace_strict(
        {"true": True, "1": True, "false": False, "0": False}, default=None, return_dtype=pl.Boolean
    )


# Epoch unit from the number of digits: seconds up to 11, then ms, µs, ns (Binance spot moved from
# ms to µs in 2025; one rule reads both, even within one file).
_UNIT_BY_DIGITS = ((18, 1), (15, 1_000), (12, 1_000_000))


def as_timestamp(frame: pl.DataFrame, column: str, unit_ns: int | None = None) -> pl.Expr:
    """UTC nanoseconds from epoch numbers (``unit_ns`` per unit, or by magnitude when None; a
    decimal fraction is kept exactly from its digits), ISO-8601 text (one format per column, an
    offset converted to UTC, no offset taken as UTC) or Parquet datetimes."""
    dtype = frame.schema[column]
    col = pl.col(column)
    if isinstance(dtype, pl.Datetime):
        return (col.dt.convert_time_zone("UTC") if dtype.time_zone else col.dt.replace_time_zone("UTC")).cast(UTC_NS)
    return col.map_batches(lambda values: _timestamps(values, unit_ns), return_dtype=UTC_NS)


def _timestamps(values: pl.Series, unit_ns: int | None) -> pl.Series:
    # Step by step over the whole column: one eager expression would recompute its shared parts.
    text = pl.col("text")
    steps = (
        pl.DataFrame({"text": values.cast(pl.String).str.strip_chars()})  # numbers through their digits
        .with_columns(parts=pl.when(text.str.contains(r"^\d+(\.\d+)?$")).then(text).str.split_exact(".", 1))
        .unnest("parts")
    )
    unit = pl.lit(unit_ns or NS_PER_S, pl.Int64)
    if unit_ns is None:
        for digits, ns in reversed(_UNIT_BY_DIGITS):
            unit = pl.when(pl.col("field_0").str.len_bytes() >= digits).then(pl.lit(ns, pl.Int64)).otherwise(unit)
    steps = steps.with_columns(
        unit=unit,
        whole=pl.col("field_0").cast(pl.Int64, strict=False),
        fraction=pl.col("field_1").fill_null("").str.pad_end(9, "0").str.slice(0, 9).cast(pl.Int64),
    )
    epoch = pl.col("whole") * pl.col("unit") + pl.col("fraction") * pl.col("unit") // NS_PER_S
    iso = pl.when(pl.col("whole").is_null()).then(text).str.to_datetime(time_unit="ns", time_zone="UTC", strict=False)
    return steps.select(pl.coalesce(epoch.cast(UTC_NS), iso)).to_series()


@dataclass(frozen=True)
class Field:
    """One contract column read from the file: its value, whether the file gave one, and whether a
    record without it is rejected. ``name`` is ours and is what quarantine names."""

    name: str
    value: pl.Expr
    present: pl.Expr
    required: bool = True

    @classmethod
    def of(cls, frame: pl.DataFrame, name: str, column: str, kind: str, required: bool = True, **kw) -> Field:
        """``column`` of the file as ``name``, converted by ``kind`` (float, int, text, bool, timestamp)."""
        convert = {"float": as_float, "int": as_int, "text": as_text, "bool": as_bool, "timestamp": as_timestamp}
        return cls(name, convert[kind](frame, column, **kw), given(frame, column), required)


def check(frame: pl.DataFrame, fields: Sequence[Field]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(accepted, rejected) records of ``frame``: accepted ones as ``_row`` and each field's value
    under its name; rejected ones as ``_row``, ``_reason`` and ``_field`` of their first failure.

    A record marked malformed fails first; then, field by field, a required field the record
    lacks is ``missing_field`` and a value given but unparseable is ``unparseable``.
    """
    values = frame.select(
        ROW, MALFORMED, **{f.name: f.value for f in fields}, **{f"_has_{f.name}": f.present for f in fields}
    )
    failures: list[tuple[str, str | None, pl.Expr]] = [("malformed", None, pl.col(MALFORMED).is_not_null())]
    for f in fields:
        has = pl.col(f"_has_{f.name}")
        if f.required:
            failures.append(("missing_field", f.name, ~has))
        failures.append(("unparseable", f.name, has & pl.col(f.name).is_null()))
    first = pl.coalesce([pl.when(bad).then(pl.lit(i, pl.Int32)) for i, (_, _, bad) in enumerate(failures)])
    values = values.with_columns(_fail=first)
    accepted = values.filter(pl.col("_fail").is_null()).select(ROW, *[f.name for f in fields])
    reasons = {i: reason for i, (reason, _, _) in enumerate(failures)}
    names = {i: name for i, (_, name, _) in enumerate(failures) if name}
    rejected = values.filter(pl.col("_fail").is_not_null()).select(
        ROW,
        _reason=pl.coalesce(pl.col(MALFORMED), pl.col("_fail").replace_strict(reasons, return_dtype=pl.String)),
        _field=pl.col("_fail").replace_strict(names, default=None, return_dtype=pl.String),
    )
    return accepted, rejected


def quarantine(records: Records, rejected: pl.DataFrame, *, target: str, source: str, partition: str) -> pl.DataFrame:
    """Rejected records in the quarantine contract, each with its original bytes."""
    raw = records.raw(rejected.get_column(ROW)) if rejected.height else pl.Series([], dtype=pl.Binary)
    frame = rejected.select(
        pl.lit(target).alias("target"),
        pl.lit(source).alias("source"),
        pl.lit(partition).alias("partition"),
        pl.col("_reason").alias("reason"),
        pl.col("_field").alias("field"),
    ).with_columns(raw=raw)
    return conform(frame, CONTRACT["quarantine"], name="quarantine", partition=partition)


def contract(frame: pl.DataFrame, table: str, partition: str, **constants) -> pl.DataFrame:
    """The contract columns of ``table`` from ``frame`` (where it has them) and ``constants``, typed as
    the contract declares and in its order; a nullable column neither gives is null."""
    declared = pl.from_arrow(CONTRACT[table].empty_table()).schema
    fill = {name: constants.get(name) for name in declared if name not in frame.columns or name in constants}
    frame = frame.select([name for name in declared if name in frame.columns and name not in fill]).with_columns(
        **{name: pl.lit(value, declared[name]) for name, value in fill.items()}
    )
    return conform(
        frame.with_columns(pl.col(n).cast(t) for n, t in declared.items()),
        CONTRACT[table],
        name=table,
        partition=partition,
    )


def finish(
    records: Records,
    tables: dict[str, pl.DataFrame],
    rejected: pl.DataFrame,
    *,
    target: str,
    source: str,
    partition: str,
    absorbed: Counter | None = None,
    resyncs: int = 0,
) -> Parsed:
    """``Parsed`` for one file: its non-empty contract frames, its quarantine, and its record count."""
    frames = {table: frame for table, frame in tables.items() if frame.height}
    if rejected.height:
        frames["quarantine"] = quarantine(records, rejected, target=target, source=source, partition=partition)
    return Parsed(frames, raw_records=records.count, absorbed=absorbed or Counter(), resyncs=resyncs)
