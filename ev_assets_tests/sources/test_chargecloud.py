"""chargecloud source: fetching a poll in its three modes, and flattening polls into the lib.tables contract."""

from __future__ import annotations

import copy
import gzip
import json
import sys
import time
import types
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
from werkzeug import Response

import ev_assets.lib
from ev_assets.lib.sources import chargecloud as cc
from ev_assets.lib.settings import Settings
from ev_assets.lib.tables import TABLES, columns

UTC = timezone.utc
SLOT = datetime(2022, 1, 11, 20, 50, tzinfo=UTC)  # holds 2022-01-11T21:58:22+01:00
TS = "2022-01-11T21:58:22+01:00"
REAL_POLLS = ("20220111_215824_cp_data_cities.json", "20220111_220822_cp_data_cities.json")


# --- small inline responses in the real schema ---------------------------------------------------------
def connector(cid="447", status="AVAILABLE", **extra):
    return {"id": cid, "status": status, "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_3_PHASE",
            "ampere": "32", "voltage": "400", "max_power": 22, "tariff_id": None, **extra}


def evse(eid="DE*REK*E00025*001", status="AVAILABLE", connectors=None, **extra):
    return {"uid": "303", "id": eid, "status": status, "capabilities": ["RFID_READER", "REMOTE_START_STOP_CAPABLE"],
            "physical_reference": "25R", "floor_level": "", "vehicle_type": "four_wheeled",
            "connectors": [connector()] if connectors is None else connectors,
            "chargePointPosition": "rechts", "chargePointPublicComment": None,
            "chargePointParkingSpaceNumbers": None, "chargingStationPosition": None, "roaming": False, **extra}


def station(sid="2", evses=None, lat="50.940991", lon="6.992267", **extra):
    return {"id": sid, "name": "TankE - ADAC Köln Kalk", "address": "Erna-Scheffler-Straße 5", "city": "Köln",
            "postal_code": "50679", "country": "DE", "directions": "Innenhof",
            "coordinates": {"latitude": lat, "longitude": lon}, "distance_in_m": "0",
            "operator": {"name": "RheinEnergie AG", "hotline": "+4922134645600"},
            "opening_times": {"twentyfourseven": True}, "owner": None, "roaming": False,
            "evses": [evse()] if evses is None else evses, **extra}


def response(stations=None, ts=TS, **extra):
    return {"data": [station()] if stations is None else stations, "status_code": 1000,
            "status_message": "Success", "timestamp": ts, **extra}


def write_json(path: Path, payload) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(payload).encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def replay_settings(folder: Path, **changes) -> Settings:
    return Settings(source="replay", replay_dir=folder).with_(**changes)


def rows(df: pd.DataFrame) -> list[dict]:
    return df.to_dict("records")


# --- the table contract ----------------------------------------------------------------------------------
def assert_contract(flat: cc.FlatPoll) -> None:
    for table, frame in flat.tables().items():
        assert list(frame.columns) == columns(table), table
        for col, typ in TABLES[table]:
            if typ == "TIMESTAMPTZ":
                assert str(frame[col].dtype) == "datetime64[ns, UTC]", (table, col)
            if typ == "DOUBLE":
                assert frame[col].dtype == "float64", (table, col)


def test_empty_poll_has_all_tables_with_their_columns():
    flat = cc.flatten_poll({}, SLOT)
    assert_contract(flat)
    assert all(frame.empty for frame in flat.tables().values())
    assert_contract(cc.flatten_polls([]))


# --- replay of the two real polls ---------------------------------------------------------------------
@pytest.fixture
def real_replay(shared_data: Path, tmp_path: Path) -> Settings:
    folder = tmp_path / "recordings"
    folder.mkdir()
    for name in REAL_POLLS:
        (folder / name).symlink_to(shared_data / "chargecloud" / name)
    return replay_settings(folder)


def count_from_json(poll: dict) -> dict:
    """The counts of one real poll, straight from the JSON."""
    cities = {k: v for k, v in poll.items() if not k.startswith("_")}
    evses = [e for r in cities.values() for s in r["data"] for e in s["evses"]]
    conns = [c for e in evses for c in e["connectors"]]
    return {
        "cities": len(cities),
        "stations": sum(len(r["data"]) for r in cities.values()),
        "charging_points": len(evses),
        "connectors": len(conns),
        "cp_status": Counter(e["status"] for e in evses),
        "conn_status": Counter(c["status"] for c in conns),
    }


