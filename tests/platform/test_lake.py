import threading

import polars as pl
import pytest

from arbiter.platform.lake import Lake, LakeError, PartitionNotFound, SchemaMismatch, time_partition
from tests.platform.test_schema import _quote_row

PART = {"date": "2026-11-20", "hour": "03"}


def quotes(n: int, bid: float = 1.0) -> pl.DataFrame:
    return pl.concat([_quote_row(bid=pl.lit(bid))] * n)


def test_hive_layout_and_round_trip(tmp_path):
    lake = Lake(str(tmp_path))
    result = lake.write("quotes", quotes(3), PART)
    assert result.uri == f"{tmp_path}/quotes/date=2026-11-20/hour=03/part-0.parquet"
    assert result.rows == 3 and result.bytes > 0
    back = lake.read("quotes", [PART])
    assert back.height == 3 and back.columns == _quote_row().columns
    assert lake.partitions("quotes") == [PART]
    assert lake.tables() == ["quotes"]


def test_rewrite_replaces_the_partition_wholly_and_leaves_nothing_behind(tmp_path):
    lake = Lake(str(tmp_path))
    lake.write("quotes", quotes(5), PART)
    lake.write("quotes", quotes(2, bid=1.5), PART)
    back = lake.read("quotes")
    assert back.height == 2 and set(back.get_column("bid")) == {1.5}
    assert sorted(p.name for p in (tmp_path / "quotes/date=2026-11-20/hour=03").iterdir()) == ["part-0.parquet"]
    assert list((tmp_path / "_staging").iterdir()) == []


def test_bad_write_names_table_partition_column_and_keeps_previous(tmp_path):
    lake = Lake(str(tmp_path))
    lake.write("quotes", quotes(4), PART)
    with pytest.raises(SchemaMismatch) as info:
        lake.write("quotes", quotes(1).with_columns(bid=pl.lit("x")), PART)
    assert str(info.value).startswith("table 'quotes', partition 'date=2026-11-20/hour=03', column 'bid'")
    assert lake.read("quotes", [PART]).height == 4


def test_readers_never_see_a_half_written_partition(tmp_path):
    """A reader looping while a writer replaces the partition sees the old or the new, whole."""
    lake = Lake(str(tmp_path))
    sizes = (50_000, 120_000)
    lake.write("quotes", quotes(sizes[0]), PART)
    seen, errors, stop = set(), [], threading.Event()

    def reader():
        while not stop.is_set():
            try:
                seen.add(lake.read("quotes", [PART]).height)
            except Exception as exc:  # any torn read is a failure
                errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    for i in range(12):
        lake.write("quotes", quotes(sizes[(i + 1) % 2]), PART)
    stop.set()
    thread.join()
    assert not errors
    assert seen <= set(sizes) and seen


def test_missing_partition_is_named(tmp_path):
    lake = Lake(str(tmp_path))
    lake.write("quotes", quotes(1), PART)
    with pytest.raises(PartitionNotFound, match="'quotes', partition 'date=2026-11-20/hour=04'"):
        lake.read("quotes", [{"date": "2026-11-20", "hour": "04"}])


def test_partition_values_must_be_path_segments(tmp_path):
    with pytest.raises(LakeError, match="cannot be a path segment"):
        Lake(str(tmp_path)).write("quotes", quotes(1), {"date": "2026/11/20"})


def test_tables_outside_the_contract_keep_their_own_schema(tmp_path):
    lake = Lake(str(tmp_path))
    lake.write("features", pl.DataFrame({"x": [1, 2]}))
    assert lake.read("features").to_dict(as_series=False) == {"x": [1, 2]}


def test_time_partition_keys():
    from datetime import UTC, datetime

    assert time_partition(datetime(2026, 11, 20, 3, tzinfo=UTC)) == PART
    assert time_partition(datetime(2026, 11, 20, tzinfo=UTC), "day") == {"date": "2026-11-20"}
