"""Walk-forward evaluation: a policy and the baselines, trained on the past, judged on what came next.

``folds`` cuts the opportunities (sorted by ``decision_ts``) into consecutive holdout blocks after
an initial training share; fold k trains on every row decided before its holdout less an embargo
(an expanding window) and is judged on its block. The embargo is at least the longest
decision-to-exit span in the frame, so no training row's outcome is still open when the holdout
begins. Blocks hold about equal numbers of rows (cut at row quantiles, expressed as timestamps so
rows decided at the same instant stay together).

``evaluate`` fits every baseline and, once per seed, the policy on each fold's training rows, and
computes ``metrics.figures`` on the training and holdout windows. The policy's figures are the
median over seeds of each figure; pooled figures come from the concatenated holdout ledgers.
The result is the ``policy_evaluation`` table, one row per (strategy, window, fold).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from arbiter.platform.learning.baselines import BASELINES, ORACLE, Fitted, fit_baselines, params_json
from arbiter.platform.learning.execution import ExecutionConfig
from arbiter.platform.learning.metrics import Ledger, check_frame, epoch_ns, figures, ledger, outcomes

POLICY = "policy"
STRATEGIES = (POLICY, *BASELINES, ORACLE)
WINDOWS = ("train", "holdout")
POOLED = "pooled"
FIGURES = ("oracle_share", "net_pnl", "sharpe", "hit_rate", "max_drawdown", "turnover", "trades", "decisions")
SCHEMA = {
    "policy_version": pl.String,
    "strategy": pl.String,
    "window": pl.String,
    "fold": pl.String,
    "oracle_share": pl.Float64,
    "net_pnl": pl.Float64,
    "sharpe": pl.Float64,
    "hit_rate": pl.Float64,
    "max_drawdown": pl.Float64,
    "turnover": pl.Float64,
    "trades": pl.Int64,
    "decisions": pl.Int64,
    "seeds": pl.Int64,
    "median_seed": pl.Int64,
    "params": pl.String,
}

Policy = Callable[[pl.DataFrame], np.ndarray]
FitPolicy = Callable[[int, pl.DataFrame, int], Policy]  # (fold number, training rows, seed)


@dataclass(frozen=True)
class Fold:
    """One walk-forward step: the rows it trains on, the later rows it is judged on."""

    number: int
    train: pl.DataFrame
    holdout: pl.DataFrame
    train_end_ns: int  # training rows are decided before this (holdout start less the embargo)
    holdout_start_ns: int  # holdout rows are decided at or after this ...
    holdout_end_ns: int  # ... and before this (the next fold's start; the frame's end + 1 for the last)

    def describe(self) -> dict[str, Any]:
        """Bounds and sizes for metadata."""
        return {
            "fold": self.number,
            "train_rows": self.train.height,
            "holdout_rows": self.holdout.height,
            "train_end_ns": self.train_end_ns,
            "holdout_start_ns": self.holdout_start_ns,
            "holdout_end_ns": self.holdout_end_ns,
        }


def folds(
    frame: pl.DataFrame,
    n_folds: int,
    min_train_share: float = 0.5,
    embargo_ns: int | None = None,
    min_rows: int = 10,
) -> list[Fold]:
    """Consecutive train -> holdout folds, numbered 1..n_folds (module docstring).

    ``min_train_share``: share of rows before the first holdout. ``embargo_ns``: gap between a
    fold's last training decision and its holdout; defaults to (and may not be shorter than) the
    longest decision-to-exit span. ``min_rows``: fewest rows a training window or holdout may have.
    """
    if n_folds < 1:
        raise ValueError(f"walk-forward: n_folds must be >= 1, got {n_folds}")
    if not 0.0 < min_train_share < 1.0:
        raise ValueError(f"walk-forward: min_train_share must be in (0, 1), got {min_train_share}")
    check_frame(frame)
    n = frame.height
    if n < 2 * min_rows:
        raise ValueError(f"walk-forward: {n} rows is too few for {n_folds} fold(s) of at least {min_rows} rows")
    decision, exit_ = epoch_ns(frame, "decision_ts"), epoch_ns(frame, "exit_ts")
    longest = int(np.max(exit_ - decision))
    if embargo_ns is None:
        embargo_ns = longest
    elif embargo_ns < longest:
        raise ValueError(
            f"walk-forward: embargo_ns={embargo_ns} is shorter than the longest decision-to-exit span {longest} ns;"
            " training outcomes would overlap the holdout"
        )
    first = int(np.ceil(min_train_share * n))
    cuts = [first + round(k * (n - first) / n_folds) for k in range(n_folds)]
    starts = [int(decision[min(c, n - 1)]) for c in cuts] + [int(decision[-1]) + 1]
    out = []
    for k in range(n_folds):
        lo, hi = np.searchsorted(decision, [starts[k], starts[k + 1]], side="left")
        train_end = starts[k] - embargo_ns
        n_train = int(np.searchsorted(decision, train_end, side="left"))
        if hi - lo < min_rows or n_train < min_rows:
            raise ValueError(
                f"walk-forward: fold {k + 1} of {n_folds} would train on {n_train} and hold out {hi - lo} row(s)"
                f" (need >= {min_rows} each; {n} rows, embargo {embargo_ns} ns, min_train_share {min_train_share}):"
                " the frame is too short for the folds asked"
            )
        out.append(
            Fold(
                number=k + 1,
                train=frame.slice(0, n_train),
                holdout=frame.slice(int(lo), int(hi - lo)),
                train_end_ns=train_end,
                holdout_start_ns=starts[k],
                holdout_end_ns=starts[k + 1],
            )
        )
    return out


@dataclass
class Evaluation:
    """What ``evaluate`` found: the table, the pooled holdout ledgers, and the fitted strategies."""

    policy_evaluation: pl.DataFrame
    holdout_ledgers: dict[str, Ledger]  # pooled holdout per strategy; the policy's is its median seed's
    policies: dict[int, dict[int, Policy]]  # fold -> seed -> fitted policy
    median_seeds: dict[int, int]  # fold -> the seed whose holdout net P&L is the median
    pooled_median_seed: int
    baselines: dict[int, dict[str, Fitted]]  # fold -> strategy -> fitted baseline (and oracle)
    folds: list[Fold]

    def challenger(self) -> Policy:
        """The last fold's median-seed policy (trained on the most data)."""
        last = self.folds[-1].number
        return self.policies[last][self.median_seeds[last]]

    def row(self, strategy: str, window: str = "holdout", fold: str = POOLED) -> dict[str, Any]:
        """One row of the table as a dict."""
        hit = self.policy_evaluation.filter(
            (pl.col("strategy") == strategy) & (pl.col("window") == window) & (pl.col("fold") == fold)
        )
        if hit.height != 1:
            raise KeyError(f"policy_evaluation has {hit.height} rows for ({strategy}, {window}, {fold})")
        return hit.row(0, named=True)


