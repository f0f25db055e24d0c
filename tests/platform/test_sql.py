import duckdb
import polars as pl
import pytest

from arbiter.platform import sql
from arbiter.platform.lake import Lake
from tests.platform.test_lake import PART, quotes


@pytest.fixture
def lake(tmp_path) -> Lake:
    lake = Lake(str(tmp_path / "lake"))
    lake.write("quotes", quotes(3), PART)
    lake.write("quotes", quotes(2), {"date": "2026-11-20", "hour": "04"})
    q = pl.DataFrame(
        {
            "target": ["quotes"],
            "source": ["sim"],
            "partition": ["p"],
            "reason": ["duplicate"],
            "field": ["seq"],
            "raw": [b"{}"],
        }
    )
    lake.write("quarantine", q, {"target": "quotes", **PART})
    lake.write("quarantine", q.with_columns(target=pl.lit("instruments")), {"target": "instruments"})
    return lake


def test_views_expose_hive_keys(lake):
    rows = sql.query(lake, "select date::varchar, hour, count(*) from quotes group by all order by all").fetchall()
    assert rows == [("2026-11-20", "03", 3), ("2026-11-20", "04", 2)]


def test_tables_with_different_partition_keys_union_by_name(lake):
    rows = sql.query(lake, "select target, hour from quarantine order by target").fetchall()
    assert rows == [("instruments", None), ("quotes", "03")]


@pytest.mark.parametrize(
    "statement",
    [
        "copy (select 1) to 'x.csv'",
        "create table t as select 1",
        "drop view quotes",
        "attach 'x.db'",
        "install httpfs",
        "set threads=1",
        "select 1; delete from quotes",
    ],
)
def test_only_queries_run(lake, statement):
    with pytest.raises(sql.ReadOnlyViolation):
        sql.query(lake, statement)


def test_catalog_file_opens_in_any_duckdb_client_and_sees_new_partitions(lake, tmp_path):
    path = tmp_path / "catalog.duckdb"
    assert sql.write_catalog(lake, path) == ["quarantine", "quotes"]
    lake.write("quotes", quotes(4), {"date": "2026-11-20", "hour": "05"})
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("select count(*) from quotes").fetchall() == [(9,)]
