"""The learning stage: opportunities and their outcomes, the training set, the RL policy, its
walk-forward judgement and the champion. Thin: each asset reads the lake, calls
``arbiter.platform`` and reports what it did."""

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import numpy as np
import polars as pl

from arbiter.assets.partitions import HOURLY
from arbiter.platform import features, sql
from arbiter.platform.lake import Lake
from arbiter.platform.learning import lifecycle, registry, walk_forward
from arbiter.platform.learning.evaluation_plots import evaluation_markdown
from arbiter.platform.learning.train import curve_plot
from arbiter.platform.opportunities import opportunities as value_opportunities
from arbiter.platform.plots import markdown_image
from arbiter.platform.schema import OPPORTUNITIES, PAIR_FEATURES
from arbiter.resources.lake import LakeResource
from arbiter.resources.learning import LearningResource

NS = 1_000_000_000
WARM_UP = timedelta(seconds=30)
# what every learning asset shares: its group (and code location), owner and run-queue tag
STAGE = {
    "group_name": "learning",
    "code_version": "1",
    "owners": ["team:quant"],
    "op_tags": {"arbiter/stage": "learning"},
}  # quotes before the hour, so the first decisions have full windows


def read_quotes(lake: Lake, start_ns: int, end_ns: int) -> pl.DataFrame:
    """Every source's quotes received in [start, end), or an empty frame."""
    if "quotes" not in lake.tables():
        return pl.DataFrame()
    con = sql.connect(lake)
    query = "select * from quotes where epoch_ns(recv_ts) >= ? and epoch_ns(recv_ts) < ?"
    return con.sql(query, params=[start_ns, end_ns]).pl()


def fee_table(lake: Lake, overrides: str) -> dict[tuple[str, str], float]:
    instruments = lake.read("instruments") if "instruments" in lake.tables() else None
    return features.fee_table(instruments, overrides)


def blocking(lake: Lake) -> pl.DataFrame | None:
    """Windows in which funds cannot move, from what enrichment read in announcements (if it ran)."""
    if "document_events" not in lake.tables():
        return None
    documents = lake.read("documents") if "documents" in lake.tables() else None
    return features.blocking_windows(lake.read("document_events"), documents)


@dg.asset(
    partitions_def=HOURLY,
    deps=[
        dg.AssetDep("quotes", partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=1)),
        "instruments",
        "document_events",
    ],
    **STAGE,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[
        dg.AssetCheckSpec(
            "outcomes_known",
            asset="opportunities",
            description="every opportunity's outcome is known once the next hour's quotes are in",
        )
    ],
    description="Per hour, every moment a pair of markets of one entity (same symbol: two venues, or spot and "
    "perpetual) had a net spread above zero after both taker fees, with its features (one spec shared with the "
    "live scorer) and the realised outcome of acting on it: both legs filled `latency_ms` later at the venues' "
    "books on their own clocks, closed `horizon_ms` after that, four taker fees paid. That outcome is the "
    "reward the policy learns from.",
)
def opportunities(context: dg.AssetExecutionContext, lake: LakeResource, learning: LearningResource):
    store = lake.lake()
    fees = fee_table(store, learning.taker_fees)
    windows = blocking(store)
    outcome = learning.outcome_config()
    tail = timedelta(milliseconds=outcome.latency_ms + outcome.horizon_ms) + timedelta(seconds=10)
    frames, unknown, unusable, late = {}, {}, {}, []
    for key in context.partition_keys:
        window = HOURLY.time_window_for_partition_key(key)
        start_ns, end_ns = int(window.start.timestamp()) * NS, int(window.end.timestamp()) * NS
        quotes = read_quotes(
            store, start_ns - int(WARM_UP.total_seconds()) * NS, end_ns + int(tail.total_seconds() * NS)
        )
        if quotes.is_empty():
            frames[key] = pl.DataFrame(schema=pl.from_arrow(OPPORTUNITIES.empty_table()).schema)
            continue
        pairs = features.pair_features(quotes, fees, windows, learning.feature_config())
        books = features.prepare_quotes(quotes).accepted
        in_hour = pairs.frame.filter(pl.col("decision_ts").dt.epoch("ns").is_between(start_ns, end_ns, closed="left"))
        rows = value_opportunities(in_hour, books, fees, outcome)
        frames[key] = rows
        unknown[key] = rows.get_column("net_pnl_bps").null_count()
        if pairs.rejected.height:
            unusable[key] = dict(pairs.rejected.group_by("reason").len().iter_rows())
        if quotes.get_column("recv_ts").max() < window.end + tail:
            late.append(key)  # the next hour's quotes are not in yet: its last outcomes wait
    rows = pl.concat(list(frames.values()))
    by_pair = rows.group_by("pair").agg(
        n=pl.len(), mean_net_pnl_bps=pl.col("net_pnl_bps").mean(), win_rate=(pl.col("net_pnl_bps") > 0).mean()
    )
    yield dg.Output(
        frames,
        metadata={
            "opportunities": rows.height,
            "pairs": by_pair.height,
            "by_pair": dg.MetadataValue.md(_markdown(by_pair.sort("pair"))),
            "outcomes_unknown": dg.MetadataValue.json(unknown),
            "quotes_not_usable": dg.MetadataValue.json(unusable),
            "latency_ms": outcome.latency_ms,
            "horizon_ms": outcome.horizon_ms,
            "fees": dg.MetadataValue.json({f"{v}:{m}": f for (v, m), f in sorted(fees.items())}),
        },
    )
    missing = {k: n for k, n in unknown.items() if n and k not in late}
    yield dg.AssetCheckResult(
        check_name="outcomes_known",
        passed=not missing,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"unknown_with_data": dg.MetadataValue.json(missing), "waiting_for_next_hour": late},
    )