def test_replay_of_the_real_polls_loads_everything_they_hold(real_replay, shared_data):
    index = cc.replay_index(real_replay)
    assert list(index) == [SLOT, SLOT + timedelta(minutes=10)], "the two polls are 10 minutes apart: two slots"
    assert [[p.name for p in files] for files in index.values()] == [[REAL_POLLS[0]], [REAL_POLLS[1]]]

    for slot, name in zip(index, REAL_POLLS):
        expected = count_from_json(json.loads((shared_data / "chargecloud" / name).read_text()))
        envelope = cc.fetch_poll(real_replay, slot)
        flat = cc.flatten_poll(envelope, slot, raw_file=name)
        assert_contract(flat)
        assert len(flat.stations) == expected["stations"]
        assert len(flat.charging_points) == expected["charging_points"]
        assert len(flat.connectors) == expected["connectors"]
        assert Counter(flat.status_chargingpoints["status"]) == expected["cp_status"]
        assert Counter(flat.status_connectors["status"]) == expected["conn_status"]
        # the one value of the real feed that breaks a contract: a placeholder rating, kept out with its reason
        assert flat.quarantine[["record_id", "reason"]].values.tolist() == [
            ["240650321", "ampere '1111' is outside 0..1000 A: loaded as NULL"]
        ]
        assert set(flat.problems) == {"ratings"}
        log = flat.poll_log
        assert len(log) == expected["cities"] == 38 and log["ok"].all()
        assert log["stations"].sum() == expected["stations"]
        assert log["connectors"].sum() == expected["connectors"]
        assert (flat.status_chargingpoints["poll_slot"] == slot).all()
        assert (log["raw_file"] == name).all()


def test_real_poll_values_are_typed(real_replay):
    flat = cc.flatten_poll(cc.fetch_poll(real_replay, SLOT), SLOT)
    first = flat.stations.set_index("station_id").loc["2"]
    assert first["latitude"] == pytest.approx(50.940991) and first["longitude"] == pytest.approx(6.992267)
    assert not first["twentyfourseven"]  # False, not NULL (NULL would raise here)
    assert json.loads(first["opening_times"])["regular_hours"][0]["weekday"] == 1
    assert first["first_seen_at"] == first["last_seen_at"] == pd.Timestamp("2022-01-11T20:58:22Z")
    cp = flat.charging_points.set_index("charging_point_id").loc["DE*REK*E00025*001"]
    assert cp["capabilities"] == "RFID_READER,REMOTE_START_STOP_CAPABLE"
    assert cp["evse_uid"] == "303" and cp["charge_point_position"] == "rechts"
    conn = flat.connectors.set_index("connector_id").loc["447"]
    assert (conn["ampere"], conn["voltage"], conn["max_power_kw"]) == (32.0, 400.0, 22.0)
    assert set(flat.status_chargingpoints["parkingsensor_status"].dropna()) <= {"AVAILABLE", "OCCUPIED"}


def test_flattening_a_full_real_poll_is_fast(real_replay):
    envelope = cc.fetch_poll(real_replay, SLOT)
    best = min(_timed(lambda: cc.flatten_poll(envelope, SLOT)) for _ in range(3))
    assert best < 0.5


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def test_many_polls_keep_one_row_per_master_data_version(real_replay):
    envelopes = [(cc.fetch_poll(real_replay, slot), slot, "") for slot in cc.replay_index(real_replay)]
    polls = [cc.flatten_poll(*envelope) for envelope in envelopes]
    both = cc.flatten_polls(envelopes)
    assert_contract(both)
    assert len(both.status_chargingpoints) == 2 * len(polls[0].status_chargingpoints)
    versions = both.stations.groupby("station_id")["attr_hash"].nunique()
    assert len(both.stations) == versions.sum()  # unchanged stations are one row, changed ones one per version
    unchanged = both.stations[both.stations["station_id"].map(versions) == 1]
    assert (unchanged["first_seen_at"] < unchanged["last_seen_at"]).all()
    assert (unchanged["last_seen_at"] >= pd.Timestamp("2022-01-11T21:08:00Z")).all()


# --- replay folders: shapes, slots, broken files -----------------------------------------------------------
def test_plain_per_city_files_are_replayed(tmp_path):
    write_json(tmp_path / "koeln.json", response())
    bonn = response([station("B1")], ts="2022-01-11T21:58:40+01:00")
    write_json(tmp_path / "2022" / "20220111_2158__bonn.json.gz", bonn)
    settings = replay_settings(tmp_path)
    assert list(cc.replay_index(settings)) == [SLOT]
    envelope = cc.fetch_poll(settings, SLOT)
    assert sorted(envelope) == ["bonn", "koeln"]
    flat = cc.flatten_poll(envelope, SLOT)
    assert dict(zip(flat.stations["station_id"], flat.stations["city_slug"])) == {"2": "koeln", "B1": "bonn"}


