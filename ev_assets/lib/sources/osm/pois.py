"""OpenStreetMap POIs: osmnx features flattened into `osm_pois` rows, and written as GeoParquet."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import geopandas as gpd
import pandas as pd
import shapely

from ev_assets.lib.values import cell_text
from ev_assets.lib.sources.osm.fetch import CRS, Tags, _poi_ids

POI_COLUMNS = ["poi_id", "area", "category", "tag_key", "tag_value", "name", "longitude", "latitude", "geometry_wkt"]
# OSM stores coordinates at 1e-7 degrees: keep that precision in the WKT, no more.
WKT_PRECISION = 7


def pois_from_features(features: gpd.GeoDataFrame, area: str, tags: Tags) -> pd.DataFrame:
    """One `osm_pois` row per feature that carries one of `tags` ({key: [values]}, {key: value} or {key: True}).

    The first matching tag in `tags` order decides category/tag_key/tag_value, so a fuel station with a shop is
    a `fuel` POI under the default tags. Features matching none of the tags (possible when the tags given here
    differ from the ones fetched with) are not POIs and are left out. Coordinates are those of a representative
    point, which lies inside polygons (a centroid may not).
    """
    if len(features) == 0:
        return _poi_frame([])
    frame = features.to_crs(CRS) if features.crs is not None else features
    points = frame.geometry.representative_point()
    wkt = shapely.to_wkt(frame.geometry.values, rounding_precision=WKT_PRECISION)
    names = frame["name"] if "name" in frame.columns else pd.Series(None, index=frame.index)
    rows = []
    for i, (poi_id, record) in enumerate(zip(_poi_ids(frame), frame.to_dict("records"))):
        match = match_tag(record, tags)
        if match is None:
            continue
        key, value = match
        point = points.iloc[i]
        rows.append({
            "poi_id": poi_id,
            "area": area,
            "category": value,
            "tag_key": key,
            "tag_value": value,
            "name": cell_text(names.iloc[i]),
            "longitude": point.x if point is not None and not point.is_empty else None,
            "latitude": point.y if point is not None and not point.is_empty else None,
            "geometry_wkt": wkt[i],
        })
    return _poi_frame(rows)


def match_tag(record: Mapping[str, Any], tags: Tags) -> tuple[str, str] | None:
    """(key, value) of the first tag in `tags` the record carries, with osmnx's meaning of the tag filters."""
    for key, wanted in tags.items():
        value = cell_text(record.get(key))
        if value is None:
            continue
        if wanted is True or (isinstance(wanted, str) and value == wanted) or (
            isinstance(wanted, (list, tuple, set)) and value in wanted
        ):
            return key, value
    return None


def _poi_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows, columns=POI_COLUMNS)
    for column in ("longitude", "latitude"):
        frame[column] = frame[column].astype("float64")
    return frame


# --- GeoParquet -------------------------------------------------------------------------------------------


def write_geoparquet(pois: pd.DataFrame, path: Path) -> Path:
    """Write the POIs as GeoParquet in EPSG:4326 (geometry from `geometry_wkt`), atomically, and return `path`.

    The other columns are kept as they are, so the file holds the same rows as the `osm_pois` table.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    geometry = gpd.GeoSeries(shapely.from_wkt(pois["geometry_wkt"].to_numpy(dtype=object)), index=pois.index, crs=CRS)
    frame = gpd.GeoDataFrame(pois.drop(columns=["geometry_wkt"]), geometry=geometry, crs=CRS)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".parquet.tmp")
    os.close(fd)
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
