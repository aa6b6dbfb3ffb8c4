"""OpenStreetMap points of interest near charging stations, through osmnx.

`fetch_osm` gives osmnx-format features (a GeoDataFrame indexed by (element, id), one column per OSM tag) for
one area in the source's mode; `features_to_raw` / `features_from_raw` turn them into the GeoJSON dict that is
stored as the immutable raw pull and back; `pois_from_features` flattens them into `osm_pois` rows.

Fetching and the raw pull are in `fetch.py`, the POIs and GeoParquet in `pois.py`.
"""

from ev_assets.lib.sources.osm.fetch import (
    CRS, OSM_SUFFIXES, SOURCE, OsmReplayFileError, OsmSourceError, _insufficient_response_error, area_of,
    empty_features, features_from_raw, features_to_raw, fetch_osm, list_areas, replay_files, scan_replay,
)
from ev_assets.lib.sources.osm.pois import POI_COLUMNS, WKT_PRECISION, match_tag, pois_from_features, write_geoparquet

__all__ = [
    "CRS", "OSM_SUFFIXES", "POI_COLUMNS", "SOURCE", "WKT_PRECISION", "OsmReplayFileError", "OsmSourceError",
    "area_of", "empty_features", "features_from_raw", "features_to_raw", "fetch_osm", "list_areas", "match_tag",
    "pois_from_features", "replay_files", "scan_replay", "write_geoparquet",
    "_insufficient_response_error",  # osmnx's 'no matching features' error, which the tests raise
]
