"""A backfill over three partitions writes exactly what three single materialisations write."""

import dagster as dg

from arbiter.platform.lake import Lake
from arbiter.platform.settings import Settings
from arbiter.runner import materialize_selection

HOURS = ["2026-03-02-10:00", "2026-03-02-11:00", "2026-03-02-12:00"]


def build(tmp_path, name: str, monkeypatch) -> Settings:
    monkeypatch.setenv("ARBITER_LAKE", str(tmp_path / name / "lake"))
    monkeypatch.setenv("ARBITER_SIM_RATE_SCALE", "0.02")
    return Settings.from_env()


def test_backfill_of_three_partitions_equals_three_single_runs(tmp_path, monkeypatch):
    instance = dg.DagsterInstance.ephemeral()
    together = build(tmp_path, "backfill", monkeypatch)
    outcomes = materialize_selection(
        "simulator_ticks+", partition=f"{HOURS[0]}...{HOURS[-1]}", settings=together, instance=instance
    )
    assert [o.partitions for o in outcomes] == [f"{HOURS[0]}...{HOURS[-1]}"] * 2  # one run per multi-asset

    apart = build(tmp_path, "single", monkeypatch)
    for hour in HOURS:
        assert all(
            o.success
            for o in materialize_selection("simulator_ticks+", partition=hour, settings=apart, instance=instance)
        )

    for table in ("simulator_ticks", "quotes", "quarantine", "simulated_arbitrage"):
        a, b = Lake(together.lake), Lake(apart.lake)
        assert a.partitions(table) == b.partitions(table) and len(a.partitions(table)) == 3
        for part in a.partitions(table):
            left, right = a.read(table, [part]), b.read(table, [part])
            assert left.height > 0
            assert left.equals(right), f"{table} {part} differs"
