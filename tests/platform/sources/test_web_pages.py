"""Web pages and announcement feeds against a real HTTP server on loopback, serving a site built
from the real Binance announcements in tests/data/announcements: an HTML index linking to article
pages, a CMS JSON listing, robots.txt disallowing a path, validators for conditional GET."""

from __future__ import annotations

import gzip
import hashlib
import html as htmllib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import polars as pl
import pytest

from arbiter.platform.enrich.evaluate import LABELLED_DIR
from arbiter.platform.schema import DOCUMENTS, QUARANTINE, conform
from arbiter.platform.sources import web_pages
from arbiter.platform.sources.base import RawSnapshot
from arbiter.platform.sources.exchange_rest.loopback import FaultServer
from arbiter.platform.sources.fetch import Fetcher, VenueLimits
from arbiter.platform.sources.web.crawl import Crawler, Validators
from arbiter.platform.sources.web.text import content_id, normalise_text, time_ns

SAMPLE = LABELLED_DIR / "binance_dev.jsonl"
ANNOUNCEMENTS = [json.loads(line) for line in SAMPLE.read_text().splitlines()]
HTML_COUNT = 25  # announcements 0..24 are HTML pages on the index; the rest come through the JSON listing
LINKED = range(25, 33)  # listing entries without a body: the crawler fetches their pages
ROBOTS = "User-agent: *\nDisallow: /private/\nDisallow: /*?preview=\n"
FAST = VenueLimits(requests_per_s=1000, burst=1000, timeout_s=2.0, attempts=2, backoff_s=0.01, backoff_max_s=0.02)
PARTITION = "2026-01-01"


def scraped_ns(record: dict) -> int:
    return time_ns(record["scraped_at"], "scraped_at")


def slug(i: int) -> str:
    return f"a{i:02d}"


def paragraphs_html(body: str) -> str:
    """The Markdown body's paragraphs as ``<p>`` (its first, the ``# title`` heading, is the page's ``<h1>``)."""
    return "\n".join(f"<p>{htmllib.escape(p).replace(chr(10), '<br>')}</p>" for p in body.split("\n\n")[1:])


def article_page(record: dict, *, dated: str = "meta", extra_chrome: bool = False) -> bytes:
    paragraphs = paragraphs_html(record["body"])
    stated = record["file_commit_date"]
    stamp = f'<meta property="article:published_time" content="{stated}">' if dated == "meta" else ""
    time_tag = f'<time datetime="{stated}">{stated[:10]}</time>' if dated == "time" else ""
    chrome = (
        '<aside><p>Trending: Bitcoin hits a new high</p></aside><script>track("x")</script>' if extra_chrome else ""
    )
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{htmllib.escape(record["title"])} | Example Exchange</title>{stamp}
<style>p {{ color: red }}</style><script>var tracking = "<p>not text</p>";</script></head>
<body><header><a href="/">Example Exchange</a></header>
<nav><a href="/about">About</a> <a href="/careers">Careers</a></nav>
<main><article><header><h1>{htmllib.escape(record["title"])}</h1>{time_tag}</header>
{paragraphs}
</article>{chrome}</main>
<footer><p>© Example Exchange</p><a href="/legal">Legal</a></footer></body></html>""".encode()


class Site:
    """A real HTTP server on loopback with ETag / Last-Modified validators, recording every request."""

    def __init__(self):
        self.pages: dict[str, tuple[bytes, str, dict[str, str]]] = {}
        self.links: list[str] = []  # the index page's links
        self.requests: list[tuple[str, dict[str, str], int]] = []  # path, headers, status sent
        self.lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                page = site.pages.get(self.path)
                status = 200 if page else 404
                if page and site.unchanged(page[2], self.headers):
                    status = 304
                with site.lock:
                    site.requests.append((self.path, dict(self.headers), status))
                self.send_response(status)
                if page:
                    for k, v in page[2].items():
                        self.send_header(k, v)
                body = page[0] if status == 200 else b""
                self.send_header("Content-Type", page[1] if page else "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def serve(self, path: str, body: bytes, content_type: str = "text/html; charset=utf-8", by: str = "etag"):
        """Serve ``body`` at ``path`` with an ETag (its hash) or only a Last-Modified date."""
        validators = (
            {"ETag": f'"{hashlib.sha256(body).hexdigest()[:16]}"'}
            if by == "etag"
            else {"Last-Modified": "Wed, 21 Oct 2025 07:28:00 GMT"}
        )
        self.pages[path] = (body, content_type, validators)

    @staticmethod
    def unchanged(validators: dict[str, str], headers) -> bool:
        """The client's validators still match: ETag when the page has one, else Last-Modified."""
        if "ETag" in validators:
            return headers.get("If-None-Match") == validators["ETag"]
        return headers.get("If-Modified-Since") == validators["Last-Modified"]

    def paths(self) -> list[str]:
        return [path for path, _, _ in self.requests]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def index_page(links: list[str]) -> bytes:
    items = "\n".join(f'<li><a href="{href}">{htmllib.escape(href)}</a></li>' for href in links)
    return f"""<!doctype html><html><head><title>Latest announcements</title></head><body>
<nav><a href="/about">About</a></nav><main><h1>Latest announcements</h1><ul>{items}</ul></main>
<footer><a href="/legal">Legal</a></footer></body></html>""".encode()


