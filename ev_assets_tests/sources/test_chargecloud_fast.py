"""Flattening stored polls from their bytes (the fast path of `flatten_polls`) gives exactly the tables of the full
path: on the real recordings (against the tables the flattener gave before the fast path existed), on variants of
them that break every data contract, on hand-made bad polls, and through the asset into DuckDB."""

from __future__ import annotations

import copy
import hashlib
import json
import math
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ev_assets.lib.sources import chargecloud as cc
from ev_assets.lib import rawstore
from ev_assets.lib.settings import SimulationSettings

UTC = timezone.utc
SLOT = datetime(2022, 1, 11, 20, 50, tzinfo=UTC)  # holds 2022-01-11T21:58:22+01:00
REAL_POLLS = ("20220111_215824_cp_data_cities.json", "20220111_220822_cp_data_cities.json")
FRAMES = ("stations", "charging_points", "connectors", "status_chargingpoints", "status_connectors", "poll_log",
          "quarantine")

# sha256 of each table's rows (sorted, see `canonical_rows`) and of the contract problems, as the flattener of
# commit 2b2a952 (before the fast path) gave them for `real_polls` and `variants`.
FROZEN = {
    "real": {
        "stations": "97b081664da4aa716ea35afd2eb296b1d30f0a82c127e71692c9429a7c9bf656",
        "charging_points": "a127dc6a037fafc9d7cded6b811fb72bb13c50057f014936f4b1398b526304c0",
        "connectors": "c925860f8594e94d744da92300d3297ff7414a135f863b410ea15c2f87777149",
        "status_chargingpoints": "7ac3623a572a3fec6d22c587c2d0aa4dadabfd9e39cd97ea508766c942805ef5",
        "status_connectors": "746646873dc1a386f3a815b1beefc61dc8ce6b2c5aa13df3aa45cde0531864eb",
        "poll_log": "8555f07d6aae5a7f73cf6f264eed6434617c87f66a0d4ab0914f0f099a4c9ce2",
        "quarantine": "3269aa6901b578ae85e6aa1f95a8bc35ad15e163a300e35c5079ed5d0b1b7ab0",
        "problems": "fdf895cbc3073472d6e15cd49f9a94f979ed49759a9456247af7bee3b2edbcbe",
        "dtypes": "c73c149860a62db42890b95bfdd54714258fe7b2c1520f9b76d6ae1cf2815643",
    },
    "variants": {
        "stations": "424d04055a2476440dee4bb1de5d505fb2f6740adaf6fba74ab4e7415b19ea9b",
        "charging_points": "97239a29f1e65a8dea80baf58bf90fa14439f026198995ae07584292b1e941af",
        "connectors": "eb066d62846fead8aa534dc33c9bf5a57f9a9383f6d56f6e8a14e293f29aff3d",
        "status_chargingpoints": "18311d1f34f530c87580724815e87d1402a3140beafc6f4a983a3b7a5cf5e77f",
        "status_connectors": "135172f71a33d8e00a7ffda7b5baada637237dd74415fd1f7a862e756192f973",
        "poll_log": "cad9437ababfbc66ec2838815df64e39c072c43646c77e03e717124894c96615",
        "quarantine": "4f523a10905bc536010816bfcca2c3fb8b00063eeb46025c9705cbae257e6ec2",
        "problems": "ad82e7fb0260fc41b180770b6e9f917933d0a702c4731150e0d17b1c4e18f149",
        "dtypes": "c73c149860a62db42890b95bfdd54714258fe7b2c1520f9b76d6ae1cf2815643",
    },
}


# --- what is compared --------------------------------------------------------------------------------------
def stored(envelope) -> bytes:
    """An envelope as `rawstore.write_raw` stores it (and `RawFile.read_bytes` reads it back)."""
    return json.dumps(envelope, ensure_ascii=False).encode("utf-8")


def canonical(value):
    """A cell as plain JSON, the same whether it came from pandas or from DuckDB."""
    if value is None or value is pd.NaT or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (pd.Timestamp, datetime)):
        return pd.Timestamp(value).tz_convert("UTC").isoformat()
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (int, np.integer)):
        return int(value)
    return value