def _markdown(frame: pl.DataFrame) -> str:
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    for row in frame.iter_rows():
        lines.append("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row) + " |")
    return "\n".join(lines)


@dg.asset(
    deps=["opportunities"],
    **STAGE,
    check_specs=[
        dg.AssetCheckSpec(
            "enough_for_the_folds",
            asset="training_set",
            description="every walk-forward fold has training and holdout rows",
        )
    ],
    description="The rows a training run learns and is judged on: the newest `training_hours` of opportunities "
    "whose outcome is known, frozen as a table so the run can be reproduced and audited; its partitions are "
    "recorded in the metadata and in every policy trained on it.",
)
def training_set(context: dg.AssetExecutionContext, lake: LakeResource, learning: LearningResource):
    store = lake.lake()
    hours = sorted(store.partitions("opportunities"), key=lambda p: (p["date"], p["hour"]))[-learning.training_hours :]
    if not hours:
        raise dg.Failure("training_set: the opportunities table has no partitions yet; materialise opportunities")
    rows = store.read("opportunities", hours)
    usable = rows.filter(pl.col("net_pnl_bps").is_not_null() & pl.col("depth_notional").is_not_null())
    usable = usable.sort("decision_ts", "pair", maintain_order=True)
    labels = [f"date={p['date']}/hour={p['hour']}" for p in hours]
    store.write("training_set", usable, stamp={"partitions": json.dumps(labels)})
    try:
        folds = walk_forward.folds(usable, learning.n_folds)
        problem = None
    except ValueError as exc:
        folds, problem = [], str(exc)
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": usable.height,
            "partitions": dg.MetadataValue.json(labels),
            "outcome_unknown_dropped": rows.height - usable.height,
            "from": str(usable.get_column("decision_ts").min()),
            "to": str(usable.get_column("decision_ts").max()),
            "pairs": usable.get_column("pair").n_unique(),
            "mean_net_pnl_bps": usable.get_column("net_pnl_bps").mean(),
        }
    )
    yield dg.AssetCheckResult(
        check_name="enough_for_the_folds",
        passed=problem is None,
        metadata={
            "folds": dg.MetadataValue.json(
                [{"fold": f.number, "train_rows": f.train.height, "holdout_rows": f.holdout.height} for f in folds]
            ),
            "problem": problem or "",
        },
    )


def training_partitions(lake: Lake) -> list[str]:
    return json.loads((lake.stamp_of("training_set") or {}).get("partitions", "[]"))


