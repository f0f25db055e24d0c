"""The Dagster webserver over the demo's home answers GraphQL with the assets and their materialisations."""

import os
import subprocess
import sys

import httpx

from tests.conftest import free_port, wait_for_http

QUERY = """
{ assetNodes { assetKey { path } groupName
    assetMaterializations(limit: 5) { partition runId } } }
"""


def test_graphql_lists_assets_and_latest_materialisations(demo):
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dagster_webserver",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-m",
            "arbiter.definitions",
            "-a",
            "defs",
        ],
        env={**os.environ, **demo.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/server_info", process, timeout=120)
        response = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": QUERY}, timeout=60)
        response.raise_for_status()
        nodes = {"/".join(n["assetKey"]["path"]): n for n in response.json()["data"]["assetNodes"]}
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert {"quotes", "simulator_ticks", "instruments", "market_stats_daily"} <= set(nodes)
    quotes = nodes["quotes"]
    assert quotes["groupName"] == "ingestion"
    assert len(quotes["assetMaterializations"]) == 2 and all(m["partition"] for m in quotes["assetMaterializations"])
    assert nodes["instruments"]["assetMaterializations"][0]["runId"]