def test_a_malformed_file_fails_alone(tmp_path):
    write_json(tmp_path / "20220111_2158__koeln.json", response())
    (tmp_path / "20220111_2159__bonn.json").write_text('{"data": [ {"id": "1", ')  # cut off
    write_json(tmp_path / "20220111_2159__kiel.json", [1, 2, 3])  # JSON, but neither accepted shape
    (tmp_path / "notes.txt").write_text("not a recording")
    settings = replay_settings(tmp_path)
    envelope = cc.fetch_poll(settings, SLOT)
    assert set(envelope) == {"koeln", "_failed"}
    failed = envelope["_failed"]
    assert set(failed) == {"20220111_2159__bonn.json", "20220111_2159__kiel.json"}
    assert "not valid JSON" in failed["20220111_2159__bonn.json"]
    assert "not a chargecloud poll" in failed["20220111_2159__kiel.json"]

    flat = cc.flatten_poll(envelope, SLOT)
    log = flat.poll_log.set_index("city_slug")
    assert bool(log.loc["koeln", "ok"]) and log.loc["koeln", "stations"] == 1
    assert not log.loc["20220111_2159__bonn.json", "ok"]
    assert "not valid JSON" in log.loc["20220111_2159__bonn.json", "error"]
    assert len(flat.stations) == 1


def test_unplaceable_files_are_reported(tmp_path):
    write_json(tmp_path / "koeln.json", response())
    (tmp_path / "broken.json").write_text("{")
    settings = replay_settings(tmp_path)
    assert list(cc.replay_index(settings)) == [SLOT]
    unplaced = cc.replay_unplaced(settings)
    assert list(unplaced) == [tmp_path / "broken.json"]


def test_recorded_envelope_keeps_its_failures_and_merges_with_other_files(tmp_path):
    write_json(tmp_path / "poll.json.gz", {"koeln": response(), "_failed": {"bonn": "HTTP 503 after 5 tries"}})
    write_json(tmp_path / "late" / "bonn.json", response([station("B1")], ts="2022-01-11T21:59:00+01:00"))
    write_json(tmp_path / "kiel.json", response([station("K1")], ts="2022-01-11T21:59:10+01:00"))
    envelope = cc.fetch_poll(replay_settings(tmp_path), SLOT)
    assert sorted(envelope) == ["bonn", "kiel", "koeln"]  # bonn answered in another recording of the slot

    assert "_failed" not in envelope

    (tmp_path / "late" / "bonn.json").unlink()
    envelope = cc.fetch_poll(replay_settings(tmp_path), SLOT)
    assert envelope["_failed"] == {"bonn": "HTTP 503 after 5 tries"}
    log = cc.flatten_poll(envelope, SLOT).poll_log.set_index("city_slug")
    assert log["ok"].to_dict() == {"koeln": True, "kiel": True, "bonn": False}


def test_same_city_twice_in_a_slot_keeps_the_earlier_poll(tmp_path):
    write_json(tmp_path / "a.json", {"koeln": response([station("late")], ts="2022-01-11T21:59:50+01:00")})
    write_json(tmp_path / "b.json", {"koeln": response([station("early")], ts="2022-01-11T21:58:00+01:00")})
    logged: list[str] = []
    envelope = cc.fetch_poll(replay_settings(tmp_path), SLOT, log=logged.append)
    assert envelope["koeln"]["data"][0]["id"] == "early"
    assert any("ignored" in line for line in logged)


def test_replay_slot_without_recording_is_empty(tmp_path):
    write_json(tmp_path / "koeln.json", response())
    assert cc.fetch_poll(replay_settings(tmp_path), SLOT + timedelta(hours=1)) == {}


def test_replay_uses_the_chargecloud_subfolder_and_skips_other_sources(tmp_path):
    write_json(tmp_path / "openchargemap" / "ocm.json", [{"ID": 1}])
    write_json(tmp_path / "koeln.json", response())
    assert cc.replay_files(tmp_path) == [tmp_path / "koeln.json"]
    write_json(tmp_path / "chargecloud" / "bonn.json", response())
    assert sorted(cc.fetch_poll(replay_settings(tmp_path), SLOT)) == ["bonn"]


