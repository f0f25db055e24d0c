"""Opening what a file is wrapped in: zip archives (every member, its name kept in the origin as
``archive.zip!member.csv``), gzip, and Parquet (read whole; its columns tell its layout).

Containers are known by their magic bytes, not their names. ``peek`` opens just enough of a
container's first bytes to recognise what is inside, so a gzip of another source's capture is
left to that source.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass

from isal import igzip

ZIP, GZIP, PARQUET = b"PK\x03\x04", b"\x1f\x8b", b"PAR1"


class ContainerError(ValueError):
    """A container that cannot be opened (corrupt, truncated, empty)."""


@dataclass(frozen=True)
class Member:
    """One file inside whatever wrapped it."""

    origin: str
    body: bytes


def _strip_suffix(origin: str, suffix: str) -> str:
    return origin[: -len(suffix)] if origin.lower().endswith(suffix) else origin


def members(origin: str, body: bytes) -> list[Member]:
    """The files in ``body``: a zip's members (skipping folders and macOS metadata), a gzip's
    content, or the file itself; nested containers are opened too.

    Raises ``ContainerError`` for a corrupt or empty archive.
    """
    if body.startswith(ZIP):
        try:
            with zipfile.ZipFile(io.BytesIO(body)) as archive:
                names = [
                    info.filename
                    for info in archive.infolist()
                    if not info.is_dir() and not info.filename.startswith("__MACOSX/")
                ]
                if not names:
                    raise ContainerError(f"{origin}: the zip archive holds no files")
                return [m for name in names for m in members(f"{origin}!{name}", archive.read(name))]
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise ContainerError(f"{origin}: corrupt zip archive ({exc})") from None
    if body.startswith(GZIP):
        try:
            return members(_strip_suffix(origin, ".gz"), igzip.decompress(body))
        except (OSError, EOFError, zlib.error) as exc:
            raise ContainerError(f"{origin}: corrupt gzip ({exc})") from None
    return [Member(origin, body)]


def peek(head: bytes, name: str) -> tuple[bytes, str]:
    """(the first bytes inside, its name) of a gzip or of a zip's first member; ``head`` and
    ``name`` themselves for anything else. What cannot be inflated from ``head`` alone is empty."""
    if head.startswith(GZIP):
        inner = zlib.decompressobj(wbits=31)
        try:
            return inner.decompress(head), _strip_suffix(name, ".gz")
        except zlib.error:
            return b"", _strip_suffix(name, ".gz")
    offset = 0
    while head.startswith(ZIP, offset) and len(head) >= offset + 30:
        # A local file header: method at 8, compressed size at 18, name and extra lengths at 26.
        (method,) = struct.unpack_from("<H", head, offset + 8)
        (size,) = struct.unpack_from("<I", head, offset + 18)
        name_length, extra_length = struct.unpack_from("<HH", head, offset + 26)
        member = head[offset + 30 : offset + 30 + name_length].decode("utf-8", errors="replace")
        start = offset + 30 + name_length + extra_length
        if member.endswith("/") or member.startswith("__MACOSX/"):  # folders and metadata come first at times
            offset = start + size
            continue
        data = head[start:]
        if method == zipfile.ZIP_STORED:
            return data, member
        try:
            return (zlib.decompressobj(wbits=-15).decompress(data) if method == zipfile.ZIP_DEFLATED else b""), member
        except zlib.error:
            return b"", member
    return (b"", name) if head.startswith(ZIP) else (head, name)
