"""The chargecloud assets end to end: replaying the real recordings into the warehouse, twice."""

import json
import os
from collections import Counter

import pytest

from ev_assets_tests.fixtures.jobs import check_results, raw_tables, run_job

RECORDINGS = ["20220111_215824_cp_data_cities.json", "20220111_220822_cp_data_cities.json"]


@pytest.fixture
def replay_dir(tmp_path, shared_data):
    folder = tmp_path / "recorded"
    folder.mkdir()
    for name in RECORDINGS:
        os.symlink(shared_data / "chargecloud" / name, folder / name)
    return folder


def replay_of(ev_env, tmp_path):
    """An empty replay folder for chargecloud (the other sources stay simulated)."""
    folder = tmp_path / "recorded"
    folder.mkdir()
    ev_env.setenv("EV_SOURCE_CHARGECLOUD", "replay")
    ev_env.setenv("EV_REPLAY_DIR", str(folder))
    return folder


def _expected(shared_data):
    counts = Counter()
    for name in RECORDINGS:
        for response in json.loads((shared_data / "chargecloud" / name).read_text()).values():
            for station in response["data"]:
                counts["stations"] += 1
                for evse in station["evses"]:
                    counts["cp_statuses"] += 1
                    counts["connector_statuses"] += len(evse["connectors"])
    return counts


def test_replaying_real_polls_fills_the_tables_once(defs, ev_env, replay_dir, shared_data, data_dir):
    ev_env.setenv("EV_SOURCE_CHARGECLOUD", "replay")  # the other sources stay simulated
    ev_env.setenv("EV_REPLAY_DIR", str(replay_dir))
    expected = _expected(shared_data)

    result = run_job(defs, "chargecloud_poll_job", "2022-01-11-20:50", "2022-01-11-21:00")
    assert check_results(result) == {"all_cities_polled": True}
    raw_files = sorted(p for p in (data_dir / "raw" / "chargecloud").rglob("*.json.gz"))
    assert len(raw_files) == 2
    mtimes = [p.stat().st_mtime_ns for p in raw_files]
    run_job(defs, "ingest_job", "2022-01-11", "2022-01-11")

    # re-run both: same files, same rows
    run_job(defs, "chargecloud_poll_job", "2022-01-11-20:50", "2022-01-11-21:00")
    run_job(defs, "ingest_job", "2022-01-11", "2022-01-11")
    assert [p.stat().st_mtime_ns for p in sorted((data_dir / "raw" / "chargecloud").rglob("*.json.gz"))] == mtimes

    con = raw_tables(data_dir)
    assert con.execute("SELECT count(*) FROM raw.status_chargingpoints").fetchone()[0] == expected["cp_statuses"]
    assert con.execute("SELECT count(*) FROM raw.status_connectors").fetchone()[0] == expected["connector_statuses"]
    assert con.execute("SELECT count(DISTINCT poll_slot) FROM raw.status_chargingpoints").fetchone()[0] == 2
    assert con.execute("SELECT count(*) FROM raw.chargingstations").fetchone()[0] == expected["stations"] // 2
    assert con.execute("SELECT count(*) FROM raw.chargecloud_poll_log WHERE ok").fetchone()[0] == 2 * 38
    assert con.execute("SELECT count(*) FROM raw.quarantine").fetchone()[0] == 2  # one rating of 1111 A per poll


def test_a_failing_city_fails_the_check_but_keeps_the_others(defs, ev_env, tmp_path, shared_data, data_dir):
    folder = replay_of(ev_env, tmp_path)
    real = json.loads((shared_data / "chargecloud" / RECORDINGS[0]).read_text())
    (folder / "20220111_2158__koeln.json").write_text(json.dumps(real["koeln"]))
    (folder / "20220111_2158__bonn.json").write_text('{"data": [ broken')

    result = run_job(defs, "chargecloud_poll_job", "2022-01-11-20:50", "2022-01-11-20:50")
    assert check_results(result) == {"all_cities_polled": False}
    run_job(defs, "ingest_job", "2022-01-11", "2022-01-11")
    con = raw_tables(data_dir)
    log = dict(con.execute("SELECT city_slug, ok FROM raw.chargecloud_poll_log").fetchall())
    assert log["koeln"] is True and any(not ok for city, ok in log.items() if "bonn" in city)
    koeln_points = sum(len(s["evses"]) for s in real["koeln"]["data"])
    assert con.execute("SELECT count(*) FROM raw.status_chargingpoints").fetchone()[0] == koeln_points


