"""The warehouse: the POI-station mapping, the dbt project (star schema, sessions, KPI marts, docs site), and the
read-only snapshot of the marts that the service reads."""

import dagster as dg

from ev_assets.defs.warehouse import dbt, geo, serving

defs = dg.Definitions(
    assets=[geo.poi_station_map, dbt.warehouse_dbt_daily, dbt.warehouse_dbt_models, dbt.dbt_docs_site, serving.marts_snapshot],
    resources={"dbt": dbt.dbt_resource},
)
