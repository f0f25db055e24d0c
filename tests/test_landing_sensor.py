"""The landing sensor under a real Dagster daemon: a file dropped into the landing folder is ingested
once (raw snapshot plus parsed rows), seeing it again changes nothing, and a changed file is
ingested again, replacing its partition."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from arbiter.instance import ensure_home
from arbiter.platform.lake import Lake

KLINES = Path(__file__).parent / "data" / "files" / "binance" / "ADABTC-1m-2021-11-27.csv"


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(1)
    raise TimeoutError(f"{what} within {timeout} s")


def finished_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return [r for r in instance.get_runs() if r.is_finished]


@pytest.fixture
def daemon(tmp_path):
    home, landing, lake = ensure_home(tmp_path / "home"), tmp_path / "landing", tmp_path / "lake"
    landing.mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(home), "ARBITER_LANDING": str(landing), "ARBITER_LAKE": str(lake)}
    # The instance's SQLite storage is created here, before the daemon and its code server start:
    # two processes creating it at once can leave it unusable (two alembic heads).
    instance = dg.DagsterInstance.from_config(str(home))
    log = (tmp_path / "daemon.log").open("w")
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-m", "arbiter.definitions", "-a", "defs"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield instance, landing, Lake(str(lake))
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        log.close()


def test_a_landed_file_is_ingested_once_and_again_when_it_changes(daemon):
    instance, landing, lake = daemon
    dropped = landing / "binance" / KLINES.name
    dropped.parent.mkdir()
    shutil.copyfile(KLINES, dropped)

    (run,) = wait_for(lambda: finished_runs(instance), 240, "no run finished")
    assert run.status == dg.DagsterRunStatus.SUCCESS and run.tags["dagster/partition"] == str(dropped)
    assert lake.read("raw_snapshots")["body"].to_list() == [KLINES.read_bytes()]
    bars = lake.read("bars")
    assert bars.height == len(KLINES.read_text().splitlines()) and set(bars["symbol"]) == {"ADA-BTC"}

    # Two more sensor ticks (30 s apart) with the file unchanged: no new run, still one snapshot.
    seen = len(instance.get_runs())
    time.sleep(65)
    assert len(instance.get_runs()) == seen and lake.read("raw_snapshots").height == 1

    # A changed file (one more line) is a new version: ingested again, replacing its partition.
    last = KLINES.read_text().splitlines()[-1].split(",")
    last[0], last[6] = str(int(last[0]) + 60_000), str(int(last[6]) + 60_000)
    with dropped.open("a") as f:
        f.write(",".join(last) + "\n")
    wait_for(lambda: len(finished_runs(instance)) == 2, 240, "the changed file was not ingested again")
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in instance.get_runs())
    assert lake.read("raw_snapshots")["body"].to_list() == [dropped.read_bytes()]
    assert lake.read("bars").height == bars.height + 1
