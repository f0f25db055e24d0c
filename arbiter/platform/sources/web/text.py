"""Text as the ``documents`` table stores it, the content hash that identifies it, and stated times.

The same announcement reaches us as an HTML page, a JSON listing entry or a JSON line, with
different markup, whitespace and a repeated heading. Normalising the text the same way for every
format makes ``doc_id`` (a hash of title and body) equal for equal text, so one announcement seen
twice is stored once.
"""

from __future__ import annotations

import email.utils
import hashlib
import re
import unicodedata
from datetime import UTC, datetime, timedelta

from arbiter.platform.sources.exchange_rest.records import FieldError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n")
_LAYOUT_WHITESPACE = re.compile(r"\s*[\r\n\t]\s*")
_COMPACT_UTC = re.compile(r"^\d{14}$")  # 20251117085530: a scraper's YYYYMMDDHHMMSS stamp, UTC


def normalise_text(text: str) -> str:
    """Unicode NFC, words separated by one space, lines trimmed, paragraphs by one blank line.

    Entities must already be decoded (the HTML parser does it). Non-breaking spaces become spaces,
    so a page and a feed that differ only in layout give the same text.
    """
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = []
    for block in _PARAGRAPH_BREAK.split(text):
        lines = [" ".join(line.split()) for line in block.split("\n")]
        if kept := [line for line in lines if line]:
            paragraphs.append("\n".join(kept))
    return "\n\n".join(paragraphs)


def tidy_title(title: str | None) -> str | None:
    """A title as published, trimmed; line breaks and tabs from page layout become one space.

    Runs of plain spaces are kept: titles are stored exactly as the publisher wrote them.
    """
    if title is None:
        return None
    tidy = _LAYOUT_WHITESPACE.sub(" ", unicodedata.normalize("NFC", title)).strip()
    return tidy or None


def drop_leading_title(title: str | None, body: str) -> str:
    """``body`` without a first paragraph that only repeats the title (an ``<h1>`` or ``# Title``)."""
    if not title:
        return body
    first, _, rest = body.partition("\n\n")
    if " ".join(first.lstrip("#").split()) == " ".join(title.split()):
        return rest
    return body


def content_id(title: str | None, body: str) -> str:
    """The document's id: sha256 of normalised title and body, hex, first 32 characters."""
    text = f"{' '.join((title or '').split())}\n\n{normalise_text(body)}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _datetime_ns(when: datetime) -> int:
    if when.tzinfo is None:  # a stated time without a zone: announcements state UTC
        when = when.replace(tzinfo=UTC)
    return (when - EPOCH) // timedelta(microseconds=1) * 1000


def _epoch_ns(number: float | int) -> int:
    """Epoch seconds, milliseconds, microseconds or nanoseconds, told apart by magnitude."""
    for limit, scale in ((1e11, 10**9), (1e14, 10**6), (1e17, 10**3)):
        if abs(number) < limit:
            return int(number * scale)
    return int(number)


def time_ns(value, field: str) -> int:
    """A stated publication time as UTC nanoseconds, or ``FieldError(field, "unparseable")``.

    Accepts epoch numbers (``releaseDate`` in ms, seconds, ...), ISO 8601 with or without a zone
    (``2025-11-17T16:55:31+08:00``, ``2026-03-10``), RFC 2822 (``Mon, 17 Nov 2025 08:55:00 GMT``)
    and compact ``YYYYMMDDHHMMSS`` scraper stamps (UTC). A time without a zone is taken as UTC.
    """
    try:
        if isinstance(value, bool):
            raise ValueError(value)
        if isinstance(value, int | float):
            return _epoch_ns(value)
        text = str(value).strip()
        if _COMPACT_UTC.match(text):
            return _datetime_ns(datetime.strptime(text, "%Y%m%d%H%M%S"))
        if re.fullmatch(r"-?\d+(\.\d+)?", text):
            return _epoch_ns(float(text) if "." in text else int(text))
        try:
            return _datetime_ns(datetime.fromisoformat(text.replace(" UTC", "+00:00")))
        except ValueError:
            return _datetime_ns(email.utils.parsedate_to_datetime(text))
    except (ValueError, TypeError, OverflowError):
        raise FieldError(field, "unparseable") from None