@dg.asset(
    deps=["training_set"],
    **STAGE,
    check_specs=[
        dg.AssetCheckSpec(
            "onnx_matches_torch",
            asset="rl_policy",
            description="onnxruntime scores every holdout row as torch does (max abs diff <= 1e-5)",
        )
    ],
    description="The challenger: a reinforcement-learning policy (stable-baselines3, PPO by default, DQN "
    "selectable) trained in a vectorised gymnasium environment that replays each pair's opportunities; actions "
    "skip or take at one of several sizes, reward the realised P&L net of fees, slippage and latency less a "
    "risk penalty. One model per walk-forward fold and seed is stored in the `policies` table (ONNX, feature "
    "spec, normalisation, training partitions, code version); the challenger is the last fold's first seed.",
)
def rl_policy(context: dg.AssetExecutionContext, lake: LakeResource, learning: LearningResource):
    store = lake.lake()
    frame = store.read("training_set")
    partitions = training_partitions(store)
    configs = {seed: learning.train_config(seed) for seed in learning.seed_list()}
    run = lifecycle.train_run(
        frame,
        PAIR_FEATURES,
        learning.execution(),
        configs,
        learning.n_folds,
        partitions,
        lifecycle.code_version(),
        store,
        progress=context.log.info,
    )
    challenger = registry.load_policy(store, run.challenger)
    curve = run.curves[(challenger.fold, challenger.seed)]
    models = pl.DataFrame([{"fold": f, "seed": s, "version": v} for (f, s), v in sorted(run.versions.items())])
    yield dg.MaterializeResult(
        metadata={
            "policy_version": run.challenger,
            "training_run": run.run_id,
            "algorithm": challenger.algorithm,
            "models": dg.MetadataValue.md(_markdown(models)),
            "training_partitions": dg.MetadataValue.json(partitions),
            "hyperparameters": dg.MetadataValue.json(challenger.hyperparameters),
            "steps_per_s_median": float(np.median(run.steps_per_s)),
            "onnx_max_abs_diff": run.onnx_max_abs_diff,
            "training_curve": dg.MetadataValue.md(
                markdown_image(curve_plot(curve, f"challenger {run.challenger}: mean episode reward"), "curve")
            ),
            "onnx": dg.MetadataValue.path(f"{store.uri}/policies/version={run.challenger}/{registry.ONNX_FILE}"),
        }
    )
    yield dg.AssetCheckResult(
        check_name="onnx_matches_torch",
        passed=run.onnx_max_abs_diff <= 1e-5,
        metadata={"max_abs_diff": run.onnx_max_abs_diff},
    )


@dg.asset(
    deps=["rl_policy"],
    **STAGE,
    check_specs=[
        dg.AssetCheckSpec(
            "beats_best_baseline",
            asset="policy_evaluation",
            description="the policy's pooled holdout net P&L beats the best baseline's by at least 20%",
        )
    ],
    description="The challenger's training run judged walk-forward: per fold and pooled, on training and holdout "
    "windows, the policy (median of its seeds) against the tuned threshold rule, the same rule with a stale-quote "
    "filter, a logistic classifier on the same features, always-take, never-take and the oracle. One row per "
    "(policy_version, strategy, window, fold) in the `policy_evaluation` table.",
)
def policy_evaluation(context: dg.AssetExecutionContext, lake: LakeResource, learning: LearningResource):
    store = lake.lake()
    challenger = registry.latest_challenger(store)
    frame = store.read("training_set")
    evaluation = lifecycle.judge(
        store,
        frame,
        challenger.training_run,
        PAIR_FEATURES,
        learning.execution(),
        learning.n_folds,
        learning.seed_list(),
    )
    table = evaluation.policy_evaluation.with_columns(evaluated_at=pl.lit(datetime.now(UTC)).dt.cast_time_unit("ns"))
    written = store.write("policy_evaluation", table, {"policy_version": challenger.version})
    verdict = walk_forward.beats(evaluation, margin=0.2)
    pooled = table.filter((pl.col("window") == "holdout") & (pl.col("fold") == walk_forward.POOLED))
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": written.rows,
            "path": dg.MetadataValue.path(written.uri),
            "policy_version": challenger.version,
            "pooled_holdout": dg.MetadataValue.md(
                _markdown(
                    pooled.select(
                        "strategy",
                        "net_pnl",
                        "oracle_share",
                        "sharpe",
                        "hit_rate",
                        "max_drawdown",
                        "turnover",
                        "trades",
                    )
                )
            ),
            "verdict": verdict.reason,
            **{name: dg.MetadataValue.md(text) for name, text in evaluation_markdown(evaluation).items()},
        }
    )
    yield dg.AssetCheckResult(
        check_name="beats_best_baseline",
        passed=verdict.passed,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "policy_net_pnl": verdict.policy_net_pnl,
            "best_baseline": verdict.best_baseline,
            "best_net_pnl": verdict.best_net_pnl,
            "required": verdict.required_net_pnl,
        },
    )


