"""The opportunities arrays, the normaliser and the replay environments, on synthetic opportunities
with planted structure (benchmarks.learning_figures.synthetic_opportunities)."""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest
from gymnasium.utils.env_checker import check_env

from arbiter.platform.learning.data import Normaliser, OpportunityArrays
from arbiter.platform.learning.env import PairReplayEnv, PairReplayVecEnv
from arbiter.platform.learning.execution import ExecutionConfig, action_pnl, following_row, next_free, pair_codes
from benchmarks.learning_figures import synthetic_opportunities

EXECUTION = ExecutionConfig()


@pytest.fixture(scope="module")
def synthetic() -> tuple[pl.DataFrame, tuple[str, ...]]:
    return synthetic_opportunities(3_000, seed=5)


@pytest.fixture(scope="module")
def arrays(synthetic) -> OpportunityArrays:
    frame, columns = synthetic
    return OpportunityArrays.from_frame(frame, columns, EXECUTION)


@pytest.fixture(scope="module")
def normaliser(arrays) -> Normaliser:
    return Normaliser.fit(arrays.features)


def test_arrays_follow_the_frame_and_the_execution_rules(synthetic, arrays):
    frame, columns = synthetic
    assert arrays.features.dtype == np.float32 and arrays.features.shape == (frame.height, len(columns))
    # nulls (the first returns of each pair) are NaN, everything else is the frame's value
    ret = frame.get_column("ret_1s_bps")
    assert np.isnan(arrays.features[:, columns.index("ret_1s_bps")]).sum() == ret.null_count() > 0
    np.testing.assert_allclose(arrays.features[:, 0], frame.get_column(columns[0]).to_numpy(), rtol=1e-6)
    expected = action_pnl(frame["net_pnl_bps"].to_numpy(), frame["depth_notional"].to_numpy(), EXECUTION)
    np.testing.assert_array_equal(arrays.pnl, expected)
    assert (arrays.rewards[:, 1:] < arrays.pnl[:, 1:]).all() and (arrays.rewards[:, 0] == 0).all()
    codes = pair_codes(frame["pair"].to_numpy())
    np.testing.assert_array_equal(arrays.codes, codes)
    assert [arrays.pairs[c] for c in codes[:50]] == frame["pair"].head(50).to_list()
    np.testing.assert_array_equal(arrays.following, following_row(codes))
    np.testing.assert_array_equal(arrays.next_free, next_free(codes, arrays.decision_ns, arrays.exit_ns))
    as_ns = frame["exit_ts"].dt.replace_time_zone(None).to_numpy().astype("datetime64[ns]").astype(np.int64)
    np.testing.assert_array_equal(arrays.exit_ns, as_ns)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop("buy_age_ms"), "buy_age_ms"),
        (lambda f: f.drop("exit_ts"), "exit_ts"),
        (lambda f: f.head(0), "empty"),
        (lambda f: f.with_columns(net_pnl_bps=pl.when(pl.int_range(pl.len()) == 7).then(None).otherwise("net_pnl_bps")),
         "net_pnl_bps has 1 null"),
        (lambda f: f.with_columns(depth_notional=pl.lit(0.0)), "depth_notional"),
        (lambda f: f.with_columns(buy_age_ms=pl.col("buy_age_ms").cast(pl.String)), "buy_age_ms is String"),
        (lambda f: f.with_columns(lead_lag_bps=pl.lit(float("inf"))), "lead_lag_bps hold infinite"),
        (lambda f: f.reverse(), "not in decision_ts order"),
        (lambda f: f.with_columns(exit_ts=pl.col("decision_ts") - pl.duration(seconds=1)), "exit before"),
    ],
)  # fmt: skip
def test_bad_frames_are_refused_with_the_field_named(synthetic, change, message):
    frame, columns = synthetic
    with pytest.raises(ValueError, match=message):
        OpportunityArrays.from_frame(change(frame), columns, EXECUTION)


