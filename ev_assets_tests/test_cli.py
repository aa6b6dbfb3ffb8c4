"""`make demo` in small: the whole graph on the simulated feed, in-process, and what a user then finds."""

from datetime import datetime, timezone

import duckdb
import pytest

from ev_assets import cli
from ev_assets.lib.settings import Settings


def test_poll_window_follows_the_source_mode(tmp_path):
    sim = Settings.from_env({"EV_SIM_START": "2022-03-01", "EV_SIM_DAYS": "2"})
    assert cli.poll_window(sim) == (datetime(2022, 3, 1, tzinfo=timezone.utc), datetime(2022, 3, 3, tzinfo=timezone.utc))
    live = Settings.from_env({"EV_SOURCE": "live"})
    now = datetime(2022, 3, 1, 12, 37, tzinfo=timezone.utc)
    assert cli.poll_window(live, now) == (datetime(2022, 3, 1, 12, 20, tzinfo=timezone.utc), datetime(2022, 3, 1, 12, 30, tzinfo=timezone.utc))
    empty = Settings.from_env({"EV_SOURCE": "replay", "EV_REPLAY_DIR": str(tmp_path)})
    with pytest.raises(SystemExit, match="no recorded chargecloud polls"):
        cli.poll_window(empty)


def test_demo_builds_every_layer_offline(ev_env, dbt_manifest, data_dir, capsys):
    ev_env.setenv("EV_SIM_CITIES", "bonn")
    ev_env.setenv("EV_SIM_STATIONS_PER_CITY", "6")
    ev_env.setenv("EV_SIM_DAYS", "1")
    ev_env.delenv("DAGSTER_HOME", raising=False)

    assert cli.main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "chargecloud_poll_job succeeded" in out and "ingest_job succeeded" in out and "warehouse_job succeeded" in out and "failed checks" not in out

    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    count = lambda table: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: E731
    points = count("raw.chargingpoints")
    assert points > 6
    assert count("raw.status_chargingpoints") == points * 144  # one status per point and poll, one day
    for table in ("raw.ocm_stations", "raw.osm_pois", "raw.session_reports", "raw.acn_sessions", "raw.charging_events"):
        assert count(table) > 0, table
    assert count("raw.quarantine") == 0
    assert (data_dir / "docs" / "index.html").stat().st_size > 100_000
    assert (data_dir / "geo" / "osm_pois.parquet").exists()
