"""The service on the live path: online availability features equal to the feature set's (same function, same
polls), a 409 for a time past the newest data, the live data's age in /health, `data_as_of` on the answers, and the
live "now" endpoints.

Polls are landed straight into a landing store (`landing.land`) from status changes made by the live path's own
tracker (`live.changes.StatusTracker`): no broker is needed. The marts are the synthetic ones of the station model
tests, published as a snapshot. The API tests reuse the trained champions of `service_root` (fixtures/roots.py).
"""

from __future__ import annotations

import contextlib
import itertools
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from ev_assets.api.app import create_app
from ev_assets.lib import snapshot
from ev_assets.lib.live import bus, changes, landing, messages, store
from ev_assets.lib.live.clock import LiveClock
from ev_assets.lib.ml import serving, stations
from ev_assets_tests.fixtures.synthetic import POINTS, synthetic_marts

START = pd.Timestamp("2021-12-31 12:00", tz="UTC")
CITY = {"S1": "bonn", "S2": "bonn", "S3": "koeln"}
FEATURES = [*stations.AVAILABILITY_FEATURES, "poi_cafe", "poi_total"]


def city_polls(days: float, start: pd.Timestamp = START, seed: int = 11, skip: frozenset = frozenset()) -> pd.DataFrame:
    """Status rows of raw.status_chargingpoints' shape: every point of a city polled every 10 minutes at one poll
    time per city, a sticky random status; `skip` holds (city, slot) polls that failed (a gap)."""
    rng = np.random.default_rng(seed)
    status = {f"{s}*{p}": "AVAILABLE" for s, n in POINTS.items() for p in range(1, n + 1)}
    rows = []
    for slot in pd.date_range(start, periods=int(days * 144), freq="10min"):
        for city in ("bonn", "koeln"):
            poll_time = slot + pd.Timedelta(seconds=int(rng.integers(1, 9)))
            for point in status:
                station = point.split("*")[0]
                if CITY[station] != city:
                    continue
                if rng.random() < 0.2:
                    status[point] = str(rng.choice(["AVAILABLE", "AVAILABLE", "CHARGING", "BLOCKED", "OUTOFORDER"]))
                if (city, slot) not in skip:
                    rows.append({"poll_slot": slot, "poll_time": poll_time, "city_slug": city, "station_id": station,
                                 "charging_point_id": point, "status": status[point]})
    return pd.DataFrame(rows)


def marts_of(polls: pd.DataFrame):
    """The synthetic marts over these polls, dim_station with its validity (as dbt builds it)."""
    fct = polls.rename(columns={"poll_time": "polled_at"}).assign(station_key=lambda f: f["station_id"] + "-v1")
    con = synthetic_marts(fct)
    con.execute(f"ALTER TABLE marts.dim_station ADD COLUMN valid_from TIMESTAMPTZ DEFAULT TIMESTAMPTZ '{START}'")
    con.execute("ALTER TABLE marts.dim_station ADD COLUMN valid_to TIMESTAMPTZ DEFAULT NULL")
    return con


_seq = itertools.count(1)


def land_polls(live_dir, polls: pd.DataFrame, events: list[dict] = (), clock: LiveClock | None = None) -> None:
    """Each poll through the live path's tracker (its changes and poll-complete markers), landed in order."""
    tracker = changes.StatusTracker()
    writer = landing.connect_writer(live_dir)
    try:
        if clock is not None:
            landing.save_clock(writer, clock)
        empty_connectors = pd.DataFrame(columns=["poll_slot", "poll_time", "city_slug", "station_id",
                                                 "charging_point_id", "connector_id", "status"])
        for slot, rows in polls.groupby("poll_slot", sort=True):
            log = rows.groupby("city_slug", as_index=False).agg(poll_slot=("poll_slot", "first"),
                                                               poll_time=("poll_time", "first")).assign(ok=True)
            flat = SimpleNamespace(status_chargingpoints=rows.reset_index(drop=True),
                                   status_connectors=empty_connectors, poll_log=log)
            batch = [bus.Message(bus.STATUS_STREAM, next(_seq), subject, data, msg_id)
                     for subject, data, msg_id in tracker.changes(flat)]
            landing.land(writer, batch)
        if events:
            landing.land(writer, [bus.Message(bus.EVENTS_STREAM, next(_seq), *messages.charging_event(e))
                                for e in events])
    finally:
        writer.close()


