"""Walk-forward folds and the policy_evaluation table on synthetic opportunities with planted
structure (generator in test_baselines), judged with a policy that knows the planted rule."""

from __future__ import annotations

import itertools
import json

import numpy as np
import polars as pl
import pytest

from arbiter.platform.learning.evaluation_plots import cumulative_pnl, evaluation_markdown, oracle_share_bars
from arbiter.platform.learning.metrics import figures, ledger, outcomes
from arbiter.platform.learning.walk_forward import (
    POOLED,
    STRATEGIES,
    Evaluation,
    beats,
    evaluate,
    folds,
)
from tests.platform.learning.test_baselines import CONFIG, FEATURES, planted_actions, synthetic

SEED_ACTION = {0: 2, 1: 3, 2: 1}  # each seed "trains" to a different size, so the seeds' P&L differ
N_FOLDS = 3


def fit_planted(fold: int, train: pl.DataFrame, seed: int):
    assert train.height > 0
    return lambda frame: planted_actions(frame, SEED_ACTION[seed])


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    return synthetic(n=8_000, seed=3)


@pytest.fixture(scope="module")
def evaluation(frame) -> Evaluation:
    return evaluate(frame, FEATURES, CONFIG, N_FOLDS, fit_planted, policy_version="v-test", min_train_share=0.4)


def ns(frame: pl.DataFrame, column: str) -> np.ndarray:
    return frame.get_column(column).dt.epoch("ns").to_numpy()


def test_folds_are_consecutive_later_embargoed_and_expanding(frame):
    parts = folds(frame, 4, min_train_share=0.4)
    longest = int((ns(frame, "exit_ts") - ns(frame, "decision_ts")).max())
    assert [p.number for p in parts] == [1, 2, 3, 4]
    assert sum(p.holdout.height for p in parts) == frame.height - int(np.ceil(0.4 * frame.height))
    assert ns(parts[-1].holdout, "decision_ts")[-1] == ns(frame, "decision_ts")[-1]  # up to the end
    for before, after in itertools.pairwise(parts):
        assert before.holdout_end_ns == after.holdout_start_ns
        assert ns(before.holdout, "decision_ts")[-1] < ns(after.holdout, "decision_ts")[0]
        assert after.train.height > before.train.height  # expanding window
    for p in parts:
        train_decisions, holdout_decisions = ns(p.train, "decision_ts"), ns(p.holdout, "decision_ts")
        assert train_decisions[0] == ns(frame, "decision_ts")[0]
        assert holdout_decisions[0] >= p.holdout_start_ns and holdout_decisions[-1] < p.holdout_end_ns
        assert holdout_decisions[0] - train_decisions[-1] >= longest  # embargo
        assert ns(p.train, "exit_ts").max() <= holdout_decisions[0]  # no training outcome overlaps
    wider = folds(frame, 2, embargo_ns=60 * 10**9)
    assert ns(wider[0].holdout, "decision_ts")[0] - ns(wider[0].train, "decision_ts")[-1] >= 60 * 10**9


def test_folds_refuse_what_they_cannot_do(frame):
    with pytest.raises(ValueError, match="too short for the folds asked"):
        folds(frame.head(200), 30)
    with pytest.raises(ValueError, match="too few"):
        folds(frame.head(5), 1)
    with pytest.raises(ValueError, match="too short for the folds asked"):
        folds(frame.head(500), 2, embargo_ns=10**15)  # the embargo eats the training window
    with pytest.raises(ValueError, match="shorter than the longest decision-to-exit span"):
        folds(frame, 2, embargo_ns=1)
    with pytest.raises(ValueError, match="n_folds"):
        folds(frame, 0)
    with pytest.raises(ValueError, match="min_train_share"):
        folds(frame, 2, min_train_share=1.0)


def test_table_has_every_strategy_window_and_fold(evaluation):
    table = evaluation.policy_evaluation
    assert table.height == len(STRATEGIES) * (2 * N_FOLDS + 1)
    keys = set(table.select("strategy", "window", "fold").iter_rows())
    folds_ = [str(k) for k in range(1, N_FOLDS + 1)]
    expected = {(s, w, f) for s in STRATEGIES for w in ("train", "holdout") for f in folds_}
    assert keys == expected | {(s, "holdout", POOLED) for s in STRATEGIES}
    assert set(table["policy_version"]) == {"v-test"}
    assert table.filter(pl.col("strategy") != "policy")["seeds"].unique().to_list() == [1]
    assert table.filter(pl.col("strategy") == "policy")["seeds"].unique().to_list() == [3]
    for params in table["params"]:
        json.loads(params)
    assert json.loads(evaluation.row("threshold_rule_fresh", "holdout", "1")["params"])["size"] in CONFIG.sizes


