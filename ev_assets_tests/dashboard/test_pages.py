"""The operator dashboard through Streamlit's own test harness (AppTest): every page on a small data root with known
values, every page on an empty data root (an explanation, no exception), the filters carrying across pages, and the
forecast and Models page on a registry with trained champions.

The data root (`dashboard_root`, built once per session) is a warehouse of hand-made marts (columns and types of
their dbt contracts, `dbt_project/models/marts/<model>.yml`) published as the marts snapshot the dashboard reads. Two UTC days, Monday
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
    session energy: the Norwegian rows of api/test_kpis (U1, U2, U3, garages G1, G2): all users 10-11 Jan 20 kWh
"""

from __future__ import annotations

import contextlib
import json
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from ev_assets.lib import snapshot
from ev_assets.lib.ml.core import float32_exact
from ev_assets.lib.settings import Settings
from ev_assets_tests.fixtures.dashboard import (
    create_mart,
    dimension_rows,
    frame,
    metrics,
    open_page,
    texts,
)
from ev_assets_tests.fixtures.dashboard import A_B, PAGES, QUIET, RHEIN


@pytest.fixture(scope="module")
def root(dashboard_root) -> Path:
    return dashboard_root


@pytest.fixture
def empty_root(tmp_path) -> Path:
    (tmp_path / "data").mkdir()
    return tmp_path / "data"



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
    from ev_assets.lib.dashboard.stations import opening_hours

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
    shown = metrics(at_)  # U1 in 10..11 Jan: 10 + 0 kWh, peak hour 10th 18:00 UTC, active hours (4 + 0) / 2
    assert shown["total"] == "10.0 kWh" and shown["peak hour"] == "10 Jan 19:00"  # in Oslo time, as the days
    assert "Date range (local days, Europe/Oslo)" in [d.label for d in at_.date_input]
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
def modelled_root(dashboard_models_root):
    return dashboard_models_root


def test_station_forecast_comes_from_the_champions(monkeypatch, modelled_root):
    data_dir, trained, features, _ = modelled_root
    at_ = open_page(monkeypatch, data_dir, "station", {"station": "S1"})
    latest = features[features["station_id"] == "S1"].sort_values("polled_at").iloc[[-1]]
    for horizon in (10, 60):
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
    assert overview.loc["station_available_10min", "drift"] == "no report yet"
    assert overview.loc["session_energy_kwh", "champion"] == "none"
    # a model without a champion has dashes where the champion's figures go (it used to show None)
    assert list(overview.loc["session_energy_kwh", ["metric", "model score", "best baseline"]]) == ["–", "–", "–"]
    said = texts(at_)
    assert "3 of 4 features drifted (75 % > limit 50 %)" in said and "hour, weekday, lag_1" in said
    assert "No drift report yet for station_available_10min" in said
    assert decisions["station_available_60min"].reason in said
    assert [b.label for b in at_.get("download_button")] == ["Open the drift report (HTML)"]


def test_map_tiles_only_when_asked_for(monkeypatch, root):
    monkeypatch.setenv("EV_MAP_TILES", "true")
    at_ = open_page(monkeypatch, root)
    station_map = json.loads(at_.get("plotly_chart")[0].proto.spec)
    assert {t["type"] for t in station_map["data"]} == {"scattermap"}
    assert station_map["layout"]["map"]["style"] == "carto-positron"
