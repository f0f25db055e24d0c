"""The Dagster UI (`arbiter ui`: webserver + daemon) over a copy of the demo's history: GraphQL lists
the assets with their materialisations, and a backfill launched there runs through the daemon's
queue as one run over its range."""

import os
import shutil
import signal
import subprocess
import sys
import time

import httpx
import pytest

from arbiter.platform.lake import Lake
from tests.conftest import free_port, wait_for_http

ASSETS_QUERY = """
{ assetNodes { assetKey { path } groupName
    assetMaterializations(limit: 5) { partition runId } } }
"""
BACKFILL = """
mutation ($partitions: [String!]) {
  launchPartitionBackfill(backfillParams: {partitionNames: $partitions, assetSelection: [
    {path: ["simulator_ticks"]}, {path: ["simulated_arbitrage"]}, {path: ["quotes"]}, {path: ["quotes_quarantine"]}]}) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }
"""
BACKFILL_STATUS = """
query ($id: String!) { partitionBackfillOrError(backfillId: $id) {
  ... on PartitionBackfill { status runs { runId status tags { key value } } } } }
"""


@pytest.fixture(scope="module")
def ui(demo, tmp_path_factory):
    root = tmp_path_factory.mktemp("ui")
    home, lake = root / "home", root / "lake"
    shutil.copytree(demo.home, home)
    shutil.copytree(demo.lake, lake)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "arbiter.cli", "ui", "--home", str(home), "--lake", str(lake), "--port", str(port)],
        env={**os.environ, **demo.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # dagster dev starts the webserver and daemon as children
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/server_info", process, timeout=120)
        yield url, lake
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def graphql(url: str, query: str, **variables) -> dict:
    response = httpx.post(f"{url}/graphql", json={"query": query, "variables": variables}, timeout=60)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def test_graphql_lists_assets_and_latest_materialisations(ui):
    url, _ = ui
    nodes = {"/".join(n["assetKey"]["path"]): n for n in graphql(url, ASSETS_QUERY)["assetNodes"]}
    assert {"quotes", "simulator_ticks", "instruments", "market_stats_daily"} <= set(nodes)
    quotes = nodes["quotes"]
    assert quotes["groupName"] == "ingestion"
    assert len(quotes["assetMaterializations"]) == 2 and all(m["partition"] for m in quotes["assetMaterializations"])
    assert nodes["instruments"]["assetMaterializations"][0]["runId"]


def test_a_backfill_from_the_ui_runs_once_over_its_range(ui):
    url, lake_root = ui
    hours = ["2026-11-01-00:00", "2026-11-01-01:00", "2026-11-01-02:00"]
    launched = graphql(url, BACKFILL, partitions=hours)["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        backfill = graphql(url, BACKFILL_STATUS, id=launched["backfillId"])["partitionBackfillOrError"]
        if backfill["status"] not in ("REQUESTED", "IN_PROGRESS"):
            break
        time.sleep(2)
    assert backfill["status"] == "COMPLETED_SUCCESS", backfill
    (run,) = backfill["runs"]  # single-run backfill policy: one run for the whole range
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert (tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]) == (
        hours[0],
        hours[-1],
    )
    lake = Lake(str(lake_root))
    assert [p for p in lake.partitions("quotes") if p["date"] == "2026-11-01"] == [
        {"source": "simulator", "date": "2026-11-01", "hour": h} for h in ("00", "01", "02")
    ]
