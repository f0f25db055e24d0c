"""Replaying opportunities as a reinforcement-learning environment, one pair at a time.

An episode follows one pair through its opportunities in time order, from a random row, for at
most ``episode_steps`` decisions. The observation is the row's normalised features; the action is
0 (skip) or k (take at ``sizes[k-1]``); the reward is that row's ``rewards[row, action]`` (realised
P&L less the risk penalty, see execution.py) times ``reward_scale``. A take blocks the pair until
its exit, so the next decision is the pair's first row at or after the exit (``next_free``); a skip
moves to the pair's next row (``following``). Episodes end truncated, never terminated: at the
window's end or the pair's last row, the market would have gone on.

``PairReplayEnv`` is the gymnasium form (it passes ``gymnasium.utils.env_checker.check_env``);
``PairReplayVecEnv`` steps ``n_envs`` such episodes together with numpy for stable-baselines3,
with the same semantics and, per environment, the same random starts for the same seeds. The
data are shared arrays; stepping is a handful of vectorised index operations, which is what lets
training reach thousands of steps per second.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn

from arbiter.platform.learning.data import Normaliser, OpportunityArrays


@dataclass(frozen=True)
class _Replay:
    """What stepping needs, computed once per environment: observations and float32 rewards."""

    obs: np.ndarray  # (rows, features) float32, normalised
    rewards: np.ndarray  # (rows, actions) float32, scaled
    next_free: np.ndarray
    following: np.ndarray

    @classmethod
    def build(cls, arrays: OpportunityArrays, normaliser: Normaliser, reward_scale: float) -> _Replay:
        if normaliser.n_features != arrays.features.shape[1]:
            raise ValueError(
                f"the normaliser has {normaliser.n_features} features, the opportunities {arrays.features.shape[1]}"
            )
        return cls(
            obs=normaliser.apply(arrays.features),
            rewards=(arrays.rewards * reward_scale).astype(np.float32),
            next_free=arrays.next_free,
            following=arrays.following,
        )

    @property
    def n_rows(self) -> int:
        return self.obs.shape[0]

    def spaces(self, normaliser: Normaliser) -> tuple[spaces.Box, spaces.Discrete]:
        bound = np.float32(normaliser.clip)
        observation = spaces.Box(-bound, bound, shape=(self.obs.shape[1],), dtype=np.float32)
        return observation, spaces.Discrete(self.rewards.shape[1])


def _check_steps(episode_steps: int) -> int:
    if episode_steps < 1:
        raise ValueError(f"episode_steps must be at least 1, got {episode_steps}")
    return int(episode_steps)


def _start_option(options: dict | None, n_rows: int) -> int | None:
    start = (options or {}).get("start")
    if start is not None and not 0 <= int(start) < n_rows:
        raise ValueError(f"reset option start={start} is outside the {n_rows} rows")
    return None if start is None else int(start)


class PairReplayEnv(gym.Env):
    """One pair's opportunities replayed in time order (see the module docstring).

    ``reset(options={"start": row})`` starts at a given row instead of a random one."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        arrays: OpportunityArrays,
        normaliser: Normaliser,
        episode_steps: int = 256,
        reward_scale: float = 1.0,
        render_mode: str | None = None,
    ):
        self._replay = _Replay.build(arrays, normaliser, reward_scale)
        self.episode_steps = _check_steps(episode_steps)
        self.observation_space, self.action_space = self._replay.spaces(normaliser)
        self.render_mode = render_mode
        self._row = 0
        self._steps = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        start = _start_option(options, self._replay.n_rows)
        self._row = int(self.np_random.integers(self._replay.n_rows)) if start is None else start
        self._steps = 0
        return self._replay.obs[self._row].copy(), {"row": self._row}

    def step(self, action) -> tuple[np.ndarray, float, bool, bool, dict]:
        a = int(action)
        if not self.action_space.contains(a):
            raise ValueError(f"action {action} is not in {self.action_space}")
        row, replay = self._row, self._replay
        reward = float(replay.rewards[row, a])
        following = int(replay.next_free[row] if a > 0 else replay.following[row])
        self._steps += 1
        ended = following >= replay.n_rows
        truncated = ended or self._steps >= self.episode_steps
        self._row = row if ended else following
        return replay.obs[self._row].copy(), reward, False, truncated, {"row": row}


