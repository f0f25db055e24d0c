"""Market and pair features: one spec, computed in batch (Polars) and incrementally (ring buffers).

The lake's feature tables and the live scorer must see the same numbers, so every formula is
written once here. The arithmetic (mid, spread, imbalance, edges, fees, ages) is a set of small
functions that work on plain floats and on Polars expressions alike; the batch path builds
expressions from them, the incremental path calls them on floats, and both therefore do the same
floating-point operations in the same order. Logarithms use the same libm ``log`` (Polars and
``math.log`` agree bit for bit); volatility is a difference of per-market cumulative sums of squared
log returns, computed by both paths the same way.

Time base: the decision time of a row is our receive clock (``recv_ts``). A market's state at an
event is its latest row up to and including that event (stable order: ``recv_ts``, then input
order); "as of t - window" is its latest row with ``recv_ts <= t - window``. Nothing received after
the decision time influences a feature (a test shifts the future and checks).

Rows that cannot be a quote (null or non-positive/non-finite bid or ask, crossed or locked book,
negative or NaN size, missing time or market key) are returned as rejected rows with a reason and field, for the
caller to quarantine. Of a market's channels, ``book_ticker`` rows are used once the market has
sent one; before its first ``book_ticker`` row, every row of the market is used (the rule decided
causally, row by row, so later data cannot change earlier features). Rows of other channels after
that are simply not this feature's input (they stay in ``quotes``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import polars as pl

from arbiter.platform.schema import PAIR_FEATURES, QUOTES

BPS = 1e4
NS_PER_MS = 1e6
END_OF_TIME_NS = 2**63 - 1  # an open-ended blocking window ends here (the largest int64)
PRIMARY_CHANNEL = "book_ticker"

MARKET_FEATURES: tuple[str, ...] = (
    "mid",
    "spread_bps",
    "imbalance",
    "ret_bps",
    "vol_bps",
    "age_ms",
    "unchanged_ms",
    "bid_notional",
    "ask_notional",
)
_LEG = ("spread_bps", "imbalance", "ret_bps", "vol_bps", "age_ms", "unchanged_ms")
# THE ordered spec of pair features: the policy's input order. All Float64; null where undefined.
# The ordered pair feature spec is part of the data contract (schema.PAIR_FEATURES); _LEG must match it.
PAIR_KEYS: tuple[str, ...] = ("symbol", "pair", "venue_a", "market_a", "venue_b", "market_b", "decision_ts")
MARKET_KEYS: tuple[str, ...] = ("venue", "market", "symbol", "ts", "recv_ts", "bid", "ask", "bid_size", "ask_size")


@dataclass(frozen=True)
class FeatureConfig:
    """The windows every feature uses, batch and live alike."""

    ret_window_ms: int = 1000
    vol_window_ms: int = 10000

    def __post_init__(self):
        for name in ("ret_window_ms", "vol_window_ms"):
            if getattr(self, name) <= 0:
                raise ValueError(f"FeatureConfig.{name} must be positive, got {getattr(self, name)}")

    @property
    def ret_window_ns(self) -> int:
        return round(self.ret_window_ms * 1_000_000)

    @property
    def vol_window_ns(self) -> int:
        return round(self.vol_window_ms * 1_000_000)


# --- The formulas, once: each works on floats and on Polars expressions --------------------------


def _mid(bid, ask):
    return (bid + ask) / 2


def _spread_bps(bid, ask, mid):
    return (ask - bid) / mid * BPS


def _imbalance(bid_size, ask_size):
    return (bid_size - ask_size) / (bid_size + ask_size)


def _elapsed_ms(t_ns, since_ns):
    return (t_ns - since_ns) / NS_PER_MS


def _edges(bid_a, ask_a, mid_a, bid_b, ask_b, mid_b):
    """Edge of buying a and selling b, and of buying b and selling a, as fractions of the mean mid."""
    mid_ref = (mid_a + mid_b) / 2
    return (bid_b - ask_a) / mid_ref, (bid_a - ask_b) / mid_ref


def fee_bps(taker_a: float, taker_b: float) -> float:
    """Round-trip taker cost of crossing both legs, in basis points."""
    return BPS * (taker_a + taker_b)


def _base_quote(symbol: str) -> tuple[str, str]:
    base, sep, quote = symbol.partition("-")
    if not sep or not base or not quote:
        raise ValueError(f"symbol {symbol!r} is not canonical BASE-QUOTE")
    return base, quote


# --- Input checks shared by both paths ------------------------------------------------------------


class QuoteRejected(ValueError):
    """A tick that cannot be a quote, with the reason and the offending field."""

    def __init__(self, market: str, reason: str, field: str):
        self.market, self.reason, self.field = market, reason, field
        super().__init__(f"market {market}: {reason} (field {field!r})")


def _reject_scalar(ts_ns, recv_ns, bid, ask, bid_size, ask_size) -> tuple[str, str] | None:
    """The reason and field a tick is rejected for, or None; the rules of ``_reject_exprs``, in the
    same order (but the market key, which the live caller supplies)."""
    for name, value in (("ts", ts_ns), ("recv_ts", recv_ns)):
        if value is None:
            return "missing_time", name
    for name, value in (("bid", bid), ("ask", ask)):
        if value is None:
            return "missing_price", name
    for name, value in (("bid", bid), ("ask", ask)):
        if not (value > 0 and math.isfinite(value)):
            return "bad_price", name
    if bid >= ask:
        return "crossed_book", "bid"
    for name, value in (("bid_size", bid_size), ("ask_size", ask_size)):
        if value is not None and not (value >= 0 and math.isfinite(value)):
            return "bad_size", name
    return None


def _reject_exprs() -> list[tuple[pl.Expr, str, str]]:
    """(condition, reason, field) in order of precedence; same rules as ``_reject_scalar``."""
    rules: list[tuple[pl.Expr, str, str]] = [(pl.col(c).is_null(), "missing_time", c) for c in ("ts", "recv_ts")]
    # Batch only: the live engine is handed its market's keys by the scorer, never from a null field.
    rules += [(pl.col(c).is_null(), "missing_market", c) for c in ("venue", "market", "symbol")]
    rules += [(pl.col(c).is_null(), "missing_price", c) for c in ("bid", "ask")]
    rules += [(~((pl.col(c) > 0) & pl.col(c).is_finite()), "bad_price", c) for c in ("bid", "ask")]
    rules.append((pl.col("bid") >= pl.col("ask"), "crossed_book", "bid"))
    rules += [
        (pl.col(c).is_not_null() & ~((pl.col(c) >= 0) & pl.col(c).is_finite()), "bad_size", c)
        for c in ("bid_size", "ask_size")
    ]
    return rules


@dataclass(frozen=True)
class PreparedQuotes:
    """Quotes split for feature work: the rows used, in decision order, and the rejected rows."""

    accepted: pl.DataFrame  # QUOTES columns + _idx (input row), _m (market id), _ord (decision order)
    rejected: pl.DataFrame  # QUOTES columns + reason + field, in input order
    unused: int  # valid rows of a secondary channel, after the market's first book_ticker row


def _with_market_id(frame: pl.DataFrame) -> pl.DataFrame:
    """Add ``_m``, an integer id per (venue, market, symbol): cheap to group, filter and join on."""
    codes = frame.select(
        pl.col(c).cast(pl.Categorical).to_physical().cast(pl.Int64).alias(c) for c in ("venue", "market", "symbol")
    )
    if codes.height and codes.max().max_horizontal().item() < 2**21:
        packed = codes["venue"] * 2**42 + codes["market"] * 2**21 + codes["symbol"]
    else:  # more categories than 21 bits each can hold: number the distinct triples instead (slower)
        packed = codes.select(pl.struct(pl.all()).rank("dense").cast(pl.Int64)).to_series()
    return frame.with_columns(packed.alias("_m"))


def prepare_quotes(quotes: pl.DataFrame) -> PreparedQuotes:
    """Validate, pick each market's channel (causally) and order rows by receive time, stably."""
    missing = [c for c in QUOTES.names if c not in quotes.columns]
    if missing:
        raise ValueError(f"quotes frame lacks column {missing[0]!r} (the QUOTES contract)")
    frame = quotes.select(QUOTES.names).with_columns(
        pl.col("ts", "recv_ts").cast(pl.Datetime("ns", "UTC")),
        pl.col("bid", "ask", "bid_size", "ask_size").cast(pl.Float64),
    )
    reason = pl.lit(None, pl.String)
    fld = pl.lit(None, pl.String)
    for cond, why, name in reversed(_reject_exprs()):
        reason = pl.when(cond).then(pl.lit(why)).otherwise(reason)
        fld = pl.when(cond).then(pl.lit(name)).otherwise(fld)
    frame = frame.with_row_index("_idx").with_columns(reason=reason, field=fld)
    rejected = frame.filter(pl.col("reason").is_not_null()).select(*QUOTES.names, "reason", "field")
    valid = frame.filter(pl.col("reason").is_null()).drop("reason", "field")
    if not valid.get_column("recv_ts").is_sorted():
        valid = valid.sort("recv_ts", maintain_order=True)  # stable: input order among equal times
    valid = _with_market_id(valid)
    primary = (pl.col("channel").cast(pl.String) == PRIMARY_CHANNEL).fill_null(False)
    use = primary | (primary.cast(pl.Int32).cum_sum().over("_m") == 0)
    valid = valid.with_columns(_use=use)
    unused = valid.height - int(valid.get_column("_use").sum())
    accepted = valid.filter("_use").drop("_use").with_row_index("_ord").with_columns(pl.col("_ord").cast(pl.Int64))
    return PreparedQuotes(accepted, rejected, unused)


