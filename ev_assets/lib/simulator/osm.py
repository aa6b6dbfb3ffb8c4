"""Simulated OpenStreetMap points of interest, shaped like `osmnx.features_from_xml` / `features_from_place`."""

from __future__ import annotations

import math
from dataclasses import replace

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import Point, Polygon

from ev_assets.lib.settings import SimulationSettings

from . import _places
from .fleet import build_fleet

TAG_KEYS = ("amenity", "shop", "highway")
COLUMNS = ["geometry", "amenity", "shop", "highway", "name", "brand"]


def osm_features(sim: SimulationSettings, city: str, tags: dict) -> gpd.GeoDataFrame:
    """POIs of `city` matching `tags` with osmnx semantics: {key: True} any value, {key: value or [values]};
    the result is the union over keys. MultiIndex (element, id), EPSG:4326; an empty frame when nothing matches.

    A city outside `sim.cities` is still served: each city's features depend only on the seed and the city.
    """
    _places.city(city)
    if city not in sim.cities:
        sim = replace(sim, cities=(city,))
    pois = build_fleet(sim).pois
    pois = pois[(pois["city_slug"] == city) & _matches(pois, tags)]
    return _frame(pois)


def _matches(pois: pd.DataFrame, tags: dict) -> pd.Series:
    mask = pd.Series(False, index=pois.index)
    for key, wanted in (tags or {}).items():
        has_key = pois["tag_key"] == key
        if wanted is True:
            mask |= has_key
        elif wanted:
            values = [wanted] if isinstance(wanted, str) else list(wanted)
            mask |= has_key & pois["tag_value"].isin(values)
    return mask


def _frame(pois: pd.DataFrame) -> gpd.GeoDataFrame:
    index = pd.MultiIndex.from_arrays(
        [pois["element"].to_numpy(dtype=object), pois["osm_id"].to_numpy(dtype=np.int64)], names=["element", "id"])
    columns = {key: _tag(pois["tag_value"].where(pois["tag_key"] == key)) for key in TAG_KEYS}
    columns["name"] = _tag(pois["name"])
    columns["brand"] = _tag(pois["brand"])
    geometry = gpd.GeoSeries([_geometry(p) for p in pois.itertuples(index=False)], index=index, crs="EPSG:4326")
    return gpd.GeoDataFrame({"geometry": geometry, **{k: pd.Series(v, index=index, dtype=object)
                                                       for k, v in columns.items()}}, geometry="geometry")[COLUMNS]


def _tag(values: pd.Series) -> np.ndarray:
    """Tag values as objects, NaN where a feature lacks the tag (as osmnx has it)."""
    out = values.to_numpy(dtype=object)
    out[pd.isna(out)] = np.nan
    return out


def _geometry(p) -> Point | Polygon:
    """Nodes are points; ways (buildings, lots) are rectangles of the POI's footprint around its centre."""
    if p.element == "node":
        return Point(p.longitude, p.latitude)
    half_lat = p.size_m / 2 / 111_320.0
    half_lon = p.size_m / 2 / (111_320.0 * math.cos(math.radians(p.latitude)))
    lat, lon = p.latitude, p.longitude
    return Polygon([(lon - half_lon, lat - half_lat), (lon + half_lon, lat - half_lat),
                    (lon + half_lon, lat + half_lat), (lon - half_lon, lat + half_lat)])
