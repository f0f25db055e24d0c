"""Baselines and metrics on synthetic opportunities with planted structure: stale quotes make
phantom spreads (large spread, strongly negative outcome), and a dislocation persists only when the
buy leg's imbalance agrees with the direction (else it reverts)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from arbiter.platform.learning.baselines import (
    fit_always_take,
    fit_baselines,
    fit_logistic,
    fit_never_take,
    fit_oracle,
    fit_threshold_rule,
    fit_threshold_rule_fresh,
    params_json,
    take_pnl,
    threshold_pnl,
)
from arbiter.platform.learning.execution import ExecutionConfig
from arbiter.platform.learning.metrics import Ledger, figures, ledger, max_drawdown, outcomes, sharpe

FEATURES = (
    "net_spread_bps",
    "fee_bps",
    "direction",
    "buy_imbalance",
    "sell_imbalance",
    "buy_age_ms",
    "sell_age_ms",
    "buy_unchanged_ms",
    "sell_unchanged_ms",
    "buy_depth_notional",
    "sell_depth_notional",
    "buy_vol_bps",
    "sell_vol_bps",
    "lead_lag_bps",
    "can_move_funds",
)
CONFIG = ExecutionConfig()
STALE_MS = 1_000.0  # planted: a leg older than this is a phantom quote


def synthetic(n: int = 6_000, seed: int = 0, n_pairs: int = 4, phantom_share: float = 0.3) -> pl.DataFrame:
    """Opportunity rows in decision order with the planted structure described above."""
    rng = np.random.default_rng(seed)
    start = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp()) * 10**9
    decision = start + np.cumsum(rng.exponential(0.5e9, n)).astype(np.int64)
    exit_ = decision + int(1.5e9) + rng.integers(0, int(0.5e9), n)
    direction = rng.choice([-1.0, 1.0], n)
    buy_imbalance, sell_imbalance = rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)
    phantom = rng.random(n) < phantom_share
    spread = 1.0 + rng.exponential(4.0, n) + np.where(phantom, rng.exponential(6.0, n), 0.0)
    ages = rng.exponential(150.0, (n, 2))
    stale_leg = rng.integers(0, 2, n)
    ages[phantom, stale_leg[phantom]] = STALE_MS * 2 + rng.exponential(3_000.0, phantom.sum())
    unchanged = ages + rng.exponential(100.0, (n, 2))
    persist = direction * buy_imbalance > 0
    noise = rng.normal(0.0, 1.0, n)
    net_pnl = np.where(phantom, -spread - 3.0 + noise, np.where(persist, spread - 2.0 + noise, -3.0 + noise))
    depth = np.exp(rng.normal(np.log(100_000.0), 0.4, n))
    frame = pl.DataFrame(
        {
            "symbol": "BTC-USDT",
            "pair": [f"venue{p}:spot|venue{p + 1}:spot" for p in rng.integers(0, n_pairs, n)],
            "decision_ts": pl.Series(decision).cast(pl.Datetime("ns", "UTC")),
            "exit_ts": pl.Series(exit_).cast(pl.Datetime("ns", "UTC")),
            "net_spread_bps": spread,
            "fee_bps": np.full(n, 10.0),
            "direction": direction,
            "buy_imbalance": buy_imbalance,
            "sell_imbalance": sell_imbalance,
            "buy_age_ms": ages[:, 0],
            "sell_age_ms": ages[:, 1],
            "buy_unchanged_ms": unchanged[:, 0],
            "sell_unchanged_ms": unchanged[:, 1],
            "buy_depth_notional": depth * (1 + rng.random(n)),
            "sell_depth_notional": depth * (1 + rng.random(n)),
            "buy_vol_bps": rng.exponential(3.0, n),
            "sell_vol_bps": rng.exponential(3.0, n),
            "lead_lag_bps": rng.normal(0.0, 1.0, n),
            "can_move_funds": rng.random(n) < 0.9,
            "net_pnl_bps": net_pnl,
            "depth_notional": depth,
        }
    )
    # features are null where history is missing: returns at the start, an age never seen on 1% of rows
    missing_age = rng.random(n) < 0.01
    return frame.with_columns(
        pl.when(pl.int_range(pl.len()) < 5).then(None).otherwise(pl.col("lead_lag_bps")).alias("lead_lag_bps"),
        pl.when(pl.Series(missing_age)).then(None).otherwise(pl.col("buy_age_ms")).alias("buy_age_ms"),
    )


def planted_actions(frame: pl.DataFrame, action: int = 3) -> np.ndarray:
    """What knowing the planted structure does: fresh quotes, imbalance agreeing, spread over cost."""
    take = frame.select(
        (pl.max_horizontal("buy_age_ms", "sell_age_ms").fill_null(np.inf) <= STALE_MS)
        & (pl.col("direction") * pl.col("buy_imbalance") > 0)
        & (pl.col("net_spread_bps") > 2.5)
    ).to_series()
    return np.where(take.to_numpy(), action, 0).astype(np.int64)


def net(frame: pl.DataFrame, actions: np.ndarray) -> float:
    return float(ledger(actions, outcomes(frame, CONFIG), CONFIG).pnl.sum())


@pytest.fixture(scope="module")
def split():
    frame = synthetic()
    return frame.slice(0, 4_000), frame.slice(4_000)


def test_compiled_grid_search_agrees_with_execution(split):
    train, _ = split
    window = outcomes(train, CONFIG)
    spread = train["net_spread_bps"].to_numpy()
    gate = train["buy_imbalance"].to_numpy() > -0.5
    thresholds = np.array([0.0, 2.0, 5.0, 50.0, np.inf])
    grid = threshold_pnl(spread, gate, thresholds, window)
    for row, theta in zip(grid, thresholds, strict=True):
        assert row == pytest.approx(take_pnl(gate & (spread > theta), window))
    assert (grid[-1] == 0).all() and grid[-2].tolist() != grid[0].tolist()


def test_fresh_rule_beats_plain_rule_when_phantom_spreads_are_planted(split):
    train, holdout = split
    plain, fresh = fit_threshold_rule(train, CONFIG), fit_threshold_rule_fresh(train, CONFIG)
    assert math.isfinite(fresh.params["max_age_ms"]) or math.isfinite(fresh.params["max_unchanged_ms"])
    assert fresh.params["train_net_pnl"] > plain.params["train_net_pnl"]
    assert net(holdout, fresh.act(holdout)) > 1.2 * max(net(holdout, plain.act(holdout)), 0.0)
    # the tuned rule is the best of its grid: the plain rule's tuned P&L is its training figure
    assert net(train, plain.act(train)) == pytest.approx(plain.params["train_net_pnl"])
    assert net(train, fresh.act(train)) == pytest.approx(fresh.params["train_net_pnl"])


def test_null_ages_count_as_stale_under_a_finite_limit(split):
    train, _ = split
    fresh = fit_threshold_rule_fresh(train, CONFIG)
    rows = train.filter(pl.col("buy_age_ms").is_null() & (pl.col("net_spread_bps") > fresh.params["theta_bps"]))
    assert rows.height > 0 and math.isfinite(fresh.params["max_age_ms"])  # the planted data tunes a finite limit
    assert (fresh.act(rows) == 0).all()


def test_logistic_learns_something_and_reports_its_parameters(split):
    train, holdout = split
    model = fit_logistic(train, FEATURES, CONFIG)
    assert set(model.params["coef_standardised"]) == set(FEATURES)
    assert net(holdout, model.act(holdout)) > net(holdout, fit_always_take(CONFIG).act(holdout))
    assert net(train, model.act(train)) == pytest.approx(model.params["train_net_pnl"])
    assert "logistic: p_star=" in model.describe()
    params_json(model.params)  # strict JSON, no NaN/inf


def test_baselines_act_on_features_only_and_fit_deterministically(split):
    train, holdout = split
    fitted = fit_baselines(train, FEATURES, CONFIG)
    again = fit_baselines(train, FEATURES, CONFIG)
    assert {k: params_json(v.params) for k, v in fitted.items()} == {k: params_json(v.params) for k, v in again.items()}
    # acting reads no outcome (only the oracle does): same actions when the outcomes are scrambled
    scrambled = holdout.with_columns(pl.col("net_pnl_bps").shuffle(seed=1), pl.col("depth_notional") * 0.1)
    for name in ("threshold_rule", "threshold_rule_fresh", "logistic", "always_take", "never_take"):
        assert (fitted[name].act(holdout) == fitted[name].act(scrambled)).all()
    assert not (fitted["oracle"].act(holdout) == fitted["oracle"].act(scrambled)).all()


def test_oracle_beats_every_baseline_and_never_take_earns_nothing(split):
    train, holdout = split
    fitted = fit_baselines(train, FEATURES, CONFIG)
    for frame in (train, holdout):
        best = net(frame, fitted["oracle"].act(frame))
        assert best > 0
        for name, strategy in fitted.items():
            assert net(frame, strategy.act(frame)) <= best + 1e-9, name
        assert net(frame, planted_actions(frame)) <= best + 1e-9
    book = ledger(fit_never_take().act(holdout), outcomes(holdout, CONFIG), CONFIG)
    values = figures(book, CONFIG, oracle_net_pnl=123.0)
    assert values["net_pnl"] == 0 and values["oracle_share"] == 0 and values["trades"] == 0
    assert values["hit_rate"] is None and values["sharpe"] == 0 and values["turnover"] == 0
    assert fit_oracle(CONFIG).params == {} and fit_always_take(CONFIG).params == {"size": 1.0}


def test_metrics_by_hand():
    minute = 60 * 10**9
    book = Ledger(
        actions=np.array([0, 1, 2, 0, 3, 1]),
        pnl=np.array([0.0, 10.0, -5.0, 0.0, -10.0, 20.0]),
        decision_ns=np.array([0, 10, minute, minute + 5, 3 * minute, 3 * minute + 1]),
        traded=CONFIG.size_notional()[[0, 1, 2, 0, 3, 1]],
    )
    values = figures(book, CONFIG, oracle_net_pnl=60.0)
    assert values["net_pnl"] == 15.0
    assert values["oracle_share"] == 0.25
    # cumulative 0, 10, 5, 5, -5, 15: peak 10 to trough -5
    assert values["max_drawdown"] == 15.0
    assert values["hit_rate"] == 0.5  # takes earn 10, -5, -10, 20
    # traded per leg 2,500 + 5,000 + 10,000 + 2,500 = 20,000; two legs, in and out: 80,000 / 10,000
    assert values["turnover"] == 8.0
    # minute sums 10, -5, 0 (empty minute 2 counts), 10: mean 3.75, sample std 7.5
    assert values["sharpe"] == pytest.approx(0.5 * math.sqrt(525_600))
    assert (values["trades"], values["decisions"]) == (4, 6)
    assert figures(book, CONFIG, oracle_net_pnl=0.0)["oracle_share"] is None
    assert max_drawdown(np.array([-3.0, 1.0])) == 3.0  # a first loss is a drawdown from 0
    assert max_drawdown(np.array([1.0, 2.0])) == 0.0
    # zero variance guards: a flat P&L per minute, a single minute, nothing at all
    flat = np.array([0, minute, 2 * minute])
    assert sharpe(np.array([5.0, 5.0, 5.0]), flat) == 0.0
    assert sharpe(np.array([5.0, -1.0]), np.array([0, 10])) == 0.0
    assert sharpe(np.zeros(0), np.zeros(0, dtype=np.int64)) == 0.0


def test_ledger_respects_blocking_and_rejects_bad_actions(split):
    _, holdout = split
    window = outcomes(holdout, CONFIG)
    everything = ledger(np.full(holdout.height, 3), window, CONFIG)
    assert 0 < (everything.actions > 0).sum() < holdout.height  # takes inside an open trade become skips
    with pytest.raises(ValueError, match="expected"):
        ledger(np.zeros(3, dtype=np.int64), window, CONFIG)
    with pytest.raises(ValueError, match=r"in \[0, 3\]"):
        ledger(np.full(holdout.height, 4), window, CONFIG)
    with pytest.raises(ValueError, match="integers"):
        ledger(np.full(holdout.height, 0.5), window, CONFIG)


def test_bad_frames_get_clear_errors(split):
    train, _ = split
    with pytest.raises(ValueError, match=r"null value.*net_pnl_bps"):
        fit_threshold_rule(train.with_columns(pl.lit(None, pl.Float64).alias("net_pnl_bps")), CONFIG)
    with pytest.raises(ValueError, match=r"missing column.*depth_notional"):
        fit_threshold_rule(train.drop("depth_notional"), CONFIG)
    with pytest.raises(ValueError, match="not sorted by decision_ts"):
        fit_threshold_rule(train.reverse(), CONFIG)
    with pytest.raises(ValueError, match="missing feature column 'nope'"):
        fit_logistic(train, [*FEATURES, "nope"], CONFIG)
    with pytest.raises(ValueError, match="must be numeric"):
        fit_logistic(train, ["pair"], CONFIG)