# --- Batch path -----------------------------------------------------------------------------------

# A leg's state carried to each event (its latest row's values), and what a pair needs of a leg.
_STATE = ("mid", "bid", "ask", "spread_bps", "imbalance", "bid_notional", "ask_notional")
_STATE += ("cum_r2", "ts_ns", "changed_ns")
_PAIR_LEG = ("bid", "ask", "mid", *_LEG, "bid_notional", "ask_notional")


def _market_rows(accepted: pl.DataFrame) -> pl.DataFrame:
    """Per row, the market's state after it: row-local features, cumulative r^2, last change time."""
    sizes = pl.col("bid_size") + pl.col("ask_size")
    mid = _mid(pl.col("bid"), pl.col("ask"))
    frame = accepted.with_columns(
        recv_ns=pl.col("recv_ts").cast(pl.Int64),
        ts_ns=pl.col("ts").cast(pl.Int64),
        mid=mid,
        spread_bps=_spread_bps(pl.col("bid"), pl.col("ask"), mid),
        imbalance=pl.when(sizes > 0).then(_imbalance(pl.col("bid_size"), pl.col("ask_size"))),
        bid_notional=pl.col("bid") * pl.col("bid_size"),
        ask_notional=pl.col("ask") * pl.col("ask_size"),
    )
    # The market's previous row, by position (rows are in ``_ord`` order, and ``_ord`` is the position).
    frame = frame.with_columns(_prev=pl.col("_ord").shift(1).over("_m"))
    r = (pl.col("mid") / pl.col("mid").gather(pl.col("_prev"))).log().fill_null(0.0)
    # The first row of a market counts as a change: its bid differs from the missing one before it.
    changed = pl.any_horizontal(
        pl.col(c).ne_missing(pl.col(c).gather(pl.col("_prev"))) for c in ("bid", "ask", "bid_size", "ask_size")
    )
    frame = frame.with_columns(_r2=r * r, _changed=changed)
    return frame.with_columns(
        cum_r2=pl.col("_r2").cum_sum().over("_m"),
        changed_ns=pl.when("_changed").then(pl.col("recv_ns")).forward_fill().over("_m"),
    ).drop("_prev", "_r2", "_changed")