def canonical_rows(frame: pd.DataFrame) -> list:
    """Every row of the frame, every column, as JSON text, sorted."""
    return sorted(json.dumps([canonical(v) for v in row], ensure_ascii=False) for row in frame.itertuples(index=False))


def digest(flat: cc.FlatPoll) -> dict[str, str]:
    found = {name: hashlib.sha256("\n".join(canonical_rows(getattr(flat, name))).encode()).hexdigest() for name in FRAMES}
    problems = {rule: [p.count, p.examples] for rule, p in sorted(flat.problems.items())}
    found["problems"] = hashlib.sha256(json.dumps(problems, ensure_ascii=False).encode()).hexdigest()
    found["dtypes"] = hashlib.sha256(
        json.dumps({name: [str(t) for t in getattr(flat, name).dtypes] for name in FRAMES}).encode()
    ).hexdigest()
    return found


def assert_same(fast: cc.FlatPoll, full: cc.FlatPoll) -> None:
    """The same frames (values, order, dtypes) and the same contract problems."""
    for name in FRAMES:
        pd.testing.assert_frame_equal(getattr(fast, name), getattr(full, name), check_exact=True, obj=name)
    assert {r: (p.count, p.examples) for r, p in fast.problems.items()} == {
        r: (p.count, p.examples) for r, p in full.problems.items()
    }


def both_paths(polls: list[tuple[dict, datetime, str]]) -> tuple[cc.FlatPoll, cc.FlatPoll]:
    """(from stored bytes, from parsed envelopes) of the same polls."""
    fast = cc.flatten_polls([(stored(envelope), slot, name) for envelope, slot, name in polls])
    full = cc.flatten_polls([(copy.deepcopy(envelope), slot, name) for envelope, slot, name in polls])
    return fast, full


# --- the real recordings and variants of them --------------------------------------------------------------
def real_polls(recordings: list[dict]) -> list[tuple[dict, datetime, str]]:
    return [(envelope, SLOT + timedelta(minutes=10 * i), name) for i, (envelope, name) in enumerate(zip(recordings, REAL_POLLS))]


def _evses(envelope: dict, city: str) -> list[dict]:
    return [evse for station in envelope[city]["data"] for evse in station["evses"]]


def variants(recordings: list[dict]) -> list[tuple[dict, datetime, str]]:
    """The real polls, then polls made from them that change statuses, master data and break every contract."""
    first, second = recordings
    rotated = copy.deepcopy(second)  # every status moves to the next charging point: a poll full of changes
    for response in rotated.values():
        evses = [evse for station in response["data"] for evse in station["evses"]]
        statuses = [evse["status"] for evse in evses]
        for evse, status in zip(evses, statuses[1:] + statuses[:1]):
            evse["status"] = status
            for connector in evse["connectors"]:
                connector["status"] = status
            if "parkingsensor_status" in evse:
                evse["parkingsensor_status"] = "OCCUPIED" if status == "CHARGING" else "AVAILABLE"
            for connector in evse["connectors"]:
                if connector.get("ampere") == "1111":  # quarantined for its rating: its record changes too
                    connector["status"] = "OUTOFORDER"
    changed = copy.deepcopy(first)  # master data changes, odd and bad statuses
    changed["koeln"]["data"][0]["name"] += " (renamed)"
    changed["bonn"]["data"][0]["evses"].pop()
    _evses(changed, "bonn")[0]["status"] = "charging"
    _evses(changed, "dortmund")[0]["status"] = "FLYING"
    _evses(changed, "dortmund")[1]["connectors"][0]["status"] = None
    _evses(changed, "kiel")[0]["status"] = " AVAILABLE "
    messy = copy.deepcopy(first)  # one city's stations reported by another, a missing time, an error message
    messy["hof"] = copy.deepcopy(messy["bayreuth"])
    del messy["kiel"]["timestamp"]
    messy["muenster"]["status_message"] = "Internal error: backend timeout"
    broken = copy.deepcopy(second)  # contracts: coordinates, ratings, ids
    broken["koeln"]["data"][1]["coordinates"] = {"latitude": "", "longitude": ""}
    _evses(broken, "bonn")[0]["connectors"][0]["max_power"] = 22000
    broken["chemnitz"]["data"][2]["evses"][0]["id"] = None
    broken["heidelberg"]["data"][0]["evses"] = {"not": "a list"}
    failing = copy.deepcopy(second)  # whole answers unusable
    failing["bonn"]["status_code"] = 1001
    failing["kiel"]["data"] = []
    failing["_failed"] = {"wuerzburg": "HTTP 503 after 5 tries"}
    polls = [first, second, rotated, changed, messy, broken, failing, second, rotated]
    # the last poll's answers are more than an hour from its slot: every city fails
    return [(envelope, SLOT + timedelta(minutes=10 * i), f"variant_{i}.json.gz") for i, envelope in enumerate(polls)]


