"""Crawling announcement and news sites politely: robots.txt, conditional GET, one level of links.

- robots.txt is fetched once per host per crawler and read with Protego (RFC 9309: wildcards,
  ``$``, longest match wins, ``Crawl-delay``). A 4xx robots.txt allows everything; a 5xx or an
  unreachable one disallows the host for this crawler, as the RFC asks. A disallowed URL is
  never requested; its outcome says why.
- ``Validators`` remember each URL's ETag and Last-Modified; the next request sends
  ``If-None-Match``/``If-Modified-Since`` and a 304 yields no snapshot, with outcome
  ``not_modified``; an unchanged index points at nothing new, so its pages are not asked for
  again. The store is a plain dict the caller persists as JSON between crawls, and only once the
  crawl's snapshots are stored: a kept validator means "we hold this version".
- Index pages (HTML listings or CMS JSON listings) are fetched first; the same-host links they
  hold are then fetched as articles. Links are not followed further: the caller names the indexes.
- Every request goes through ``Fetcher`` under the crawler's ``source``, so retries, the rate
  limit and the circuit breaker apply per site.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urldefrag, urlsplit

from protego import Protego

from arbiter.platform.sources import web_pages
from arbiter.platform.sources.base import RawSnapshot
from arbiter.platform.sources.fetch import Fetcher, FetchError

NOT_MODIFIED = "not_modified"
FETCHED = "fetched"


@dataclass
class Validators:
    """ETag and Last-Modified per URL, as the server last sent them: ``{url: {"etag": .., "last-modified": ..}}``.

    Persist it after the snapshots it describes are in the lake, never before: otherwise a crash in
    between turns the next crawl's 304s into pages never stored.
    """

    by_url: dict[str, dict[str, str]] = field(default_factory=dict)

    def request_headers(self, url: str) -> dict[str, str]:
        known = self.by_url.get(url, {})
        headers = {}
        if "etag" in known:
            headers["If-None-Match"] = known["etag"]
        if "last-modified" in known:
            headers["If-Modified-Since"] = known["last-modified"]
        return headers

    def remember(self, url: str, headers: Mapping[str, str]) -> None:
        """Keep the validators a response carried (a 304 may refresh them, never erase them)."""
        fresh = {k: headers[k] for k in ("etag", "last-modified") if headers.get(k)}
        if fresh:
            self.by_url[url] = {**self.by_url.get(url, {}), **fresh}

    def to_json(self) -> str:
        return json.dumps(self.by_url, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Validators:
        return cls(json.loads(text) if text.strip() else {})


@dataclass(frozen=True)
class Robots:
    """One host's robots.txt rules, or why the host is off limits when it could not be read."""

    rules: Protego | None  # None: no usable robots.txt
    unreachable: str | None = None  # set: the whole host is disallowed, this says why

    def refusal(self, url: str, user_agent: str) -> str | None:
        if self.unreachable:
            return self.unreachable
        if self.rules is not None and not self.rules.can_fetch(url, user_agent):
            return "robots.txt disallows it"
        return None