def listing() -> bytes:
    articles = []
    for i in range(HTML_COUNT, len(ANNOUNCEMENTS)):
        record = ANNOUNCEMENTS[i]
        entry = {"id": 1000 + i, "code": slug(i), "title": record["title"], "type": 1}
        entry["releaseDate"] = scraped_ns(record) // 1_000_000
        if i not in LINKED:
            entry["body"] = record["body"]
        articles.append(entry)
    catalogs = [
        {"catalogId": 48, "catalogName": "New Cryptocurrency Listing", "articles": articles[:8]},
        {"catalogId": 161, "catalogName": "Delisting", "articles": articles[8:]},
    ]
    return json.dumps({"code": "000000", "data": {"catalogs": catalogs}, "success": True}).encode()


def build_site(site: Site) -> list[str]:
    """Serve the sample as a site; returns the index page's links."""
    site.serve("/robots.txt", ROBOTS.encode(), "text/plain")
    links = []
    for i in range(HTML_COUNT):
        path = f"/support/announcement/{slug(i)}.html"
        dated = ("meta", "time")[i % 2]
        site.serve(path, article_page(ANNOUNCEMENTS[i], dated=dated), by=("etag", "last-modified")[i % 2])
        links.append(path if i % 3 else f"{site.url}{path}#top")  # relative and absolute, with a fragment
    for i in LINKED:
        site.serve(f"/cms/article/{slug(i)}", article_page(ANNOUNCEMENTS[i], dated="none"))
    # The same article again under another URL and other chrome; a disallowed path; a draft that
    # robots.txt rules out with a wildcard; another host; a page without text; a repeated link.
    site.serve("/news/binance-coin-m-maintenance", article_page(ANNOUNCEMENTS[0], extra_chrome=True))
    site.serve("/private/secret.html", article_page(ANNOUNCEMENTS[1]))
    site.serve("/support/announcement/a03.html?preview=1", article_page(ANNOUNCEMENTS[3]))
    empty = ANNOUNCEMENTS[0] | {"title": "Notice", "body": "# Notice\n\n"}
    site.serve("/support/announcement/empty.html", article_page(empty))
    links += [
        "/news/binance-coin-m-maintenance",
        "/private/secret.html",
        "/support/announcement/a03.html?preview=1",
        "https://other.example/elsewhere.html",
        "/support/announcement/empty.html",
        links[1],
    ]
    site.serve("/support/announcement/", index_page(links))
    site.serve("/bapi/cms/list.json", listing(), "application/json")
    return links


def crawler(validators: Validators | None = None) -> Crawler:
    return Crawler(
        fetcher=Fetcher(limits={"binance": FAST}),
        source="binance",
        validators=validators or Validators(),
        article_url="/cms/article/{code}",
    )


@pytest.fixture
def site():
    with Site() as s:
        s.links = build_site(s)
        yield s


def indexes(site: Site) -> list[str]:
    return [f"{site.url}/support/announcement/", f"{site.url}/bapi/cms/list.json"]