@pytest.fixture(scope="module")
def recordings(shared_data: Path) -> list[dict]:
    return [json.loads((shared_data / "chargecloud" / name).read_text()) for name in REAL_POLLS]


@pytest.fixture
def reused(monkeypatch) -> list[str]:
    """The cities whose answer reused a shape learnt from an earlier poll (the fast path), in order."""
    cities: list[str] = []
    apply = cc._CityShape.apply

    def counting(shape, rows, city, poll_time, values):
        cities.append(city)
        return apply(shape, rows, city, poll_time, values)

    monkeypatch.setattr(cc._CityShape, "apply", counting)
    return cities


def test_the_real_recordings_flatten_to_the_tables_of_the_full_path(recordings, reused):
    fast, full = both_paths(real_polls(recordings))
    assert_same(fast, full)
    assert digest(fast) == FROZEN["real"]  # the tables the flattener gave before the fast path
    assert len(fast.status_chargingpoints) == 2 * 2428 and len(fast.quarantine) == 2
    assert len(reused) >= 30  # most cities of the second poll only changed statuses


@pytest.fixture(scope="module")
def flattened_variants(recordings) -> tuple[cc.FlatPoll, cc.FlatPoll, list[str]]:
    """(from bytes, from parsed envelopes, the cities that reused a shape) of `variants`."""
    cities: list[str] = []
    apply = cc._CityShape.apply

    def counting(shape, rows, city, poll_time, values):
        cities.append(city)
        return apply(shape, rows, city, poll_time, values)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cc._CityShape, "apply", counting)
        fast, full = both_paths(variants(recordings))
    return fast, full, cities


def test_variants_break_every_contract_the_same_way(recordings, flattened_variants):
    polls = variants(recordings)
    fast, full, reused = flattened_variants
    assert_same(fast, full)
    assert digest(fast) == FROZEN["variants"]
    assert set(fast.problems) == {"poll", "status", "ids", "ratings", "coordinates"}
    assert len(reused) > 100
    # a connector rated 1111 A is quarantined in every usable poll, its record with the status of that poll
    rated = fast.quarantine[fast.quarantine["record_id"] == "240650321"]
    assert len(rated) == len(polls) - 1
    statuses = {json.loads(record)["status"] for record in rated["record"]}
    assert len(statuses) > 1, "the rotated polls change its status: the reused record text must follow"


def test_a_simulated_fleet_flattens_the_same_from_bytes(reused):
    sim = SimulationSettings(cities=("koeln", "bonn", "kiel"), stations_per_city=8, start=date(2022, 1, 10), days=1)
    from ev_assets.lib.simulator import chargecloud_poll

    start = datetime(2022, 1, 10, 6, tzinfo=UTC)  # the morning: statuses change between polls
    polls = [(chargecloud_poll(sim, start + timedelta(minutes=10 * k)), start + timedelta(minutes=10 * k), f"p{k}")
             for k in range(24)]
    fast, full = both_paths(polls)
    assert_same(fast, full)
    assert len(reused) == 3 * 23
    assert fast.status_chargingpoints["status"].nunique() > 1
    assert fast.stations["first_seen_at"].min() < fast.stations["last_seen_at"].min()


def test_the_arrow_frames_for_loading_hold_the_same_values(flattened_variants):
    fast = flattened_variants[0]
    plain, arrow = fast.tables(), fast.tables(arrow=True)
    for name in ("status_chargingpoints", "status_connectors"):
        assert str(arrow[name]["status"].dtype).startswith("dictionary")
        assert list(arrow[name].columns) == list(plain[name].columns)
        assert [list(map(canonical, row)) for row in arrow[name].itertuples(index=False)] == [
            list(map(canonical, row)) for row in plain[name].itertuples(index=False)
        ]
    assert arrow["status_chargingpoints"]["parkingsensor_status"].isna().sum() > 0


