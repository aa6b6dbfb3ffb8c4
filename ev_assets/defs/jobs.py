"""Jobs and schedules. Schedules start stopped: turn them on in the UI for live polling."""


import dagster as dg

from ev_assets.defs.partitions import daily_partitions, poll_partitions
from ev_assets.defs.raw.chargecloud import chargecloud_polls, chargecloud_tables

chargecloud_assets = dg.AssetSelection.assets(chargecloud_polls, chargecloud_tables)

chargecloud_job = dg.define_asset_job(
    "chargecloud_job",
    selection=chargecloud_assets,
    partitions_def=poll_partitions,
    description="Poll chargecloud and flatten the polls into status facts and master data (one 10-minute window per partition).",
)

registry_job = dg.define_asset_job(
    "registry_job",
    selection=dg.AssetSelection.groups("raw") - chargecloud_assets,
    description="Pull the registries and session sources that are not polled every 10 minutes: Open Charge Map, OSM POIs, session reports, loads and events.",
)

warehouse_job = dg.define_asset_job(
    "warehouse_job",
    selection=dg.AssetSelection.groups("warehouse", "docs"),
    partitions_def=daily_partitions,
    description="Build the warehouse (dbt on DuckDB): star schema, inferred sessions, KPI marts, and the docs site, per UTC day.",
)

chargecloud_schedule = dg.build_schedule_from_partitioned_job(
    chargecloud_job, name="chargecloud_every_10_minutes", default_status=dg.DefaultScheduleStatus.STOPPED
)
registry_schedule = dg.ScheduleDefinition(
    name="registries_daily", job=registry_job, cron_schedule="0 3 * * *", execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
warehouse_schedule = dg.build_schedule_from_partitioned_job(
    warehouse_job, name="warehouse_daily", hour_of_day=0, minute_of_hour=30, default_status=dg.DefaultScheduleStatus.STOPPED
)

jobs = [chargecloud_job, registry_job, warehouse_job]
schedules = [chargecloud_schedule, registry_schedule, warehouse_schedule]
