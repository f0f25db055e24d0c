"""A deterministic multi-venue market simulator: the embedded default source.

Several venues quote the same assets around one shared latent price. Each venue speaks its own
dialect (native symbols, decimal strings at its own precision, event time in its own unit or
none at all), lags the latent price by its own latency and adds its own noise. On top of that the
simulator injects what real feeds do: transient dislocations (arbitrage windows, returned as ground
truth), stale quotes, short outages, re-sent duplicates, late (out-of-order) messages and a few
corrupt ones.

The dislocations have learnable structure, as real ones do. Half persist for seconds and half are
gone within a few hundred milliseconds, before an order sent on sight could fill; the dislocated
venue's book says which: a persistent one is backed by size on the side pushing it (heavy bids
under a rich quote, heavy asks over a cheap one), a fleeting one by size on the side about to
close it. And some spreads are phantoms: the whole market jumps while one venue's feed is held back
for seconds, so its last quote looks mispriced although the venue itself has moved; only the age
of that quote (our clock against the venue's) gives it away.

Every hour is generated independently from ``(seed, hour)``, yet prices are continuous across hours:
the latent path is a Brownian bridge between hourly anchors that are themselves a seeded random
walk from a fixed origin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

NS = 1_000_000_000
HOUR_NS = 3600 * NS
ORIGIN = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Asset:
    base: str
    price: float  # latent price at ORIGIN, in the quote currency
    hourly_vol: float  # standard deviation of hourly log returns


@dataclass(frozen=True)
class Venue:
    """One venue-market and the dialect it speaks."""

    venue: str
    market: str
    symbol_format: str  # e.g. "{base}{quote}"; the venue's native spelling of a market
    quote: str
    price_decimals: dict[str, int]  # per base asset
    size_decimals: int
    rate_hz: float  # mean quote updates per second per market
    latency_ms: float  # how far the venue lags the latent price
    half_spread_bps: float
    noise_bps: float
    basis_bps: float = 0.0  # perpetual premium over spot
    time_unit: str | None = "ms"  # unit of the venue's event time; None: the venue sends none
    has_seq: bool = True
    native_bases: dict[str, str] = field(default_factory=dict)  # e.g. {"BTC": "XBT"}
    maker_fee: float = 0.0
    taker_fee: float = 0.001
    withdraw_fee: float | None = None
    contract_size: float | None = None
    settle: str | None = None

    def native_symbol(self, base: str) -> str:
        return self.symbol_format.format(base=self.native_bases.get(base, base), quote=self.quote)


ASSETS = (
    Asset("BTC", 60_000.0, 0.006),
    Asset("ETH", 3_000.0, 0.008),
    Asset("SOL", 150.0, 0.012),
)

VENUES = (
    Venue(
        "binance",
        "spot",
        "{base}{quote}",
        "USDT",
        {"BTC": 2, "ETH": 2, "SOL": 2},
        5,
        rate_hz=8,
        latency_ms=20,
        half_spread_bps=0.4,
        noise_bps=0.6,
        maker_fee=0.001,
        taker_fee=0.001,
    ),
    Venue(
        "binance",
        "linear_perp",
        "{base}{quote}",
        "USDT",
        {"BTC": 1, "ETH": 2, "SOL": 3},
        3,
        rate_hz=10,
        latency_ms=15,
        half_spread_bps=0.3,
        noise_bps=0.5,
        basis_bps=3.0,
        maker_fee=0.0002,
        taker_fee=0.0005,
        contract_size=1.0,
        settle="USDT",
    ),
    Venue(
        "coinbase",
        "spot",
        "{base}-{quote}",
        "USDT",
        {"BTC": 2, "ETH": 2, "SOL": 2},
        8,
        rate_hz=5,
        latency_ms=60,
        half_spread_bps=1.0,
        noise_bps=1.2,
        time_unit="us",
        maker_fee=0.0015,
        taker_fee=0.0025,
    ),
    Venue(
        "kraken",
        "spot",
        "{base}/{quote}",
        "USDT",
        {"BTC": 1, "ETH": 2, "SOL": 2},
        8,
        rate_hz=3,
        latency_ms=90,
        half_spread_bps=1.5,
        noise_bps=1.5,
        time_unit=None,
        has_seq=False,
        native_bases={"BTC": "XBT"},
        maker_fee=0.0016,
        taker_fee=0.0026,
    ),
)

# The raw snapshot's columns: what the venues sent, in their own terms, plus when it arrived.
# Low-cardinality text is Categorical: dictionary-encoded in Parquet and cheap to group by.
RAW_SCHEMA = {
    "recv_ns": pl.Int64,
    "venue": pl.Categorical,
    "market": pl.Categorical,
    "native_symbol": pl.Categorical,
    "event_time": pl.Int64,
    "event_time_unit": pl.Categorical,
    "update_id": pl.Int64,
    "bid_px": pl.String,
    "bid_qty": pl.String,
    "ask_px": pl.String,
    "ask_qty": pl.String,
}

TRUTH_SCHEMA = {
    "start": pl.Datetime("ns", "UTC"),
    "end": pl.Datetime("ns", "UTC"),
    "base": pl.String,
    "venue": pl.String,
    "market": pl.String,
    "direction": pl.Int8,  # +1: the venue quotes above the others, -1: below
    "magnitude_bps": pl.Float64,
    "kind": pl.String,  # persistent, fleeting, or phantom (a held-back feed, nothing to trade)
}


@dataclass(frozen=True)
class SimulatorConfig:
    seed: int = 7
    assets: tuple[Asset, ...] = ASSETS
    venues: tuple[Venue, ...] = VENUES
    rate_scale: float = 1.0  # multiplies every venue's update rate (tests use less, benchmarks more)
    dislocations_per_hour: float = 30.0  # per asset
    dislocation_bps: tuple[float, float] = (40.0, 160.0)
    dislocation_seconds: tuple[float, float] = (1.0, 8.0)
    fleeting_share: float = 0.4  # dislocations that close within fleeting_seconds
    fleeting_seconds: tuple[float, float] = (0.05, 0.4)
    pressure: float = 7.0  # how much heavier the book's pressing side is during a dislocation
    phantoms_per_hour: float = 8.0  # per asset: a market jump while one venue's feed is held back
    phantom_lag_seconds: tuple[float, float] = (1.5, 5.0)
    stale_per_hour: float = 3.0  # per venue-market
    outages_per_hour: float = 1.0  # per venue-market
    duplicate_rate: float = 0.002
    late_rate: float = 0.001
    corrupt_rate: float = 0.0002


@dataclass(frozen=True)
class SimulatedHour:
    raw: pl.DataFrame  # venue-native messages in receive order (RAW_SCHEMA)
    truth: pl.DataFrame  # the arbitrage windows injected this hour (TRUTH_SCHEMA)


def hour_index(start: datetime) -> int:
    return int((start.astimezone(UTC) - ORIGIN) // timedelta(hours=1))


def _anchors(cfg: SimulatorConfig, asset_idx: int, hour: int) -> tuple[float, float]:
    """Latent log price at the start and end of ``hour``: a seeded hourly random walk from ORIGIN."""
    if hour < 0:
        raise ValueError("the simulator starts at 2026-01-01T00:00Z")
    asset = cfg.assets[asset_idx]
    steps = np.random.default_rng([cfg.seed, 0, asset_idx]).normal(0.0, asset.hourly_vol, hour + 1)
    start = np.log(asset.price) + steps[:hour].sum()
    return start, start + steps[hour]


def _latent_path(rng: np.random.Generator, a: float, b: float, vol: float, n: int) -> np.ndarray:
    """A Brownian bridge of ``n`` points from ``a`` to ``b`` with the hour's volatility."""
    walk = np.concatenate([[0.0], np.cumsum(rng.normal(0.0, vol / np.sqrt(n - 1), n - 1))])
    t = np.linspace(0.0, 1.0, n)
    return a + walk - t * walk[-1] + t * (b - a)


