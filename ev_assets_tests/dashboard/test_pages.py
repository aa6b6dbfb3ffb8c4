"""The operator dashboard through Streamlit's own test harness (AppTest): every page on a small data root with known
values, every page on an empty data root (an explanation, no exception), the filters carrying across pages, and the
forecast and Models page on a registry with trained champions.

The data root is built once per module: a warehouse of hand-made marts (columns and types of their dbt contracts,
`dbt_project/models/marts/<model>.yml`) published as the marts snapshot the dashboard reads. Two UTC days, Monday
10 and Tuesday 11 January 2022:

    S1 koeln "RheinEnergie AG", 2 points S1*1 (22 kW AC, Type 2), S1*2 (50 kW DC, CCS):
        S1*1 CHARGING 08:00-10:00 and 22:00-24:00 on the 11th, else AVAILABLE; S1*2 AVAILABLE
        hourly mart (one point charging = 0.5): Mon 08, 09 UTC 0.5, Mon 17 UTC 1.0; Tue 08, 09, 22, 23 UTC 0.5
        -> in Berlin time (UTC+1): busiest Monday 18:00-19:00 (100 %); Tue 23 UTC is Wednesday 00:00 local
        sessions: 10th 08-10, 11th 08-10, 11th 22:00 open -> 3; POIs Café Rhein 120 m, REWE 340 m
    S2 koeln "Stadtwerke A/B GmbH", 1 point: AVAILABLE
    S3 bonn  "Stadtwerke A/B GmbH", 1 point: OUTOFORDER on the 11th (a failure starts)
    S4 bonn  "Quiet GmbH", 1 point: never polled (unknown)
    latest poll (11th 23:50): 5 points -> available 40 %, charging 20 %, out of order 20 %, unknown 20 %
    reliability (koeln 48 h RheinEnergie + 24 h A/B a day, bonn 24 h A/B a day; bonn A/B out of order 24 h on the
        11th): RheinEnergie 100 %, Stadtwerke A/B GmbH 72 / 96 h = 75.0 % -> the worst; bonn 50.0 %
    session energy: the Norwegian rows of test_api_kpis (U1, U2, U3, garages G1, G2): all users 10-11 Jan 20 kWh
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml
from streamlit.testing.v1 import AppTest

from ev_assets.lib import snapshot
from ev_assets.lib.ml.core import float32_exact
from ev_assets.lib.settings import Settings
from ev_assets_tests.test_api_kpis import energy_rows, summary_rows

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "ev_assets" / "dashboard" / "app.py"
MARTS_YML = REPO / "dbt_project" / "models" / "marts"
PAGES = {"network": "views/network.py", "station": "views/station.py", "reliability": "views/reliability.py",
         "energy": "views/energy.py", "models": "views/models.py"}
UTC = timezone.utc
A_B, RHEIN, QUIET = "Stadtwerke A/B GmbH", "RheinEnergie AG", "Quiet GmbH"
KEYS = {RHEIN: "rheinenergie", A_B: "stadtwerkeab", QUIET: "quiet"}
HAS_OPERATORS = (MARTS_YML / "dim_operator.yml").exists()


# --- the hand-made marts ------------------------------------------------------------------------------------------
def contract(model: str) -> dict[str, str]:
    spec = yaml.safe_load((MARTS_YML / f"{model}.yml").read_text())
    return {c["name"]: c["data_type"] for c in spec["models"][0]["columns"]}


def create_mart(con: duckdb.DuckDBPyConnection, model: str, rows: list[dict]) -> None:
    """`marts.<model>` with the columns and types of its contract; a row's keys the contract lacks (operator_key
    before dim_operator existed) are left out, columns a row does not give are NULL."""
    columns = contract(model)
    con.execute("CREATE SCHEMA IF NOT EXISTS marts")
    con.execute(f"CREATE TABLE marts.{model} ({', '.join(f'{n} {t}' for n, t in columns.items())})")
    for row in rows:
        row = {k: v for k, v in row.items() if k in columns}
        con.execute(f"INSERT INTO marts.{model} ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
                    list(row.values()))


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2022, 1, day, hour, minute, second, tzinfo=UTC)


STATIONS = {  # id -> (city, operator, name, lat, lon, points {id: (standard, power type, kW)})
    "S1": ("koeln", RHEIN, "Aachener Straße 1", 50.9400, 6.9300,
           {"S1*1": ("IEC_62196_T2", "AC_3_PHASE", 22.0), "S1*2": ("IEC_62196_T2_COMBO", "DC", 50.0)}),
    "S2": ("koeln", A_B, "Domplatz 2", 50.9410, 6.9580, {"S2*1": ("IEC_62196_T2", "AC_3_PHASE", 11.0)}),
    "S3": ("bonn", A_B, "Marktplatz 3", 50.7350, 7.1000, {"S3*1": ("IEC_62196_T2", "AC_3_PHASE", 22.0)}),
    "S4": ("bonn", QUIET, "Ruhige Gasse 4", 50.7300, 7.0900, {"S4*1": ("DOMESTIC_F", "AC_1_PHASE", 3.7)}),
}


def dimension_rows():
    stations, points, connectors = [], [], []
    for sid, (city, operator, name, lat, lon, cps) in STATIONS.items():
        stations.append({"station_key": f"{sid}-v1", "station_id": sid, "city_slug": city, "station_name": name,
                         "address": name, "city": city.capitalize(), "postal_code": "50000", "country": "DE",
                         "latitude": lat, "longitude": lon, "operator_name": operator, "operator_key": KEYS[operator],
                         "operator_hotline": "+49 221 0000", "is_roaming": sid == "S1", "is_open_24_7": sid != "S4",
                         "valid_from": at(1, 0), "is_current": True})
        for cp, (standard, power_type, kw) in cps.items():
            points.append({"charging_point_key": f"{cp}-v1", "charging_point_id": cp, "evse_uid": f"DE*X*{cp}",
                           "station_id": sid, "valid_from": at(1, 0), "is_current": True})
            connectors.append({"connector_key": f"{cp}-c-v1", "connector_id": f"{cp}-c", "charging_point_id": cp,
                               "station_id": sid, "standard": standard, "format": "SOCKET", "power_type": power_type,
                               "max_power_kw": kw, "rated_power_kw": kw, "valid_from": at(1, 0), "is_current": True})
    operators = [{"operator_key": KEYS[o], "operator_name": o, "spellings": [o], "n_spellings": 1,
                  "normalized_names": [KEYS[o]], "n_stations": sum(1 for s in STATIONS.values() if s[1] == o)}
                 for o in (RHEIN, A_B, QUIET)]
    return stations, points, connectors, operators


def status_rows() -> list[dict]:
    """10-minute polls of the 11th for every point but S4*1."""
    rows = []
    for slot in range(144):
        minute = slot * 10
        hour = minute // 60
        for cp, sid, city, second in (("S1*1", "S1", "koeln", 1), ("S1*2", "S1", "koeln", 1),
                                      ("S2*1", "S2", "koeln", 1), ("S3*1", "S3", "bonn", 2)):
            status = "AVAILABLE"
            if cp == "S1*1" and (8 <= hour < 10 or hour >= 22):
                status = "CHARGING"
            if cp == "S3*1":
                status = "OUTOFORDER"
            polled = at(11, hour, minute % 60, second)
            rows.append({"status_id": f"{cp}-{slot}", "charging_point_id": cp, "charging_point_key": f"{cp}-v1",
                         "station_id": sid, "station_key": f"{sid}-v1", "city_slug": city, "polled_at": polled,
                         "hour_start": at(11, hour), "poll_date": date(2022, 1, 11), "status": status})
    return rows


def station_day(day, sid, points, charging, available, ooo, sessions=0, minutes=0.0) -> dict:
    city, operator = STATIONS[sid][:2]
    n = charging + available + ooo
    return {"day": date(2022, 1, day), "station_id": sid, "city_slug": city, "operator_name": operator,
            "operator_key": KEYS[operator], "n_charging_points": points, "n_polls": n, "n_polls_charging": charging,
            "n_polls_occupied": charging, "n_polls_available": available, "n_polls_out_of_order": ooo,
            "n_polls_unknown": 0, "observed_hours": n / 6, "share_charging": charging / n,
            "share_occupied": charging / n, "share_available": available / n, "share_out_of_order": ooo / n,
            "share_unknown": 0.0, "sessions": sessions, "session_minutes": minutes,
            "mean_session_minutes": minutes / sessions if sessions else None,
            "energy_kwh_lower": 0.0, "energy_kwh_upper": 0.0}


STATION_DAYS = [
    station_day(10, "S1", 2, 24, 264, 0, 1, 120.0), station_day(11, "S1", 2, 24, 264, 0, 2, 230.0),
    station_day(10, "S2", 1, 0, 144, 0), station_day(11, "S2", 1, 0, 144, 0),
    station_day(10, "S3", 1, 0, 144, 0), station_day(11, "S3", 1, 0, 0, 144),
]


def reliability_day(day, city, operator, stations, points, observed, ooo, failures) -> dict:
    in_service = observed - ooo
    return {"day": date(2022, 1, day), "city_slug": city, "operator_name": operator, "operator_key": KEYS[operator],
            "n_stations": stations, "n_charging_points": points, "observed_hours": observed,
            "known_status_hours": observed, "out_of_order_hours": ooo, "in_service_hours": in_service,
            "availability_pct": 100 * in_service / observed, "failures": failures,
            "mtbf_hours": in_service / failures if failures else None}


RELIABILITY_DAYS = [
    reliability_day(10, "koeln", RHEIN, 1, 2, 48.0, 0.0, 0), reliability_day(11, "koeln", RHEIN, 1, 2, 48.0, 0.0, 0),
    reliability_day(10, "koeln", A_B, 1, 1, 24.0, 0.0, 0), reliability_day(11, "koeln", A_B, 1, 1, 24.0, 0.0, 0),
    reliability_day(10, "bonn", A_B, 1, 1, 24.0, 0.0, 0), reliability_day(11, "bonn", A_B, 1, 1, 24.0, 24.0, 1),
]


def hourly_rows() -> list[dict]:
    rows = []
    busy = {(10, 8): 6, (10, 9): 6, (10, 17): 12, (11, 8): 6, (11, 9): 6, (11, 22): 6, (11, 23): 6}
    for day in (10, 11):
        for hour in range(24):
            occupied = busy.get((day, hour), 0)
            rows.append({"station_id": "S1", "city_slug": "koeln", "hour_start": at(day, hour),
                         "day": date(2022, 1, day), "n_charging_points": 2, "n_polls": 12,
                         "n_polls_charging": occupied, "n_polls_occupied": occupied,
                         "n_polls_available": 12 - occupied, "n_polls_out_of_order": 0, "n_polls_unknown": 0,
                         "observed_hours": 2.0, "share_charging": occupied / 12, "share_occupied": occupied / 12,
                         "share_available": 1 - occupied / 12, "share_out_of_order": 0.0, "share_unknown": 0.0,
                         "sessions_started": 0})
    return rows


def session_rows() -> list[dict]:
    def session(sid, day, start, end, minutes, is_open=False):
        return {"session_id": sid, "charging_point_id": "S1*1", "charging_point_key": "S1*1-v1", "station_id": "S1",
                "city_slug": "koeln", "session_start": at(day, start), "session_end": None if is_open else at(day, end),
                "session_date": date(2022, 1, day), "start_hour": at(day, start), "duration_minutes": minutes,
                "n_polls": int(minutes // 10), "is_open": is_open, "rated_power_kw": 22.0, "current_type": "AC",
                "energy_kwh_lower": minutes / 60 * 11, "energy_kwh_upper": minutes / 60 * 22}
    return [session("a", 10, 8, 10, 120.0), session("b", 11, 8, 10, 120.0), session("c", 11, 22, 0, 110.0, True)]


def out_of_order_rows() -> list[dict]:
    return [{"interval_id": "i1", "level": "charging_point", "item_id": "S3*1", "charging_point_id": "S3*1",
             "station_id": "S3", "city_slug": "bonn", "operator_name": A_B, "operator_key": KEYS[A_B],
             "status": "OUTOFORDER", "interval_start": at(11, 0, 0, 2), "interval_end": at(12, 0),
             "interval_date": date(2022, 1, 11), "duration_minutes": 1440.0, "n_polls": 144, "is_open": True,
             "is_failure_start": True}]


def poi_rows():
    pois = [{"poi_id": "node/1", "poi_name": "Café Rhein", "category": "cafe", "tag_key": "amenity",
             "tag_value": "cafe", "area": "koeln", "longitude": 6.931, "latitude": 50.941},
            {"poi_id": "way/2", "poi_name": "REWE", "category": "supermarket", "tag_key": "shop",
             "tag_value": "supermarket", "area": "koeln", "longitude": 6.934, "latitude": 50.942}]
    near = [{"poi_station_id": "p1", "station_id": "S1", "poi_id": "node/1", "category": "cafe", "distance_m": 120.4,
             "radius_m": 500.0},
            {"poi_station_id": "p2", "station_id": "S1", "poi_id": "way/2", "category": "supermarket",
             "distance_m": 340.0, "radius_m": 500.0}]
    return pois, near


def build_warehouse(path: Path) -> Path:
    stations, points, connectors, operators = dimension_rows()
    pois, near = poi_rows()
    con = duckdb.connect(str(path))
    try:
        con.execute("SET TimeZone = 'UTC'")
        create_mart(con, "dim_station", stations)
        if HAS_OPERATORS:
            create_mart(con, "dim_operator", operators)
        create_mart(con, "dim_charging_point", points)
        create_mart(con, "dim_connector", connectors)
        create_mart(con, "dim_poi", pois)
        create_mart(con, "dim_poi_station", near)
        create_mart(con, "fct_charging_point_status", status_rows())
        create_mart(con, "fct_charging_sessions", session_rows())
        create_mart(con, "fct_out_of_order_intervals", out_of_order_rows())
        create_mart(con, "mart_utilization_station_daily", STATION_DAYS)
        create_mart(con, "mart_utilization_station_hourly", hourly_rows())
        create_mart(con, "mart_reliability_daily", RELIABILITY_DAYS)
        create_mart(con, "mart_energy_daily", energy_rows())
        create_mart(con, "mart_energy_summary", summary_rows())
    finally:
        con.close()
    return path


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    data_dir = tmp_path_factory.mktemp("dashboard") / "data"
    data_dir.mkdir()
    snapshot.publish(build_warehouse(data_dir.parent / "warehouse.duckdb"), Settings(data_dir=data_dir).snapshot_dir)
    return data_dir


@pytest.fixture
def empty_root(tmp_path) -> Path:
    (tmp_path / "data").mkdir()
    return tmp_path / "data"


def open_page(monkeypatch, data_dir: Path, page: str = "network", query: dict | None = None) -> AppTest:
    monkeypatch.setenv("EV_DATA_DIR", str(data_dir))
    at_ = AppTest.from_file(str(APP), default_timeout=120)
    for key, value in (query or {}).items():
        at_.query_params[key] = value
    at_.run()
    if page != "network":
        at_.switch_page(PAGES[page]).run()
    assert not at_.exception, [e.value for e in at_.exception]
    return at_


def texts(at_: AppTest) -> str:
    """Everything the page says in text elements (markdown, captions, callouts, titles)."""
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success"):
        parts.extend(str(e.value) for e in at_.get(kind))
    return "\n".join(parts)


def metrics(at_: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at_.metric}


def frame(at_: AppTest, *columns: str) -> pd.DataFrame:
    """The first dataframe on the page holding these columns."""
    for element in at_.dataframe:
        value = element.value
        if all(c in value.columns for c in columns):
            return value
    raise AssertionError(f"no dataframe with columns {columns}")


# --- every page with data ------------------------------------------------------------------------------------------
def test_network_now_shares_at_the_latest_poll_map_and_trend(monkeypatch, root):
    at_ = open_page(monkeypatch, root)
    assert metrics(at_) == {"charging points": "5", "available": "40.0 %", "charging": "20.0 %",
                            "blocked / reserved": "0.0 %", "out of order": "20.0 %", "unknown": "20.0 %"}
    assert "2022-01-11 23:50 UTC" in texts(at_)
    by_city = frame(at_, "city", "points").set_index("city")
    assert by_city.loc["koeln", "points"] == 3 and by_city.loc["koeln", "available"] == pytest.approx(2 / 3)
    assert by_city.loc["bonn", "out of order"] == 0.5 and by_city.loc["bonn", "unknown"] == 0.5
    charts = at_.get("plotly_chart")
    assert len(charts) == 4  # the map, the shares by city and by operator, the trend
    station_map = json.loads(charts[0].proto.spec)
    colours = {trace["name"]: sorted(trace["customdata"][i][0] for i in range(len(trace["customdata"])))
               for trace in station_map["data"]}
    assert colours == {"out of order": ["S3"], "unknown": ["S4"]}  # the city with most stations (a tie: by name)
    at_.selectbox(key="map_city").set_value("koeln").run()
    station_map = json.loads(at_.get("plotly_chart")[0].proto.spec)
    colours = {trace["name"]: sorted(c[0] for c in trace["customdata"]) for trace in station_map["data"]}
    assert colours == {"available": ["S1", "S2"]}
    assert "mapbox" not in station_map["layout"] and "map" not in station_map["layout"]  # offline: no tiles
    by_operator = json.loads(charts[2].proto.spec)
    available = next(t for t in by_operator["data"] if t["name"] == "available")
    assert dict(zip(available["y"], available["x"])) == {RHEIN: 0.5, A_B: 0.5, QUIET: 0.0}
    trend = json.loads(charts[3].proto.spec)
    assert {t["name"] for t in trend["data"]} == {"available", "charging", "blocked / reserved", "out of order",
                                                  "unknown"}


def test_station_page_answers_when_it_is_usually_busy(monkeypatch, root):
    at_ = open_page(monkeypatch, root, "station", {"station": "S1"})
    said = texts(at_)
    assert "Aachener Straße 1" in said and RHEIN in said
    assert "Usually busiest: **Monday 18:00–19:00** (100 % occupied)" in said  # 17:00 UTC in Berlin time
    heatmap = next(json.loads(c.proto.spec) for c in at_.get("plotly_chart")
                   if json.loads(c.proto.spec)["data"][0]["type"] == "heatmap")
    z = heatmap["data"][0]["z"]
    # Monday 00:00 local is 23:00 UTC on Sunday: not observed; Tuesday 23:00 UTC is Wednesday 00:00 local
    assert z[0][18] == 1.0 and z[0][9] == 0.5 and z[0][0] is None and z[1][23] == 0.5 and z[2][0] == 0.5
    assert metrics(at_)["sessions"] == "3" and metrics(at_)["free now"] == "1 of 2"
    equipment = frame(at_, "charging_point_id", "standard")
    assert dict(zip(equipment["charging_point_id"], equipment["max_power_kw"])) == {"S1*1": 22.0, "S1*2": 50.0}
    assert dict(zip(equipment["charging_point_id"], equipment["status now"])) == {"S1*1": "CHARGING",
                                                                                  "S1*2": "AVAILABLE"}
    pois = frame(at_, "poi_name", "distance_m")
    assert list(pois["poi_name"]) == ["Café Rhein", "REWE"] and list(pois["distance_m"]) == [120.4, 340.0]
    timeline = next(json.loads(c.proto.spec) for c in at_.get("plotly_chart")
                    if json.loads(c.proto.spec)["data"][0]["type"] == "bar")
    runs = sum(len(t["x"]) for t in timeline["data"])
    assert runs == 5  # S1*1: available, charging, available, charging; S1*2: available all day
    # no registry in this root: the forecast says why instead of failing
    assert "no model registry yet" in said


def test_opening_times_read_as_days_and_hours():
    from ev_assets.lib.dashboard import opening_hours

    week = [{"weekday": d, "period_begin": "07:00:00", "period_end": "21:00:00"} for d in range(1, 7)]
    sunday = [{"weekday": 7, "period_begin": "08:00:00", "period_end": "12:00:00"}]
    assert opening_hours(json.dumps({"regular_hours": week + sunday, "twentyfourseven": False})) == \
        "Mon–Sat 07:00–21:00; Sun 08:00–12:00"
    assert opening_hours('{"twentyfourseven": true}') == "24/7"
    assert opening_hours(None) is None and opening_hours('{"regular_hours": []}') is None


def test_reliability_names_the_worst_operator(monkeypatch, root):
    at_ = open_page(monkeypatch, root, "reliability")
    errors = [e.value for e in at_.error]
    assert len(errors) == 1
    assert f"{A_B}** — 75.0 % available, 24.0 out-of-order hours, 1 failure, MTBF 72 h" in errors[0]
    assert "Worst city: **bonn** — 50.0 % available" in texts(at_)
    operators = frame(at_, "operator", "availability %")
    assert list(operators["operator"]) == [A_B, RHEIN]
    assert list(operators["availability %"]) == pytest.approx([75.0, 100.0])
    stations = frame(at_, "station", "availability %")
    assert list(stations["station"])[0] == "S3" and stations["availability %"].iloc[0] == pytest.approx(50.0)


def test_energy_kpis_are_the_service_figures(monkeypatch, root):
    at_ = open_page(monkeypatch, root, "energy")
    # all users over the sidebar's "last 7 days": the snapshot's station days start on the 10th, so 10..11 Jan
    shown = metrics(at_)
    assert shown["total"] == "20.0 kWh" and shown["daily average"] == "10.0 kWh"
    assert shown["peak day"] == "10 Jan 2022" and shown["peak hour"] == "–"
    at_.segmented_control(key="energy_kind").set_value("user").run()
    at_.selectbox(key="energy_user").set_value("U1").run()
    shown = metrics(at_)  # U1 in 10..11 Jan: 10 + 0 kWh, peak hour 10th 18:00, active hours (4 + 0) / 2
    assert shown["total"] == "10.0 kWh" and shown["peak hour"] == "10 Jan 18:00 UTC"
    assert shown["active hours / day"] == "2.0 h"
    assert not at_.exception


def test_models_page_without_a_registry_explains(monkeypatch, root):
    at_ = open_page(monkeypatch, root, "models")
    assert "No model registry yet" in texts(at_)


def test_filters_carry_across_pages(monkeypatch, root):
    at_ = open_page(monkeypatch, root)
    at_.sidebar.selectbox(key="city").set_value("bonn").run()
    assert metrics(at_)["charging points"] == "2"
    at_.switch_page(PAGES["reliability"]).run()
    assert at_.sidebar.selectbox(key="city").value == "bonn"
    stations = frame(at_, "station", "availability %")
    assert list(stations["station"]) == ["S3"]
    at_.switch_page(PAGES["station"]).run()
    assert at_.selectbox(key="station").options == ["Marktplatz 3 · bonn · S3", "Ruhige Gasse 4 · bonn · S4"]
    assert not at_.exception


def test_a_period_without_data_explains(monkeypatch, root):
    at_ = open_page(monkeypatch, root, "reliability")
    at_.sidebar.selectbox(key="period_preset").set_value("Custom").run()
    at_.sidebar.date_input(key="period_custom").set_value((date(2022, 1, 10), date(2022, 1, 10))).run()
    assert "75.0 %" not in texts(at_) and "Worst availability" in texts(at_)  # the 10th: no outage yet
    at_.switch_page(PAGES["station"]).run()
    at_.selectbox(key="station").set_value("S2").run()
    assert "No inferred sessions at this station in 10 Jan 2022 – 10 Jan 2022" in texts(at_)
    assert "No status polls of this station" in texts(at_)  # polls exist on the 11th only
    assert not at_.exception


# --- an empty data root --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_explains_an_empty_data_root(monkeypatch, empty_root, page):
    at_ = open_page(monkeypatch, empty_root, page)
    said = texts(at_)
    assert "run `make demo`" in said
    assert not at_.get("plotly_chart") and not at_.dataframe
    assert sorted(p.name for p in empty_root.iterdir()) == []  # nothing is created in the data root


@pytest.fixture(scope="module")
def stations_only_root(tmp_path_factory) -> Path:
    """A snapshot of a warehouse that holds the stations and nothing else (no polls, no sessions ingested)."""
    data_dir = tmp_path_factory.mktemp("dashboard_partial") / "data"
    data_dir.mkdir()
    warehouse = data_dir.parent / "warehouse.duckdb"
    with contextlib.closing(duckdb.connect(str(warehouse))) as con:
        create_mart(con, "dim_station", dimension_rows()[0])
    snapshot.publish(warehouse, Settings(data_dir=data_dir).snapshot_dir)
    return data_dir


@pytest.mark.parametrize("page, explanation", [
    ("network", "the source was not ingested"), ("station", "This snapshot lacks something this page reads"),
    ("reliability", "the source was not ingested"), ("energy", "the source was not ingested"),
    ("models", "No model registry yet")])
def test_every_page_explains_sources_that_were_not_ingested(monkeypatch, stations_only_root, page, explanation):
    at_ = open_page(monkeypatch, stations_only_root, page, {"station": "S1"})
    assert explanation in texts(at_)


# --- a registry with trained champions -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def modelled_root(root, tmp_path_factory):
    """The same snapshot, plus the station-time feature set of the ML tests' synthetic polls (stations S1..S3), the
    two availability models trained on it and registered as champions, and a drift report of one of them."""
    from ev_assets.lib.ml import stations
    from ev_assets.lib.ml.registry import Registry
    from ev_assets_tests.lib.ml.test_stations_models import synthetic_marts, synthetic_status

    data_dir = tmp_path_factory.mktemp("dashboard_models") / "data"
    (data_dir / "serving").mkdir(parents=True)
    os.symlink(root / "serving" / "snapshots", data_dir / "serving" / "snapshots")
    folder = data_dir / "ml" / "features" / "station_time_features"
    folder.mkdir(parents=True)
    with contextlib.closing(synthetic_marts(synthetic_status(days=2))) as con:
        stations.station_time_features(con).to_parquet(folder / "features.parquet", index=False)
    features = pd.read_parquet(folder / "features.parquet")
    trained = {m.name: m for m in stations.train_availability_models(features)}
    registry = Registry(data_dir / "mlflow")
    registry.ensure()
    decisions = {}
    for name, model in trained.items():
        registered = registry.register(model)
        decisions[name] = registry.decide(model, registered)
        if not decisions[name].promoted:
            registry.promote(name, registered.version)  # tiny data: a champion whatever the gate said
    drift = data_dir / "monitoring" / "drift" / "station_available_60min"
    drift.mkdir(parents=True)
    (drift / "latest.json").write_text(json.dumps({
        "name": "station_available_60min", "share_drifted": 0.75, "drifted_columns": ["hour", "weekday", "lag_1"],
        "n_columns": 4, "n_drifted": 3, "created_at": "2022-01-12T00:00:00+00:00",
        "window_from": "2022-01-11T00:00:00+00:00", "window_to": "2022-01-11T23:50:00+00:00"}))
    (drift / "latest.html").write_text("<html><body>drift report</body></html>")
    return data_dir, trained, features, decisions


def test_station_forecast_comes_from_the_champions(monkeypatch, modelled_root):
    data_dir, trained, features, _ = modelled_root
    at_ = open_page(monkeypatch, data_dir, "station", {"station": "S1"})
    latest = features[features["station_id"] == "S1"].sort_values("polled_at").iloc[[-1]]
    for horizon in (15, 60):
        model = trained[f"station_available_{horizon}min"]
        x = float32_exact(latest, list(model.features))[list(model.features)]  # rounded as in training
        expected = float(model.booster.predict(x)[0])
        assert metrics(at_)[f"free in {horizon} min"] == f"{100 * min(max(expected, 0), 1):.0f} %"
    target = pd.Timestamp(latest["polled_at"].iloc[0]).tz_convert("UTC") + pd.Timedelta(minutes=60)
    assert f"free at {target:%H:%M} UTC" in texts(at_)


def test_models_page_shows_champions_drift_and_the_gate(monkeypatch, modelled_root):
    data_dir, trained, _, decisions = modelled_root
    at_ = open_page(monkeypatch, data_dir, "models")
    overview = frame(at_, "model", "champion").set_index("model")
    for name, model in trained.items():
        assert overview.loc[name, "champion"] == "v1"
        assert overview.loc[name, "model score"] == f"{model.evaluation.model['brier']:.4g}"
        decision = "promoted" if decisions[name].promoted else "not promoted"
        assert overview.loc[name, "newest version"] == f"v1: {decision}"
    assert overview.loc["station_available_60min", "drift"] == "DRIFTED"
    assert overview.loc["station_available_15min", "drift"] == "no report yet"
    assert overview.loc["session_energy_kwh", "champion"] == "none"
    said = texts(at_)
    assert "3 of 4 features drifted (75 % > limit 50 %)" in said and "hour, weekday, lag_1" in said
    assert "No drift report yet for station_available_15min" in said
    assert decisions["station_available_60min"].reason in said
    assert [b.label for b in at_.get("download_button")] == ["Open the drift report (HTML)"]


def test_map_tiles_only_when_asked_for(monkeypatch, root):
    monkeypatch.setenv("EV_MAP_TILES", "true")
    at_ = open_page(monkeypatch, root)
    station_map = json.loads(at_.get("plotly_chart")[0].proto.spec)
    assert {t["type"] for t in station_map["data"]} == {"scattermap"}
    assert station_map["layout"]["map"]["style"] == "carto-positron"
