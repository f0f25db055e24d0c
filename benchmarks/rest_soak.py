"""Figure ``rest_soak``: poll 50 symbols on Binance, Coinbase and Kraken for 120 s against loopback
venues that enforce each venue's published limit, and count the 429s (the target is none).

Each venue is a ``FaultServer`` on 127.0.0.1 answering in that venue's layout and refusing with
429 once its sliding window is spent (Binance by endpoint weight, with the used-weight header;
Coinbase and Kraken by request count), so the figure measures our token buckets against the
limits as published, not against a lenient stand-in. Every answer is parsed, so the snapshots the
poller returns are shown to be what ``exchange_rest.parse`` reads.

    python -m benchmarks.rest_soak [--duration 120] [--symbols 50]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs

from arbiter.platform.sources.exchange_rest import parse
from arbiter.platform.sources.exchange_rest.loopback import FaultServer, WindowLimit
from arbiter.platform.sources.exchange_rest.poller import ENDPOINTS, PUBLISHED_LIMITS, Poller
from arbiter.platform.sources.fetch import FetchError

VENUES = ("binance", "coinbase", "kraken")
QUOTES = {"binance": "USDT", "coinbase": "USD", "kraken": "USD"}
# Fifty assets quoted on all three venues; the loopback venues answer for any symbol.
BASES = (
    "BTC ETH SOL XRP ADA DOGE BNB DOT LTC LINK AVAX TRX BCH XLM ATOM UNI ETC FIL NEAR APT ARB OP SUI TON SHIB "
    "PEPE POL AAVE ALGO AXS CRV DASH EGLD EOS GRT ICP IMX INJ KSM MANA MKR RUNE SAND SNX STX XTZ ZEC COMP LDO ENS"
)
TRADES_PER_ANSWER = 10


def symbols(count: int, venue: str) -> list[str]:
    bases = BASES.split()
    if count > len(bases):
        raise ValueError(f"at most {len(bases)} symbols per venue, asked for {count}")
    return [f"{base}-{QUOTES[venue]}" for base in bases[:count]]


def _json(value) -> tuple:
    return ("ok", json.dumps(value).encode())


def binance_answer(path: str, query: str) -> tuple:
    symbol = parse_qs(query).get("symbol", ["BTCUSDT"])[0]
    now_ms = time.time_ns() // 1_000_000
    if path.endswith("/bookTicker"):
        return _json({"symbol": symbol, "bidPrice": "100.00", "bidQty": "1.5", "askPrice": "100.01", "askQty": "2.0"})
    if path.endswith("/trades"):
        return _json(
            [
                {
                    "id": i,
                    "price": "100.00",
                    "qty": "0.1",
                    "quoteQty": "10.0",
                    "time": now_ms,
                    "isBuyerMaker": i % 2 == 0,
                }
                for i in range(TRADES_PER_ANSWER)
            ]
        )
    return ("status", 404)


def coinbase_answer(path: str, query: str) -> tuple:
    product = path.split("/products/")[-1].split("/")[0]
    if path.endswith("/ticker"):
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        trades = [
            {"trade_id": str(i), "product_id": product, "price": "100.00", "size": "0.1", "time": now, "side": "BUY"}
            for i in range(TRADES_PER_ANSWER)
        ]
        return _json({"trades": trades, "best_bid": "99.99", "best_ask": "100.01"})
    return ("status", 404)


def kraken_answer(path: str, query: str) -> tuple:
    pairs = parse_qs(query).get("pair", ["XBTUSD"])[0].split(",")
    if path.endswith("/Ticker"):
        entry = {"a": ["100.1", "1", "1.000"], "b": ["100.0", "2", "2.000"], "c": ["100.0", "0.1"]}
        return _json({"error": [], "result": {pair: entry for pair in pairs}})
    if path.endswith("/Trades"):
        now = f"{time.time():.4f}"
        rows = [["100.0", "0.1", now, "b", "l", "", i] for i in range(TRADES_PER_ANSWER)]
        return _json({"error": [], "result": {pairs[0]: rows, "last": str(time.time_ns())}})
    return ("status", 404)


ANSWERS = {"binance": binance_answer, "coinbase": coinbase_answer, "kraken": kraken_answer}


def enforced_limit(venue: str) -> WindowLimit:
    """The venue's published limit as the loopback enforces it: a sliding window, by weight for Binance."""
    published = PUBLISHED_LIMITS[venue]
    weights = {e.path: e.weight for e in ENDPOINTS[venue].values()}
    return WindowLimit(
        published.capacity,
        published.window_s,
        cost=lambda path, query: weights.get(path, 1),
        used_header=published.weight_header,
    )


@dataclass
class VenueTally:
    snapshots: int = 0
    rows: int = 0
    unaccounted: int = 0
    errors: int = 0


def _soak_venue(poller: Poller, venue: str, names: list[str], deadline: float, tally: VenueTally) -> None:
    while time.monotonic() < deadline:
        for request in poller.requests(venue, names):
            if time.monotonic() >= deadline:
                return
            try:
                parsed = parse(poller.fetch(request), "rest_soak")
            except FetchError as exc:
                tally.errors += 1
                print(f"  {exc}", file=sys.stderr, flush=True)
                continue
            tally.snapshots += 1
            tally.rows += sum(parsed.rows().values())
            tally.unaccounted += parsed.unaccounted()


def rest_soak(duration_s: float = 120.0, symbols_per_venue: int = 50) -> dict:
    """Poll ``symbols_per_venue`` symbols on each venue for ``duration_s`` against the enforcing
    loopback venues; the value is the number of 429s the venues had to send."""
    servers = {venue: FaultServer(answer=ANSWERS[venue], limit=enforced_limit(venue)) for venue in VENUES}
    tallies = {venue: VenueTally() for venue in VENUES}
    for server in servers.values():
        server.__enter__()
    try:
        poller = Poller(base_urls={venue: server.url for venue, server in servers.items()})
        start = time.monotonic()
        deadline = start + duration_s
        threads = [
            threading.Thread(
                target=_soak_venue, args=(poller, v, symbols(symbols_per_venue, v), deadline, tallies[v]), daemon=True
            )
            for v in VENUES
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - start
    finally:
        for server in servers.values():
            server.__exit__(None, None, None)
    venues = {}
    for venue, server in servers.items():
        published, limit, tally = PUBLISHED_LIMITS[venue], server.limit, tallies[venue]
        venues[venue] = {
            "requests": server.count(),
            "requests_per_s": round(server.count() / elapsed, 2),
            "429": limit.rejected,
            "limit": f"{published.capacity:g} {published.unit} per {published.window_s:g} s",
            "peak_window_use": round(limit.peak / published.capacity, 3),
            "snapshots": tally.snapshots,
            "rows": tally.rows,
            "unaccounted_records": tally.unaccounted,
            "fetch_errors": tally.errors,
        }
    return {
        "value": sum(v["429"] for v in venues.values()),
        "unit": "429 responses",
        "duration_s": round(elapsed, 1),
        "symbols_per_venue": symbols_per_venue,
        "venues": venues,
    }


def main(argv: list[str] | None = None) -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--duration", type=float, default=120.0, help="seconds to poll (default 120)")
    args.add_argument("--symbols", type=int, default=50, help="symbols per venue (default 50)")
    ns = args.parse_args(argv)
    print(json.dumps({"figure": "rest_soak", **rest_soak(ns.duration, ns.symbols)}), flush=True)


if __name__ == "__main__":
    main()
