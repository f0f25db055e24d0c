"""Training a trading policy on a window of opportunities with stable-baselines3.

``train_policy`` builds the arrays and the normaliser from the training frame, steps
``PairReplayVecEnv`` (numpy, ``n_envs`` episodes at once) under PPO (default) or DQN, and returns
a ``TrainedPolicy``: the SB3 model with everything needed to score raw features the same way again
(normaliser, ordered feature columns), the training curve and how fast ``model.learn()`` ran.

Rewards are given to the learner in basis points of the full notional (quote currency times
1e4 / notional), so the same hyper-parameters suit any notional. Everything random is seeded from
``TrainConfig.seed`` (SB3 seeds python, numpy, torch and the environments) and torch runs on a fixed
number of CPU threads, so the same config and data give the same policy. ``TrainConfig`` is flat
and simple on purpose: it is the Dagster resource config of the training asset.

The defaults were chosen on this 2-core machine to train at well over 5,000 steps per second (a
small network, 16 environments, large minibatches, few epochs) while still learning the synthetic
set's planted structure; see benchmarks/learning_figures.py.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.callbacks import BaseCallback

from arbiter.platform.learning.data import Normaliser, OpportunityArrays
from arbiter.platform.learning.env import PairReplayVecEnv
from arbiter.platform.learning.execution import ExecutionConfig
from arbiter.platform.plots import _png

CURVE_POINTS = 100  # points on the training curve at most
SCORE_CHUNK = 65_536  # rows per torch forward pass when scoring


class TrainConfig(BaseModel):
    """Hyper-parameters of one training run (the training asset's resource config)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    algorithm: Literal["ppo", "dqn"] = "ppo"
    total_timesteps: int = Field(200_000, gt=0)
    n_envs: int = Field(64, gt=0)
    episode_steps: int = Field(128, gt=0)  # decisions per episode at most (one pair, consecutive rows)
    seed: int = 0
    learning_rate: float = Field(3e-3, gt=0)
    gamma: float = Field(0.5, ge=0, le=1)
    net_arch: str = "64,64"  # hidden layer widths, comma separated
    torch_threads: int = Field(1, gt=0)
    # PPO
    n_steps: int = Field(64, gt=1)  # per environment per rollout
    batch_size: int = Field(1024, gt=1)
    n_epochs: int = Field(8, gt=0)
    gae_lambda: float = Field(0.9, ge=0, le=1)
    ent_coef: float = Field(0.01, ge=0)
    clip_range: float = Field(0.2, gt=0)
    # DQN
    buffer_size: int = Field(100_000, gt=0)
    learning_starts: int = Field(1_000, ge=0)
    train_freq: int = Field(1, gt=0)  # vectorised steps (n_envs transitions each) between gradient steps
    target_update_interval: int = Field(1_000, gt=0)
    exploration_fraction: float = Field(0.2, gt=0, le=1)
    exploration_final_eps: float = Field(0.02, ge=0, le=1)

    @field_validator("net_arch")
    @classmethod
    def _layers(cls, value: str) -> str:
        layers(value)
        return value

    def hidden_layers(self) -> list[int]:
        return layers(self.net_arch)


def layers(net_arch: str) -> list[int]:
    """``"64,64"`` -> [64, 64]; a clear error for anything else."""
    try:
        widths = [int(part) for part in net_arch.split(",")]
    except ValueError:
        widths = []
    if not widths or any(w <= 0 for w in widths):
        raise ValueError(f"net_arch must be positive layer widths separated by commas, e.g. '64,64'; got {net_arch!r}")
    return widths


@dataclass
class TrainedPolicy:
    """A trained SB3 model and what scoring it again needs."""

    model: PPO | DQN
    config: TrainConfig
    execution: ExecutionConfig
    normaliser: Normaliser
    feature_columns: tuple[str, ...]
    curve: tuple[tuple[int, float], ...]  # (timesteps, mean episode reward in bps of notional)
    timesteps: int  # steps model.learn() took (PPO rounds total_timesteps up to whole rollouts)
    learn_seconds: float  # wall time of model.learn() only
    steps_per_s: float
    training_rows: int
    training_window: tuple[datetime, datetime]  # first and last decision_ts trained on

    def scores(self, features: np.ndarray) -> np.ndarray:
        """The actor's output for RAW features (rows, features), through torch: PPO action logits,
        DQN q-values; float32 (rows, actions)."""
        obs = self.normaliser.apply(features)
        policy = self.model.policy
        out = []
        with torch.no_grad():
            for start in range(0, max(1, obs.shape[0]), SCORE_CHUNK):
                batch = torch.as_tensor(obs[start : start + SCORE_CHUNK], device=policy.device)
                if isinstance(self.model, PPO):
                    latent = policy.mlp_extractor.forward_actor(policy.extract_features(batch))
                    out.append(policy.action_net(latent).cpu().numpy())
                else:
                    out.append(policy.q_net(batch).cpu().numpy())
        return np.concatenate(out).astype(np.float32, copy=False)

    def actions(self, features: np.ndarray) -> np.ndarray:
        """The greedy action per row (what the deterministic policy does): argmax of the scores."""
        return self.scores(features).argmax(axis=1).astype(np.int64)


class _Curve(BaseCallback):
    """Records (timesteps, mean reward of the episodes finished since the last point)."""

    def __init__(self, every: int):
        super().__init__()
        self.every = every
        self.next_point = every
        self.pending: list[float] = []
        self.points: list[tuple[int, float]] = []

    def _on_step(self) -> bool:
        infos = self.locals["infos"]
        for i in np.flatnonzero(self.locals["dones"]):
            episode = infos[i].get("episode")
            if episode is not None:
                self.pending.append(episode["r"])
        if self.num_timesteps >= self.next_point and self.pending:
            self._flush()
        return True

    def _flush(self) -> None:
        self.points.append((int(self.num_timesteps), float(np.mean(self.pending))))
        self.pending = []
        self.next_point = self.num_timesteps + self.every

    def _on_training_end(self) -> None:
        if self.pending:
            self._flush()


def _model(config: TrainConfig, env: PairReplayVecEnv) -> PPO | DQN:
    hidden = config.hidden_layers()
    common = {"learning_rate": config.learning_rate, "gamma": config.gamma, "seed": config.seed, "device": "cpu"}
    if config.algorithm == "ppo":
        return PPO(
            "MlpPolicy",
            env,
            n_steps=config.n_steps,
            batch_size=config.batch_size,
            n_epochs=config.n_epochs,
            gae_lambda=config.gae_lambda,
            ent_coef=config.ent_coef,
            clip_range=config.clip_range,
            policy_kwargs={"net_arch": {"pi": hidden, "vf": hidden}},
            verbose=0,
            **common,
        )
    return DQN(
        "MlpPolicy",
        env,
        buffer_size=config.buffer_size,
        learning_starts=config.learning_starts,
        batch_size=config.batch_size,
        train_freq=config.train_freq,
        target_update_interval=config.target_update_interval,
        exploration_fraction=config.exploration_fraction,
        exploration_final_eps=config.exploration_final_eps,
        policy_kwargs={"net_arch": hidden},
        verbose=0,
        **common,
    )


def train_policy(
    frame: pl.DataFrame,
    feature_columns: Sequence[str],
    execution: ExecutionConfig,
    config: TrainConfig | None = None,
) -> TrainedPolicy:
    """Train a policy on ``frame`` (an opportunities window, in decision order) and time learn()."""
    config = config or TrainConfig()
    arrays = OpportunityArrays.from_frame(frame, feature_columns, execution)
    normaliser = Normaliser.fit(arrays.features)
    env = PairReplayVecEnv(
        arrays,
        normaliser,
        n_envs=config.n_envs,
        episode_steps=config.episode_steps,
        reward_scale=1e4 / execution.notional,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(config.torch_threads)
    try:
        model = _model(config, env)
        curve = _Curve(every=max(config.n_envs, config.total_timesteps // CURVE_POINTS))
        start = time.perf_counter()
        model.learn(total_timesteps=config.total_timesteps, callback=curve, progress_bar=False)
        learn_seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    decisions = frame.get_column("decision_ts")
    return TrainedPolicy(
        model=model,
        config=config,
        execution=execution,
        normaliser=normaliser,
        feature_columns=arrays.feature_columns,
        curve=tuple(curve.points),
        timesteps=int(model.num_timesteps),
        learn_seconds=learn_seconds,
        steps_per_s=model.num_timesteps / learn_seconds,
        training_rows=arrays.n_rows,
        training_window=(decisions.min(), decisions.max()),
    )


def curve_plot(curve: Sequence[tuple[int, float]], title: str = "training curve") -> bytes:
    """PNG of mean episode reward against timesteps."""
    fig, ax = plt.subplots(figsize=(6, 3))
    if curve:
        steps, rewards = zip(*curve, strict=True)
        ax.plot(steps, rewards, lw=1.2, color="#1f77b4")
    else:
        ax.text(0.5, 0.5, "no finished episodes", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("timesteps", fontsize=8)
    ax.set_ylabel("mean episode reward (bps of notional)", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.tick_params(labelsize=7)
    return _png(fig)