@dg.asset(
    deps=["policy_evaluation"],
    **STAGE,
    check_specs=[
        dg.AssetCheckSpec("has_champion", asset="champion_policy", description="a champion policy is in place")
    ],
    description="The policy live scoring uses. The challenger replaces the champion only if it beats it on the same "
    "holdout (the last fold's rows, the same execution rules); otherwise the champion stays and the reason is "
    "recorded. Every decision is a row of `policy_champions`; `arbiter policy rollback` or the "
    "`rollback_champion` job restores the previous champion.",
)
def champion_policy(context: dg.AssetExecutionContext, lake: LakeResource, learning: LearningResource):
    store = lake.lake()
    challenger = registry.latest_challenger(store)
    frame = store.read("training_set")
    holdout = frame.filter(
        pl.col("decision_ts").is_between(challenger.holdout_start, challenger.holdout_end, closed="both")
    )
    decision = lifecycle.decide(store, challenger.version, holdout, learning.execution(), learning.promotion_margin)
    history = registry.history(store).select("decided_at", "action", "champion_version", "challenger_version", "reason")
    yield dg.MaterializeResult(
        metadata={
            "action": decision.action,
            "champion": decision.champion_version or "none",
            "challenger": challenger.version,
            "reason": decision.reason,
            "history": dg.MetadataValue.md(_markdown(history.tail(10))),
        }
    )
    # a warning, not an error: no champion is a state to act on (keep trading rules), not bad data
    yield dg.AssetCheckResult(
        check_name="has_champion",
        passed=decision.champion_version is not None,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"reason": decision.reason},
    )


@dg.op(
    config_schema={"reason": dg.Field(str, default_value="rolled back by an operator")},
    required_resource_keys={"lake"},
    description="Make the previous champion the champion again (recorded in policy_champions).",
)
def restore_previous_champion(context: dg.OpExecutionContext) -> None:
    decision = registry.rollback(context.resources.lake.lake(), context.op_config["reason"])
    context.log.info(f"champion is {decision.champion_version} again (was {decision.previous_version})")


@dg.job(
    name="rollback_champion",
    description="Roll the champion policy back to the one it replaced; run again to go further back.",
)
def rollback_champion_job():
    restore_previous_champion()


@dg.asset_check(
    asset="training_set",
    name="feature_drift",
    description="Population stability index and KS statistic of every policy feature, the newest hour of "
    "opportunities against the champion's training window; warns above the learning resource's drift_psi "
    "(the drift sensor retrains then).",
)
def feature_drift(lake: LakeResource, learning: LearningResource) -> dg.AssetCheckResult:
    report = lifecycle.drift_report(lake.lake(), PAIR_FEATURES, learning.drift_psi)
    worst = report.worst
    return dg.AssetCheckResult(
        passed=not report.drifted,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "drifted": dg.MetadataValue.json(report.drifted),
            "worst_feature": worst.feature,
            "worst_psi": worst.psi,
            "threshold": report.threshold,
            "per_feature": dg.MetadataValue.md(_markdown(report.table())),
            "training_rows": report.train_rows,
            "recent_rows": report.recent_rows,
        },
    )
