"""Figures for the learning stage: how fast the policy trains and how fast it is evaluated.

``rl_train_steps_per_s`` trains the DEFAULT ``TrainConfig`` (PPO) on 20,000 synthetic opportunities
with 20 features and reports total timesteps / wall time of ``model.learn()`` (rollouts and
gradient updates included), the median of 3 seeds; details: each run, the policy's held-out P&L
against always-take and never-take, so speed is never bought with a policy that learns nothing.
``policy_eval_1m_decisions_s`` evaluates an exported policy over 1,000,000 decisions: batched ONNX
scoring (onnxruntime), ``execution.execute`` (pairs blocked while a trade is open) and the realised
P&L per row; median of 3.

``synthetic_opportunities`` builds the opportunities frame both figures (and the learning tests)
use, with the structure the simulator plants: stale quotes (a large ``buy_age_ms``/``sell_age_ms``)
show phantom spreads, larger than real ones, that lose money; a fresh dislocation persists when the
lifted leg's order-book imbalance agrees with the trade's direction and reverts otherwise; depth
decides the best size, because slippage grows with size against the displayed depth.
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import UTC, datetime

import numpy as np
import polars as pl

from arbiter.platform.learning.data import OpportunityArrays
from arbiter.platform.learning.execution import ExecutionConfig, oracle_actions, realised
from arbiter.platform.learning.export import PolicyScorer, export_onnx
from arbiter.platform.learning.train import TrainConfig, TrainedPolicy, train_policy

REPEATS = 3
TRAIN_ROWS = 20_000
EVAL_ROWS = 1_000_000
PAIRS = (
    "BTC:binance:spot|coinbase:spot",
    "BTC:binance:spot|kraken:spot",
    "BTC:binance:perp|coinbase:spot",
    "ETH:binance:spot|coinbase:spot",
    "ETH:coinbase:spot|kraken:spot",
    "SOL:binance:spot|kraken:spot",
)
FEATURES = (
    "net_spread_bps", "fee_bps", "direction", "buy_imbalance", "sell_imbalance", "buy_age_ms", "sell_age_ms",
    "buy_unchanged_ms", "sell_unchanged_ms", "buy_depth_notional", "sell_depth_notional", "buy_vol_bps",
    "sell_vol_bps", "lead_lag_bps", "can_move_funds", "buy_spread_bps", "sell_spread_bps", "ret_1s_bps",
    "ret_10s_bps", "trade_rate_per_s",
)  # fmt: skip
EXECUTION = ExecutionConfig()
EVAL_THREADS = 2  # onnxruntime threads for the 1M-decision evaluation (this machine has 2 cores)
HOLDOUT_START = datetime(2026, 11, 22, tzinfo=UTC)


def synthetic_opportunities(
    rows: int = TRAIN_ROWS, seed: int = 0, start: datetime = datetime(2026, 11, 21, tzinfo=UTC)
) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """An ``opportunities`` frame with planted, learnable structure (see the module docstring), in
    decision order, and its feature columns. About a fifth of the rows are stale phantoms; among
    fresh rows, persistence follows ``direction * buy_imbalance``."""
    rng = np.random.default_rng(seed)
    n = rows
    pair_index = rng.choice(len(PAIRS), size=n, p=np.array([3, 2, 2, 3, 2, 1]) / 13)
    gaps_ns = rng.exponential(0.2e9, size=n).astype(np.int64) + 1_000_000
    decision_ns = np.datetime64(start.replace(tzinfo=None), "ns").astype(np.int64) + np.cumsum(gaps_ns)
    horizon_ns = (0.05e9 + rng.uniform(1.0e9, 3.0e9, size=n)).astype(np.int64)
    direction = rng.choice([-1.0, 1.0], size=n)
    stale_leg = rng.uniform(size=n) < 0.2
    stale_buy = stale_leg & (rng.uniform(size=n) < 0.5)
    stale_sell = stale_leg & ~stale_buy
    buy_age = np.where(stale_buy, rng.lognormal(np.log(4_000), 0.5, n), rng.exponential(150, n))
    sell_age = np.where(stale_sell, rng.lognormal(np.log(4_000), 0.5, n), rng.exponential(150, n))
    buy_unchanged = buy_age + rng.exponential(300, n)
    sell_unchanged = sell_age + rng.exponential(300, n)
    spread = np.where(stale_leg, 2.0 + rng.exponential(9.0, n), 0.2 + rng.exponential(4.0, n))
    buy_imbalance = rng.uniform(-1, 1, n)
    sell_imbalance = rng.uniform(-1, 1, n)
    persist = rng.uniform(size=n) < 1 / (1 + np.exp(-6.0 * direction * buy_imbalance))
    buy_depth = rng.lognormal(np.log(40_000), 0.7, n)
    sell_depth = rng.lognormal(np.log(40_000), 0.7, n)
    buy_vol = rng.lognormal(np.log(3.0), 0.4, n)
    sell_vol = rng.lognormal(np.log(3.0), 0.4, n)
    noise = rng.normal(0, 1.0, n) * (buy_vol + sell_vol) / 4
    net_pnl_bps = np.where(
        stale_leg,
        -0.8 * spread - 4.0 + noise,
        np.where(persist, spread - 2.0 + noise, -2.5 - 0.3 * spread + noise),
    )
    fee_by_pair = np.array([20.0, 36.0, 22.0, 20.0, 42.0, 36.0])
    funds_by_pair = np.array([1.0, 1.0, 0.0, 1.0, 1.0, 0.0])
    frame = pl.DataFrame(
        {
            "symbol": np.array([p.split(":")[0] for p in PAIRS])[pair_index],
            "pair": np.array(PAIRS)[pair_index],
            "decision_ts": decision_ns,
            "exit_ts": decision_ns + horizon_ns,
            "net_spread_bps": spread,
            "fee_bps": fee_by_pair[pair_index],
            "direction": direction,
            "buy_imbalance": buy_imbalance,
            "sell_imbalance": sell_imbalance,
            "buy_age_ms": buy_age,
            "sell_age_ms": sell_age,
            "buy_unchanged_ms": buy_unchanged,
            "sell_unchanged_ms": sell_unchanged,
            "buy_depth_notional": buy_depth,
            "sell_depth_notional": sell_depth,
            "buy_vol_bps": buy_vol,
            "sell_vol_bps": sell_vol,
            "lead_lag_bps": rng.normal(0, 2.0, n),
            "can_move_funds": funds_by_pair[pair_index],
            "buy_spread_bps": rng.lognormal(np.log(1.0), 0.5, n),
            "sell_spread_bps": rng.lognormal(np.log(1.0), 0.5, n),
            "ret_1s_bps": rng.normal(0, 1.5, n),
            "ret_10s_bps": rng.normal(0, 4.0, n),
            "trade_rate_per_s": rng.lognormal(np.log(5.0), 0.8, n),
            "net_pnl_bps": net_pnl_bps,
            "depth_notional": np.minimum(buy_depth, sell_depth),
        }
    ).with_columns(pl.col("decision_ts", "exit_ts").cast(pl.Datetime("ns", "UTC")))
    # returns are unknown on each pair's first rows, as at the very start of real data
    first_rows = pl.int_range(pl.len()).over("pair") < 3
    frame = frame.with_columns(
        pl.when(first_rows).then(None).otherwise(pl.col(c)).alias(c) for c in ("ret_1s_bps", "ret_10s_bps")
    )
    return frame, FEATURES


def split_in_time(frame: pl.DataFrame, train_share: float = 0.7) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The first ``train_share`` of rows (by decision time) and the later rest."""
    cut = int(frame.height * train_share)
    return frame.head(cut), frame.slice(cut)


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def held_out_pnl(trained: TrainedPolicy, holdout: OpportunityArrays) -> dict:
    """Realised P&L on ``holdout`` of the trained policy's greedy actions, always-take (each size),
    never-take (0) and the oracle, in quote currency."""

    def pnl(actions: np.ndarray) -> float:
        _, per_row = realised(actions, holdout.pnl, holdout.codes, holdout.decision_ns, holdout.exit_ns)
        return round(float(per_row.sum()), 2)

    n = holdout.n_rows
    return {
        "policy": pnl(trained.actions(holdout.features)),
        "always_take": {str(size): pnl(np.full(n, k + 1)) for k, size in enumerate(holdout.execution.sizes)},
        "never_take": 0.0,
        "oracle": pnl(oracle_actions(holdout.pnl, holdout.codes, holdout.decision_ns, holdout.exit_ns)),
    }


