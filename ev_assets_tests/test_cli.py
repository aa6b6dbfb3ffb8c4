"""`make demo` in small: the whole graph on the simulated feed, in-process, and what a user then finds."""

import contextlib
import io
from datetime import datetime, timezone

import duckdb
import pytest

from ev_assets import cli
from ev_assets.lib.settings import Settings
from ev_assets_tests.conftest import run_job

DEMO_ENV = {"EV_SIM_CITIES": "bonn", "EV_SIM_STATIONS_PER_CITY": "6", "EV_SIM_DAYS": "1", "EV_SIM_START": "2022-01-10"}
CLEARED = ("EV_SOURCE", "EV_REPLAY_DIR", "EV_CITIES", "EV_SOURCE_CHARGECLOUD", "EV_SOURCE_OSM", "EV_SOURCE_OPENCHARGEMAP",
           "EV_SOURCE_SESSIONS", "OPENCHARGEMAP_API_KEY", "DAGSTER_HOME")


def test_poll_window_follows_the_source_mode(tmp_path):
    sim = Settings.from_env({"EV_SIM_START": "2022-03-01", "EV_SIM_DAYS": "2"})
    assert cli.poll_window(sim) == (datetime(2022, 3, 1, tzinfo=timezone.utc), datetime(2022, 3, 3, tzinfo=timezone.utc))
    live = Settings.from_env({"EV_SOURCE": "live"})
    now = datetime(2022, 3, 1, 12, 37, tzinfo=timezone.utc)
    assert cli.poll_window(live, now) == (datetime(2022, 3, 1, 12, 20, tzinfo=timezone.utc), datetime(2022, 3, 1, 12, 30, tzinfo=timezone.utc))
    empty = Settings.from_env({"EV_SOURCE": "replay", "EV_REPLAY_DIR": str(tmp_path)})
    with pytest.raises(SystemExit, match="no recorded chargecloud polls"):
        cli.poll_window(empty)


@pytest.fixture(scope="module")
def demo(tmp_path_factory, dbt_manifest):
    """One small demo run shared by the tests below (the environment stays set while they run)."""
    data_dir = tmp_path_factory.mktemp("demo") / "data"
    with pytest.MonkeyPatch.context() as env:
        for name in CLEARED:
            env.delenv(name, raising=False)
        env.setenv("EV_DATA_DIR", str(data_dir))
        for name, value in DEMO_ENV.items():
            env.setenv(name, value)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli.main(["demo"])
        yield data_dir, code, out.getvalue()


def test_demo_builds_every_layer_offline(demo):
    data_dir, code, out = demo
    assert code == 0, out
    for job in ("chargecloud_poll_job", "ingest_job", "warehouse_job"):
        assert f"== {job} succeeded" in out
    assert "failed checks" not in out

    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    count = lambda table: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: E731
    points = count("raw.chargingpoints")
    assert points > 6
    assert count("raw.status_chargingpoints") == points * 144  # one status per point and poll, one day
    assert count("marts.fct_charging_point_status") == points * 144
    for table in ("raw.ocm_stations", "raw.osm_pois", "raw.session_reports", "raw.acn_sessions", "raw.charging_events",
                  "raw.poi_station_map", "marts.fct_charging_sessions", "marts.mart_utilization_station_daily",
                  "marts.mart_reliability_daily", "marts.mart_energy_daily", "marts.mart_revenue_daily"):
        assert count(table) > 0, table
    assert count("raw.quarantine") == 0
    # every station-day's shares of time add up to the whole day (occupied includes charging)
    shares = con.execute(
        """SELECT min(s), max(s) FROM (SELECT share_occupied + share_available + share_out_of_order + share_unknown AS s
           FROM marts.mart_utilization_station_daily)"""
    ).fetchone()
    assert shares == pytest.approx((1.0, 1.0))
    docs = data_dir / "docs" / "index.html"
    assert docs.stat().st_size > 100_000 and "fct_charging_sessions" in docs.read_text()
    assert (data_dir / "geo" / "osm_pois.parquet").exists()
    assert "dbt docs site (opens offline)" in out


def test_a_broken_input_fails_its_dbt_check_in_dagster(demo):
    from ev_assets.definitions import defs

    data_dir, _, _ = demo
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        con.execute(
            """INSERT INTO raw.status_chargingpoints
               SELECT poll_slot, poll_time, city_slug, station_id, 'DE*GHOST*E0001', 'ghost', status, NULL
               FROM raw.status_chargingpoints LIMIT 1"""
        )
    result = run_job(defs, "warehouse_job", "2022-01-10", "2022-01-10", expect_success=False)
    checks = {
        (e.asset_check_evaluation_data.asset_key.path[-1], e.asset_check_evaluation_data.check_name): e.asset_check_evaluation_data.passed
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    failed = sorted(key for key, passed in checks.items() if not passed)
    assert failed == [("stg_chargecloud__charging_point_statuses", "status_charging_point_is_known")]
    assert sum(checks.values()) > 50  # the other checks still ran and passed
    assert checks[("status_chargingpoints", "no_duplicate_charging_point_poll")] is True  # dbt source tests too
