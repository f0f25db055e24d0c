"""``image_features`` from ``listings``, partition by partition, only where something is new.

Each ``listings`` partition has an ``image_features`` partition of the same keys (one row per
listing whose picture could be described) and its bad pictures go to ``quarantine`` under
``target=image_features``. A partition is described again when its listings were rewritten or the
features or the classifier changed (``derived.plan``, with both versions in the method).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from arbiter.platform import derived
from arbiter.platform.enrich.image_classifier import OnnxClassifier
from arbiter.platform.enrich.image_features import FEATURE_VERSION, TARGET, image_features, image_records
from arbiter.platform.enrich.image_store import ImageStore
from arbiter.platform.enrich.images import DEFAULT_LIMITS, Limits
from arbiter.platform.lake import Lake

SOURCE = "listings"


@dataclass
class DerivedImages:
    method: str
    up_to_date: int = 0
    partitions: list[dict] = field(default_factory=list)  # per partition read: counts
    reasons: Counter = field(default_factory=Counter)
    misses: dict[str, str] = field(default_factory=dict)  # image_uri -> why it could not be read
    seconds: float = 0.0

    def totals(self) -> dict[str, int]:
        return {k: sum(p[k] for p in self.partitions) for k in ("listings", "pictured", "described", "quarantined")}


def method_of(classifier: OnnxClassifier) -> str:
    return f"{FEATURE_VERSION}/{classifier.version}"


def derive_image_features(
    lake: Lake,
    classifier: OnnxClassifier,
    store: ImageStore,
    limits: Limits = DEFAULT_LIMITS,
    workers: int | None = None,
) -> DerivedImages:
    """Describe the pictures of every listings partition not yet described with these versions."""
    report = DerivedImages(method_of(classifier))
    pending, report.up_to_date = derived.plan(lake, SOURCE, TARGET, report.method)
    started = time.perf_counter()

    def describe(todo: derived.Pending) -> derived.Derivation:
        listings = lake.read(SOURCE, [todo.partition])
        pictured = listings.filter(listings.get_column("image_uri").is_not_null())
        images = store.fetch(todo.partition, pictured.get_column("image_uri").to_list())
        records = image_records(pictured, images)
        features, quarantine = image_features(records, classifier, partition=todo.label, limits=limits, workers=workers)
        counts = {
            "partition": todo.label,
            "reason": todo.reason,
            "listings": listings.height,
            "pictured": pictured.height,
            "described": features.height,
            "quarantined": quarantine.height,
        }
        return derived.Derivation(features, quarantine, detail=(counts, quarantine))

    for _, result in derived.derive_pending(lake, pending, TARGET, report.method, describe):
        counts, quarantine = result.detail
        report.partitions.append(counts)
        report.reasons.update(quarantine.get_column("reason").to_list())
    report.seconds = time.perf_counter() - started
    report.misses = dict(store.misses)
    return report
