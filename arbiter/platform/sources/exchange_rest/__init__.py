"""Exchange REST responses → the data contract (quotes, trades, instruments) plus quarantine.

Native parsers, not ccxt: ccxt turns the venue's decimal strings into floats through its own
market model and drops fields the contract keeps (sequence ids, receive versus venue time);
reading the venue's JSON directly keeps every value exactly as sent and every reject visible.
One parser per (venue, endpoint); each record that fails is quarantined with its field named.
"""

from __future__ import annotations

import json

import polars as pl

from arbiter.platform.sources.exchange_rest import binance, coinbase, kraken
from arbiter.platform.sources.exchange_rest.records import Batch, RestResponse

PARSERS = {
    "binance": binance.PARSERS,
    "coinbase": coinbase.PARSERS,
    "kraken": kraken.PARSERS,
    "kraken_futures": kraken.FUTURES_PARSERS,
}


class UnknownEndpoint(ValueError):
    pass


class RejectedResponse(ValueError):
    """The whole response is unusable (malformed JSON, a venue error). ``quarantine`` holds its raw
    bytes with the reason, so the caller can keep them before failing the partition."""

    def __init__(self, message: str, quarantine: pl.DataFrame):
        super().__init__(message)
        self.quarantine = quarantine


def parse(response: RestResponse, partition: str = "") -> dict[str, pl.DataFrame]:
    """Contract frames (only the non-empty ones, ``quarantine`` included) from one response."""
    endpoints = PARSERS.get(response.venue)
    if endpoints is None or response.endpoint not in endpoints:
        known = ", ".join(f"{v}/{e}" for v, eps in PARSERS.items() for e in eps)
        raise UnknownEndpoint(f"no parser for {response.venue}/{response.endpoint} (known: {known})")
    source = f"{response.venue}_rest"
    batch = Batch(source=source, partition=partition)
    try:
        endpoints[response.endpoint](response, batch)
    except (json.JSONDecodeError, UnicodeDecodeError, kraken.VenueError, AttributeError, TypeError) as exc:
        rejected = Batch(source=source, partition=partition)
        reason = "venue_error" if isinstance(exc, kraken.VenueError) else "malformed_response"
        rejected.reject(response.endpoint, response.body, reason, None)
        raise RejectedResponse(
            f"source {source!r}, partition {partition!r}, endpoint {response.endpoint!r}: {reason}: {exc}",
            rejected.frames()["quarantine"],
        ) from exc
    return batch.frames()


__all__ = ["PARSERS", "RejectedResponse", "RestResponse", "UnknownEndpoint", "parse"]