def test_frames_with_times_are_those_of_tables_frame():
    from ev_assets.lib import tables

    t1, t2 = SLOT, SLOT + timedelta(minutes=7, microseconds=250)
    rows = {
        "chargecloud_poll_log": [(t1, "koeln", t2, True, None, 3, 4, 5, "a.gz"), (t1, "bonn", None, False, "HTTP 503", 0, 0, 0, "a.gz")],
        "chargingstations": [("S1", "koeln", "N", None, "Köln", "50667", "DE", 50.9, None, "Op", None, None, True, None,
                              '{"a":1}', None, "h1", t1, t2)],
        "connectors": [("C1", "CP1", "S1", "T2", None, "AC", 32.0, None, 22.0, None, "h2", t2, t2)],
    }
    for name, table_rows in rows.items():
        pd.testing.assert_frame_equal(cc._frame(name, table_rows), tables.frame(name, table_rows), check_exact=True)
        pd.testing.assert_frame_equal(cc._frame(name, []), tables.frame(name, []))


def test_shapes_learnt_in_one_call_serve_the_next_the_same(recordings, reused):
    """The asset flattens day after day with one `CityShapes`: each day's tables are those of that day alone."""
    polls = variants(recordings)
    shapes = cc.CityShapes()
    for part in (polls[:3], polls[3:6], polls[6:], polls[:2]):
        before = len(reused)
        fast = cc.flatten_polls([(stored(envelope), slot, name) for envelope, slot, name in part], shapes)
        full = cc.flatten_polls([(copy.deepcopy(envelope), slot, name) for envelope, slot, name in part])
        assert_same(fast, full)
    assert len(reused) - before == 2 * 38  # the last call reused shapes learnt by the first in every city


# --- hand-made polls: what the fast path must not take for a status change ---------------------------------
def connector(cid="C1", status="AVAILABLE", **extra):
    return {"id": cid, "status": status, "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_3_PHASE",
            "ampere": "32", "voltage": "400", "max_power": 22, "tariff_id": None, **extra}


def evse(eid="CP1", status="AVAILABLE", connectors=None, **extra):
    return {"uid": "303", "id": eid, "status": status, "capabilities": ["RFID_READER"], "physical_reference": "1",
            "connectors": [connector(f"{eid}-C1", status)] if connectors is None else connectors, **extra}


def station(sid="S1", evses=None, **extra):
    return {"id": sid, "name": f"Station {sid}", "coordinates": {"latitude": "50.94", "longitude": "6.99"},
            "operator": {"name": "RheinEnergie AG", "hotline": "+49221"}, "opening_times": {"twentyfourseven": True},
            "evses": [evse(f"{sid}-CP1"), evse(f"{sid}-CP2", "CHARGING")] if evses is None else evses, **extra}


def answer(stations=None, minutes=0, **extra):
    ts = (datetime(2022, 1, 11, 21, 58, 22) + timedelta(minutes=minutes)).isoformat() + "+01:00"
    return {"data": [station()] if stations is None else stations, "status_code": 1000, "status_message": "Success",
            "timestamp": ts, **extra}


def city_polls(*envelopes) -> list[tuple[dict, datetime, str]]:
    """Envelopes as consecutive polls, each city's answer timed for its slot (`minutes` are set here)."""
    polls = []
    for i, envelope in enumerate(envelopes):
        envelope = copy.deepcopy(envelope)
        for key, value in envelope.items():
            if not key.startswith("_") and isinstance(value, dict) and value.get("timestamp"):
                value["timestamp"] = answer(minutes=10 * i)["timestamp"]
        polls.append((envelope, SLOT + timedelta(minutes=10 * i), f"poll{i}.json.gz"))
    return polls


