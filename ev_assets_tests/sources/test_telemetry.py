"""Vehicle telemetry: what the simulated traces look like, how replayed files are read (and bad input handled),
and the cleaned traces with their gap masks and time-based targets."""

import gzip
import io
import json

import numpy as np
import pandas as pd
import pytest

from ev_assets.lib.sources import telemetry
from ev_assets.lib.replayfiles import FileReport
from ev_assets.lib.settings import Settings, SettingsError, SimulationSettings
from ev_assets.lib.sources.telemetry import features
from ev_assets.lib.sources.telemetry.simulate import FLEET, LOCAL, simulate_traces, simulated_files
from ev_assets_tests.fixtures.jobs import materialize, raw_tables

T0 = pd.Timestamp("2022-01-10 06:00", tz="UTC")
GOOD_CSV = (
    "vehicle_id,timestamp,soc_pct,plugged_in,odometer_km\n"
    "CAR-1,2022-01-10T06:00:00Z,50.0,false,1200.5\n"
    "CAR-1,2022-01-10T06:05:00Z,49.5,false,1203.0\n"
    "CAR-1,2022-01-10T07:12:00+01:00,49.5,true,1203.0\n"
)


@pytest.fixture(scope="module")
def fleet_traces() -> pd.DataFrame:
    """Three weeks of the simulated fleet, with time deltas and SOC changes per vehicle."""
    traces = simulate_traces(SimulationSettings(days=21))
    by_vehicle = traces.groupby("vehicle_id")
    traces["minutes"] = by_vehicle["reading_at"].diff().dt.total_seconds() / 60
    traces["soc_change"] = by_vehicle["soc_pct"].diff()
    traces["was_plugged"] = by_vehicle["plugged_in"].shift().astype("boolean")
    return traces


def trace(minutes, soc, plugged, vehicle="CAR-1") -> pd.DataFrame:
    """A hand-made trace: readings at T0 + minutes."""
    return pd.DataFrame({
        "vehicle_id": vehicle,
        "reading_at": [T0 + pd.Timedelta(minutes=m) for m in minutes],
        "soc_pct": [float(s) for s in soc],
        "plugged_in": [bool(p) for p in plugged],
    })


# --- simulated traces ---------------------------------------------------------------------------------------------
def test_simulated_fleet_has_several_vehicles_with_irregular_sampling(fleet_traces):
    assert fleet_traces["vehicle_id"].nunique() == len(FLEET) == 6
    minutes = fleet_traces["minutes"].dropna()
    awake = minutes[minutes <= 60]
    assert ((awake >= 1) & (awake <= 10)).mean() > 0.85, "mostly 1-10 minutes between readings"
    assert awake.round(1).nunique() > 50, "sampling is irregular, not a fixed grid"
    assert ((minutes > 10) & (minutes <= 60)).sum() > 20, "now and then a reading is missing"


def test_simulated_traces_have_gaps_of_hours_to_days(fleet_traces):
    hours = fleet_traces["minutes"].dropna() / 60
    gaps = hours[hours > 4]
    assert len(gaps) > 100
    assert gaps.min() < 8 and gaps.max() > 48, "gaps from a few hours (a working day) to days (a weekend)"
    every_vehicle = fleet_traces[fleet_traces["minutes"] > 240]["vehicle_id"].nunique()
    assert every_vehicle == 6


def test_simulated_soc_rises_while_charging_slower_above_80_percent(fleet_traces):
    charging = fleet_traces[
        fleet_traces["plugged_in"] & fleet_traces["was_plugged"].fillna(False).astype(bool)
        & (fleet_traces["minutes"] <= 15) & (fleet_traces["soc_change"] > 0)
    ]
    start = charging["soc_pct"] - charging["soc_change"]
    rate = charging["soc_change"] / charging["minutes"] * 60  # % per hour
    low, high = rate[start < 78].median(), rate[start > 90].median()
    # 7.4-11 kW into 40-80 kWh at 90 % efficiency: 12-17 % per hour
    assert 10 < low < 20
    assert high < 0.6 * low, "charging slows above 80 %"
    assert fleet_traces.loc[fleet_traces["plugged_in"], "soc_pct"].max() <= 100


