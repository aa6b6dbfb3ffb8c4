"""The simulator emits the real schemas, is deterministic, and has the dynamics later layers rely on."""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from ev_assets.lib import simulator as S
from ev_assets.lib.settings import CHARGECLOUD_CITIES, DEFAULT_OSM_TAGS, SimulationSettings
from ev_assets.lib.simulator import chargecloud as _chargecloud
from ev_assets.lib.simulator import fleet as _fleet
from ev_assets.lib.simulator import status as _status

REAL_STATUSES = {"AVAILABLE", "CHARGING", "RESERVED", "BLOCKED", "OUTOFORDER", "INOPERATIVE", "UNKNOWN"}
SIM = SimulationSettings()  # koeln, bonn, bayreuth x ~12 stations
# Every city, a few stations each: enough variety to show every optional field.
WIDE = SimulationSettings(seed=7, cities=CHARGECLOUD_CITIES, stations_per_city=8)
POLL = datetime(2022, 1, 11, 20, 50, tzinfo=timezone.utc)
GERMANY = (47.2, 55.1, 5.8, 15.1)  # lat min/max, lon min/max


# --- helpers ------------------------------------------------------------------------------------------------


def _levels(responses: dict) -> dict[str, list[dict]]:
    """Objects of each nesting level of a {city: response} chargecloud poll."""
    stations = [s for r in responses.values() for s in r["data"]]
    evses = [e for s in stations for e in s["evses"]]
    return {
        "response": list(responses.values()),
        "station": stations,
        "coordinates": [s["coordinates"] for s in stations],
        "operator": [s["operator"] for s in stations],
        "opening_times": [s["opening_times"] for s in stations],
        "regular_hours": [h for s in stations for h in s["opening_times"].get("regular_hours", [])],
        "evse": evses,
        "connector": [c for e in evses for c in e["connectors"]],
    }


def _key_types(objects: list[dict]) -> tuple[dict[str, set[str]], set[str]]:
    """Types seen per key, and the keys every object has."""
    types: dict[str, set[str]] = defaultdict(set)
    for obj in objects:
        for key, value in obj.items():
            types[key].add(type(value).__name__)
    required = set.intersection(*(set(o) for o in objects)) if objects else set()
    return types, required


def _assert_same_schema(level: str, real: list[dict], simulated: list[dict]) -> None:
    assert simulated, f"no simulated {level} objects"
    real_types, real_required = _key_types(real)
    sim_types, _ = _key_types(simulated)
    unknown = set(sim_types) - set(real_types)
    assert not unknown, f"{level}: keys the real data does not have: {unknown}"
    for key, types in sim_types.items():
        assert types <= real_types[key], f"{level}.{key}: simulated types {types}, real {real_types[key]}"
    for obj in simulated:
        missing = real_required - set(obj)
        assert not missing, f"{level}: required keys missing: {missing}"


def _germany(lat: float, lon: float) -> bool:
    return GERMANY[0] <= lat <= GERMANY[1] and GERMANY[2] <= lon <= GERMANY[3]


def _clear_caches() -> None:
    _fleet._build_fleet.cache_clear()
    _status._day_intervals.cache_clear()
    _chargecloud._layout.cache_clear()


# --- schemas against the real recordings --------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_poll(shared_data: Path) -> dict:
    return json.loads((shared_data / "chargecloud" / "20220111_215824_cp_data_cities.json").read_text("utf-8"))


def test_chargecloud_schema_matches_real_recording(real_poll):
    real, simulated = _levels(real_poll), _levels(S.chargecloud_poll(WIDE, POLL))
    for level in real:
        _assert_same_schema(level, real[level], simulated[level])
    # keys come in the endpoint's order too (some parsers and diffs care)
    assert list(simulated["station"][0]) == list(real["station"][0])
    assert list(simulated["connector"][0]) == list(real["connector"][0])
    evse_order = [k for k in real_poll["koeln"]["data"][0]["evses"][0]]
    assert [k for k in simulated["evse"][0] if k != "parkingsensor_status"] == evse_order


def test_chargecloud_optional_fields_vary_like_real(real_poll):
    sim = _levels(S.chargecloud_poll(WIDE, POLL))
    assert any("parkingsensor_status" in e for e in sim["evse"])
    assert any("regular_hours" in o for o in sim["opening_times"])
    assert {type(s["owner"]) for s in sim["station"]} == {type(None), str}
    assert {c["power_type"] for c in sim["connector"]} >= {"AC_3_PHASE", "DC"}
    assert {c["standard"] for c in sim["connector"]} >= {"IEC_62196_T2", "IEC_62196_T2_COMBO", "CHADEMO"}