def test_a_repaired_recording_loads_on_the_next_run(defs, ev_env, tmp_path, shared_data, data_dir):
    """A truncated poll was stored as failed; once the intact file replaces it, the next run loads it and says so."""
    intact = (shared_data / "chargecloud" / RECORDINGS[0]).read_bytes()
    recording = replay_of(ev_env, tmp_path) / RECORDINGS[0]
    recording.write_bytes(intact[: len(intact) // 2])  # cut off: its slot comes from the time in its name
    result = run_job(defs, "chargecloud_poll_job", "2022-01-11-20:50", "2022-01-11-20:50")
    assert check_results(result) == {"all_cities_polled": False}
    run_job(defs, "ingest_job", "2022-01-11", "2022-01-11")
    con = raw_tables(data_dir)
    assert con.execute("SELECT count(*) FROM raw.status_chargingpoints").fetchone()[0] == 0
    con.close()

    recording.write_bytes(intact)
    result = run_job(defs, "chargecloud_poll_job", "2022-01-11-20:50", "2022-01-11-20:50")
    assert check_results(result) == {"all_cities_polled": True}
    result = run_job(defs, "ingest_job", "2022-01-11", "2022-01-11")
    assert check_results(result)["every_poll_usable"] is True
    assert len(list((data_dir / "raw" / "chargecloud").rglob("*.json.gz"))) == 2  # the failed attempt stays as evidence
    con = raw_tables(data_dir)
    expected = sum(len(s["evses"]) for r in json.loads(intact).values() for s in r["data"])
    assert con.execute("SELECT count(*) FROM raw.status_chargingpoints").fetchone()[0] == expected == 2428
    notes = con.execute("SELECT DISTINCT error FROM raw.chargecloud_poll_log WHERE ok").fetchall()
    assert len(notes) == 1 and "loaded from a later attempt" in notes[0][0] and "not valid JSON" in notes[0][0]


def test_unusable_cities_and_recordings_fail_the_checks_and_are_visible(defs, ev_env, tmp_path, shared_data, data_dir):
    folder = replay_of(ev_env, tmp_path)
    real = json.loads((shared_data / "chargecloud" / RECORDINGS[0]).read_text())
    (folder / "20220111_2158__koeln.json").write_text(json.dumps(real["koeln"]))
    (folder / "20220111_2158__bonn.json").write_text(json.dumps({**real["bonn"], "status_code": 1001}))
    (folder / "20220111_2158__kiel.json").write_text(json.dumps({**real["kiel"], "data": []}))
    (folder / "notime.json").write_text(json.dumps({"hof": {**real["hof"], "timestamp": None}}))
    (folder / "future.json").write_text(json.dumps({"hof": {**real["hof"], "timestamp": "2099-01-01T00:00:00+01:00"}}))

    result = run_job(defs, "chargecloud_poll_job", "2022-01-11-20:50", "2022-01-11-20:50")
    assert check_results(result) == {"all_cities_polled": False}
    failed = next(
        e.asset_check_evaluation_data.metadata["failed"].value for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
    )
    assert {key.split()[-1] for key in failed} >= {"bonn", "kiel", str(folder / "notime.json"), str(folder / "future.json")}
    result = run_job(defs, "ingest_job", "2022-01-11", "2022-01-11")
    assert check_results(result)["every_poll_usable"] is False
    con = raw_tables(data_dir)
    log = dict(con.execute("SELECT city_slug, ok FROM raw.chargecloud_poll_log").fetchall())
    assert log == {"koeln": True, "bonn": False, "kiel": False}
    unplaced = con.execute("SELECT record_id, reason FROM raw.quarantine WHERE partition_key = 'unplaced' ORDER BY 1").fetchall()
    assert [(r.rsplit("/", 1)[-1], "future" in why) for r, why in unplaced] == [("future.json", True), ("notime.json", False)]
    koeln_points = sum(len(s["evses"]) for s in real["koeln"]["data"])
    assert con.execute("SELECT count(*) FROM raw.status_chargingpoints").fetchone()[0] == koeln_points
