"""Raw pulls of every source and the tables flattened from them (schema `raw`)."""

import dagster as dg

from ev_assets.defs.raw import chargecloud, openchargemap, osm, quarantine, sessions, telemetry

defs = dg.Definitions(
    assets=[
        chargecloud.chargecloud_polls,
        chargecloud.chargecloud_tables,
        openchargemap.openchargemap_pull,
        openchargemap.ocm_tables,
        osm.osm_pulls,
        osm.osm_pois,
        *sessions.session_assets,
        *telemetry.telemetry_assets,
        quarantine.quarantine,
    ],
)