def test_poll_slots():
    settings = Settings(source="simulated")
    start = datetime(2022, 1, 11, 20, 45, tzinfo=UTC)
    assert cc.poll_slots(settings, start, start + timedelta(minutes=30)) == [
        datetime(2022, 1, 11, 20, 50, tzinfo=UTC), datetime(2022, 1, 11, 21, 0, tzinfo=UTC),
        datetime(2022, 1, 11, 21, 10, tzinfo=UTC),
    ]
    assert cc.floor_slot(datetime(2022, 1, 11, 21, 58, 22), 10) == datetime(2022, 1, 11, 21, 50, tzinfo=UTC)


def test_poll_slots_in_replay_are_the_recorded_ones(tmp_path):
    write_json(tmp_path / "a.json", {"koeln": response()})
    write_json(tmp_path / "b.json", {"koeln": response(ts="2022-01-11T23:31:00+01:00")})
    settings = replay_settings(tmp_path)
    day = datetime(2022, 1, 11, tzinfo=UTC)
    assert cc.poll_slots(settings, day, day + timedelta(days=1)) == [SLOT, datetime(2022, 1, 11, 22, 30, tzinfo=UTC)]
    assert cc.poll_slots(settings, day, SLOT) == []


# --- simulated mode -------------------------------------------------------------------------------------
def test_simulated_mode_asks_the_simulator(monkeypatch):
    calls = []

    def chargecloud_poll(simulation, slot_start):
        calls.append((simulation, slot_start))
        return {"koeln": response()}

    fake = types.ModuleType("ev_assets.lib.simulator")
    fake.chargecloud_poll = chargecloud_poll
    monkeypatch.setitem(sys.modules, "ev_assets.lib.simulator", fake)
    monkeypatch.setattr(ev_assets.lib, "simulator", fake, raising=False)
    settings = Settings(source="simulated")
    assert cc.fetch_poll(settings, SLOT) == {"koeln": response()}
    assert calls == [(settings.simulation, SLOT)]


# --- flattening: tolerated changes and bad input --------------------------------------------------------
def test_fields_of_newer_api_versions_are_ignored():
    plain = cc.flatten_poll({"koeln": response()}, SLOT)
    newer_station = station(
        languages=["de", "en"], tariffZones=[{"id": 1}], operatorId="RHE", reservable=True,
        evses=[evse(reservable=True, operatorId="RHE", connectors=[connector(reservable=False, languages=["de"])])],
    )
    newer = cc.flatten_poll({"koeln": response([newer_station], languages=["de"], tariffZones=[])}, SLOT)
    assert newer.quarantine.empty
    for name in ("stations", "charging_points", "connectors", "status_chargingpoints", "status_connectors"):
        pd.testing.assert_frame_equal(getattr(newer, name), getattr(plain, name))


def test_absent_optional_fields_are_null():
    bare = {"id": "S1", "coordinates": {"latitude": "50.9", "longitude": "6.9"},
            "evses": [{"id": "CP1", "status": "CHARGING", "connectors": [{"id": "C1", "status": "CHARGING"}]}]}
    flat = cc.flatten_poll({"koeln": response([bare])}, SLOT)
    assert flat.quarantine.empty
    st = rows(flat.stations)[0]
    assert (st["station_id"], st["latitude"]) == ("S1", 50.9)
    for col in ("name", "address", "operator_name", "operator_hotline", "owner", "opening_times", "directions"):
        assert st[col] is None, col
    assert pd.isna(st["roaming"]) and pd.isna(st["twentyfourseven"])
    cp = rows(flat.charging_points)[0]
    assert cp["evse_uid"] is None and cp["capabilities"] is None and pd.isna(cp["roaming"])
    conn = rows(flat.connectors)[0]
    assert pd.isna(conn["ampere"]) and pd.isna(conn["max_power_kw"]) and conn["standard"] is None
    assert rows(flat.status_chargingpoints)[0]["parkingsensor_status"] is None
    assert rows(flat.status_connectors)[0]["status"] == "CHARGING"