def test_simulated_soc_drifts_slightly_down_across_idle_gaps(fleet_traces):
    idle = fleet_traces[
        (fleet_traces["minutes"] > 240) & ~fleet_traces["plugged_in"]
        & ~fleet_traces["was_plugged"].fillna(True).astype(bool)
    ]
    assert len(idle) > 50
    change = idle["soc_change"]
    assert change.max() <= 0.05, "a parked car does not gain charge"
    assert change.min() > -3, "the drain is slight (at most ~1 % a day)"
    assert change.mean() < 0 and (change < 0).mean() > 0.5


def test_simulated_vehicles_have_different_habits(fleet_traces):
    traces = fleet_traces.copy()
    plug_ins = traces[traces["plugged_in"] & ~traces["was_plugged"].fillna(True).astype(bool)]
    local_hour = plug_ins["reading_at"].dt.tz_convert(LOCAL).dt.hour
    per_vehicle = plug_ins.groupby("vehicle_id").size()
    evening = local_hour.groupby(plug_ins["vehicle_id"]).apply(lambda h: ((h >= 16) & (h <= 22)).mean())
    daytime = local_hour.groupby(plug_ins["vehicle_id"]).apply(lambda h: ((h >= 7) & (h <= 15)).mean())
    assert evening["SIM-EV-01"] > 0.7, "the commuter plugs in at home in the evening"
    assert daytime["SIM-EV-03"] > 0.6, "the fleet car charges during the day"
    assert daytime["SIM-EV-05"] > 0.7, "the workplace charger plugs in at work"
    assert per_vehicle["SIM-EV-04"] < per_vehicle["SIM-EV-02"] / 2, "the rare plugger plugs in far less often"


def test_simulation_is_deterministic():
    sim = SimulationSettings(days=2)
    assert simulated_files(sim) == simulated_files(sim)
    assert simulated_files(sim) != simulated_files(SimulationSettings(days=2, seed=7))


# --- cleaning, gaps, targets --------------------------------------------------------------------------------------
def test_soc_deltas_across_a_gap_longer_than_the_threshold_are_masked():
    #                 0     3     6 | 5 h gap | 306   309
    frame = trace([0, 3, 6, 306, 309], [50, 49.8, 49.6, 49.0, 48.8], [0, 0, 0, 0, 0])
    clean = features.clean_traces(frame, gap_minutes=240)
    assert clean["gap_before"].tolist() == [0, 0, 0, 1, 0]
    after_gap = clean.iloc[3]
    assert after_gap["minutes_since_prev"] == 300, "the silence itself is kept"
    for column in ("soc_delta", "soc_rate_per_hour", "soc_lag1", "soc_lag2", "plugged_lag1", "soc_change_30min"):
        assert np.isnan(after_gap[column]), column
    assert np.isnan(clean.iloc[4]["soc_lag2"]), "a lag of two readings reaches back across the gap too"
    assert clean.iloc[4]["soc_delta"] == pytest.approx(-0.2)
    assert clean.iloc[1]["soc_delta"] == pytest.approx(-0.2)
    # with a threshold above the silence, it is an ordinary delta
    relaxed = features.clean_traces(frame, gap_minutes=360)
    assert relaxed.iloc[3]["soc_delta"] == pytest.approx(-0.6) and relaxed["gap_before"].sum() == 0


