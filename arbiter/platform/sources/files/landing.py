"""A landing area for file drops — a local folder or ``s3://bucket/prefix`` — listed through
pyarrow filesystems (the lake's ``S3Options`` reach S3), and a pure cursor function that tells
which files are new or changed since the last look, so each version of a file is ingested once.

The cursor is a JSON object ``{key: "size:version"}`` (version: modification time in ns, from the
filesystem or S3's Last-Modified, which has one-second resolution: an object rewritten within
the same second at the same size looks unchanged). Names starting with ``.`` or ``_`` are
skipped: uploads in progress and staging folders by convention.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import pyarrow.fs as pafs

from arbiter.platform.lake import S3Options


@dataclass(frozen=True)
class LandingEntry:
    """One file in the landing area; ``key`` is a full URI (local absolute path or ``s3://…``)."""

    key: str
    size: int
    version: str

    @property
    def token(self) -> str:
        return f"{self.size}:{self.version}"


def _filesystem(root: str, s3: S3Options | None) -> tuple[pafs.FileSystem, str, str]:
    """(filesystem, base path in it, URI prefix that turns a path back into a key)."""
    if root.startswith(("s3://", "s3a://")):
        return (s3 or S3Options.from_env()).filesystem(), root.split("://", 1)[1].rstrip("/"), "s3://"
    return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(root)), ""


def _hidden(path: str, base: str) -> bool:
    return any(part.startswith((".", "_")) for part in path[len(base) :].split("/") if part)


def list_landing(root: str, s3: S3Options | None = None) -> list[LandingEntry]:
    """Every file under ``root`` (recursively), sorted by key. A root that does not exist is empty.

    Raises ``OSError`` (pyarrow's) when the filesystem cannot be reached or read.
    """
    fs, base, scheme = _filesystem(root, s3)
    infos = fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    entries = [
        LandingEntry(f"{scheme}{info.path}", info.size, str(info.mtime_ns))
        for info in infos
        if info.type == pafs.FileType.File and not _hidden(info.path, base)
    ]
    return sorted(entries, key=lambda e: e.key)


def changes(entries: list[LandingEntry], cursor: str | None) -> tuple[list[LandingEntry], str]:
    """(entries new or changed since ``cursor``, the next cursor). Pure: the same listing with
    the cursor it returned yields nothing; a file that disappears drops out of the cursor, so its
    return counts as new.

    Raises ``ValueError`` when ``cursor`` is not a cursor this function wrote.
    """
    try:
        seen = json.loads(cursor) if cursor else {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"landing cursor is not JSON: {exc}") from None
    if not isinstance(seen, dict):
        raise ValueError(f"landing cursor is not an object of key -> size:version: {cursor[:200]!r}")
    fresh = [e for e in entries if seen.get(e.key) != e.token]
    return fresh, json.dumps({e.key: e.token for e in entries}, sort_keys=True, separators=(",", ":"))


def read_bytes(key: str, s3: S3Options | None = None) -> bytes:
    """The content of one landing entry, as it is now, byte for byte (a ``.gz`` file stays compressed:
    pyarrow would inflate it by its extension; the adapters read gzip themselves)."""
    fs, path, _ = _filesystem(key, s3)
    with fs.open_input_stream(path, compression=None) as stream:
        return stream.read()
