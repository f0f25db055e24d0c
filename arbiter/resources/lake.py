"""Resources over the lake: the lake itself, DuckDB views of it, and the simulator's settings."""

from __future__ import annotations

import dagster as dg
import duckdb

from arbiter.platform import sql
from arbiter.platform.lake import Lake, S3Options
from arbiter.platform.sources.network import NetworkConfig
from arbiter.platform.sources.simulator import SimulatorConfig


class LakeResource(dg.ConfigurableResource):
    """Where the lake lives: a local folder or ``s3://bucket/prefix`` (one code path for both)."""

    root: str
    s3_endpoint: str | None = None

    def s3_options(self) -> S3Options:
        s3 = S3Options.from_env()
        if self.s3_endpoint:
            s3 = S3Options(self.s3_endpoint, s3.region, s3.access_key, s3.secret_key)
        return s3

    def lake(self) -> Lake:
        return Lake(self.root, self.s3_options())


class LandingResource(dg.ConfigurableResource):
    """Where file feeds are dropped: a local folder or ``s3://bucket/prefix``, on the lake's S3 settings."""

    root: str
    lake: LakeResource

    def locate(self, key: str) -> str:
        """A landed file's location: keys under the landing root are relative; a file ingested
        from elsewhere (``arbiter ingest``) is keyed by its own absolute path or URI."""
        if "://" in key or key.startswith("/"):
            return key
        return f"{self.root.rstrip('/')}/{key}"

    def s3(self) -> S3Options:
        return self.lake.s3_options()


class NetworkResource(dg.ConfigurableResource):
    """What the network sources poll: symbols (canonical, comma-separated), base URLs that replace a
    venue's own (``venue=url,...``, e.g. a proxy or a loopback venue) and announcement pages."""

    symbols: str = "BTC-USDT,ETH-USDT,SOL-USDT"
    base_urls: str = ""
    announcement_urls: str = ""

    def config(self) -> NetworkConfig:
        pairs = (p.split("=", 1) for p in self.base_urls.split(",") if p.strip())
        return NetworkConfig(
            symbols=tuple(s.strip() for s in self.symbols.split(",") if s.strip()),
            base_urls={venue.strip(): url.strip() for venue, url in pairs},
            announcement_urls=tuple(u.strip() for u in self.announcement_urls.split(",") if u.strip()),
        )


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