def test_targets_are_found_by_time_not_by_row_offset():
    # dense readings while driving home, then plugged in at minute 15, charging; the row 1 ahead is minute 1
    frame = trace([0, 1, 2, 3, 4, 15, 21, 33], [60, 59.8, 59.6, 59.4, 59.2, 59.2, 60.6, 63.0],
                  [0, 0, 0, 0, 0, 1, 1, 1])
    out, _ = features.feature_frame(frame, horizon_minutes=15)
    minutes = (out["reading_at"] - T0).dt.total_seconds() / 60
    target_minutes = ((out["target_at"] - T0).dt.total_seconds() / 60).tolist()
    # minute 0 -> 15 (exact), 2 -> 15 (nearest to 17), 4 -> 21 (nearest to 19), 15 -> 33 (30 is 3 from 33)
    assert target_minutes[:6] == [15, 15, 15, 15, 21, 33]
    assert out["plugged_in_target"].iloc[0] == 1.0, "plugged in 15 minutes later, though unplugged 1 row later"
    assert out["plugged_in"].shift(-1).iloc[0] == 0.0  # what a row offset would have said
    assert out["energy_to_full_target"].iloc[0] == pytest.approx(100 - 59.2)
    assert out["energy_to_full_target"].iloc[4] == pytest.approx(100 - 60.6)
    # the last two have no reading near t + 15: 21 -> 36 (33 is 3 away: fine), 33 -> 48 (none)
    assert target_minutes[6] == 33 and np.isnan(out["plugged_in_target"].iloc[7])
    assert minutes.tolist() == [0, 1, 2, 3, 4, 15, 21, 33]


def test_a_reading_whose_horizon_falls_in_a_gap_has_no_target():
    # minute 0 and 2, then the car sleeps for 6 hours; t + 15 lies in the gap for both
    frame = trace([0, 2, 362, 365, 377], [70, 70, 69.5, 69.5, 69.4], [0, 0, 0, 0, 0])
    out, report = features.feature_frame(frame, horizon_minutes=15, gap_minutes=240)
    assert out["plugged_in_target"].isna().tolist() == [True, True, False, False, True]
    assert np.isnan(out["energy_to_full_target"].iloc[0]) and np.isnan(out["energy_to_full_target"].iloc[1])
    assert out["energy_to_full_target"].iloc[2] == pytest.approx(100 - 69.4)  # 362 -> 377 within the segment
    assert report.gaps == 1 and report.rows_with_target == 2


def test_unsorted_and_repeated_readings_are_sorted_and_counted_once():
    frame = trace([10, 0, 5, 5, 20], [49, 50, 49.5, 49.5, 48.5], [0, 0, 0, 0, 0])
    clean = features.clean_traces(frame, report=(report := features.TraceReport()))
    assert ((clean["reading_at"] - T0).dt.total_seconds() / 60).tolist() == [0, 5, 10, 20]
    assert clean["soc_delta"].round(2).tolist()[1:] == [-0.5, -0.5, -0.5]
    assert report.readings_received == 5 and report.readings == 4
    assert list(report.dropped.values()) == [1]


def test_a_vehicle_with_one_reading_is_reported_not_an_error():
    frame = pd.concat([trace([0], [40], [0], "LONELY"), trace([0, 5, 10, 15, 20], [60] * 5, [0] * 5)])
    out, report = features.feature_frame(frame)
    assert report.single_reading_vehicles == ["LONELY"]
    assert "LONELY" in report.vehicles_without_target and "single reading" in report.summary()
    assert out.loc[out["vehicle_id"] == "LONELY", "plugged_in_target"].isna().all()
    # 0 -> 15, 5 -> 20, 10 -> 20 (nearest to 25, within the tolerance of 7.5 min); 15 and 20: nothing near
    assert out.loc[out["vehicle_id"] == "CAR-1", "plugged_in_target"].notna().tolist() == [True] * 3 + [False] * 2


def test_features_stay_small_floats_for_float32_export(fleet_traces):
    out, _ = features.feature_frame(fleet_traces[["vehicle_id", "reading_at", "soc_pct", "plugged_in"]])
    values = out[features.FEATURES].astype(float)
    assert values.abs().max().max() < 1e5, "no epoch seconds or other huge numbers"
    assert out["hour"].between(0, 24).all() and out["weekday"].between(0, 6).all()