def assert_same_rows(online: pd.DataFrame, batch: pd.DataFrame, columns: list[str]) -> None:
    key = ["station_id", "polled_at"]
    joined = batch.merge(online, on=key, how="inner", suffixes=("_batch", "_online"))
    assert len(joined) == len(batch) > 0
    for column in columns:
        a, b = joined[f"{column}_batch"].astype(float), joined[f"{column}_online"].astype(float)
        both_nan = a.isna() & b.isna()
        assert (both_nan | ((a - b).abs() <= 1e-9)).all(), (column, joined.loc[~both_nan & ((a - b).abs() > 1e-9),
                                                                               key + [f"{column}_batch",
                                                                                      f"{column}_online"]])


# --- parity: the online row is the feature-set row -----------------------------------------------------------------
@pytest.fixture(scope="module")
def two_days(tmp_path_factory):
    polls = city_polls(2, skip=frozenset({("bonn", START + pd.Timedelta(hours=20))}))  # one failed poll: a gap
    con = marts_of(polls)
    batch = stations.station_time_features(con)
    yield SimpleNamespace(polls=polls, con=con, batch=batch, dir=tmp_path_factory.mktemp("live_parity"))
    con.close()


def test_online_features_equal_the_feature_set_rows_poll_for_poll(two_days):
    live_dir = two_days.dir / "all"
    land_polls(live_dir, two_days.polls)
    with contextlib.closing(store.connect_reader(live_dir)) as live:
        history = store.status_history(live, "2000-01-01T00:00:00.000000Z")
    online = stations.live_station_time_features(two_days.con, history, stations.feature_codes(two_days.batch))
    columns = [c for c in two_days.batch.columns if c in stations.AVAILABILITY_FEATURES or c.startswith("poi_")]
    assert set(FEATURES) <= set(columns)
    assert_same_rows(online, two_days.batch, columns)


def test_online_history_reaches_back_into_the_marts_before_the_live_data(two_days):
    """Only the second day is landed live: lags, 24 h windows and time in state still equal the batch rows."""
    live_dir = two_days.dir / "day2"
    day2 = two_days.polls[two_days.polls["poll_slot"] >= START + pd.Timedelta(days=1)]
    land_polls(live_dir, day2)
    with contextlib.closing(store.connect_reader(live_dir)) as live:
        history = store.status_history(live, "2000-01-01T00:00:00.000000Z")
    online = stations.live_station_time_features(two_days.con, history, stations.feature_codes(two_days.batch))
    columns = [c for c in two_days.batch.columns if c in stations.AVAILABILITY_FEATURES or c.startswith("poi_")]
    assert_same_rows(online, two_days.batch, columns)  # every batch row, day 1 from the marts, day 2 from live


def test_the_served_online_row_is_the_rounded_feature_set_row(two_days, tmp_path):
    live_dir = two_days.dir / "all"  # landed by the first test; land again if run alone (idempotent)
    land_polls(live_dir, two_days.polls)
    warehouse = tmp_path / "warehouse.duckdb"
    two_days.con.execute(f"ATTACH '{warehouse}' AS w")
    two_days.con.execute("CREATE SCHEMA w.marts")
    for table in ("fct_charging_point_status", "dim_station", "dim_connector", "dim_poi_station"):
        two_days.con.execute(f"CREATE TABLE w.marts.{table} AS SELECT * FROM marts.{table}")
    two_days.con.execute("DETACH w")
    reader = snapshot.Reader(tmp_path / "snapshots")
    snapshot.publish(warehouse, reader.snapshot_dir)
    index = serving.StationTimeIndex.of({"features": two_days.batch})
    online = serving.OnlineFeatures(live_dir, reader)
    with contextlib.closing(store.connect_reader(live_dir)) as live:
        for station in POINTS:
            times, values = index.stations[station]
            for i in (0, 7, 100, 200, len(times) - 1):
                at = pd.Timestamp(int(times[i]), tz="UTC") + pd.Timedelta(minutes=3)
                row = online.row(live, station, at, index, ())
                assert row.features_at == pd.Timestamp(int(times[i]), tz="UTC")
                served = dict(zip(index.columns, values[i]))
                got = dict(zip(row.columns, row.values))
                assert set(served) <= set(got)
                for column, value in served.items():
                    assert (np.isnan(value) and np.isnan(got[column])) or abs(value - got[column]) <= 1e-9, column
    reader.close()


# --- the service ---------------------------------------------------------------------------------------------------
LIVE_DAY = START + pd.Timedelta(days=2)  # the day after the feature set's two days


@pytest.fixture(scope="module")
def root(service_root):
    return service_root


@pytest.fixture(scope="module")
def service(root):
    """The `root` data root (feature sets of synthetic_status' two days, trained champions) with no live store."""
    with TestClient(create_app(root.settings), base_url="http://127.0.0.1") as client:
        yield client


