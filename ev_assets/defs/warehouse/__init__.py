"""The warehouse: the POI-station mapping and the dbt project (star schema, sessions, KPI marts, docs site)."""

import dagster as dg

from ev_assets.defs.warehouse import dbt, geo

defs = dg.Definitions(
    assets=[geo.poi_station_map, dbt.warehouse_dbt_models, dbt.dbt_docs_site],
    resources={"dbt": dbt.dbt_resource},
)
