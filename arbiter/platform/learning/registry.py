"""The policy registry and the champion's history: lake tables like every other.

``policies`` holds one row per trained policy version (``version=<v>`` partitions): the ONNX bytes
(normalisation inside the graph, so any runtime scores raw features), the ordered feature spec and
its normalisation, the execution and training settings, the training window and partitions, the
code version and what training measured. A ``policy.onnx`` beside each row serves outside tools.
Each training run stores its walk-forward fold models too (``role`` = ``fold``); its deployable
model is the ``challenger``.

``policy_champions`` records every decision about the champion (``decided=<time>`` partitions):
a promotion, a challenger kept out and why, a rollback. The current champion is the newest
decision's ``champion_version``; nothing else holds that state.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import polars as pl

from arbiter.platform.lake import Lake, PartitionNotFound

POLICIES = "policies"
CHAMPIONS = "policy_champions"
ONNX_FILE = "policy.onnx"


class RegistryError(LookupError):
    """A policy or decision the caller named is not in the registry."""


@dataclass(frozen=True)
class PolicyRecord:
    onnx: bytes
    training_run: str
    role: str  # challenger | fold
    fold: int
    seed: int
    algorithm: str
    feature_spec: list[str]
    normalisation: dict
    execution: dict
    hyperparameters: dict
    train_start: datetime
    train_end: datetime
    holdout_start: datetime | None
    holdout_end: datetime | None
    training_partitions: list[str]
    code_version: str
    metrics: dict = field(default_factory=dict)
    trained_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def version(self) -> str:
        return hashlib.sha256(self.onnx).hexdigest()[:12]


_JSON = ("feature_spec", "normalisation", "execution", "hyperparameters", "training_partitions", "metrics")
_TIMES = ("trained_at", "train_start", "train_end", "holdout_start", "holdout_end")


def save_policy(lake: Lake, record: PolicyRecord) -> str:
    """Store ``record`` (its row and its ``.onnx``); returns the version."""
    row = {name: getattr(record, name) for name in PolicyRecord.__dataclass_fields__}
    row.update({name: json.dumps(row[name], sort_keys=True, default=str) for name in _JSON})
    row["version"] = record.version
    frame = pl.DataFrame([row]).with_columns(pl.col(t).cast(pl.Datetime("ns", "UTC")) for t in _TIMES)
    partition = {"version": record.version}
    lake.write_beside(POLICIES, partition, ONNX_FILE, record.onnx)
    lake.write(POLICIES, frame, partition)
    return record.version


def load_policy(lake: Lake, version: str) -> PolicyRecord:
    try:
        row = lake.read(POLICIES, [{"version": version}]).row(0, named=True)
    except PartitionNotFound as exc:
        raise RegistryError(f"policy version {version!r} is not in the registry ({lake.uri})") from exc
    row.pop("version")
    row.update({name: json.loads(row[name]) for name in _JSON})
    return PolicyRecord(**row)


def policies(lake: Lake) -> pl.DataFrame:
    """Every stored version (without the ONNX bytes), newest first; empty when none is stored."""
    if not lake.partitions(POLICIES):
        return pl.DataFrame()
    return lake.read(POLICIES).drop("onnx").sort("trained_at", descending=True)


def latest_challenger(lake: Lake) -> PolicyRecord:
    """The newest training run's deployable model."""
    listed = policies(lake)
    challengers = listed.filter(pl.col("role") == "challenger") if not listed.is_empty() else listed
    if challengers.is_empty():
        raise RegistryError(f"no challenger policy is stored in {lake.uri} yet; materialise rl_policy first")
    return load_policy(lake, challengers.get_column("version")[0])


def run_policies(lake: Lake, training_run: str) -> dict[tuple[int, int], PolicyRecord]:
    """The models of one training run by (fold, seed)."""
    listed = policies(lake)
    if listed.is_empty():
        raise RegistryError(f"no policies are stored in {lake.uri}")
    versions = listed.filter(pl.col("training_run") == training_run).get_column("version").to_list()
    if not versions:
        raise RegistryError(f"training run {training_run!r} stored no policies")
    records = [load_policy(lake, v) for v in versions]
    return {(r.fold, r.seed): r for r in records}


# the champion --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    action: str  # first | promote | keep | rollback
    champion_version: str | None
    challenger_version: str | None
    previous_version: str | None
    reason: str
    challenger_net_pnl: float | None = None
    champion_net_pnl: float | None = None
    decided_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def record(lake: Lake, decision: Decision) -> Decision:
    row = {name: getattr(decision, name) for name in Decision.__dataclass_fields__}
    frame = pl.DataFrame([row]).with_columns(
        pl.col("decided_at").cast(pl.Datetime("ns", "UTC")),
        pl.col("champion_version", "challenger_version", "previous_version").cast(pl.String),
        pl.col("challenger_net_pnl", "champion_net_pnl").cast(pl.Float64),
    )
    lake.write(CHAMPIONS, frame, {"decided": decision.decided_at.strftime("%Y%m%dT%H%M%S%fZ")})
    return decision


def history(lake: Lake) -> pl.DataFrame:
    """Every decision, oldest first; empty when none was made."""
    if not lake.partitions(CHAMPIONS):
        return pl.DataFrame()
    return lake.read(CHAMPIONS).sort("decided_at")


def champion(lake: Lake) -> str | None:
    """The current champion's version, or None before the first promotion."""
    decisions = history(lake)
    return None if decisions.is_empty() else decisions.get_column("champion_version")[-1]


def rollback(lake: Lake, reason: str) -> Decision:
    """Make the champion the one the current champion replaced (again and again, further back)."""
    decisions = history(lake)
    current = None if decisions.is_empty() else decisions.get_column("champion_version")[-1]
    if current is None:
        raise RegistryError("there is no champion to roll back")
    made = decisions.filter(
        (pl.col("champion_version") == current) & pl.col("action").is_in(["first", "promote"])
    ).tail(1)
    previous = made.get_column("previous_version")[0] if made.height else None
    if previous is None:
        raise RegistryError(f"champion {current} has no predecessor to roll back to")
    return record(lake, Decision("rollback", previous, None, current, reason))