def flipped(stations: list[dict]) -> list[dict]:
    """The stations with every status changed: what a poll 10 minutes later looks like."""
    stations = copy.deepcopy(stations)
    for st in stations:
        for e in st["evses"] if isinstance(st.get("evses"), list) else []:
            new = "CHARGING" if e.get("status") == "AVAILABLE" else "AVAILABLE"
            e["status"] = new
            for c in e.get("connectors") or []:
                c["status"] = new
            if "parkingsensor_status" in e:
                e["parkingsensor_status"] = "OCCUPIED" if new == "CHARGING" else "AVAILABLE"
    return stations


def restatus(stations: list[dict], statuses: dict) -> list[dict]:
    """The stations with some charging points' statuses replaced, nothing else changed."""
    stations = copy.deepcopy(stations)
    for st in stations:
        for e in st["evses"]:
            if e["id"] in statuses:
                e["status"] = statuses[e["id"]]
    return stations


BASE = [station("S1"), station("S2")]
CASES = {
    "statuses change": [{"koeln": answer(BASE)}, {"koeln": answer(flipped(BASE))}, {"koeln": answer(BASE)}],
    "unknown status": [{"koeln": answer(BASE)}, {"koeln": answer(restatus(BASE, {"S1-CP1": "FLYING"}))}],
    "lower-case status": [{"koeln": answer(BASE)}, {"koeln": answer(restatus(BASE, {"S1-CP1": "charging"}))}],
    "status with spaces": [{"koeln": answer(BASE)}, {"koeln": answer(restatus(BASE, {"S1-CP1": " CHARGING "}))},
                           {"koeln": answer(restatus(BASE, {"S1-CP1": " CHARGING ", "S2-CP1": "CHARGING"}))}],
    "status missing": [{"koeln": answer(BASE)}, {"koeln": answer(restatus(BASE, {"S1-CP1": None}))},
                       {"koeln": answer(restatus(BASE, {"S1-CP1": None, "S2-CP2": "AVAILABLE"}))}],
    "status not a string": [{"koeln": answer(BASE)}, {"koeln": answer(restatus(BASE, {"S1-CP1": 3}))},
                            {"koeln": answer(restatus(BASE, {"S1-CP1": ["CHARGING"]}))}],
    "parking sensor": [
        {"koeln": answer([station("S1", [evse("S1-CP1", parkingsensor_status="AVAILABLE")])])},
        {"koeln": answer([station("S1", [evse("S1-CP1", "CHARGING", parkingsensor_status="OCCUPIED")])])},
        {"koeln": answer([station("S1", [evse("S1-CP1", "CHARGING", parkingsensor_status=None)])])},
        {"koeln": answer([station("S1", [evse("S1-CP1", "CHARGING", parkingsensor_status="OCCUPIED")])])},
        {"koeln": answer([station("S1", [evse("S1-CP1", "CHARGING", parkingsensor_status="OCCUPIED ")])])},
        {"koeln": answer([station("S1", [evse("S1-CP1", "AVAILABLE", parkingsensor_status="OCCUPIED ")])])},
    ],
    "renamed station": [{"koeln": answer(BASE)}, {"koeln": answer([station("S1", name="New"), BASE[1]])},
                        {"koeln": answer(flipped(BASE))}, {"koeln": answer([station("S1", name="New"), BASE[1]])}],
    "station status field": [{"koeln": answer([station("S1", status="ACTIVE")])},
                             {"koeln": answer([station("S1", status="RETIRED")])}],
    "opening times status field": [{"koeln": answer([station("S1", opening_times={"status": "OPEN"})])},
                                   {"koeln": answer([station("S1", opening_times={"status": "CLOSED"})])}],
    "station status field, no coordinates": [{"koeln": answer([station("S1", coordinates=None, status="ACTIVE")])},
                                             {"koeln": answer([station("S1", coordinates=None, status="GONE")])}],
    "operator status field": [{"koeln": answer([station("S1", operator={"name": "X", "status": "ACTIVE"})])},
                              {"koeln": answer([station("S1", operator={"name": "X", "status": "GONE"})])}],
    "connector rated in watts": [
        {"koeln": answer([station("S1", [evse("S1-CP1", connectors=[connector(max_power=22000)])])])},
        {"koeln": answer([station("S1", [evse("S1-CP1", "CHARGING", connectors=[connector(status="CHARGING", max_power=22000)])])])},
    ],
    "coordinates missing": [{"koeln": answer([station("S1", coordinates=None)])},
                            {"koeln": answer(flipped([station("S1", coordinates=None)]))}],
    "records without ids": [{"koeln": answer(BASE)}, {"koeln": answer([station(None), BASE[1]])},
                            {"koeln": answer([station("S1", [evse(None)]), BASE[1]])}],
    "evses not a list": [{"koeln": answer(BASE)}, {"koeln": answer([station("S1", evses={"id": "x"}), BASE[1]])}],
    "bad answers": [{"koeln": answer(BASE), "bonn": answer([station("B1")])},
                    {"koeln": answer(BASE, status_code=1001), "bonn": answer([station("B1")], data=[])},
                    {"koeln": answer(BASE, status_message="Internal error"), "bonn": answer([station("B1")], timestamp=None)},
                    {"koeln": ["not", "an", "object"], "bonn": None, "_failed": {"kiel": "HTTP 503"}}],
    "failed not an object": [{"koeln": answer(BASE), "_failed": "oops"}],
    "newer API fields": [{"koeln": answer(BASE, languages=["de"])}, {"koeln": answer(flipped(BASE), languages=["de"])}],
    "two cities, one station": [{"koeln": answer(BASE), "bonn": answer([station("B1")])},
                                {"koeln": answer(BASE), "bonn": answer(BASE)}],
    "a city's shape reported by another city": [
        {"koeln": answer([station("S1")]), "bonn": answer([station("S2")])},
        {"koeln": answer([station("S2")]), "bonn": answer([station("S2")])},
    ],
    "a charging point reported by another city, its connectors not": [
        {"koeln": answer([station("S1")]), "bonn": answer([station("S2", [evse("S2-CP1", connectors=[])])])},
        {"koeln": answer([station("S2", [evse("S2-CP1", connectors=[])])]),
         "bonn": answer([station("S2", [evse("S2-CP1", connectors=[])])])},
    ],
    "time far from the slot": [{"koeln": answer(BASE)}, {"koeln": answer(BASE, timestamp="2022-01-11T10:00:00+01:00")}],
}