def test_a_crawl_turns_every_labelled_announcement_into_one_document(site):
    result = crawler().crawl(indexes(site))
    parsed = web_pages.parse_all(result.snapshots, PARTITION)
    documents = conform(parsed.frames["documents"], DOCUMENTS, name="documents", partition=PARTITION)

    assert sorted(documents["title"]) == sorted(r["title"] for r in ANNOUNCEMENTS)  # exact titles
    assert documents["doc_id"].n_unique() == documents.height == len(ANNOUNCEMENTS)
    assert parsed.unaccounted() == 0
    assert parsed.absorbed == {"index_page": 1, "link_only": len(LINKED), "duplicate_content": 1}
    # Stated times: article:published_time (+08:00), <time datetime>, the listing's releaseDate (ms).
    by_title = {row["title"]: row for row in documents.with_columns(pl.col("ts").cast(pl.Int64)).iter_rows(named=True)}
    for i, record in enumerate(ANNOUNCEMENTS):
        stated = record["file_commit_date"] if i < HTML_COUNT else record["scraped_at"]
        assert by_title[record["title"]]["ts"] == time_ns(stated, "stated"), record["title"]
    # Same text as the feed line: script, style, navigation, header, footer and sidebar left out.
    feed = web_pages.parse(RawSnapshot("binance", str(SAMPLE), SAMPLE.read_bytes(), 0), PARTITION)
    assert set(feed.frames["documents"]["doc_id"]) == set(documents["doc_id"])
    assert not documents.filter(
        pl.col("body").str.contains("Trending: Bitcoin|tracking|Careers|© Example|color: red")
    ).height
    first = by_title[ANNOUNCEMENTS[0]["title"]]
    assert first["url"] == f"{site.url}/support/announcement/a00.html"  # the first URL it was seen at


def test_the_empty_page_is_quarantined_with_its_bytes(site):
    result = crawler().crawl(indexes(site))
    parsed = web_pages.parse_all(result.snapshots, PARTITION)
    quarantine = conform(parsed.frames["quarantine"], QUARANTINE, name="quarantine", partition=PARTITION)
    assert quarantine.select("target", "source", "reason", "field").rows() == [
        ("documents", "binance", "no_body_text", "body")
    ]
    assert quarantine["raw"][0] == site.pages["/support/announcement/empty.html"][0]


def test_robots_txt_is_read_once_and_disallowed_pages_are_never_requested(site):
    result = crawler().crawl(indexes(site))
    paths = site.paths()
    assert paths.count("/robots.txt") == 1
    assert "/private/secret.html" not in paths
    assert not [p for p in paths if "preview" in p]
    assert result.skipped == {
        f"{site.url}/private/secret.html": "skipped: robots.txt disallows it",
        f"{site.url}/support/announcement/a03.html?preview=1": "skipped: robots.txt disallows it",
        "https://other.example/elsewhere.html": "skipped: another host",
    }
    # Navigation and footer links are not content; a repeated link is fetched once.
    assert not {"/about", "/careers", "/legal", "/"} & set(paths)
    assert len(paths) == len(set(paths))


def test_the_second_crawl_asks_conditionally_and_gets_304s(site):
    first = crawler()
    fetched_before = first.crawl(indexes(site)).with_outcome("fetched")
    stored = first.validators.to_json()  # what a caller persists between runs

    # One new announcement appears on the index; nothing else changes.
    new = ANNOUNCEMENTS[5] | {"title": "Wallet Maintenance for Solana (SOL) - 2026-05-01", "body": "# x\n\nSOL."}
    site.serve("/support/announcement/new.html", article_page(new))
    site.serve("/support/announcement/", index_page([*site.links, "/support/announcement/new.html"]))
    site.requests.clear()

    second = crawler(Validators.from_json(stored)).crawl(indexes(site))
    statuses = {path: status for path, _, status in site.requests}
    assert statuses["/support/announcement/"] == 200 and statuses["/support/announcement/new.html"] == 200
    assert statuses["/bapi/cms/list.json"] == 304
    articles = [f"/support/announcement/{slug(i)}.html" for i in range(HTML_COUNT)]
    assert all(statuses[path] == 304 for path in articles)
    # The listing is unchanged, so the pages it points at are not asked for again.
    assert not [path for path in statuses if path.startswith("/cms/")]
    for path, headers, _ in site.requests:
        if path in articles:  # half the pages carry an ETag, half only a Last-Modified date
            validators = site.pages[path][2]
            if "ETag" in validators:
                assert headers["If-None-Match"] == validators["ETag"]
            else:
                assert headers["If-Modified-Since"] == validators["Last-Modified"]
            assert headers["User-Agent"] == "arbiter"
    assert [s.origin for s in second.snapshots] == [
        f"{site.url}/support/announcement/",
        f"{site.url}/support/announcement/new.html",
    ]
    unchanged = (
        set(fetched_before)
        - {f"{site.url}/support/announcement/"}
        - {f"{site.url}/cms/article/{slug(i)}" for i in LINKED}
    )
    assert set(second.not_modified) == unchanged
    parsed = web_pages.parse_all(second.snapshots, PARTITION)
    assert parsed.frames["documents"]["title"].to_list() == [new["title"]]


