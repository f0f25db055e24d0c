"""The honest baselines a learned policy must beat, and the oracle it is measured against.

Each baseline is fitted on a training window only and then maps any frame of opportunity rows to
actions (0 = skip, k = take at ``config.sizes[k-1]``). Tuning maximises the training window's
realised P&L as ``execution.realised`` computes it (a take blocks its pair until its exit, so a
rule that fires on every row of a burst is charged for the takes it cannot make), never looking at
later rows:

- ``threshold_rule``: take at one size when ``net_spread_bps > theta``; theta from 0, quantiles of
  the training rows' spread, and +inf (never take: a tuned rule may decide nothing pays), chosen
  jointly with the size.
- ``threshold_rule_fresh``: the same, only when both legs' quotes look fresh:
  ``max(buy_age_ms, sell_age_ms) <= a`` and ``max(buy_unchanged_ms, sell_unchanged_ms) <= u``,
  (theta, size, a, u) tuned jointly; a and u from quantiles of the training rows plus +inf (no
  filter). A null age or unchanged time on either leg counts as stale: nothing shows that quote
  fresh, so any finite limit rejects it; with both limits at +inf the rule is exactly the plain
  one, so on its training window it never does worse.
- ``logistic``: scikit-learn logistic regression on the policy's feature columns (nulls imputed
  with the training means, then standardised; ``class_weight="balanced"`` because profitable rows
  can be rare, and only the ranking of probabilities matters since p* is tuned), one model per
  size with label "this row's realised P&L at that size > 0"; take when p > p*, (p*, size) tuned on
  training P&L (p* from quantiles of the training probabilities, and 1, never).
- ``always_take``: every row at the largest size; ``never_take``: nothing.
- ``oracle``: perfect foresight on the rows' own outcomes (``execution.oracle_actions``): the most
  any strategy could realise; not a baseline to beat but the yardstick (``oracle_share``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import polars as pl
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from arbiter.platform.learning.execution import ExecutionConfig, execute, oracle_actions
from arbiter.platform.learning.metrics import Outcomes, outcomes

BASELINES = ("threshold_rule", "threshold_rule_fresh", "logistic", "always_take", "never_take")
ORACLE = "oracle"
FRESH_SPREAD_QUANTILES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
SPREAD_QUANTILES = (*FRESH_SPREAD_QUANTILES, 0.95)
STALE_QUANTILES = (0.5, 0.75, 0.9, 0.95, 0.99)
PROBABILITY_QUANTILES = tuple(k / 20 for k in range(20))

Act = Callable[[pl.DataFrame], np.ndarray]


@dataclass(frozen=True)
class Fitted:
    """A strategy fitted on a training window: its name, its parameters, and how it acts."""

    name: str
    params: dict[str, Any]
    act: Act

    def describe(self) -> str:
        """One line for metadata, e.g. ``threshold_rule: theta_bps=3.2, size=0.5``."""
        shown = ", ".join(f"{k}={_short(v)}" for k, v in self.params.items() if not isinstance(v, dict | list))
        return f"{self.name}: {shown}" if shown else self.name


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def params_json(params: dict[str, Any]) -> str:
    """Parameters as strict JSON (an infinite limit is written as the string "inf")."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        if isinstance(value, float | np.floating):
            return float(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
        if isinstance(value, np.integer):
            return int(value)
        return value

    return json.dumps(clean(params), sort_keys=False, allow_nan=False)


def column(frame: pl.DataFrame, name: str) -> np.ndarray:
    """A numeric column as float64 with NaN for nulls, or a clear error naming it."""
    if name not in frame.columns:
        raise ValueError(f"opportunities: missing feature column {name!r}")
    series = frame.get_column(name)
    if not (series.dtype.is_numeric() or series.dtype == pl.Boolean):
        raise ValueError(f"opportunities: feature column {name!r} must be numeric, got {series.dtype}")
    return series.cast(pl.Float64).fill_null(np.nan).to_numpy()


def take_pnl(take: np.ndarray, window: Outcomes) -> np.ndarray:
    """Realised training P&L at every size of a take-or-skip rule: which takes execute does not
    depend on the size, so one pass gives all sizes (array indexed like ``config.sizes``)."""
    done = execute(take.astype(np.int64), window.codes, window.decision_ns, window.exit_ns) > 0
    return window.pnl[done, 1:].sum(axis=0)


@numba.njit(cache=True)
def _threshold_pnl(score, gate, thresholds, codes, decision_ns, exit_ns, pnl):
    n, k = pnl.shape
    out = np.zeros((thresholds.shape[0], k - 1))
    busy_until = np.empty(codes.max() + 1 if n else 0, dtype=np.int64)
    for t in range(thresholds.shape[0]):
        busy_until[:] = np.iinfo(np.int64).min
        for i in range(n):
            if gate[i] and score[i] > thresholds[t] and decision_ns[i] >= busy_until[codes[i]]:
                busy_until[codes[i]] = exit_ns[i]
                for a in range(1, k):
                    out[t, a - 1] += pnl[i, a]
    return out


def threshold_pnl(score: np.ndarray, gate: np.ndarray, thresholds: np.ndarray, window: Outcomes) -> np.ndarray:
    """``take_pnl`` of the rules "take when gate and score > threshold" for every threshold at once,
    shape (thresholds, sizes): the tuning grids' hot loop, compiled. Blocking as ``execution.execute``
    (a take holds its pair until its exit); a NaN score never takes."""
    return _threshold_pnl(
        np.ascontiguousarray(score, dtype=np.float64),
        np.ascontiguousarray(gate, dtype=np.bool_),
        np.ascontiguousarray(thresholds, dtype=np.float64),
        window.codes,
        window.decision_ns,
        window.exit_ns,
        np.ascontiguousarray(window.pnl),
    )


def _best_cell(grid: np.ndarray) -> tuple[float, int, int]:
    """(P&L, threshold index, action) of the best cell; the first one on ties."""
    t, k = np.unravel_index(int(np.argmax(grid)), grid.shape)
    return float(grid[t, k]), int(t), int(k) + 1


def _grid(values: np.ndarray, quantiles: Sequence[float], extra: Sequence[float]) -> np.ndarray:
    finite = values[np.isfinite(values)]
    points = np.quantile(finite, quantiles) if finite.size else np.empty(0)
    return np.unique(np.concatenate([points, np.asarray(extra, dtype=np.float64)]))


def _stale(frame: pl.DataFrame, left: str, right: str) -> np.ndarray:
    """The older leg's value; +inf when either leg's is null (null counts as stale)."""
    worst = np.maximum(column(frame, left), column(frame, right))
    return np.where(np.isnan(worst), np.inf, worst)


def _fresh_mask(frame: pl.DataFrame, age_ms: float, unchanged_ms: float) -> np.ndarray:
    return (_stale(frame, "buy_age_ms", "sell_age_ms") <= age_ms) & (
        _stale(frame, "buy_unchanged_ms", "sell_unchanged_ms") <= unchanged_ms
    )


def _rule(theta: float, action: int, fresh: tuple[float, float] | None) -> Act:
    def act(frame: pl.DataFrame) -> np.ndarray:
        take = column(frame, "net_spread_bps") > theta  # a null spread (NaN) never takes
        if fresh is not None:
            take &= _fresh_mask(frame, *fresh)
        return np.where(take, action, 0).astype(np.int64)

    return act


def fit_threshold_rule(train: pl.DataFrame, config: ExecutionConfig) -> Fitted:
    """The best static spread threshold and size on the training window."""
    window = outcomes(train, config, "threshold_rule training rows")
    spread = column(train, "net_spread_bps")
    thetas = _grid(spread, SPREAD_QUANTILES, (0.0, np.inf))
    pnl, t, action = _best_cell(threshold_pnl(spread, np.ones(train.height, dtype=np.bool_), thetas, window))
    theta = float(thetas[t])
    params = {"theta_bps": theta, "size": config.sizes[action - 1], "train_net_pnl": pnl}
    return Fitted("threshold_rule", params, _rule(theta, action, None))


def fit_threshold_rule_fresh(train: pl.DataFrame, config: ExecutionConfig) -> Fitted:
    """The threshold rule with a stale-quote filter, (theta, size, age, unchanged) tuned jointly."""
    window = outcomes(train, config, "threshold_rule_fresh training rows")
    spread = column(train, "net_spread_bps")
    age = _stale(train, "buy_age_ms", "sell_age_ms")
    unchanged = _stale(train, "buy_unchanged_ms", "sell_unchanged_ms")
    thetas = _grid(spread, FRESH_SPREAD_QUANTILES, (0.0, np.inf))
    best = (-np.inf, np.inf, 1, np.inf, np.inf)
    for a in _grid(age, STALE_QUANTILES, (np.inf,)):
        for u in _grid(unchanged, STALE_QUANTILES, (np.inf,)):
            pnl, t, action = _best_cell(threshold_pnl(spread, (age <= a) & (unchanged <= u), thetas, window))
            if pnl > best[0]:
                best = (pnl, float(thetas[t]), action, float(a), float(u))
    pnl, theta, action, a, u = best
    params = {
        "theta_bps": theta,
        "size": config.sizes[action - 1],
        "max_age_ms": a,
        "max_unchanged_ms": u,
        "train_net_pnl": pnl,
    }
    return Fitted("threshold_rule_fresh", params, _rule(theta, action, (a, u)))


class _Constant:
    """Stands in for a classifier when the training labels are all one class."""

    def __init__(self, p: float) -> None:
        self.p = p

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.column_stack([np.full(len(x), 1.0 - self.p), np.full(len(x), self.p)])


def _features(frame: pl.DataFrame, feature_columns: Sequence[str]) -> np.ndarray:
    x = np.column_stack([column(frame, c) for c in feature_columns]) if feature_columns else np.empty((frame.height, 0))
    bad = np.isinf(x).any(axis=0)
    if bad.any():
        names = [c for c, b in zip(feature_columns, bad, strict=True) if b]
        raise ValueError(f"opportunities: infinite values in feature column(s) {names}")
    return x


def fit_logistic(
    train: pl.DataFrame,
    feature_columns: Sequence[str],
    config: ExecutionConfig,
    random_state: int = 0,
    c: float = 1.0,
) -> Fitted:
    """Logistic regression on the policy's features; (p*, size) tuned on training P&L."""
    if not feature_columns:
        raise ValueError("logistic: no feature columns given")
    window = outcomes(train, config, "logistic training rows")
    x = _features(train, feature_columns)
    best: tuple[float, float, int, Any] = (-np.inf, 1.0, 1, None)
    models: list[tuple[np.ndarray, Any]] = []  # one fit per distinct label vector
    for action in range(1, config.n_actions):
        label = window.pnl[:, action] > 0
        model = next((m for y, m in models if np.array_equal(y, label)), None)
        if model is None:
            if label.all() or not label.any():
                model = _Constant(float(label.all()))
            else:
                model = make_pipeline(
                    SimpleImputer(strategy="mean", keep_empty_features=True),
                    StandardScaler(),
                    LogisticRegression(
                        C=c,
                        class_weight="balanced",
                        solver="newton-cholesky",
                        random_state=random_state,
                        max_iter=200,
                    ),
                )
                model.fit(x, label)
            models.append((label, model))
        p = model.predict_proba(x)[:, 1]
        p_stars = _grid(p, PROBABILITY_QUANTILES, (0.5, 1.0))
        by_p_star = threshold_pnl(p, np.ones(len(p), dtype=np.bool_), p_stars, window)[:, action - 1]
        t = int(np.argmax(by_p_star))
        if by_p_star[t] > best[0]:
            best = (float(by_p_star[t]), float(p_stars[t]), action, model)
    pnl, p_star, action, model = best
    columns = list(feature_columns)

    def act(frame: pl.DataFrame) -> np.ndarray:
        p = model.predict_proba(_features(frame, columns))[:, 1]
        return np.where(p > p_star, action, 0).astype(np.int64)

    params: dict[str, Any] = {"p_star": p_star, "size": config.sizes[action - 1], "train_net_pnl": pnl}
    if isinstance(model, Pipeline):
        coef = model[-1].coef_[0]
        params["coef_standardised"] = {c: float(v) for c, v in zip(columns, coef, strict=True)}
        params["intercept"] = float(model[-1].intercept_[0])
    else:
        params["constant_p"] = model.p
    return Fitted("logistic", params, act)


def fit_always_take(config: ExecutionConfig) -> Fitted:
    """Every row at the largest size."""
    action = int(np.argmax(config.sizes)) + 1
    return Fitted(
        "always_take", {"size": config.sizes[action - 1]}, lambda f: np.full(f.height, action, dtype=np.int64)
    )


def fit_never_take() -> Fitted:
    """Nothing, ever: the floor every strategy should clear."""
    return Fitted("never_take", {}, lambda f: np.zeros(f.height, dtype=np.int64))


def fit_oracle(config: ExecutionConfig) -> Fitted:
    """Perfect foresight on whatever rows it is shown (it reads their outcomes)."""

    def act(frame: pl.DataFrame) -> np.ndarray:
        window = outcomes(frame, config, "oracle rows")
        return oracle_actions(window.pnl, window.codes, window.decision_ns, window.exit_ns)

    return Fitted(ORACLE, {}, act)


def fit_baselines(
    train: pl.DataFrame, feature_columns: Sequence[str], config: ExecutionConfig, random_state: int = 0
) -> dict[str, Fitted]:
    """Every baseline and the oracle, fitted on the training window only (``BASELINES`` order)."""
    return {
        "threshold_rule": fit_threshold_rule(train, config),
        "threshold_rule_fresh": fit_threshold_rule_fresh(train, config),
        "logistic": fit_logistic(train, feature_columns, config, random_state),
        "always_take": fit_always_take(config),
        "never_take": fit_never_take(),
        ORACLE: fit_oracle(config),
    }
