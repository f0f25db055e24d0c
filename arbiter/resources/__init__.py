"""Dagster resources wrapping platform pieces, all chosen in one place (``build_resources``)."""

from arbiter.platform.settings import Settings
from arbiter.resources.enrichment import ClusterResource, ExtractorResource, ImageResource
from arbiter.resources.io_manager import LakeIOManager
from arbiter.resources.lake import DuckDBResource, LakeResource, LandingResource, NetworkResource, SimulatorResource
from arbiter.resources.learning import LearningResource


def build_resources(settings: Settings | None = None) -> dict:
    """The resources for the environment described by ``settings`` (default: the process environment).

    The lake is the same class whether its root is a local folder or an ``s3://`` prefix.
    """
    settings = settings or Settings.from_env()
    lake = LakeResource(root=settings.lake, s3_endpoint=settings.s3_endpoint)
    return {
        "io_manager": LakeIOManager(lake=lake),
        "lake": lake,
        "duckdb": DuckDBResource(lake=lake),
        "landing": LandingResource(root=settings.landing, lake=lake),
        "network_sources": NetworkResource(
            symbols=settings.rest_symbols,
            base_urls=settings.rest_base_urls,
            announcement_urls=settings.announcement_urls,
        ),
        "simulator_settings": SimulatorResource(seed=settings.sim_seed, rate_scale=settings.sim_rate_scale),
        "extractor": ExtractorResource(),
        "images": ImageResource(),
        "clustering": ClusterResource(),
        "learning": LearningResource(total_timesteps=settings.rl_timesteps),
    }


__all__ = [
    "ClusterResource",
    "DuckDBResource",
    "ExtractorResource",
    "ImageResource",
    "LakeIOManager",
    "LakeResource",
    "LandingResource",
    "LearningResource",
    "NetworkResource",
    "SimulatorResource",
    "build_resources",
]
