"""Web pages and announcement feeds → ``documents`` (kind ``web_page``), bad records → ``quarantine``.

Formats, recognised by content: an HTML article or index page, a CMS JSON listing (Binance's
shape) and JSON lines of announcements. A snapshot's ``meta`` may say ``role`` (``index``: a page
whose links the crawler follows, not a document), ``published_hint`` (UTC ns a listing stated for
this page) and ``article_url`` (the listing's ``{code}`` URL template); the crawler
(``arbiter.platform.sources.web.crawl``) sets them. An entry's own ``venue`` names its
document's ``source``, else ``meta["venue"]`` (``arbiter ingest --venue``), else the snapshot's
source does. A gzipped body is read unzipped.

Every document's ``doc_id`` is a hash of its normalised title and body, so the same text fetched
twice, or from two URLs, or as a page and as a feed line, is one document: repeats within a parse
are absorbed as ``duplicate_content`` and ``drop_known`` absorbs ids already in the lake. ``ts`` is
the publication time the page or entry states, else the listing's hint, else the fetch time. A
record with no body text or an unparseable stated time is quarantined with the field named and its
raw bytes kept.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urljoin

import polars as pl

from arbiter.platform.sources.base import Parsed, RawSnapshot, merge
from arbiter.platform.sources.exchange_rest.records import Batch, FieldError
from arbiter.platform.sources.web import feeds, html
from arbiter.platform.sources.web.text import content_id, drop_leading_title, normalise_text, tidy_title, time_ns

KIND = "web_page"

HTML = "announcement_html"
CMS_JSON = "announcement_cms_json"
JSONL = "announcement_jsonl"
HEAD_BYTES = 4096  # how much of a body ``recognise`` needs to see


@dataclass(frozen=True)
class Link:
    """A page an index points at, with the publication time the index stated for it (UTC ns)."""

    url: str
    published_hint: int | None = None


def recognise(head: bytes, name: str) -> str | None:
    """``announcement_html``, ``announcement_cms_json`` or ``announcement_jsonl`` by the first bytes,
    else None (other JSON, such as exchange REST responses, is not ours)."""
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    lowered = text[:1024].lower()
    if lowered.startswith((b"<!doctype html", b"<html")) or b"<head" in lowered or b"<body" in lowered:
        return HTML
    if not text.startswith(b"{"):
        return HTML if name.lower().endswith((".html", ".htm")) and text.startswith(b"<") else None
    if b'"catalogs"' in text or (b'"data"' in text and b'"articles"' in text):
        return CMS_JSON
    first, newline, _ = text.partition(b"\n")
    if newline:
        try:
            record = json.loads(first)
        except ValueError:
            return None
        return JSONL if isinstance(record, dict) and "title" in record and feeds.body_of(record) is not None else None
    # The head ends inside the first line: recognise by its keys.
    has_body = any(f'"{key}"'.encode() in text for key in feeds.BODY_KEYS)
    return JSONL if b'"title"' in text and has_body else None


def _fallback_ts(snapshot: RawSnapshot) -> int:
    hint = snapshot.meta.get("published_hint")
    return int(hint) if hint else snapshot.received_at


def _row(
    snapshot: RawSnapshot,
    title: str | None,
    body: str,
    stated: tuple[str, object] | None,
    url: str | None,
    venue: str | None = None,
):
    body = normalise_text(drop_leading_title(title, normalise_text(body)))
    if not body:
        raise FieldError("body", "no_body_text")
    ts = time_ns(stated[1], stated[0]) if stated else _fallback_ts(snapshot)
    source = venue or snapshot.meta.get("venue") or snapshot.source
    return {"ts": ts, "source": source, "doc_id": content_id(title, body), "title": title, "body": body, "url": url}


def _html_row(snapshot: RawSnapshot, body: bytes) -> dict:
    page = html.article(html.decode(body, snapshot.meta.get("content-type", "")))
    return _row(snapshot, tidy_title(page.title), page.body, page.published, snapshot.origin)


def _entry_row(snapshot: RawSnapshot, entry: Mapping) -> dict:
    if not isinstance(entry, Mapping):
        raise FieldError("record", "not_an_object")
    body = feeds.body_of(entry)
    if body is None:
        raise FieldError("body", "missing_field")
    title = tidy_title(str(entry[feeds.TITLE_KEY])) if entry.get(feeds.TITLE_KEY) is not None else None
    venue = str(entry.get("venue") or "").strip().lower() or None
    return _row(snapshot, title, str(body), feeds.stated_time(entry), _entry_url(snapshot, entry), venue)


def _entry_url(snapshot: RawSnapshot, entry: Mapping) -> str | None:
    """An entry's page: its ``url``, else ``meta["article_url"]`` filled with its ``code``; absolute."""
    url = feeds.url_of(entry)
    template = snapshot.meta.get("article_url")
    if url is None and template and entry.get("code"):
        url = template.format(code=entry["code"])
    return urljoin(snapshot.origin, url) if url else None


def _article_link(snapshot: RawSnapshot, entry) -> str | None:
    """Where a listing entry without a body points, or None (it has a body, or no way to its page)."""
    if not isinstance(entry, Mapping) or feeds.body_of(entry) is not None:
        return None
    return _entry_url(snapshot, entry)