def test_a_time_past_the_newest_data_is_a_409_with_the_age_and_the_newest_time(root, service):
    newest = root.frames["station_time"].query("station_id == 'S1'")["polled_at"].max()
    r = service.post("/predict/availability", json={"station_id": "S1", "horizon_minutes": 10,
                                                     "at": "2099-01-01T00:00:00Z"})
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["stale"] is True and pd.Timestamp(body["data_as_of"]) == newest
    assert pd.Timestamp(body["newest_data_at"]) == newest
    assert body["age_s"] == pytest.approx((pd.Timestamp("2099-01-01", tz="UTC") - newest).total_seconds())
    assert body["stale_after_s"] == root.settings.live_stale_after_s
    assert "2099-01-01" in body["detail"] and newest.strftime("%Y-%m-%d") in body["detail"]
    # within the limit of the newest poll it is answered, from that poll
    at = newest + pd.Timedelta(minutes=15)
    r = service.post("/predict/availability", json={"station_id": "S1", "horizon_minutes": 10, "at": at.isoformat()})
    assert r.status_code == 200 and pd.Timestamp(r.json()["features_at"]) == newest
    assert r.json()["stale"] is False and r.json()["features_from"] == "feature_set"
    assert r.headers["X-Data-As-Of"] == r.json()["data_as_of"]
    assert "409" in service.get("/openapi.json").json()["paths"]["/predict/availability"]["post"]["responses"]


def test_without_live_data_health_says_so_and_now_is_503(root, service):
    live = service.get("/health").json()["live"]
    assert live["present"] is False and "no live data" in live["message"] and live["age_s"] is None
    for url in ("/kpi/status/now", "/kpi/status/now/S1"):
        r = service.get(url)
        assert r.status_code == 503 and "no live data" in r.json()["detail"]


def test_latest_forecast_from_the_feature_set_says_its_age(root, service):
    body = service.post("/predict/availability", json={"station_id": "S2", "horizon_minutes": 60}).json()
    assert body["features_from"] == "feature_set" and body["stale"] is True and body["age_s"] > 86400 * 365


def test_other_predictions_carry_data_as_of(root, service):
    r = service.post("/predict/utilization", json={"station_id": "S1", "date": "2022-01-20"})
    assert r.status_code == 200 and r.json()["data_as_of"].startswith(r.json()["attributes_from"])
    assert r.headers["X-Data-As-Of"] == r.json()["data_as_of"]


