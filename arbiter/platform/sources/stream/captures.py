"""Raw websocket capture files, read back as records: when each line arrived and what it held.

Two on-disk formats are understood, told apart by their first bytes (``recognise``):

``ns_lines``
    One message per line, ``<receive time, integer UTC ns> <raw JSON>``, usually gzip-compressed
    (hftbacktest's collector). Besides stream messages it holds the REST depth snapshots the
    collector fetched, as bare JSON lines.
``cryptofeed``
    cryptofeed's capture log: ``<url> <-> <ts>`` when a connection opened, ``<url> <- <ts>: <json>``
    for what we sent (subscriptions), ``<ts>: <json>`` for what the venue sent, and in ``.http.``
    files ``<url> -> <ts>: <json>`` for REST responses (book snapshots, reference data). ``<ts>``
    is decimal epoch seconds such as ``1633998512.0633569``.

Every line is one raw record: the parser accounts for each one (a row, a quarantined record, or
absorbed with a reason). A line that cannot be read at all becomes a ``BAD`` record so it is
quarantined rather than lost.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import polars as pl
from isal import igzip

GZIP_MAGIC = b"\x1f\x8b"
NS_LINES = "ns_lines"
CRYPTOFEED = "cryptofeed"
FORMATS = (NS_LINES, CRYPTOFEED)

# Record kinds
RECEIVED = "received"  # a message from the venue's websocket
SENT = "sent"  # a message we sent (subscribe requests)
CONNECT = "connect"  # a connection was opened
REST = "rest"  # a REST response recorded alongside the stream (book snapshots, reference data)
CONFIG = "config"  # cryptofeed's record of its own configuration (``configuration: {...}``)
BAD = "bad"  # a line that does not follow the format

NS_PER_S = 1_000_000_000
_NS_LINE = re.compile(rb"^\d{16,20} [\[{]")
_CF_LINE = re.compile(rb"^(?:[a-z]+://\S+ (?:<->|<-|->) \d+(?:\.\d+)?|\d+(?:\.\d+)?: [\[{])")
_CF_URL_LINE = re.compile(rb"^([a-z]+://\S+) (<->|<-|->) (\d+(?:\.\d+)?)(?:: (.*))?$", re.S)
_CF_RECV_LINE = re.compile(rb"^(\d+(?:\.\d+)?): (.*)$", re.S)
_CF_CONFIG = b"configuration: "


class CaptureFormatError(ValueError):
    """A capture cannot be read as a whole (unknown format, corrupt compression)."""


@dataclass(frozen=True, slots=True)
class Record:
    """One line of a capture."""

    line: int  # 0-based line number in the (decompressed) file
    recv_ns: int  # when it was received (or sent), UTC ns; 0 for a BAD line
    kind: str  # RECEIVED, SENT, CONNECT, REST or BAD
    url: str | None  # the connection's or request's URL, where the line names one
    payload: bytes  # the JSON exactly as captured (for BAD, the whole line)


def seconds_to_ns(text: str | bytes) -> int:
    """Decimal epoch seconds (``1633998512.0633569``) as integer ns, exactly: no float rounding.

    Digits past the ninth decimal are dropped (truncated towards the earlier nanosecond).
    Raises ValueError on anything but digits with an optional fraction.
    """
    s = text.decode("ascii") if isinstance(text, bytes) else text
    whole, dot, fraction = s.partition(".")
    if not whole.isdigit() or (dot and not fraction.isdigit()):
        raise ValueError(f"not decimal epoch seconds: {s!r}")
    return int(whole) * NS_PER_S + int((fraction + "000000000")[:9])


def gunzip(data: bytes) -> bytes:
    """The bytes, decompressed when they are gzip (isal: about 2x zlib, and it releases the GIL)."""
    if not data.startswith(GZIP_MAGIC):
        return data
    try:
        return igzip.decompress(data)
    except (OSError, EOFError, ValueError) as exc:
        raise CaptureFormatError(f"corrupt gzip data: {exc}") from exc


def _head_text(head: bytes) -> bytes:
    """The first decompressed bytes of ``head``: a partial gzip stream inflates fine up to its end."""
    if not head.startswith(GZIP_MAGIC):
        return head
    try:
        return zlib.decompressobj(wbits=31).decompress(head, 64 * 1024)
    except zlib.error:
        return b""


def recognise(head: bytes, name: str = "") -> str | None:
    """``NS_LINES`` or ``CRYPTOFEED`` when the first bytes are a capture of that format, else None.

    ``head`` is the start of the file as stored (gzip is looked inside); ``name`` is not needed to
    decide, since both formats announce themselves in their first line.
    """
    text = _head_text(head).lstrip()
    if _NS_LINE.match(text):
        return NS_LINES
    if _CF_LINE.match(text):
        return CRYPTOFEED
    return None


def read_records(data: bytes, fmt: str) -> Iterator[Record]:
    """Every line of a capture (already decompressed) as a ``Record``, in file order."""
    if fmt not in FORMATS:
        raise CaptureFormatError(f"unknown capture format {fmt!r} (known: {', '.join(FORMATS)})")
    parse = _ns_line if fmt == NS_LINES else _cryptofeed_line
    for number, line in enumerate(data.splitlines()):
        if line.strip():
            yield parse(number, line)


def _ns_line(number: int, line: bytes) -> Record:
    stamp, _, payload = line.partition(b" ")
    if not stamp.isdigit() or not payload:
        return Record(number, 0, BAD, None, line)
    return Record(number, int(stamp), RECEIVED, None, payload)


_ARROWS = {b"<->": CONNECT, b"<-": SENT, b"->": REST}


def _cryptofeed_line(number: int, line: bytes) -> Record:
    if m := _CF_RECV_LINE.match(line):
        return Record(number, seconds_to_ns(m.group(1)), RECEIVED, None, m.group(2))
    if m := _CF_URL_LINE.match(line):
        kind = _ARROWS[m.group(2)]
        payload = m.group(4) or b""
        if kind != CONNECT and not payload:
            return Record(number, 0, BAD, None, line)
        return Record(number, seconds_to_ns(m.group(3)), kind, m.group(1).decode(), payload)
    if line.startswith(_CF_CONFIG):
        return Record(number, 0, CONFIG, None, line[len(_CF_CONFIG) :])
    return Record(number, 0, BAD, None, line)


LINES_SCHEMA = {"line": pl.UInt32, "recv": pl.Int64, "msg": pl.String}


def ns_lines_frame(data: bytes) -> pl.DataFrame | None:
    """An ``NS_LINES`` capture (decompressed) as a frame ``line, recv, msg`` without per-line Python.

    Returns None when the fast reader cannot take the file whole (a line that is not
    ``<ns> <json>``, text that is not UTF-8): the caller then reads it with ``read_records``,
    which keeps every odd line as a ``BAD`` record.
    """
    try:
        # JSON from these venues has no spaces; a line that has one makes the reader fail, and the
        # slow path takes over: the raw text is never truncated or altered.
        frame = pl.read_csv(
            data,
            has_header=False,
            separator=" ",
            quote_char=None,
            schema={"recv": pl.Int64, "msg": pl.String},
        )
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, pl.exceptions.ShapeError):
        return None
    frame = frame.with_row_index("line").filter(pl.col("recv").is_not_null() | pl.col("msg").is_not_null())
    if frame.height == 0 or frame["recv"].null_count() or frame["msg"].null_count():
        return None  # blank lines are no records (dropped above); any other odd line takes the replay
    return frame.select(list(LINES_SCHEMA))
