"""Points of interest near each charging station: the POI-station mapping of the star schema."""


import dagster as dg

from ev_assets.defs.resources import EvConfig
from ev_assets.defs.tables import table_metadata, table_spec
from ev_assets.lib import geo
from ev_assets.lib.lake import WHOLE

SOURCE = "geo"  # its partition in the lake: derived from OSM and chargecloud, not pulled
LATEST_STATIONS = """
    SELECT station_id, latitude, longitude FROM raw.chargingstations
    QUALIFY row_number() OVER (PARTITION BY station_id ORDER BY last_seen_at DESC) = 1
"""


@dg.multi_asset(
    specs=[
        table_spec(
            "poi_station_map",
            "Every OSM point of interest within EV_POI_RADIUS_M (default 500 m) of a charging station, with the "
            "distance in metres computed in EPSG:25832.",
            group_name="warehouse",
            deps=[["raw", "osm_pois"], ["raw", "chargingstations"]],
        )
    ],
)
def poi_station_map(context: dg.AssetExecutionContext, ev_config: EvConfig):
    settings = ev_config.settings()
    with ev_config.lake_connect() as con:
        stations = con.execute(LATEST_STATIONS).df()
        pois = con.execute("SELECT poi_id, category, latitude, longitude FROM raw.osm_pois").df()
        mapping = geo.poi_station_map(stations, pois, settings.poi_radius_m)
    written = ev_config.lake().write("poi_station_map", mapping, SOURCE, WHOLE)
    with ev_config.lake_connect() as con:
        context.log.info(f"{written} station-POI pairs within {settings.poi_radius_m} m of {len(stations)} stations")
        meta = table_metadata(con, "poi_station_map", written)
    meta["stations_with_a_poi_nearby"] = int(mapping["station_id"].nunique()) if written else 0
    meta["radius_m"] = settings.poi_radius_m
    yield dg.MaterializeResult(asset_key=["raw", "poi_station_map"], metadata=meta)
