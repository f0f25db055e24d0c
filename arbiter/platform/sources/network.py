"""The network sources: venues' REST APIs polled for a list of symbols, and announcement pages
crawled. Each source collects raw snapshots now and parses stored snapshots later, so a window
can be re-normalised from what was received without asking the network again.

One ``Fetcher`` serves the whole process, so a venue's token bucket and circuit breaker hold
across every run and thread that polls it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from arbiter.platform.sources import exchange_rest, web_pages
from arbiter.platform.sources.base import Parsed, RawSnapshot, merge
from arbiter.platform.sources.exchange_rest.poller import ENDPOINTS, METADATA_ENDPOINTS, Poller, PollError, venue_limits
from arbiter.platform.sources.fetch import Fetcher
from arbiter.platform.sources.web.crawl import Crawler, Validators

REST_SOURCES = {"binance_rest": "binance", "coinbase_rest": "coinbase", "kraken_rest": "kraken"}
WEB_SOURCES = ("announcements_web",)
NETWORK_SOURCES = (*REST_SOURCES, *WEB_SOURCES)


class SourceNotConfigured(ValueError):
    pass


@dataclass(frozen=True)
class NetworkConfig:
    symbols: tuple[str, ...] = ("BTC-USDT", "ETH-USDT", "SOL-USDT")  # canonical; each venue's spelling is derived
    base_urls: Mapping[str, str] = field(default_factory=dict)  # venue -> base URL (default: the venue's own)
    announcement_urls: tuple[str, ...] = ()  # index pages or JSON listings to crawl


_fetcher: Fetcher | None = None
_lock = threading.Lock()


def shared_fetcher() -> Fetcher:
    global _fetcher
    with _lock:
        if _fetcher is None:
            _fetcher = Fetcher(limits=venue_limits())
        return _fetcher


def collect(source: str, cfg: NetworkConfig, previous: list[RawSnapshot] = ()) -> list[RawSnapshot]:
    """Fetch ``source`` now. ``previous`` snapshots supply validators for conditional GETs.

    Raises ``PollError`` (a venue down, naming it), ``SourceNotConfigured``, or ``ValueError`` for
    a source that is not a network source."""
    if source in REST_SOURCES:
        venue = REST_SOURCES[source]
        poller = Poller(fetcher=shared_fetcher(), base_urls=dict(cfg.base_urls))
        snapshots = poller.poll(venue, list(cfg.symbols))
        # The window's first good poll also fetches the venue's market metadata, so the window's
        # quotes and trades have their instruments beside them (once an hour, not every minute).
        metadata = METADATA_ENDPOINTS[venue]
        if any(s.meta.get("format") == ENDPOINTS[venue][metadata].format for s in previous):
            return snapshots
        try:
            return snapshots + poller.poll(venue, list(cfg.symbols), [metadata])
        except PollError as exc:
            raise PollError(str(exc), snapshots + exc.snapshots, exc.failures) from exc
    if source in WEB_SOURCES:
        if not cfg.announcement_urls:
            raise SourceNotConfigured(
                f"source {source!r}: no announcement pages to crawl (set ARBITER_ANNOUNCEMENT_URLS)"
            )
        validators = Validators()
        for snapshot in previous:
            validators.remember(snapshot.origin, snapshot.meta)
        result = Crawler(shared_fetcher(), source, validators=validators).crawl(cfg.announcement_urls)
        return result.snapshots
    raise ValueError(f"{source!r} is not a network source (known: {', '.join(NETWORK_SOURCES)})")


def parse(source: str, snapshots: list[RawSnapshot], partition: str) -> tuple[Parsed, list[str]]:
    """Every stored snapshot of a window parsed and merged, and the errors of snapshots that were
    unusable as a whole (each already in ``quarantine`` with its raw bytes): the caller stores
    everything, then fails the partition naming them."""
    if source in WEB_SOURCES:
        return web_pages.parse_all(snapshots, partition), []
    parsed, errors = [], []
    for snapshot in snapshots:
        try:
            parsed.append(exchange_rest.ADAPTER.parse(snapshot, partition))
        except exchange_rest.RejectedResponse as exc:
            parsed.append(Parsed(frames={"quarantine": exc.quarantine}, raw_records=1))
            errors.append(str(exc))
    return merge(parsed), errors
