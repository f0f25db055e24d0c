"""Software-defined assets: thin wrappers that call platform functions and attach metadata and checks."""

from arbiter.assets.analytics import market_stats_daily
from arbiter.assets.enrichment import (
    document_events,
    entity_clusters,
    image_classifier,
    image_features,
    instrument_clusters,
)
from arbiter.assets.file_feeds import file_rows, landed_file
from arbiter.assets.learning import (
    champion_policy,
    feature_drift,
    opportunities,
    policy_evaluation,
    rl_policy,
    training_set,
)
from arbiter.assets.network_sources import source_rows, source_snapshots
from arbiter.assets.quotes import normalised_quotes
from arbiter.assets.reference import instruments
from arbiter.assets.simulator import simulator_announcements, simulator_listings, simulator_snapshots

INGESTION = [
    instruments,
    simulator_snapshots,
    simulator_announcements,
    simulator_listings,
    normalised_quotes,
    landed_file,
    file_rows,
    source_snapshots,
    source_rows,
]
ENRICHMENT = [document_events, image_classifier, image_features, entity_clusters, instrument_clusters]
LEARNING = [opportunities, training_set, rl_policy, policy_evaluation, champion_policy]
LEARNING_CHECKS = [feature_drift]
ANALYTICS = [market_stats_daily]
ALL = [*INGESTION, *ENRICHMENT, *LEARNING, *LEARNING_CHECKS, *ANALYTICS]
