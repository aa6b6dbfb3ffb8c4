"""Session sources: real Norway and ACN files parse completely, bad rows are quarantined, simulation is clean.

Counts and sums are computed independently of the parser (csv/json modules, plain string handling), so a
parser that silently dropped or mangled rows would fail here.
"""

from __future__ import annotations

import csv
import gzip
import json
import time
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from ev_assets.lib import tables
from ev_assets.lib.replayfiles import FileReport
from ev_assets.lib.sources.sessions import SOURCES, parse, parse_or_quarantine, pull_files
from ev_assets.lib.sources.sessions.files import matches
from ev_assets.lib.settings import Settings, SettingsError, SimulationSettings

REPORTS = "norway/Dataset 1_EV charging reports.csv"
HOURLY = "norway/Dataset 2_Hourly EV loads - Per user__HEAD_SAMPLE.csv"
ACN = "acn/acndata_sessions_jpl_2021-05_2021-09.json"

REPORT_HEADER = ("session_ID;Garage_ID;User_ID;User_type;Shared_ID;Start_plugin;Start_plugin_hour;End_plugout;"
                 "End_plugout_hour;El_kWh;Duration_hours;month_plugin;weekdays_plugin")


def data_lines(path: Path) -> list[str]:
    """Non-blank lines after the header, read without the parser."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines[1:]


def assert_contract(source: str, parsed) -> None:
    assert list(parsed.table.columns) == tables.columns(source)
    assert list(parsed.quarantine.columns) == tables.columns("quarantine")


def simulated(source: str, **sim) -> list[tuple[str, bytes]]:
    return pull_files(Settings(simulation=SimulationSettings(**sim)), source)


# --- real Norway data ----------------------------------------------------------------------------------------------


def test_real_session_reports_parse_completely(shared_data: Path) -> None:
    path = shared_data / REPORTS
    lines = data_lines(path)
    with path.open(newline="", encoding="utf-8") as fh:
        records = list(csv.DictReader(fh, delimiter=";"))
    expected_kwh = sum(float(r["El_kWh"].replace(",", ".")) for r in records)
    missing_plugout = sum(1 for r in records if r["End_plugout"] == "NA")

    parsed = parse("session_reports", REPORTS, path.read_bytes(), raw_file="raw/x.csv")

    assert_contract("session_reports", parsed)
    assert len(parsed.table) + len(parsed.quarantine) == len(lines) == len(records)
    assert parsed.quarantine.empty  # the published file is clean
    assert parsed.table["energy_kwh"].sum() == pytest.approx(expected_kwh, abs=1e-6)
    assert parsed.table["plugout_at"].isna().sum() == missing_plugout > 0
    assert str(parsed.table["plugin_at"].dtype) == "datetime64[ns]"  # naive local wall time
    assert set(parsed.table["timezone"]) == {"Europe/Oslo"}
    assert set(parsed.table["raw_file"]) == {"raw/x.csv"}
    first = parsed.table.iloc[0]
    assert first[["session_id", "garage_id", "user_id"]].tolist() == ["1", "AdO3", "AdO3-4"]
    assert first["shared_id"] is None
    assert first["plugin_at"] == pd.Timestamp("2018-12-21 10:20")
    assert first["duration_hours"] == pytest.approx(0.05)
    shared = parsed.table[parsed.table["user_type"] == "Shared"]
    assert shared["shared_id"].notna().all()
    assert parsed.table["shared_id"].isna().sum() == len(parsed.table) - len(shared)


def test_real_session_reports_parse_fast(shared_data: Path) -> None:
    data = (shared_data / REPORTS).read_bytes()
    parse("session_reports", REPORTS, data)  # warm-up (imports, pandas caches)
    started = time.perf_counter()
    parse("session_reports", REPORTS, data)
    assert time.perf_counter() - started < 1.0


def test_real_hourly_loads_sample_keeps_idle_hours(shared_data: Path) -> None:
    path = shared_data / HOURLY
    lines = data_lines(path)
    idle = sum(1 for line in lines if line.split(";")[2:] == ["NA"] * 6)

    parsed = parse("hourly_loads", HOURLY, path.read_bytes())

    assert_contract("hourly_loads", parsed)
    assert parsed.quarantine.empty
    assert len(parsed.table) == len(lines)
    idle_rows = parsed.table[parsed.table["session_id"].isna()]
    assert len(idle_rows) == idle > 0
    assert idle_rows["user_id"].isna().all() and idle_rows["date_from"].notna().all()
    first = parsed.table.iloc[0]
    assert first[["user_id", "session_id", "synthetic_3_6kw", "flex_7_2kw"]].tolist() == ["AdO3-4", "1", 0.3, 0.06]
    assert pd.isna(first["flex_3_6kw"])
    assert (parsed.table["date_to"] - parsed.table["date_from"] == pd.Timedelta(hours=1)).all()


# --- real ACN data -------------------------------------------------------------------------------------------------


def test_real_acn_sessions_parse_completely(shared_data: Path) -> None:
    data = (shared_data / ACN).read_bytes()
    items = json.loads(data)

    parsed = parse("acn_sessions", ACN, data)

    assert_contract("acn_sessions", parsed)
    assert parsed.quarantine.empty and len(parsed.table) == len(items)
    table = parsed.table.set_index("session_id")
    assert table["user_id"].isna().sum() == sum(1 for i in items if i["userID"] is None) > 0
    assert table["done_charging_time"].isna().sum() == sum(1 for i in items if i["doneChargingTime"] is None)
    for col in ("connection_time", "disconnect_time", "done_charging_time"):
        assert str(table[col].dtype) == "datetime64[ns, UTC]"
    for item in items[:3] + items[-3:]:
        row = table.loc[item["sessionID"]]
        assert row["connection_time"] == pd.Timestamp(parsedate_to_datetime(item["connectionTime"]))
        assert row["disconnect_time"] == pd.Timestamp(parsedate_to_datetime(item["disconnectTime"]))
        assert row["kwh_delivered"] == item["kWhDelivered"] and row["timezone"] == item["timezone"]
    several = next(i for i in items if len(i["userInputs"] or []) > 1)
    assert table.loc[several["sessionID"], "kwh_requested"] == several["userInputs"][-1]["kWhRequested"]
    assert table.loc[several["sessionID"], "minutes_available"] == several["userInputs"][-1]["minutesAvailable"]
    # what the driver said at plug-in: the first input, before any later change
    first = several["userInputs"][0]
    assert table.loc[several["sessionID"], "first_kwh_requested"] == first["kWhRequested"]
    assert table.loc[several["sessionID"], "first_minutes_available"] == first["minutesAvailable"]
    assert table.loc[several["sessionID"], "first_input_at"] == pd.Timestamp(parsedate_to_datetime(first["modifiedAt"]))
    changed = [i for i in items if len(i["userInputs"] or []) > 1
               and i["userInputs"][0]["kWhRequested"] != i["userInputs"][-1]["kWhRequested"]]
    assert changed and all(table.loc[i["sessionID"], "first_kwh_requested"] != table.loc[i["sessionID"], "kwh_requested"]
                           for i in changed)
    without = next(i for i in items if i["userInputs"] is None)
    assert pd.isna(table.loc[without["sessionID"], "kwh_requested"])
    assert pd.isna(table.loc[without["sessionID"], "first_kwh_requested"])
    assert pd.isna(table.loc[without["sessionID"], "first_input_at"])


def test_acn_api_wrapper_bad_items_and_malformed_file() -> None:
    name, data = simulated("acn_sessions")[0]
    items = json.loads(data)
    broken = dict(items[1], sessionID=None)
    backwards = dict(items[2], disconnectTime="Mon, 03 Jan 2022 00:00:00 GMT")
    wrapped = json.dumps({"_items": [items[0], broken, backwards, "junk", items[3]], "_meta": {}}).encode()

    parsed = parse("acn_sessions", "acn_page.json", wrapped)

    assert list(parsed.table["session_id"]) == [items[0]["sessionID"], items[3]["sessionID"]]
    quarantine = parsed.quarantine
    assert list(quarantine["record_id"]) == ["item 2", backwards["sessionID"], "item 4"]
    assert list(quarantine["reason"]) == ["missing sessionID", "disconnectTime before connectionTime",
                                          "session is not a JSON object but str"]
    assert set(quarantine["source"]) == {"acn_sessions"} and set(quarantine["level"]) == {"row"}
    assert json.loads(quarantine["record"].iloc[1])["sessionID"] == backwards["sessionID"]

    with pytest.raises(ValueError, match="acn_cut.json"):
        parse("acn_sessions", "acn_cut.json", data[: len(data) // 2])
    with pytest.raises(ValueError, match="acn_scalar.json"):
        parse("acn_sessions", "acn_scalar.json", b'{"sessions": 3}')


# --- broken Norway CSV rows ----------------------------------------------------------------------------------------


def test_broken_csv_rows_are_quarantined_with_reasons() -> None:
    rows = [
        REPORT_HEADER,
        "1;G1;G1-1;Private;NA;21.12.2018 10:20;10;21.12.2018 10:23;10;0,3;0,05;Dec;Friday",  # good
        "2;G1;G1-1;Private;NA;21.12.2018 11:20;11;21.12.2018 12:23;12;1,5;1,05;Dec",  # a field short
        "3;G1;G1-1;Private;NA;32.12.2018 10:20;10;21.12.2018 10:23;10;0,3;0,05;Dec;Friday",  # no such day
        "4;G1;G1-1;Private;NA;21.12.2018 10:20;10;21.12.2018 10:23;10;zwei;0,05;Dec;Friday",  # not a number
        "NA;G1;G1-1;Private;NA;21.12.2018 10:20;10;21.12.2018 10:23;10;0,3;0,05;Dec;Friday",  # no session id
        "6;G1;G1-1;Private;NA;21.12.2018 10:20;10;21.12.2018 09:23;9;0,3;0,05;Dec;Friday",  # out before in
        "",
        "7;G1;Share-1;Shared;Shared-1;22.12.2018 18:00;18;NA;NA;12;NA;Dec;Saturday",  # good, still plugged in
    ]
    data = "\r\n".join(rows).encode()

    parsed = parse("session_reports", "broken reports.csv", data)

    assert list(parsed.table["session_id"]) == ["1", "7"]
    quarantine = parsed.quarantine.set_index("record_id")
    assert list(quarantine.index) == ["line 3", "line 4", "line 5", "line 6", "line 7"]
    reasons = quarantine["reason"]
    assert reasons["line 3"] == "expected 13 fields, found 12"
    assert reasons["line 4"].startswith("unparsable Start_plugin '32.12.2018 10:20'")
    assert reasons["line 5"].startswith("unparsable El_kWh 'zwei'")
    assert reasons["line 6"] == "missing session_ID"
    assert reasons["line 7"] == "plug-out before plug-in"
    assert quarantine.loc["line 4", "record"] == rows[3]  # the raw line, without CR
    assert set(parsed.quarantine["source"]) == {"session_reports"}
    assert set(parsed.quarantine["partition_key"]) == {""}
    assert set(parsed.quarantine["raw_file"]) == {"broken reports.csv"}


def test_csv_without_the_expected_header_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"other\.csv.*El_kWh"):
        parse("session_reports", "other.csv", b"session_ID;Garage_ID\r\n1;G1\r\n")
    empty = parse("hourly_loads", "empty.csv", b"")
    assert empty.table.empty and empty.quarantine.empty
    assert list(empty.table.columns) == tables.columns("hourly_loads")


# --- charging-event logs -------------------------------------------------------------------------------------------


def test_event_logs_round_trip_from_simulated() -> None:
    files = simulated("charging_events")
    assert files and all(name.endswith(".jsonl") for name, _ in files)
    events = [json.loads(line) for _, data in files for line in data.decode().splitlines()]

    frames = [parse("charging_events", name, data) for name, data in files]
    table = pd.concat([f.table for f in frames], ignore_index=True)

    assert all(f.quarantine.empty for f in frames)
    assert_contract("charging_events", frames[0])
    assert len(table) == len(events)
    assert list(table["event_id"]) == [e["eventId"] for e in events]
    kinds = {"Started": "start", "Updated": "progress", "Ended": "complete"}
    assert list(table["event_type"]) == [kinds[e["eventType"]] for e in events]
    assert list(table["event_time"]) == [pd.Timestamp(e["timestamp"]) for e in events]
    assert str(table["event_time"].dtype) == "datetime64[ns, UTC]"
    assert list(table["meter_kwh"]) == pytest.approx([e["meterValue"]["energyWh"] / 1000 for e in events])
    complete = table[table["event_type"] == "complete"]
    assert complete["cost"].notna().all() and set(complete["currency"]) == {"EUR"}
    assert table.loc[table["event_type"] != "complete", "cost"].isna().all()
    # every transaction starts once, completes once, and its meter never runs backwards
    for _, events_of in table.sort_values("event_time").groupby("transaction_id"):
        assert list(events_of["event_type"].iloc[[0, -1]]) == ["start", "complete"]
        assert events_of["meter_kwh"].is_monotonic_increasing


def test_event_logs_name_the_stations_of_the_simulated_fleet() -> None:
    stations = {e["stationId"] for _, data in simulated("charging_events") for e in map(json.loads, data.splitlines())}
    try:
        from ev_assets.lib.simulator import build_fleet
    except ImportError:  # the chargecloud simulator is optional for the session sources
        assert all(s.startswith("SIM-") for s in stations)
    else:
        assert stations <= set(build_fleet(SimulationSettings()).stations["station_id"])
    # a city the fleet simulator does not know still simulates, with stations of our own
    own = {e["stationId"] for _, data in simulated("charging_events", cities=("oslo",), stations_per_city=2)
           for e in map(json.loads, data.splitlines())}
    assert own <= {"SIM-OSLO-001", "SIM-OSLO-002"} and own


def test_malformed_event_lines_are_quarantined_with_their_line_number() -> None:
    name, data = simulated("charging_events")[0]
    lines = data.decode().splitlines()
    naive = json.loads(lines[2])
    naive["timestamp"] = naive["timestamp"].rstrip("Z")
    unknown = dict(json.loads(lines[3]), eventType="Paused")
    broken = [lines[0], lines[1][:-7], "", json.dumps(naive), json.dumps(unknown), "[1, 2]", *lines[4:]]
    data = gzip.compress(("\n".join(broken) + "\n").encode(), mtime=0)

    parsed = parse("charging_events", name + ".gz", data)

    quarantine = parsed.quarantine.set_index("record_id")
    assert list(quarantine.index) == ["line 2", "line 4", "line 5", "line 6"]
    assert quarantine.loc["line 2", "reason"].startswith("malformed JSON on line 2")
    assert quarantine.loc["line 2", "record"] == lines[1][:-7]
    assert "has no UTC offset" in quarantine.loc["line 4", "reason"]
    assert quarantine.loc["line 5", "reason"].startswith("unknown eventType 'Paused'")
    assert quarantine.loc["line 6", "reason"] == "event is not a JSON object but list"
    assert len(parsed.table) == len(lines) - 3  # every good line survives
    assert json.loads(lines[0])["eventId"] in set(parsed.table["event_id"])

    with pytest.raises(ValueError, match="cut.jsonl.gz"):
        parse("charging_events", "cut.jsonl.gz", data[:40])


# --- simulation ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
def test_simulated_files_are_deterministic_and_parse_cleanly(source: str) -> None:
    first = simulated(source)
    assert first == simulated(source)
    assert first != simulated(source, seed=7)
    for name, data in first:
        assert matches(source, Path(name).name)  # a recorded simulation replays as is
        parsed = parse(source, name, data)
        assert parsed.quarantine.empty, parsed.quarantine["reason"].tolist()
        assert len(parsed.table) > 0
        assert_contract(source, parsed)


def test_simulated_reports_and_hourly_loads_match() -> None:
    reports = parse("session_reports", *simulated("session_reports", days=3)[0]).table
    loads = parse("hourly_loads", *simulated("hourly_loads", days=3)[0]).table

    assert reports["energy_kwh"].between(2, 40).all()
    assert (reports["plugin_at"].dt.hour >= 16).mean() > 0.6  # mostly evening plug-ins
    charged = loads.dropna(subset=["session_id"]).groupby("session_id")["synthetic_3_6kw"].sum()
    energy = reports.set_index("session_id")["energy_kwh"]
    assert set(charged.index) == set(energy.index)
    assert (charged - energy[charged.index]).abs().max() < 0.01
    hours = pd.date_range(loads["date_from"].min(), loads["date_from"].max(), freq="h")
    assert set(loads["date_from"]) == set(hours)  # a row for every hour, idle or not


def test_simulated_acn_sessions_look_like_acn() -> None:
    name, data = simulated("acn_sessions")[0]
    items = json.loads(data)
    assert {"_id", "clusterID", "connectionTime", "disconnectTime", "doneChargingTime", "kWhDelivered", "sessionID",
            "siteID", "spaceID", "stationID", "timezone", "userID", "userInputs"} == set(items[0])
    assert all(i["connectionTime"].endswith(" GMT") for i in items)
    table = parse("acn_sessions", name, data).table
    assert (table["disconnect_time"] > table["connection_time"]).all()


# --- modes ---------------------------------------------------------------------------------------------------------


def test_replay_finds_files_recursively_by_pattern(shared_data: Path, tmp_path: Path) -> None:
    settings = Settings(source="replay", replay_dir=shared_data)
    [(name, data)] = pull_files(settings, "session_reports")
    assert name == REPORTS and data == (shared_data / REPORTS).read_bytes()
    assert [n for n, _ in pull_files(settings, "acn_sessions")] == [ACN]

    # a replay folder holding a `sessions` link to the real data is used through that link
    (tmp_path / "sessions").symlink_to(shared_data / "norway", target_is_directory=True)
    linked = Settings(source="replay", replay_dir=tmp_path)
    assert [n for n, _ in pull_files(linked, "hourly_loads")] == [Path(HOURLY).name]
    assert pull_files(linked, "charging_events") == []


def test_live_reads_the_inbox_and_names_the_missing_setting(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="EV_SESSIONS_INBOX"):
        pull_files(Settings(source="live"), "acn_sessions")
    (tmp_path / "2022" / "01").mkdir(parents=True)
    (tmp_path / "2022" / "01" / "station-events.jsonl.gz").write_bytes(gzip.compress(b"{}\n"))
    (tmp_path / ".partial.jsonl").write_bytes(b"")
    (tmp_path / "notes.txt").write_bytes(b"")
    settings = Settings(source="live", sessions_inbox=tmp_path)
    assert [n for n, _ in pull_files(settings, "charging_events")] == ["2022/01/station-events.jsonl.gz"]
    assert pull_files(settings, "session_reports") == []


def test_an_unreadable_file_is_reported_and_quarantined_the_good_one_loads(tmp_path: Path) -> None:
    good = simulated("charging_events")[0][1]
    (tmp_path / "2022").mkdir()
    (tmp_path / "2022" / "station-a.jsonl").write_bytes(good)
    (tmp_path / "2022" / "station-b.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00 cut off in transfer")
    (tmp_path / "2022" / "station-c.jsonl.tmp").write_bytes(good)
    (tmp_path / ".exporting.jsonl").write_bytes(b"")
    report = FileReport()
    files = pull_files(Settings(source="live", sessions_inbox=tmp_path), "charging_events", report)

    assert [n for n, _ in files] == ["2022/station-a.jsonl", "2022/station-b.jsonl.gz"]  # kept as they came
    assert list(report.unreadable) == ["2022/station-b.jsonl.gz"] and not report.ok
    assert report.unreadable["2022/station-b.jsonl.gz"].startswith("corrupt gzip event log")
    assert list(report.ignored) == ["2022/station-c.jsonl.tmp"]  # reported, not a failure; hidden files are not

    good_rows = parse("charging_events", *files[0]).table
    bad = parse_or_quarantine("charging_events", "station-b.jsonl.gz", files[1][1], raw_file="raw/b.jsonl.gz")
    assert len(good_rows) > 0 and bad.table.empty and list(bad.table.columns) == tables.columns("charging_events")
    [row] = bad.quarantine.to_dict("records")
    assert (row["level"], row["record_id"], row["raw_file"]) == ("file", "station-b.jsonl.gz", "raw/b.jsonl.gz")
    assert row["reason"].startswith("corrupt gzip event log")
    assert list(bad.quarantine.columns) == tables.columns("quarantine")


def test_shared_replay_root_reports_only_files_no_source_reads(tmp_path: Path) -> None:
    """Without a `sessions/` sub-folder the whole root is searched: other sources' sub-folders, JSON recordings
    and OSM extracts are theirs; what nobody reads is reported by the session pulls."""
    for rel in ("chargecloud/status_cp_sample.csv", "osm/stations.geojson", "osm/bonn.osm",
                "20220111_2158__koeln.json", "old/koeln.json.gz", "bonn.osm.bz2", "README.md", "misc/loads.xlsx"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    report = FileReport()
    assert pull_files(Settings(source="replay", replay_dir=tmp_path), "hourly_loads", report) == []
    assert sorted(report.ignored) == ["README.md", "misc/loads.xlsx"] and report.ok


def test_real_shared_data_replays_as_before_and_reports_its_readme(shared_data: Path) -> None:
    settings = Settings(source="replay", replay_dir=shared_data)
    for source, expected in (("session_reports", [REPORTS]), ("hourly_loads", [HOURLY]), ("acn_sessions", [ACN]),
                             ("charging_events", [])):
        report = FileReport()
        assert [n for n, _ in pull_files(settings, source, report)] == expected
        assert report.ok and list(report.ignored) == ["README.md"]


def test_modes_follow_the_sessions_override(tmp_path: Path) -> None:
    settings = Settings(source="replay", source_overrides={"sessions": "simulated"})
    assert pull_files(settings, "session_reports") == simulated("session_reports")
    with pytest.raises(ValueError, match="unknown session source"):
        pull_files(settings, "sessions")


# --- warehouse contract --------------------------------------------------------------------------------------------


def test_parsed_frames_load_into_the_duckdb_tables() -> None:
    con = duckdb.connect()
    con.execute(f"CREATE SCHEMA {tables.SCHEMA}")
    for source in SOURCES:
        parsed = parse(source, *simulated(source)[0])
        for name, frame in ((source, parsed.table), ("quarantine", parsed.quarantine)):
            con.execute(tables.ddl(name))
            con.register("_frame", frame)
            con.execute(f"INSERT INTO {tables.SCHEMA}.{name} SELECT * FROM _frame")
            con.unregister("_frame")
        assert con.execute(f"SELECT count(*) FROM {tables.SCHEMA}.{source}").fetchone()[0] == len(parsed.table)
    first = con.execute("SELECT plugin_at FROM raw.session_reports ORDER BY session_id::BIGINT LIMIT 1").fetchone()[0]
    assert isinstance(first, datetime) and first.tzinfo is None


@pytest.mark.parametrize("source", SOURCES)
def test_a_simulated_day_is_the_same_in_any_range_and_no_two_days_alike(source) -> None:
    """A daily pull (one day) and a weekly one give the same records for the same day, by key and value; the next
    day is not a copy of it (the soak found every simulated day identical but for its dates)."""
    from datetime import date

    from ev_assets.lib.sources.sessions import NATURAL_KEYS

    def rows(start: date, days: int) -> pd.DataFrame:
        sim = SimulationSettings(start=start, days=days)
        frames = [parse(source, name, data).table for name, data in pull_files(Settings(simulation=sim), source)]
        table = pd.concat(frames, ignore_index=True).drop(columns="raw_file")
        # an idle hour (no session) of a one-day export may be a busy one in a week (a session from the evening before)
        return table.dropna(subset=["session_id"]) if source == "hourly_loads" else table

    week = rows(date(2022, 1, 10), 7)
    day = rows(date(2022, 1, 12), 1)
    key = NATURAL_KEYS[source]
    same_day = week[week[key].astype(str).apply(tuple, axis=1).isin(day[key].astype(str).apply(tuple, axis=1))]
    assert len(day) > 0 and len(same_day) == len(day)
    pd.testing.assert_frame_equal(same_day.sort_values(key).reset_index(drop=True), day.sort_values(key).reset_index(drop=True))
    next_day = rows(date(2022, 1, 13), 1)
    assert next_day.drop(columns=key).shape != day.drop(columns=key).shape or not next_day.drop(columns=key).reset_index(drop=True).equals(day.drop(columns=key).reset_index(drop=True))
