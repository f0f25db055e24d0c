"""How a strategy did on a window of opportunities: the ledger of what it executed and the figures
every strategy is compared on (``policy_evaluation``).

``Outcomes`` is what a window of opportunity rows would pay: per row and action, the realised P&L
(``execution.action_pnl``; no risk penalty, which is a training term only), with the pair codes
and times that decide which takes can execute. A ``Ledger`` is one strategy's executed actions on
those rows and the P&L each row realised (0 where it skipped or was blocked).

Figure definitions (all money in the quote currency of ``ExecutionConfig.notional``):

- ``net_pnl``: sum of realised P&L.
- ``sharpe``: P&L is bucketed by decision minute (a trade's P&L counts in the minute it was
  decided) over every minute from the window's first decision to its last, empty minutes
  included; Sharpe = mean / standard deviation (ddof=1) of those minute sums, times
  sqrt(525,600) (minutes per 365-day year). 0 when there are fewer than two minutes or the
  minute sums do not vary (never-take, say), rather than a division by zero.
- ``hit_rate``: share of executed takes whose P&L is > 0; null when nothing was taken.
- ``max_drawdown``: largest fall of cumulative P&L (in decision order, starting from 0, so a
  first loss counts) from its running peak; a positive number, 0 when it never falls.
- ``turnover``: traded notional divided by the base notional: a take of size s trades s x
  notional on each of two legs, once at entry and once at exit, so it adds 4 x s; a full-size
  round trip is 4.
- ``trades``: executed takes; ``decisions``: rows seen.
- ``oracle_share``: net_pnl / the oracle's net_pnl on the same rows; null when the oracle earns 0
  (then there was nothing to capture).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import polars as pl

from arbiter.platform.learning.execution import ExecutionConfig, action_pnl, pair_codes, realised

MINUTE_NS = 60 * 1_000_000_000
MINUTES_PER_YEAR = 365 * 24 * 60
OUTCOME_COLUMNS = ("pair", "decision_ts", "exit_ts", "net_pnl_bps", "depth_notional")


@dataclass(frozen=True)
class Outcomes:
    """What each action on each row of a window would realise, and what blocks what."""

    pnl: np.ndarray  # (rows, actions) quote currency; column 0 (skip) is 0
    codes: np.ndarray  # pair code per row
    decision_ns: np.ndarray
    exit_ns: np.ndarray

    @property
    def rows(self) -> int:
        return self.pnl.shape[0]


def check_frame(frame: pl.DataFrame, source: str = "opportunities") -> None:
    """Refuse a frame the evaluation cannot trust: a missing outcome column, nulls or NaNs in the
    outcomes, exits before decisions, or rows out of decision order."""
    missing = [c for c in OUTCOME_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing}; have {frame.columns}")
    for column in OUTCOME_COLUMNS:
        nulls = frame.get_column(column).null_count()
        if nulls:
            raise ValueError(f"{source}: {nulls} null value(s) in {column!r} (the caller must filter them)")
    for column in ("net_pnl_bps", "depth_notional"):
        nans = int(frame.get_column(column).cast(pl.Float64).is_nan().sum())
        if nans:
            raise ValueError(f"{source}: {nans} NaN value(s) in {column!r}")
    decision, exit_ = epoch_ns(frame, "decision_ts"), epoch_ns(frame, "exit_ts")
    before = int(np.sum(exit_ < decision))
    if before:
        raise ValueError(f"{source}: {before} row(s) with exit_ts before decision_ts")
    unsorted = int(np.sum(np.diff(decision) < 0))
    if unsorted:
        raise ValueError(f"{source}: rows are not sorted by decision_ts ({unsorted} step(s) back in time)")


def epoch_ns(frame: pl.DataFrame, column: str) -> np.ndarray:
    series = frame.get_column(column)
    if not isinstance(series.dtype, pl.Datetime):
        raise ValueError(f"{column!r} must be a Datetime column, got {series.dtype}")
    return series.dt.epoch("ns").to_numpy().astype(np.int64, copy=False)


def outcomes(frame: pl.DataFrame, config: ExecutionConfig, source: str = "opportunities") -> Outcomes:
    """The outcome arrays of a frame of opportunity rows (checked first)."""
    check_frame(frame, source)
    pnl = action_pnl(
        frame.get_column("net_pnl_bps").cast(pl.Float64).to_numpy(),
        frame.get_column("depth_notional").cast(pl.Float64).to_numpy(),
        config,
    )
    return Outcomes(
        pnl=pnl,
        codes=pair_codes(frame.get_column("pair")),
        decision_ns=epoch_ns(frame, "decision_ts"),
        exit_ns=epoch_ns(frame, "exit_ts"),
    )


@dataclass(frozen=True)
class Ledger:
    """One strategy's executed actions on a window, the P&L each row realised, and when."""

    actions: np.ndarray  # executed action per row (0: skipped or blocked)
    pnl: np.ndarray  # realised P&L per row, quote currency
    decision_ns: np.ndarray
    traded: np.ndarray  # notional per leg taken per row (0 where skipped)

    @property
    def rows(self) -> int:
        return self.actions.shape[0]

    @staticmethod
    def concat(ledgers: list[Ledger]) -> Ledger:
        """Several windows' ledgers as one (for the pooled holdout), in the order given."""
        return Ledger(**{f.name: np.concatenate([getattr(one, f.name) for one in ledgers]) for f in fields(Ledger)})


