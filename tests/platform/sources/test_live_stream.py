"""The live websocket client against a real websocket server on loopback replaying real captures."""

from __future__ import annotations

import gzip
import json
import socket
import time
from pathlib import Path

import polars as pl

from arbiter.platform.sources.base import RawSnapshot
from arbiter.platform.sources.stream import parse
from arbiter.platform.sources.stream.live import LiveStream
from arbiter.platform.sources.stream.replay_server import ReplayServer

DATA = Path(__file__).resolve().parents[2] / "data" / "stream"
QUOTE_KEY = ["channel", "seq", "bid", "ask", "bid_size", "ask_size"]
TRADE_KEY = ["trade_id", "ts", "price", "size", "side"]


def rows(frame: pl.DataFrame | None, key: list[str]) -> list[tuple]:
    return [] if frame is None else frame.select(key).rows()


def live_until_done(stream: LiveStream, server: ReplayServer, limit_s: float = 20.0) -> dict[str, pl.DataFrame]:
    """Run until the server has played its whole capture and the client has read all of it."""
    return stream.run(
        duration_s=limit_s, until=lambda: server.finished.is_set() and stream.stats.messages >= server.sent
    )


def test_binance_drop_reconnect_and_rest_resync_match_the_capture_parse():
    lines = gzip.decompress((DATA / "binance_20240808" / "spot_btcusdt.gz").read_bytes()).splitlines()[:8000]
    capture = b"\n".join(lines) + b"\n"
    with ReplayServer(capture, "binance", drop_at=[3000], lose_on_drop=300) as server:
        stream = LiveStream("binance", ["BTCUSDT"], url=server.url, rest_url=server.rest_url, backoff_s=0.01)
        live = live_until_done(stream, server)
    assert server.paths[0] == "/stream?streams=btcusdt@bookTicker/btcusdt@depth@100ms/btcusdt@trade"
    assert stream.stats.connects == 2 and stream.stats.reconnects == 1
    assert stream.stats.snapshots == 2  # the first book, then the repair after the messages lost in the drop
    assert stream.handler.resyncs == 1  # the handler saw the sequence gap
    whole = parse(RawSnapshot("capture", "spot_btcusdt.gz", capture, 0), "p").frames

    lost = [json.loads(m)["data"] for m in server.lost]
    lost_ticker_u = {d["u"] for d in lost if "e" not in d}
    lost_trades = {str(d["t"]) for d in lost if d.get("e") == "trade"}
    # Trades and the venue's own best bid/offer: exactly the parse's, less those lost in the drop.
    expected_trades = whole["trades"].filter(~pl.col("trade_id").is_in(list(lost_trades)))
    assert sorted(rows(live["trades"], TRADE_KEY)) == sorted(rows(expected_trades, TRADE_KEY))
    ticker = whole["quotes"].filter((pl.col("channel") == "book_ticker") & ~pl.col("seq").is_in(list(lost_ticker_u)))
    live_ticker = live["quotes"].filter(pl.col("channel") == "book_ticker")
    assert rows(live_ticker, QUOTE_KEY) == rows(ticker, QUOTE_KEY)
    # The rebuilt book: after each REST snapshot (a quote of its own at the snapshot's id), every
    # top of book equals the one the parse rebuilt from the capture; before the drop too.
    book = whole["quotes"].filter(pl.col("channel") == "ws_book")
    live_book = live["quotes"].filter(pl.col("channel") == "ws_book")
    first_lost = min(d["U"] for d in lost if d.get("e") == "depthUpdate")
    first_snapshot = live_book["seq"][0]
    before = live_book.filter(pl.col("seq") < first_lost)
    expect_before = book.filter((pl.col("seq") > first_snapshot) & (pl.col("seq") < first_lost))
    assert rows(before, QUOTE_KEY)[1:] == rows(expect_before, QUOTE_KEY)
    second_snapshot = live_book.filter(pl.col("seq") >= first_lost)["seq"][0]
    after = live_book.filter(pl.col("seq") > second_snapshot)
    assert after.height > 200
    assert rows(after, QUOTE_KEY) == rows(book.filter(pl.col("seq") > second_snapshot), QUOTE_KEY)


