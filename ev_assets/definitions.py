"""The ev-assets code location: assembles the Dagster objects of `ev_assets.defs` (no I/O here)."""

import dagster as dg

from ev_assets.defs import jobs
from ev_assets.defs.raw import chargecloud, openchargemap
from ev_assets.defs.resources import EvConfig

defs = dg.Definitions(
    assets=[
        chargecloud.chargecloud_polls,
        chargecloud.chargecloud_tables,
        openchargemap.openchargemap_pull,
        openchargemap.ocm_tables,
    ],
    jobs=jobs.jobs,
    schedules=jobs.schedules,
    resources={"ev_config": EvConfig()},
)