def test_a_feature_listed_but_absent_or_twice_is_named(synthetic):
    frame, columns = synthetic
    with pytest.raises(ValueError, match=r"missing column.*funding_rate"):
        OpportunityArrays.from_frame(frame, (*columns, "funding_rate"), EXECUTION)
    with pytest.raises(ValueError, match="direction listed twice"):
        OpportunityArrays.from_frame(frame, (*columns, "direction"), EXECUTION)


def test_normaliser_standardises_fills_nulls_with_the_mean_and_survives_json(arrays, normaliser):
    z = normaliser.apply(arrays.features)
    assert z.dtype == np.float32 and not np.isnan(z).any()
    seen = ~np.isnan(arrays.features)
    assert np.abs([z[seen[:, j], j].mean() for j in range(z.shape[1])]).max() < 0.05
    assert (z[~seen] == 0).all()
    assert np.abs(z).max() <= normaliser.clip
    restored = Normaliser.from_dict(normaliser.to_dict())
    assert restored == normaliser
    np.testing.assert_array_equal(restored.apply(arrays.features), z)


def test_normaliser_keeps_constant_and_empty_columns_finite():
    x = np.array([[5.0, np.nan, 1.0], [5.0, np.nan, 3.0], [5.0, np.nan, 5.0]], dtype=np.float32)
    fitted = Normaliser.fit(x)
    assert fitted.std[0] == 1.0 and fitted.std[1] == 1.0 and fitted.mean[1] == 0.0
    z = fitted.apply(np.array([[6.0, 2.0, 3.0]], dtype=np.float32))
    np.testing.assert_allclose(z, [[1.0, 2.0, 0.0]])
    with pytest.raises(ValueError, match=r"expects \(rows, 3\)"):
        fitted.apply(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="non-empty"):
        Normaliser.fit(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="normaliser"):
        Normaliser.from_dict({"mean": [0.0]})
    with pytest.raises(ValueError, match="positive"):
        Normaliser.from_dict({"mean": [0.0], "std": [0.0], "clip": 10.0})


