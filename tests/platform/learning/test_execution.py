"""The execution semantics every strategy is judged by: blocking while a trade is open, and an
oracle that no other sequence of actions can beat."""

from __future__ import annotations

import numpy as np

from arbiter.platform.learning.execution import (
    ExecutionConfig,
    action_pnl,
    action_rewards,
    execute,
    next_free,
    oracle_actions,
    pair_codes,
    realised,
)


def rows(n: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 3, n)
    decision = np.sort(rng.integers(0, 1_000, n))
    pnl = rng.normal(0.0, 1.0, (n, 4))
    pnl[:, 0] = 0.0
    return rng, codes, decision, decision + 100, pnl


def test_next_free_is_the_pairs_first_row_after_the_exit():
    _, codes, decision, exit_, _ = rows()
    free = next_free(codes, decision, exit_)
    for i in range(len(codes)):
        later = [j for j in range(i + 1, len(codes)) if codes[j] == codes[i] and decision[j] >= exit_[i]]
        assert free[i] == (later[0] if later else len(codes))


def test_a_take_while_the_pair_is_open_becomes_a_skip():
    codes = np.array([0, 0, 1, 0])
    decision = np.array([0, 50, 60, 100])
    executed = execute(np.array([1, 2, 3, 1]), codes, decision, decision + 100)
    # row 1 is inside row 0's trade on the same pair; row 2 is another pair; row 3 starts at the exit
    assert executed.tolist() == [1, 0, 3, 1]


def test_no_sequence_of_actions_beats_the_oracle():
    rng, codes, decision, exit_, pnl = rows()
    best_actions = oracle_actions(pnl, codes, decision, exit_)
    executed, best = realised(best_actions, pnl, codes, decision, exit_)
    assert (executed == best_actions).all()  # the oracle never plans a blocked take
    for _ in range(5_000):
        actions = rng.integers(0, 4, len(codes)) * (rng.random(len(codes)) < 0.3)
        assert realised(actions, pnl, codes, decision, exit_)[1].sum() <= best.sum() + 1e-9


def test_pnl_scales_with_size_less_slippage_and_the_penalty_is_training_only():
    config = ExecutionConfig(notional=10_000.0, sizes=(0.5, 1.0), impact_bps=10.0, risk_penalty_bps=2.0)
    pnl = action_pnl(np.array([20.0]), np.array([10_000.0]), config)
    # half size: 5,000 * (20 - 10 * 0.5) bps = 7.5; full size: 10,000 * (20 - 10) bps = 10
    assert np.allclose(pnl, [[0.0, 7.5, 10.0]])
    rewards = action_rewards(np.array([20.0]), np.array([10_000.0]), config)
    assert np.allclose(rewards, [[0.0, 7.5 - 0.5, 10.0 - 2.0]])


def test_pair_codes_follow_first_appearance():
    assert pair_codes(np.array(["b", "a", "b", "c"])).tolist() == [0, 1, 0, 2]
