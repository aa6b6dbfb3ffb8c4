"""Jobs and schedules. Schedules start stopped: turn them on in the UI for live polling."""

import dagster as dg

from ev_assets.defs.partitions import daily_partitions, poll_partitions
from ev_assets.defs.raw.chargecloud import chargecloud_polls, chargecloud_tables
from ev_assets.defs.warehouse.dbt import warehouse_dbt_daily, warehouse_dbt_models

chargecloud_poll_job = dg.define_asset_job(
    "chargecloud_poll_job",
    selection=dg.AssetSelection.assets(chargecloud_polls),
    partitions_def=poll_partitions,
    description="Poll chargecloud: one stored poll per 10-minute partition (a range runs as one run).",
)

RAW_ASSETS = dg.AssetSelection.groups("raw") - dg.AssetSelection.assets(chargecloud_polls)
# dbt's tests on the raw tables (source tests) are checks too; they run with the dbt models, in the warehouse job
DBT_CHECKS = dg.AssetSelection.checks(*warehouse_dbt_models.check_keys, *warehouse_dbt_daily.check_keys)

ingest_job = dg.define_asset_job(
    "ingest_job",
    # the raw tables with the checks their own assets run (data contracts, unusable files)
    selection=RAW_ASSETS - DBT_CHECKS,
    partitions_def=daily_partitions,
    description="Flatten the day's stored polls into status facts and master data, and pull the registries and "
    "session sources (Open Charge Map, OSM POIs, session reports, loads, events).",
)

# The part of ingestion that grows with the fleet: one run per day, days in parallel on workers (EV_EXECUTOR=celery)
chargecloud_ingest_job = dg.define_asset_job(
    "chargecloud_ingest_job",
    selection=dg.AssetSelection.assets(chargecloud_tables) - DBT_CHECKS,  # dbt's source tests run with the warehouse
    partitions_def=daily_partitions,
    description="Flatten a day's stored chargecloud polls into the lake's status facts and master data (the part of "
    "ingest_job that grows with the fleet): days are independent partitions, so their runs can run at once.",
)

# A replay without chargecloud polls has no day to ingest: the other sources still load (`make ingest`)
sources_job = dg.define_asset_job(
    "sources_job",
    selection=RAW_ASSETS - DBT_CHECKS - dg.AssetSelection.assets(chargecloud_tables),
    description="Pull the registries and session sources (Open Charge Map, OSM POIs, session reports, loads, events, "
    "vehicle telemetry) without the chargecloud tables: what `make ingest` runs when there are no polls.",
)

warehouse_job = dg.define_asset_job(
    "warehouse_job",
    # plus dbt's tests on the raw tables (source tests), which run with the dbt models
    selection=dg.AssetSelection.groups("warehouse", "docs", "serving") | DBT_CHECKS,
    partitions_def=daily_partitions,
    description="Build the warehouse (dbt on DuckDB): star schema, inferred sessions, KPI marts, the docs site, and "
    "the read-only snapshot of the marts the service reads, per UTC day.",
)

# The raw tables that hold everything ever pulled (session sources, vehicle telemetry): each reads the whole raw
# store, so running them again is their rebuild from the raw store alone (`make rebuild-raw`).
ACCUMULATED = ("session_reports", "hourly_loads", "acn_sessions", "charging_events", "vehicle_telemetry")
rebuild_raw_job = dg.define_asset_job(
    "rebuild_raw_job",
    selection=dg.AssetSelection.assets(*(dg.AssetKey(["raw", name]) for name in ACCUMULATED)),
    description="Rebuild the session and telemetry tables from the raw store alone (no pull): the result equals the "
    "accumulated tables.",
)

chargecloud_schedule = dg.build_schedule_from_partitioned_job(
    chargecloud_poll_job, name="chargecloud_every_10_minutes", default_status=dg.DefaultScheduleStatus.STOPPED
)
ingest_schedule = dg.build_schedule_from_partitioned_job(
    ingest_job, name="ingest_daily", hour_of_day=0, minute_of_hour=15, default_status=dg.DefaultScheduleStatus.STOPPED
)
warehouse_schedule = dg.build_schedule_from_partitioned_job(
    warehouse_job, name="warehouse_daily", hour_of_day=0, minute_of_hour=45, default_status=dg.DefaultScheduleStatus.STOPPED
)

defs = dg.Definitions(
    jobs=[chargecloud_poll_job, ingest_job, chargecloud_ingest_job, sources_job, warehouse_job, rebuild_raw_job],
    schedules=[chargecloud_schedule, ingest_schedule, warehouse_schedule],
)
