"""Software-defined assets: thin wrappers that call platform functions and attach metadata and checks."""

from arbiter.assets.analytics import market_stats_daily
from arbiter.assets.quotes import normalised_quotes
from arbiter.assets.reference import instruments
from arbiter.assets.simulator import simulator_snapshots

INGESTION = [instruments, simulator_snapshots, normalised_quotes]
ANALYTICS = [market_stats_daily]
ALL = [*INGESTION, *ANALYTICS]
