"""File feeds: venue data downloads, Tardis exports and any CSV / JSON-lines / Parquet file with a
column map, into the data contract — recognised by content, wrapped in zip or gzip or not.

    meta = {"venue": "walmart", "map": "listing_id=id,title=title"}  # what the file does not say
    parsed = ADAPTER.parse(RawSnapshot("files", "drop/products.csv", body, received_at, meta), "2026-11-21")

One snapshot is one file as dropped; a zip's members are parsed one by one (each named
``archive.zip!member`` in errors and in the ids derived from it) and their frames concatenated.
``landing.py`` lists a landing folder or S3 prefix and tells which files are new or changed.
"""

from __future__ import annotations

import io
from collections import Counter

import polars as pl

from arbiter.platform.sources.base import Parsed, RawSnapshot, concat_frames
from arbiter.platform.sources.files import binance_public, containers, generic, kraken_files, tardis
from arbiter.platform.sources.files.formats import Format, Sniff, sniff_parquet, sniff_text, unrecognised
from arbiter.platform.sources.files.hints import (
    FileContext,
    FileFeedError,
    FileHints,
    MissingHint,
    UnknownField,
    UnrecognisedFile,
    parse_column_map,
)
from arbiter.platform.sources.files.tabular import NotText

SNIFF_BYTES = 64 * 1024
# Most specific first: Tardis and Binance by header or value shapes, then Kraken's bare layouts.
VENUE_FORMATS: tuple[Format, ...] = (*tardis.FORMATS, *binance_public.FORMATS, *kraken_files.FORMATS)


def choose(sniff: Sniff, hints: FileHints) -> Format | None:
    """A column map means the caller describes the file: the generic reader. Otherwise a venue format
    that recognises it, else the generic reader when the caller named a table kind."""
    if hints.column_map and generic.recognise(sniff):
        return generic.FORMAT
    found = next((f for f in VENUE_FORMATS if f.recognise(sniff)), None)
    if found is None and hints.kind and generic.recognise(sniff):
        return generic.FORMAT
    return found


def sniff_file(body: bytes, ctx: FileContext) -> Sniff:
    """What the start of a (decompressed) file shows; a Parquet file's columns from its footer."""
    if not body.startswith(containers.PARQUET):
        return sniff_text(body[:SNIFF_BYTES])
    try:
        return sniff_parquet(pl.read_parquet_schema(io.BytesIO(body)).keys())
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise ctx.error(FileFeedError, f"corrupt Parquet ({exc})") from None


class FileFeeds:
    """The file-feed adapter (``kind = "file_feed"``). Hints come from each snapshot's ``meta``
    (``venue``, ``market``, ``symbol``, ``kind``, ``interval``, ``map``) over the adapter's own."""

    kind = "file_feed"

    def __init__(self, hints: FileHints | None = None):
        self.hints = hints or FileHints()

    def recognise(self, head: bytes, name: str) -> str | None:
        """The venue format's name; ``parquet`` for any Parquet file (its columns sit at its end);
        ``generic`` for content only a column map can describe (a CSV with a header row, JSON
        lines): claimed last, and ``parse`` says which flags it needs if none came with it."""
        inner, _ = containers.peek(head, name)
        if inner.startswith(containers.PARQUET):
            return "parquet"
        sniff = sniff_text(inner[:SNIFF_BYTES])
        found = choose(sniff, self.hints)
        if found:
            return found.name
        return generic.FORMAT.name if generic.looks_mappable(sniff) else None

    def parse(self, snapshot: RawSnapshot, partition: str) -> Parsed:
        """Contract frames and quarantine of every file in the snapshot.

        Raises ``FileFeedError`` (naming source, partition and file) for a file it cannot read as
        a whole: unrecognised, a missing venue/market/symbol, a map field the file lacks, a corrupt
        container. Records that fail one by one are quarantined instead.
        """
        parts = [self.parse_file(body, ctx) for body, ctx in self._files(snapshot, partition)]
        return Parsed(
            concat_frames([p.frames for p in parts]),
            raw_records=sum(p.raw_records for p in parts),
            absorbed=sum((p.absorbed for p in parts), Counter()),
            ignored_fields=sum((p.ignored_fields for p in parts), Counter()),
            resyncs=sum(p.resyncs for p in parts),
        )

    def formats(self, snapshot: RawSnapshot, partition: str = "") -> list[str]:
        """The format of each file in the snapshot, without parsing: raises what ``parse`` would
        for a file nobody can read, so a caller can refuse it before storing anything."""
        return [
            self._format(body, ctx)[1].name if body.strip() else "empty"
            for body, ctx in self._files(snapshot, partition)
        ]

    def _files(self, snapshot: RawSnapshot, partition: str) -> list[tuple[bytes, FileContext]]:
        hints = FileHints.from_meta(snapshot.meta, self.hints)
        try:
            files = containers.members(snapshot.origin, snapshot.body)
        except containers.ContainerError as exc:
            raise FileFeedError(f"source {snapshot.source!r}, partition {partition!r}: {exc}") from None
        return [(f.body, FileContext(snapshot.source, partition, f.origin, snapshot.received_at, hints)) for f in files]

    def _format(self, body: bytes, ctx: FileContext) -> tuple[Sniff, Format]:
        sniff = sniff_file(body, ctx)
        found = choose(sniff, ctx.hints)
        if found is None:
            raise unrecognised(ctx, sniff)
        if ctx.hints.kind and found.table and found.table != ctx.hints.kind:
            raise ctx.error(
                FileFeedError, f"the file is {found.name}, which fills {found.table}, not --kind {ctx.hints.kind}"
            )
        return sniff, found

    def parse_file(self, body: bytes, ctx: FileContext) -> Parsed:
        """One file (no container) into contract frames."""
        if not body.strip():
            return Parsed({}, raw_records=0)
        sniff, found = self._format(body, ctx)
        try:
            return found.parse(body, sniff, ctx)
        except NotText as exc:
            raise ctx.error(FileFeedError, str(exc)) from None
        except pl.exceptions.ComputeError as exc:  # bytes the reader cannot take (a corrupt Parquet page, ...)
            raise ctx.error(FileFeedError, f"{found.name} unreadable: {exc}") from exc


ADAPTER = FileFeeds()

__all__ = [
    "ADAPTER",
    "FileContext",
    "FileFeedError",
    "FileFeeds",
    "FileHints",
    "MissingHint",
    "UnknownField",
    "UnrecognisedFile",
    "parse_column_map",
]
