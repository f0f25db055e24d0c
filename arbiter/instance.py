"""The Dagster home: where the instance keeps its runs, events and schedules."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dagster as dg

# arbiter/dagster.yaml links to the checkout's root dagster.yaml, so the template is one file
# and still ships inside the package.
DEFAULT_INSTANCE_YAML = Path(__file__).with_name("dagster.yaml")


def ensure_home(home: Path) -> Path:
    """Create ``home`` if needed and give it the embedded default ``dagster.yaml`` if it has none."""
    home = home.expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        shutil.copyfile(DEFAULT_INSTANCE_YAML, config)
    return home


def open_instance(home: Path) -> dg.DagsterInstance:
    """The instance living in ``home`` (prepared with ``ensure_home``); also exported as DAGSTER_HOME
    so that anything this process starts (runs, the UI) uses the same one."""
    home = ensure_home(home)
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.from_config(str(home))
