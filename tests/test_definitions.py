"""The definitions load in every shape they are deployed in, and every asset follows house rules."""

import os
import subprocess
import sys

import dagster as dg
import pytest

from arbiter import definitions

ALL = [definitions.defs, definitions.ingestion, definitions.enrichment, definitions.analytics]


@pytest.mark.parametrize("defs", ALL, ids=["all", "ingestion", "enrichment", "analytics"])
def test_definitions_load(defs):
    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_asset_graph().get_all_asset_keys()


def test_definitions_load_with_an_s3_lake(monkeypatch):
    monkeypatch.setenv("ARBITER_LAKE", "s3://arbiter-lake/prod")
    defs = definitions.build_definitions()
    dg.Definitions.validate_loadable(defs)
    assert defs.resources["io_manager"].lake.root == "s3://arbiter-lake/prod"


def test_every_asset_is_described_versioned_grouped_and_checked():
    graph = definitions.defs.resolve_asset_graph()
    checked = {key.asset_key for key in graph.asset_check_keys}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        name = key.to_user_string()
        assert node.code_version, name
        assert node.description and len(node.description) > 40, name
        assert node.group_name and node.group_name != "default", name
        assert node.owners, name
        if node.partitions_def is not None:
            assert node.backfill_policy is not None, f"{name} states no backfill policy"
        assert key in checked, f"{name} has no asset check"


def test_dagster_definitions_validate_passes(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=os.path.dirname(os.path.dirname(__file__)),
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