def _median(values: list[Any], integer: bool) -> Any:
    present = [v for v in values if v is not None]
    if not present:
        return None
    return statistics.median_low(present) if integer else float(np.median(present))


def _median_seed(net: dict[int, float]) -> int:
    ranked = sorted(net, key=lambda seed: (net[seed], seed))
    return ranked[(len(ranked) - 1) // 2]


def _policy_row(per_seed: dict[int, dict[str, Any]], median_seed: int) -> dict[str, Any]:
    row = {f: _median([per_seed[s][f] for s in per_seed], f in ("trades", "decisions")) for f in FIGURES}
    row["seeds"] = len(per_seed)
    row["median_seed"] = median_seed
    row["params"] = params_json(
        {"median_seed": median_seed, "net_pnl_by_seed": {s: per_seed[s]["net_pnl"] for s in per_seed}}
    )
    return row


def evaluate(
    frame: pl.DataFrame,
    feature_columns: Sequence[str],
    execution: ExecutionConfig,
    n_folds: int,
    fit_policy: FitPolicy,
    seeds: Sequence[int] = (0, 1, 2),
    policy_version: str = "",
    min_train_share: float = 0.5,
    embargo_ns: int | None = None,
    random_state: int = 0,
) -> Evaluation:
    """Walk-forward evaluation of ``fit_policy`` (called as ``fit_policy(fold_number, train_frame, seed)`` once per
    fold and seed, returning a callable from a frame to actions) against the baselines and oracle."""
    if not seeds:
        raise ValueError("walk-forward: at least one seed is needed")
    parts = folds(frame, n_folds, min_train_share=min_train_share, embargo_ns=embargo_ns)
    rows: list[dict[str, Any]] = []
    pooled: dict[str, list[Ledger]] = {name: [] for name in (*BASELINES, ORACLE)}
    pooled_policy: dict[int, list[Ledger]] = {seed: [] for seed in seeds}
    policies: dict[int, dict[int, Policy]] = {}
    baselines: dict[int, dict[str, Fitted]] = {}
    median_seeds: dict[int, int] = {}

    def emit(strategy: str, window: str, fold: str, values: dict[str, Any]) -> None:
        rows.append({"policy_version": policy_version, "strategy": strategy, "window": window, "fold": fold, **values})

    for part in parts:
        fitted = baselines[part.number] = fit_baselines(part.train, feature_columns, execution, random_state)
        trained = policies[part.number] = {seed: fit_policy(part.number, part.train, seed) for seed in seeds}
        per_window: dict[str, tuple[dict[int, dict[str, Any]], dict[str, dict[str, Any]]]] = {}
        for window, data in (("train", part.train), ("holdout", part.holdout)):
            label = f"fold {part.number} {window}"
            rows_out = outcomes(data, execution, label)
            books = {name: ledger(f.act(data), rows_out, execution, f"{name} ({label})") for name, f in fitted.items()}
            oracle_net = float(books[ORACLE].pnl.sum())
            seed_books = {
                seed: ledger(policy(data), rows_out, execution, f"policy seed {seed} ({label})")
                for seed, policy in trained.items()
            }
            per_seed = {seed: figures(book, execution, oracle_net) for seed, book in seed_books.items()}
            per_window[window] = (per_seed, {name: figures(b, execution, oracle_net) for name, b in books.items()})
            if window == "holdout":
                for name, book in books.items():
                    pooled[name].append(book)
                for seed, book in seed_books.items():
                    pooled_policy[seed].append(book)
        median_seeds[part.number] = _median_seed({s: v["net_pnl"] for s, v in per_window["holdout"][0].items()})
        for window in WINDOWS:
            per_seed, by_name = per_window[window]
            emit(POLICY, window, str(part.number), _policy_row(per_seed, median_seeds[part.number]))
            for name, values in by_name.items():
                extra = {"seeds": 1, "median_seed": None, "params": params_json(fitted[name].params)}
                emit(name, window, str(part.number), {**values, **extra})

    books = {name: Ledger.concat(parts_) for name, parts_ in pooled.items()}
    oracle_net = float(books[ORACLE].pnl.sum())
    seed_books = {seed: Ledger.concat(parts_) for seed, parts_ in pooled_policy.items()}
    per_seed = {seed: figures(book, execution, oracle_net) for seed, book in seed_books.items()}
    pooled_seed = _median_seed({s: v["net_pnl"] for s, v in per_seed.items()})
    emit(POLICY, "holdout", POOLED, _policy_row(per_seed, pooled_seed))
    for name, book in books.items():
        params = params_json({"folds": {p.number: baselines[p.number][name].params for p in parts}})
        emit(
            name,
            "holdout",
            POOLED,
            {**figures(book, execution, oracle_net), "seeds": 1, "median_seed": None, "params": params},
        )
    return Evaluation(
        policy_evaluation=pl.DataFrame(rows, schema=SCHEMA),
        holdout_ledgers={POLICY: seed_books[pooled_seed], **books},
        policies=policies,
        median_seeds=median_seeds,
        pooled_median_seed=pooled_seed,
        baselines=baselines,
        folds=parts,
    )


@dataclass(frozen=True)
class Verdict:
    """Whether the policy beat the best baseline on the pooled holdout by the margin asked."""

    passed: bool
    policy_net_pnl: float
    best_baseline: str
    best_net_pnl: float
    required_net_pnl: float
    margin: float
    reason: str


def beats(evaluation: Evaluation, margin: float = 0.2) -> Verdict:
    """The policy's pooled holdout net P&L against the best baseline's (oracle excluded): it passes
    when it is at least ``best + margin * |best|`` and strictly above ``best`` (so a best of 0, which
    never-take guarantees at least, needs a profit)."""
    pooled = evaluation.policy_evaluation.filter((pl.col("window") == "holdout") & (pl.col("fold") == POOLED))
    net = dict(zip(pooled["strategy"].to_list(), pooled["net_pnl"].to_list(), strict=True))
    best_name = max(BASELINES, key=lambda name: net[name])
    best, policy = float(net[best_name]), float(net[POLICY])
    required = best + margin * abs(best)
    passed = policy >= required and policy > best
    if best != 0:
        gap = f"{(policy - best) / abs(best):+.1%} vs the best baseline {best_name} ({best:,.2f})"
    else:
        gap = f"{policy - best:+,.2f} vs the best baseline {best_name} (0)"
    reason = (
        f"policy pooled holdout net P&L {policy:,.2f} is {gap}; "
        f"{'passes' if passed else 'fails'} the +{margin:.0%} bar ({required:,.2f})"
    )
    return Verdict(passed, policy, best_name, best, required, margin, reason)