def _time_features(events: pl.LazyFrame, history: pl.LazyFrame, sfx: str, cfg: FeatureConfig) -> pl.LazyFrame:
    """A leg's features at each event's time ``_t``, from its state columns (suffix ``sfx``) and its
    history ("as of t - window" lookups: the last row with ``recv_ns <= t - window``)."""
    window = history.select("recv_ns", "mid", "cum_r2")
    out = events.with_columns(_q_ret=pl.col("_t") - cfg.ret_window_ns, _q_vol=pl.col("_t") - cfg.vol_window_ns)
    out = out.join_asof(
        window.select(pl.col("recv_ns").alias("_k_ret"), pl.col("mid").alias("_mid_w")),
        left_on="_q_ret",
        right_on="_k_ret",
        strategy="backward",
    ).join_asof(
        window.select(pl.col("recv_ns").alias("_k_vol"), pl.col("cum_r2").alias("_cum_w")),
        left_on="_q_vol",
        right_on="_k_vol",
        strategy="backward",
    )
    var = pl.col("cum_r2" + sfx) - pl.col("_cum_w").fill_null(0.0)
    return out.with_columns(
        (BPS * (pl.col("mid" + sfx) / pl.col("_mid_w")).log()).alias("ret_bps" + sfx),
        (BPS * pl.max_horizontal(var, 0.0).sqrt()).alias("vol_bps" + sfx),
        _elapsed_ms(pl.col("_t"), pl.col("ts_ns" + sfx)).alias("age_ms" + sfx),
        _elapsed_ms(pl.col("_t"), pl.col("changed_ns" + sfx)).alias("unchanged_ms" + sfx),
    ).drop("_q_ret", "_q_vol", "_k_ret", "_k_vol", "_mid_w", "_cum_w")


def _with_leg(events: pl.LazyFrame, history: pl.LazyFrame, sfx: str, cfg: FeatureConfig) -> pl.LazyFrame:
    """Attach a leg's state as of each event (its last row at or before the event in decision order,
    ``_ord``) and its features at the event's time; keep what a pair needs of the leg."""
    state = history.select("_ord", *[pl.col(c).alias(c + sfx) for c in _STATE])
    out = _time_features(events.join_asof(state, on="_ord", strategy="backward"), history, sfx, cfg)
    return out.drop(*[c + sfx for c in _STATE if c not in _PAIR_LEG])


class RejectedQuotes(ValueError):
    """``market_features`` was given rows that cannot be quotes (use ``prepare_quotes`` first)."""


def market_features(quotes: pl.DataFrame, config: FeatureConfig = FeatureConfig()) -> pl.DataFrame:
    """Per market, the features at each of its own updates: MARKET_KEYS + MARKET_FEATURES columns.

    Rows in decision order. Raises ``RejectedQuotes`` if any row cannot be a quote (nothing is
    dropped silently): pass ``prepare_quotes(q).accepted`` to work on the valid rows only.
    """
    prepared = prepare_quotes(quotes)
    if prepared.rejected.height:
        first = prepared.rejected.row(0, named=True)
        raise RejectedQuotes(
            f"{prepared.rejected.height} quote row(s) rejected, first: market "
            f"{first['venue']}:{first['market']}:{first['symbol']} {first['reason']} (field {first['field']!r})"
        )
    rows = _market_rows(prepared.accepted)
    parts = []
    for m in rows.get_column("_m").unique().to_list():
        history = rows.filter(pl.col("_m") == m).lazy()
        parts.append(_time_features(history.with_columns(_t=pl.col("recv_ns")), history, "", config))
    if not parts:
        types = pl.from_arrow(QUOTES.empty_table()).schema
        schema = {**{k: types[k] for k in MARKET_KEYS}, **dict.fromkeys(MARKET_FEATURES, pl.Float64())}
        return pl.DataFrame(schema=schema)
    return pl.concat(pl.collect_all(parts)).sort("_ord").select(*MARKET_KEYS, *MARKET_FEATURES)