def test_a_robots_txt_crawl_delay_is_honoured(site):
    site.serve("/robots.txt", b"User-agent: *\nCrawl-delay: 0.2\n", "text/plain")
    site.serve("/one", article_page(ANNOUNCEMENTS[0]))
    site.serve("/two", article_page(ANNOUNCEMENTS[1]))
    times = []
    original = site.server.RequestHandlerClass.do_GET

    def timed(handler):
        times.append(time.monotonic())
        original(handler)

    site.server.RequestHandlerClass.do_GET = timed
    crawler().crawl([], [f"{site.url}/one", f"{site.url}/two"])
    assert len(times) == 3 and times[2] - times[1] >= 0.19  # robots.txt, then two pages 0.2 s apart


def test_no_robots_txt_allows_everything_and_an_unreachable_one_disallows_the_host():
    with FaultServer() as server:
        page = server.script("/page", ("ok", article_page(ANNOUNCEMENTS[0]), "text/html"))
        server.script("/robots.txt", ("status", 404))
        result = crawler().crawl([], [page])
        assert result.outcomes == {page: "fetched"} and server.count("/page") == 1
    with FaultServer() as server:
        page = server.script("/page", ("ok", article_page(ANNOUNCEMENTS[0]), "text/html"))
        server.script("/robots.txt", ("status", 503))
        result = crawler().crawl([], [page])
        assert result.outcomes[page].startswith("skipped: robots.txt unreachable, host disallowed")
        assert server.count("/page") == 0 and server.count("/robots.txt") == FAST.attempts


def test_a_failed_page_is_an_outcome_and_the_crawl_goes_on():
    with FaultServer() as server:
        good = server.script("/good", ("ok", article_page(ANNOUNCEMENTS[0]), "text/html"))
        missing = server.url + "/missing"
        index = server.script("/index", ("ok", index_page(["/missing", "/good"]), "text/html"))
        result = crawler().crawl([index])
        assert result.failed[missing].startswith("failed: venue 'binance': HTTP 404")
        assert result.outcomes[good] == "fetched" and len(result.snapshots) == 2


def snapshot(body: bytes, name: str = "feed.jsonl", **meta: str) -> RawSnapshot:
    return RawSnapshot("binance", name, body, received_at=1_767_225_600_000_000_000, meta=meta)


def test_the_sample_feed_keeps_exact_titles_stated_times_and_content_ids():
    parsed = web_pages.parse(snapshot(SAMPLE.read_bytes()), PARTITION)
    documents = parsed.frames["documents"].with_columns(pl.col("ts").cast(pl.Int64))
    assert documents["title"].to_list() == [r["title"] for r in ANNOUNCEMENTS]
    assert documents["ts"].to_list() == [scraped_ns(r) for r in ANNOUNCEMENTS]
    for row in documents.iter_rows(named=True):
        assert row["doc_id"] == content_id(row["title"], row["body"])
        assert not row["body"].startswith("#") and row["body"] == normalise_text(row["body"])
    assert parsed.unaccounted() == 0 and "quarantine" not in parsed.frames


