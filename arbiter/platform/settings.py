"""Every setting arbiter reads, in one place, with defaults that run the demo.

Settings come from the environment only (never from files in the lake), so the same code runs
the embedded default and production; the README lists each one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    try:
        return float(raw) if raw not in (None, "") else default
    except ValueError as exc:
        raise ValueError(f"setting {name}={raw!r} is not a number") from exc


def _location(value: str) -> str:
    """A URI as given; a local folder made absolute, so runs launched elsewhere find it."""
    return value if "://" in value else str(Path(value).expanduser().resolve())


@dataclass(frozen=True)
class Settings:
    lake: str  # local folder or s3://bucket/prefix
    dagster_home: Path
    s3_endpoint: str | None
    sim_seed: int
    sim_rate_scale: float
    demo_hours: int
    landing: str  # folder or s3://bucket/prefix where file feeds are dropped
    rest_symbols: str  # canonical symbols the REST sources poll, comma-separated
    rest_base_urls: str  # venue=url,... replacing venues' own base URLs
    announcement_urls: str  # announcement index pages or listings to crawl, comma-separated
    rl_timesteps: int  # environment steps per policy trained (one per walk-forward fold and seed)

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            lake=_location(os.environ.get("ARBITER_LAKE") or "lake"),
            dagster_home=Path(os.environ.get("DAGSTER_HOME") or ".dagster").expanduser().resolve(),
            s3_endpoint=os.environ.get("ARBITER_S3_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL") or None,
            sim_seed=int(_float("ARBITER_SIM_SEED", 7)),
            sim_rate_scale=_float("ARBITER_SIM_RATE_SCALE", 1.0),
            demo_hours=int(_float("ARBITER_DEMO_HOURS", 6)),
            landing=_location(os.environ.get("ARBITER_LANDING") or "landing"),
            rest_symbols=os.environ.get("ARBITER_REST_SYMBOLS") or "BTC-USDT,ETH-USDT,SOL-USDT",
            rest_base_urls=os.environ.get("ARBITER_REST_BASE_URLS", ""),
            announcement_urls=os.environ.get("ARBITER_ANNOUNCEMENT_URLS", ""),
            rl_timesteps=int(_float("ARBITER_RL_TIMESTEPS", 60_000)),
        )
