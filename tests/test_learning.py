"""The learning stage through Dagster: simulated hours -> opportunities -> training set -> policy ->
walk-forward judgement -> champion, read back from the lake by DuckDB; rollback as one command and
one Dagster job; the drift check and the drift sensor."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from arbiter.definitions import build_definitions
from arbiter.instance import open_instance
from arbiter.platform import sql
from arbiter.platform.lake import Lake
from arbiter.platform.learning import registry
from arbiter.platform.schema import PAIR_FEATURES
from arbiter.platform.settings import Settings
from arbiter.resources import build_resources
from arbiter.runner import materialize_selection
from arbiter.sensors.learning import drift_sensor
from tests.conftest import check_evaluations, run_arbiter

HOURS = "2026-03-02-10:00...2026-03-02-13:00"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("learning")
    env = {
        "ARBITER_LAKE": str(root / "lake"),
        "DAGSTER_HOME": str(root / "home"),
        "ARBITER_SIM_RATE_SCALE": "0.3",
        "ARBITER_RL_TIMESTEPS": "4000",
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        settings = Settings.from_env()
        instance = open_instance(settings.dagster_home)
        first = materialize_selection("*quotes", root_partition=HOURS, settings=settings, instance=instance)
        learning = materialize_selection("group:learning", settings=settings, instance=instance)
        yield settings, instance, first + learning, env


def test_every_learning_asset_materialises_and_duckdb_reads_it(trained):
    settings, instance, outcomes, _ = trained
    assert all(o.success for o in outcomes), [o.error for o in outcomes if not o.success]
    lake = Lake(settings.lake)
    con = sql.connect(lake)
    rows, bad = con.execute(
        "select count(*), count(*) filter (where net_spread_bps <= 0) from opportunities"
    ).fetchall()[0]
    assert rows > 500 and bad == 0  # only moments with a positive net spread
    hours = con.execute("select count(distinct epoch_ns(decision_ts) // 3600000000000) from opportunities").fetchall()[
        0
    ][0]
    assert hours == 4
    # three folds x three seeds, one of them the challenger, each with its .onnx beside it
    policies = con.execute("select version, role, fold, seed, feature_spec from policies").fetchall()
    assert len(policies) == 9 and sum(role == "challenger" for _, role, *_ in policies) == 1
    assert all(json.loads(spec) == list(PAIR_FEATURES) for *_, spec in policies)
    for version, *_ in policies:
        beside = Path(lake.table_dir("policies")) / f"version={version}" / "policy.onnx"
        assert beside.read_bytes() == registry.load_policy(lake, version).onnx
    table = con.sql('select strategy, "window", fold from policy_evaluation order by all').pl()
    strategies = {"policy", "threshold_rule", "threshold_rule_fresh", "logistic", "always_take", "never_take", "oracle"}
    assert set(table.get_column("strategy")) == strategies
    pooled = table.filter(pl.col("fold") == "pooled")
    assert pooled.height == len(strategies) and set(pooled.get_column("window")) == {"holdout"}
    assert table.filter(pl.col("fold") != "pooled").height == len(strategies) * 2 * 3
    oracle_share = con.execute(
        "select strategy, oracle_share from policy_evaluation"
        " where fold = 'pooled' and strategy in ('oracle', 'never_take')"
    ).fetchall()
    assert dict(oracle_share) == {"oracle": 1.0, "never_take": 0.0}
    decisions = registry.history(lake)
    assert decisions.height == 1 and decisions.get_column("action")[0] in ("first", "keep")
    # the checks ran and are recorded in the instance
    assert check_evaluations(instance, "rl_policy", "onnx_matches_torch")[0][1].passed
    assert check_evaluations(instance, "training_set", "enough_for_the_folds")[0][1].passed
    assert check_evaluations(instance, "training_set", "feature_drift")


def test_a_challenger_that_loses_to_the_champion_is_kept_out(trained):
    settings, instance, _, _ = trained
    lake = Lake(settings.lake)
    outcomes = materialize_selection("champion_policy", settings=settings, instance=instance)
    assert all(o.success for o in outcomes)
    last = registry.history(lake).row(-1, named=True)
    # the same challenger again: it is the champion already, or it still lost money on the holdout
    assert last["action"] == "keep" and last["reason"]


def test_rollback_is_one_command_and_one_dagster_job(trained, tmp_path):
    settings, _, _, env = trained
    lake = Lake(settings.lake)
    versions = registry.policies(lake).get_column("version").to_list()
    older, newer = versions[-1], versions[0]
    registry.record(lake, registry.Decision("promote", older, older, registry.champion(lake), "test: older first"))
    registry.record(lake, registry.Decision("promote", newer, newer, older, "test: newer beat older"))
    result = run_arbiter("policy", "rollback", "--reason", "test rollback", env=env)
    assert f"champion is {older} again (was {newer})" in result.stdout
    assert registry.champion(lake) == older
    runs = open_instance(settings.dagster_home).get_runs(dg.RunsFilter(job_name="rollback_champion"))
    assert len(runs) == 1 and runs[0].status == dg.DagsterRunStatus.SUCCESS
    history = run_arbiter("policy", "history", env=env).stdout
    assert "rollback" in history and "test rollback" in history


def test_the_drift_sensor_retrains_when_the_newest_hour_has_drifted(trained, tmp_path):
    settings, instance, _, _ = trained
    lake = Lake(settings.lake)
    resources = build_resources(settings)
    with dg.build_sensor_context(instance=instance, resources=resources) as context:
        quiet = drift_sensor(context)
    assert isinstance(quiet, dg.SkipReason)  # the newest hour looks like the training window
    # the newest hour again, with spreads twice as wide: the market has changed
    newest = sorted(lake.partitions("opportunities"), key=lambda p: (p["date"], p["hour"]))[-1]
    shifted = lake.read("opportunities", [newest]).with_columns(pl.col("net_spread_bps") * 2 + 50)
    lake.write("opportunities", shifted, {"date": "2026-03-02", "hour": "14"})
    with dg.build_sensor_context(instance=instance, resources=resources, cursor=context.cursor) as context:
        request = drift_sensor(context)
    assert isinstance(request, dg.RunRequest) and "net_spread_bps" in request.tags["arbiter/drift"]
    assert request.run_key == "drift:2026-03-02T14"
    job = build_definitions(settings=settings).resolve_job_def("retrain_policy")
    assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == {
        "training_set",
        "rl_policy",
        "policy_evaluation",
        "champion_policy",
    }
