"""Resources of the enrichment steps, one per step, so each is configured and deployed on its own."""

from __future__ import annotations

import dagster as dg

from arbiter.platform.enrich.extraction import Extractor, OfflineExtractor


class ExtractorResource(dg.ConfigurableResource):
    """What reads documents into events. The offline rules are the embedded default: no model, no
    network, no key."""

    def extractor(self) -> Extractor:
        return OfflineExtractor()
