"""Partition definitions shared by the asset graph."""

import dagster as dg

from arbiter.platform.sources.simulator import ORIGIN

HOURLY = dg.HourlyPartitionsDefinition(start_date=ORIGIN.strftime("%Y-%m-%d-%H:%M"), timezone="UTC")
DAILY = dg.DailyPartitionsDefinition(start_date=ORIGIN.strftime("%Y-%m-%d"), timezone="UTC")