# --- files: parsing, quarantine, replay and live ------------------------------------------------------------------
def test_rows_with_unparseable_values_are_quarantined_with_the_reason():
    data = (
        "VIN;Timestamp;SOC;Plugged\n"
        "A;2022-01-10T06:00:00Z;55,5;yes\n"  # semicolons and a decimal comma: fine
        ";2022-01-10T06:01:00Z;55;yes\n"
        "A;2022-01-10 06:02:00;55;yes\n"
        "A;2022-01-10T06:03:00Z;130;yes\n"
        "A;2022-01-10T06:04:00Z;55;maybe\n"
        "A;2022-01-10T06:05:00Z;55\n"
        "A;yesterday;full;no\n"
    ).encode()
    parsed = telemetry.parse("export.csv", data)
    assert parsed.table[["vehicle_id", "soc_pct", "plugged_in"]].values.tolist() == [["A", 55.5, True]]
    reasons = dict(zip(parsed.quarantine["record_id"], parsed.quarantine["reason"]))
    assert reasons["line 3"] == "no vehicle id"
    assert "no UTC offset" in reasons["line 4"]
    assert "outside 0..100" in reasons["line 5"]
    assert "not a yes/no flag" in reasons["line 6"]
    assert reasons["line 7"] == "3 fields where the header has 4"
    assert "not an ISO 8601 time" in reasons["line 8"] and "'full' is not a number" in reasons["line 8"]
    assert set(parsed.quarantine["source"]) == {"vehicle_telemetry"}
    assert json.loads(parsed.quarantine.set_index("record_id").loc["line 5", "record"])["SOC"] == "130"


def test_parquet_times_need_a_time_zone():
    naive = PARQUET_FRAME.assign(timestamp=PARQUET_FRAME["timestamp"].dt.tz_localize(None))
    parsed = telemetry.parse("naive.parquet", _parquet(naive))
    assert parsed.table.empty and parsed.quarantine["record_id"].tolist() == ["row 1", "row 2"]
    assert "naive Parquet timestamp" in parsed.quarantine["reason"].iloc[0]
    berlin = PARQUET_FRAME.assign(timestamp=PARQUET_FRAME["timestamp"].dt.tz_convert("Europe/Berlin"))
    assert telemetry.parse("berlin.parquet", _parquet(berlin)).table["reading_at"].dt.hour.tolist() == [7, 7]


def test_repeats_across_files_count_once_and_conflicts_are_quarantined():
    first = telemetry.parse("a.csv", GOOD_CSV.encode())
    shuffled = GOOD_CSV.splitlines()
    again = "\n".join([shuffled[0], shuffled[3], shuffled[1], "CAR-1,2022-01-10T06:00:00Z,51.0,false,1200.5"]) + "\n"
    second = telemetry.parse("b.csv", again.encode())
    assert second.unsorted and not first.unsorted
    combined = telemetry.combine([first, second])
    assert len(combined.table) == 3
    assert combined.table["reading_at"].is_monotonic_increasing
    assert combined.table["soc_pct"].iloc[0] == 50.0, "the first reading (in file order) is kept"
    assert combined.stats["duplicate_readings"] == 2 and combined.stats["conflicting_duplicates"] == 1
    assert combined.stats["unsorted_files"] == 1
    [reason] = combined.quarantine["reason"]
    assert "was kept (soc_pct 50" in reason and combined.quarantine["raw_file"].iloc[0] == "b.csv"


def _replay(tmp_path, files: dict) -> Settings:
    folder = tmp_path / "replay" / "vehicle_telemetry"
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return Settings(source="replay", replay_dir=tmp_path / "replay")


def _parquet(frame: pd.DataFrame) -> bytes:
    out = io.BytesIO()
    frame.to_parquet(out, index=False)
    return out.getvalue()


PARQUET_FRAME = pd.DataFrame({
    "vin": ["CAR-2", "CAR-2"],
    "timestamp": pd.to_datetime(["2022-01-10T07:00:00Z", "2022-01-10T07:04:00Z"], utc=True),
    "state_of_charge": [80.0, 81.2],
    "is_plugged_in": [True, True],
    "charger_power_kw": [11.0, 10.8],
})