def rl_train_steps_per_s() -> dict:
    """PPO with the default TrainConfig on 20,000 synthetic rows: timesteps / learn() wall time,
    median of 3 seeds; details: each run, and its P&L on 10,000 later held-out rows."""
    config = TrainConfig()
    frame, columns = synthetic_opportunities(TRAIN_ROWS, seed=0)
    holdout_frame, _ = synthetic_opportunities(TRAIN_ROWS // 2, seed=1, start=HOLDOUT_START)
    holdout = OpportunityArrays.from_frame(holdout_frame, columns, EXECUTION)
    runs = []
    for seed in range(REPEATS):
        _progress(f"  training PPO, seed {seed}: {config.total_timesteps:,} steps")
        trained = train_policy(frame, columns, EXECUTION, config.model_copy(update={"seed": seed}))
        runs.append(
            {
                "seed": seed,
                "steps_per_s": round(trained.steps_per_s),
                "learn_s": round(trained.learn_seconds, 2),
                "timesteps": trained.timesteps,
                "holdout_pnl": held_out_pnl(trained, holdout),
            }
        )
    return {
        "value": round(statistics.median(r["steps_per_s"] for r in runs)),
        "unit": "steps/s",
        "target": 5_000,
        "rows": TRAIN_ROWS,
        "features": len(columns),
        "config": config.model_dump(),
        "torch_threads": config.torch_threads,
        "runs": runs,
    }


def policy_eval_1m_decisions_s() -> dict:
    """1,000,000 decisions: ONNX scoring in chunks, execute (pair blocking), realised P&L; median of 3."""
    frame, columns = synthetic_opportunities(TRAIN_ROWS, seed=0)
    trained = train_policy(frame, columns, EXECUTION, TrainConfig(total_timesteps=20_000))
    scorer = PolicyScorer(export_onnx(trained), intra_op_threads=EVAL_THREADS)
    _progress(f"  building {EVAL_ROWS:,} decisions")
    start = time.perf_counter()
    decisions = OpportunityArrays.from_frame(synthetic_opportunities(EVAL_ROWS, seed=2)[0], columns, EXECUTION)
    prepare_s = time.perf_counter() - start
    times, takes, pnl = [], 0, 0.0
    for _ in range(REPEATS):
        start = time.perf_counter()
        actions = scorer.actions(decisions.features)
        executed, per_row = realised(actions, decisions.pnl, decisions.codes, decisions.decision_ns, decisions.exit_ns)
        pnl = float(per_row.sum())
        times.append(time.perf_counter() - start)
        takes = int((executed > 0).sum())
    return {
        "value": round(statistics.median(times), 3),
        "unit": "s",
        "target_s": 5.0,
        "decisions": EVAL_ROWS,
        "features": len(columns),
        "onnx_threads": EVAL_THREADS,
        "chunk_rows": scorer.chunk_rows,
        "runs_s": [round(t, 3) for t in times],
        "executed_takes": takes,
        "pnl": round(pnl, 2),
        "prepare_arrays_s": round(prepare_s, 3),
    }
