"""HTML → an article's title, text and stated publication time, and an index page's links.

selectolax (lexbor, a full HTML5 parser) does the parsing and entity decoding. We drop what is
not the article (scripts, styles, navigation, headers, footers, sidebars, forms), keep paragraph
breaks from block elements and line breaks from ``<br>``, and take the container holding the
most text (``article``, ``main``, ``role=main``) so sidebars and teasers do not leak in.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import urldefrag, urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

NOT_CONTENT = ["script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form", "iframe", "svg"]
BLOCK_TAGS = frozenset(
    {
        *("p", "div", "section", "article", "main", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "hr"),
        *("ul", "ol", "li", "dl", "dt", "dd", "table", "thead", "tbody", "tr", "td", "th"),
        *("figure", "figcaption", "address", "details", "summary"),
    }
)
# Where pages state when they were published, most specific first (Open Graph, schema.org, Dublin Core, ...).
PUBLISHED_META = (
    "article:published_time",
    "og:published_time",
    "datepublished",
    "pubdate",
    "publishdate",
    "publish-date",
    "parsely-pub-date",
    "dc.date.issued",
    "dc.date",
    "date",
)
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([\w-]+)""", re.IGNORECASE)


@dataclass(frozen=True)
class Article:
    """What an article page states. ``published`` is ``(where it was stated, the text)`` or None."""

    title: str | None
    body: str  # paragraphs separated by blank lines, not yet normalised
    published: tuple[str, str] | None


def decode(body: bytes, content_type: str = "") -> str:
    """Page bytes as text: the charset the server names, else the page's ``<meta charset>``, else UTF-8.

    Bytes invalid in that charset become U+FFFD rather than failing the page; the raw snapshot keeps
    the original bytes.
    """
    charset = None
    if "charset=" in content_type.lower():
        charset = content_type.lower().split("charset=")[-1].split(";")[0].strip(" \"'")
    elif found := _CHARSET.search(body[:2048]):
        charset = found.group(1).decode("ascii").lower()
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", errors="replace")


def _meta_published(tree: LexborHTMLParser) -> tuple[str, str] | None:
    stated = {}
    for meta in tree.css("meta[content]"):
        key = (meta.attributes.get("property") or meta.attributes.get("name") or "").lower()
        key = key or (meta.attributes.get("itemprop") or "").lower()
        if key in PUBLISHED_META and key not in stated:
            stated[key] = meta.attributes.get("content") or ""
    for key in PUBLISHED_META:
        if key in stated:
            return key, stated[key]
    for script in tree.css('script[type="application/ld+json"]'):
        try:
            found = _find_key(json.loads(script.text()), "datePublished")
        except ValueError:  # a broken JSON-LD block says nothing about the article
            continue
        if found is not None:
            return "datePublished", str(found)
    return None


def _find_key(value, key: str):
    if isinstance(value, dict):
        if key in value:
            return value[key]
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            if (found := _find_key(item, key)) is not None:
                return found
    return None


def _main(tree: LexborHTMLParser) -> LexborNode:
    candidates = tree.css('article, main, [role="main"], [itemprop="articleBody"]')
    if candidates:
        return max(candidates, key=lambda node: len(node.text(strip=True)))
    return tree.body or tree.root


def _text(node: LexborNode, out: list[str]) -> None:
    """Text of ``node`` in document order: a blank line around block elements, a newline for ``<br>``.

    Walks with an explicit stack: a page nested deeper than Python's recursion limit still parses.
    """
    stack = [(node.iter(include_text=True), "")]  # (children still to visit, what closes the element)
    while stack:
        children, closing = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            out.append(closing)
        elif child.tag == "-text":
            out.append(re.sub(r"\s+", " ", child.text(deep=False)))  # source layout is not a line break
        elif child.tag == "br":
            out.append("\n")
        elif not child.tag.startswith("-"):  # comments and doctype carry no text
            block = "\n\n" if child.tag in BLOCK_TAGS else ""
            out.append(block)
            stack.append((child.iter(include_text=True), block))


def _time_published(tree: LexborHTMLParser) -> tuple[str, str] | None:
    """A ``<time datetime>`` marked as the publication time, else the first in the article (often in
    its header, with the byline). A ``<time>`` elsewhere (a sidebar of other news) does not count."""
    time = tree.css_first('time[itemprop="datePublished"][datetime], time[pubdate][datetime]') or tree.css_first(
        "article time[datetime], main time[datetime]"
    )
    return ("time[datetime]", time.attributes.get("datetime") or "") if time is not None else None


def _title(tree: LexborHTMLParser) -> str | None:
    """The article's ``<h1>``, else Open Graph's title, else the document's ``<title>``."""
    heading = tree.css_first("article h1, main h1") or tree.css_first("h1")
    og_title = tree.css_first('meta[property="og:title"][content]')
    page_title = tree.css_first("title")
    candidates = (
        heading.text() if heading else None,
        og_title.attributes.get("content") if og_title else None,
        page_title.text() if page_title else None,
    )
    return next((text for text in candidates if text and text.strip()), None)


def article(html: str) -> Article:
    """The title, main text and stated publication time of an article page."""
    tree = LexborHTMLParser(html)
    # Before anything is dropped: JSON-LD lives in a script, the h1 and dateline often in a header.
    published = _meta_published(tree) or _time_published(tree)
    title = _title(tree)
    tree.strip_tags(NOT_CONTENT)
    main = _main(tree)
    parts: list[str] = []
    _text(main, parts)
    return Article(title=title, body="".join(parts), published=published)


def links(html: str, base_url: str) -> list[str]:
    """Absolute http(s) links of an index page's content (navigation, headers and footers dropped),
    without fragments, each once, in page order. ``<base href>`` is honoured."""
    tree = LexborHTMLParser(html)
    base = tree.css_first("base[href]")
    base_url = urljoin(base_url, base.attributes.get("href") or "") if base else base_url
    tree.strip_tags(NOT_CONTENT)
    seen: dict[str, None] = {}
    for anchor in (tree.body or tree.root).css("a[href]"):
        url = urldefrag(urljoin(base_url, (anchor.attributes.get("href") or "").strip())).url
        if urlsplit(url).scheme in ("http", "https"):
            seen.setdefault(url, None)
    return list(seen)