def test_bad_feed_lines_are_quarantined_with_the_field_and_repeats_absorbed():
    lines = SAMPLE.read_bytes().splitlines()
    first = json.loads(lines[0])
    bad = [
        b'{"title": "cut off", "body": "Deposits',
        json.dumps({"title": "No body", "scraped_at": "20260101000000"}).encode(),
        json.dumps({"title": "Blank", "body": "# Blank\n\n  \n"}).encode(),
        json.dumps(first | {"body": "Other text", "scraped_at": "2026-13-45"}).encode(),
        json.dumps(first | {"body": "Other text again", "releaseDate": "soon"}).encode(),
        b"[1, 2]",
    ]
    body = b"\n".join([*lines[:3], lines[0], *bad, b""])
    parsed = web_pages.parse(snapshot(body), PARTITION)
    quarantine = parsed.frames["quarantine"]
    assert quarantine.select("reason", "field").rows() == [
        ("malformed_json", None),
        ("missing_field", "body"),
        ("no_body_text", "body"),
        ("unparseable", "scraped_at"),
        ("unparseable", "releaseDate"),
        ("not_an_object", "record"),
    ]
    assert quarantine["raw"].to_list() == bad
    assert parsed.frames["documents"].height == 3 and parsed.absorbed == {"duplicate_content": 1}
    assert parsed.raw_records == 10 and parsed.unaccounted() == 0


def test_a_cms_listing_with_bodies_links_and_bad_entries():
    articles = [
        {"code": "abc", "title": "Binance Will List Foo (FOO)", "releaseDate": 1767225600000, "body": "Foo lists."},
        {"code": "def", "title": "Binance Will Delist BAR", "releaseDate": 1767229200000},
        {"title": "No way to its text", "releaseDate": 1767229200000},
        {"code": "ghi", "title": "Bad date", "releaseDate": "yesterday", "body": "Text."},
    ]
    body = json.dumps({"data": {"articles": articles}}).encode()
    snap = snapshot(body, "https://www.example.com/bapi/list", article_url="/en/support/announcement/{code}")
    assert web_pages.recognise(body, "list") == web_pages.CMS_JSON
    parsed = web_pages.parse(snap, PARTITION)
    documents = parsed.frames["documents"].with_columns(pl.col("ts").cast(pl.Int64))
    assert documents.select("title", "ts", "url").rows() == [
        (
            "Binance Will List Foo (FOO)",
            1767225600000 * 1_000_000,
            "https://www.example.com/en/support/announcement/abc",
        )
    ]
    assert parsed.frames["quarantine"].select("reason", "field").rows() == [
        ("missing_field", "body"),
        ("unparseable", "releaseDate"),
    ]
    assert parsed.absorbed == {"link_only": 1} and parsed.unaccounted() == 0
    assert web_pages.links(snap) == [
        web_pages.Link("https://www.example.com/en/support/announcement/def", 1767229200000 * 1_000_000)
    ]
    for broken, reason, field in ((b'{"data": {"catalogs": [', "malformed_json", None), (b'{"data": 3}', None, None)):
        if reason is None:  # JSON that is not a listing is not recognised as one
            assert web_pages.recognise(broken, "x.json") is None
            continue
        got = web_pages.parse(snapshot(broken, "x.json"), PARTITION)
        assert got.frames["quarantine"].select("reason", "field", "raw").rows() == [(reason, field, broken)]
    shape = b'{"data": {"catalogs": {"articles": []}}}'
    got = web_pages.parse(snapshot(shape, "x.json"), PARTITION).frames["quarantine"]
    assert got.select("reason", "field").rows() == [("malformed_listing", "data.catalogs")]


ARTICLE = b"""<!DOCTYPE html><html><head><meta charset="utf-8">
<title>Ignored | Site</title><meta property="og:title" content="OG title">
<script type="application/ld+json">
{"@graph": [{"@type": "NewsArticle", "datePublished": "2026-02-03T10:27:21Z"}]}</script>
</head><body><nav>Home &middot; News</nav><article>
<p>Deposits &amp; withdrawals on <b>Solana</b>&nbsp;(SOL)
   will be suspended.</p><p>Line one<br>line two</p><!-- a comment -->
<ul><li>First</li><li>Second</li></ul></article>
<aside><time datetime="2020-01-01">old news</time></aside></body></html>"""


def test_html_article_text_title_and_time():
    parsed = web_pages.parse(snapshot(ARTICLE, "https://x.example/a"), PARTITION)
    row = parsed.frames["documents"].with_columns(pl.col("ts").cast(pl.Int64)).row(0, named=True)
    assert row["title"] == "OG title"  # no <h1>: Open Graph's title, not the <title> with its site suffix
    assert (
        row["body"]
        == "Deposits & withdrawals on Solana (SOL) will be suspended.\n\nLine one\nline two\n\nFirst\n\nSecond"
    )
    assert row["ts"] == time_ns("2026-02-03T10:27:21Z", "t") and row["url"] == "https://x.example/a"
    deep = b"<html><body><article>" + b"<div>" * 3000 + b"<p>deep</p>" + b"</div>" * 3000 + b"</article></body></html>"
    assert web_pages.parse(snapshot(deep, "https://x.example/deep"), PARTITION).frames["documents"]["body"][0] == "deep"