# --- Pairs, fees, blocking windows -----------------------------------------------------------------


class PairKey(NamedTuple):
    """Two markets of one symbol, legs ordered by (venue, market)."""

    symbol: str
    venue_a: str
    market_a: str
    venue_b: str
    market_b: str

    @property
    def name(self) -> str:
        """Unique across symbols: ``BTC-USDT binance:linear_perp|binance:spot``."""
        return f"{self.symbol} {self.venue_a}:{self.market_a}|{self.venue_b}:{self.market_b}"


def _pair_key(symbol: str, x: tuple[str, str], y: tuple[str, str]) -> PairKey:
    a, b = sorted((x, y))
    return PairKey(symbol, a[0], a[1], b[0], b[1])


def _pair_fee_bps(key: PairKey, fees: Mapping[tuple[str, str], float]) -> float:
    for leg in ((key.venue_a, key.market_a), (key.venue_b, key.market_b)):
        if leg not in fees or fees[leg] is None:
            raise KeyError(f"no taker fee for market {leg[0]}:{leg[1]} (pair {key.name})")
    return fee_bps(fees[(key.venue_a, key.market_a)], fees[(key.venue_b, key.market_b)])


def fee_table(instruments: pl.DataFrame | None, overrides: str = "") -> dict[tuple[str, str], float]:
    """{(venue, market): taker fee fraction} from ``instruments`` (latest ``valid_from`` per market),
    then ``overrides`` such as ``"binance:spot=0.00023,binance:linear_perp=0.00017"`` on top.

    Markets whose latest row has no taker fee are left out (a pair using one then fails, naming it);
    symbols of one venue-market disagreeing on the fee is an error.
    """
    table: dict[tuple[str, str], float] = {}
    if instruments is not None and instruments.height:
        latest = (
            instruments.with_columns(pl.col("venue", "market", "symbol").cast(pl.String))
            .filter(pl.col("valid_from") == pl.col("valid_from").max().over("venue", "market", "symbol"))
            .filter(pl.col("taker_fee").is_not_null())
            .group_by("venue", "market")
            .agg(pl.col("taker_fee").unique())
            .sort("venue", "market")
        )
        for venue, market, values in latest.iter_rows():
            if len(values) > 1:
                raise ValueError(f"instruments: market {venue}:{market} has several taker fees {sorted(values)}")
            table[(venue, market)] = float(values[0])
    for entry in filter(None, (e.strip() for e in overrides.split(","))):
        name, eq, value = entry.partition("=")
        venue, colon, market = name.strip().partition(":")
        try:
            fee = float(value)
        except ValueError:
            fee = math.nan
        if not (eq and colon and venue and market and 0 <= fee < 1):
            raise ValueError(f"fee override {entry!r} is not venue:market=fraction (0 <= fraction < 1)")
        table[(venue.strip(), market.strip())] = fee
    return table


BLOCKING_EVENT_TYPES = (
    "deposit_suspension",
    "withdrawal_suspension",
    "deposit_withdrawal_suspension",
    "maintenance",
    "network_upgrade",
    "delisting",
)


def blocking_windows(
    document_events: pl.DataFrame, documents: pl.DataFrame | None = None, min_confidence: float = 0.0
) -> pl.DataFrame:
    """Windows in which funds cannot move, from ``document_events``: (venue, asset, start, end).

    A window never starts before its document was published (``documents.ts``, when given): using
    it earlier would be knowledge from the future. An event with no stated start starts at
    publication; without ``documents`` that is an error naming the document.
    """
    events = document_events.filter(
        pl.col("event_type").is_in(BLOCKING_EVENT_TYPES) & (pl.col("confidence") >= min_confidence)
    )
    start = pl.col("effective_start")
    if documents is not None:
        published = documents.select("doc_id", _published=pl.col("ts").cast(pl.Datetime("ns", "UTC"))).unique("doc_id")
        events = events.join(published, on="doc_id", how="left")
        start = pl.max_horizontal(start, "_published")
    events = events.with_columns(start=start.cast(pl.Datetime("ns", "UTC")))
    undated = events.filter(pl.col("start").is_null())
    if undated.height:
        raise ValueError(f"document_events: doc_id {undated['doc_id'][0]!r} has no start and no publication time")
    return (
        events.explode("assets")
        .select(
            pl.col("venue").cast(pl.String),
            asset=pl.col("assets").cast(pl.String),
            start="start",
            end=pl.col("effective_end").cast(pl.Datetime("ns", "UTC")),
        )
        # A window that ended before anyone could know of it covers no decision time: nothing to block.
        .filter(pl.col("asset").is_not_null() & (pl.col("end").is_null() | (pl.col("end") > pl.col("start"))))
    )


