"""Markets that move together: HDBSCAN over the return correlations of quoted markets.

Markets whose prices move together (the same asset on several venues, a spot market and its
perpetual, assets that track each other) are the candidates for pair and basket arbitrage: when
one of them leaves the group, the spread is the opportunity. ``cluster_instruments``:

1. takes each quote's mid price ``(bid + ask) / 2`` per market ``(venue, market, symbol)``;
2. samples every market on one common time grid (``grid``: the last mid in each interval, carried
   forward over at most ``max_carry`` empty intervals, so a brief silence is no gap but a dead feed
   is) and takes log returns between consecutive grid points;
3. measures how alike every two markets' returns are with Spearman's rank correlation over the
   intervals both have (ranks, because a venue's transient dislocation is one huge return that
   would dominate Pearson's), and turns it into the correlation distance ``sqrt(2 (1 - rho))``
   (0 for markets in lockstep, sqrt 2 for unrelated ones, 2 for opposite ones);
4. runs HDBSCAN (``metric="precomputed"``) on those distances. A market that moves with no other
   stays noise (``cluster_id`` null); so does one with fewer than ``min_returns`` returns.

Why a grid of seconds, not ticks: venues lag the common price by tens of milliseconds and add their
own noise, so tick-level returns of the same asset on two venues barely correlate; over ``grid``
intervals the shared move dominates. ``cluster_windows`` clusters consecutive windows (an hour by
default), keeps cluster ids across them (``cluster_tracking.stable_ids``) and reports how stable
the grouping was from each window to the next (adjusted Rand index, matched Jaccard).

Quotes that cannot give a mid (a non-positive or non-finite price, or a bid above the ask) are
quarantined; one-sided quotes (a null bid or ask, allowed by the contract) are counted and skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import hdbscan
import numpy as np
import polars as pl
from scipy.stats import spearmanr

from arbiter.platform.enrich.cluster_tracking import stability, stable_ids
from arbiter.platform.schema import QUARANTINE

TARGET = "instrument_clusters"
KEY = ("venue", "market", "symbol")
CLUSTERS_SCHEMA = {
    "venue": pl.String,
    "market": pl.String,
    "symbol": pl.String,
    "cluster_id": pl.Int64,  # null: moves with no other market, or too few returns to tell
    "probability": pl.Float64,  # HDBSCAN membership strength, 0..1; null for noise
    "returns": pl.Int64,  # grid returns the market had
    "mean_correlation": pl.Float64,  # mean rank correlation with the other members of its cluster
}
QUARANTINE_SCHEMA = pl.from_arrow(QUARANTINE.empty_table()).schema


@dataclass(frozen=True)
class InstrumentSettings:
    """How markets are sampled, compared and clustered; defaults suit a window of an hour."""

    grid: str = "10s"  # the common sampling interval (a Polars duration)
    max_carry: int = 3  # empty intervals a market's last mid is carried over
    min_returns: int = 30  # markets with fewer grid returns are not clustered
    min_overlap: int = 30  # two markets sharing fewer returns count as unrelated
    min_cluster_size: int = 2
    min_samples: int = 1


@dataclass(frozen=True)
class InstrumentClusters:
    rows: pl.DataFrame  # CLUSTERS_SCHEMA, one row per market seen
    quarantine: pl.DataFrame  # the contract's QUARANTINE
    one_sided: int  # quotes without a bid or an ask, skipped
    correlation: np.ndarray  # markets x markets rank correlation (NaN: too little overlap)


def _mids(quotes: pl.DataFrame, partition: str) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """``ts``, market key and ``mid`` of usable quotes; quarantine rows; count of one-sided quotes."""
    missing = [c for c in ("ts", *KEY, "bid", "ask") if c not in quotes.columns]
    if missing:
        raise ValueError(f"quotes: no column {', '.join(map(repr, missing))}")
    frame = quotes.select("ts", *[pl.col(c).cast(pl.String) for c in KEY], "bid", "ask")
    missing_key = pl.coalesce([pl.when(pl.col(c).is_null()).then(pl.lit(c)) for c in KEY])
    one_sided = pl.col("bid").is_null() | pl.col("ask").is_null()
    bad_bid = ~pl.col("bid").is_finite() | (pl.col("bid") <= 0)
    bad_ask = ~pl.col("ask").is_finite() | (pl.col("ask") <= 0)
    flagged = frame.with_columns(
        _one_sided=missing_key.is_null() & one_sided,
        _reason=pl.when(missing_key.is_not_null())
        .then(pl.lit("missing_field"))
        .when(one_sided)
        .then(None)
        .when(bad_bid | bad_ask)
        .then(pl.lit("unusable_price"))
        .when(pl.col("bid") > pl.col("ask"))
        .then(pl.lit("crossed_book")),
        _field=pl.coalesce(missing_key, pl.when(bad_ask & ~bad_bid).then(pl.lit("ask")).otherwise(pl.lit("bid"))),
    )
    rejected = flagged.filter(pl.col("_reason").is_not_null())
    quarantine = pl.DataFrame(
        [
            {
                "target": TARGET,
                "source": row["venue"] or "",
                "partition": partition,
                "reason": row["_reason"],
                "field": row["_field"],
                "raw": json.dumps({k: row[k] for k in ("ts", *KEY, "bid", "ask")}, default=str).encode(),
            }
            for row in rejected.iter_rows(named=True)
        ],
        schema=QUARANTINE_SCHEMA,
        orient="row",
    )
    usable = flagged.filter(~pl.col("_one_sided") & pl.col("_reason").is_null())
    mids = usable.select("ts", *KEY, mid=(pl.col("bid") + pl.col("ask")) / 2)
    return mids, quarantine, int(flagged["_one_sided"].sum())


def grid_returns(mids: pl.DataFrame, settings: InstrumentSettings) -> tuple[list[tuple[str, str, str]], np.ndarray]:
    """The market keys and a ``(intervals - 1) x markets`` matrix of log returns on the common
    grid (NaN where a market had no mid at either end of the interval)."""
    if mids.is_empty():
        return [], np.zeros((0, 0))
    sampled = (
        mids.sort("ts")
        .with_columns(t=pl.col("ts").dt.truncate(settings.grid))
        .group_by(*KEY, "t")
        .agg(pl.col("mid").last())
    )
    markets = sampled.select(KEY).unique().sort(list(KEY))
    grid = pl.datetime_range(
        sampled["t"].min(), sampled["t"].max(), settings.grid, eager=True, time_unit="ns", time_zone="UTC"
    ).cast(sampled["t"].dtype)
    full = (
        markets.join(pl.DataFrame({"t": grid}), how="cross")
        .join(sampled, on=[*KEY, "t"], how="left")
        .sort(*KEY, "t")
        .with_columns(pl.col("mid").fill_null(strategy="forward", limit=settings.max_carry).over(KEY))
        .with_columns(ret=pl.col("mid").log().diff().over(KEY))
    )
    matrix = full["ret"].to_numpy().reshape(markets.height, len(grid)).T[1:]
    return [tuple(row) for row in markets.iter_rows()], np.asarray(matrix, dtype=np.float64)


def rank_correlation(returns: np.ndarray, min_overlap: int) -> np.ndarray:
    """Spearman correlation of every two columns over the rows both have; NaN below ``min_overlap``."""
    n = returns.shape[1]
    present = np.isfinite(returns)
    result = np.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            both = present[:, i] & present[:, j]
            if both.sum() >= min_overlap:
                rho = spearmanr(returns[both, i], returns[both, j]).statistic
                result[i, j] = result[j, i] = rho if np.isfinite(rho) else 0.0
            else:
                result[i, j] = result[j, i] = np.nan
    return result


def _hdbscan(correlation: np.ndarray, settings: InstrumentSettings) -> tuple[np.ndarray, np.ndarray]:
    n = correlation.shape[0]
    if n < max(2, settings.min_cluster_size):
        return np.full(n, -1), np.zeros(n)
    distance = np.sqrt(np.clip(2.0 * (1.0 - np.nan_to_num(correlation, nan=0.0)), 0.0, 4.0))
    np.fill_diagonal(distance, 0.0)
    model = hdbscan.HDBSCAN(
        metric="precomputed", min_cluster_size=settings.min_cluster_size, min_samples=settings.min_samples
    ).fit(distance)
    return model.labels_, model.probabilities_


def cluster_instruments(
    quotes: pl.DataFrame,
    settings: InstrumentSettings = InstrumentSettings(),
    *,
    previous: pl.DataFrame | None = None,
    partition: str = "",
) -> InstrumentClusters:
    """Group the markets of ``quotes`` (the contract's QUOTES columns ``ts``, ``venue``, ``market``,
    ``symbol``, ``bid``, ``ask``) that move together; ``previous``: an earlier result's rows, whose
    ids continuing clusters keep. Raises ``ValueError`` when a column is missing."""
    mids, quarantine, one_sided = _mids(quotes, partition)
    keys, returns = grid_returns(mids, settings)
    counts = np.isfinite(returns).sum(axis=0) if keys else np.zeros(0, dtype=int)
    enough = np.flatnonzero(counts >= settings.min_returns)
    correlation = rank_correlation(returns, settings.min_overlap) if keys else np.zeros((0, 0))
    labels = np.full(len(keys), -1)
    probabilities = np.zeros(len(keys))
    if len(enough):
        labels[enough], probabilities[enough] = _hdbscan(correlation[np.ix_(enough, enough)], settings)
    mean_correlation = np.full(len(keys), np.nan)
    for label in np.unique(labels[labels >= 0]):
        members = np.flatnonzero(labels == label)
        block = correlation[np.ix_(members, members)].copy()
        np.fill_diagonal(block, np.nan)
        mean_correlation[members] = np.nanmean(block, axis=1)
    clustered = pl.Series(labels >= 0)
    rows = pl.DataFrame(keys, schema=list(KEY), orient="row").with_columns(
        cluster_id=pl.when(clustered).then(pl.Series(labels, dtype=pl.Int64)),
        probability=pl.when(clustered).then(pl.Series(probabilities, dtype=pl.Float64)),
        returns=pl.Series(counts, dtype=pl.Int64),
        mean_correlation=pl.when(clustered).then(pl.Series(mean_correlation, dtype=pl.Float64)),
    )
    rows = stable_ids(rows, previous, key=KEY).select(list(CLUSTERS_SCHEMA)).cast(CLUSTERS_SCHEMA)
    return InstrumentClusters(rows, quarantine, one_sided, correlation)


@dataclass(frozen=True)
class WindowedClusters:
    rows: pl.DataFrame  # ``window_start`` plus CLUSTERS_SCHEMA, per window and market
    stability: pl.DataFrame  # per window: clusters, markets, adjusted_rand and matched_jaccard vs the one before
    quarantine: pl.DataFrame


def cluster_windows(
    quotes: pl.DataFrame,
    window: str = "1h",
    settings: InstrumentSettings = InstrumentSettings(),
    *,
    previous: pl.DataFrame | None = None,
    partition: str = "",
) -> WindowedClusters:
    """``cluster_instruments`` on each ``window`` of ``quotes`` in time order, each window's ids
    kept from the one before (the first window's from ``previous``, when given), with the
    stability of the grouping from window to window (null for the first window)."""
    if "ts" not in quotes.columns:
        raise ValueError("quotes: no column 'ts'")
    windowed = quotes.with_columns(window_start=pl.col("ts").dt.truncate(window))
    all_rows, stats, quarantines = [], [], []
    before = previous
    for (start,), part in windowed.sort("ts").group_by("window_start", maintain_order=True):
        result = cluster_instruments(part.drop("window_start"), settings, previous=before, partition=partition)
        moved = stability(result.rows, before, key=KEY) if before is not None else None
        stats.append(
            {
                "window_start": start,
                "clusters": result.rows["cluster_id"].drop_nulls().n_unique(),
                "markets": result.rows.height,
                "adjusted_rand": moved["adjusted_rand"] if moved else None,
                "matched_jaccard": moved["matched_jaccard"] if moved else None,
            }
        )
        all_rows.append(result.rows.with_columns(window_start=pl.lit(start, dtype=windowed["window_start"].dtype)))
        quarantines.append(result.quarantine)
        before = result.rows
    stability_schema = {
        "window_start": windowed["window_start"].dtype,
        "clusters": pl.Int64,
        "markets": pl.Int64,
        "adjusted_rand": pl.Float64,
        "matched_jaccard": pl.Float64,
    }
    rows = (
        pl.concat(all_rows).select("window_start", *CLUSTERS_SCHEMA)
        if all_rows
        else pl.DataFrame(schema={"window_start": windowed["window_start"].dtype, **CLUSTERS_SCHEMA})
    )
    quarantine = pl.concat(quarantines) if quarantines else pl.DataFrame(schema=QUARANTINE_SCHEMA)
    return WindowedClusters(rows, pl.DataFrame(stats, schema=stability_schema, orient="row"), quarantine)

