"""Resources of the enrichment steps, one per step, so each is configured and deployed on its own."""

from __future__ import annotations

import dataclasses

import dagster as dg

from arbiter.platform.enrich.answer_cache import LakeAnswerCache
from arbiter.platform.enrich.entity_clusters import ClusterSettings
from arbiter.platform.enrich.extraction import Extractor, OfflineExtractor
from arbiter.platform.enrich.image_store import ImageStore
from arbiter.platform.enrich.images import DEFAULT_LIMITS, Limits
from arbiter.platform.enrich.instrument_clusters import InstrumentSettings
from arbiter.platform.enrich.model_extract import ModelExtractor, ModelSettings
from arbiter.platform.lake import Lake


class ExtractorResource(dg.ConfigurableResource):
    """What reads documents into events: a language model behind any OpenAI-compatible endpoint
    when ``OPENAI_BASE_URL`` or ``OPENAI_API_KEY`` is set (secrets stay in the environment; the
    ``ARBITER_LLM_*`` variables tune it), else the offline rules, the embedded default. The fields
    here override the environment's model, budget and concurrency for this deployment."""

    model: str | None = None
    budget_usd: float | None = None  # per run: calls stop when it is reached, the rest wait
    max_concurrency: int | None = None

    def extractor(self, lake: Lake) -> Extractor:
        settings = ModelSettings.from_env()
        if not settings.configured():
            return OfflineExtractor()
        given = {"model": self.model, "budget_usd": self.budget_usd, "max_concurrency": self.max_concurrency}
        settings = dataclasses.replace(settings, **{k: v for k, v in given.items() if v is not None})
        return ModelExtractor(settings, LakeAnswerCache(lake))


class ImageResource(dg.ConfigurableResource):
    """How pictures are read and described: the limits a picture must pass (bytes, pixels: a
    decompression bomb is refused before it is decoded), how long a remote picture may take, the
    worker threads, and the seed of the classifier's held-out evaluation."""

    max_bytes: int = DEFAULT_LIMITS.max_bytes
    max_pixels: int = DEFAULT_LIMITS.max_pixels
    fetch_timeout_s: float = 10.0
    workers: int | None = None  # default: one per CPU
    seed: int = 0

    def limits(self) -> Limits:
        return dataclasses.replace(DEFAULT_LIMITS, max_bytes=self.max_bytes, max_pixels=self.max_pixels)

    def store(self, lake: Lake) -> ImageStore:
        return ImageStore(lake, max_bytes=self.max_bytes, timeout_s=self.fetch_timeout_s)


class ClusterResource(dg.ConfigurableResource):
    """How listings are matched into products and markets into co-moving groups. Defaults are the
    settings measured in ``benchmarks/cluster_figures.py``."""

    min_score: float = ClusterSettings.min_score  # a candidate pair scoring less is never a link
    neighbours: int = ClusterSettings.neighbours  # candidates per listing on each other marketplace
    image_weight: float = ClusterSettings.image_weight  # share of the picture in a pair's score
    min_cluster_size: int = ClusterSettings.min_cluster_size
    grid: str = InstrumentSettings.grid  # sampling interval of market returns
    min_returns: int = InstrumentSettings.min_returns

    def listings(self) -> ClusterSettings:
        return ClusterSettings(
            min_score=self.min_score,
            neighbours=self.neighbours,
            image_weight=self.image_weight,
            min_cluster_size=self.min_cluster_size,
        )

    def instruments(self) -> InstrumentSettings:
        return InstrumentSettings(grid=self.grid, min_returns=self.min_returns)