def _blocked_intervals(blocking: pl.DataFrame | None, key: PairKey) -> list[tuple[int, int]]:
    """The pair's blocking windows as disjoint, sorted [start, end) ns intervals (merged)."""
    if blocking is None or blocking.height == 0 or key.venue_a == key.venue_b:
        return []
    for col in ("venue", "asset", "start", "end"):
        if col not in blocking.columns:
            raise ValueError(f"blocking windows lack column {col!r} (venue, asset, start, end)")
    rows = (
        blocking.with_columns(pl.col("venue", "asset").cast(pl.String))
        .filter(pl.col("venue").is_in([key.venue_a, key.venue_b]) & pl.col("asset").is_in(_base_quote(key.symbol)))
        .select(
            "venue",
            "asset",
            s=pl.col("start").cast(pl.Datetime("ns", "UTC")).cast(pl.Int64),
            e=pl.col("end").cast(pl.Datetime("ns", "UTC")).cast(pl.Int64).fill_null(END_OF_TIME_NS),
        )
        .sort("s")
    )
    merged: list[tuple[int, int]] = []
    for venue, asset, s, e in rows.iter_rows():
        if s is None or e < s:
            raise ValueError(f"blocking window {venue}/{asset} start={s} end={e}: start missing or after end")
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        elif e > s:
            merged.append((s, e))
    return merged


@dataclass(frozen=True)
class PairFeatures:
    frame: pl.DataFrame  # PAIR_KEYS + PAIR_FEATURES, one row per pair event
    rejected: pl.DataFrame  # QUOTES columns + reason + field: for the caller to quarantine
    unused: int = 0  # valid secondary-channel rows not used (see module docstring)


def _pair_exprs(fee: float) -> list[pl.Expr]:
    """The pair features from both legs' columns (suffixes _a, _b), oriented by the better side."""
    c = pl.col
    e_ab, e_ba = _edges(c("bid_a"), c("ask_a"), c("mid_a"), c("bid_b"), c("ask_b"), c("mid_b"))
    forward = e_ab >= e_ba  # buy a (at its ask), sell b (at its bid)
    gross = BPS * pl.max_horizontal(e_ab, e_ba)
    buy = {n: pl.when(forward).then(c(n + "_a")).otherwise(c(n + "_b")) for n in (*_LEG, "ask_notional")}
    sell = {n: pl.when(forward).then(c(n + "_b")).otherwise(c(n + "_a")) for n in (*_LEG, "bid_notional")}
    out = {
        "net_spread_bps": gross - fee,
        "gross_spread_bps": gross,
        "fee_bps": pl.lit(fee, pl.Float64),
        "direction": pl.when(forward).then(1.0).otherwise(-1.0),
        **{f"{side}_{n}": exprs[n] for n in _LEG for side, exprs in (("buy", buy), ("sell", sell))},
        "buy_depth_notional": buy["ask_notional"],
        "sell_depth_notional": sell["bid_notional"],
        "lead_lag_bps": sell["ret_bps"] - buy["ret_bps"],
    }
    return [out[name].alias(name) for name in PAIR_FEATURES if name in out]


def _with_blocking(events: pl.LazyFrame, intervals: list[tuple[int, int]]) -> pl.LazyFrame:
    """Add ``can_move_funds``: 0.0 inside a (merged, disjoint) blocking interval, else 1.0."""
    if not intervals:
        return events.with_columns(can_move_funds=pl.lit(1.0, pl.Float64))
    table = pl.LazyFrame(intervals, schema={"_bs": pl.Int64, "_be": pl.Int64}, orient="row")
    joined = events.join_asof(table, left_on="_t", right_on="_bs", strategy="backward")
    inside = pl.col("_be").is_not_null() & (pl.col("_t") < pl.col("_be"))
    return joined.with_columns(can_move_funds=pl.when(inside).then(0.0).otherwise(1.0)).drop("_bs", "_be")


