"""Recognising a file's format by what its first bytes show: the header row, the delimiter, the
number of columns and the shape of the values (an epoch in ms, a decimal, ``True``). The file
name only helps with venue, symbol and interval, never with the format.

Each venue module declares its formats as ``Format`` entries; ``recognise`` asks them in order,
most specific first; the generic reader takes a file only when the caller gave a column map or a
table kind.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from arbiter.platform.sources.base import Parsed
from arbiter.platform.sources.files.hints import FileContext, UnrecognisedFile

DELIMITERS = (",", "\t", ";", "|")
SNIFF_LINES = 20

# Shapes of values, as the venue writes them.
INTEGER = re.compile(r"^\d+$")
DECIMAL = re.compile(r"^\d+(\.\d+)?([eE][-+]?\d+)?$")
BOOLEAN = re.compile(r"^(true|false|True|False|TRUE|FALSE)$")
EPOCH_S = re.compile(r"^\d{9,10}(\.\d+)?$")
EPOCH_MS_OR_US = re.compile(r"^\d{13}$|^\d{16}$")


@dataclass(frozen=True)
class Sniff:
    """What the first bytes of a file show."""

    layout: str  # "delimited", "json_lines" or "parquet"
    first_line: str
    delimiter: str | None
    rows: tuple[tuple[str, ...], ...]  # the first lines split into fields (delimited)
    keys: tuple[str, ...] = ()  # JSON lines: keys seen in the first objects; Parquet: its columns

    @property
    def width(self) -> int:
        return len(self.rows[0]) if self.rows else len(self.keys)

    @property
    def header(self) -> tuple[str, ...]:
        """The first row (Parquet: its columns), whether or not it is a header."""
        return self.rows[0] if self.rows else self.keys

    def matches(self, *shapes: re.Pattern | None) -> bool:
        """Most sniffed rows (more than half: one bad record must not hide a format) have
        ``len(shapes)`` fields, each matching its shape (None: any)."""
        fits = sum(
            len(row) == len(shapes) and all(s is None or s.match(v) for s, v in zip(shapes, row, strict=True))
            for row in self.rows
        )
        return fits * 2 > len(self.rows)

    def describe(self) -> str:
        if self.layout == "parquet":
            return f"Parquet with columns {list(self.keys)}"
        if self.layout == "json_lines":
            return f"JSON lines with keys {list(self.keys)}; first line {self.first_line[:200]!r}"
        return (
            f"first line {self.first_line[:200]!r}, delimiter {self.delimiter!r}, "
            f"{self.width} column{'s' if self.width != 1 else ''}"
        )


def sniff_text(head: bytes) -> Sniff:
    """The layout of text from its first bytes; a line cut off at the end of ``head`` is ignored."""
    text = head.decode("utf-8-sig", errors="replace")
    lines = text.splitlines()
    if len(lines) > 1 and not text.endswith(("\n", "\r")):
        lines = lines[:-1]
    lines = [line for line in lines if line.strip()][:SNIFF_LINES]
    first = lines[0] if lines else ""
    if first.lstrip().startswith("{"):
        keys: dict[str, None] = {}
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                keys.update(dict.fromkeys(record))
        return Sniff("json_lines", first, None, (), tuple(keys))
    delimiter = _delimiter(lines)
    rows = tuple(
        tuple(cell.strip() for cell in row)
        for row in csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter or ",")
    )
    return Sniff("delimited", first, delimiter, rows)


def _delimiter(lines: Sequence[str]) -> str | None:
    """The candidate found most often in the first line, quoted text aside (a header or a first
    record shows the file's delimiter; later lines may hold free text)."""
    first = re.sub(r'"[^"]*"', "", lines[0]) if lines else ""
    found = {d: first.count(d) for d in DELIMITERS if d in first}
    return max(found, key=found.__getitem__) if found else None


def sniff_parquet(columns: Sequence[str]) -> Sniff:
    return Sniff("parquet", "", None, (), tuple(columns))


@dataclass(frozen=True)
class Format:
    """One file format: how to know it, and how to parse it into contract frames."""

    name: str
    table: str  # the contract table it fills
    recognise: Callable[[Sniff], bool]
    parse: Callable[[bytes, Sniff, FileContext], Parsed]


def unrecognised(ctx: FileContext, sniff: Sniff) -> UnrecognisedFile:
    """The error for a file no format claims: what was seen, and the flags that would let it through."""
    return ctx.error(
        UnrecognisedFile,
        f"unrecognised file format: {sniff.describe()}. Known: Binance public-data CSVs (klines, trades, "
        "aggTrades, bookTicker, USD-M order book), Kraken OHLCVT and time-and-sales CSVs, Tardis CSVs (quotes, "
        "trades, book_snapshot_N). To read it as a generic file pass --kind quotes|trades|documents|listings with "
        "--map COLUMN=FIELD,... (COLUMN ours, FIELD the file's), and --venue, --symbol (--market) where the file "
        "does not name them.",
    )
