"""Websocket stream captures → ``quotes``, ``trades`` and ``bars`` (plus ``quarantine``), with order
books rebuilt by each venue's own rules.

Public entry points:

- ``recognise(head, name)``: which capture format the first bytes are (gzip is looked inside);
- ``parse(snapshot, partition)``: one capture file → ``Parsed``. Binance captures in the
  ``ns_lines`` format take the vectorised path (``binance_bulk``); everything else is replayed
  message by message through the venue handler;
- ``parse_many(snapshots, partition)``: captures of one session together (cryptofeed's ``.http.``
  REST snapshots feed the books of the ``.ws.`` connection beside them);
- ``ADAPTER``: the ``Adapter`` (kind ``stream_capture``) exposing ``recognise`` and ``parse``;
- ``new_handler(venue, market, source=...)``: the per-connection handler a live client drives with
  ``on_message(recv_ns, raw)`` / ``on_snapshot(recv_ns, symbol, raw)`` (see ``handler.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

from arbiter.platform.sources.base import Parsed, RawSnapshot
from arbiter.platform.sources.stream.binance import BinanceHandler
from arbiter.platform.sources.stream.captures import NS_LINES, CaptureFormatError, gunzip
from arbiter.platform.sources.stream.captures import recognise as recognise_format
from arbiter.platform.sources.stream.coinbase import CoinbaseHandler
from arbiter.platform.sources.stream.handler import StreamHandler
from arbiter.platform.sources.stream.kraken import KrakenHandler
from arbiter.platform.sources.stream.replay import (
    HEAD_BYTES,
    capture_format,
    identify,
    new_handler,
    replay_together,
)
from arbiter.platform.sources.stream.replay import replay as replay_capture

KIND = "stream_capture"
BULK_VENUES = ("binance", "binance_us")


def recognise(head: bytes, name: str = "") -> str | None:
    """``ns_lines`` or ``cryptofeed`` when ``head`` (the file's first bytes) is a capture, else None."""
    return recognise_format(head, name)


def parse(snapshot: RawSnapshot, partition: str) -> Parsed:
    """One capture file as contract frames plus quarantine, every record accounted for.

    Raises ``CaptureFormatError`` (naming source, partition and field) when the bytes are not a
    capture or its venue cannot be told; bad lines and messages inside a capture are quarantined.
    """
    data = gunzip(snapshot.body)
    fmt = capture_format(snapshot, partition, data)
    if fmt == NS_LINES:
        venue, market = identify(snapshot, partition, fmt, data[:HEAD_BYTES], ())
        if venue in BULK_VENUES:
            # Imported here: its compiled book loop (numba) costs a third of a second to load.
            from arbiter.platform.sources.stream import binance_bulk

            fast = binance_bulk.parse(snapshot, partition, data, venue, market)
            if fast is not None:
                return fast
    return replay_capture(snapshot, partition, data)


def parse_many(snapshots: Sequence[RawSnapshot], partition: str) -> Parsed:
    """Captures of one recording session parsed together, in receive-time order."""
    return replay_together(snapshots, partition)


class StreamCaptureAdapter:
    """The ``Adapter`` for websocket captures."""

    kind = KIND

    def recognise(self, head: bytes, name: str) -> str | None:
        return recognise(head, name)

    def parse(self, snapshot: RawSnapshot, partition: str) -> Parsed:
        return parse(snapshot, partition)


ADAPTER = StreamCaptureAdapter()

__all__ = [
    "ADAPTER",
    "KIND",
    "BinanceHandler",
    "CaptureFormatError",
    "CoinbaseHandler",
    "KrakenHandler",
    "StreamCaptureAdapter",
    "StreamHandler",
    "gunzip",
    "new_handler",
    "parse",
    "parse_many",
    "recognise",
]