@pytest.mark.parametrize("case", list(CASES))
def test_hand_made_polls_flatten_the_same_from_bytes(case):
    polls = city_polls(*CASES[case])
    if case == "time far from the slot":  # city_polls would set a plausible time
        polls[1][0]["koeln"]["timestamp"] = "2022-01-11T10:00:00+01:00"
    fast, full = both_paths(polls)
    assert_same(fast, full)


def test_a_status_reported_by_another_city_is_quarantined_on_the_fast_path(reused):
    polls = city_polls(*CASES["a city's shape reported by another city"])
    fast, _ = both_paths(polls)
    assert "bonn" not in reused[-1:]  # bonn's answer looked like its first one, but koeln reported its points first
    reasons = fast.quarantine["reason"].tolist()
    assert any("S2-CP1 already has a status in this poll (from koeln)" in r for r in reasons)


# One charging point CP1 (status {a}) with one connector C1 (status {b}), spelled as a hand-written file might.
RAW_EVSES = {
    "as json.dumps writes it": '{{"id": "CP1", "status": "{a}", "connectors": [{{"id": "C1", "status": "{b}"}}]}}',
    "compact": '{{"id":"CP1","status":"{a}","connectors":[{{"id":"C1","status":"{b}"}}]}}',
    "space before the colon": '{{"id": "CP1", "status" : "{a}", "connectors": [{{"id": "C1", "status" : "{b}"}}]}}',
    "a key spelled with an escape": '{{"id": "CP1", "stat\\u0075s": "{a}", "connectors": [{{"id": "C1", "status": "{b}"}}]}}',
    "a status spelled with an escape": '{{"id": "CP1", "status": "\\u00{ahex}{arest}", "connectors": [{{"id": "C1", "status": "{b}"}}]}}',
    # json keeps the last of two equal keys, in the place of the first: a scan of the text sees another order
    "duplicate keys": '{{"id": "CP1", "connectors": [], "status": "{a}", "connectors": [{{"id": "C1", "status": "{b}"}}]}}',
    "duplicate status": '{{"id": "CP1", "status": "{b}", "status": "{a}", "connectors": [{{"id": "C1", "status": "{b}"}}]}}',
    "NaN": '{{"id": "CP1", "status": "{a}", "connectors": [{{"id": "C1", "status": "{b}", "ampere": NaN}}]}}',
}
STATUS_PAIRS = [("AVAILABLE", "CHARGING"), ("AVAILABLE", "AVAILABLE"), ("CHARGING", "AVAILABLE"),
                ("CHARGING", "CHARGING"), ("AVAILABLE", "CHARGING")]


