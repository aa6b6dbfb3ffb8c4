"""OSM POIs through osmnx: real extracts give the POIs an independent XML count finds, offline."""

from __future__ import annotations

import bz2
import gzip
import socket
import sys
import types
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from ev_assets.lib.sources import osm
from ev_assets.lib.rawstore import write_raw
from ev_assets.lib.replayfiles import FileReport
from ev_assets.lib.settings import DEFAULT_OSM_TAGS, Settings
from ev_assets.lib.tables import columns
from ev_assets_tests.fixtures.recordings import TINY_OSM

# A hand-made extract: a cafe that is also a supermarket, a fuel station drawn as a square way, an untagged
# node, and a tourism node that only custom tags pick up.


def _no_network(monkeypatch) -> None:
    """Any connection attempt fails the test: replay and simulated modes must stay offline."""
    def refuse(self, address):
        raise AssertionError(f"network access attempted: {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def independent_count(path: Path, tags=DEFAULT_OSM_TAGS) -> Counter:
    """(poi_id, matched value) of every element carrying one of `tags`, read with plain ElementTree."""
    opener = bz2.open if path.name.endswith(".bz2") else open
    with opener(path, "rb") as fh:
        root = ET.parse(fh).getroot()
    found = Counter()
    for element in root:
        if element.tag not in ("node", "way", "relation"):
            continue
        element_tags = {t.get("k"): t.get("v") for t in element.findall("tag")}
        for key, wanted in tags.items():
            if key in element_tags and (wanted is True or element_tags[key] in wanted):
                found[(f"{element.tag}/{element.get('id')}", element_tags[key])] += 1
                break
    return found


@pytest.fixture(scope="module")
def replay_settings(shared_data: Path) -> Settings:
    return Settings(source="replay", replay_dir=shared_data)  # replay folder: shared/data/osm


@pytest.fixture(scope="module")
def bayreuth(replay_settings: Settings):
    """The bz2 extract takes osmnx a few seconds: parse it once for the module."""
    features = osm.fetch_osm(replay_settings, "north-bayreuth")
    return features, osm.pois_from_features(features, "north-bayreuth", replay_settings.osm_tags)


def test_bayreuth_pois_match_an_independent_count(bayreuth, shared_data: Path):
    _, pois = bayreuth
    expected = independent_count(shared_data / "osm" / "north-bayreuth.osm.bz2")
    assert len(pois) > 0
    assert list(pois.columns) == columns("osm_pois")
    assert Counter(zip(pois["poi_id"], pois["category"])) == expected
    assert pois["poi_id"].is_unique
    assert (pois["area"] == "north-bayreuth").all()
    assert (pois["category"] == pois["tag_value"]).all()
    assert {"parking", "restaurant", "supermarket"} <= set(pois["category"])
    # the extract's bounds, with a margin for ways that reach beyond them
    assert pois["longitude"].between(11.47, 11.62).all() and pois["latitude"].between(49.96, 50.06).all()


def test_polygon_coordinates_are_inside_the_polygon(bayreuth):
    _, pois = bayreuth
    polygons = pois[pois["geometry_wkt"].str.startswith("POLYGON")]
    assert len(polygons) > 0
    for row in polygons.itertuples():
        assert shapely.from_wkt(row.geometry_wkt).contains(shapely.Point(row.longitude, row.latitude))


def test_nuernberg_extract_offline(replay_settings: Settings, shared_data: Path, monkeypatch):
    _no_network(monkeypatch)
    features = osm.fetch_osm(replay_settings, "nuernberg-Laufamholzstrasse")
    pois = osm.pois_from_features(features, "nuernberg-Laufamholzstrasse", replay_settings.osm_tags)
    expected = independent_count(shared_data / "osm" / "nuernberg-Laufamholzstrasse.osm")
    assert len(pois) > 0
    assert Counter(zip(pois["poi_id"], pois["category"])) == expected
    assert pois.iloc[0]["poi_id"] == "way/75302576" and pois.iloc[0]["tag_key"] == "amenity"


def test_extract_without_pois_is_empty_not_an_error(replay_settings: Settings, monkeypatch):
    _no_network(monkeypatch)
    features = osm.fetch_osm(replay_settings, "kirchberg-iller-empty")
    assert len(features) == 0 and features.crs == "EPSG:4326"
    pois = osm.pois_from_features(features, "kirchberg-iller-empty", replay_settings.osm_tags)
    assert len(pois) == 0
    assert list(pois.columns) == columns("osm_pois")


def test_geoparquet_round_trip(bayreuth, tmp_path: Path):
    _, pois = bayreuth
    path = osm.write_geoparquet(pois, tmp_path / "pois" / "north-bayreuth.parquet")
    back = gpd.read_parquet(path)
    assert len(back) == len(pois)
    assert back.crs.to_epsg() == 4326
    assert back["poi_id"].tolist() == pois["poi_id"].tolist()
    assert back.geometry.iloc[0].equals(shapely.from_wkt(pois["geometry_wkt"].iloc[0]))


def test_geoparquet_of_no_pois(tmp_path: Path):
    empty = osm.pois_from_features(osm.empty_features(DEFAULT_OSM_TAGS), "nowhere", DEFAULT_OSM_TAGS)
    back = gpd.read_parquet(osm.write_geoparquet(empty, tmp_path / "empty.parquet"))
    assert len(back) == 0 and back.crs.to_epsg() == 4326


def test_raw_pull_round_trip_through_the_raw_store(bayreuth, data_dir: Path):
    features, pois = bayreuth
    stored = write_raw(data_dir / "raw", "osm", "north-bayreuth", osm.features_to_raw(features))
    back = osm.features_from_raw(stored.load())
    assert back.index.names == ["element", "id"]
    assert osm.pois_from_features(back, "north-bayreuth", DEFAULT_OSM_TAGS).equals(pois)
    assert len(osm.features_from_raw(osm.features_to_raw(osm.empty_features()))) == 0


# --- areas, tags and modes on a tiny extract -------------------------------------------------------------


@pytest.fixture
def tiny_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "osm"
    folder.mkdir()
    (folder / "tiny.osm").write_text(TINY_OSM, "utf-8")
    with bz2.open(folder / "tiny-packed.osm.bz2", "wt", encoding="utf-8") as fh:
        fh.write(TINY_OSM)
    (folder / "broken.osm").write_text("<osm><node id='1'", "utf-8")
    (folder / "notes.txt").write_text("not an extract", "utf-8")
    return folder


def test_replay_lists_one_area_per_osm_file(tiny_folder: Path):
    settings = Settings(source="replay", replay_dir=tiny_folder.parent)
    assert osm.list_areas(settings) == ["broken", "tiny", "tiny-packed"]
    assert osm.list_areas(Settings(source="live", cities=("bonn", "hof"))) == ["bonn", "hof"]
    assert osm.list_areas(Settings(source="simulated")) == list(Settings().simulation.cities)


def test_gzipped_extract_is_read_like_the_plain_one(tiny_folder: Path, monkeypatch):
    """gzip is how most OSM extracts are downloaded: `.osm.gz` is an area like `.osm` and `.osm.bz2`."""
    _no_network(monkeypatch)
    with gzip.open(tiny_folder / "tiny-gz.osm.gz", "wt", encoding="utf-8") as fh:
        fh.write(TINY_OSM)
    settings = Settings(source="replay", replay_dir=tiny_folder)
    assert "tiny-gz" in osm.list_areas(settings)
    pois = osm.pois_from_features(osm.fetch_osm(settings, "tiny-gz"), "tiny-gz", settings.osm_tags)
    plain = osm.pois_from_features(osm.fetch_osm(settings, "tiny"), "tiny", settings.osm_tags)
    assert sorted(pois["poi_id"]) == ["node/1", "way/10"]
    assert pois.drop(columns="area").equals(plain.drop(columns="area"))


def test_replay_area_with_two_files_is_reported_and_the_others_still_listed(tiny_folder: Path):
    (tiny_folder / "tiny.osm.bz2").write_bytes(bz2.compress(TINY_OSM.encode()))
    report = FileReport()
    areas = osm.list_areas(Settings(source="replay", replay_dir=tiny_folder), report)
    assert areas == ["broken", "tiny-packed"]  # neither tiny file is read: which one is meant is ambiguous
    assert sorted(report.unreadable) == ["tiny.osm", "tiny.osm.bz2"]
    assert "ambiguous" in report.unreadable["tiny.osm"] and not report.ok


def test_files_that_are_no_extract_are_reported_not_skipped(tiny_folder: Path):
    report = FileReport()
    osm.list_areas(Settings(source="replay", replay_dir=tiny_folder), report)
    assert report.ignored == {"notes.txt": "not an OSM XML extract (.osm, .osm.gz or .osm.bz2)"}
    assert report.ok  # a stray file is reported, but only an unreadable extract fails the check


def test_shared_replay_root_leaves_other_sources_files_alone(tmp_path: Path):
    """Without an `osm/` sub-folder the root is read, beside chargecloud polls and session files."""
    (tmp_path / "bonn.osm").write_text(TINY_OSM, "utf-8")
    for name in ("20220111_2158__koeln.json", "ocm.json.gz", "acn_sessions.json", "events.jsonl",
                 "Dataset 1_EV charging reports.csv"):
        (tmp_path / name).write_text("{}", "utf-8")
    (tmp_path / "stations.geojson").write_text("{}", "utf-8")
    report = FileReport()
    assert osm.list_areas(Settings(source="replay", replay_dir=tmp_path), report) == ["bonn"]
    assert list(report.ignored) == ["stations.geojson"] and not report.unreadable


def test_unreadable_extract_is_a_file_error_naming_the_file(tiny_folder: Path):
    (tiny_folder / "corrupt.osm.bz2").write_bytes(b"BZh91AY&SY not really bzip2")
    with pytest.raises(osm.OsmReplayFileError) as caught:
        osm.fetch_osm(Settings(source="replay", replay_dir=tiny_folder), "corrupt")
    assert caught.value.file == "corrupt.osm.bz2" and "corrupt" in caught.value.reason


def test_default_tags_first_match_wins(tiny_folder: Path, monkeypatch):
    _no_network(monkeypatch)
    settings = Settings(source="replay", replay_dir=tiny_folder)
    for area in ("tiny", "tiny-packed"):
        pois = osm.pois_from_features(osm.fetch_osm(settings, area), area, settings.osm_tags).set_index("poi_id")
        assert sorted(pois.index) == ["node/1", "way/10"]
        assert tuple(pois.loc["node/1", ["tag_key", "category", "name"]]) == ("amenity", "cafe", "Cafe Markt")
        assert tuple(pois.loc["way/10", ["tag_key", "category", "name"]]) == ("amenity", "fuel", "Tanke")
        lon, lat = pois.loc["way/10", ["longitude", "latitude"]]
        assert 11.58 < lon < 11.581 and 49.96 < lat < 49.961


def test_custom_tags_are_honoured(tiny_folder: Path):
    tags = {"shop": ["supermarket"], "tourism": True}
    settings = Settings(source="replay", replay_dir=tiny_folder, osm_tags=tags)
    pois = osm.pois_from_features(osm.fetch_osm(settings, "tiny"), "tiny", tags).set_index("poi_id")
    assert sorted(pois.index) == ["node/1", "node/6"]
    assert tuple(pois.loc["node/1", ["tag_key", "category"]]) == ("shop", "supermarket")
    assert tuple(pois.loc["node/6", ["tag_key", "category"]]) == ("tourism", "hotel")
    assert osm.match_tag({"highway": "services"}, {"highway": "services"}) == ("highway", "services")


def test_missing_and_unreadable_files_name_the_area(tiny_folder: Path):
    settings = Settings(source="replay", replay_dir=tiny_folder)
    with pytest.raises(osm.OsmSourceError, match="atlantis"):
        osm.fetch_osm(settings, "atlantis")
    with pytest.raises(osm.OsmSourceError, match="broken.osm"):
        osm.fetch_osm(settings, "broken")


def test_simulated_mode_uses_the_simulator(monkeypatch):
    _no_network(monkeypatch)
    calls = []
    features = gpd.GeoDataFrame(
        {"amenity": ["charging_station"], "name": ["Sim"]},
        geometry=[shapely.Point(6.95, 50.94)], crs="EPSG:4326",
        index=gpd.pd.MultiIndex.from_tuples([("node", 99)], names=["element", "id"]),
    )
    fake = types.ModuleType("ev_assets.lib.simulator")
    fake.osm_features = lambda sim, area, tags: calls.append((area, tags)) or features
    monkeypatch.setitem(sys.modules, "ev_assets.lib.simulator", fake)
    settings = Settings(source="simulated")
    pois = osm.pois_from_features(osm.fetch_osm(settings, "koeln"), "koeln", settings.osm_tags)
    assert calls == [("koeln", dict(DEFAULT_OSM_TAGS))]
    assert pois[["poi_id", "category", "longitude"]].values.tolist() == [["node/99", "charging_station", 6.95]]


def test_live_mode_queries_the_place_without_cache(monkeypatch):
    import osmnx

    monkeypatch.setattr(osmnx.settings, "use_cache", True)
    asked = {}
    place = gpd.GeoDataFrame(geometry=[shapely.box(6.8, 50.8, 7.1, 51.0)], crs="EPSG:4326")
    monkeypatch.setattr(osmnx, "geocode_to_gdf", lambda query: asked.setdefault("query", query) and place)

    def no_features(polygon, tags):
        asked["tags"] = tags
        raise osm._insufficient_response_error()("No matching features. Check query location, tags, and log.")

    monkeypatch.setattr(osmnx, "features_from_polygon", no_features)
    features = osm.fetch_osm(Settings(source="live"), "koeln")
    assert len(features) == 0
    assert asked == {"query": "koeln, Germany", "tags": dict(DEFAULT_OSM_TAGS)}
    assert osmnx.settings.use_cache is False
