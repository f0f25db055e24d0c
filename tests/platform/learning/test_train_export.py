"""Training (PPO and DQN) on synthetic opportunities with planted structure, judged on later held-out
rows by realised P&L, and the ONNX export checked against torch."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError
from stable_baselines3 import DQN, PPO

from arbiter.platform.learning.data import OpportunityArrays
from arbiter.platform.learning.execution import ExecutionConfig, oracle_actions, realised
from arbiter.platform.learning.export import PolicyScorer, export_onnx, onnx_parity, torch_scores
from arbiter.platform.learning.train import TrainConfig, TrainedPolicy, curve_plot, train_policy
from benchmarks.learning_figures import split_in_time, synthetic_opportunities

EXECUTION = ExecutionConfig()


@pytest.fixture(scope="module")
def windows():
    frame, columns = synthetic_opportunities(20_000, seed=0)
    train, holdout = split_in_time(frame)
    return train, OpportunityArrays.from_frame(holdout, columns, EXECUTION), columns


@pytest.fixture(scope="module")
def ppo(windows) -> TrainedPolicy:
    train, _, columns = windows
    return train_policy(train, columns, EXECUTION, TrainConfig(total_timesteps=60_000))


@pytest.fixture(scope="module")
def dqn(windows) -> TrainedPolicy:
    train, _, columns = windows
    return train_policy(train, columns, EXECUTION, TrainConfig(algorithm="dqn", total_timesteps=30_000))


def _pnl(holdout: OpportunityArrays, actions: np.ndarray) -> float:
    _, per_row = realised(actions, holdout.pnl, holdout.codes, holdout.decision_ns, holdout.exit_ns)
    return float(per_row.sum())


def _beats_the_trivial_baselines(trained: TrainedPolicy, holdout: OpportunityArrays) -> float:
    policy = _pnl(holdout, trained.actions(holdout.features))
    always = [_pnl(holdout, np.full(holdout.n_rows, k)) for k in range(1, EXECUTION.n_actions)]
    assert policy > 0.0, "no better than never-take"
    assert policy > max(always), f"no better than always-take {always}"
    return policy


def test_ppo_learns_the_planted_structure(windows, ppo):
    _, holdout, columns = windows
    assert isinstance(ppo.model, PPO) and ppo.feature_columns == columns
    policy = _beats_the_trivial_baselines(ppo, holdout)
    oracle = _pnl(holdout, oracle_actions(holdout.pnl, holdout.codes, holdout.decision_ns, holdout.exit_ns))
    assert policy > 0.15 * oracle
    # it learned to leave stale quotes (phantom spreads) alone
    actions = ppo.actions(holdout.features)
    age = np.maximum(
        holdout.features[:, columns.index("buy_age_ms")], holdout.features[:, columns.index("sell_age_ms")]
    )
    assert (actions[age > 2_000] > 0).mean() < 0.05 < (actions[age < 500] > 0).mean()


def test_training_records_its_curve_speed_and_window(windows, ppo):
    train, _, _ = windows
    assert ppo.timesteps >= 60_000 and ppo.learn_seconds > 0
    assert ppo.steps_per_s == pytest.approx(ppo.timesteps / ppo.learn_seconds)
    assert ppo.training_rows == train.height
    assert ppo.training_window == (train["decision_ts"].min(), train["decision_ts"].max())
    steps = [s for s, _ in ppo.curve]
    assert 10 <= len(steps) <= 101 and steps == sorted(steps)
    rewards = [r for _, r in ppo.curve]
    assert np.mean(rewards[-5:]) > np.mean(rewards[:3])  # the random start loses money; the end does not
    png = curve_plot(ppo.curve)
    assert png.startswith(b"\x89PNG") and curve_plot([]).startswith(b"\x89PNG")


def test_dqn_is_selectable_and_learns(windows, dqn):
    _, holdout, _ = windows
    assert isinstance(dqn.model, DQN) and dqn.curve
    _beats_the_trivial_baselines(dqn, holdout)


def test_the_same_seed_gives_the_same_policy(windows):
    train, holdout, columns = windows
    small = train.head(3_000)
    config = TrainConfig(total_timesteps=4_096, n_envs=16)
    first = train_policy(small, columns, EXECUTION, config)
    second = train_policy(small, columns, EXECUTION, config)
    other = train_policy(small, columns, EXECUTION, config.model_copy(update={"seed": 1}))
    np.testing.assert_array_equal(first.scores(holdout.features), second.scores(holdout.features))
    np.testing.assert_array_equal(first.actions(holdout.features), second.actions(holdout.features))
    assert first.curve == second.curve
    assert not np.array_equal(first.scores(holdout.features), other.scores(holdout.features))


@pytest.mark.parametrize("which", ["ppo", "dqn"])
def test_onnx_equals_torch_on_held_out_rows(windows, which, request):
    _, holdout, columns = windows
    trained: TrainedPolicy = request.getfixturevalue(which)
    model = export_onnx(trained)
    assert onnx_parity(trained, model, holdout.features) <= 1e-5
    scorer = PolicyScorer(model, chunk_rows=1_000)  # several chunks
    assert scorer.feature_columns == columns and scorer.algorithm == which and scorer.sizes == EXECUTION.sizes
    assert scorer.score_kind == ("logits" if which == "ppo" else "q_values")
    np.testing.assert_array_equal(scorer.actions(holdout.features), trained.actions(holdout.features))
    confidence = scorer.confidence(holdout.features)
    assert ((confidence >= 1 / EXECUTION.n_actions - 1e-6) & (confidence <= 1)).all()
    # nulls and extreme values go through the graph exactly as through the numpy normaliser
    odd = holdout.features[:50].copy()
    odd[::2, 3] = np.nan
    odd[1::2, 5] = 1e12
    assert np.abs(scorer.scores(odd) - torch_scores(trained, odd)).max() <= 1e-5


def test_bad_scoring_input_and_bad_config_are_refused(ppo):
    model = export_onnx(ppo)
    with pytest.raises(ValueError, match=r"expects \(rows, 20\) features \(net_spread_bps"):
        PolicyScorer(model).scores(np.zeros((3, 19), dtype=np.float32))
    with pytest.raises(ValueError, match="not an ONNX model"):
        PolicyScorer(b"not a model")
    with pytest.raises(ValidationError, match="net_arch"):
        TrainConfig(net_arch="64,wide")
    with pytest.raises(ValidationError, match="algorithm"):
        TrainConfig(algorithm="a2c")
    with pytest.raises(ValidationError, match="n_envs"):
        TrainConfig(n_envs=0)
    with pytest.raises(ValidationError, match="learning_rat"):
        TrainConfig(learning_rat=0.1)


def test_training_refuses_bad_frames(windows):
    train, _, columns = windows
    with pytest.raises(ValueError, match=r"missing column.*buy_imbalance"):
        train_policy(train.drop("buy_imbalance"), columns, EXECUTION, TrainConfig(total_timesteps=64))
    with pytest.raises(ValueError, match="empty"):
        train_policy(train.head(0), columns, EXECUTION, TrainConfig(total_timesteps=64))
