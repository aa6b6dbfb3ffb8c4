"""Partitions shared by the asset graph.

Polls are partitioned on a fixed grid (UTC) of `POLL_GRID_MINUTES` (10, a var of the dbt project, see
`ev_assets.lib.vocabulary`). `EV_POLL_INTERVAL_MINUTES` sets how often a source is polled inside those windows; it
cannot move the grid, because partitions are fixed when the code loads.
"""

import dagster as dg

from ev_assets.lib.sources.chargecloud import PARTITIONS_START as FIRST_POLL
from ev_assets.lib.vocabulary import POLL_GRID_MINUTES

PARTITIONS_START = f"{FIRST_POLL:%Y-%m-%d}"
POLL_KEY_FORMAT = "%Y-%m-%d-%H:%M"

poll_partitions = dg.TimeWindowPartitionsDefinition(
    cron_schedule=f"*/{POLL_GRID_MINUTES} * * * *",
    start=f"{PARTITIONS_START}-00:00",
    fmt=POLL_KEY_FORMAT,
    timezone="UTC",
)

daily_partitions = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, timezone="UTC")