def pair_features(
    quotes: pl.DataFrame,
    fees: Mapping[tuple[str, str], float],
    blocking: pl.DataFrame | None = None,
    config: FeatureConfig = FeatureConfig(),
) -> PairFeatures:
    """One row per pair event: every update of either leg, once both have quoted.

    Rows are grouped by symbol and pair (both sorted), each pair's events in decision order: the
    order a per-pair replay reads them in. Each market's state and windowed features are computed
    once per symbol, at every event of the symbol, and each pair takes its legs' columns from there.
    """
    prepared = prepare_quotes(quotes)
    rows = _market_rows(prepared.accepted)
    markets = rows.select("_m", *[pl.col(c).cast(pl.String) for c in ("symbol", "venue", "market")]).unique("_m")
    by_symbol: dict[str, list[tuple[str, str, int]]] = {}
    for m, symbol, venue, market in markets.sort("symbol", "venue", "market").iter_rows():
        by_symbol.setdefault(symbol, []).append((venue, market, m))
    schema = {**dict.fromkeys(PAIR_KEYS, pl.String()), "decision_ts": pl.Datetime("ns", "UTC")}
    schema |= dict.fromkeys(PAIR_FEATURES, pl.Float64())
    plans, work = [], []
    for symbol, legs in by_symbol.items():
        pairs = sorted(
            (_pair_key(symbol, x[:2], y[:2]), i, j) for i, x in enumerate(legs) for j, y in enumerate(legs) if i < j
        )
        if not pairs:
            continue
        ids = [m for _, _, m in legs]
        events = rows.lazy().filter(pl.col("_m").is_in(ids)).select("_ord", "_m", _t="recv_ns")
        for k, m in enumerate(ids):
            events = _with_leg(events, rows.lazy().filter(pl.col("_m") == m), f"_{k}", config)
        plans.append(events)
        work.append([(key, ids[i], ids[j], f"_{i}", f"_{j}", _pair_fee_bps(key, fees)) for key, i, j in pairs])
    parts = []
    for symbol_events, pairs in zip(pl.collect_all(plans), work, strict=True):
        for key, id_a, id_b, sfx_a, sfx_b, fee in pairs:
            pair = symbol_events.lazy().filter(pl.col("_m").is_in([id_a, id_b]))
            pair = pair.select(
                "_t", *[pl.col(c + s).alias(c + leg) for s, leg in ((sfx_a, "_a"), (sfx_b, "_b")) for c in _PAIR_LEG]
            ).filter(pl.col("mid_a").is_not_null() & pl.col("mid_b").is_not_null())
            pair = _with_blocking(pair, _blocked_intervals(blocking, key))
            keys = dict(zip(PAIR_KEYS, (key.symbol, key.name, *key[1:]), strict=False))
            parts.append(
                pair.select(
                    *[pl.lit(v, pl.String).alias(n) for n, v in keys.items()],
                    pl.col("_t").cast(pl.Datetime("ns", "UTC")).alias("decision_ts"),
                    *_pair_exprs(fee),
                    "can_move_funds",
                )
            )
    frames = [pl.DataFrame(schema=schema), *pl.collect_all(parts)]
    return PairFeatures(pl.concat(frames), prepared.rejected, prepared.unused)


# --- Incremental path -----------------------------------------------------------------------------


class MarketState:
    """One market's live state: the latest quote and NumPy ring buffers (recv ns, mid, cumulative r^2).

    The rings keep the rows from the oldest "as of t - window" row onward; lookups move pointers
    forward only (query times never decrease), and a ring doubles when a window needs more room.
    Each window also caches the value at its pointer and the receive time of the row after it, so
    a lookup that does not cross a row costs one comparison and no array access. Scalar reads and
    writes go through memoryviews of the arrays (plain Python numbers, no NumPy scalar boxing).
    """

    __slots__ = (
        "ask",
        "ask_notional",
        "ask_size",
        "bid",
        "bid_notional",
        "bid_size",
        "changed_ns",
        "cum",
        "cums",
        "head",
        "imbalance",
        "key",
        "mask",
        "mid",
        "mids",
        "mv_cums",
        "mv_mids",
        "mv_recvs",
        "n",
        "p_ret",
        "p_vol",
        "recv_ns",
        "recvs",
        "ret_next",
        "ret_ns",
        "ret_ref",
        "spread_bps",
        "ts_ns",
        "vol_next",
        "vol_ns",
        "vol_ref",
    )

    def __init__(self, key: tuple[str, str, str], config: FeatureConfig, capacity: int = 64):
        cap = 1 << max(1, int(capacity - 1).bit_length())
        self.key, self.mask = key, cap - 1
        self.recvs = np.zeros(cap, np.int64)
        self.mids = np.zeros(cap, np.float64)
        self.cums = np.zeros(cap, np.float64)
        self._views()
        self.n = self.head = 0
        self.ret_ns, self.vol_ns = config.ret_window_ns, config.vol_window_ns
        # Per window: absolute index of the row "as of t - window" (-1: none yet), its value (mid for
        # returns, None when none; cumulative r^2 for volatility, 0 when none), next row's recv time.
        self.p_ret = self.p_vol = -1
        self.ret_ref, self.vol_ref = None, 0.0
        self.ret_next = self.vol_next = END_OF_TIME_NS
        self.cum = 0.0
        self.ts_ns = self.recv_ns = self.changed_ns = 0
        self.bid = self.ask = self.mid = self.spread_bps = math.nan
        self.bid_size = self.ask_size = self.imbalance = self.bid_notional = self.ask_notional = None

    @property
    def capacity(self) -> int:
        return self.mask + 1

    def _views(self) -> None:
        self.mv_recvs, self.mv_mids, self.mv_cums = memoryview(self.recvs), memoryview(self.mids), memoryview(self.cums)

    def _grow(self) -> None:
        cap = 2 * (self.mask + 1)
        old = np.arange(self.head, self.n, dtype=np.int64)
        for name in ("recvs", "mids", "cums"):
            ring = getattr(self, name)
            new = np.zeros(cap, ring.dtype)
            new[old & (cap - 1)] = ring[old & self.mask]
            setattr(self, name, new)
        self.mask = cap - 1
        self._views()

    def push(self, ts_ns: int, recv_ns: int, bid: float, ask: float, bid_size, ask_size) -> None:
        """Take one valid quote (already checked) as the market's new state."""
        mid = _mid(bid, ask)
        n = self.n
        r = 0.0 if n == 0 else math.log(mid / self.mid)
        if n == 0 or bid != self.bid or ask != self.ask or bid_size != self.bid_size or ask_size != self.ask_size:
            self.changed_ns = recv_ns
        self.cum = cum = self.cum + r * r
        head = self.p_ret if self.p_ret < self.p_vol else self.p_vol
        if head > self.head:
            self.head = head
        if n - self.head > self.mask:
            self._grow()
        i = n & self.mask
        self.mv_recvs[i], self.mv_mids[i], self.mv_cums[i] = recv_ns, mid, cum
        if self.p_ret + 1 == n:
            self.ret_next = recv_ns
        if self.p_vol + 1 == n:
            self.vol_next = recv_ns
        self.n = n + 1
        self.ts_ns, self.recv_ns, self.bid, self.ask, self.mid = ts_ns, recv_ns, bid, ask, mid
        self.bid_size, self.ask_size = bid_size, ask_size
        self.spread_bps = _spread_bps(bid, ask, mid)
        both = bid_size is not None and ask_size is not None
        self.imbalance = _imbalance(bid_size, ask_size) if both and bid_size + ask_size > 0 else None
        self.bid_notional = None if bid_size is None else bid * bid_size
        self.ask_notional = None if ask_size is None else ask * ask_size

    def _as_of(self, p: int, q: int) -> tuple[int, int]:
        """Move pointer ``p`` to the last row with recv <= q; return it and the next row's recv time."""
        recvs, mask, n = self.mv_recvs, self.mask, self.n
        while p + 1 < n and recvs[(p + 1) & mask] <= q:
            p += 1
        return p, (recvs[(p + 1) & mask] if p + 1 < n else END_OF_TIME_NS)

    def features_at(self, t_ns: int) -> tuple:
        """MARKET_FEATURES at decision time ``t_ns`` (never earlier than a previous call's)."""
        q = t_ns - self.ret_ns
        if q >= self.ret_next:
            self.p_ret, self.ret_next = p, _ = self._as_of(self.p_ret, q)
            self.ret_ref = self.mv_mids[p & self.mask]
        ref = self.ret_ref
        ret = None if ref is None else BPS * math.log(self.mid / ref)
        q = t_ns - self.vol_ns
        if q >= self.vol_next:
            self.p_vol, self.vol_next = p, _ = self._as_of(self.p_vol, q)
            self.vol_ref = self.mv_cums[p & self.mask]
        var = self.cum - self.vol_ref
        vol = BPS * math.sqrt(var) if var > 0.0 else 0.0
        return (
            self.mid,
            self.spread_bps,
            self.imbalance,
            ret,
            vol,
            _elapsed_ms(t_ns, self.ts_ns),
            _elapsed_ms(t_ns, self.changed_ns),
            self.bid_notional,
            self.ask_notional,
        )