@pytest.mark.parametrize(
    "bad, error",
    [
        ({"data": [], "status_code": 1001, "status_message": "Invalid city", "timestamp": TS}, "status_code 1001"),
        ({"data": [], "status_code": 1000, "timestamp": TS}, "empty data: no stations"),
        ({"status_code": 1000, "timestamp": TS}, "no data"),
        ({"data": {"id": "2"}, "status_code": 1000, "timestamp": TS}, "data is not a list"),
        (["not", "an", "object"], "not a JSON object"),
        (None, "not a JSON object"),
    ],
)
def test_a_bad_response_is_logged_and_the_other_cities_load(bad, error):
    flat = cc.flatten_poll({"koeln": response(), "bonn": bad}, SLOT, raw_file="raw/x.json.gz")
    log = flat.poll_log.set_index("city_slug")
    assert bool(log.loc["koeln", "ok"]) and not log.loc["bonn", "ok"]
    assert error in log.loc["bonn", "error"]
    assert log.loc["bonn", "stations"] == 0
    assert len(flat.stations) == 1 and flat.stations["city_slug"].tolist() == ["koeln"]
    q = rows(flat.quarantine)
    assert [(r["level"], r["record_id"]) for r in q] == [("response", "bonn")]
    assert error in q[0]["reason"] and json.loads(q[0]["record"]) == bad
    assert q[0]["source"] == "chargecloud" and q[0]["raw_file"] == "raw/x.json.gz"
    assert q[0]["partition_key"] == SLOT.isoformat()


def test_failed_cities_get_a_log_row_with_the_reason():
    envelope = {"koeln": response(), "_failed": {"bonn": "GET http://x/bonn failed after 5 tries: HTTP 503"}}
    log = cc.flatten_poll(envelope, SLOT).poll_log.set_index("city_slug")
    assert sorted(log.index) == ["bonn", "koeln"]
    assert not log.loc["bonn", "ok"] and "HTTP 503" in log.loc["bonn", "error"]
    assert pd.isna(log.loc["bonn", "poll_time"])
    assert log.loc["koeln", "poll_time"] == pd.Timestamp("2022-01-11T20:58:22Z")


@pytest.mark.parametrize(
    "coordinates",
    [None, {}, {"latitude": "", "longitude": ""}, {"latitude": "n/a", "longitude": "6.9"}, {"latitude": "50.9"}],
)
def test_station_without_coordinates_loads_with_null_and_is_quarantined(coordinates):
    bad = station("NOPOS", evses=[evse("CP-NOPOS", connectors=[connector("C-NOPOS")])])
    bad["coordinates"] = coordinates
    if coordinates is None:
        del bad["coordinates"]
    flat = cc.flatten_poll({"koeln": response([station(), bad])}, SLOT)
    st = flat.stations.set_index("station_id")
    assert pd.isna(st.loc["NOPOS", "latitude"]) and pd.isna(st.loc["NOPOS", "longitude"])
    assert st.loc["2", "latitude"] == pytest.approx(50.940991)
    q = rows(flat.quarantine)
    assert [(r["level"], r["record_id"]) for r in q] == [("station", "NOPOS")]
    assert "without usable coordinates" in q[0]["reason"]
    assert "CP-NOPOS" in set(flat.charging_points["charging_point_id"])
    assert "CP-NOPOS" in set(flat.status_chargingpoints["charging_point_id"])
    assert "C-NOPOS" in set(flat.status_connectors["connector_id"])


def test_records_without_id_are_quarantined_and_skipped():
    no_id_station = station(None, evses=[evse("ORPHAN")])
    no_id_evse = evse(None)
    no_id_conn = connector(None)
    good = station("S1", evses=[evse("CP1", connectors=[connector("C1"), no_id_conn]), no_id_evse])
    flat = cc.flatten_poll({"koeln": response([no_id_station, good, "junk"])}, SLOT)
    assert flat.stations["station_id"].tolist() == ["S1"]
    assert flat.charging_points["charging_point_id"].tolist() == ["CP1"]
    assert flat.connectors["connector_id"].tolist() == ["C1"]
    assert flat.status_chargingpoints["charging_point_id"].tolist() == ["CP1"]
    q = flat.quarantine
    assert sorted(q["level"]) == ["charging_point", "connector", "station", "station"]
    assert q["reason"].str.contains("without id|not a JSON object").all()
    assert (flat.poll_log["stations"] == 1).all()


def test_unknown_status_is_quarantined_and_the_rest_survives():
    cps = [
        evse("CP1", status="FLYING", connectors=[connector("C1", status="charging")]),
        evse("CP2", status="available", connectors=[connector("C2", status="Teleporting")]),
    ]
    flat = cc.flatten_poll({"koeln": response([station(evses=cps)])}, SLOT)
    assert sorted(flat.charging_points["charging_point_id"]) == ["CP1", "CP2"]  # master data still loads
    assert sorted(flat.connectors["connector_id"]) == ["C1", "C2"]
    assert rows(flat.status_chargingpoints)[0]["status"] == "AVAILABLE"
    assert flat.status_chargingpoints["charging_point_id"].tolist() == ["CP2"]
    assert flat.status_connectors[["connector_id", "status"]].values.tolist() == [["C1", "CHARGING"]]
    q = flat.quarantine.set_index("record_id")
    assert q.loc["CP1", "reason"] == "unknown status 'FLYING'" and q.loc["CP1", "level"] == "charging_point"
    assert q.loc["C2", "reason"] == "unknown status 'Teleporting'" and q.loc["C2", "level"] == "connector"
    assert json.loads(q.loc["C2", "record"])["id"] == "C2"