@pytest.fixture(scope="module")
def real_ocm(shared_data: Path) -> list[dict]:
    return json.loads((shared_data / "openchargemap" / "openchargemap_de.json").read_text("utf-8"))


def test_ocm_response_schema_matches_real(real_ocm):
    simulated = S.ocm_response(WIDE)
    _assert_same_schema("poi", real_ocm, simulated)
    _assert_same_schema("AddressInfo", [p["AddressInfo"] for p in real_ocm], [p["AddressInfo"] for p in simulated])
    _assert_same_schema("Connections", [c for p in real_ocm for c in p["Connections"]],
                        [c for p in simulated for c in p["Connections"]])
    _assert_same_schema("MetadataValues", [m for p in real_ocm for m in p.get("MetadataValues", [])],
                        [m for p in simulated for m in p.get("MetadataValues", [])])


def test_ocm_reference_decodes_all_but_one_operator(shared_data: Path):
    real = json.loads((shared_data / "openchargemap" / "ocm_reference.json").read_text("utf-8"))
    ref, pois = S.ocm_reference(SIM), S.ocm_response(SIM)
    assert list(ref) == list(real)
    for name, entries in ref.items():
        assert type(entries) is type(real[name]), name
        if isinstance(entries, list) and real[name]:
            real_keys = set(real[name][0])
            assert all(set(e) <= real_keys for e in entries), name
    ids = lambda name: {e["ID"] for e in ref[name]}  # noqa: E731
    assert {c["ConnectionTypeID"] for p in pois for c in p["Connections"]} <= ids("ConnectionTypes")
    assert {c["CurrentTypeID"] for p in pois for c in p["Connections"]} <= ids("CurrentTypes")
    assert {p["UsageTypeID"] for p in pois if "UsageTypeID" in p} <= ids("UsageTypes")
    assert {p["DataProviderID"] for p in pois} <= ids("DataProviders")
    unknown = {p["OperatorID"] for p in pois if "OperatorID" in p} - ids("Operators")
    assert len(unknown) == 1, "exactly one OperatorID is left out of the reference data on purpose"


def test_ocm_lists_most_fleet_stations_a_few_metres_off():
    fleet, pois = S.build_fleet(SIM), S.ocm_response(SIM)
    lat = np.array([p["AddressInfo"]["Latitude"] for p in pois])
    lon = np.array([p["AddressInfo"]["Longitude"] for p in pois])
    nearest = [np.min(np.hypot((lat - s.latitude) * 111_320, (lon - s.longitude) * 70_000))
               for s in fleet.stations.itertuples()]
    found = np.array(nearest) < 30
    assert 0.7 <= found.mean() < 1.0  # OCM knows most, not all, stations
    assert len({p["ID"] for p in pois}) == len(pois)


# --- determinism and value ranges -----------------------------------------------------------------------------


def test_outputs_are_deterministic_and_seeded():
    first = (S.chargecloud_poll(SIM, POLL), S.ocm_response(SIM), S.day_status(SIM, date(2022, 1, 11)),
             S.osm_features(SIM, "bonn", DEFAULT_OSM_TAGS))
    _clear_caches()
    second = (S.chargecloud_poll(SIM, POLL), S.ocm_response(SIM), S.day_status(SIM, date(2022, 1, 11)),
              S.osm_features(SIM, "bonn", DEFAULT_OSM_TAGS))
    assert first[0] == second[0]
    assert first[1] == second[1]
    pd.testing.assert_frame_equal(first[2], second[2])
    pd.testing.assert_frame_equal(first[3], second[3])
    other = SimulationSettings(seed=SIM.seed + 1, cities=SIM.cities, stations_per_city=SIM.stations_per_city)
    assert S.chargecloud_poll(other, POLL) != first[0]