def test_policy_figures_are_the_median_over_seeds(evaluation):
    pooled_nets = {seed: 0.0 for seed in SEED_ACTION}
    for part in evaluation.folds:
        window = outcomes(part.holdout, CONFIG)
        per_seed = {}
        oracle = float(ledger(evaluation.baselines[part.number]["oracle"].act(part.holdout), window, CONFIG).pnl.sum())
        for seed, action in SEED_ACTION.items():
            book = ledger(planted_actions(part.holdout, action), window, CONFIG)
            per_seed[seed] = figures(book, CONFIG, oracle)
            pooled_nets[seed] += per_seed[seed]["net_pnl"]
        row = evaluation.row("policy", "holdout", str(part.number))
        for name in ("net_pnl", "sharpe", "max_drawdown", "turnover", "oracle_share", "hit_rate"):
            assert row[name] == pytest.approx(np.median([v[name] for v in per_seed.values()])), name
        ranked = sorted(per_seed, key=lambda s: per_seed[s]["net_pnl"])
        assert row["median_seed"] == ranked[1] == evaluation.median_seeds[part.number]
        assert json.loads(row["params"])["net_pnl_by_seed"] == pytest.approx(
            {str(s): v["net_pnl"] for s, v in per_seed.items()}
        )
    pooled = evaluation.row("policy")
    assert pooled["net_pnl"] == pytest.approx(np.median(list(pooled_nets.values())))
    assert pooled["median_seed"] == evaluation.pooled_median_seed
    assert evaluation.holdout_ledgers["policy"].pnl.sum() == pytest.approx(pooled["net_pnl"])
    # the challenger is the last fold's median-seed policy
    last = evaluation.folds[-1]
    expected = planted_actions(last.holdout, SEED_ACTION[evaluation.median_seeds[last.number]])
    assert (evaluation.challenger()(last.holdout) == expected).all()


def test_pooled_rows_recompute_on_the_concatenated_holdouts(evaluation):
    table = evaluation.policy_evaluation
    for strategy in STRATEGIES[1:]:
        per_fold = table.filter((pl.col("strategy") == strategy) & (pl.col("window") == "holdout"))
        by_fold = per_fold.filter(pl.col("fold") != POOLED)
        pooled = evaluation.row(strategy)
        assert pooled["net_pnl"] == pytest.approx(by_fold["net_pnl"].sum())
        assert pooled["trades"] == by_fold["trades"].sum()
        assert pooled["decisions"] == by_fold["decisions"].sum()
        assert pooled["max_drawdown"] >= by_fold["max_drawdown"].max() - 1e-9


def test_oracle_bounds_every_strategy_and_never_take_earns_nothing(evaluation):
    table = evaluation.policy_evaluation
    oracle = table.filter(pl.col("strategy") == "oracle").select("window", "fold", oracle_pnl="net_pnl")
    joined = table.join(oracle, on=["window", "fold"])
    assert (joined["net_pnl"] <= joined["oracle_pnl"] + 1e-9).all()
    assert (oracle["oracle_pnl"] > 0).all()
    assert (table.filter(pl.col("strategy") == "oracle")["oracle_share"] == 1.0).all()
    never = table.filter(pl.col("strategy") == "never_take")
    assert (never["net_pnl"] == 0).all() and (never["oracle_share"] == 0).all() and (never["trades"] == 0).all()
    assert never["hit_rate"].null_count() == never.height


def test_perturbing_the_last_holdout_changes_no_baseline_parameter(frame, evaluation):
    start = evaluation.folds[-1].holdout_start_ns
    later = pl.col("decision_ts").dt.epoch("ns") >= start
    perturbed = frame.with_columns(
        pl.when(later).then(-pl.col("net_pnl_bps")).otherwise(pl.col("net_pnl_bps")).alias("net_pnl_bps")
    )
    again = evaluate(perturbed, FEATURES, CONFIG, N_FOLDS, fit_planted, policy_version="v-test", min_train_share=0.4)
    before, after = evaluation.policy_evaluation, again.policy_evaluation
    baselines = pl.col("strategy").is_in(["threshold_rule", "threshold_rule_fresh", "logistic"])
    fold_rows = baselines & (pl.col("fold") != POOLED)
    assert before.filter(fold_rows)["params"].to_list() == after.filter(fold_rows)["params"].to_list()
    # the perturbation is real: the last holdout's figures moved, the training windows' did not
    last = (pl.col("window") == "holdout") & (pl.col("fold") == str(N_FOLDS))
    assert before.filter(last)["net_pnl"].to_list() != after.filter(last)["net_pnl"].to_list()
    train = pl.col("window") == "train"
    assert before.filter(train)["net_pnl"].to_list() == after.filter(train)["net_pnl"].to_list()


def test_the_planted_policy_beats_the_best_baseline(evaluation):
    verdict = beats(evaluation)
    assert verdict.passed, verdict.reason
    assert verdict.best_baseline != "oracle" and verdict.policy_net_pnl >= 1.2 * verdict.best_net_pnl
    assert "passes the +20% bar" in verdict.reason
    # a policy 10% above the best baseline does not clear a 20% margin
    table = evaluation.policy_evaluation.with_columns(
        pl.when((pl.col("strategy") == "policy") & (pl.col("fold") == POOLED))
        .then(pl.lit(1.1 * verdict.best_net_pnl))
        .otherwise(pl.col("net_pnl"))
        .alias("net_pnl")
    )
    weak = beats(Evaluation(table, {}, {}, {}, 0, {}, evaluation.folds))
    assert not weak.passed and "+10.0%" in weak.reason and "fails" in weak.reason


def test_a_bad_policy_output_names_the_seed_and_window(frame):
    def broken(fold, train, seed):
        return lambda f: np.zeros(f.height + seed, dtype=np.int64)

    with pytest.raises(ValueError, match=r"policy seed 1 \(fold 1 train\): expected"):
        evaluate(frame, FEATURES, CONFIG, 2, broken, seeds=(0, 1))


def test_plots_are_pngs(evaluation):
    png = b"\x89PNG\r\n\x1a\n"
    assert cumulative_pnl(evaluation.holdout_ledgers).startswith(png)
    assert oracle_share_bars(evaluation.policy_evaluation).startswith(png)
    assert all(v.startswith("![") for v in evaluation_markdown(evaluation).values())
