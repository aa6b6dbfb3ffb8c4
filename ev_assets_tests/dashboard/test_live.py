"""Network now and Station on the live path's state (the landing store), through Streamlit's AppTest: the live
status joined to the snapshot's dimensions, the open sessions with their energy so far, today's energy and revenue,
"as of HH:MM (N s ago)" on the live (simulated) clock, the fallback to the marts snapshot, and the live state alone
(a fresh clone running `make live` before any `make demo`).

The snapshot is the hand-made one of `fixtures.dashboard` (S1..S4 in koeln and bonn); the live store is filled as the
consumer fills it (`fixtures.live_feed.LiveFeed`), on 12 January 2022, the day after the snapshot's last poll.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from ev_assets.lib import snapshot
from ev_assets.lib.dashboard.formatting import as_of, fmt_age
from ev_assets.lib.dashboard.network import AVAILABLE, CHARGING, OUT_OF_ORDER, UNKNOWN, UNKNOWN_OPERATOR, live_status
from ev_assets.lib.live.clock import LiveClock
from ev_assets.lib.settings import Settings, SimulationSettings
from ev_assets_tests.fixtures.dashboard import build_warehouse, frame, metrics, open_page, texts
from ev_assets_tests.fixtures.live_feed import AS_OF, T0, LiveFeed, event, first_state, poll

UTC = timezone.utc

@pytest.fixture
def live_root(tmp_path) -> tuple[Path, LiveFeed]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    snapshot.publish(build_warehouse(tmp_path / "warehouse.duckdb"), Settings(data_dir=data_dir).snapshot_dir)
    feed = first_state(Settings(data_dir=data_dir).live_dir)
    yield data_dir, feed
    feed.close()


def test_network_now_shows_the_live_state_and_follows_it(monkeypatch, live_root):
    data_dir, feed = live_root
    at_ = open_page(monkeypatch, data_dir)
    # S4*1 is in the dimension but never reported live: unknown (not its batch status)
    assert metrics(at_) == {"charging points": "5", "available": "40.0 %", "charging": "20.0 %",
                            "blocked / reserved": "0.0 %", "out of order": "20.0 %", "unknown": "20.0 %"}
    said = texts(at_)
    assert "2 available · 1 charging · 0 blocked / reserved · 1 out of order · 1 unknown" in said
    found = AS_OF.search(said)
    assert found and found.group(1) == "09:00", said
    assert "Live: the live path's landing store (4 charging points reported, 2 cities polled)" in said
    assert "at the latest live poll of each city (2022-01-12 09:00 UTC)" in said
    assert len(at_.get("plotly_chart")) == 4  # the map, by city, by operator; the trend (from the snapshot)

    at_.sidebar.selectbox(key="city").set_value("koeln").run()
    assert metrics(at_)["charging points"] == "3" and metrics(at_)["available"] == "66.7 %"
    poll(feed, T0 + timedelta(minutes=10), S1_2="CHARGING", S2_1="CHARGING", S3_1="OUTOFORDER")
    at_.run()  # (in the browser, the fragment's own refresh: test_dashboard_live_browser)
    assert at_.sidebar.selectbox(key="city").value == "koeln"
    assert metrics(at_)["charging points"] == "3" and metrics(at_)["available"] == "33.3 %"
    assert metrics(at_)["charging"] == "66.7 %"
    assert "1 available · 2 charging" in texts(at_)
    assert AS_OF.search(texts(at_)).group(1) == "09:10"


def test_station_shows_open_sessions_and_todays_energy(monkeypatch, live_root):
    data_dir, feed = live_root
    at_ = open_page(monkeypatch, data_dir, "station", {"station": "S1"})
    shown = metrics(at_)
    assert shown["free now"] == "1 of 2" and shown["charging now"] == "1 session"
    assert shown["energy today"] == "13.5 kWh" and shown["revenue today"] == "4.29 EUR"  # 11 + 2.5 kWh
    sessions = frame(at_, "meter_kwh", "transaction_id")
    assert list(sessions["transaction_id"]) == ["t1"] and list(sessions["meter_kwh"]) == [2.5]
    assert list(sessions["started"]) == ["08:40 UTC"]
    equipment = frame(at_, "charging_point_id", "standard")
    assert dict(zip(equipment["charging_point_id"], equipment["status now"])) == {"S1*1": "AVAILABLE",
                                                                                  "S1*2": "CHARGING"}
    assert AS_OF.search(texts(at_)) and "Usually busiest" in texts(at_)  # the batch parts stay

    feed.events([event("Updated", "t1", "S1", 2, T0 + timedelta(minutes=5), 7500, 21000)])
    at_.run()
    sessions = frame(at_, "meter_kwh", "transaction_id")
    assert list(sessions["meter_kwh"]) == [7.5] and list(sessions["events"]) == [3]
    assert metrics(at_)["energy today"] == "18.5 kWh"
    assert AS_OF.search(texts(at_)).group(1) == "09:05"  # the newest event is newer than the poll


def test_without_live_data_the_pages_say_they_show_the_snapshot(monkeypatch, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    snapshot.publish(build_warehouse(tmp_path / "warehouse.duckdb"), Settings(data_dir=data_dir).snapshot_dir)
    for page, query in (("network", None), ("station", {"station": "S1"})):
        at_ = open_page(monkeypatch, data_dir, page, query)
        said = texts(at_)
        assert re.search(r"as of 23:50 UTC on 11 Jan 2022 \([\d,]+ days ago\)\*\* · marts snapshot", said), said
        assert "Batch: the marts snapshot" in said and "`make live` starts the live path" in said
        assert "simulated clock" not in said
    assert metrics(at_)["free now"] == "1 of 2" and metrics(at_)["charging now"] == "–"
    assert not (data_dir / "live").exists()  # reading creates nothing


def test_the_live_state_alone_without_a_snapshot(monkeypatch, tmp_path):
    """`make live` on a fresh clone: the simulator's polls and events, no marts snapshot yet."""
    from ev_assets.lib.sources.sessions.simulate import simulated_events
    from ev_assets.lib.simulator.chargecloud import chargecloud_poll

    data_dir = tmp_path / "data"
    sim = SimulationSettings(days=1)
    events = simulated_events(sim)
    start = pd.Timestamp(events[0]["timestamp"]).to_pydatetime()
    slot = start.replace(minute=start.minute // 10 * 10, second=0)
    feed = LiveFeed(Settings(data_dir=data_dir).live_dir, LiveClock.starting_at(slot + timedelta(hours=2), 60))
    for n in range(3):
        feed.envelope(chargecloud_poll(sim, slot + timedelta(minutes=10 * n)), slot + timedelta(minutes=10 * n))
    until = (slot + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    feed.events([e for e in events if e["timestamp"] <= until])
    feed.close()
    from ev_assets.lib.live import store

    con = store.connect_reader(Settings(data_dir=data_dir).live_dir)
    reported, sessions = store.status_now(con), store.open_sessions(con)
    con.close()
    assert len(reported) > 50 and len(sessions) > 0

    at_ = open_page(monkeypatch, data_dir)
    assert metrics(at_)["charging points"] == f"{len(reported):,}"
    said = texts(at_)
    assert AS_OF.search(said) and "Live:" in said
    assert "come with none until a marts snapshot names them" in said  # no coordinates: no map
    station = str(sessions["station_id"].iloc[0])
    at_ = open_page(monkeypatch, data_dir, "station", {"station": station})
    said = texts(at_)
    assert f"Station {station}" in said and "Not in a marts snapshot yet" in said
    shown = frame(at_, "meter_kwh", "transaction_id")
    mine = sessions[sessions["station_id"] == station]
    assert sorted(shown["transaction_id"]) == sorted(mine["transaction_id"])
    assert metrics(at_)["charging now"].startswith(str(len(mine)))
    assert not at_.exception


def test_live_status_joins_the_dimension():
    points = pd.DataFrame({"charging_point_id": ["A*1", "A*2", "B*1"], "station_id": ["A", "A", "B"],
                           "station_name": ["a", "a", "b"], "address": None, "city_slug": ["x", "x", "y"],
                           "operator_name": ["Op", "Op", "Other"], "operator": ["op", "op", "other"],
                           "latitude": 50.0, "longitude": 7.0})
    now = pd.DataFrame({"city_slug": ["x", "x", "z"], "station_id": ["A", "A", "C"],
                        "charging_point_id": ["A*1", "A*2", "C*1"], "connector_id": "",
                        "status": ["CHARGING", "AVAILABLE", "OUTOFORDER"],
                        "since_slot": "2022-01-12T09:00:00.000000Z",
                        "since_time": "2022-01-12T09:00:01.000000Z"})
    polls = pd.DataFrame({"city_slug": ["x", "z"], "poll_time": ["2022-01-12T09:10:01.000000Z",
                                                                 "2022-01-12T09:00:01.000000Z"]})
    out = live_status(points, now, polls).set_index("charging_point_id")
    assert list(out.index) == ["A*1", "A*2", "B*1", "C*1"]
    assert list(out["category"]) == [CHARGING, AVAILABLE, UNKNOWN, OUT_OF_ORDER]
    assert out.loc["C*1", "operator_name"] == UNKNOWN_OPERATOR and out.loc["C*1", "city_slug"] == "z"
    assert out.loc["A*1", "city_polled_at"] == pd.Timestamp("2022-01-12 09:10:01", tz="UTC")
    assert pd.isna(out.loc["B*1", "polled_at"])
    assert list(live_status(points, now, polls, operator="op")["charging_point_id"]) == ["A*1", "A*2"]
    assert list(live_status(None, now, polls, city="z")["charging_point_id"]) == ["C*1"]


def test_as_of_reads_as_time_and_age():
    now = datetime(2022, 1, 12, 9, 0, 40, tzinfo=UTC)
    assert as_of("2022-01-12T09:00:01.000000Z", now) == "as of 09:00 UTC (39 s ago)"
    assert as_of(datetime(2022, 1, 12, 8, 50, tzinfo=UTC), now, True, 60.0) == \
        "as of 08:50 UTC (11 min ago) · simulated clock, 60x"
    assert as_of(datetime(2022, 1, 11, 23, 50, tzinfo=UTC), now) == "as of 23:50 UTC on 11 Jan 2022 (9 h ago)"
    assert as_of(None, now) == "no data yet"
    assert fmt_age(-3) == "0 s" and fmt_age(3 * 86400) == "3 days"