def test_non_numeric_connector_values_load_as_null_and_are_quarantined():
    flat = cc.flatten_poll({"koeln": response([station(evses=[evse(connectors=[connector(ampere="viel")])])])}, SLOT)
    assert pd.isna(flat.connectors.loc[0, "ampere"]) and flat.connectors.loc[0, "voltage"] == 400.0
    assert rows(flat.quarantine)[0]["reason"].startswith("ampere is not a number")


def test_attr_hash_is_stable_and_tracks_attributes():
    renamed = copy.deepcopy(response())
    renamed["data"][0]["name"] = "TankE - new name"
    renamed["data"][0]["evses"][0]["status"] = "CHARGING"  # status is not master data
    envelopes = [
        ({"koeln": response()}, SLOT, ""),
        ({"koeln": response(ts="2022-01-11T22:08:00+01:00")}, SLOT + timedelta(minutes=10), ""),
        ({"koeln": renamed}, SLOT, ""),
    ]
    first, again, changed = (cc.flatten_poll(*envelope) for envelope in envelopes)
    assert first.stations["attr_hash"].tolist() == again.stations["attr_hash"].tolist()
    assert first.stations["attr_hash"].tolist() != changed.stations["attr_hash"].tolist()
    assert first.charging_points["attr_hash"].tolist() == changed.charging_points["attr_hash"].tolist()

    history = cc.flatten_polls(envelopes)
    assert len(history.stations) == 2 and len(history.charging_points) == 1
    cp = rows(history.charging_points)[0]
    assert cp["first_seen_at"] == pd.Timestamp("2022-01-11T20:58:22Z")
    assert cp["last_seen_at"] == pd.Timestamp("2022-01-11T21:08:00Z")


def test_a_station_listed_by_two_cities_is_one_master_data_row_with_one_status_per_poll():
    flat = cc.flatten_poll({"koeln": response(), "leverkusen": response()}, SLOT)
    assert len(flat.stations) == 1 and flat.stations["city_slug"].tolist() == ["koeln"]
    assert flat.poll_log["stations"].tolist() == [1, 1]
    # one id, one status per poll: the second report is quarantined with the city that reported first
    assert flat.status_chargingpoints["city_slug"].tolist() == ["koeln"]
    assert len(flat.status_connectors) == 1
    reasons = flat.quarantine.set_index("level")["reason"]
    assert "DE*REK*E00025*001 already has a status in this poll (from koeln)" in reasons["charging_point"]
    assert "connector 447" in reasons["connector"]
    assert flat.problems["status"].count == 2


# --- data contracts (issue: implausible values pass) -------------------------------------------------------
def test_a_rating_in_watts_is_not_stored_as_kilowatts():
    stations = [station(evses=[evse(connectors=[connector(max_power=22000), connector("448", max_power=22)])])]
    flat = cc.flatten_poll({"koeln": response(stations)}, SLOT)
    assert flat.connectors.set_index("connector_id")["max_power_kw"].to_dict() == {"447": None, "448": 22.0} or (
        pd.isna(flat.connectors.set_index("connector_id").loc["447", "max_power_kw"])
    )
    assert flat.connectors.set_index("connector_id").loc["448", "max_power_kw"] == 22.0
    assert flat.quarantine["reason"].tolist() == ["max_power 22000 is outside 0..1000 kW: loaded as NULL"]
    assert flat.problems["ratings"].count == 1
    assert len(flat.status_connectors) == 2  # the connector's status still loads


def test_coordinates_outside_germany_are_flagged():
    flat = cc.flatten_poll({"koeln": response([station(lat="6.99", lon="50.94")])}, SLOT)  # swapped
    assert flat.stations["latitude"].isna().all()
    assert "(6.99, 50.94) is outside Germany" in flat.quarantine["reason"][0]
    assert flat.problems["coordinates"].count == 1


