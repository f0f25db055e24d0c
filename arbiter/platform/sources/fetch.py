"""Fetching over HTTP for every network adapter: timeouts, retries, rate limits, circuit breakers.

- Retries (tenacity) on 429, 5xx, timeouts, resets and truncated or malformed bodies, with
  exponential backoff and jitter; a ``Retry-After`` header sets the wait instead.
- A token bucket per venue, shared by every caller in the process, keeps requests within the
  venue's published limit; a venue's own weight header (Binance ``X-MBX-USED-WEIGHT-1M``) drains
  the bucket to what the venue says is left.
- A circuit breaker per venue: after ``failures_to_open`` failed fetches the venue is skipped
  (fails fast, naming it) for ``cooldown_s``; then one trial request decides whether it closes.
- A 200 that is not the expected content (an HTML error page from a proxy) is an error naming
  the content type, never parsed as data.
- Conditional GET: callers may send extra headers (``If-None-Match``, ``If-Modified-Since``); a
  304 Not Modified is a result (status 304, empty body), not an error.
"""

from __future__ import annotations

import email.utils
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import httpx
import tenacity

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class FetchError(RuntimeError):
    """A fetch failed for good; the message names the venue and the URL (without secrets).

    ``status`` is the HTTP status when the server answered with an error (404, 403, ...), else None.
    """

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class CircuitOpen(FetchError):
    pass


class UnexpectedContent(FetchError):
    pass