def test_the_single_environment_passes_gymnasiums_checker(arrays, normaliser):
    env = PairReplayEnv(arrays, normaliser, episode_steps=32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the checker reports problems as warnings too
        check_env(env, skip_render_check=True)


def test_stepping_follows_the_pair_and_its_blocking(arrays, normaliser):
    env = PairReplayEnv(arrays, normaliser, episode_steps=1_000)
    obs, info = env.reset(seed=3, options={"start": 10})
    assert info["row"] == 10
    np.testing.assert_array_equal(obs, normaliser.apply(arrays.features[10:11])[0])
    row = 10
    for action in (0, 3, 0, 1, 2, 0):
        obs, reward, terminated, truncated, info = env.step(action)
        assert info["row"] == row and not terminated and not truncated
        assert reward == pytest.approx(arrays.rewards[row, action], rel=1e-6)
        following = arrays.next_free[row] if action else arrays.following[row]
        assert arrays.codes[following] == arrays.codes[row]
        if action:  # a take blocks the pair until its exit
            assert arrays.decision_ns[following] >= arrays.exit_ns[row] > arrays.decision_ns[arrays.following[row]]
        row = following
        np.testing.assert_array_equal(obs, normaliser.apply(arrays.features[row : row + 1])[0])
    with pytest.raises(ValueError, match="start=3000"):
        env.reset(options={"start": 3_000})
    with pytest.raises(ValueError, match="action 4"):
        env.step(4)


def test_episodes_are_truncated_at_the_window_and_at_the_pairs_end(arrays, normaliser):
    env = PairReplayEnv(arrays, normaliser, episode_steps=5)
    env.reset(seed=0, options={"start": 0})
    flags = [env.step(0)[3] for _ in range(5)]
    assert flags == [False, False, False, False, True]
    last = int(np.flatnonzero(arrays.codes == arrays.codes[0]).max())
    env.reset(options={"start": last})
    obs, _, terminated, truncated, info = env.step(1)
    assert truncated and not terminated and info["row"] == last
    np.testing.assert_array_equal(obs, normaliser.apply(arrays.features[last : last + 1])[0])


def test_random_starts_are_seeded(arrays, normaliser):
    env = PairReplayEnv(arrays, normaliser)
    starts = [env.reset(seed=42)[1]["row"] for _ in range(2)]
    others = [env.reset()[1]["row"] for _ in range(20)]
    assert starts[0] == starts[1] and len(set(others)) > 10


def test_the_vector_environment_equals_single_environments_with_the_same_seeds(arrays, normaliser):
    n_envs, steps, seed = 4, 400, 11
    venv = PairReplayVecEnv(arrays, normaliser, n_envs=n_envs, episode_steps=16)
    venv.seed(seed)
    obs = venv.reset()
    actions = np.random.default_rng(0).integers(0, venv.action_space.n, size=(steps, n_envs))
    vec_obs, vec_rewards, vec_dones, vec_infos = [obs], [], [], []
    for step_actions in actions:
        obs, rewards, dones, infos = venv.step(step_actions)
        assert obs.dtype == np.float32 and rewards.dtype == np.float32 and dones.dtype == bool
        vec_obs.append(obs)
        vec_rewards.append(rewards)
        vec_dones.append(dones)
        vec_infos.append(infos)
    finished = 0
    for i in range(n_envs):
        env = PairReplayEnv(arrays, normaliser, episode_steps=16)
        obs, _ = env.reset(seed=seed + i)
        np.testing.assert_array_equal(vec_obs[0][i], obs)
        episode_return, length = 0.0, 0
        for t in range(steps):
            obs, reward, _, truncated, _ = env.step(actions[t, i])
            episode_return += reward
            length += 1
            assert vec_rewards[t][i] == np.float32(reward) and vec_dones[t][i] == truncated
            if truncated:
                info = vec_infos[t][i]
                np.testing.assert_array_equal(info["terminal_observation"], obs)
                assert info["TimeLimit.truncated"] and info["episode"]["l"] == length
                assert info["episode"]["r"] == pytest.approx(episode_return, rel=1e-5, abs=1e-4)
                obs, _ = env.reset()
                episode_return, length = 0.0, 0
                finished += 1
            else:
                assert vec_infos[t][i] == {}
            np.testing.assert_array_equal(vec_obs[t + 1][i], obs)
    assert finished > 4 * steps / 16 * 0.9  # most episodes end at the window, some at a pair's end


def test_vector_environment_start_options_and_attributes(arrays, normaliser):
    venv = PairReplayVecEnv(arrays, normaliser, n_envs=3, episode_steps=8, reward_scale=2.0)
    venv.set_options({"start": 7})
    np.testing.assert_array_equal(venv.reset(), normaliser.apply(arrays.features[[7, 7, 7]]))
    _, rewards, _, _ = venv.step(np.array([1, 2, 3]))
    np.testing.assert_allclose(rewards, 2.0 * arrays.rewards[7, [1, 2, 3]], rtol=1e-6)
    assert venv.get_attr("episode_steps") == [8, 8, 8] and venv.get_attr("render_mode", indices=1) == [None]
    assert venv.env_is_wrapped(object) == [False, False, False]
    venv.set_attr("episode_steps", 4)
    assert venv.get_attr("episode_steps", indices=[0]) == [4]
    with pytest.raises(ValueError, match="shared"):
        venv.set_attr("episode_steps", 2, indices=[0])
    with pytest.raises(NotImplementedError, match="reset"):
        venv.env_method("reset")
    with pytest.raises(ValueError, match="not all in"):
        venv.step(np.array([0, 4, 0]))
    with pytest.raises(ValueError, match="n_envs"):
        PairReplayVecEnv(arrays, normaliser, n_envs=0)
    with pytest.raises(ValueError, match="episode_steps"):
        PairReplayEnv(arrays, normaliser, episode_steps=0)
    with pytest.raises(ValueError, match="normaliser has 2 features"):
        PairReplayEnv(arrays, Normaliser((0.0, 0.0), (1.0, 1.0)))