@pytest.fixture(scope="module")
def live_service(root, tmp_path_factory):
    """The same data root with a marts snapshot and a live store holding the polls of the day after the feature set,
    a live clock a minute past the last poll, and one open charging session."""
    polls = city_polls(1, start=LIVE_DAY, seed=5)
    con = marts_of(polls)
    warehouse = tmp_path_factory.mktemp("live_wh") / "warehouse.duckdb"
    con.execute(f"ATTACH '{warehouse}' AS w")
    con.execute("CREATE SCHEMA w.marts")
    for table in ("fct_charging_point_status", "dim_station", "dim_connector", "dim_poi_station"):
        keep = "FALSE" if table.startswith("fct") else "TRUE"  # the live store alone holds the polls
        con.execute(f"CREATE TABLE w.marts.{table} AS SELECT * FROM marts.{table} WHERE {keep}")
    con.execute("DETACH w")
    con.close()
    settings = root.settings
    snapshot.publish(warehouse, settings.snapshot_dir)
    last_poll = polls["poll_time"].max()
    clock = LiveClock.starting_at((last_poll + pd.Timedelta(minutes=1)).to_pydatetime(), 1.0)
    t0 = (last_poll - pd.Timedelta(minutes=30)).isoformat().replace("+00:00", "Z")
    t1 = (last_poll - pd.Timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    events = [
        {"eventId": "e1", "transactionId": "tx1", "stationId": "S1", "connectorId": "S1*1-a", "eventType": "Started",
         "timestamp": t0, "meterValue": {"energyWh": 0, "powerW": 0}},
        {"eventId": "e2", "transactionId": "tx1", "stationId": "S1", "connectorId": "S1*1-a", "eventType": "Updated",
         "timestamp": t1, "meterValue": {"energyWh": 4500, "powerW": 11000}},
    ]
    land_polls(settings.live_dir, polls, events, clock)
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        yield SimpleNamespace(client=client, polls=polls, last_poll=last_poll)
    for path in settings.snapshot_dir.iterdir():
        path.unlink()
    for path in settings.live_dir.iterdir():
        path.unlink()


def test_availability_uses_the_latest_live_poll(root, live_service):
    client, polls = live_service.client, live_service.polls
    r = client.post("/predict/availability", json={"station_id": "S3", "horizon_minutes": 10})
    assert r.status_code == 200, r.text
    body = r.json()
    newest = polls[polls["city_slug"] == "koeln"]
    assert body["features_from"] == "live"
    assert pd.Timestamp(body["features_at"]) == newest["poll_slot"].max()
    assert pd.Timestamp(body["data_as_of"]) == newest["poll_time"].max().floor("ms")
    assert r.headers["X-Data-As-Of"] == body["data_as_of"]
    assert body["stale"] is False and 0 <= body["age_s"] < 600
    # the inputs logged are the online row of that poll
    frame = polls[polls["station_id"] == "S3"]
    last = frame[frame["poll_slot"] == frame["poll_slot"].max()]
    from ev_assets.lib import predlog
    log = predlog.read(root.settings.prediction_log_dir)
    record = log[log["request_id"] == body["request_id"]].iloc[0]
    assert record["features_from"] == "live"
    assert record["inputs"]["n_charging_points"] == len(last)
    assert record["inputs"]["n_available"] == (last["status"] == "AVAILABLE").sum()
    # a time inside the live data before the feature set's end still answers; one far past it is a 409
    r = client.post("/predict/availability", json={"station_id": "S3", "horizon_minutes": 10,
                                                   "at": (live_service.last_poll + pd.Timedelta(hours=2)).isoformat()})
    assert r.status_code == 409 and pd.Timestamp(r.json()["newest_data_at"]) == newest["poll_time"].max().floor("ms")


def test_the_dashboard_forecast_uses_the_same_live_row_as_the_service(root, live_service):
    from ev_assets.dashboard import ml

    for horizon in (10, 60):
        r = live_service.client.post("/predict/availability", json={"station_id": "S3", "horizon_minutes": horizon})
        shown = ml.forecast(root.settings, "S3")[horizon]
        assert shown["features_from"] == "live"
        assert shown["features_at"] == pd.Timestamp(r.json()["features_at"])
        assert shown["probability"] == pytest.approx(r.json()["probability_available"], abs=1e-12)


def test_health_reports_the_age_of_the_live_data(root, live_service):
    live = live_service.client.get("/health").json()["live"]
    assert live["present"] is True and live["message"] is None
    assert pd.Timestamp(live["newest_poll_time"]) == live_service.last_poll
    assert 0 < live["age_s"] < 600 and live["stale"] is False
    assert live["stale_after_s"] == root.settings.live_stale_after_s
    assert live["last_seq"][bus.STATUS_STREAM] > 0 and live["last_seq"][bus.EVENTS_STREAM] > 0


def test_network_now_counts_statuses_per_city(live_service):
    client, polls = live_service.client, live_service.polls
    r = client.get("/kpi/status/now")
    assert r.status_code == 200, r.text
    body = r.json()
    last = polls.sort_values("poll_slot").groupby("charging_point_id").tail(1)
    assert body["network"]["n_charging_points"] == len(last) == sum(POINTS.values())
    assert body["network"]["by_status"] == last["status"].value_counts().sort_index().to_dict()
    assert body["network"]["share_available"] == pytest.approx((last["status"] == "AVAILABLE").mean())
    assert [c["city_slug"] for c in body["cities"]] == ["bonn", "koeln"]
    koeln = body["cities"][1]
    assert koeln["n_charging_points"] == POINTS["S3"] and koeln["n_stations"] == 1
    assert pd.Timestamp(koeln["poll_time"]) == polls.query("city_slug == 'koeln'")["poll_time"].max()
    assert pd.Timestamp(body["data_as_of"]) == live_service.last_poll.floor("ms") and body["stale"] is False
    assert r.headers["X-Data-As-Of"] == body["data_as_of"]


def test_station_now_gives_each_point_free_n_of_m_and_open_sessions(live_service):
    client, polls = live_service.client, live_service.polls
    body = client.get("/kpi/status/now/S1").json()
    mine = polls[polls["station_id"] == "S1"].sort_values("poll_slot").groupby("charging_point_id").tail(1)
    assert body["of"] == POINTS["S1"] and body["free_now"] == (mine["status"] == "AVAILABLE").sum()
    assert {p["charging_point_id"]: p["status"] for p in body["charging_points"]} == dict(
        zip(mine["charging_point_id"], mine["status"]))
    (session,) = body["open_sessions"]
    assert session["transaction_id"] == "tx1" and session["energy_kwh"] == pytest.approx(4.5)
    assert session["power_kw"] == pytest.approx(11.0) and session["events"] == 2
    assert body["city_slug"] == "bonn" and body["stale"] is False
    assert client.get("/kpi/status/now/NOPE").status_code == 404


def test_every_kpi_and_predict_route_documents_data_as_of(live_service):
    paths = live_service.client.get("/openapi.json").json()["paths"]
    for path, operations in paths.items():
        if path.startswith(("/kpi", "/predict")):
            for operation in operations.values():
                assert "X-Data-As-Of" in operation.get("description", ""), path