class MalformedBody(FetchError):
    """The body stayed truncated or malformed after a retry; ``body`` keeps the bytes for quarantine."""

    def __init__(self, message: str, body: bytes, url: str = ""):
        super().__init__(message)
        self.body, self.url = body, url


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass(frozen=True)
class VenueLimits:
    """A venue's published request budget and how patient we are with it."""

    requests_per_s: float = 10.0
    burst: int = 10
    timeout_s: float = 10.0
    attempts: int = 4  # first try included
    backoff_s: float = 0.5  # first backoff; doubles, with jitter, up to backoff_max_s
    backoff_max_s: float = 8.0
    failures_to_open: int = 3
    cooldown_s: float = 30.0
    weight_header: str | None = None  # header reporting the weight used in the venue's window
    weight_capacity: int | None = None


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; ``acquire`` blocks until one is free. Thread-safe."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self._tokens, self._at = float(burst), time.monotonic()
        self._lock = threading.Lock()

    def acquire(self, tokens: float = 1.0) -> float:
        """Take ``tokens``, sleeping as needed; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
                self._at = now
                if self._tokens >= tokens:
                    self._tokens -= tokens
                    return waited
                pause = (tokens - self._tokens) / self.rate
            time.sleep(pause)
            waited += pause

    def drain_to(self, remaining: float) -> None:
        """The venue says only ``remaining`` requests are left in its window: believe it."""
        with self._lock:
            self._tokens = min(self._tokens, max(0.0, remaining))


class CircuitBreaker:
    def __init__(self, failures_to_open: int, cooldown_s: float):
        self.failures_to_open, self.cooldown_s = failures_to_open, cooldown_s
        self.failures, self.opened_at = 0, None
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        with self._lock:
            return self.opened_at is not None and time.monotonic() - self.opened_at < self.cooldown_s

    def success(self) -> None:
        with self._lock:
            self.failures, self.opened_at = 0, None

    def failure(self) -> None:
        with self._lock:
            self.failures += 1
            if self.failures >= self.failures_to_open:
                self.opened_at = time.monotonic()


@dataclass(frozen=True)
class Fetched:
    """A response as received, with what the raw snapshot keeps about the fetch."""

    url: str  # without credentials or secret query parameters
    status: int
    headers: Mapping[str, str]  # the ones that matter: content type, dates, etags, limits
    body: bytes
    fetched_at: int  # UTC ns
    attempts: int


KEPT_HEADERS = ("content-type", "date", "etag", "last-modified", "retry-after", "x-mbx-used-weight-1m")
SECRET_PARAMS = frozenset({"signature", "apikey", "api_key", "key", "token", "secret", "passphrase"})


def redact(url: str) -> str:
    parts = urlsplit(url)
    query = "&".join(p for p in parts.query.split("&") if p and p.split("=")[0].lower() not in SECRET_PARAMS)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


@dataclass
class Fetcher:
    """One HTTP client for all venues; limits, buckets and breakers are per venue."""

    limits: Mapping[str, VenueLimits] = field(default_factory=dict)
    client: httpx.Client = field(default_factory=lambda: httpx.Client(follow_redirects=True))
    _buckets: dict[str, TokenBucket] = field(default_factory=dict)
    _breakers: dict[str, CircuitBreaker] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _limits(self, venue: str) -> VenueLimits:
        return self.limits.get(venue, VenueLimits())

    def _per_venue(self, store: dict, venue: str, make):
        with self._lock:
            if venue not in store:
                store[venue] = make(self._limits(venue))
            return store[venue]

    def bucket(self, venue: str) -> TokenBucket:
        return self._per_venue(self._buckets, venue, lambda lim: TokenBucket(lim.requests_per_s, lim.burst))

    def breaker(self, venue: str) -> CircuitBreaker:
        return self._per_venue(self._breakers, venue, lambda lim: CircuitBreaker(lim.failures_to_open, lim.cooldown_s))

    def get(
        self,
        venue: str,
        url: str,
        params: Mapping[str, str] | None = None,
        expect: str = "json",
        headers: Mapping[str, str] | None = None,
        weight: float = 1.0,
    ) -> Fetched:
        """GET ``url`` for ``venue``, retrying what is worth retrying; raises ``FetchError`` naming both.

        ``weight`` is what one attempt costs in the venue's budget (Binance prices each endpoint),
        taken from the venue's token bucket before every attempt, retries included.

        ``headers`` are sent as given (e.g. validators for a conditional GET); a 304 answer returns a
        ``Fetched`` with status 304 and an empty body."""
        lim, breaker = self._limits(venue), self.breaker(venue)
        shown = redact(str(httpx.URL(url, params=params or {})))
        if breaker.is_open:
            raise CircuitOpen(f"venue {venue!r}: circuit open after {breaker.failures} failed fetches: skipped {shown}")
        attempts = bad_bodies = 0

        def once() -> Fetched:
            nonlocal attempts, bad_bodies
            attempts += 1
            self.bucket(venue).acquire(weight)
            try:
                with self.client.stream("GET", url, params=params, headers=headers, timeout=lim.timeout_s) as response:
                    body, truncated = _read_body(response)
            except (httpx.TimeoutException, httpx.TransportError) as exc:  # no response at all
                raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
            self._observe_weight(venue, lim, response.headers)
            if response.status_code in RETRY_STATUSES:
                raise _Retryable(f"HTTP {response.status_code}", _retry_after(response.headers))
            kept = {k: response.headers[k] for k in KEPT_HEADERS if k in response.headers}
            if response.status_code == 304:  # the validators still match: nothing new to read
                return Fetched(shown, 304, kept, b"", time.time_ns(), attempts)
            if response.status_code >= 400:
                raise FetchError(f"venue {venue!r}: HTTP {response.status_code} from {shown}", response.status_code)
            content_type = response.headers.get("content-type", "")
            if expect == "json" and "html" in content_type:
                raise UnexpectedContent(f"venue {venue!r}: expected JSON from {shown}, got {content_type}")
            problem = "truncated body" if truncated else _json_problem(body) if expect == "json" else None
            if problem:  # a bad body is retried once, then kept for quarantine
                bad_bodies += 1
                if bad_bodies >= 2:
                    raise MalformedBody(f"venue {venue!r}: {problem} from {shown}, twice", body, shown)
                raise _Retryable(problem)
            return Fetched(shown, response.status_code, kept, body, time.time_ns(), attempts)

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(lim.attempts),
            wait=_wait(lim),
            retry=tenacity.retry_if_exception_type(_Retryable),
            reraise=True,
        )
        try:
            fetched = retrying(once)
        except _Retryable as exc:
            breaker.failure()
            raise FetchError(f"venue {venue!r}: {exc} from {shown} after {attempts} attempts") from exc
        except FetchError:
            breaker.failure()
            raise
        breaker.success()
        return fetched

    def _observe_weight(self, venue: str, lim: VenueLimits, headers: httpx.Headers) -> None:
        if lim.weight_header and lim.weight_capacity and lim.weight_header in headers:
            try:
                used = float(headers[lim.weight_header])
            except ValueError:
                return
            # Weight left in the venue's window, in our bucket's units (requests).
            self.bucket(venue).drain_to((lim.weight_capacity - used) * lim.burst / lim.weight_capacity)


def _read_body(response: httpx.Response) -> tuple[bytes, bool]:
    """The body and whether it ended early (shorter than its Content-Length, connection closed)."""
    chunks = []
    try:
        for chunk in response.iter_bytes():
            chunks.append(chunk)
    except httpx.RemoteProtocolError:
        return b"".join(chunks), True
    return b"".join(chunks), False


def _json_problem(body: bytes) -> str | None:
    try:
        json.loads(body)
    except ValueError as exc:
        return f"malformed JSON ({exc})"
    return None


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time()) if when else None


def _wait(lim: VenueLimits):
    backoff = tenacity.wait_exponential_jitter(multiplier=lim.backoff_s, max=lim.backoff_max_s)

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return exc.retry_after
        return backoff(state)

    return wait
