"""The lake on a real S3 API server (moto, in its own process on loopback): writes, atomic
replacement, reads through the IO manager and through ``arbiter sql``."""

import json

import boto3
import dagster as dg
import polars as pl
import pytest

from arbiter.platform import sql
from arbiter.platform.lake import Lake, SchemaMismatch
from arbiter.resources import LakeIOManager, LakeResource
from tests.conftest import run_arbiter
from tests.platform.test_lake import PART, quotes


@pytest.fixture
def bucket(s3_env, request):
    name = f"lake-{request.node.name.replace('_', '-')[:40]}".lower()
    boto3.client("s3", endpoint_url=s3_env.endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return name


def keys(s3_env, bucket) -> list[str]:
    client = boto3.client("s3", endpoint_url=s3_env.endpoint, region_name="us-east-1")
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_write_replace_and_read_on_s3(s3_env, bucket):
    lake = Lake(f"s3://{bucket}/prod")
    lake.write("quotes", quotes(5), PART)
    lake.write("quotes", quotes(2, bid=1.5), PART)
    assert keys(s3_env, bucket) == ["prod/quotes/date=2026-11-20/hour=03/part-0.parquet"]
    back = lake.read("quotes")
    assert back.height == 2 and set(back["bid"]) == {1.5}
    with pytest.raises(SchemaMismatch, match="column 'bid'"):
        lake.write("quotes", quotes(1).with_columns(bid=pl.lit("x")), PART)
    assert lake.read("quotes", [PART]).height == 2


def test_duckdb_queries_the_s3_lake(s3_env, bucket):
    lake = Lake(f"s3://{bucket}/prod")
    lake.write("quotes", quotes(3), PART)
    lake.write("quotes", quotes(4), {"date": "2026-11-20", "hour": "04"})
    assert sql.query(lake, "select hour, count(*) from quotes group by hour order by hour").fetchall() == [
        ("03", 3),
        ("04", 4),
    ]
    out = run_arbiter(
        "sql", "select count(*) as n from quotes", "--format", "json", "--lake", f"s3://{bucket}/prod", env=s3_env.env
    )
    assert json.loads(out.stdout) == [{"n": 7}]


@dg.asset(partitions_def=dg.StaticPartitionsDefinition(["a", "b"]))
def letters(context: dg.AssetExecutionContext) -> pl.DataFrame:
    return pl.DataFrame({"letter": [context.partition_key] * 3})


@dg.asset(partitions_def=dg.StaticPartitionsDefinition(["a", "b"]))
def letters_upper(letters: pl.DataFrame) -> pl.DataFrame:
    return letters.with_columns(pl.col("letter").str.to_uppercase())


def test_io_manager_on_s3(s3_env, bucket, tmp_path):
    resources = {
        "io_manager": LakeIOManager(lake=LakeResource(root=f"s3://{bucket}/dagster", s3_endpoint=s3_env.endpoint))
    }
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        for key in ("a", "b"):
            assert dg.materialize(
                [letters, letters_upper], partition_key=key, resources=resources, instance=instance
            ).success
    assert Lake(f"s3://{bucket}/dagster").read("letters_upper")["letter"].sort().to_list() == ["A"] * 3 + ["B"] * 3
    assert "dagster/letters/partition=a/part-0.parquet" in keys(s3_env, bucket)