@dataclass
class CrawlResult:
    """What a crawl fetched, and what happened to every URL it considered."""

    snapshots: list[RawSnapshot] = field(default_factory=list)  # 200s only: new or changed content
    outcomes: dict[str, str] = field(default_factory=dict)  # url -> fetched | not_modified | skipped: .. | failed: ..

    def with_outcome(self, prefix: str) -> list[str]:
        return [url for url, outcome in self.outcomes.items() if outcome.startswith(prefix)]

    @property
    def not_modified(self) -> list[str]:
        return self.with_outcome(NOT_MODIFIED)

    @property
    def skipped(self) -> dict[str, str]:
        return {url: self.outcomes[url] for url in self.with_outcome("skipped")}

    @property
    def failed(self) -> dict[str, str]:
        return {url: self.outcomes[url] for url in self.with_outcome("failed")}


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class Crawler:
    """Crawls index pages and the articles they link to, for one ``source`` (also the rate-limit key)."""

    fetcher: Fetcher
    source: str
    validators: Validators = field(default_factory=Validators)
    user_agent: str = "arbiter"
    article_url: str | None = None  # CMS listings: URL template of an article, e.g. ".../announcement/{code}"
    max_pages: int = 500  # per crawl, indexes included: a runaway index cannot fetch the whole site
    max_crawl_delay_s: float = 10.0  # a robots.txt Crawl-delay is honoured up to this
    _robots: dict[str, Robots] = field(default_factory=dict, init=False, repr=False)
    _last_request: dict[str, float] = field(default_factory=dict, init=False, repr=False)

    def crawl(self, index_urls: Iterable[str], page_urls: Iterable[str] = ()) -> CrawlResult:
        """Fetch each index, then every same-host page they link to and every page in ``page_urls``.

        Never raises for one bad URL: a failed fetch is an outcome (``failed: ...``) and the crawl goes on.
        """
        result = CrawlResult()
        queue: dict[str, int | None] = {}  # article url -> publication time its index stated
        for index in index_urls:
            snapshot = self._visit(urldefrag(index).url, "index", None, result)
            if snapshot is None:
                continue
            for link in web_pages.links(snapshot):
                if _host(link.url) != _host(snapshot.origin):
                    result.outcomes.setdefault(link.url, "skipped: another host")
                else:
                    queue.setdefault(link.url, link.published_hint)
        for url in page_urls:
            queue.setdefault(urldefrag(url).url, None)
        for url, hint in queue.items():
            if url not in result.outcomes:
                self._visit(url, "article", hint, result)
        return result

    def refusal(self, url: str) -> str | None:
        """Why robots.txt forbids ``url`` for our user agent, or None when it may be fetched."""
        host = _host(url)
        if host not in self._robots:
            self._robots[host] = self._read_robots(host)
        return self._robots[host].refusal(url, self.user_agent)

    def _read_robots(self, host: str) -> Robots:
        try:
            fetched = self.fetcher.get(
                self.source, f"{host}/robots.txt", expect="text", headers={"User-Agent": self.user_agent}
            )
        except FetchError as exc:
            if exc.status is not None and 400 <= exc.status < 500:
                return Robots(None)  # no robots.txt: everything is allowed
            return Robots(None, unreachable=f"robots.txt unreachable, host disallowed ({exc})")
        return Robots(Protego.parse(fetched.body.decode("utf-8", errors="replace")))

    def _wait_crawl_delay(self, host: str) -> None:
        rules = self._robots[host].rules
        delay = rules.crawl_delay(self.user_agent) if rules is not None else None
        if delay:
            since = time.monotonic() - self._last_request.get(host, float("-inf"))
            time.sleep(max(0.0, min(float(delay), self.max_crawl_delay_s) - since))
        self._last_request[host] = time.monotonic()

    def _visit(self, url: str, role: str, hint: int | None, result: CrawlResult) -> RawSnapshot | None:
        if sum(1 for o in result.outcomes.values() if o in (FETCHED, NOT_MODIFIED)) >= self.max_pages:
            result.outcomes[url] = f"skipped: max_pages ({self.max_pages}) reached"
            return None
        if why := self.refusal(url):
            result.outcomes[url] = f"skipped: {why}"
            return None
        self._wait_crawl_delay(_host(url))
        headers = {"User-Agent": self.user_agent, **self.validators.request_headers(url)}
        try:
            fetched = self.fetcher.get(self.source, url, expect="any", headers=headers)
        except FetchError as exc:
            result.outcomes[url] = f"failed: {exc}"
            return None
        self.validators.remember(url, fetched.headers)
        if fetched.status == 304:
            result.outcomes[url] = NOT_MODIFIED
            return None
        meta = {"status": str(fetched.status), "role": role, **fetched.headers}
        if hint is not None:
            meta["published_hint"] = str(hint)
        if self.article_url:
            meta["article_url"] = self.article_url
        snapshot = RawSnapshot(self.source, fetched.url, fetched.body, fetched.fetched_at, meta)
        result.outcomes[url] = FETCHED
        result.snapshots.append(snapshot)
        return snapshot
