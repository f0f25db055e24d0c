"""Exchange REST responses → the data contract (quotes, trades, bars, instruments) plus quarantine.

The adapter of kind ``exchange_rest`` on the protocol of ``sources.base``: ``recognise`` tells
which venue endpoint a saved body came from by its content, and ``parse`` turns one
``RawSnapshot`` into contract frames with the counts that reconcile them (rows + quarantined +
absorbed = the response's records; unknown fields counted in ``ignored_fields``).

Native parsers, not ccxt: ccxt turns the venue's decimal strings into floats through its own
market model and drops fields the contract keeps (sequence ids, receive versus venue time);
reading the venue's JSON directly keeps every value exactly as sent and every reject visible.
One parser per (venue, endpoint); each record that fails is quarantined with its field named.
"""

from __future__ import annotations

import gzip

import polars as pl

from arbiter.platform.sources.base import Parsed, RawSnapshot
from arbiter.platform.sources.exchange_rest import binance, coinbase, kraken
from arbiter.platform.sources.exchange_rest.recognise import HEAD_BYTES, recognise_body
from arbiter.platform.sources.exchange_rest.records import Batch, FieldError, RestResponse

KIND = "exchange_rest"
PARSERS = {
    "binance": binance.PARSERS,
    "coinbase": coinbase.PARSERS,
    "kraken": kraken.PARSERS,
    "kraken_futures": kraken.FUTURES_PARSERS,
}
SIGNATURES = {
    "binance": binance.SIGNATURES,
    "coinbase": coinbase.SIGNATURES,
    "kraken": kraken.SIGNATURES,
    "kraken_futures": kraken.FUTURES_SIGNATURES,
}
# The target named in quarantine when a whole response is rejected rather than one record.
WHOLE_RESPONSE = "snapshot"


class UnknownFormat(ValueError):
    """The snapshot is not a response of any endpoint this adapter reads."""


class RejectedResponse(ValueError):
    """The whole response is unusable (malformed JSON, a venue error, a missing envelope field).
    ``quarantine`` holds its raw bytes with the reason, so the caller can keep them before failing
    the partition."""

    def __init__(self, message: str, quarantine: pl.DataFrame):
        super().__init__(message)
        self.quarantine = quarantine


def recognise(head: bytes, name: str = "") -> str | None:
    """``"<venue>/<endpoint>"`` when ``head`` (the first bytes of a body) is an exchange REST
    response this adapter reads, else None. The content decides; ``name`` (a file name or URL)
    is not trusted, since saved responses are renamed freely."""
    return recognise_body(head, SIGNATURES)


def parse(snapshot: RawSnapshot, partition: str) -> Parsed:
    """Contract frames (only the non-empty ones, ``quarantine`` included) from one response.

    The format is ``snapshot.meta["format"]`` when the poller recorded it, else recognised from
    the body. The request's parameters (the symbol of a Binance trades or depth answer, a candle
    granularity) come from the origin URL's query or from ``meta``. Raises ``UnknownFormat`` for a
    body no parser reads and ``RejectedResponse`` for a response that is unusable as a whole;
    both messages name the source, the partition and the origin.
    """
    where = f"source {snapshot.source!r}, partition {partition!r}, origin {snapshot.origin!r}"
    fmt = snapshot.meta.get("format")

    def reject(reason: str, field: str | None, detail: str) -> RejectedResponse:
        """The whole snapshot, as received, quarantined once (not the records parsed before the failure)."""
        whole = Batch(source=snapshot.source, partition=partition)
        whole.reject(WHOLE_RESPONSE, snapshot.body, reason, field)
        return RejectedResponse(f"{where}, format {fmt!r}: {reason}: {detail}", whole.frames()["quarantine"])

    body = snapshot.body
    if body[:2] == b"\x1f\x8b":  # a response saved gzipped (``.json.gz``) is read as the venue sent it
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError) as exc:
            raise reject("malformed_response", None, f"gzip: {exc}") from exc
    fmt = fmt or recognise(body[:HEAD_BYTES], snapshot.origin)
    venue, _, endpoint = (fmt or "").partition("/")
    batch = Batch(source=snapshot.source, partition=partition)

    if endpoint == "error":
        raise reject("venue_error", None, body[:200].decode("utf-8", "replace"))
    parser = PARSERS.get(venue, {}).get(endpoint)
    if parser is None:
        known = ", ".join(f"{v}/{e}" for v, endpoints in PARSERS.items() for e in endpoints)
        raise UnknownFormat(
            f"{where}: not a response of a known exchange REST endpoint (format {fmt!r}; known: {known})"
        )
    response = RestResponse.of(venue, endpoint, body, snapshot.received_at, snapshot.origin, snapshot.meta)
    try:
        parser(response, batch)
    except kraken.VenueError as exc:
        raise reject("venue_error", None, str(exc)) from exc
    except FieldError as exc:
        raise reject(exc.reason, exc.field, str(exc)) from exc
    except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:  # JSON or shape unlike the venue's
        raise reject("malformed_response", None, f"{type(exc).__name__}: {exc}") from exc
    return Parsed(
        frames=batch.frames(), raw_records=batch.records, absorbed=batch.absorbed, ignored_fields=batch.ignored_fields
    )


class ExchangeRest:
    """The ``exchange_rest`` adapter as an object, for registries of adapters."""

    kind = KIND

    def recognise(self, head: bytes, name: str) -> str | None:
        return recognise(head, name)

    def parse(self, snapshot: RawSnapshot, partition: str) -> Parsed:
        return parse(snapshot, partition)


ADAPTER = ExchangeRest()

__all__ = [
    "ADAPTER",
    "KIND",
    "PARSERS",
    "ExchangeRest",
    "RejectedResponse",
    "RestResponse",
    "UnknownFormat",
    "parse",
    "recognise",
]