def test_replay_reads_csv_and_parquet_and_keeps_extra_columns(tmp_path):
    settings = _replay(tmp_path, {"week.csv.gz": gzip.compress(GOOD_CSV.encode()), "fleet.parquet": _parquet(PARQUET_FRAME),
                                  "README.txt": b"exported by the fleet back end"})
    report = FileReport()
    files = telemetry.pull_files(settings, report)
    assert [name for name, _ in files] == ["fleet.parquet", "week.csv.gz"]
    assert report.unreadable == {} and list(report.ignored) == ["README.txt"]
    combined = telemetry.combine([telemetry.parse(name, data) for name, data in files])
    table = combined.table.set_index(["vehicle_id", combined.table["reading_at"].dt.strftime("%H:%M")])
    assert json.loads(table.loc[("CAR-1", "06:05"), "extra"]) == {"odometer_km": "1203.0"}
    assert json.loads(table.loc[("CAR-2", "07:04"), "extra"]) == {"charger_power_kw": 10.8}
    assert table.loc[("CAR-1", "06:12"), "plugged_in"], "+01:00 is converted to UTC"
    assert table.loc[("CAR-2", "07:04"), "soc_pct"] == 81.2


def test_unreadable_files_are_named_and_the_others_still_come(tmp_path):
    settings = _replay(tmp_path, {
        "good.csv": GOOD_CSV.encode(),
        "cut.parquet": _parquet(PARQUET_FRAME)[:100],
        "corrupt.csv.gz": gzip.compress(GOOD_CSV.encode())[:30],
        "no_soc.csv": b"vehicle_id,timestamp,plugged_in\nA,2022-01-10T06:00:00Z,true\n",
    })
    report = FileReport()
    files = telemetry.pull_files(settings, report)
    assert len(files) == 4, "every file is kept in the raw store, readable or not"
    assert sorted(report.unreadable) == ["corrupt.csv.gz", "cut.parquet", "no_soc.csv"]
    assert "corrupt gzip" in report.unreadable["corrupt.csv.gz"]
    assert "no column for soc_pct" in report.unreadable["no_soc.csv"]
    parsed = [telemetry.parse_or_quarantine(name, data) for name, data in files]
    combined = telemetry.combine(parsed)
    assert len(combined.table) == 3 and combined.stats["unreadable_files"] == 3


def test_shared_replay_root_leaves_other_sources_files_alone(tmp_path):
    root = tmp_path / "replay"
    (root / "chargecloud").mkdir(parents=True)
    (root / "chargecloud" / "poll.csv").write_text("not ours")
    (root / "Dataset 1_EV charging reports.csv").write_text("session_ID;Garage_ID\n")
    (root / "stations.csv").write_text("station_id,name\nS1,Main street\n")
    (root / "telemetry.csv").write_text(GOOD_CSV)
    (root / "koeln.json").write_text("{}")
    report = FileReport()
    files = telemetry.pull_files(Settings(source="replay", replay_dir=root), report)
    assert [name for name, _ in files] == ["telemetry.csv"]
    assert report.unreadable == {} and list(report.ignored) == ["stations.csv"]


def test_chargecloud_replay_skips_the_telemetry_folder(tmp_path):
    from ev_assets.lib.sources import chargecloud

    (tmp_path / "vehicle_telemetry").mkdir()
    (tmp_path / "vehicle_telemetry" / "export.json").write_text("{}")
    (tmp_path / "20220110_0800__koeln.json").write_text("{}")
    assert [p.name for p in chargecloud.replay_files(tmp_path)] == ["20220110_0800__koeln.json"]