def test_an_html_page_with_an_unparseable_date_is_quarantined_whole():
    page = ARTICLE.replace(b'<meta property="og:title"', b'<meta property="article:published_time" content="soon"><x')
    parsed = web_pages.parse(snapshot(page, "https://x.example/a"), PARTITION)
    assert parsed.frames["quarantine"].select("reason", "field", "raw").rows() == [
        ("unparseable", "article:published_time", page)
    ]
    undated = ARTICLE.replace(b"datePublished", b"dateCreated")
    parsed = web_pages.parse(snapshot(undated, "https://x.example/a"), PARTITION)
    fetched_at = parsed.frames["documents"]["ts"].cast(pl.Int64).item()
    assert fetched_at == 1_767_225_600_000_000_000  # a sidebar's <time> is not the article's


def test_recognise_by_content():
    rest = (Path(__file__).parents[2] / "data" / "rest" / "binance_spot").glob("*")
    assert all(web_pages.recognise(p.read_bytes()[:4096], p.name) is None for p in rest if p.is_file())
    assert web_pages.recognise(SAMPLE.read_bytes()[:4096], "binance_dev.jsonl") == web_pages.JSONL
    assert web_pages.recognise(SAMPLE.read_bytes()[:600], "partial") == web_pages.JSONL  # head ends mid-line
    assert web_pages.recognise(b"\xef\xbb\xbf  <!DOCTYPE html><html>", "a") == web_pages.HTML
    assert web_pages.recognise(b"<div>fragment</div>", "page.html") == web_pages.HTML
    assert web_pages.recognise(b"hello", "notes.txt") is None
    assert web_pages.recognise(b'{"a": 1}\n{"a": 2}\n', "x.jsonl") is None
    unknown = web_pages.parse(snapshot(b"%PDF-1.7", "x.pdf"), PARTITION)
    assert unknown.frames["quarantine"].select("reason").item() == "unrecognised_format"
    assert unknown.unaccounted() == 0


def test_drop_known_absorbs_documents_the_lake_already_holds():
    parsed = web_pages.parse(snapshot(SAMPLE.read_bytes()), PARTITION)
    known = parsed.frames["documents"]["doc_id"].head(10)
    fresh = web_pages.drop_known(parsed, known)
    assert fresh.frames["documents"].height == len(ANNOUNCEMENTS) - 10
    assert fresh.absorbed == {"already_stored": 10} and fresh.unaccounted() == 0
    assert web_pages.drop_known(parsed, []).frames["documents"].height == len(ANNOUNCEMENTS)


def test_validators_round_trip_as_json():
    store = Validators()
    store.remember("https://x/a", {"etag": '"v1"', "content-type": "text/html"})
    store.remember("https://x/a", {"last-modified": "Wed, 21 Oct 2025 07:28:00 GMT"})
    again = Validators.from_json(store.to_json())
    assert again.request_headers("https://x/a") == {
        "If-None-Match": '"v1"',
        "If-Modified-Since": "Wed, 21 Oct 2025 07:28:00 GMT",
    }
    assert again.request_headers("https://x/b") == {}


def test_a_gzipped_feed_is_read_and_the_venue_option_names_the_source():
    body = gzip.compress(SAMPLE.read_bytes())
    parsed = web_pages.ADAPTER.parse(snapshot(body, "feed.jsonl.gz", venue="binance_announcements"), PARTITION)
    assert web_pages.ADAPTER.kind == "web_page"
    assert parsed.frames["documents"].height == len(ANNOUNCEMENTS)
    assert set(parsed.frames["documents"]["source"]) == {"binance_announcements"}
    broken = web_pages.parse(snapshot(body[:100], "feed.jsonl.gz"), PARTITION)
    assert broken.frames["quarantine"].select("reason", "raw").rows() == [("malformed_gzip", body[:100])]
    assert broken.unaccounted() == 0
