"""The JSON shapes announcements come in: a CMS listing (Binance's ``bapi`` shape) and JSON lines.

A listing holds ``{"data": {"catalogs": [{"articles": [{"code", "title", "releaseDate"}, ...]}]}}``
(or ``{"data": {"articles": [...]}}`` for one catalog); an article there usually has no body and
points at its page, but when it carries one it is a document by itself. A JSON-lines feed (like
the A13Club scrape of Binance's announcements) has one announcement object per line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

TITLE_KEY = "title"
BODY_KEYS = ("body", "content", "text")
URL_KEYS = ("url", "link")
# Stated publication times, most authoritative first. ``scraped_at`` (YYYYMMDDHHMMSS, UTC) is when a
# scraper first saw the page and ``file_commit_date`` when it stored it: later than publication
# by minutes, yet the best a scrape states.
TIME_KEYS = (
    "releaseDate",
    "publishDate",
    "published_at",
    "publishedAt",
    "published",
    "date",
    "scraped_at",
    "file_commit_date",
)


class MalformedListing(ValueError):
    """The body is JSON but not a listing; ``field`` names where the shape broke."""

    def __init__(self, field: str, problem: str):
        self.field = field
        super().__init__(f"field {field!r}: {problem}")


def listing_articles(body: bytes) -> list[Mapping]:
    """The article entries of a CMS listing, catalog by catalog; raises ``ValueError`` (JSON) or
    ``MalformedListing`` naming the field."""
    data = json.loads(body)
    data = data.get("data") if isinstance(data, dict) else None
    if not isinstance(data, dict):
        raise MalformedListing("data", "missing or not an object")
    if "catalogs" in data:
        catalogs = data["catalogs"]
        if not isinstance(catalogs, list) or not all(isinstance(c, dict) for c in catalogs):
            raise MalformedListing("data.catalogs", "not a list of catalogs")
        groups = [c.get("articles") or [] for c in catalogs]
    else:
        groups = [data.get("articles")]
    if not all(isinstance(group, list) for group in groups):
        raise MalformedListing("articles", "not a list")
    return [article for group in groups for article in group]


def jsonl_lines(body: bytes) -> list[bytes]:
    """The non-blank lines of a JSON-lines body, each one raw record."""
    return [line.rstrip(b"\r") for line in body.removeprefix(b"\xef\xbb\xbf").split(b"\n") if line.strip()]


def body_of(entry: Mapping):
    """The entry's body value, or None when it has no body field at all (a link-only listing entry)."""
    return next((entry[key] for key in BODY_KEYS if key in entry), None)


def stated_time(entry: Mapping) -> tuple[str, object] | None:
    """``(field, value)`` of the first stated publication time, or None."""
    return next(((key, entry[key]) for key in TIME_KEYS if entry.get(key) not in (None, "")), None)


def url_of(entry: Mapping) -> str | None:
    return next((str(entry[key]) for key in URL_KEYS if entry.get(key)), None)