def test_kraken_checksums_pass_and_a_drop_resubscribes_from_a_fresh_snapshot():
    capture = (DATA / "captures_2021" / "KRAKEN.ws.50.0.gz").read_bytes()
    with ReplayServer(capture, "kraken", drop_at=[2000], lose_on_drop=20) as server:
        pairs = ["WAVES/EUR", "XMR/USD", "KSM/XBT", "GRT/ETH", "SC/EUR", "ETH/CHF", "OCEAN/XBT", "OMG/USD"]
        pairs += ["XBT/CHF", "ADA/XBT"]
        stream = LiveStream("kraken", pairs, url=server.url, backoff_s=0.01, kraken_depth=1000)
        live = live_until_done(stream, server)
    assert stream.stats.reconnects == 1 and server.connections == 2
    assert server.snapshots_sent >= 1  # the resubscribe after the reconnect got books
    subscribes = [r for r in server.received if r.get("event") == "subscribe"]
    assert len(subscribes) == 6  # book, ticker, trade on each connection
    handler = stream.handler
    assert handler.checksums_verified > 1000
    reasons = set(live["quarantine"]["reason"]) if "quarantine" in live else set()
    assert "checksum_mismatch" not in reasons and "book_resync" not in reasons
    assert handler.resyncs == 0
    quotes = live["quotes"]
    assert quotes.filter(pl.col("channel") == "ws_book").height > 500


def test_coinbase_replay_matches_the_capture_parse():
    capture = (DATA / "captures_2021" / "COINBASE.ws.28.0.gz").read_bytes()
    with ReplayServer(capture, "coinbase") as server:
        products = ["SKL-USD", "SKL-BTC", "BAND-GBP", "NMR-EUR", "BAND-BTC", "YFI-BTC", "DASH-BTC", "NU-GBP"]
        stream = LiveStream("coinbase", [*products, "CRV-EUR", "SKL-GBP"], url=server.url)
        live = live_until_done(stream, server)
    assert server.received[0]["channels"] == ["level2", "ticker", "matches", "heartbeat"]
    assert stream.stats.reconnects == 0 and stream.stats.messages == server.sent
    whole = parse(RawSnapshot("capture", "COINBASE.ws.28.0.gz", capture, 0), "p").frames
    assert rows(live["quotes"], ["channel", "symbol", *QUOTE_KEY[1:]]) == rows(
        whole["quotes"], ["channel", "symbol", *QUOTE_KEY[1:]]
    )
    assert rows(live["trades"], TRADE_KEY) == rows(whole["trades"], TRADE_KEY)


def test_a_silent_server_trips_the_heartbeat_timeout_and_the_client_reconnects():
    capture = (DATA / "captures_2021" / "KRAKEN.ws.49.0.gz").read_bytes()
    with ReplayServer(capture, "kraken", silent_connections=1) as server:
        stream = LiveStream("kraken", ["XBT/USD"], url=server.url, silence_timeout_s=1.0, backoff_s=0.01)
        started = time.monotonic()
        stream.run(duration_s=20, until=lambda: server.finished.is_set() and stream.stats.messages >= server.sent)
    # A loaded machine may stall the replay past the timeout once more: at least one reconnect.
    assert server.connections >= 2 and stream.stats.reconnects == server.connections - 1
    assert stream.stats.reasons[0].startswith("Silence")
    assert stream.stats.messages == server.sent > 0
    assert time.monotonic() - started >= 1.0


def test_backoff_grows_between_refused_connects():
    with socket.socket() as s:  # a port nobody listens on: connects are refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    stream = LiveStream("kraken", ["XBT/USD"], url=f"ws://127.0.0.1:{port}", backoff_s=0.02, backoff_max_s=5)
    stream.run(duration_s=1.5)
    delays = stream.stats.backoffs
    assert stream.stats.connect_attempts >= 5 and stream.stats.messages == 0
    assert all("ConnectionRefused" in r or "OSError" in r for r in stream.stats.reasons)
    # jitter keeps each delay within [0.5, 1] x 0.02 x 2**n, so two steps on it always grows
    for n, delay in enumerate(delays[:-1]):
        assert 0.5 * 0.02 * 2 ** (n + 1) <= delay <= 0.02 * 2 ** (n + 1)
    assert all(later > earlier for earlier, later in zip(delays, delays[2:], strict=False))
