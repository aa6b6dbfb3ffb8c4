"""The ev-assets code location: assembles the Dagster objects of `ev_assets.defs` (no I/O here)."""

import dagster as dg

from ev_assets.defs import jobs
from ev_assets.defs.raw import chargecloud, openchargemap, osm, quarantine, sessions
from ev_assets.defs.resources import EvConfig
from ev_assets.defs.warehouse import dbt, geo

defs = dg.Definitions(
    assets=[
        chargecloud.chargecloud_polls,
        chargecloud.chargecloud_tables,
        openchargemap.openchargemap_pull,
        openchargemap.ocm_tables,
        osm.osm_pulls,
        osm.osm_pois,
        *sessions.session_assets,
        quarantine.quarantine,
        geo.poi_station_map,
        dbt.warehouse_dbt_models,
        dbt.dbt_docs_site,
    ],
    jobs=jobs.jobs,
    schedules=jobs.schedules,
    resources={"ev_config": EvConfig(), "dbt": dbt.dbt_resource},
)
