"""Shared fixtures: a small demo history built once, and an S3 API server (moto) on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import httpx
import pytest

# A small demo profile keeps the suite fast; the README's demo runs the full one.
SMALL_DEMO = {"ARBITER_SIM_RATE_SCALE": "0.05", "ARBITER_DEMO_HOURS": "2", "ARBITER_RL_TIMESTEPS": "2000"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode} before answering {url}")
        try:
            httpx.get(url, timeout=2.0)
            return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise TimeoutError(f"nothing answered {url} within {timeout} s")


def run_arbiter(*args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """The real command line, in a child process, as a user runs it."""
    result = subprocess.run(
        [sys.executable, "-m", "arbiter.cli", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"arbiter {' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result


def check_evaluations(instance: dg.DagsterInstance, asset: str, check: str) -> list[tuple[dg.DagsterRun, object]]:
    """Every evaluation of ``asset``'s ``check`` recorded in ``instance``, newest first, with its run."""
    key = dg.AssetCheckKey(dg.AssetKey(asset), check)
    records = instance.event_log_storage.get_asset_check_execution_history(key, limit=100)
    return [
        (instance.get_run_by_id(r.run_id), r.event.dagster_event.event_specific_data)
        for r in records
        if r.event and r.event.dagster_event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ]


@dataclass(frozen=True)
class Demo:
    home: Path
    lake: Path
    stdout: str
    env: dict[str, str]


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> Demo:
    root = tmp_path_factory.mktemp("demo")
    home, lake = root / "dagster_home", root / "lake"
    env = {**SMALL_DEMO, "DAGSTER_HOME": str(home), "ARBITER_LAKE": str(lake)}
    result = run_arbiter("demo", "--home", str(home), "--lake", str(lake), env=env)
    return Demo(home, lake, result.stdout, env)


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    env: dict[str, str]


@pytest.fixture(scope="session")
def s3_server() -> S3Server:
    """A real S3 API (moto's server mode) on a loopback port, in its own process."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(endpoint, process)
        env = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "ARBITER_S3_ENDPOINT": endpoint,
        }
        yield S3Server(endpoint, env)
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def s3_env(s3_server, monkeypatch) -> S3Server:
    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    return s3_server
