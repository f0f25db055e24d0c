"""Where a listing's picture comes from, by its ``image_uri``.

A source that delivers pictures with its listings (the simulator's marketplaces) stores them in
the lake's ``listing_images`` table under the same partition keys as its ``listings``; a picture
found there is taken from there. Any other ``image_uri`` is fetched as it says: a local path or
``file://``, ``s3://`` (on the lake's S3 settings) or ``http(s)://`` (httpx, with a timeout).
Nothing larger than ``max_bytes`` is read. A picture that cannot be had is left out and the
reason kept (``misses``), so ``image_features`` quarantines the listing as ``missing_image``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

import httpx
import pyarrow.fs as pafs

from arbiter.platform.enrich.images import DEFAULT_LIMITS
from arbiter.platform.lake import Lake, PartitionNotFound

TABLE = "listing_images"


class ImageStore:
    def __init__(self, lake: Lake, *, max_bytes: int = DEFAULT_LIMITS.max_bytes, timeout_s: float = 10.0):
        self.lake, self.max_bytes, self.timeout_s = lake, max_bytes, timeout_s
        self.misses: dict[str, str] = {}  # image_uri -> why it could not be read

    def fetch(self, partition: Mapping[str, str], uris: Iterable[str]) -> dict[str, bytes]:
        """The bytes of each of ``uris`` that can be had, for listings of lake ``partition``."""
        wanted = set(uris)
        found = self._delivered(partition, wanted)
        for uri in sorted(wanted - found.keys()):
            try:
                found[uri] = self._read(uri)
            except (OSError, httpx.HTTPError, ValueError) as exc:
                self.misses[uri] = f"{type(exc).__name__}: {exc}"[:300]
        return found

    def _delivered(self, partition: Mapping[str, str], wanted: set[str]) -> dict[str, bytes]:
        try:
            stored = self.lake.read(TABLE, [partition])
        except PartitionNotFound:
            return {}
        stored = stored.filter(stored.get_column("uri").is_in(list(wanted)))
        return dict(zip(stored.get_column("uri").to_list(), stored.get_column("body").to_list(), strict=True))

    def _read(self, uri: str) -> bytes:
        if uri.startswith(("http://", "https://")):
            with httpx.stream("GET", uri, timeout=self.timeout_s, follow_redirects=True) as response:
                response.raise_for_status()
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise ValueError(f"larger than {self.max_bytes} bytes")
                return bytes(body)
        if uri.startswith(("s3://", "s3a://")):
            fs, path = self.lake.fs if not self.lake.is_local else None, uri.split("://", 1)[1]
            if fs is None:
                raise ValueError("an s3:// image needs the lake on S3 (its credentials and endpoint)")
        else:
            fs, path = pafs.LocalFileSystem(), os.path.abspath(uri.removeprefix("file://"))
        info = fs.get_file_info(path)
        if info.type != pafs.FileType.File:
            raise FileNotFoundError(f"no file at {uri}")
        if info.size > self.max_bytes:
            raise ValueError(f"{info.size} bytes, more than {self.max_bytes}")
        with fs.open_input_stream(path) as stream:
            return stream.read()