class PairRow(NamedTuple):
    """One pair event: ``features`` aligned with PAIR_FEATURES (None where null)."""

    key: PairKey
    decision_ns: int
    features: tuple

    def as_array(self) -> np.ndarray:
        return np.array([math.nan if v is None else v for v in self.features], dtype=np.float64)


_SPREAD, _IMB, _RET, _VOL, _AGE, _UNCH, _BIDN, _ASKN = range(1, 9)  # indices into features_at()


@dataclass
class _Pair:
    key: PairKey
    a: MarketState
    b: MarketState
    fee: float
    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    k: int = -1  # last blocking interval starting at or before the latest event

    def can_move_funds(self, t: int) -> float:
        starts, k = self.starts, self.k
        while k + 1 < len(starts) and starts[k + 1] <= t:
            k += 1
        self.k = k
        return 0.0 if k >= 0 and t < self.ends[k] else 1.0

    def row(self, t: int, fa: tuple, fb: tuple) -> PairRow:
        a, b = self.a, self.b
        e_ab, e_ba = _edges(a.bid, a.ask, a.mid, b.bid, b.ask, b.mid)
        if e_ab >= e_ba:
            direction, buy, sell = 1.0, fa, fb
        else:
            direction, buy, sell = -1.0, fb, fa
        gross = BPS * max(e_ab, e_ba)
        br, sr = buy[_RET], sell[_RET]
        values = (
            gross - self.fee,
            gross,
            self.fee,
            direction,
            buy[_SPREAD],
            sell[_SPREAD],
            buy[_IMB],
            sell[_IMB],
            br,
            sr,
            buy[_VOL],
            sell[_VOL],
            buy[_AGE],
            sell[_AGE],
            buy[_UNCH],
            sell[_UNCH],
            buy[_ASKN],
            sell[_BIDN],
            None if br is None or sr is None else sr - br,
            self.can_move_funds(t) if self.starts else 1.0,
        )
        return PairRow(self.key, t, values)


