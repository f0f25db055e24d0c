"""The policy's lifecycle: train walk-forward, judge, and promote, keep or roll back.

A training run trains one model per walk-forward fold and seed on the fold's training window and
stores each in the registry; the deployable challenger is the last fold's model of the first seed
(fixed in advance, never picked by its holdout score). Judging replays every stored model on its
own fold's windows beside the baselines and the oracle. The challenger becomes champion only if it
beats the champion on the same holdout (the last fold's): the same rows, the same execution rules.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from arbiter.platform.lake import Lake
from arbiter.platform.learning import drift, registry, walk_forward
from arbiter.platform.learning.data import OpportunityArrays
from arbiter.platform.learning.execution import ExecutionConfig, realised
from arbiter.platform.learning.export import PolicyScorer, export_onnx, onnx_parity
from arbiter.platform.learning.train import TrainConfig, train_policy

PLATFORM = Path(__file__).parents[1]
# the code a policy's behaviour depends on: its features, its outcomes, its learning
CODE = ("features.py", "opportunities.py", "schema.py", "learning/*.py")


def code_version() -> str:
    """A hash of the code that defines what a policy sees and learns, stored with every policy."""
    digest = hashlib.sha256()
    for pattern in CODE:
        for path in sorted(PLATFORM.glob(pattern)):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


@dataclass
class TrainingRun:
    run_id: str
    challenger: str  # version
    versions: dict[tuple[int, int], str]  # (fold, seed) -> version
    curves: dict[tuple[int, int], tuple[tuple[int, float], ...]]
    steps_per_s: list[float]
    onnx_max_abs_diff: float
    folds: list[walk_forward.Fold] = field(default_factory=list)


def train_run(
    frame: pl.DataFrame,
    feature_columns: Sequence[str],
    execution: ExecutionConfig,
    configs: Mapping[int, TrainConfig],
    n_folds: int,
    partitions: Sequence[str],
    code_version: str,
    lake: Lake,
    progress: Callable[[str], None] = lambda _: None,
) -> TrainingRun:
    """Train one policy per fold and seed (``configs``: seed -> config) and store them all."""
    run_id = uuid.uuid4().hex[:12]
    seeds = list(configs)
    folds = walk_forward.folds(frame, n_folds)
    versions, curves, speeds, parity = {}, {}, [], 0.0
    for fold in folds:
        holdout = OpportunityArrays.from_frame(fold.holdout, feature_columns, execution).features
        for seed in seeds:
            progress(f"fold {fold.number}/{len(folds)}, seed {seed}: training on {fold.train.height:,} rows")
            trained = train_policy(fold.train, feature_columns, execution, configs[seed])
            onnx = export_onnx(trained)
            diff = onnx_parity(trained, onnx, holdout)
            parity = max(parity, diff)
            decided = fold.train.get_column("decision_ts")
            challenger = fold.number == folds[-1].number and seed == seeds[0]
            record = registry.PolicyRecord(
                onnx=onnx,
                training_run=run_id,
                role="challenger" if challenger else "fold",
                fold=fold.number,
                seed=seed,
                algorithm=configs[seed].algorithm,
                feature_spec=list(feature_columns),
                normalisation=trained.normaliser.to_dict(),
                execution={
                    "notional": execution.notional,
                    "sizes": list(execution.sizes),
                    "impact_bps": execution.impact_bps,
                    "risk_penalty_bps": execution.risk_penalty_bps,
                },
                hyperparameters=configs[seed].model_dump(),
                train_start=decided.min(),
                train_end=decided.max(),
                holdout_start=fold.holdout.get_column("decision_ts").min(),
                holdout_end=fold.holdout.get_column("decision_ts").max(),
                training_partitions=list(partitions),
                code_version=code_version,
                metrics={
                    "steps_per_s": trained.steps_per_s,
                    "learn_seconds": trained.learn_seconds,
                    "timesteps": trained.timesteps,
                    "training_rows": trained.training_rows,
                    "onnx_max_abs_diff": diff,
                    "final_mean_episode_reward": trained.curve[-1][1] if trained.curve else None,
                },
            )
            versions[(fold.number, seed)] = registry.save_policy(lake, record)
            curves[(fold.number, seed)] = trained.curve
            speeds.append(trained.steps_per_s)
    return TrainingRun(run_id, versions[(folds[-1].number, seeds[0])], versions, curves, speeds, parity, folds)


def scorer_actions(record: registry.PolicyRecord) -> Callable[[pl.DataFrame], np.ndarray]:
    """The stored policy as a strategy: its greedy actions on a frame's features, through ONNX."""
    scorer = PolicyScorer(record.onnx)

    def act(frame: pl.DataFrame) -> np.ndarray:
        return scorer.actions(frame.select(pl.col(c).cast(pl.Float32) for c in record.feature_spec).to_numpy())

    return act


