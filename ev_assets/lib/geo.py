"""Spatial logic: which points of interest lie near which charging station."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from ev_assets.lib import tables

METRIC_CRS = "EPSG:25832"  # ETRS89 / UTM 32N: metres, accurate across Germany


def _points(frame: pd.DataFrame) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        frame, geometry=gpd.points_from_xy(frame["longitude"], frame["latitude"]), crs="EPSG:4326"
    ).to_crs(METRIC_CRS)


def poi_station_map(stations: pd.DataFrame, pois: pd.DataFrame, radius_m: float) -> pd.DataFrame:
    """Every (station, POI) pair closer than `radius_m`, with the distance in metres.

    `stations` needs station_id, latitude, longitude; `pois` needs poi_id, category, latitude, longitude.
    Stations or POIs without coordinates cannot be placed and are left out (they stay in their own tables).
    """
    out_cols = tables.columns("poi_station_map")
    stations = stations.dropna(subset=["latitude", "longitude"])
    pois = pois.dropna(subset=["latitude", "longitude"])
    if stations.empty or pois.empty:
        return pd.DataFrame(columns=out_cols)
    st = _points(stations[["station_id", "latitude", "longitude"]].reset_index(drop=True))
    po = _points(pois[["poi_id", "category", "latitude", "longitude"]].reset_index(drop=True))
    areas = st[["station_id", "geometry"]].copy()
    areas["geometry"] = st.geometry.buffer(radius_m)
    pairs = gpd.sjoin(areas, po[["poi_id", "category", "geometry"]], predicate="intersects", how="inner")
    if pairs.empty:
        return pd.DataFrame(columns=out_cols)
    station_xy = st.geometry.loc[pairs.index].reset_index(drop=True)
    poi_xy = po.geometry.loc[pairs["index_right"]].reset_index(drop=True)
    result = pd.DataFrame(
        {
            "station_id": pairs["station_id"].to_numpy(),
            "poi_id": pairs["poi_id"].to_numpy(),
            "category": pairs["category"].to_numpy(),
            "distance_m": station_xy.distance(poi_xy).round(1).to_numpy(),
            "radius_m": float(radius_m),
        }
    )
    result = result[result["distance_m"] <= radius_m]
    return result.sort_values(["station_id", "distance_m", "poi_id"]).reset_index(drop=True)[out_cols]