def test_a_city_does_not_change_when_others_are_added():
    alone = S.build_fleet(SimulationSettings(cities=("bonn",))).charging_points
    among = S.build_fleet(SimulationSettings(cities=("koeln", "bonn"))).charging_points
    among = among[among["city_slug"] == "bonn"].reset_index(drop=True)
    assert alone["charging_point_id"].tolist() == among["charging_point_id"].tolist()
    a = S.day_status(SimulationSettings(cities=("bonn",)), date(2022, 1, 11))
    b = S.day_status(SimulationSettings(cities=("koeln", "bonn")), date(2022, 1, 11))
    b = b[b["item_id"].isin(set(a["item_id"]))].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_statuses_and_coordinates_are_realistic():
    polls = _levels(S.chargecloud_poll(WIDE, POLL))
    assert {e["status"] for e in polls["evse"]} <= REAL_STATUSES
    assert {c["status"] for c in polls["connector"]} <= REAL_STATUSES
    assert all(_germany(float(c["latitude"]), float(c["longitude"])) for c in polls["coordinates"])
    assert all(_germany(p["AddressInfo"]["Latitude"], p["AddressInfo"]["Longitude"]) for p in S.ocm_response(WIDE))
    week = pd.concat([S.day_status(WIDE, date(2022, 1, 10) + timedelta(days=i)) for i in range(7)])
    shares = week["status"].value_counts(normalize=True)
    assert set(shares.index) == REAL_STATUSES  # the rare ones do occur
    assert 0.65 < shares["AVAILABLE"] < 0.9 and 0.08 < shares["CHARGING"] < 0.3


def test_fleet_shape():
    fleet = S.build_fleet(WIDE)
    per_station = fleet.charging_points.groupby("station_id").size()
    per_point = fleet.connectors.groupby("charging_point_id").size()
    assert per_station.between(1, 4).all() and per_point.between(1, 2).all()
    assert fleet.stations["station_id"].is_unique and fleet.charging_points["charging_point_id"].is_unique
    assert fleet.connectors["connector_id"].is_unique
    per_city = fleet.stations.groupby("city_slug").size()
    assert set(per_city.index) == set(CHARGECLOUD_CITIES) and per_city.between(6, 10).all()
    ac = fleet.connectors[fleet.connectors["power_type"] == "AC_3_PHASE"]
    dc = fleet.connectors[fleet.connectors["power_type"] == "DC"]
    assert set(ac["max_power_kw"]) <= {11, 22} and dc["max_power_kw"].between(50, 300).all()


def test_unknown_city_is_a_clear_error():
    with pytest.raises(ValueError, match="atlantis.*koeln"):
        S.build_fleet(SimulationSettings(cities=("atlantis",)))
    with pytest.raises(ValueError, match="timezone-aware"):
        S.chargecloud_poll(SIM, datetime(2022, 1, 11, 20, 50))


def test_response_timestamps_are_berlin_time_seconds_after_the_poll():
    responses = S.chargecloud_poll(WIDE, POLL)
    stamps = {slug: datetime.fromisoformat(r["timestamp"]) for slug, r in responses.items()}
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+01:00", r["timestamp"]) for r in responses.values())
    delays = [(t - POLL).total_seconds() for t in stamps.values()]
    assert all(0 <= d <= 10 for d in delays) and len(set(delays)) > 1


# --- dynamics --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["charging_point", "connector"])
def test_day_status_agrees_with_polls(level):
    day = date(2022, 1, 11)
    frame = S.day_status(SIM, day, level)
    assert list(frame.columns) == ["slot", "item_id", "status"]
    assert frame["slot"].dt.tz is not None and frame["slot"].nunique() == 144
    for slot in (0, 1, 57, 100, 143):
        when = datetime(2022, 1, 11, tzinfo=timezone.utc) + timedelta(minutes=10 * slot)
        levels = _levels(S.chargecloud_poll(SIM, when))
        if level == "connector":
            polled = {c["id"]: c["status"] for c in levels["connector"]}
        else:
            polled = {e["id"]: e["status"] for e in levels["evse"]}
        at = frame[frame["slot"] == pd.Timestamp(when)]
        assert dict(zip(at["item_id"], at["status"])) == polled


def test_connectors_follow_their_charging_point():
    evses = _levels(S.chargecloud_poll(WIDE, POLL))["evse"]
    assert all(c["status"] == e["status"] for e in evses for c in e["connectors"])


def test_daily_rhythm_more_charging_in_the_evening_than_at_night():
    week = pd.concat([S.day_status(WIDE, date(2022, 1, 10) + timedelta(days=i)) for i in range(7)])
    charging = (week["status"] == "CHARGING").groupby(week["slot"].dt.hour).mean()
    assert charging[17] > charging[3] * 1.3  # 18:00 vs 04:00 in Berlin (winter)


def test_sessions_cross_midnight():
    day1, day2 = S.day_status(WIDE, date(2022, 1, 11)), S.day_status(WIDE, date(2022, 1, 12))
    late = set(day1.loc[(day1["slot"] == day1["slot"].max()) & (day1["status"] == "CHARGING"), "item_id"])
    early = set(day2.loc[(day2["slot"] == day2["slot"].min()) & (day2["status"] == "CHARGING"), "item_id"])
    assert len(late & early) >= 5


