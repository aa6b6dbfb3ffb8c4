"""The dbt project on hand-made raw tables: inferred sessions, day-by-day = full rebuild, data-quality tests.

One module-scoped warehouse of three UTC days (2022-01-10 .. 2022-01-12) with status polls every 10 minutes
for two cities, written through `ev_assets.lib.tables.ddl` like ingestion does. dbt runs in the test's process
on the project parsed once (`fixtures.dbt.run_dbt`), with its own target/log folders, so it never touches
`dbt_project/target` of a developer; each scenario runs on its own copy of the warehouse.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from ev_assets.lib import tables
from ev_assets_tests.fixtures.dbt import query, run_dbt
from ev_assets_tests.fixtures.paths import DBT, DBT_PROJECT
from ev_assets_tests.fixtures.raw_fleet import DAYS, EXPECTED_SESSIONS, P1, P2, P3, write_raw_warehouse

pytestmark = pytest.mark.slow  # dbt builds of a warehouse (a minute or more on 2 cores)


def node_name(unique_id: str) -> str:
    """'test.ev_assets.<name>.<hash>' / 'model.ev_assets.<name>' / 'unit_test.ev_assets.<model>.<name>' -> name."""
    parts = unique_id.split(".")
    return parts[-1] if parts[0] == "unit_test" else parts[2]


def failures(results: dict) -> dict[str, str]:
    """Nodes that did not succeed: name -> status (fail, error, skipped, warn)."""
    return {
        node_name(r["unique_id"]): r["status"] for r in results["results"] if r["status"] not in ("success", "pass")
    }


@pytest.fixture(scope="module")
def raw_warehouse(tmp_path_factory) -> Path:
    """A warehouse file holding only the raw tables (copied by each scenario)."""
    folder = tmp_path_factory.mktemp("raw")
    write_raw_warehouse(folder / "warehouse.duckdb")
    return folder / "warehouse.duckdb"


def fresh_data_dir(tmp_path_factory, raw_warehouse: Path, name: str) -> Path:
    data_dir = tmp_path_factory.mktemp(name)
    shutil.copy(raw_warehouse, data_dir / "warehouse.duckdb")
    return data_dir


@pytest.fixture(scope="module")
def full_build_results(tmp_path_factory, raw_warehouse) -> tuple[Path, dict]:
    """`dbt build` of the whole project without a window (process everything): every model and test."""
    data_dir = fresh_data_dir(tmp_path_factory, raw_warehouse, "full")
    results = run_dbt(data_dir, "build")
    assert results["returncode"] == 0 and not failures(results), (failures(results), results["stdout"][-5000:])
    return data_dir, results


@pytest.fixture(scope="module")
def full_build(full_build_results) -> Path:
    return full_build_results[0]


def test_unit_tests_of_runs_sessions_and_outages_pass(full_build_results):
    """The given/expect cases beside the models (status runs over gaps, midnight and a carried run; inferred
    sessions; out-of-order intervals) ran in the build and passed."""
    _, results = full_build_results
    unit = {node_name(r["unique_id"]): r["status"] for r in results["results"] if r["unique_id"].startswith("unit_test.")}
    assert {name: unit.get(name) for name in (
        "runs_end_at_a_change_or_a_gap_and_cross_midnight", "a_daily_window_continues_the_carried_run",
        "sessions_are_the_charging_runs_with_their_energy_bounds", "a_failure_starts_where_a_working_status_ends",
    )} == dict.fromkeys(("runs_end_at_a_change_or_a_gap_and_cross_midnight", "a_daily_window_continues_the_carried_run",
                         "sessions_are_the_charging_runs_with_their_energy_bounds",
                         "a_failure_starts_where_a_working_status_ends"), "pass")


def run_days(data_dir: Path, days: list[str]) -> Path:
    """One `dbt run` per UTC day with min_date/max_date, like daily Dagster partitions, in the given order."""
    for day in days:
        next_day = (datetime.fromisoformat(day) + timedelta(days=1)).date().isoformat()
        results = run_dbt(data_dir, "run", window=(day, next_day))
        assert results["returncode"] == 0 and not failures(results), (day, failures(results))
    return data_dir


@pytest.fixture(scope="module")
def incremental_builds(tmp_path_factory, raw_warehouse) -> dict[str, Path]:
    """The days processed one dbt run each: in order, and out of order (the last day first)."""
    orders = {"in_order": list(DAYS), "out_of_order": [DAYS[2], DAYS[0], DAYS[1]]}
    return {name: run_days(fresh_data_dir(tmp_path_factory, raw_warehouse, name), days) for name, days in orders.items()}


@pytest.fixture(scope="module")
def day_by_day(incremental_builds) -> Path:
    return incremental_builds["in_order"]


# --- sessions --------------------------------------------------------------------------------------------------
def test_inferred_sessions_match_the_status_sequence(full_build):
    rows = query(
        full_build,
        """
        select charging_point_id, strftime(session_start, '%Y-%m-%d %H:%M'), strftime(session_end, '%Y-%m-%d %H:%M'),
               duration_minutes, n_polls, is_open
        from marts.fct_charging_sessions
        order by charging_point_id, session_start
        """,
    )
    expected = sorted((cp, s, e, float(m), n, o) for cp, s, e, m, n, o in EXPECTED_SESSIONS)
    assert rows == expected


def test_session_energy_is_bounded_by_vehicle_cap_and_rated_power(full_build):
    rows = query(
        full_build,
        """
        select charging_point_id, strftime(session_start, '%Y-%m-%d %H:%M'), rated_power_kw, current_type,
               energy_kwh_lower, energy_kwh_upper
        from marts.fct_charging_sessions
        where strftime(session_start, '%Y-%m-%d %H:%M') in ('2022-01-10 22:00', '2022-01-10 23:40')
        order by charging_point_id
        """,
    )
    assert rows == [
        (P1, "2022-01-10 22:00", 22.0, "AC", 3 * 11.0, 3 * 22.0),  # AC: a vehicle takes at most 11 kW
        (P3, "2022-01-10 23:40", 50.0, "DC", 50 / 60 * 50.0, 50 / 60 * 50.0),  # DC 50 kW is below the 150 kW cap
    ]


def test_out_of_order_runs_count_one_failure(full_build):
    rows = query(
        full_build,
        """
        select item_id, status, strftime(interval_start, '%H:%M'), strftime(interval_end, '%H:%M'), is_failure_start
        from marts.fct_out_of_order_intervals
        where level = 'charging_point'
        order by interval_start
        """,
    )
    assert rows == [
        (P2, "OUTOFORDER", "06:00", "12:00", True),
        (P2, "INOPERATIVE", "12:00", "13:00", False),
        (P3, "INOPERATIVE", "20:00", "21:00", True),
    ]
    reliability = query(
        full_build,
        "select city_slug, failures, out_of_order_hours from marts.mart_reliability_daily "
        "where day = '2022-01-11' order by city_slug",
    )
    # 42 out-of-order poll slots of P2 less bonn's two missed polls at 10:10 and 10:20: 40 polls of 10 minutes
    assert reliability == [("bonn", 1, 40 / 6), ("koeln", 0, 0.0)]


def test_station_history_is_a_type_2_dimension(full_build):
    rows = query(
        full_build,
        "select operator_hotline, strftime(valid_from, '%Y-%m-%d %H:%M'), strftime(valid_to, '%Y-%m-%d %H:%M'), "
        "is_current from marts.dim_station where station_id = 'S1' order by valid_from",
    )
    assert rows == [
        ("+49800111", "2022-01-10 00:00", "2022-01-11 12:00", False),
        ("+49800222", "2022-01-11 12:00", None, True),
    ]
    # each poll points at the version valid at its time
    keys = query(
        full_build,
        """
        select count(distinct f.station_key)
        from marts.fct_charging_point_status f
        join marts.dim_station d on f.station_key = d.station_key
        where f.polled_at >= d.valid_from and (d.valid_to is null or f.polled_at < d.valid_to)
            and f.station_id = 'S1'
        """,
    )
    assert keys == [(2,)]


def test_the_registry_history_is_a_type_2_dimension_and_staging_holds_the_current_version(full_build):
    rows = query(full_build, "select status_type, strftime(valid_from, '%Y-%m-%d %H:%M'), "
                             "strftime(valid_to, '%Y-%m-%d %H:%M'), is_current, version "
                             "from marts.dim_ocm_station_history where ocm_id = 1001 order by version")
    assert rows == [("Operational", "2021-12-02 00:00", "2022-01-11 06:00", False, 1),
                    ("Temporarily Unavailable", "2022-01-11 06:00", None, True, 2)]
    assert query(full_build, "select status_type from staging.stg_ocm__stations where ocm_id = 1001") == [
        ("Temporarily Unavailable",)]


def test_energy_marts_count_sessions_in_their_start_day(full_build):
    daily = query(
        full_build,
        """
        select entity_type, entity_id, strftime(day, '%Y-%m-%d'), sessions_started, energy_kwh, active_charging_hours
        from marts.mart_energy_daily
        where source_name = 'norway' and entity_type = 'user' and entity_id = 'AdO3-4'
        order by day
        """,
    )
    # 21:00-01:00 Oslo (20:00-00:00 UTC): days are Oslo days, so all 12 kWh count on the plug-in day (10 Jan)
    # with three active hours (21, 22, 23), and the hour 00:00-01:00 on 11 Jan is that day's one active hour
    assert daily == [("user", "AdO3-4", "2022-01-10", 1, 12.0, 3), ("user", "AdO3-4", "2022-01-11", 0, 0.0, 1)]
    revenue = query(full_build, "select station_id, currency, transactions, energy_kwh, revenue from marts.mart_revenue_daily")
    assert revenue == [("EV-1", "EUR", 1, 10.0, 4.2)]


# --- day by day = full rebuild --------------------------------------------------------------------------------
COMPARED_TABLES = {
    "intermediate.int_status_intervals": "level, item_id, interval_start",
    "intermediate.int_charging_sessions_inferred": "charging_point_id, session_start",
    "marts.fct_charging_sessions": "charging_point_id, session_start",
    "marts.fct_out_of_order_intervals": "level, item_id, interval_start",  # is_failure_start: the carried status
    "marts.mart_utilization_station_hourly": "station_id, hour_start",
    "marts.mart_utilization_station_daily": "station_id, day",
    "marts.mart_utilization_city_daily": "city_slug, day",
    "marts.mart_utilization_operator_daily": "operator_name, day",
    "marts.mart_reliability_daily": "city_slug, operator_name, day",
}


def _rows(data_dir: Path, table: str, order: str) -> list[tuple]:
    return [
        tuple(round(v, 9) if isinstance(v, float) else v for v in row)
        for row in query(data_dir, f"select * from {table} order by {order}")
    ]


@pytest.mark.parametrize("order", ["in_order", "out_of_order"])
@pytest.mark.parametrize("table", sorted(COMPARED_TABLES))
def test_day_by_day_equals_full_rebuild(full_build, incremental_builds, table, order):
    full = _rows(full_build, table, COMPARED_TABLES[table])
    daily = _rows(incremental_builds[order], table, COMPARED_TABLES[table])
    assert full, f"{table} is empty"
    assert daily == full


def test_midnight_sessions_are_one_session_day_by_day(day_by_day):
    crossing = query(
        day_by_day,
        "select count(*) from intermediate.int_charging_sessions_inferred "
        "where cast(session_start as date) < cast(session_end - interval 1 microsecond as date)",
    )
    assert crossing == [(3,)]


# --- broken inputs fail the right test --------------------------------------------------------------------------
BROKEN_INPUTS = {
    # a status row for a charging point that is not in the master data
    "unknown_charging_point": (
        "insert into raw.status_chargingpoints values ('2022-01-11 10:00+00', '2022-01-11 10:00+00', 'bonn', 'S1', "
        "'DE*BON*E0001*999', '999', 'AVAILABLE', null)",
        "status_charging_point_is_known",
    ),
    # the same poll loaded twice (under the next poll slot)
    "duplicate_poll": (
        "insert into raw.status_chargingpoints select poll_slot + interval 10 minute, poll_time, city_slug, "
        "station_id, charging_point_id, evse_uid, status, parkingsensor_status from raw.status_chargingpoints "
        "where charging_point_id = 'DE*BON*E0001*001' and poll_time = '2022-01-11 10:00+00'",
        "no_duplicate_charging_point_poll",
    ),
    # a station placed outside Germany
    "coordinates_outside_germany": (
        "update raw.chargingstations set latitude = 0.0, longitude = 0.0 where station_id = 'S2'",
        "station_coordinates_in_germany",
    ),
}


@pytest.fixture(scope="module")
def broken_builds(tmp_path_factory, raw_warehouse) -> dict[str, dict]:
    """`dbt build` on a copy of the warehouse with one broken input each (the data tests; the unit tests of the SQL
    ran in the full build)."""

    def build(name: str) -> dict:
        data_dir = fresh_data_dir(tmp_path_factory, raw_warehouse, name)
        with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
            con.execute(BROKEN_INPUTS[name][0])
        return run_dbt(data_dir, "build", "--exclude-resource-type", "unit_test")

    return {name: build(name) for name in BROKEN_INPUTS}


@pytest.mark.parametrize("broken_input", sorted(BROKEN_INPUTS))
def test_broken_input_fails_its_data_test(broken_builds, broken_input):
    results = broken_builds[broken_input]
    failed = {name for name, status in failures(results).items() if status in ("fail", "error")}
    assert failed == {BROKEN_INPUTS[broken_input][1]}, failures(results)
    assert results["returncode"] != 0, "dbt build reports the failure"
    # the models downstream of the broken input are skipped, not built on bad data
    assert "skipped" in failures(results).values()


# --- the project itself ----------------------------------------------------------------------------------------
def test_sources_list_every_raw_table_and_column():
    """The `raw` source mirrors tables.py, so dagster-dbt maps each source onto its ingestion asset."""
    import yaml

    spec = yaml.safe_load((DBT_PROJECT / "models" / "staging" / "__sources.yml").read_text())
    (source,) = spec["sources"]
    assert (source["name"], source["schema"]) == ("raw", tables.SCHEMA)
    declared = {table["name"]: [column["name"] for column in table["columns"]] for table in source["tables"]}
    assert declared == {name: tables.columns(name) for name in tables.TABLES}
    assert all(column.get("description") for table in source["tables"] for column in table["columns"])


def test_dbt_parse_needs_no_environment(tmp_path):
    """Dagster parses the project at setup, before any data root exists."""
    env = {k: v for k, v in os.environ.items() if k not in ("EV_DATA_DIR", "EV_DUCKDB_MEMORY_LIMIT")}
    done = subprocess.run(
        [str(DBT), "parse", "--project-dir", str(DBT_PROJECT), "--profiles-dir", str(DBT_PROJECT),
         "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")],
        cwd=DBT_PROJECT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    models = {node["name"] for node in manifest["nodes"].values() if node["resource_type"] == "model"}
    assert {"int_status_intervals", "fct_charging_sessions", "mart_utilization_city_daily"} <= models
    assert {tuple(s["fqn"][-2:]) for s in manifest["sources"].values()} == {("raw", name) for name in tables.TABLES}