def judge(
    lake: Lake,
    frame: pl.DataFrame,
    run: str,
    feature_columns: Sequence[str],
    execution: ExecutionConfig,
    n_folds: int,
    seeds: Sequence[int],
) -> walk_forward.Evaluation:
    """Walk-forward evaluation of a stored training run against the baselines and the oracle."""
    models = registry.run_policies(lake, run)
    challenger = next(r for r in models.values() if r.role == "challenger")

    def fit_policy(fold: int, _train: pl.DataFrame, seed: int) -> Callable[[pl.DataFrame], np.ndarray]:
        if (fold, seed) not in models:
            raise registry.RegistryError(f"training run {run} stored no model for fold {fold}, seed {seed}")
        return scorer_actions(models[(fold, seed)])

    return walk_forward.evaluate(
        frame, feature_columns, execution, n_folds, fit_policy, seeds=seeds, policy_version=challenger.version
    )


def holdout_pnl(record: registry.PolicyRecord, holdout: pl.DataFrame, execution: ExecutionConfig) -> float:
    """Net P&L of a stored policy on holdout rows under the given execution rules."""
    arrays = OpportunityArrays.from_frame(holdout, record.feature_spec, execution)
    actions = scorer_actions(record)(holdout)
    return float(realised(actions, arrays.pnl, arrays.codes, arrays.decision_ns, arrays.exit_ns)[1].sum())


def decide(
    lake: Lake, challenger_version: str, holdout: pl.DataFrame, execution: ExecutionConfig, margin: float
) -> registry.Decision:
    """Promote the challenger if it beats the champion on ``holdout`` (by ``margin`` of the
    champion's P&L) and makes money there; otherwise keep the champion, saying why."""
    challenger = registry.load_policy(lake, challenger_version)
    mine = holdout_pnl(challenger, holdout, execution)
    current = registry.champion(lake)
    if current == challenger_version:
        return registry.record(
            lake, registry.Decision("keep", current, challenger_version, None, "the challenger is the champion", mine)
        )
    if current is None:
        if mine > 0:
            reason = f"first champion: holdout net P&L {mine:,.2f}"
            return registry.record(
                lake, registry.Decision("first", challenger_version, challenger_version, None, reason, mine)
            )
        reason = f"no champion yet, and the challenger lost {mine:,.2f} on the holdout"
        return registry.record(lake, registry.Decision("keep", None, challenger_version, None, reason, mine))
    champ = registry.load_policy(lake, current)
    missing = [c for c in champ.feature_spec if c not in holdout.columns]
    if missing:
        theirs = None
        beaten = mine > 0
        why = f"the champion needs feature {missing[0]!r}, which the holdout lacks"
    else:
        theirs = holdout_pnl(champ, holdout, execution)
        beaten = mine > 0 and mine > theirs + margin * abs(theirs)
        why = f"challenger {mine:,.2f} against champion {theirs:,.2f} on the same holdout (margin {margin:.0%})"
    if beaten:
        return registry.record(
            lake, registry.Decision("promote", challenger_version, challenger_version, current, why, mine, theirs)
        )
    return registry.record(lake, registry.Decision("keep", current, challenger_version, None, why, mine, theirs))


def drift_report(lake: Lake, feature_columns: Sequence[str], threshold: float, recent_hours: int = 1) -> drift.Drift:
    """The newest ``recent_hours`` of opportunities against the window the champion was trained on
    (the current training set when there is no champion yet)."""
    hours = sorted(lake.partitions("opportunities"), key=lambda p: (p["date"], p["hour"]))
    if not hours:
        raise ValueError("drift: the opportunities table has no partitions yet")
    current = registry.champion(lake)
    if current is None:
        reference = lake.read("training_set")
        trained_on: set[str] = set()
    else:
        trained_on = set(registry.load_policy(lake, current).training_partitions)
        parts = [p for p in hours if f"date={p['date']}/hour={p['hour']}" in trained_on]
        reference = lake.read("opportunities", parts) if parts else lake.read("training_set")
    newer = [p for p in hours if f"date={p['date']}/hour={p['hour']}" not in trained_on]
    recent = lake.read("opportunities", (newer or hours)[-recent_hours:])
    return drift.feature_drift(reference, recent, feature_columns, threshold)
