"""Has the market moved away from what the policy learned on? Feature drift, per feature.

Each feature of the recent window is compared with the training window by the population
stability index over the training window's deciles (PSI = sum over bins of (recent - train) *
ln(recent / train); below 0.1 is stable, above 0.25 is a shift worth retraining for) and by the
two-sample Kolmogorov-Smirnov statistic. Nulls are their own bin, so a feature that starts
arriving empty drifts too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import stats

BINS = 10
FLOOR = 1e-4  # a bin share never taken as exactly 0 (the log would be infinite)
MIN_ROWS = 50  # fewer rows on either side: no verdict


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    psi: float
    ks: float
    ks_pvalue: float


@dataclass(frozen=True)
class Drift:
    features: list[FeatureDrift]
    threshold: float
    train_rows: int
    recent_rows: int

    @property
    def drifted(self) -> list[str]:
        return [f.feature for f in self.features if f.psi > self.threshold]

    @property
    def worst(self) -> FeatureDrift | None:
        return max(self.features, key=lambda f: f.psi, default=None)

    def table(self) -> pl.DataFrame:
        return pl.DataFrame([f.__dict__ for f in self.features]).sort("psi", descending=True)


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of values per bin (deciles of the training window), with nulls as a last bin."""
    finite = values[np.isfinite(values)]
    counts = np.bincount(np.searchsorted(edges, finite, side="right"), minlength=len(edges) + 1)
    counts = np.append(counts, len(values) - len(finite))
    return np.maximum(counts / max(1, len(values)), FLOOR)


def psi(train: np.ndarray, recent: np.ndarray) -> float:
    finite = train[np.isfinite(train)]
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, BINS + 1)[1:-1])) if len(finite) else np.zeros(0)
    expected, actual = _shares(train, edges), _shares(recent, edges)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def feature_drift(train: pl.DataFrame, recent: pl.DataFrame, columns: Sequence[str], threshold: float) -> Drift:
    """PSI and KS of each of ``columns``, recent window against training window."""
    for name, frame in (("training", train), ("recent", recent)):
        if frame.height < MIN_ROWS:
            raise ValueError(f"drift: the {name} window has {frame.height} rows, fewer than {MIN_ROWS}")
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"drift: the {name} window has no column {missing[0]!r}")
    out = []
    for column in columns:
        a = train.get_column(column).cast(pl.Float64).fill_null(np.nan).to_numpy()
        b = recent.get_column(column).cast(pl.Float64).fill_null(np.nan).to_numpy()
        fa, fb = a[np.isfinite(a)], b[np.isfinite(b)]
        ks = stats.ks_2samp(fa, fb) if len(fa) and len(fb) else None
        out.append(
            FeatureDrift(
                column,
                psi(a, b),
                float(ks.statistic) if ks is not None else 1.0,
                float(ks.pvalue) if ks is not None else 0.0,
            )
        )
    return Drift(out, threshold, train.height, recent.height)
