"""Partition definitions shared by the asset graph."""

import dagster as dg

from arbiter.platform.sources.simulator import ORIGIN

HOURLY = dg.HourlyPartitionsDefinition(start_date=ORIGIN.strftime("%Y-%m-%d-%H:%M"), timezone="UTC")
# Days include the current one (end_offset=1): today's stats so far are worth having, and a later
# run replaces the partition wholly.
DAILY = dg.DailyPartitionsDefinition(start_date=ORIGIN.strftime("%Y-%m-%d"), timezone="UTC", end_offset=1)
# Polled sources write into the hour that is still running: its partition exists (end_offset=1)
# and every poll adds to it until the hour closes.
CURRENT_HOURLY = dg.HourlyPartitionsDefinition(
    start_date=ORIGIN.strftime("%Y-%m-%d-%H:%M"), timezone="UTC", end_offset=1
)