def test_live_mode_reads_a_landing_folder_or_says_what_to_set(tmp_path):
    settings = Settings.from_env({"EV_SOURCE_VEHICLE_TELEMETRY": "live"})
    assert settings.mode("vehicle_telemetry") == "live" and settings.mode("chargecloud") == "simulated"
    with pytest.raises(SettingsError, match="EV_TELEMETRY_INBOX"):
        telemetry.pull_files(settings)
    (tmp_path / "drop.csv").write_text(GOOD_CSV)
    live = Settings.from_env({"EV_SOURCE_VEHICLE_TELEMETRY": "live", "EV_TELEMETRY_INBOX": str(tmp_path)})
    assert [name for name, _ in telemetry.pull_files(live)] == ["drop.csv"]


def test_telemetry_settings_come_from_the_environment():
    defaults = Settings.from_env({})
    assert (defaults.telemetry_gap_minutes, defaults.telemetry_horizon_minutes) == (240, 15)
    assert defaults.mode("vehicle_telemetry") == "simulated"
    s = Settings.from_env({"EV_TELEMETRY_GAP_MINUTES": "120", "EV_TELEMETRY_HORIZON_MINUTES": "30"})
    assert (s.telemetry_gap_minutes, s.telemetry_horizon_minutes) == (120, 30)
    with pytest.raises(SettingsError, match="EV_TELEMETRY_GAP_MINUTES='soon' is not a whole number"):
        Settings.from_env({"EV_TELEMETRY_GAP_MINUTES": "soon"})


# --- through Dagster ------------------------------------------------------------------------------------------------
@pytest.fixture
def clean_env(ev_env):
    for name in ("EV_SOURCE_VEHICLE_TELEMETRY", "EV_TELEMETRY_INBOX"):
        ev_env.delenv(name, raising=False)
    return ev_env


def _materialize(data_dir, source="replay", replay_dir=None):
    from ev_assets.defs.raw.telemetry import telemetry_assets

    result, warnings = materialize(telemetry_assets, data_dir, replay_dir, source)
    [check] = [e.asset_check_evaluation_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    [table] = result.asset_materializations_for_node("vehicle_telemetry_table")
    return check, {k: v.value for k, v in table.metadata.items()}, warnings


def _query(data_dir, sql):
    with raw_tables(data_dir) as con:
        return con.execute(sql).fetchall()


def test_a_broken_file_fails_the_check_while_the_good_ones_load(clean_env, tmp_path, data_dir):
    folder = tmp_path / "replay" / "vehicle_telemetry"
    folder.mkdir(parents=True)
    (folder / "good.csv").write_text(GOOD_CSV + "CAR-1,2022-01-10T06:05:00Z,49.5,false,1203.0\n")  # one repeat
    (folder / "good.parquet").write_bytes(_parquet(PARQUET_FRAME))
    (folder / "broken.parquet").write_bytes(_parquet(PARQUET_FRAME)[:120])

    check, meta, warnings = _materialize(data_dir, replay_dir=tmp_path / "replay")

    assert check.check_name == "all_replay_files_read" and check.passed is False
    assert [f["file"] for f in check.metadata["unreadable_file_list"].value] == ["broken.parquet"]
    assert any("broken.parquet" in w for w in warnings)
    assert _query(data_dir, "SELECT vehicle_id, count(*) FROM raw.vehicle_telemetry GROUP BY 1 ORDER BY 1") == [
        ("CAR-1", 3), ("CAR-2", 2)]
    assert meta["dagster/row_count"] == 5 and meta["duplicate_readings"] == 1 and meta["vehicles"] == 2
    [(level, raw_file, reason)] = _query(
        data_dir, "SELECT level, raw_file, reason FROM raw.quarantine WHERE source = 'vehicle_telemetry'")
    assert level == "file" and "broken" in raw_file and "Parquet" in reason


def test_simulated_telemetry_passes_its_check(clean_env, data_dir):
    check, meta, _ = _materialize(data_dir, source="simulated")
    assert check.passed is True
    assert meta["vehicles"] == 6 and meta["dagster/row_count"] > 300 and meta["quarantined_records"] == 0
    extra = _query(data_dir, "SELECT extra FROM raw.vehicle_telemetry LIMIT 1")[0][0]
    assert "odometer_km" in json.loads(extra)
