"""Ingesting any file a user has: read it as a raw snapshot, recognise its format by content, parse.

Every adapter kind (exchange REST responses, websocket captures, file feeds, web pages) says
whether the first bytes are its own; the first that claims them parses the whole snapshot.
Options a user gives (venue, kind, symbol, market, a column map) travel in the snapshot's
``meta``, so re-normalising a stored snapshot later applies them again without being told.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import time
import zipfile
from dataclasses import dataclass, field

import polars as pl

from arbiter.platform.lake import S3Options
from arbiter.platform.sources.base import Adapter, Parsed, RawSnapshot

HEAD_BYTES = 64 * 1024
OPTION_KEYS = ("venue", "kind", "symbol", "market", "map")


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
