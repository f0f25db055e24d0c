"""The opportunities frame as the arrays learning works on, and the feature normalisation.

``OpportunityArrays.from_frame`` turns the ``opportunities`` rows (one per moment a pair's net
spread is positive, in decision order within each pair) into numpy arrays once: the raw features
(float32, NaN for null), what every action earns (``pnl``) and pays in training (``rewards``), and
the pair structure the environment walks (``following``: the pair's next row after a skip,
``next_free``: its first row after a take's exit). Every check names the field at fault, because a
bad frame should stop training loudly rather than teach a policy from silently altered rows.

``Normaliser`` standardises features with the training window's mean and standard deviation.
It travels with the policy (as a JSON-able dict in the policy registry and inside the ONNX graph),
so the live scorer normalises exactly as training did. A null feature becomes the training mean
(0 after standardising): "no information" rather than an extreme value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from arbiter.platform.learning.execution import (
    ExecutionConfig,
    action_pnl,
    action_rewards,
    following_row,
    next_free,
    pair_codes,
)

REQUIRED = ("pair", "decision_ts", "exit_ts", "net_pnl_bps", "depth_notional")
STD_FLOOR = 1e-6  # relative to max(1, |mean|): below it a column counts as constant
CLIP = 10.0  # standardised features are clipped to +-CLIP so one wild value cannot saturate the network


@dataclass(frozen=True)
class OpportunityArrays:
    """The opportunities of one window as arrays (row i of each is row i of the frame)."""

    feature_columns: tuple[str, ...]
    features: np.ndarray  # (rows, features) float32, raw, NaN where null
    pnl: np.ndarray  # (rows, actions) realised P&L in quote currency of each action
    rewards: np.ndarray  # (rows, actions) pnl less the training risk penalty
    codes: np.ndarray  # (rows,) int64 pair code
    pairs: tuple[str, ...]  # pair name of each code
    decision_ns: np.ndarray  # (rows,) int64 epoch ns
    exit_ns: np.ndarray  # (rows,) int64 epoch ns
    next_free: np.ndarray  # (rows,) the pair's first row decided at/after this row's exit (rows: none)
    following: np.ndarray  # (rows,) the pair's next row (rows: none)
    execution: ExecutionConfig

    @property
    def n_rows(self) -> int:
        return self.features.shape[0]

    @classmethod
    def from_frame(
        cls, frame: pl.DataFrame, feature_columns: Sequence[str], execution: ExecutionConfig
    ) -> OpportunityArrays:
        feature_columns = tuple(feature_columns)
        _validate(frame, feature_columns)
        features = frame.select(pl.col(c).cast(pl.Float32) for c in feature_columns).to_numpy().astype(np.float32)
        features = np.ascontiguousarray(features.reshape(frame.height, len(feature_columns)))
        infinite = np.isinf(features).any(axis=0)
        if infinite.any():
            names = [c for c, bad in zip(feature_columns, infinite, strict=True) if bad]
            raise ValueError(f"opportunities: feature column(s) {', '.join(names)} hold infinite values")
        pair_names = frame.get_column("pair").cast(pl.String).to_numpy()
        codes = pair_codes(pair_names)
        pairs = [""] * (int(codes.max()) + 1)
        for name, first_row in zip(*np.unique(pair_names, return_index=True), strict=True):
            pairs[codes[first_row]] = str(name)
        decision_ns = _epoch_ns(frame, "decision_ts")
        exit_ns = _epoch_ns(frame, "exit_ts")
        _validate_times(codes, decision_ns, exit_ns, pairs)
        net_pnl_bps = frame.get_column("net_pnl_bps").cast(pl.Float64).to_numpy()
        depth = frame.get_column("depth_notional").cast(pl.Float64).to_numpy()
        return cls(
            feature_columns=feature_columns,
            features=features,
            pnl=action_pnl(net_pnl_bps, depth, execution),
            rewards=action_rewards(net_pnl_bps, depth, execution),
            codes=codes,
            pairs=tuple(pairs),
            decision_ns=decision_ns,
            exit_ns=exit_ns,
            next_free=next_free(codes, decision_ns, exit_ns),
            following=following_row(codes),
            execution=execution,
        )


def _validate(frame: pl.DataFrame, feature_columns: tuple[str, ...]) -> None:
    if not feature_columns:
        raise ValueError("opportunities: no feature columns given")
    duplicated = sorted({c for c in feature_columns if feature_columns.count(c) > 1})
    if duplicated:
        raise ValueError(f"opportunities: feature column(s) {', '.join(duplicated)} listed twice")
    missing = [c for c in (*REQUIRED, *feature_columns) if c not in frame.columns]
    if missing:
        raise ValueError(f"opportunities: missing column(s) {', '.join(missing)} (have {', '.join(frame.columns)})")
    if frame.height == 0:
        raise ValueError("opportunities: the frame is empty; there is nothing to learn from or evaluate")
    for name in feature_columns:
        dtype = frame.schema[name]
        if not (dtype.is_numeric() or dtype == pl.Boolean):
            raise ValueError(f"opportunities: feature column {name} is {dtype}, not numeric")
    for name in REQUIRED:
        nulls = frame.get_column(name).null_count()
        if nulls:
            raise ValueError(f"opportunities: column {name} has {nulls} null value(s)")
    for name in ("net_pnl_bps", "depth_notional"):
        values = frame.get_column(name)
        if not values.dtype.is_numeric():
            raise ValueError(f"opportunities: column {name} is {values.dtype}, not numeric")
        bad = int((~values.cast(pl.Float64).is_finite()).sum())
        if bad:
            raise ValueError(f"opportunities: column {name} has {bad} NaN or infinite value(s)")
    non_positive = int((frame.get_column("depth_notional") <= 0).sum())
    if non_positive:
        raise ValueError(f"opportunities: column depth_notional has {non_positive} value(s) <= 0 (no fill possible)")
    for name in ("decision_ts", "exit_ts"):
        if not isinstance(frame.schema[name], pl.Datetime):
            raise ValueError(f"opportunities: column {name} is {frame.schema[name]}, not a Datetime")


def _epoch_ns(frame: pl.DataFrame, name: str) -> np.ndarray:
    return np.ascontiguousarray(frame.get_column(name).dt.epoch("ns").to_numpy(), dtype=np.int64)


def _validate_times(codes: np.ndarray, decision_ns: np.ndarray, exit_ns: np.ndarray, pairs: list[str]) -> None:
    early = np.flatnonzero(exit_ns < decision_ns)
    if early.size:
        raise ValueError(f"opportunities: {early.size} row(s) exit before their decision_ts (first: row {early[0]})")
    order = np.argsort(codes, kind="stable")
    same_pair = codes[order][1:] == codes[order][:-1]
    backwards = np.flatnonzero(same_pair & (decision_ns[order][1:] < decision_ns[order][:-1]))
    if backwards.size:
        row = int(order[backwards[0] + 1])
        raise ValueError(
            f"opportunities: pair {pairs[codes[row]]} is not in decision_ts order (row {row} is earlier than the "
            "pair's previous row); sort the frame by decision_ts"
        )


@dataclass(frozen=True)
class Normaliser:
    """Per-feature standardisation fitted on a training window: (x - mean) / std, clipped, NaN -> 0."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    clip: float = CLIP

    @classmethod
    def fit(cls, features: np.ndarray) -> Normaliser:
        """Mean and std per column, ignoring NaN. A column that is (nearly) constant, or all null,
        gets std 1 so a later different value is not blown up by a near-zero divisor."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"Normaliser.fit needs a non-empty (rows, features) matrix, got shape {x.shape}")
        seen = ~np.isnan(x)
        counts = seen.sum(axis=0)
        filled = np.where(seen, x, 0.0)
        mean = np.divide(filled.sum(axis=0), counts, out=np.zeros(x.shape[1]), where=counts > 0)
        deviations = np.where(seen, x - mean, 0.0)
        std = np.sqrt(np.divide((deviations**2).sum(axis=0), counts, out=np.zeros(x.shape[1]), where=counts > 0))
        std = np.where(std > STD_FLOOR * np.maximum(1.0, np.abs(mean)), std, 1.0)
        return cls(tuple(float(v) for v in mean), tuple(float(v) for v in std))

    @property
    def n_features(self) -> int:
        return len(self.mean)

    def apply(self, features: np.ndarray) -> np.ndarray:
        """Standardised float32 features; NaN (null) becomes 0, the training mean. Computed in float32
        exactly as the exported ONNX graph does, so the two agree to rounding."""
        x = np.asarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"Normaliser expects (rows, {self.n_features}) features, got shape {x.shape}")
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        z = (np.where(np.isnan(x), mean, x) - mean) / std
        return np.clip(z, np.float32(-self.clip), np.float32(self.clip)).astype(np.float32, copy=False)

    def to_dict(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std), "clip": self.clip}

    @classmethod
    def from_dict(cls, data: dict) -> Normaliser:
        try:
            mean, std, clip = [float(v) for v in data["mean"]], [float(v) for v in data["std"]], float(data["clip"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"normaliser: expected mean, std (lists of numbers) and clip, got {data!r}") from error
        if len(mean) != len(std) or not mean:
            raise ValueError(f"normaliser: mean has {len(mean)} values and std {len(std)}")
        if any(not s > 0 for s in std) or not clip > 0:
            raise ValueError("normaliser: std values and clip must be positive")
        return cls(tuple(mean), tuple(std), clip)
