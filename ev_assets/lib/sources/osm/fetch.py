"""OpenStreetMap fetching: osmnx-format features for one area in the source's mode, and the raw pull.

osmnx's HTTP cache is always off (raw pulls are our cache), and osmnx only touches the network in live mode:
replay reads OSM XML files (`.osm`, `.osm.gz`, `.osm.bz2`; osmnx's `features_from_xml` opens the compressed ones
by their suffix) and simulated mode asks the simulator.

A replay file that cannot be used never takes the other areas down with it: `list_areas` reports files that
are no OSM extract and areas with two files in a `FileReport`, and `fetch_osm` raises `OsmReplayFileError`
(naming the file) for an extract it cannot read, which the caller records and moves past.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable, Mapping

import geopandas as gpd
import pandas as pd

from ev_assets.lib import replayfiles
from ev_assets.lib.replayfiles import FileReport, is_shared_root
from ev_assets.lib.settings import Settings

SOURCE = "osm"
CRS = "EPSG:4326"
OSM_SUFFIXES = (".osm", ".osm.gz", ".osm.bz2")  # OSM XML extracts

Log = Callable[[str], None] | None
Tags = Mapping[str, Any]


def _claims(rel: str) -> str | None:
    """What the osm source reads of a shared replay root: its sub-folder and the OSM extracts at the top."""
    if replayfiles.in_folder(rel, SOURCE) or ("/" not in rel and rel.lower().endswith(OSM_SUFFIXES)):
        return replayfiles.MINE
    return None


replayfiles.register(SOURCE, _claims)


class OsmSourceError(RuntimeError):
    """The features of an area could not be read; the message names the area and the file or query."""


class OsmReplayFileError(OsmSourceError):
    """One replay extract cannot be read (bad XML, bad compression, ...): a problem of that file only."""

    def __init__(self, file: str, reason: str):
        super().__init__(f"osm replay: cannot read {file}: {reason}")
        self.file, self.reason = file, reason


def _osmnx():
    """osmnx with its response cache off, imported late (importing it is slow and only fetching needs it)."""
    import osmnx

    osmnx.settings.use_cache = False
    return osmnx


def _insufficient_response_error() -> type[Exception]:
    """osmnx's 'no matching features' error (in a private module, so looked up in one place)."""
    from osmnx._errors import InsufficientResponseError

    return InsufficientResponseError


# --- areas and fetching -----------------------------------------------------------------------------------


def list_areas(settings: Settings, report: FileReport | None = None) -> list[str]:
    """The areas to pull: the configured cities (live), the simulated cities, or one per replay file.

    In replay mode the files that give no area (not an extract, or a second file of one area) go to `report`.
    """
    mode = settings.mode(SOURCE)
    if mode == "live":
        return list(settings.cities)
    if mode == "simulated":
        return list(settings.simulation.cities)
    files, found = scan_replay(settings.replay_folder(SOURCE), shared=is_shared_root(settings, SOURCE))
    if report is not None:
        report.merge(found)
    return sorted(files)


def area_of(path: Path) -> str:
    """The area name of a replay file: its name without `.osm` / `.osm.gz` / `.osm.bz2`."""
    for suffix in sorted(OSM_SUFFIXES, key=len, reverse=True):  # longest first
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    raise ValueError(f"{path} is not an .osm, .osm.gz or .osm.bz2 file")


def replay_files(folder: Path) -> dict[str, Path]:
    """area -> OSM XML file in `folder` (areas with two files left out: see `scan_replay`)."""
    return scan_replay(folder)[0]


def scan_replay(folder: Path, shared: bool = False) -> tuple[dict[str, Path], FileReport]:
    """area -> OSM XML file in `folder`, and the files that give no area.

    Two files for one area (`bonn.osm` and `bonn.osm.bz2`) make it ambiguous which is meant: neither is read and
    both are unreadable, the other areas still load. Any other file is ignored with the reason, except, in a
    replay root shared with the other sources (`shared`), the files `replayfiles` says are theirs (JSON
    recordings, session files).
    Hidden files (partial downloads) are not looked at.
    """
    files: dict[str, list[Path]] = {}
    report = FileReport()
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        if path.name.endswith(OSM_SUFFIXES):
            files.setdefault(area_of(path), []).append(path)
        elif not (shared and replayfiles.claimed_by_other(SOURCE, path.name)):
            report.ignored[path.name] = "not an OSM XML extract (.osm, .osm.gz or .osm.bz2)"
    for area, paths in files.items():
        if len(paths) > 1:
            names = ", ".join(p.name for p in paths)
            reason = f"ambiguous: area {area!r} has {len(paths)} files ({names}), so none is read"
            report.unreadable.update({path.name: reason for path in paths})
    return {area: paths[0] for area, paths in files.items() if len(paths) == 1}, report