def check_actions(actions: np.ndarray, rows: int, n_actions: int, source: str) -> np.ndarray:
    """A strategy's actions as int64, or a clear error if they have the wrong shape or values."""
    array = np.asarray(actions)
    if array.shape != (rows,):
        raise ValueError(f"{source}: expected {rows} actions, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{source}: actions must be integers, got dtype {array.dtype}")
    array = array.astype(np.int64)
    if array.size and (array.min() < 0 or array.max() >= n_actions):
        raise ValueError(f"{source}: actions must be in [0, {n_actions - 1}], got [{array.min()}, {array.max()}]")
    return array


def ledger(actions: np.ndarray, window: Outcomes, config: ExecutionConfig, source: str = "strategy") -> Ledger:
    """Execute a strategy's chosen actions on a window (blocked takes become skips)."""
    chosen = check_actions(actions, window.rows, config.n_actions, source)
    done, pnl = realised(chosen, window.pnl, window.codes, window.decision_ns, window.exit_ns)
    return Ledger(actions=done, pnl=pnl, decision_ns=window.decision_ns, traded=config.size_notional()[done])


def sharpe(pnl: np.ndarray, decision_ns: np.ndarray) -> float:
    """Annualised Sharpe ratio of per-minute P&L (module docstring); 0 without variation."""
    if pnl.size == 0:
        return 0.0
    first = decision_ns.min() // MINUTE_NS
    minutes = (decision_ns // MINUTE_NS - first).astype(np.int64)
    buckets = np.bincount(minutes, weights=pnl, minlength=int(minutes.max()) + 1)
    if buckets.size < 2:
        return 0.0
    std = float(np.std(buckets, ddof=1))
    mean = float(np.mean(buckets))
    if not std > 1e-12 * max(1.0, abs(mean)):
        return 0.0
    return mean / std * math.sqrt(MINUTES_PER_YEAR)


def max_drawdown(pnl: np.ndarray) -> float:
    """Largest peak-to-trough fall of cumulative P&L, starting from 0 (a positive number)."""
    cumulative = np.concatenate([[0.0], np.cumsum(pnl)])
    return float(np.max(np.maximum.accumulate(cumulative) - cumulative))


def figures(book: Ledger, config: ExecutionConfig, oracle_net_pnl: float | None) -> dict[str, float | int | None]:
    """Every figure of a ledger (module docstring); ``oracle_net_pnl`` from the same rows."""
    taken = book.actions > 0
    trades = int(taken.sum())
    net = float(book.pnl.sum())
    order = np.argsort(book.decision_ns, kind="stable")
    share = None
    if oracle_net_pnl is not None and oracle_net_pnl != 0:
        share = net / oracle_net_pnl
    return {
        "oracle_share": share,
        "net_pnl": net,
        "sharpe": sharpe(book.pnl, book.decision_ns),
        "hit_rate": float(np.mean(book.pnl[taken] > 0)) if trades else None,
        "max_drawdown": max_drawdown(book.pnl[order]),
        "turnover": float(4.0 * book.traded.sum() / config.notional),
        "trades": trades,
        "decisions": book.rows,
    }