def raw_poll(evse_text: str, a: str, b: str, minutes: int) -> bytes:
    evse_json = evse_text.format(a=a, b=b, ahex=f"{ord(a[0]):02x}", arest=a[1:])
    ts = answer(minutes=minutes)["timestamp"]
    return (
        '{"koeln": {"data": [{"id": "S1", "coordinates": {"latitude": "50.94", "longitude": "6.99"}, "evses": ['
        + evse_json + ']}], "status_code": 1000, "status_message": "Success", "timestamp": "' + ts + '"}}'
    ).encode()


@pytest.mark.parametrize("spelling", list(RAW_EVSES))
def test_raw_json_flattens_exactly_as_json_loads_reads_it(spelling):
    """Stored polls are json.dumps output, but any JSON must flatten as `json.loads` reads it, also when a later
    poll spells it the same way with other statuses."""
    blobs = [(raw_poll(RAW_EVSES[spelling], a, b, 10 * i), SLOT + timedelta(minutes=10 * i), f"p{i}")
             for i, (a, b) in enumerate(STATUS_PAIRS)]
    fast = cc.flatten_polls(blobs)
    full = cc.flatten_polls([(json.loads(blob), slot, name) for blob, slot, name in blobs])
    assert_same(fast, full)
    assert len(full.status_chargingpoints) == len(STATUS_PAIRS)


@pytest.mark.parametrize(
    "name, blob",
    [("not an object", b'[{"koeln": 1}]'), ("a byte order mark", b"\xef\xbb\xbf" + stored({"koeln": answer(BASE)})),
     ("NaN in a reserved key", b'{"_failed": {"bonn": NaN}}'), ("empty", b"{}")],
)
def test_odd_whole_polls_flatten_as_json_loads_reads_them(name, blob):
    fast = cc.flatten_poll(blob, SLOT, "odd.json.gz")
    full = cc.flatten_poll(json.loads(blob), SLOT, "odd.json.gz")
    assert_same(fast, full)


# --- through the asset: stored gzip files in, the lake's tables out ------------------------------------------------
def test_the_asset_loads_stored_polls_into_exactly_the_flattened_tables(dbt_manifest, recordings, tmp_path):
    import dagster as dg

    from ev_assets.cli import RANGE_END_TAG, RANGE_START_TAG
    from ev_assets.defs.raw.chargecloud import chargecloud_tables
    from ev_assets.defs.resources import EvConfig
    from ev_assets_tests.fixtures.jobs import raw_tables

    data_dir = tmp_path / "data"
    polls = real_polls(recordings)
    for envelope, slot, _ in polls:  # as chargecloud_polls stores them
        rawstore.write_raw(data_dir / "raw", "chargecloud", rawstore.slot_key(slot), envelope)
    result = dg.materialize(
        [chargecloud_tables],
        resources={"ev_config": EvConfig(data_dir=str(data_dir), source="simulated")},
        instance=dg.DagsterInstance.ephemeral(),
        tags={RANGE_START_TAG: "2022-01-11", RANGE_END_TAG: "2022-01-11"},
    )
    checks = {
        e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data.passed
        for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    assert checks == {"every_poll_usable": True, "statuses_valid": True, "records_have_ids": True,
                      "plausible_connector_ratings": False, "coordinates_in_germany": True}

    files = sorted(str(p) for p in (data_dir / "raw" / "chargecloud").rglob("*.json.gz"))
    expected = cc.flatten_polls([(envelope, slot, name) for (envelope, slot, _), name in zip(polls, files)])
    con = raw_tables(data_dir)
    for name, table in cc.TABLE_OF.items():
        loaded = con.execute(f"SELECT * FROM raw.{table}").df()
        assert canonical_rows(loaded) == canonical_rows(getattr(expected, name)), table
    con.close()