def _windows(rng: np.random.Generator, per_hour: float, seconds: tuple[float, float]) -> np.ndarray:
    """Random [start, end) windows in ns within the hour."""
    k = rng.poisson(per_hour)
    starts = rng.uniform(0, HOUR_NS * 0.98, k).astype(np.int64)
    return np.stack([starts, starts + (rng.uniform(*seconds, k) * NS).astype(np.int64)], axis=1)


def _in_any(t: np.ndarray, windows: np.ndarray) -> np.ndarray:
    mask = np.zeros(t.shape, dtype=bool)
    for lo, hi in windows:
        mask |= (t >= lo) & (t < hi)
    return mask


def _decimal_strings(ticks: np.ndarray, decimals: int) -> pl.Series:
    """Integer ticks → the venue's fixed-decimal strings, exactly (no float formatting involved)."""
    s = pl.Series(ticks, dtype=pl.Int64)
    if decimals == 0:
        return s.cast(pl.String)
    scale = 10**decimals
    whole = (s // scale).cast(pl.String)
    frac = (s % scale).cast(pl.String).str.zfill(decimals)
    return pl.select(pl.concat_str([whole, pl.lit("."), frac])).to_series()


def simulate_hour(start: datetime, cfg: SimulatorConfig = SimulatorConfig()) -> SimulatedHour:
    """Every venue's messages for the hour beginning at ``start`` (UTC), deterministically."""
    hour = hour_index(start)
    t0 = int(ORIGIN.timestamp()) * NS + hour * HOUR_NS
    grid_n = 36_001  # latent price every 100 ms
    frames, truths = [], []
    for ai, asset in enumerate(cfg.assets):
        rng = np.random.default_rng([cfg.seed, 1, ai, hour])
        a, b = _anchors(cfg, ai, hour)
        latent = _latent_path(rng, a, b, asset.hourly_vol, grid_n)
        dislocations = _windows(rng, cfg.dislocations_per_hour, cfg.dislocation_seconds)
        targets = rng.integers(0, len(cfg.venues), len(dislocations))
        signs = rng.choice([-1, 1], len(dislocations))
        sizes_bps = rng.uniform(*cfg.dislocation_bps, len(dislocations))
        structure = np.random.default_rng([cfg.seed, 3, ai, hour])  # its own stream: the rest stays as it was
        fleeting = structure.random(len(dislocations)) < cfg.fleeting_share
        dislocations[fleeting, 1] = dislocations[fleeting, 0] + (
            structure.uniform(*cfg.fleeting_seconds, fleeting.sum()) * NS
        ).astype(np.int64)
        pressure = np.where(fleeting, -signs, signs)  # +1: heavy bids, -1: heavy asks
        for (lo, hi), vi, sign, bps, short in zip(dislocations, targets, signs, sizes_bps, fleeting, strict=True):
            v = cfg.venues[vi]
            kind = "fleeting" if short else "persistent"
            truths.append((t0 + lo, t0 + hi, asset.base, v.venue, v.market, int(sign), float(bps), kind))
        jumps, held_back = _phantoms(structure, cfg, latent)
        for (lo, hi, vi), bps in zip(held_back, jumps, strict=True):
            v = cfg.venues[vi]
            truths.append((t0 + lo, t0 + hi, asset.base, v.venue, v.market, -int(np.sign(bps)), abs(bps), "phantom"))
        for vi, venue in enumerate(cfg.venues):
            mine = targets == vi
            frames.append(
                _venue_messages(
                    np.random.default_rng([cfg.seed, 2, ai, vi, hour]),
                    cfg,
                    venue,
                    asset,
                    latent,
                    t0,
                    Dislocations(dislocations[mine], signs[mine] * sizes_bps[mine], pressure[mine]),
                    held_back[held_back[:, 2] == vi, :2],
                )
            )
    raw = pl.concat([f for f in frames if f.height]).sort("recv_ns", maintain_order=True)
    truth = pl.DataFrame(truths, schema=TRUTH_SCHEMA, orient="row") if truths else pl.DataFrame(schema=TRUTH_SCHEMA)
    return SimulatedHour(raw=raw, truth=truth.sort("start"))


@dataclass(frozen=True)
class Dislocations:
    """One venue's dislocations in an hour: [start, end) in ns, signed size in bps, and the side of
    its book that carries the pressure (+1 heavy bids, -1 heavy asks)."""

    windows: np.ndarray
    bps: np.ndarray
    pressure: np.ndarray


def _phantoms(rng: np.random.Generator, cfg: SimulatorConfig, latent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Market jumps (every venue moves: ``latent`` is shifted in place for the jump's duration) and,
    for each, one venue whose feed is held back from just before the jump for a few seconds.

    Returns the signed jump sizes in bps and the held-back windows as rows (start, end, venue index);
    only venues that stamp their own event time are held back, since only there can a reader tell."""
    timed = [i for i, v in enumerate(cfg.venues) if v.time_unit is not None]
    k = rng.poisson(cfg.phantoms_per_hour) if timed else 0
    jumps = rng.choice([-1, 1], k) * rng.uniform(*cfg.dislocation_bps, k)
    starts = rng.uniform(60 * NS, HOUR_NS - 120 * NS, k).astype(np.int64)
    durations = (rng.uniform(10.0, 30.0, k) * NS).astype(np.int64)
    lags = (rng.uniform(*cfg.phantom_lag_seconds, k) * NS).astype(np.int64)
    venues = rng.choice(timed, k) if k else np.zeros(0, dtype=np.int64)
    step = NS // 10
    for start, duration, bps in zip(starts, durations, jumps, strict=True):
        latent[start // step : (start + duration) // step] += bps * 1e-4
    held = np.stack([starts - 200_000_000, starts + lags, venues], axis=1) if k else np.zeros((0, 3), np.int64)
    return jumps, held.astype(np.int64)


def _venue_messages(
    rng: np.random.Generator,
    cfg: SimulatorConfig,
    v: Venue,
    asset: Asset,
    latent: np.ndarray,
    t0: int,
    dislocations: Dislocations,
    held_back: np.ndarray,
) -> pl.DataFrame:
    n = rng.poisson(v.rate_hz * cfg.rate_scale * 3600)
    event = np.sort(rng.integers(0, HOUR_NS, n))
    # Outages: the venue sends nothing. Stale windows: it keeps sending the same book.
    event = event[~_in_any(event, _windows(rng, cfg.outages_per_hour, (5.0, 30.0)))]
    n = len(event)
    seen = np.clip(event - int(v.latency_ms * 1e6), 0, HOUR_NS - 1)
    log_mid = latent[(seen // (NS // 10)).astype(np.int64)]
    log_mid = log_mid + (v.basis_bps + rng.normal(0.0, v.noise_bps, n)) * 1e-4
    for (lo, hi), bps in zip(dislocations.windows, dislocations.bps, strict=True):
        log_mid[(event >= lo) & (event < hi)] += bps * 1e-4
    stale = _windows(rng, cfg.stale_per_hour, (3.0, 20.0))
    for lo, hi in stale:
        idx = np.flatnonzero((event >= lo) & (event < hi))
        if len(idx) > 1:
            log_mid[idx] = log_mid[idx[0]]
    decimals = v.price_decimals[asset.base]
    tick = 10.0**-decimals
    mid = np.exp(log_mid)
    half = np.maximum(mid * v.half_spread_bps * 1e-4 * rng.uniform(0.6, 1.6, n), tick / 2)
    bid_ticks = np.floor((mid - half) / tick).astype(np.int64)
    ask_ticks = np.maximum(np.ceil((mid + half) / tick).astype(np.int64), bid_ticks + 1)
    lot = 10**v.size_decimals
    notional = rng.lognormal(np.log(5_000.0), 1.0, (2, n))
    for (lo, hi), side in zip(dislocations.windows, dislocations.pressure, strict=True):
        notional[0 if side > 0 else 1, (event >= lo) & (event < hi)] *= cfg.pressure
    qty_ticks = np.maximum((notional / mid * lot).astype(np.int64), 1)
    for lo, hi in stale:  # a frozen book keeps its sizes too
        idx = np.flatnonzero((event >= lo) & (event < hi))
        if len(idx) > 1:
            bid_ticks[idx], ask_ticks[idx] = bid_ticks[idx[0]], ask_ticks[idx[0]]
            qty_ticks[:, idx] = qty_ticks[:, idx[:1]]
    # Delivery is in order per connection: receive time never goes backwards.
    recv = event + int(v.latency_ms * 1e6) // 4 + rng.exponential(2e6, n).astype(np.int64)
    for lo, hi in held_back:  # the feed is held back, then everything waiting arrives in a burst
        recv[(event >= lo) & (event < hi)] = hi + int(v.latency_ms * 1e6)
    recv = np.maximum.accumulate(recv)
    seq = (rng.integers(1_000_000, 9_000_000) + np.cumsum(rng.integers(1, 4, n))) if v.has_seq else None
    if v.time_unit is None:
        event_time = None
    else:
        unit_ns = {"ms": 1_000_000, "us": 1_000, "ns": 1}[v.time_unit]
        event_time = (t0 + event) // unit_ns
    frame = pl.DataFrame(
        {
            "recv_ns": t0 + recv,
            "venue": pl.repeat(v.venue, n, eager=True),
            "market": pl.repeat(v.market, n, eager=True),
            "native_symbol": pl.repeat(v.native_symbol(asset.base), n, eager=True),
            "event_time": pl.Series(event_time, dtype=pl.Int64) if event_time is not None else None,
            "event_time_unit": pl.repeat(v.time_unit, n, eager=True, dtype=pl.String),
            "update_id": pl.Series(seq, dtype=pl.Int64) if seq is not None else None,
            "bid_px": _decimal_strings(bid_ticks, decimals),
            "bid_qty": _decimal_strings(qty_ticks[0], v.size_decimals),
            "ask_px": _decimal_strings(ask_ticks, decimals),
            "ask_qty": _decimal_strings(qty_ticks[1], v.size_decimals),
        },
        schema=RAW_SCHEMA,
    )
    return _inject_faults(rng, cfg, v, frame)


def _inject_faults(rng: np.random.Generator, cfg: SimulatorConfig, v: Venue, frame: pl.DataFrame) -> pl.DataFrame:
    """Re-sent duplicates, late deliveries and corrupt messages, as real connections produce them."""
    n = frame.height
    if n == 0 or not v.has_seq:  # without an id a re-send is indistinguishable from a repeat
        return frame
    recv = frame["recv_ns"].to_numpy().copy()
    late = rng.random(n) < cfg.late_rate
    recv[late] += rng.integers(50, 500, late.sum()) * 1_000_000  # arrives after newer messages
    frame = frame.with_columns(recv_ns=pl.Series(recv))
    dup_idx = np.flatnonzero(rng.random(n) < cfg.duplicate_rate)
    dups = frame[dup_idx].with_columns(pl.col("recv_ns") + pl.Series(rng.integers(1, 50, len(dup_idx)) * 100_000))
    corrupt = rng.random(n) < cfg.corrupt_rate
    crossed = corrupt & (rng.random(n) < 0.5)
    frame = frame.with_columns(
        bid_px=pl.when(pl.Series(crossed)).then(pl.col("ask_px").str.replace(r"^(\d)", "9$1")).otherwise("bid_px"),
        ask_px=pl.when(pl.Series(corrupt & ~crossed)).then(pl.lit("")).otherwise("ask_px"),
    )
    return pl.concat([frame, dups])


def instruments(cfg: SimulatorConfig = SimulatorConfig(), valid_from: datetime = ORIGIN) -> pl.DataFrame:
    """Reference data for every simulated market, in the ``instruments`` contract."""
    rows = []
    for v in cfg.venues:
        for a in cfg.assets:
            d = v.price_decimals[a.base]
            rows.append(
                {
                    "venue": v.venue,
                    "market": v.market,
                    "symbol": f"{a.base}-{v.quote}",
                    "base": a.base,
                    "quote": v.quote,
                    "settle": v.settle,
                    "contract_size": v.contract_size,
                    "price_precision": d,
                    "size_precision": v.size_decimals,
                    "tick_size": 10.0**-d,
                    "lot_size": 10.0**-v.size_decimals,
                    "min_notional": 5.0,
                    "maker_fee": v.maker_fee,
                    "taker_fee": v.taker_fee,
                    "withdraw_fee": v.withdraw_fee,
                    "valid_from": valid_from,
                }
            )
    return pl.DataFrame(rows).with_columns(
        pl.col("price_precision", "size_precision").cast(pl.Int32),
        pl.col("contract_size", "withdraw_fee").cast(pl.Float64),
        pl.col("settle").cast(pl.String),
        pl.col("valid_from").cast(pl.Datetime("ns", "UTC")),
    )
