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


def test_a_column_named_like_a_hive_key_keeps_its_own_values(tmp_path):
    """``documents`` live under ``source=<ingestion source>`` while their ``source`` column is the
    venue: the view shows the column, and the other keys decoded and typed as Hive keys are."""
    lake = Lake(str(tmp_path / "lake"))
    docs = pl.DataFrame(
        {
            "ts": [0, 0],
            "source": ["okx", "kraken"],
            "doc_id": ["a", "b"],
            "title": [None, None],
            "body": ["x", "y"],
            "url": [None, None],
        }
    ).with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC")))
    lake.write("documents", docs, {"source": "files", "file": "%2Fdata%2Fnews.jsonl"})
    lake.write("documents", docs.head(1), {"source": "simulator", "date": "2026-11-20", "hour": "04"})
    con = sql.connect(lake)
    rows = con.execute("select source, file, date, hour from documents order by file nulls first, source").fetchall()
    assert [r[:2] for r in rows] == [("okx", None), ("kraken", "/data/news.jsonl"), ("okx", "/data/news.jsonl")]
    assert str(rows[0][2]) == "2026-11-20" and rows[0][3] == "04"  # as the plain Hive view types them
