"""Figures for websocket capture normalisation: raw Binance captures to Parquet, end to end."""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from isal import igzip

from arbiter.platform.lake import Lake, time_partition
from arbiter.platform.sources.base import Parsed, RawSnapshot, concat_frames
from arbiter.platform.sources.stream import parse
from arbiter.platform.sources.stream.handler import contract_frame

REPEATS = 9
CAPTURES = Path(__file__).resolve().parents[1] / "tests" / "data" / "stream" / "binance_20240808"
FILES = ("spot_btcusdt.gz", "usdm_btcusdt.gz")  # the same 346 s, spot and USD-M perpetual
HOUR = time_partition(datetime(2024, 8, 8, 23, tzinfo=UTC))
TABLES = ("quotes", "trades", "quarantine")


def _write(lake: Lake, frames: dict[str, pl.DataFrame]) -> None:
    """Each table's partition; the tables on their own threads (Parquet encoding releases the GIL)."""
    with ThreadPoolExecutor(len(TABLES)) as pool:
        for written in [pool.submit(lake.write, t, frames[t], HOUR) for t in TABLES if t in frames]:
            written.result()


def _pipeline(lake: Lake, threads: int) -> int:
    """Read both files, parse (gunzip, decode, books, validation), write quotes, trades and
    quarantine partitions; returns the raw messages accounted for."""

    def one(name: str) -> Parsed:
        path = CAPTURES / name
        return parse(RawSnapshot("binance_capture", str(path), path.read_bytes(), time.time_ns()), "bench")

    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(one, FILES))
    else:
        results = [one(name) for name in FILES]
    if any(r.unaccounted() for r in results):
        raise RuntimeError("normalise_capture_msgs_per_s: capture records unaccounted for")
    _write(lake, concat_frames([r.frames for r in results]))
    return sum(r.raw_records for r in results)


def _baseline(lake: Lake) -> int:
    """The straightforward loop, for comparison: per line, decode the JSON and build a row for
    each bookTicker and trade (prices as floats); depth messages are decoded but no book is kept.
    Same gunzip (isal), same frames, same Parquet writes."""
    decode, _ = _json_decoder()
    quotes, trades, count = [], [], 0
    for file in FILES:
        market = "linear_perp" if file.startswith("usdm") else "spot"
        for line in igzip.decompress((CAPTURES / file).read_bytes()).splitlines():
            stamp, _, payload = line.partition(b" ")
            recv = int(stamp)
            message = decode(payload)
            data = message.get("data", message)
            count += 1
            if "A" in data:
                event = data.get("E")
                ts = recv if event is None else event * 1_000_000
                source = "receive" if event is None else "venue"
                prices = (float(data["b"]), float(data["a"]), float(data["B"]), float(data["A"]))
                quotes.append((ts, source, recv, "binance", market, "BTC-USDT", "book_ticker", *prices, data["u"]))
            elif data.get("e") == "trade":
                side = "sell" if data["m"] else "buy"
                price, size = float(data["p"]), float(data["q"])
                trades.append(
                    (
                        data["T"] * 1_000_000,
                        "venue",
                        recv,
                        "binance",
                        market,
                        "BTC-USDT",
                        price,
                        size,
                        side,
                        str(data["t"]),
                    )
                )
    _write(lake, {"quotes": contract_frame("quotes", quotes), "trades": contract_frame("trades", trades)})
    return count


def _json_decoder():
    try:
        import orjson
    except ImportError:
        import msgspec

        return msgspec.json.Decoder().decode, "msgspec.json (orjson is not installed; the same kind of decoder)"
    return orjson.loads, "orjson"


def normalise_capture_msgs_per_s() -> dict:
    """Two raw Binance captures (spot and USD-M BTCUSDT, about 135k messages) end to end: gunzip,
    decode, order books, validation, Parquet for quotes, trades and quarantine. The two files are
    parsed on two threads (Polars kernels and isal release the GIL). On this shared 2-core machine
    the load from other work changes by the second, so the pipeline, its one-file-at-a-time
    variant and the plain per-line loop are timed in turns, each repeat running all three."""
    root = tempfile.mkdtemp(prefix="arbiter-bench-capture-")
    try:
        lake = Lake(root)
        variants = {
            "pipeline": lambda: _pipeline(lake, 2),
            "one_file_at_a_time": lambda: _pipeline(lake, 1),
            "baseline_loop": lambda: _baseline(lake),
        }
        counts = {name: fn() for name, fn in variants.items()}  # warm: imports, regexes, page cache
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(REPEATS):
            for name, fn in variants.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        rate = {name: counts[name] / statistics.median(times[name]) for name in variants}
        return {
            "value": round(rate["pipeline"]),
            "unit": "msgs/s",
            "messages": counts["pipeline"],
            "median_s": round(statistics.median(times["pipeline"]), 4),
            "runs_s": [round(t, 4) for t in times["pipeline"]],
            "threads": 2,
            "one_file_at_a_time_msgs_per_s": round(rate["one_file_at_a_time"]),
            "baseline_loop_msgs_per_s": round(rate["baseline_loop"]),
            "baseline_decoder": _json_decoder()[1],
            "speedup_vs_baseline": round(rate["pipeline"] / rate["baseline_loop"], 2),
            "repeats": REPEATS,
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
