"""Ingesting any file a user has: read it as a raw snapshot, recognise its format by content, parse.

Every adapter kind (exchange REST responses, websocket captures, file feeds, web pages) says
whether the first bytes are its own; the first that claims them parses the whole snapshot.
Options a user gives (venue, kind, symbol, market, a column map) travel in the snapshot's
``meta``, so re-normalising a stored snapshot later applies them again without being told.

Files given together that belong to one recording session (cryptofeed's capture logs of one
exchange in one folder: a ``.ws.`` connection and the ``.http.`` REST book snapshots taken for it)
form one partition (``group``), whose files are each kept as their own raw snapshot but parsed
together (``parse_together``), so the connection's order books start from those snapshots.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import time
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import polars as pl

from arbiter.platform.lake import S3Options
from arbiter.platform.sources.base import Adapter, Parsed, RawSnapshot, merge

HEAD_BYTES = 64 * 1024
OPTION_KEYS = ("venue", "kind", "symbol", "market", "map")
# cryptofeed names its capture logs ``<EXCHANGE>.<rotation>`` (the feed's own: configuration and
# reference data) and ``<EXCHANGE>.<ws|http>.<connection>.<rotation>`` (one per connection), all
# in the folder it records into; ``.gz`` when compressed afterwards.
_CAPTURE_LOG = re.compile(r"(?P<exchange>[A-Z][A-Z0-9_]*)\.(?:(?:ws|http)\.\d+\.)?\d+(?:\.gz)?")
_SESSION = re.compile(r"[A-Z][A-Z0-9_]*\.\*")  # the name part of a session key: ``<EXCHANGE>.*``


class Unrecognised(ValueError):
    """No adapter claims the file; the message says what it saw and which flags would help."""


@dataclass(frozen=True)
class IngestOptions:
    """What a user may tell about a file its content does not say."""

    venue: str | None = None
    kind: str | None = None  # quotes | trades | documents | listings
    symbol: str | None = None
    market: str | None = None
    mapping: dict[str, str] = field(default_factory=dict)  # our column -> the file's field

    @staticmethod
    def parse_map(text: str | None) -> dict[str, str]:
        """``listing_id=id,title=title`` → ``{"listing_id": "id", "title": "title"}`` (ValueError if malformed)."""
        from arbiter.platform.sources.files.hints import parse_column_map

        return parse_column_map(text or "")

    def meta(self) -> dict[str, str]:
        given = {"venue": self.venue, "kind": self.kind, "symbol": self.symbol, "market": self.market}
        if self.mapping:
            given["map"] = ",".join(f"{k}={v}" for k, v in self.mapping.items())
        return {k: v for k, v in given.items() if v}


def adapters() -> list[Adapter]:
    """Every adapter, most specific first: a saved REST response or a capture is also JSON, and
    generic CSV/JSON (the file feeds' column map) is the last resort."""
    from arbiter.platform.sources import exchange_rest, files, stream, web_pages

    return [exchange_rest.ADAPTER, stream.ADAPTER, web_pages.ADAPTER, files.ADAPTER]


def read_snapshot(
    uri: str, source: str, options: IngestOptions | None = None, s3: S3Options | None = None
) -> RawSnapshot:
    """The file's bytes (a local path or ``s3://`` URI) as a raw snapshot; ``meta`` records its size
    and the options given."""
    from arbiter.platform.sources.files.landing import read_bytes

    try:
        body = read_bytes(uri, s3)
    except FileNotFoundError:
        raise FileNotFoundError(f"source {source!r}: no file at {uri}") from None
    meta = {"size": str(len(body)), **(options or IngestOptions()).meta()}
    return RawSnapshot(source=source, origin=uri, body=body, received_at=time.time_ns(), meta=meta)


def head_of(body: bytes) -> bytes:
    """The first bytes a recogniser sees: decompressed for gzip, the first member for zip."""
    if body[:2] == b"\x1f\x8b":
        with gzip.GzipFile(fileobj=io.BytesIO(body)) as gz:
            return gz.read(HEAD_BYTES)
    if body[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(body)) as zf:
            names = [n for n in zf.namelist() if not n.endswith("/")]
            return zf.open(names[0]).read(HEAD_BYTES) if names else b""
    return body[:HEAD_BYTES]


def recognise(snapshot: RawSnapshot) -> tuple[Adapter, str]:
    """The adapter and format that claim the snapshot, or ``Unrecognised`` describing it (file
    feeds raise their own errors, naming the flags that would let a generic file through)."""
    name = snapshot.origin.rsplit("/", 1)[-1]
    head = head_of(snapshot.body)
    for adapter in adapters():
        fmt = adapter.recognise(head, name)
        if fmt:
            if hasattr(adapter, "formats"):  # file feeds: a generic file must also be readable as told
                adapter.formats(snapshot)
            return adapter, fmt
    raise Unrecognised(_describe(head, name, snapshot.source))


def _describe(head: bytes, name: str, source: str) -> str:
    text = head.decode("utf-8", errors="replace")
    first = text.splitlines()[0][:160] if text.strip() else "(empty)"
    delimiter = max(",;\t|", key=first.count)
    columns = first.count(delimiter) + 1 if first.count(delimiter) else 1
    return (
        f"source {source!r}: cannot recognise {name!r}: first line {first!r} "
        f"({columns} column(s) split on {delimiter!r}). It is not a known venue response, websocket "
        "capture, venue download or announcement page. Say what it holds with --kind "
        "quotes|trades|documents|listings and --map COLUMN=FIELD,... (plus --venue and --symbol "
        "where the file does not name them)."
    )


def parse(snapshot: RawSnapshot, partition: str) -> Parsed:
    adapter, _ = recognise(snapshot)
    return adapter.parse(snapshot, partition)


def session_key(uri: str) -> str | None:
    """``<folder>/<EXCHANGE>.*``, the recording session of a cryptofeed capture log (by its name),
    else None."""
    folder, _, name = uri.rpartition("/")
    found = _CAPTURE_LOG.fullmatch(name)
    return f"{folder}/{found['exchange']}.*" if found else None


def is_session_key(key: str) -> bool:
    return bool(_SESSION.fullmatch(key.rpartition("/")[2]))


def group(uris: Iterable[str]) -> dict[str, list[str]]:
    """Partition key → its files, in the order first given (a file given twice counts once).

    Two or more capture logs of one session share the session's key, so they are parsed together;
    any other file (a capture log given with no other of its session included) is its own
    partition, keyed by itself.
    """
    by_session: dict[str, list[str]] = {}
    for uri in dict.fromkeys(uris):
        by_session.setdefault(session_key(uri) or uri, []).append(uri)
    return {key if len(files) > 1 else files[0]: sorted(files) for key, files in by_session.items()}


def members(key: str, files: Sequence[str] = (), s3: S3Options | None = None) -> list[str]:
    """The files of partition ``key`` (located: an absolute path or URI). A file's key is the file.
    A session's are ``files`` as given when it was ingested, or without them (re-materialised from
    the UI) every capture log of the session now in its folder. ValueError names a given file that
    is not the partition's; FileNotFoundError a session with no file left."""
    session = is_session_key(key)
    strays = [f for f in files if (session_key(f) if session else f) != key]
    if strays:
        raise ValueError(f"source 'files', partition {key!r}, field 'files': {strays} do not belong to it")
    if files or not session:
        return sorted(files) or [key]
    from arbiter.platform.sources.files.landing import list_landing

    folder = key.rpartition("/")[0]
    found = [entry.key for entry in list_landing(folder, s3) if session_key(entry.key) == key]
    if not found:
        raise FileNotFoundError(f"source 'files', partition {key!r}: no capture log of this session in {folder}")
    return found


def parse_together(snapshots: Sequence[RawSnapshot], partition: str) -> Parsed:
    """A partition's snapshots as one result. A file alone parses as ``parse``; a session's
    websocket captures are replayed together in receive-time order (``stream.parse_many``), so
    REST book snapshots reach the connection whose books need them. Any other file among them is
    parsed on its own, and the counts of all add up."""
    from arbiter.platform.sources import stream

    claimed = [(recognise(snapshot)[0], snapshot) for snapshot in snapshots]
    captures = [snapshot for adapter, snapshot in claimed if adapter.kind == stream.KIND]
    if len(captures) < 2:
        parts = [adapter.parse(snapshot, partition) for adapter, snapshot in claimed]
    else:
        parts = [adapter.parse(snapshot, partition) for adapter, snapshot in claimed if adapter.kind != stream.KIND]
        parts.append(stream.parse_many(captures, partition))
    return parts[0] if len(parts) == 1 else merge(parts)


def raw_frame(snapshots: list[RawSnapshot]) -> pl.DataFrame:
    """Snapshots as rows of the ``raw_snapshots`` table, bytes unchanged."""
    return pl.DataFrame(
        {
            "received_at": [s.received_at for s in snapshots],
            "source": [s.source for s in snapshots],
            "origin": [s.origin for s in snapshots],
            "sha256": [hashlib.sha256(s.body).hexdigest() for s in snapshots],
            "meta": [json.dumps(dict(s.meta), sort_keys=True) for s in snapshots],
            "body": [s.body for s in snapshots],
        },
        schema={
            "received_at": pl.Int64,
            "source": pl.String,
            "origin": pl.String,
            "sha256": pl.String,
            "meta": pl.String,
            "body": pl.Binary,
        },
    ).with_columns(pl.col("received_at").cast(pl.Datetime("ns", "UTC")))


def snapshots_of(frame: pl.DataFrame) -> list[RawSnapshot]:
    """The inverse of ``raw_frame``: stored rows back as snapshots, ready to be parsed again."""
    return [
        RawSnapshot(
            source=row["source"],
            origin=row["origin"],
            body=row["body"],
            received_at=row["received_at"],
            meta=json.loads(row["meta"]),
        )
        for row in frame.with_columns(pl.col("received_at").dt.epoch("ns")).iter_rows(named=True)
    ]