def test_stations_with_more_pois_nearby_are_busier():
    sim = SimulationSettings(seed=3, cities=CHARGECLOUD_CITIES[:8], stations_per_city=20)
    fleet = S.build_fleet(sim)
    week = pd.concat([S.day_status(sim, date(2022, 1, 10) + timedelta(days=i)) for i in range(7)])
    station_of = fleet.charging_points.set_index("charging_point_id")["station_id"]
    busy = (week["status"] == "CHARGING").groupby(week["item_id"].map(station_of)).mean()
    # count POIs within 300 m the way a downstream asset would: from the OSM features, in metres
    counts = {}
    for city in sim.cities:
        pois = S.osm_features(sim, city, DEFAULT_OSM_TAGS).geometry.to_crs(25832).representative_point()
        stations = fleet.stations[fleet.stations["city_slug"] == city]
        where = gpd.GeoSeries(gpd.points_from_xy(stations["longitude"], stations["latitude"]), crs=4326)
        for sid, point in zip(stations["station_id"], where.to_crs(25832)):
            counts[sid] = int((pois.distance(point) <= 300).sum())
    table = pd.DataFrame({"busy": busy, "pois": pd.Series(counts)})
    assert table["busy"].corr(table["pois"], method="spearman") > 0.1
    assert table.loc[table["pois"] >= 3, "busy"].mean() > table.loc[table["pois"] == 0, "busy"].mean()


# --- OSM -------------------------------------------------------------------------------------------------------


def test_osm_features_look_like_osmnx(shared_data: Path):
    import osmnx as ox

    real = ox.features_from_xml(shared_data / "osm" / "nuernberg-Laufamholzstrasse.osm", tags={"amenity": True})
    sim = S.osm_features(SIM, "bayreuth", DEFAULT_OSM_TAGS)
    assert sim.index.names == real.index.names
    assert set(sim.index.get_level_values("element")) <= {"node", "way"}
    assert sim.index.get_level_values("id").dtype == real.index.get_level_values("id").dtype
    assert sim.crs == real.crs and "geometry" in sim.columns and "amenity" in sim.columns
    assert set(sim.geometry.geom_type) == {"Point", "Polygon"}
    assert sim.index.is_unique


def test_osm_tag_filter_and_empty_result():
    only = S.osm_features(SIM, "koeln", {"shop": ["supermarket"], "amenity": "fast_food"})
    assert len(only) > 0
    assert set(only["shop"].dropna()) == {"supermarket"}
    assert set(only["amenity"].dropna()) == {"fast_food"}
    assert (only["shop"].notna() | only["amenity"].notna()).all()
    any_shop = S.osm_features(SIM, "koeln", {"shop": True})
    assert any_shop["shop"].notna().all() and any_shop["shop"].nunique() > 2
    everything = S.osm_features(SIM, "koeln", DEFAULT_OSM_TAGS)
    assert {"supermarket", "mall", "doityourself"} <= set(everything["shop"].dropna())
    assert {"fast_food", "cafe", "restaurant", "fuel", "parking", "charging_station"} <= set(
        everything["amenity"].dropna())
    empty = S.osm_features(SIM, "koeln", {"tourism": ["museum"], "shop": ["bakery"]})
    assert len(empty) == 0 and list(empty.columns) == list(everything.columns)
    assert empty.crs == everything.crs and empty.index.names == ["element", "id"]
    assert_served = S.osm_features(SIM, "hof", {"amenity": True})  # a city outside sim.cities is served too
    assert len(assert_served) > 0


# --- speed -------------------------------------------------------------------------------------------------------


def test_fast_enough():
    S.chargecloud_poll(SIM, POLL)  # build the fleet once
    started = time.perf_counter()
    S.chargecloud_poll(SIM, POLL + timedelta(days=3))
    assert time.perf_counter() - started < 0.2  # ~0.02 s on a quiet 2-core machine, 0.06 s at a load of 5
    full = SimulationSettings(cities=CHARGECLOUD_CITIES, stations_per_city=30)
    S.build_fleet(full)
    started = time.perf_counter()
    frame = S.day_status(full, date(2022, 2, 1))
    S.day_status(full, date(2022, 2, 1), "connector")
    assert len(frame) > 250_000
    assert time.perf_counter() - started < 2.0  # generous for slow CI machines; ~0.1 s locally
