"""Resources over the lake: the lake itself, DuckDB views of it, and the simulator's settings."""

from __future__ import annotations

import dagster as dg
import duckdb

from arbiter.platform import sql
from arbiter.platform.lake import Lake, S3Options
from arbiter.platform.sources.simulator import SimulatorConfig


class LakeResource(dg.ConfigurableResource):
    """Where the lake lives: a local folder or ``s3://bucket/prefix`` (one code path for both)."""

    root: str
    s3_endpoint: str | None = None

    def lake(self) -> Lake:
        s3 = S3Options.from_env()
        if self.s3_endpoint:
            s3 = S3Options(self.s3_endpoint, s3.region, s3.access_key, s3.secret_key)
        return Lake(self.root, s3)


class DuckDBResource(dg.ConfigurableResource):
    """DuckDB with a view per lake table, for assets that are easiest said in SQL."""

    lake: LakeResource

    def connect(self) -> duckdb.DuckDBPyConnection:
        return sql.connect(self.lake.lake())


class SimulatorResource(dg.ConfigurableResource):
    """The market simulator's knobs: the seed and how busy the venues are."""

    seed: int = 7
    rate_scale: float = 1.0

    def config(self) -> SimulatorConfig:
        return SimulatorConfig(seed=self.seed, rate_scale=self.rate_scale)
