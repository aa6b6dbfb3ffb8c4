"""`raw.quarantine`: the records every source could not load as they are, with the reason. Written by the table
assets of each source (each replaces its own rows), so it is declared here only to show its lineage."""

import dagster as dg

from ev_assets.defs.tables import column_schema

WRITERS = [
    ["raw", "status_chargingpoints"],  # written by the chargecloud_tables step
    ["raw", "ocm_stations"],
    ["raw", "session_reports"],
    ["raw", "hourly_loads"],
    ["raw", "acn_sessions"],
    ["raw", "charging_events"],
    ["raw", "vehicle_telemetry"],
]

quarantine = dg.AssetSpec(
    key=["raw", "quarantine"],
    description=__doc__,
    group_name="raw",
    deps=WRITERS,
    kinds={"parquet"},
    metadata={"dagster/column_schema": column_schema("quarantine"), "dagster/table_name": "warehouse.raw.quarantine"},
)