def test_every_contract_is_a_check_on_a_chargecloud_table():
    from ev_assets.defs.raw.chargecloud import FACT_TABLES, MASTER_TABLES

    assert {table for table, _, _ in cc.CONTRACTS.values()} <= {*FACT_TABLES, *MASTER_TABLES}
    assert len({name for _, name, _ in cc.CONTRACTS.values()}) == len(cc.CONTRACTS)


# --- polls that cannot be used are failures, never clean (issue: all_cities_polled passed) ------------------
@pytest.mark.parametrize(
    "bad, reason",
    [
        (response(status_code=1001, status_message="Fehler"), "status_code 1001"),
        (response(stations=[]), "empty data"),
        (response(ts="2099-01-11T21:58:22+01:00"), "more than 1:00:00 from the poll slot"),
    ],
)
def test_poll_failures_name_each_unusable_city(bad, reason):
    envelope = {"koeln": response(), "bonn": bad}
    failures = cc.poll_failures(envelope, SLOT)
    assert list(failures) == ["bonn"] and reason in failures["bonn"]
    flat = cc.flatten_poll(envelope, SLOT)
    log = flat.poll_log.set_index("city_slug")
    assert not log.loc["bonn", "ok"] and reason in log.loc["bonn", "error"]
    assert flat.problems["poll"].count == 1


def test_an_error_message_with_a_success_code_loads_but_is_not_clean():
    envelope = {"koeln": response(status_message="Internal error: backend timeout")}
    assert "reports an error" in cc.poll_failures(envelope, SLOT)["koeln"]
    flat = cc.flatten_poll(envelope, SLOT)
    assert len(flat.status_chargingpoints) == 1  # the data that came is kept
    assert "reports an error" in flat.poll_log["error"][0]
    assert flat.problems["poll"].count == 1


# --- implausible poll times (issue: one 2099 file planned 77 years of partitions) ---------------------------
def test_a_recording_from_the_future_or_the_distant_past_is_left_out_with_its_reason(tmp_path):
    write_json(tmp_path / "koeln.json", response())
    write_json(tmp_path / "future.json", {"bonn": response(ts="2099-01-11T21:58:22+01:00")})
    write_json(tmp_path / "past.json", {"kiel": response(ts="2001-01-11T21:58:22+01:00")})
    settings = replay_settings(tmp_path)
    assert list(cc.replay_index(settings)) == [SLOT]
    unplaced = {p.name: reason for p, reason in cc.replay_unplaced(settings).items()}
    assert "is in the future" in unplaced["future.json"]
    assert "before the poll partitions start" in unplaced["past.json"]
    rows = cc.unplaced_quarantine(cc.replay_unplaced(settings))
    assert sorted(rows["record_id"].map(lambda p: Path(p).name)) == ["future.json", "past.json"]
    assert set(rows["partition_key"]) == {cc.UNPLACED_PARTITION}


# --- a failed attempt must not block a later good one -------------------------------------------------------
def test_the_better_of_two_attempts_at_a_slot_is_loaded_and_says_so():
    failed = {"_failed": {"20220111_2158__koeln.json": "not valid JSON"}}
    good = {"koeln": response()}
    best, envelope = cc.pick_attempt([(failed, "a.json.gz"), (good, "b.json.gz")])
    assert best == 1
    flat = cc.flatten_poll(envelope, SLOT)
    assert len(flat.status_chargingpoints) == 1
    note = flat.poll_log.set_index("city_slug").loc["koeln", "error"]
    assert "later attempt" in note and "a.json.gz" in note and "not valid JSON" in note
    # a worse attempt after a good one does not displace it
    assert cc.pick_attempt([(good, "b.json.gz"), (failed, "c.json.gz")])[0] == 0


def test_missing_timestamp_falls_back_to_the_slot_and_says_so():
    flat = cc.flatten_poll({"koeln": response(ts=None)}, SLOT)
    log = rows(flat.poll_log)[0]
    assert log["ok"] and log["poll_time"] == SLOT and "no valid timestamp" in log["error"]
    assert (flat.status_connectors["poll_time"] == SLOT).all()


# --- live mode against a local server ---------------------------------------------------------------------
SHARED_POLL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "chargecloud" / REAL_POLLS[0]


@pytest.fixture(scope="module")
def recorded_city() -> dict:
    """One city's real recorded response when the shared data is there, else a small inline one."""
    if SHARED_POLL.is_file():
        return json.loads(SHARED_POLL.read_text())["bayreuth"]
    return response()


