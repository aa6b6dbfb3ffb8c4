"""Partitions shared by the asset graph.

Polls are partitioned on a fixed 10-minute grid (UTC). `EV_POLL_INTERVAL_MINUTES` sets how often a source is
polled inside those windows; it cannot move the grid, because partitions are fixed when the code loads.
"""

import dagster as dg

PARTITIONS_START = "2021-09-01"

poll_partitions = dg.TimeWindowPartitionsDefinition(
    cron_schedule="*/10 * * * *",
    start=f"{PARTITIONS_START}-00:00",
    fmt="%Y-%m-%d-%H:%M",
    timezone="UTC",
)

daily_partitions = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, timezone="UTC")
