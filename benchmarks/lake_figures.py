"""Figures for the lake: normalisation throughput, Parquet write/read, DuckDB over 10M quotes."""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from functools import cache

import duckdb

from arbiter.platform import sql
from arbiter.platform.lake import Lake, time_partition
from arbiter.platform.normalise import quotes_from_simulator
from arbiter.platform.sources.simulator import SimulatorConfig, simulate_hour

REPEATS = 5
HOUR = datetime(2026, 6, 1, tzinfo=UTC)
# One busy hour: every venue 10x its default update rate, about 2.8M messages.
BUSY = SimulatorConfig(rate_scale=10.0)
_dirs: list[str] = []


def cleanup() -> None:
    for d in _dirs:
        shutil.rmtree(d, ignore_errors=True)
    _dirs.clear()
    _busy_lake.cache_clear()
    _ten_million.cache_clear()


def _tempdir() -> str:
    _dirs.append(tempfile.mkdtemp(prefix="arbiter-bench-"))
    return _dirs[-1]


def _median_time(fn, repeats: int = REPEATS) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


@cache
def _busy_lake() -> tuple[Lake, int]:
    """A lake holding one busy hour of raw simulator messages, and the message count."""
    lake = Lake(_tempdir())
    raw = simulate_hour(HOUR, BUSY).raw
    lake.write("simulator_ticks", raw, time_partition(HOUR))
    lake.write("quotes", quotes_from_simulator(raw).rows, time_partition(HOUR))
    return lake, raw.height


def normalise_simulator_rows_per_s() -> dict:
    """The quotes asset's whole work for one partition: read raw Parquet, normalise, write quotes."""
    lake, rows = _busy_lake()
    part = time_partition(HOUR)
    phases: dict[str, list[float]] = {"read": [], "normalise": [], "write": []}

    def once() -> None:
        t0 = time.perf_counter()
        raw = lake.read("simulator_ticks", [part])
        t1 = time.perf_counter()
        result = quotes_from_simulator(raw)
        t2 = time.perf_counter()
        lake.write("quotes", result.rows, part)
        t3 = time.perf_counter()
        for name, seconds in zip(phases, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            phases[name].append(seconds)

    total, _ = _median_time(once)
    normalise = statistics.median(phases["normalise"])
    return {
        "value": round(rows / total),
        "unit": "rows/s",
        "rows": rows,
        "median_s": round(total, 4),
        "phase_median_s": {k: round(statistics.median(v), 4) for k, v in phases.items()},
        "normalise_only_rows_per_s": round(rows / normalise),
        "repeats": REPEATS,
    }


def lake_write_rows_per_s() -> dict:
    lake, _ = _busy_lake()
    quotes = lake.read("quotes", [time_partition(HOUR)])
    target = Lake(_tempdir())
    seconds, _ = _median_time(lambda: target.write("quotes", quotes, time_partition(HOUR)))
    size = target.fs.get_file_info(target.file_path("quotes", time_partition(HOUR))).size
    return {
        "value": round(quotes.height / seconds),
        "unit": "rows/s",
        "rows": quotes.height,
        "median_s": round(seconds, 4),
        "bytes_per_row": round(size / quotes.height, 2),
        "compression": "zstd(1)",
        "repeats": REPEATS,
    }


def lake_read_rows_per_s() -> dict:
    lake, _ = _busy_lake()
    part = time_partition(HOUR)
    rows = lake.read("quotes", [part]).height
    seconds, _ = _median_time(lambda: lake.read("quotes", [part]))
    return {
        "value": round(rows / seconds),
        "unit": "rows/s",
        "rows": rows,
        "median_s": round(seconds, 4),
        "repeats": REPEATS,
    }


@cache
def _ten_million() -> tuple[Lake, int]:
    """At least 10M normalised quotes in a lake: busy hours until the count is reached."""
    lake = Lake(_tempdir())
    rows, hour = 0, HOUR
    while rows < 10_000_000:
        print(f"  building quotes: {rows:,} rows", file=sys.stderr, flush=True)
        quotes = quotes_from_simulator(simulate_hour(hour, BUSY).raw).rows
        lake.write("quotes", quotes, time_partition(hour))
        rows += quotes.height
        hour += timedelta(hours=1)
    return lake, rows


QUANTILES_SQL = """
select venue, symbol,
       count(*) as n,
       quantile_cont(ask - bid, [0.01, 0.5, 0.99]) as spread_q,
       quantile_cont(bid_size, [0.5, 0.99]) as bid_size_q
from quotes
group by venue, symbol
"""


def duckdb_quantiles_10m_s() -> dict:
    """``group by venue, symbol`` with quantiles over >= 10M quote rows in the lake (cold views each time)."""
    lake, rows = _ten_million()

    def once() -> None:
        con = sql.connect(lake)
        con.execute(QUANTILES_SQL).fetchall()
        con.close()

    seconds, times = _median_time(once)
    return {
        "value": round(seconds, 4),
        "unit": "s",
        "rows": rows,
        "threads": duckdb.connect().execute("select current_setting('threads')").fetchall()[0][0],
        "runs_s": [round(t, 4) for t in times],
    }