def live_settings(httpserver, **changes) -> Settings:
    return Settings(
        source="live", chargecloud_url=httpserver.url_for("/").rstrip("/"), cities=("bayreuth", "hof"),
        http_timeout_s=2.0, http_retries=2, http_backoff_s=0.01,
    ).with_(**changes)


def now_for(slot: datetime) -> datetime:
    return slot + timedelta(minutes=3)


def test_live_fetch(httpserver, recorded_city):
    httpserver.expect_request("/bayreuth").respond_with_json(recorded_city)
    httpserver.expect_request("/hof").respond_with_json(response([station("H1")]))
    envelope = cc.fetch_poll(live_settings(httpserver), SLOT, now=now_for(SLOT))
    assert envelope == {"bayreuth": recorded_city, "hof": response([station("H1")])}
    flat = cc.flatten_poll(envelope, SLOT)
    assert len(flat.stations) == len(recorded_city["data"]) + 1 and flat.poll_log["ok"].all()


def test_live_one_failing_city_does_not_fail_the_others(httpserver, recorded_city):
    httpserver.expect_request("/bayreuth").respond_with_json(recorded_city)
    httpserver.expect_request("/hof").respond_with_data("down", status=502)
    httpserver.expect_request("/kiel").respond_with_data("<html>", content_type="text/html")
    logged: list[str] = []
    settings = live_settings(httpserver, cities=("hof", "bayreuth", "kiel"))
    envelope = cc.fetch_poll(settings, SLOT, log=logged.append, now=now_for(SLOT))
    assert envelope["bayreuth"] == recorded_city
    assert set(envelope["_failed"]) == {"hof", "kiel"}
    assert "failed after 3 tries: HTTP 502" in envelope["_failed"]["hof"]
    assert "malformed JSON" in envelope["_failed"]["kiel"]
    assert any("hof" in line for line in logged)
    log = cc.flatten_poll(envelope, SLOT).poll_log.set_index("city_slug")
    assert log["ok"].to_dict() == {"hof": False, "bayreuth": True, "kiel": False}


def test_live_every_city_failing_still_returns_the_envelope(httpserver):
    httpserver.expect_request("/bayreuth").respond_with_data("no", status=404)
    httpserver.expect_request("/hof").respond_with_data("no", status=404)
    envelope = cc.fetch_poll(live_settings(httpserver), SLOT, now=now_for(SLOT))
    assert list(envelope) == ["_failed"] and set(envelope["_failed"]) == {"bayreuth", "hof"}


def test_live_honours_retry_after(httpserver, recorded_city):
    httpserver.expect_oneshot_request("/bayreuth").respond_with_data("", status=429, headers={"Retry-After": "30"})
    httpserver.expect_request("/bayreuth").respond_with_json(recorded_city)
    waits: list[float] = []
    settings = live_settings(httpserver, cities=("bayreuth",))
    envelope = cc.fetch_poll(settings, SLOT, now=now_for(SLOT), sleep=waits.append)
    assert envelope == {"bayreuth": recorded_city}
    assert waits == [30.0]


def test_live_retries_5xx_then_succeeds(httpserver, recorded_city):
    httpserver.expect_oneshot_request("/bayreuth").respond_with_data("", status=503)
    httpserver.expect_request("/bayreuth").respond_with_json(recorded_city)
    envelope = cc.fetch_poll(live_settings(httpserver, cities=("bayreuth",)), SLOT, now=now_for(SLOT))
    assert envelope == {"bayreuth": recorded_city}
    assert len(httpserver.log) == 2


def test_live_timeout_is_a_clear_failure_of_that_city(httpserver, recorded_city):
    def slow(_request):
        time.sleep(0.25)
        return Response(json.dumps(recorded_city), content_type="application/json")

    httpserver.expect_request("/hof").respond_with_handler(slow)
    httpserver.expect_request("/bayreuth").respond_with_json(recorded_city)
    settings = live_settings(httpserver, http_timeout_s=0.1, http_retries=0)
    envelope = cc.fetch_poll(settings, SLOT, now=now_for(SLOT))
    assert envelope["bayreuth"] == recorded_city
    assert envelope["_failed"]["hof"].endswith("failed after 1 tries: timed out after 0.1 s")
    deadline = time.monotonic() + 3  # let the one-at-a-time server finish the abandoned slow answer
    while len(httpserver.log) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)


def test_live_cannot_backfill(httpserver):
    settings = live_settings(httpserver)
    with pytest.raises(cc.ChargecloudError, match="cannot backfill.*replay"):
        cc.fetch_poll(settings, SLOT, now=SLOT + timedelta(minutes=25))
    assert len(httpserver.log) == 0
