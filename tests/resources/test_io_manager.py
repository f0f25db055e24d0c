"""The lake IO manager with real Dagster runs on a real (temporary) instance."""

import dagster as dg
import polars as pl
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from arbiter.platform.lake import Lake
from arbiter.resources import LakeIOManager, LakeResource

HOURLY = dg.HourlyPartitionsDefinition(start_date="2026-11-19-00:00", end_date="2026-11-21-00:00", timezone="UTC")
DAILY = dg.DailyPartitionsDefinition(start_date="2026-11-19", end_date="2026-11-21", timezone="UTC")
REGIONS = dg.StaticPartitionsDefinition(["eu", "us"])
MULTI = dg.MultiPartitionsDefinition({"day": DAILY, "region": REGIONS})


@dg.asset
def reference() -> pl.DataFrame:
    return pl.DataFrame({"code": ["a", "b", "c"]})


@dg.asset
def reference_copy(reference: pl.DataFrame) -> pl.DataFrame:
    return reference.with_columns(copied=pl.lit(True))


@dg.asset(partitions_def=HOURLY, backfill_policy=dg.BackfillPolicy.single_run())
def ticks(context: dg.AssetExecutionContext) -> dict[str, pl.DataFrame]:
    # Partition i of the range holds i + 1 rows, so per-partition metadata can be told apart.
    return {k: pl.DataFrame({"hour": [k] * (i + 1)}) for i, k in enumerate(context.partition_keys)}


@dg.asset(partitions_def=DAILY, ins={"ticks": dg.AssetIn(partition_mapping=dg.TimeWindowPartitionMapping())})
def daily_total(ticks: pl.DataFrame) -> pl.DataFrame:
    return pl.DataFrame({"rows": [ticks.height]})


@dg.asset(partitions_def=DAILY, ins={"ticks": dg.AssetIn(partition_mapping=dg.TimeWindowPartitionMapping())})
def daily_by_hour(ticks: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return pl.DataFrame({"hour": list(ticks), "rows": [f.height for f in ticks.values()]})


@dg.asset(partitions_def=REGIONS)
def by_region(context: dg.AssetExecutionContext) -> pl.DataFrame:
    return pl.DataFrame({"region": [context.partition_key]})


@dg.asset(partitions_def=MULTI)
def by_day_and_region(context: dg.AssetExecutionContext) -> pl.DataFrame:
    keys = context.partition_key.keys_by_dimension
    return pl.DataFrame({"day": [keys["day"]], "region": [keys["region"]]})


@dg.asset(partitions_def=HOURLY, backfill_policy=dg.BackfillPolicy.single_run())
def forgetful(context: dg.AssetExecutionContext) -> dict[str, pl.DataFrame]:
    return {context.partition_keys[0]: pl.DataFrame({"x": [1]})}


ASSETS = [reference, reference_copy, ticks, daily_total, daily_by_hour, by_region, by_day_and_region, forgetful]


@pytest.fixture
def env(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    resources = {"io_manager": LakeIOManager(lake=LakeResource(root=lake.uri))}
    (tmp_path / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        yield lake, resources, instance


def run(env, selection, **kwargs):
    _lake, resources, instance = env
    return dg.materialize(ASSETS, selection=selection, resources=resources, instance=instance, **kwargs)


def test_unpartitioned_round_trip_with_metadata(env):
    lake, _, _ = env
    result = run(env, ["reference", "reference_copy"])
    assert lake.read("reference_copy").columns == ["code", "copied"]
    metadata = result.asset_materializations_for_node("reference")[0].metadata
    assert metadata["dagster/row_count"].value == 3
    assert metadata["bytes"].value > 0
    assert metadata["path"].value == f"{lake.uri}/reference/part-0.parquet"
    assert [c.name for c in metadata["dagster/column_schema"].value.columns] == ["code"]
    assert "| code |" in metadata["preview"].value


def test_backfill_of_a_range_runs_once_and_records_each_partition(env):
    lake, _, instance = env
    tags = {ASSET_PARTITION_RANGE_START_TAG: "2026-11-20-00:00", ASSET_PARTITION_RANGE_END_TAG: "2026-11-20-02:00"}
    result = run(env, ["ticks"], tags=tags)
    assert len(instance.get_runs()) == 1
    counts = {
        m.partition: m.metadata["dagster/row_count"].value for m in result.asset_materializations_for_node("ticks")
    }
    assert counts == {"2026-11-20-00:00": 1, "2026-11-20-01:00": 2, "2026-11-20-02:00": 3}
    assert lake.partitions("ticks") == [{"date": "2026-11-20", "hour": h} for h in ("00", "01", "02")]


def test_rematerialising_replaces_the_partition(env):
    lake, _, _ = env
    run(
        env,
        ["ticks"],
        tags={ASSET_PARTITION_RANGE_START_TAG: "2026-11-20-05:00", ASSET_PARTITION_RANGE_END_TAG: "2026-11-20-06:00"},
    )
    run(env, ["ticks"], partition_key="2026-11-20-06:00")
    assert lake.read("ticks", [{"date": "2026-11-20", "hour": "06"}]).height == 1


def test_downstream_loads_its_upstream_partitions(env):
    lake, _, _ = env
    run(
        env,
        ["ticks"],
        tags={ASSET_PARTITION_RANGE_START_TAG: "2026-11-20-00:00", ASSET_PARTITION_RANGE_END_TAG: "2026-11-20-23:00"},
    )
    run(env, ["daily_total", "daily_by_hour"], partition_key="2026-11-20")
    assert lake.read("daily_total").item() == sum(range(1, 25))
    by_hour = lake.read("daily_by_hour")
    assert by_hour.height == 24 and by_hour["rows"].to_list() == list(range(1, 25))
    assert lake.partitions("daily_total") == [{"date": "2026-11-20"}]


def test_missing_upstream_partition_is_named(env):
    run(env, ["ticks"], partition_key="2026-11-19-00:00")
    with pytest.raises(Exception, match=r"'ticks', partition 'date=2026-11-19/hour=01'"):
        run(env, ["daily_total"], partition_key="2026-11-19")


def test_static_and_multi_partitions_become_hive_keys(env):
    lake, _, _ = env
    run(env, ["by_region"], partition_key="eu")
    run(env, ["by_day_and_region"], partition_key=dg.MultiPartitionKey({"day": "2026-11-20", "region": "us"}))
    assert lake.partitions("by_region") == [{"partition": "eu"}]
    assert lake.partitions("by_day_and_region") == [{"date": "2026-11-20", "region": "us"}]
    assert lake.read("by_day_and_region").row(0) == ("2026-11-20", "us")


def test_a_range_run_must_return_every_partition(env):
    tags = {ASSET_PARTITION_RANGE_START_TAG: "2026-11-20-00:00", ASSET_PARTITION_RANGE_END_TAG: "2026-11-20-01:00"}
    with pytest.raises(Exception, match="one frame per partition key"):
        run(env, ["forgetful"], tags=tags)