def fetch_osm(settings: Settings, area: str, log: Log = None) -> gpd.GeoDataFrame:
    """osmnx-format features for `area` with any of `settings.osm_tags`; an area without POIs gives 0 rows."""
    mode = settings.mode(SOURCE)
    tags = dict(settings.osm_tags)
    if mode == "simulated":
        simulator = importlib.import_module("ev_assets.lib.simulator")  # only simulated mode needs it
        features = simulator.osm_features(settings.simulation, area, tags)
    elif mode == "replay":
        features = _read_xml(settings.replay_folder(SOURCE), area, tags)
    else:
        features = _query_overpass(settings, area, tags)
    if features is None or len(features) == 0:
        features = empty_features(tags)
    if log:
        log(f"osm {area}: {len(features)} features ({mode})")
    return features


def _read_xml(folder: Path, area: str, tags: dict) -> gpd.GeoDataFrame | None:
    path = replay_files(folder).get(area)
    if path is None:
        raise OsmSourceError(f"osm replay: no single {area}.osm, {area}.osm.gz or {area}.osm.bz2 in {folder}")
    ox = _osmnx()
    try:
        return ox.features_from_xml(path, tags=tags)  # opens .gz / .bz2 by the suffix
    except _insufficient_response_error():
        return None  # the file holds none of the tags: an empty area, not a failure
    except Exception as exc:  # unreadable XML, bad compression, ...: say which file
        raise OsmReplayFileError(path.name, f"{type(exc).__name__}: {exc} (area {area!r}, in {folder})") from exc


def _query_overpass(settings: Settings, area: str, tags: dict) -> gpd.GeoDataFrame | None:
    """`features_from_place`, split in its two steps so that only 'no matching features' means empty:
    a place Nominatim cannot find raises the same osmnx error type and must stay a failure."""
    ox = _osmnx()
    ox.settings.requests_timeout = settings.http_timeout_s
    query = f"{area}, Germany"
    try:
        polygon = ox.geocode_to_gdf(query).union_all()
    except Exception as exc:
        raise OsmSourceError(f"osm live: cannot geocode {query!r}: {type(exc).__name__}: {exc}") from exc
    try:
        return ox.features_from_polygon(polygon, tags=tags)
    except _insufficient_response_error():
        return None


def empty_features(tags: Tags | None = None) -> gpd.GeoDataFrame:
    """A features frame with no rows but osmnx's shape: (element, id) index, geometry and the tag columns."""
    index = pd.MultiIndex.from_arrays([pd.Series([], dtype=object), pd.Series([], dtype="int64")], names=["element", "id"])
    columns = {key: pd.Series([], dtype=object, index=index) for key in (tags or {})}
    return gpd.GeoDataFrame(columns, index=index, geometry=gpd.GeoSeries([], index=index, crs=CRS), crs=CRS)


# --- raw pull ---------------------------------------------------------------------------------------------


def features_to_raw(features: gpd.GeoDataFrame) -> dict:
    """The features as a GeoJSON FeatureCollection dict (what `rawstore.write_raw` stores).

    Each feature's GeoJSON `id` is the OSM id `way/123`, so the (element, id) index survives without risking a
    clash with a tag called `id`; null tags are left out, as in OSM itself.
    """
    frame = features.to_crs(CRS) if features.crs is not None else features.set_crs(CRS)
    frame = frame.set_axis(_poi_ids(frame), axis=0)
    return frame.to_geo_dict(na="drop", drop_id=False)


def features_from_raw(payload: Mapping[str, Any]) -> gpd.GeoDataFrame:
    """The features back from a stored FeatureCollection, indexed by (element, id) like osmnx output."""
    items = payload.get("features") or []
    if not items:
        return empty_features()
    frame = gpd.GeoDataFrame.from_features(items, crs=CRS)
    pairs = [str(item["id"]).split("/", 1) for item in items]
    frame.index = pd.MultiIndex.from_tuples([(e, int(i)) for e, i in pairs], names=["element", "id"])
    return frame


def _poi_ids(features: pd.DataFrame) -> list[str]:
    """`element/id` from osmnx's (element, id) index."""
    if features.index.nlevels == 2:
        return [f"{element}/{osm_id}" for element, osm_id in features.index]
    return [str(i) for i in features.index]  # already flat ids (e.g. 'node/1')
