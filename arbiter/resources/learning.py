"""The learning stage's settings, one resource: how opportunities are valued, what the policy may
do, how it is trained and judged, and when it is promoted or retrained. Every field shows in the
Dagster UI's launchpad; the defaults train the demo's small policy in well under two minutes."""

from __future__ import annotations

import dagster as dg

from arbiter.platform.features import FeatureConfig
from arbiter.platform.learning.execution import ExecutionConfig
from arbiter.platform.learning.train import TrainConfig
from arbiter.platform.opportunities import OutcomeConfig


def _numbers(text: str, kind: type, name: str) -> tuple:
    try:
        values = tuple(kind(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise ValueError(f"learning resource: {name}={text!r} must be comma-separated numbers") from exc
    if not values:
        raise ValueError(f"learning resource: {name} is empty")
    return values


class LearningResource(dg.ConfigurableResource):
    # opportunities and their outcomes
    latency_ms: float = OutcomeConfig.latency_ms  # decision to both legs' fills
    horizon_ms: float = OutcomeConfig.horizon_ms  # fills to the close of both legs
    taker_fees: str = ""  # overrides of the instruments' taker fees: "binance:spot=0.00023,..."
    ret_window_ms: int = FeatureConfig.ret_window_ms
    vol_window_ms: int = FeatureConfig.vol_window_ms
    # what the policy may do
    notional: float = ExecutionConfig.notional  # quote currency per leg at full size
    sizes: str = ",".join(str(s) for s in ExecutionConfig.sizes)  # fractions of notional, one action each
    impact_bps: float = ExecutionConfig.impact_bps
    risk_penalty_bps: float = ExecutionConfig.risk_penalty_bps
    # training and judging
    training_hours: int = 24  # the newest hours of opportunities a training run reads
    n_folds: int = 3  # walk-forward train -> holdout folds
    seeds: str = "0,1,2"  # one model per seed per fold; figures are medians over seeds
    algorithm: str = "ppo"  # ppo or dqn
    total_timesteps: int = 60_000
    hyperparameters: dict = {}  # any other TrainConfig field, e.g. {"learning_rate": 0.0003}
    # the lifecycle
    promotion_margin: float = 0.0  # a challenger must beat the champion's holdout net P&L by this share
    drift_psi: float = 0.25  # population stability index above which a feature has drifted

    def outcome_config(self) -> OutcomeConfig:
        return OutcomeConfig(latency_ms=self.latency_ms, horizon_ms=self.horizon_ms)

    def feature_config(self) -> FeatureConfig:
        return FeatureConfig(ret_window_ms=self.ret_window_ms, vol_window_ms=self.vol_window_ms)

    def execution(self) -> ExecutionConfig:
        return ExecutionConfig(
            notional=self.notional,
            sizes=_numbers(self.sizes, float, "sizes"),
            impact_bps=self.impact_bps,
            risk_penalty_bps=self.risk_penalty_bps,
        )

    def seed_list(self) -> tuple[int, ...]:
        return _numbers(self.seeds, int, "seeds")

    def train_config(self, seed: int) -> TrainConfig:
        """Validated by TrainConfig: an unknown or out-of-range hyper-parameter is a clear error."""
        return TrainConfig(
            **{
                **self.hyperparameters,
                "algorithm": self.algorithm,
                "total_timesteps": self.total_timesteps,
                "seed": seed,
            }
        )