class FeatureEngine:
    """The live scorer's feature cache: one tick in, the pair rows it produces out, O(1) per tick.

    Ticks must arrive in non-decreasing receive time (the scorer's own clock). Pairs appear as
    markets of the same symbol do; a pair whose market has no fee raises when it appears.
    """

    def __init__(
        self,
        fees: Mapping[tuple[str, str], float],
        blocking: pl.DataFrame | None = None,
        config: FeatureConfig = FeatureConfig(),
    ):
        self.fees, self.blocking, self.config = dict(fees), blocking, config
        self.markets: dict[tuple[str, str, str], MarketState] = {}
        self.pairs: dict[PairKey, _Pair] = {}
        self._pairs_of: dict[tuple[str, str, str], list[tuple[_Pair, bool]]] = {}
        self._by_symbol: dict[str, list[MarketState]] = {}
        self.clock = -(2**63)

    def _add_market(self, key: tuple[str, str, str]) -> MarketState:
        venue, market, symbol = key
        new = [(_pair_key(symbol, (venue, market), o.key[:2]), o) for o in self._by_symbol.get(symbol, [])]
        fees = [_pair_fee_bps(pk, self.fees) for pk, _ in new]  # raise before changing anything
        state = MarketState(key, self.config)
        self.markets[key] = state
        self._by_symbol.setdefault(symbol, []).append(state)
        self._pairs_of[key] = []
        for (pk, other), fee in zip(new, fees, strict=True):
            a, b = (state, other) if (venue, market) == (pk.venue_a, pk.market_a) else (other, state)
            intervals = _blocked_intervals(self.blocking, pk)
            pair = _Pair(pk, a, b, fee, [s for s, _ in intervals], [e for _, e in intervals])
            self.pairs[pk] = pair
            for m in (a, b):
                self._pairs_of[m.key].append((pair, m is a))
                self._pairs_of[m.key].sort(key=lambda item: item[0].key.name)
        return state

    def update(
        self,
        venue: str,
        market: str,
        symbol: str,
        ts_ns: int,
        recv_ns: int,
        bid: float,
        ask: float,
        bid_size: float | None,
        ask_size: float | None,
    ) -> list[PairRow]:
        """Apply one tick; return the rows of every pair of this market (empty until a partner quotes).

        Raises ``QuoteRejected`` (reason, field) for a tick that cannot be a quote; state is unchanged.
        """
        try:  # the common case in one expression; the same rules as _reject_scalar, which names the reason
            ok = (
                0.0 < bid < ask < math.inf
                and (bid_size is None or 0.0 <= bid_size < math.inf)
                and (ask_size is None or 0.0 <= ask_size < math.inf)
                and ts_ns is not None
                and recv_ns is not None
            )
        except TypeError:  # a None price
            ok = False
        if not ok:
            reason = _reject_scalar(ts_ns, recv_ns, bid, ask, bid_size, ask_size) or ("rejected", "bid")
            raise QuoteRejected(f"{venue}:{market}:{symbol}", *reason)
        if recv_ns < self.clock:
            raise ValueError(f"market {venue}:{market}:{symbol}: recv_ns {recv_ns} is before the clock {self.clock}")
        key = (venue, market, symbol)
        state = self.markets.get(key) or self._add_market(key)
        self.clock = recv_ns
        state.push(ts_ns, recv_ns, bid, ask, bid_size, ask_size)
        mine = state.features_at(recv_ns)
        rows = []
        for pair, is_a in self._pairs_of[key]:
            other = pair.b if is_a else pair.a
            theirs = other.features_at(recv_ns)
            rows.append(pair.row(recv_ns, mine, theirs) if is_a else pair.row(recv_ns, theirs, mine))
        return rows

    def warm(self, quotes: pl.DataFrame) -> pl.DataFrame:
        """Feed past quotes through ``update`` (same channel rule and order as the batch path) so a
        cold start has full windows. Returns the rejected rows, for the caller to quarantine."""
        prepared = prepare_quotes(quotes)
        self.replay(prepared.accepted)
        return prepared.rejected

    def replay(self, accepted: pl.DataFrame, collect: bool = False) -> list[PairRow]:
        """Feed ``prepare_quotes(...).accepted`` rows in order; the pair rows if ``collect``."""
        cols = accepted.select(
            "venue",
            "market",
            "symbol",
            pl.col("ts").cast(pl.Int64),
            pl.col("recv_ts").cast(pl.Int64),
            "bid",
            "ask",
            "bid_size",
            "ask_size",
        )
        out: list[PairRow] = []
        update = self.update
        for row in cols.iter_rows():
            rows = update(*row)
            if collect:
                out.extend(rows)
        return out


def rows_frame(rows: list[PairRow]) -> pl.DataFrame:
    """Pair rows as a frame with the batch path's columns (PAIR_KEYS + PAIR_FEATURES)."""
    keys = [(r.key.symbol, r.key.name, *r.key[1:], r.decision_ns) for r in rows]
    data = {name: [k[i] for k in keys] for i, name in enumerate(PAIR_KEYS)}
    data |= {name: [r.features[i] for r in rows] for i, name in enumerate(PAIR_FEATURES)}
    schema = {**dict.fromkeys(PAIR_KEYS, pl.String()), "decision_ts": pl.Int64()}
    schema |= dict.fromkeys(PAIR_FEATURES, pl.Float64())
    return pl.DataFrame(data, schema=schema).with_columns(pl.col("decision_ts").cast(pl.Datetime("ns", "UTC")))