class PairReplayVecEnv(VecEnv):
    """``n_envs`` PairReplayEnv episodes stepped together with numpy, auto-resetting as SB3 expects.

    Environment i seeded with s draws the same starts as ``PairReplayEnv.reset(seed=s)`` then
    ``reset()`` after each truncation. A finished episode's info carries ``terminal_observation``,
    ``TimeLimit.truncated`` and ``episode`` ({"r": return, "l": length, "t": seconds since start},
    as SB3's Monitor writes it), so SB3 bootstraps truncations and logs episode rewards."""

    def __init__(
        self,
        arrays: OpportunityArrays,
        normaliser: Normaliser,
        n_envs: int = 16,
        episode_steps: int = 256,
        reward_scale: float = 1.0,
    ):
        if n_envs < 1:
            raise ValueError(f"n_envs must be at least 1, got {n_envs}")
        self._replay = _Replay.build(arrays, normaliser, reward_scale)
        self.episode_steps = _check_steps(episode_steps)
        self.render_mode = None
        observation_space, action_space = self._replay.spaces(normaliser)
        super().__init__(n_envs, observation_space, action_space)
        self._rngs: list[np.random.Generator | None] = [None] * n_envs
        self._rows = np.zeros(n_envs, dtype=np.int64)
        self._steps = np.zeros(n_envs, dtype=np.int64)
        self._returns = np.zeros(n_envs, dtype=np.float64)
        self._actions = np.zeros(n_envs, dtype=np.int64)
        self._started = time.monotonic()

    def _start(self, i: int, seed: int | None, options: dict | None) -> None:
        if seed is not None or self._rngs[i] is None:
            self._rngs[i], _ = seeding.np_random(seed)
        start = _start_option(options, self._replay.n_rows)
        self._rows[i] = int(self._rngs[i].integers(self._replay.n_rows)) if start is None else start
        self._steps[i] = 0
        self._returns[i] = 0.0
        self.reset_infos[i] = {"row": int(self._rows[i])}

    def reset(self) -> VecEnvObs:
        for i in range(self.num_envs):
            self._start(i, self._seeds[i], self._options[i])
        self._reset_seeds()
        self._reset_options()
        return self._replay.obs[self._rows]

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)

    def step_wait(self) -> VecEnvStepReturn:
        replay, rows, actions = self._replay, self._rows, self._actions
        if actions.min() < 0 or actions.max() >= replay.rewards.shape[1]:
            raise ValueError(f"actions {actions} are not all in {self.action_space}")
        rewards = replay.rewards[rows, actions]
        following = np.where(actions > 0, replay.next_free[rows], replay.following[rows])
        self._steps += 1
        self._returns += rewards
        ended = following >= replay.n_rows
        dones = ended | (self._steps >= self.episode_steps)
        self._rows = np.where(ended, rows, following)
        obs = replay.obs[self._rows]
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(dones):
            infos[i] = {
                "terminal_observation": obs[i].copy(),
                "TimeLimit.truncated": True,
                "episode": {
                    "r": float(self._returns[i]),
                    "l": int(self._steps[i]),
                    "t": round(time.monotonic() - self._started, 6),
                },
            }
            self._start(i, None, None)
            obs[i] = replay.obs[self._rows[i]]
        return obs, rewards, dones, infos

    def close(self) -> None:
        """Nothing to release: the environments are arrays in this process."""

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """All episodes share one configuration, so every index sees this object's attribute."""
        value = getattr(self, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Sets a shared attribute; only for all environments at once, since they share it."""
        if sorted(self._get_indices(indices)) != list(range(self.num_envs)):
            raise ValueError(f"{attr_name} is shared by all {self.num_envs} environments; set it for all of them")
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        raise NotImplementedError(
            f"PairReplayVecEnv steps its episodes as arrays and has no per-environment objects to call "
            f"{method_name} on; use PairReplayEnv for that"
        )

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        """No gymnasium wrappers: the episode statistics Monitor would add are in the infos already."""
        return [False for _ in self._get_indices(indices)]

    def row_indices(self) -> Sequence[int]:
        """The row each environment is at (for tests and debugging)."""
        return self._rows.tolist()
