"""When the policy is retrained: hourly opportunities, a nightly retraining, and a drift sensor
that retrains as soon as the market has moved away from what the champion learned on."""

import dagster as dg

from arbiter.platform.learning import lifecycle
from arbiter.platform.schema import PAIR_FEATURES
from arbiter.resources.lake import LakeResource
from arbiter.resources.learning import LearningResource

opportunities_job = dg.define_asset_job(
    "value_opportunities",
    selection=dg.AssetSelection.assets("opportunities"),
    description="Find an hour's opportunities and value each by what acting on it would have earned.",
    tags={"arbiter/stage": "learning"},
)

retrain_policy_job = dg.define_asset_job(
    "retrain_policy",
    selection=dg.AssetSelection.assets("training_set", "rl_policy", "policy_evaluation", "champion_policy"),
    description="Freeze the newest opportunities as a training set, train a challenger walk-forward, judge it "
    "against the baselines and promote it only if it beats the champion on the same holdout.",
    tags={"arbiter/stage": "learning"},
)

# Stopped by default like every schedule here: the demo builds its history on demand.
opportunities_hourly = dg.build_schedule_from_partitioned_job(
    opportunities_job, minute_of_hour=10, default_status=dg.DefaultScheduleStatus.STOPPED
)
retrain_nightly = dg.ScheduleDefinition(
    name="retrain_nightly",
    job=retrain_policy_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Retrain the policy every night at 02:00 UTC on the newest opportunities.",
)


@dg.sensor(
    job=retrain_policy_job,
    minimum_interval_seconds=900,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Retrains when a feature's distribution in the newest hour of opportunities has drifted from the "
    "champion's training window (population stability index above the learning resource's drift_psi).",
)
def drift_sensor(context: dg.SensorEvaluationContext, lake: LakeResource, learning: LearningResource):
    store = lake.lake()
    hours = sorted(store.partitions("opportunities"), key=lambda p: (p["date"], p["hour"]))
    if not hours or "training_set" not in store.tables():
        return dg.SkipReason("no opportunities or training set yet: nothing to compare")
    newest = f"{hours[-1]['date']}T{hours[-1]['hour']}"
    if newest == context.cursor:
        return dg.SkipReason(f"hour {newest} was already checked")
    report = lifecycle.drift_report(store, PAIR_FEATURES, learning.drift_psi)
    context.update_cursor(newest)
    worst = report.worst
    if not report.drifted:
        return dg.SkipReason(f"no drift in hour {newest}: worst {worst.feature} PSI {worst.psi:.3f}")
    return dg.RunRequest(
        run_key=f"drift:{newest}",
        tags={"arbiter/drift": ",".join(report.drifted), "arbiter/drift_psi": f"{worst.psi:.3f}"},
    )