def _unique(batch: Batch, absorbed: Counter) -> None:
    """Keep the first document of each ``doc_id``; later ones are absorbed as ``duplicate_content``."""
    seen: set[str] = set()
    kept = []
    for row in batch.rows["documents"]:
        if row["doc_id"] in seen:
            absorbed["duplicate_content"] += 1
        else:
            seen.add(row["doc_id"])
            kept.append(row)
    batch.rows["documents"] = kept


def _unzipped(body: bytes) -> bytes:
    return gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body


def parse(snapshot: RawSnapshot, partition: str) -> Parsed:
    """``documents`` and ``quarantine`` from one page or feed snapshot; never raises on bad content."""
    batch = Batch(source=snapshot.source, partition=partition, rows={"documents": []})
    absorbed: Counter = Counter()
    raw_records = 1
    try:
        body = _unzipped(snapshot.body)
    except (OSError, EOFError):
        batch.reject("documents", snapshot.body, "malformed_gzip", None)
        return Parsed(frames=batch.frames(), raw_records=raw_records)
    fmt = snapshot.meta.get("format") or recognise(body[:HEAD_BYTES], snapshot.origin)
    if fmt == HTML:
        if snapshot.meta.get("role") == "index":
            absorbed["index_page"] += 1  # its links are followed; the page itself is no document
        else:
            batch.add("documents", snapshot.body, lambda: _html_row(snapshot, body))
    elif fmt == CMS_JSON:
        try:
            articles = feeds.listing_articles(body)
        except feeds.MalformedListing as exc:
            batch.reject("documents", snapshot.body, "malformed_listing", exc.field)
        except (ValueError, UnicodeDecodeError):
            batch.reject("documents", snapshot.body, "malformed_json", None)
        else:
            raw_records = len(articles)
            for entry in articles:
                if _article_link(snapshot, entry):
                    absorbed["link_only"] += 1  # points at its page, which the crawler fetches
                else:
                    batch.add("documents", entry, lambda e=entry: _entry_row(snapshot, e))
    elif fmt == JSONL:
        lines = feeds.jsonl_lines(body)
        raw_records = len(lines)
        for line in lines:
            try:
                entry = json.loads(line)
            except (ValueError, UnicodeDecodeError):
                batch.reject("documents", line, "malformed_json", None)
                continue
            batch.add("documents", line, lambda e=entry: _entry_row(snapshot, e))
    else:
        batch.reject("documents", snapshot.body, "unrecognised_format", None)
    _unique(batch, absorbed)
    return Parsed(frames=batch.frames(), raw_records=raw_records, absorbed=absorbed)


def parse_all(snapshots: Iterable[RawSnapshot], partition: str) -> Parsed:
    """One ``Parsed`` for many snapshots (a crawl), with text repeated across them absorbed once."""
    parsed = merge([parse(snapshot, partition) for snapshot in snapshots])
    if "documents" in parsed.frames:
        documents = parsed.frames["documents"]
        parsed.frames["documents"] = documents.unique("doc_id", keep="first", maintain_order=True)
        if repeats := documents.height - parsed.frames["documents"].height:
            parsed.absorbed["duplicate_content"] += repeats
    return parsed


def drop_known(parsed: Parsed, known_ids: Iterable[str] | pl.Series) -> Parsed:
    """``parsed`` without documents whose ``doc_id`` the lake already holds (absorbed as ``already_stored``)."""
    documents = parsed.frames.get("documents")
    if documents is None:
        return parsed
    known = known_ids if isinstance(known_ids, pl.Series) else pl.Series(list(known_ids), dtype=pl.String)
    fresh = documents.filter(~pl.col("doc_id").is_in(known.implode()))
    absorbed = parsed.absorbed + Counter({"already_stored": documents.height - fresh.height})
    frames = {**parsed.frames, "documents": fresh}
    return Parsed(frames, parsed.raw_records, absorbed, parsed.ignored_fields, parsed.resyncs)


def links(snapshot: RawSnapshot) -> list[Link]:
    """The pages an index snapshot points at: an HTML page's content links, or a listing's link-only
    entries (their ``url``, else ``meta["article_url"]`` with their ``code``) with their release time."""
    try:
        body = _unzipped(snapshot.body)
    except (OSError, EOFError):  # quarantined by ``parse``; it points nowhere
        return []
    fmt = snapshot.meta.get("format") or recognise(body[:HEAD_BYTES], snapshot.origin)
    if fmt == HTML:
        text = html.decode(body, snapshot.meta.get("content-type", ""))
        return [Link(url) for url in html.links(text, snapshot.origin)]
    if fmt != CMS_JSON:
        return []
    try:
        articles = feeds.listing_articles(body)
    except ValueError:  # the listing is quarantined by ``parse``; it points nowhere
        return []
    found = []
    for entry in articles:
        url = _article_link(snapshot, entry)
        if url is None:
            continue
        stated = feeds.stated_time(entry)
        try:
            hint = time_ns(stated[1], stated[0]) if stated else None
        except FieldError:  # the page's own time or its fetch time will do
            hint = None
        found.append(Link(url, hint))
    return found


class WebPages:
    """The ``web_page`` adapter as an object, for registries of adapters."""

    kind = KIND

    def recognise(self, head: bytes, name: str) -> str | None:
        return recognise(head, name)

    def parse(self, snapshot: RawSnapshot, partition: str) -> Parsed:
        return parse(snapshot, partition)


ADAPTER = WebPages()
