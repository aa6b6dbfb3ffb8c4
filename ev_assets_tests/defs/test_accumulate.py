"""Every session and telemetry table holds everything ever pulled, merged by its natural key (issue 15): a landing
folder that holds only the last export, or is emptied after each pull, loses nothing, and the table always equals
its rebuild from the raw store."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import dagster as dg
from ev_assets_tests.fixtures.jobs import raw_tables
import pandas as pd

from ev_assets.defs.raw.sessions import build_session_assets
from ev_assets.defs.raw.telemetry import telemetry_assets
from ev_assets.defs.resources import EvConfig


def _run(assets, data_dir, inbox=None, source="replay"):
    config = EvConfig(data_dir=str(data_dir), source=source, replay_dir=str(inbox) if inbox else None)
    result = dg.materialize(assets, resources={"ev_config": config}, instance=dg.DagsterInstance.ephemeral(),
                            raise_on_error=False)
    assert result.success
    return result


def _table(data_dir, name: str) -> pd.DataFrame:
    with raw_tables(data_dir) as con:
        return con.execute(f"SELECT * FROM raw.{name} ORDER BY ALL").df()


def _event(i: int, energy_wh: int = 1000, kind: str = "Updated") -> dict:
    return {"eventId": f"ev-{i}", "transactionId": f"tx-{i // 10}", "stationId": "S1", "connectorId": 1,
            "eventType": kind, "timestamp": f"2022-01-10T{8 + i // 60:02d}:{i % 60:02d}:00Z",
            "meterValue": {"energyWh": energy_wh, "powerW": 11000}}


def _export(folder, name: str, events: list[dict]) -> None:
    for old in folder.glob("*.jsonl"):
        old.unlink()  # the landing folder holds only the newest export
    (folder / name).write_text("\n".join(json.dumps(e) for e in events) + "\n")


def test_event_exports_accumulate_by_event_id_and_a_changed_record_takes_its_latest_version(tmp_path, data_dir,
                                                                                            dbt_manifest):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    assets = build_session_assets("charging_events")

    _export(inbox, "export_1.jsonl", [_event(i) for i in range(0, 60)])
    _run(assets, data_dir, inbox)
    assert len(_table(data_dir, "charging_events")) == 60

    _export(inbox, "export_2.jsonl", [_event(i) for i in range(40, 100)])  # overlaps the first by 20 events
    result = _run(assets, data_dir, inbox)
    first = _table(data_dir, "charging_events")
    assert len(first) == 100 and first["event_id"].is_unique
    [materialization] = result.asset_materializations_for_node("charging_events_table")
    assert materialization.metadata["new_records"].value == 40

    _run(assets, data_dir, inbox)  # the same export pulled again changes nothing
    pd.testing.assert_frame_equal(_table(data_dir, "charging_events"), first)

    _export(inbox, "export_3.jsonl", [_event(99, energy_wh=5000)])  # a corrected record
    _run(assets, data_dir, inbox)
    table = _table(data_dir, "charging_events")
    assert len(table) == 100
    assert table.set_index("event_id").loc["ev-99", "meter_kwh"] == 5.0
    assert table.set_index("event_id").loc["ev-98", "meter_kwh"] == 1.0

    # rebuilt from the raw store alone by the one command (`make rebuild-raw`), into a new lake: the same table
    shutil.rmtree(data_dir / "lake")
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "EV_REPLAY_DIR", "EV_SOURCE")}
    done = subprocess.run([sys.executable, "-m", "ev_assets.cli", "rebuild-raw"], env={**env, "EV_DATA_DIR": str(data_dir)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rebuild_raw_job succeeded" in done.stdout
    pd.testing.assert_frame_equal(_table(data_dir, "charging_events"), table)


def test_one_more_simulated_day_keeps_the_earlier_days(ev_env, data_dir):
    assets = [*build_session_assets("session_reports"), *build_session_assets("acn_sessions"), *telemetry_assets]
    ev_env.setenv("EV_SIM_START", "2022-01-10")
    ev_env.setenv("EV_SIM_DAYS", "7")
    _run(assets, data_dir, source="simulated")
    week = {name: _table(data_dir, name) for name in ("session_reports", "acn_sessions", "vehicle_telemetry")}
    ev_env.setenv("EV_SIM_START", "2022-01-17")
    ev_env.setenv("EV_SIM_DAYS", "1")
    _run(assets, data_dir, source="simulated")
    for name, before in week.items():
        after = _table(data_dir, name)
        assert len(after) > len(before), name  # the new day added records
        key = {"session_reports": ["session_id"], "acn_sessions": ["session_id"],
               "vehicle_telemetry": ["vehicle_id", "reading_at"]}[name]
        kept = before[key].merge(after[key], how="left", indicator=True)
        assert (kept["_merge"] == "both").all(), f"{name} lost records of the first week"
