"""The KPI endpoints on a hand-made marts snapshot with known values.

The warehouse is built once per module: every mart table the KPIs read is created with the columns and types of
its dbt contract (`dbt_project/models/marts/<model>.yml`, contracts are enforced there), filled with a few rows
whose KPIs are worked out by hand below, and published as a snapshot (`ev_assets.lib.snapshot.publish`). The
app is a bare `FastAPI()` with only the KPI router, as the brief of the router asks.

Session data (Norwegian reports, UTC days of January 2022, kWh):
    U3 (garage G2): days 1..10, energy = the day of the month, 1 session a day, active hours 1, peak hour 12:00
    U1 (garage G1): days 10..13, energy 10, 0, 20, 6; sessions 1, 0, 2, 1; active hours 4, 0, 6, 3;
                    peak hours 10th 18:00 3.0, 12th 07:00 5.0, 13th 20:00 5.0 (a tie: the earlier wins)
    U2 (garage G1): days 12..14, energy 8, 4, 12; 1 session a day; active hours 2, 2, 3
    all users per day: 1..9, then 20 (10th), 0, 28, 10, 12 (14th): total 115 over 14 days, 17 sessions

Polls (10-minute polls, 144 per charging point and day):
    S1 koeln "RheinEnergie AG", 1 point: 10th 36 charging / 48 occupied / 90 available / 6 out of order;
        11th 72 / 72 / 60 / 0 and 12 unknown; sessions 2 (120 min, 10..20 kWh), 3 (300 min, 15..30 kWh)
    S2 koeln "Stadtwerke A/B GmbH", 2 points: 10th all 288 available, no session
    S3 bonn "STADTWERKE A/B" (another spelling of the same operator), 1 point: 11th all 144 out of order, no session
    S4 bonn "Quiet GmbH": in dim_station only (known, never polled)
    failures (charging-point episodes starting): S1 on the 10th, S3 on the 11th

Operators (dim_operator): rheinenergie "RheinEnergie AG"; stadtwerkeab "Stadtwerke A/B GmbH" (spellings
"STADTWERKE A/B", "Stadtwerke A/B GmbH"), one operator with S2 and S3; quiet "Quiet GmbH".
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from ev_assets.lib import snapshot
from ev_assets.lib.settings import Settings
from ev_assets_tests.fixtures.kpi_marts import A_B, OSLO, UTC, build_warehouse, make_app


def approx(value):
    return pytest.approx(value, rel=1e-12, abs=1e-12)


@pytest.fixture(scope="module")
def client(tmp_path_factory) -> TestClient:
    root = tmp_path_factory.mktemp("kpi_data")
    settings = Settings(data_dir=root)
    snapshot.publish(build_warehouse(root / "warehouse.duckdb"), settings.snapshot_dir)
    with TestClient(make_app(settings.snapshot_dir, root)) as test_client:
        yield test_client


def ok(client: TestClient, url: str):
    """The answer's body; every answer carries X-Data-As-Of, and an object body the same `data_as_of` (taken out
    here: the figures are compared on their own)."""
    response = client.get(url)
    assert response.status_code == 200, (url, response.text)
    body = response.json()
    as_of = response.headers["X-Data-As-Of"]
    if isinstance(body, dict):
        assert body.pop("data_as_of") == (None if as_of == "unknown" else as_of), url
    return body


def test_answers_carry_the_snapshots_newest_data_time(client):
    """Energy routes: the start of the newest (local, Oslo) day with session energy; utilization / reliability: the
    newest status poll."""
    energy = client.get("/kpi/energy/total")
    assert energy.headers["X-Data-As-Of"] == energy.json()["data_as_of"]
    newest_day = max(row["day"] for row in client.get("/kpi/energy/daily").json())
    midnight = datetime.combine(date.fromisoformat(newest_day), datetime.min.time(), ZoneInfo(OSLO)).astimezone(UTC)
    assert energy.json()["data_as_of"] == f"{midnight:%Y-%m-%dT%H:%M}:00.000Z" == "2022-01-13T23:00:00.000Z"
    assert client.get("/kpi/users").headers["X-Data-As-Of"] == energy.json()["data_as_of"]
    status = client.get("/kpi/utilization/stations").headers["X-Data-As-Of"]
    newest_poll_day = max(row["last_day"] for row in client.get("/kpi/utilization/stations").json())
    assert status == f"{newest_poll_day}T00:00:00.000Z"  # this snapshot has no fact table: the mart's newest day
    assert client.get("/kpi/reliability/cities").headers["X-Data-As-Of"] == status


# --- session energy ----------------------------------------------------------------------------------------------
def test_users_and_garages_with_their_range_figures(client):
    assert ok(client, "/kpi/users") == [
        {"user_id": "U1", "first_day": "2022-01-10", "last_day": "2022-01-13", "n_days": 4, "sessions": 4,
         "energy_kwh": 36.0},
        {"user_id": "U2", "first_day": "2022-01-12", "last_day": "2022-01-14", "n_days": 3, "sessions": 3,
         "energy_kwh": 24.0},
        {"user_id": "U3", "first_day": "2022-01-01", "last_day": "2022-01-10", "n_days": 10, "sessions": 10,
         "energy_kwh": 55.0},
    ]
    in_range = ok(client, "/kpi/users?start_date=2022-01-11&end_date=2022-01-12")
    assert [(u["user_id"], u["n_days"], u["sessions"], u["energy_kwh"]) for u in in_range] == [
        ("U1", 2, 2, 20.0), ("U2", 1, 1, 8.0)]
    assert ok(client, "/kpi/users?start_date=2023-01-01") == []
    assert [(g["garage_id"], g["energy_kwh"]) for g in ok(client, "/kpi/garages")] == [("G1", 60.0), ("G2", 55.0)]


def test_hourly_loads_of_a_user(client):
    loads = ok(client, "/kpi/users/U1/hourly-loads")
    assert loads == [
        {"hour_start": "2022-01-10T18:00:00Z", "hour_start_local": "2022-01-10T19:00:00+01:00",
         "session_ids": ["s1"], "synthetic_3_6kw_kwh": 3.6, "synthetic_7_2kw_kwh": 7.2, "flex_3_6kw_kwh": None,
         "flex_7_2kw_kwh": None},
        {"hour_start": "2022-01-10T19:00:00Z", "hour_start_local": "2022-01-10T20:00:00+01:00",
         "session_ids": ["s1", "s2"], "synthetic_3_6kw_kwh": approx(3.4), "synthetic_7_2kw_kwh": approx(4.8),
         "flex_3_6kw_kwh": 0.5, "flex_7_2kw_kwh": None},
        {"hour_start": "2022-01-12T00:00:00Z", "hour_start_local": "2022-01-12T01:00:00+01:00",
         "session_ids": ["s3"], "synthetic_3_6kw_kwh": 3.6, "synthetic_7_2kw_kwh": 7.2, "flex_3_6kw_kwh": None,
         "flex_7_2kw_kwh": 1.0},
    ]
    # the range selects by UTC day: 01:00 in Oslo on the 12th is midnight UTC of the 12th
    assert [r["session_ids"] for r in ok(client, "/kpi/users/U1/hourly-loads?start_date=2022-01-12")] == [["s3"]]
    assert ok(client, "/kpi/users/U1/hourly-loads?start_date=2022-01-13") == []
    summer = ok(client, "/kpi/users/U2/hourly-loads?start_date=2022-07-01")
    assert [(h["hour_start"], h["hour_start_local"]) for h in summer] == [
        ("2022-07-01T10:00:00Z", "2022-07-01T12:00:00+02:00")]
    assert client.get("/kpi/users/nobody/hourly-loads").status_code == 404


def test_daily_energy_per_user_garage_and_all_users(client):
    u1 = ok(client, "/kpi/energy/daily?user_id=U1")
    assert [(d["day"], d["sessions"], d["energy_kwh"]) for d in u1] == [
        ("2022-01-10", 1, 10.0), ("2022-01-11", 0, 0.0), ("2022-01-12", 2, 20.0), ("2022-01-13", 1, 6.0)]
    assert [d["energy_kwh_cumulative"] for d in u1] == [10.0, 10.0, 30.0, 36.0]
    assert [d["energy_kwh_rolling_7d_avg"] for d in u1] == [approx(10.0), approx(5.0), approx(10.0), approx(9.0)]

    every = ok(client, "/kpi/energy/daily")
    assert len(every) == 14  # Jan 1..14, every calendar day
    assert [d["energy_kwh"] for d in every] == [*range(1, 10), 20.0, 0.0, 28.0, 10.0, 12.0]
    assert every[-1]["energy_kwh_cumulative"] == 115.0
    # rolling over the whole series, also when the range starts later: Jan 8..14
    last = ok(client, "/kpi/energy/daily?start_date=2022-01-14")
    assert last == [{"day": "2022-01-14", "sessions": 1, "energy_kwh": 12.0, "energy_kwh_cumulative": 115.0,
                     "energy_kwh_rolling_7d_avg": approx(87 / 7)}]
    g1 = ok(client, "/kpi/energy/daily?garage_id=G1&start_date=2022-01-12&end_date=2022-01-13")
    assert [(d["day"], d["energy_kwh"]) for d in g1] == [("2022-01-12", 28.0), ("2022-01-13", 10.0)]
    assert ok(client, "/kpi/energy/daily?user_id=U1&start_date=2022-01-14") == []


def test_total_energy_and_daily_average(client):
    assert ok(client, "/kpi/energy/total") == {
        "user_id": None, "garage_id": None, "from_day": "2022-01-01", "to_day": "2022-01-14", "n_days": 14,
        "sessions": 17, "energy_kwh": 115.0}
    assert ok(client, "/kpi/energy/total?user_id=U2&end_date=2022-01-13") == {
        "user_id": "U2", "garage_id": None, "from_day": "2022-01-12", "to_day": "2022-01-13", "n_days": 2,
        "sessions": 2, "energy_kwh": 12.0}
    average = ok(client, "/kpi/energy/daily-average")
    assert average["average_kwh"] == approx(115 / 14)
    # a range wider than the data is clipped to it: U1 has 4 calendar days, the idle 11th among them
    assert ok(client, "/kpi/energy/daily-average?user_id=U1&start_date=2021-12-01&end_date=2022-02-01") == {
        "user_id": "U1", "garage_id": None, "from_day": "2022-01-10", "to_day": "2022-01-13", "n_days": 4,
        "sessions": 4, "energy_kwh": 36.0, "average_kwh": 9.0}
    assert ok(client, "/kpi/energy/daily-average?garage_id=G2&start_date=2022-01-09")["average_kwh"] == 9.5
    empty = ok(client, "/kpi/energy/daily-average?user_id=U1&start_date=2023-01-01")
    assert (empty["n_days"], empty["energy_kwh"], empty["average_kwh"], empty["from_day"]) == (0, 0.0, None, None)


def test_last_7_days_ends_at_the_latest_day_with_data_or_end_date(client):
    assert ok(client, "/kpi/energy/last-7-days") == {
        "user_id": None, "garage_id": None, "from_day": "2022-01-08", "to_day": "2022-01-14", "n_days": 7,
        "sessions": 10, "energy_kwh": 87.0, "average_kwh": approx(87 / 7)}
    at_end = ok(client, "/kpi/energy/last-7-days?end_date=2022-01-12")
    assert (at_end["from_day"], at_end["to_day"], at_end["energy_kwh"]) == ("2022-01-06", "2022-01-12", 78.0)
    # an end after the data: the window still ends at the latest day with data
    assert ok(client, "/kpi/energy/last-7-days?end_date=2030-01-01")["to_day"] == "2022-01-14"
    # clipped to the first day of the user's data and to start_date
    u1 = ok(client, "/kpi/energy/last-7-days?user_id=U1")
    assert (u1["from_day"], u1["to_day"], u1["n_days"], u1["average_kwh"]) == ("2022-01-10", "2022-01-13", 4, 9.0)
    clipped = ok(client, "/kpi/energy/last-7-days?start_date=2022-01-13")
    assert (clipped["from_day"], clipped["n_days"], clipped["average_kwh"]) == ("2022-01-13", 2, 11.0)
    none = ok(client, "/kpi/energy/last-7-days?user_id=U3&start_date=2022-01-11")
    assert (none["from_day"], none["to_day"], none["n_days"], none["average_kwh"]) == (None, None, 0, None)


def test_peak_day(client):
    assert ok(client, "/kpi/energy/peak-day") == {
        "user_id": None, "garage_id": None, "day": "2022-01-12", "energy_kwh": 28.0, "sessions": 3}
    assert ok(client, "/kpi/energy/peak-day?user_id=U1")["day"] == "2022-01-12"
    assert ok(client, "/kpi/energy/peak-day?user_id=U1&start_date=2022-01-13")["energy_kwh"] == 6.0
    assert ok(client, "/kpi/energy/peak-day?user_id=U1&start_date=2023-01-01")["day"] is None


def test_peak_hour_needs_a_user_or_garage(client):
    # 5.0 kWh on the 12th at 07:00 and on the 13th at 20:00: the earlier wins
    assert ok(client, "/kpi/energy/peak-hour?user_id=U1") == {
        "user_id": "U1", "garage_id": None, "hour_start": "2022-01-12T07:00:00Z", "energy_kwh": 5.0}
    assert ok(client, "/kpi/energy/peak-hour?user_id=U1&start_date=2022-01-13")["hour_start"] == (
        "2022-01-13T20:00:00Z")
    assert ok(client, "/kpi/energy/peak-hour?garage_id=G2")["hour_start"] == "2022-01-10T12:00:00Z"
    assert ok(client, "/kpi/energy/peak-hour?user_id=U1&start_date=2022-01-11&end_date=2022-01-11") == {
        "user_id": "U1", "garage_id": None, "hour_start": None, "energy_kwh": None}
    response = client.get("/kpi/energy/peak-hour")
    assert response.status_code == 400 and "user_id or garage_id" in response.json()["detail"]


def test_active_hours(client):
    assert ok(client, "/kpi/active-hours/daily?user_id=U1") == [
        {"day": "2022-01-10", "active_charging_hours": 4}, {"day": "2022-01-11", "active_charging_hours": 0},
        {"day": "2022-01-12", "active_charging_hours": 6}, {"day": "2022-01-13", "active_charging_hours": 3}]
    assert ok(client, "/kpi/active-hours/average?user_id=U1") == {
        "user_id": "U1", "garage_id": None, "from_day": "2022-01-10", "to_day": "2022-01-13", "n_days": 4,
        "average_active_hours": 3.25}
    assert ok(client, "/kpi/active-hours/average?garage_id=G1&start_date=2022-01-11")["average_active_hours"] == 3.5
    assert ok(client, "/kpi/active-hours/daily?user_id=U2&end_date=2022-01-11") == []
    assert client.get("/kpi/active-hours/daily").status_code == 400
    assert client.get("/kpi/active-hours/average").status_code == 400


def test_other_sources_are_not_users(client):
    # "U1" is also a charging-event station id and "ghost" an entity of another source: neither counts here
    assert client.get("/kpi/energy/total?user_id=ghost").status_code == 404
    assert client.get("/kpi/energy/total?user_id=caltech").status_code == 404
    assert ok(client, "/kpi/energy/peak-day?user_id=U1&start_date=2022-01-12&end_date=2022-01-12")["energy_kwh"] == 20.0


# --- utilization and reliability ---------------------------------------------------------------------------------
def test_utilization_per_station(client):
    stations = ok(client, "/kpi/utilization/stations")
    assert [s["station_id"] for s in stations] == ["S1", "S2", "S3"]  # S4 was never polled
    s1 = stations[0]
    assert s1 == {
        "station_id": "S1", "city_slug": "koeln", "operator_name": "RheinEnergie AG", "n_days": 2,
        "first_day": "2022-01-10", "last_day": "2022-01-11", "n_charging_points": 1, "observed_hours": 48.0,
        "share_charging": 108 / 288, "share_occupied": 120 / 288, "share_available": 150 / 288,
        "share_out_of_order": 6 / 288, "share_unknown": 12 / 288, "sessions": 5, "mean_session_minutes": 84.0,
        "energy_kwh_lower": 25.0, "energy_kwh_upper": 50.0}
    days = ok(client, "/kpi/utilization/stations/S1?start_date=2022-01-11")
    assert len(days) == 1 and days[0]["day"] == "2022-01-11" and days[0]["share_charging"] == 0.5
    assert days[0]["mean_session_minutes"] == 100.0
    assert ok(client, "/kpi/utilization/stations/S2")[0]["mean_session_minutes"] is None
    assert ok(client, "/kpi/utilization/stations/S1?start_date=2022-02-01") == []
    assert ok(client, "/kpi/utilization/stations/S4") == []  # known station, never polled
    assert client.get("/kpi/utilization/stations/S99").status_code == 404


def test_utilization_per_city_and_operator(client):
    cities = {c["city_slug"]: c for c in ok(client, "/kpi/utilization/cities")}
    koeln = cities["koeln"]
    assert (koeln["n_stations"], koeln["n_days"], koeln["observed_hours"], koeln["sessions"]) == (2, 2, 96.0, 5)
    # every charging-point hour weighs the same: the 2-point station counts twice
    assert koeln["share_charging"] == 108 / 576 and koeln["share_available"] == 438 / 576
    assert cities["bonn"]["share_out_of_order"] == 1.0
    day = ok(client, "/kpi/utilization/cities/koeln?end_date=2022-01-10")
    assert day == [{
        "city_slug": "koeln", "day": "2022-01-10", "n_stations": 2, "n_charging_points": 3, "observed_hours": 72.0,
        "share_charging": 36 / 432, "share_occupied": 48 / 432, "share_available": 378 / 432,
        "share_out_of_order": 6 / 432, "share_unknown": 0.0, "sessions": 2, "mean_session_minutes": 60.0,
        "energy_kwh_lower": 10.0, "energy_kwh_upper": 20.0}]
    assert ok(client, "/kpi/utilization/cities/bonn?start_date=2022-01-12") == []
    assert client.get("/kpi/utilization/cities/atlantis").status_code == 404

    operators = {o["operator_name"]: o for o in ok(client, "/kpi/utilization/operators")}
    assert set(operators) == {"RheinEnergie AG", A_B}
    assert (operators[A_B]["n_stations"], operators[A_B]["observed_hours"]) == (2, 72.0)
    # an operator name with a '/' works encoded and plain
    for path in ("Stadtwerke%20A%2FB%20GmbH", "Stadtwerke A/B GmbH"):
        days = ok(client, f"/kpi/utilization/operators/{path}")
        assert [(d["day"], d["n_stations"], d["share_out_of_order"]) for d in days] == [
            ("2022-01-10", 1, 0.0), ("2022-01-11", 1, 1.0)]
    assert ok(client, "/kpi/utilization/operators/Quiet%20GmbH") == []
    assert client.get("/kpi/utilization/operators/Nobody%20AG").status_code == 404


def test_reliability_per_station(client):
    stations = {s["station_id"]: s for s in ok(client, "/kpi/reliability/stations")}
    assert stations["S1"] == {
        "station_id": "S1", "city_slug": "koeln", "operator_name": "RheinEnergie AG", "n_days": 2,
        "first_day": "2022-01-10", "last_day": "2022-01-11", "n_charging_points": 1, "observed_hours": 48.0,
        "known_status_hours": 46.0, "out_of_order_hours": 1.0, "in_service_hours": 45.0,
        "availability_pct": approx(100 * 45 / 46), "failures": 1, "mtbf_hours": 45.0}
    assert (stations["S2"]["failures"], stations["S2"]["mtbf_hours"], stations["S2"]["availability_pct"]) == (
        0, None, 100.0)
    # the connector episode and the continuation do not count as failures
    assert (stations["S3"]["failures"], stations["S3"]["availability_pct"]) == (1, 0.0)
    days = ok(client, "/kpi/reliability/stations/S1")
    assert [(d["day"], d["failures"], d["known_status_hours"]) for d in days] == [
        ("2022-01-10", 1, 24.0), ("2022-01-11", 0, 22.0)]
    assert ok(client, "/kpi/reliability/stations/S4") == []
    assert client.get("/kpi/reliability/stations/S99").status_code == 404


def test_reliability_per_city_and_operator(client):
    cities = {c["city_slug"]: c for c in ok(client, "/kpi/reliability/cities")}
    assert cities["koeln"] == {
        "city_slug": "koeln", "n_days": 2, "first_day": "2022-01-10", "last_day": "2022-01-11",
        "observed_hours": 96.0, "known_status_hours": 94.0, "out_of_order_hours": 1.0, "in_service_hours": 93.0,
        "availability_pct": approx(100 * 93 / 94), "failures": 1, "mtbf_hours": 93.0}
    days = ok(client, "/kpi/reliability/cities/koeln")
    assert [(d["day"], d["n_charging_points"], d["observed_hours"], d["failures"]) for d in days] == [
        ("2022-01-10", 3, 72.0, 1), ("2022-01-11", 1, 24.0, 0)]
    assert ok(client, "/kpi/reliability/cities/koeln?start_date=2022-01-12") == []
    assert client.get("/kpi/reliability/cities/atlantis").status_code == 404

    operators = {o["operator_name"]: o for o in ok(client, "/kpi/reliability/operators")}
    assert (operators[A_B]["in_service_hours"], operators[A_B]["availability_pct"], operators[A_B]["mtbf_hours"]) == (
        48.0, approx(100 * 48 / 72), 48.0)
    days = ok(client, "/kpi/reliability/operators/Stadtwerke%20A%2FB%20GmbH?start_date=2022-01-11")
    assert [(d["day"], d["availability_pct"], d["failures"]) for d in days] == [("2022-01-11", 0.0, 1)]
    assert client.get("/kpi/reliability/operators/Nobody%20AG").status_code == 404


# the figure that S3's out-of-order day (spelled "STADTWERKE A/B") moves: over the range, and on the 11th
OUT_OF_ORDER = {"utilization": ("share_out_of_order", 1 / 3, 1.0), "reliability": ("out_of_order_hours", 24.0, 24.0)}


@pytest.mark.parametrize("measure", sorted(OUT_OF_ORDER))
def test_an_operator_counts_once_under_all_its_spellings(client, measure):
    figure, over_range, on_the_11th = OUT_OF_ORDER[measure]
    listed = ok(client, f"/kpi/{measure}/operators")
    # S2 and S3 spell their operator two ways: one row, under the display name, with both stations' polls
    assert [(o["operator_key"], o["operator_name"]) for o in listed] == [
        ("rheinenergie", "RheinEnergie AG"), ("stadtwerkeab", A_B)]
    assert (listed[1]["observed_hours"], listed[1][figure]) == (72.0, approx(over_range))
    # the key, each spelling, and a spelling in other case or with spaces around all answer for the one operator
    by_key = ok(client, f"/kpi/{measure}/operators/stadtwerkeab")
    assert [(d["day"], d["operator_key"], d["operator_name"], d[figure]) for d in by_key] == [
        ("2022-01-10", "stadtwerkeab", A_B, 0.0), ("2022-01-11", "stadtwerkeab", A_B, on_the_11th)]
    for name in ("STADTWERKE%20A%2FB", "Stadtwerke%20A%2FB%20GmbH", "STADTWERKE A/B",
                 "%20stadtwerke%20a%2Fb%20gmbh%20"):
        assert ok(client, f"/kpi/{measure}/operators/{name}") == by_key, name
    assert ok(client, f"/kpi/{measure}/operators/quiet") == []
    # a name the operator was never spelled as is not guessed at
    response = client.get(f"/kpi/{measure}/operators/Stadtwerke%20A-B")
    assert response.status_code == 404 and "unknown operator" in response.json()["detail"]


def test_operator_kpis_need_a_snapshot_with_the_operator_dimension(tmp_path):
    snapshot.publish(build_warehouse(tmp_path / "warehouse.duckdb", with_operators=False), tmp_path / "snaps")
    old = TestClient(make_app(tmp_path / "snaps", tmp_path))
    for url in ("/kpi/utilization/operators", "/kpi/utilization/operators/rheinenergie",
                "/kpi/reliability/operators", "/kpi/reliability/operators/RheinEnergie%20AG"):
        response = old.get(url)
        assert response.status_code == 503, (url, response.text)
        assert "warehouse job" in response.json()["detail"]
    # the other KPIs of that snapshot still answer
    assert old.get("/kpi/utilization/cities/koeln").status_code == 200
    assert old.get("/kpi/reliability/stations/S1").status_code == 200


# --- bad input, and no snapshot ----------------------------------------------------------------------------------
ROUTES = [
    "/kpi/users", "/kpi/garages", "/kpi/users/U1/hourly-loads", "/kpi/energy/daily", "/kpi/energy/total",
    "/kpi/energy/daily-average", "/kpi/energy/last-7-days", "/kpi/energy/peak-day",
    "/kpi/energy/peak-hour?user_id=U1", "/kpi/active-hours/daily?user_id=U1",
    "/kpi/active-hours/average?user_id=U1",
    *(f"/kpi/{m}/{k}" for m in ("utilization", "reliability") for k in ("stations", "cities", "operators")),
    *(f"/kpi/{m}/{k}" for m in ("utilization", "reliability")
      for k in ("stations/S1", "cities/koeln", "operators/RheinEnergie%20AG")),
]


def _with(url: str, query: str) -> str:
    return url + ("&" if "?" in url else "?") + query


@pytest.mark.parametrize("url", ROUTES)
def test_every_route_answers_and_rejects_bad_ranges_with_400(client, url):
    ok(client, url)
    ok(client, _with(url, "start_date=2022-01-10&end_date=2022-01-10"))  # one day is a range
    for query, says in [
        ("start_date=2022-13-01", "start_date '2022-13-01' is not an ISO date"),
        ("end_date=yesterday", "end_date 'yesterday' is not an ISO date"),
        ("start_date=20220110", "is not an ISO date"),
        ("end_date=2022-01-10%0A", "is not an ISO date"),
        ("start_date=2022-01-12&end_date=2022-01-11", "start_date 2022-01-12 is after end_date 2022-01-11"),
    ]:
        response = client.get(_with(url, query))
        assert response.status_code == 400, (url, query, response.text)
        assert says in response.json()["detail"]


@pytest.mark.parametrize("url", [
    "/kpi/users/nobody/hourly-loads", "/kpi/energy/daily?user_id=nobody", "/kpi/energy/total?garage_id=G9",
    "/kpi/energy/daily-average?user_id=nobody", "/kpi/energy/last-7-days?user_id=nobody",
    "/kpi/energy/peak-day?user_id=nobody", "/kpi/energy/peak-hour?user_id=nobody",
    "/kpi/active-hours/daily?garage_id=G9", "/kpi/active-hours/average?user_id=nobody",
])
def test_unknown_users_and_garages_are_404(client, url):
    response = client.get(url)
    assert response.status_code == 404 and "unknown" in response.json()["detail"]


def test_user_and_garage_together_is_400(client):
    response = client.get("/kpi/energy/total?user_id=U1&garage_id=G1")
    assert response.status_code == 400 and "not both" in response.json()["detail"]


def test_openapi_documents_every_status_and_the_date_format(client):
    paths = client.get("/openapi.json").json()["paths"]
    kpi_paths = [p for p in paths if p.startswith("/kpi/")]
    assert len(kpi_paths) == 23
    for path in kpi_paths:
        operation = paths[path]["get"]
        codes = set(operation["responses"])
        assert {"200", "400", "503"} <= codes, path
        if "{" in path or "user_id" in str(operation.get("parameters")):
            assert "404" in codes, path
        dates = {p["name"]: p for p in operation["parameters"] if p["name"] in ("start_date", "end_date")}
        assert set(dates) == {"start_date", "end_date"}, path
        assert all(p["schema"]["format"] == "date" for p in dates.values())
    daily = paths["/kpi/energy/daily"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert daily["type"] == "array"
    model = client.get("/openapi.json").json()["components"]["schemas"]["Last7Days"]
    assert all(field.get("description") for field in model["properties"].values())


def test_503_without_a_snapshot_and_for_a_snapshot_lacking_a_table(tmp_path):
    empty = TestClient(make_app(tmp_path / "snapshots", tmp_path))
    for url in ("/kpi/users", "/kpi/energy/total", "/kpi/utilization/stations/S1", "/kpi/reliability/cities"):
        response = empty.get(url)
        assert response.status_code == 503
        assert "make demo" in response.json()["detail"]

    # a snapshot of a warehouse without the hourly loads: the other KPIs answer, that one says what is missing
    snapshot.publish(build_warehouse(tmp_path / "warehouse.duckdb", with_hourly_loads=False), tmp_path / "snaps")
    partial = TestClient(make_app(tmp_path / "snaps", tmp_path))
    assert partial.get("/kpi/energy/total?user_id=U1").json()["energy_kwh"] == 36.0
    response = partial.get("/kpi/users/U1/hourly-loads")
    assert response.status_code == 503 and "warehouse job" in response.json()["detail"]
