"""The dbt project on hand-made raw tables: inferred sessions, day-by-day = full rebuild, data-quality tests.

One module-scoped warehouse of three UTC days (2022-01-10 .. 2022-01-12) with status polls every 10 minutes
for two cities, written through `ev_assets.lib.tables.ddl` like ingestion does. dbt runs as a subprocess of
the project venv with its own target/log folders, so it never touches `dbt_project/target` of a developer;
independent runs (on copies of the warehouse) run side by side to keep the module at about a minute.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from ev_assets.lib import tables

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT = REPO_ROOT / "dbt_project"
DBT = Path(sys.executable).with_name("dbt")

UTC = timezone.utc
POLL = timedelta(minutes=10)
DAYS = ("2022-01-10", "2022-01-11", "2022-01-12")
FIRST_POLL = datetime(2022, 1, 10, tzinfo=UTC)
END = datetime(2022, 1, 13, tzinfo=UTC)  # exclusive


def t(text: str) -> datetime:
    """'2022-01-10 08:00' as an aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- the hand-made fleet -------------------------------------------------------------------------------------
# bonn: station S1 with P1 (AC 22 kW: Type 2 + Schuko) and P2 (AC 22 kW); koeln: station S2 with P3 (DC 50 kW).
STATIONS = {"S1": "bonn", "S2": "koeln"}
POINTS = {"DE*BON*E0001*001": "S1", "DE*BON*E0001*002": "S1", "DE*KOE*E0002*001": "S2"}
P1, P2, P3 = POINTS
CONNECTORS = {  # connector -> (charging point, standard, power type, ampere, voltage, max kW)
    "C11": (P1, "IEC_62196_T2", "AC_3_PHASE", 32.0, 400.0, 22.0),
    "C12": (P1, "DOMESTIC_F", "AC_1_PHASE", 16.0, 230.0, 3.7),
    "C21": (P2, "IEC_62196_T2", "AC_3_PHASE", 32.0, 400.0, 22.0),
    "C31": (P3, "IEC_62196_T2_COMBO", "DC", 125.0, 400.0, 50.0),
}

# Per charging point: (first poll, last poll, status) runs; every other poll is AVAILABLE.
STATUS_RUNS = {
    P1: [
        ("2022-01-10 08:00", "2022-01-10 09:20", "CHARGING"),
        ("2022-01-10 12:00", "2022-01-10 14:00", "CHARGING"),  # split by bonn's poll gap 13:00-13:30
        ("2022-01-10 22:00", "2022-01-11 00:50", "CHARGING"),  # crosses midnight
        ("2022-01-11 09:30", "2022-01-11 10:50", "CHARGING"),  # a 30-minute gap (= the limit) does not split it
        ("2022-01-12 23:30", "2022-01-12 23:50", "CHARGING"),  # still charging at the end of the data
    ],
    P2: [
        ("2022-01-11 06:00", "2022-01-11 11:50", "OUTOFORDER"),
        ("2022-01-11 12:00", "2022-01-11 12:50", "INOPERATIVE"),  # the same failure goes on
        ("2022-01-11 23:50", "2022-01-12 00:00", "CHARGING"),  # crosses midnight
        ("2022-01-12 15:00", "2022-01-12 15:20", "BLOCKED"),
        ("2022-01-12 16:00", "2022-01-12 16:10", "RESERVED"),
    ],
    P3: [
        ("2022-01-10 23:40", "2022-01-11 00:20", "CHARGING"),  # crosses midnight
        ("2022-01-11 23:20", "2022-01-12 01:00", "CHARGING"),  # split by koeln's poll gap 00:00-00:30
        ("2022-01-12 03:00", "2022-01-12 03:50", "UNKNOWN"),
        ("2022-01-12 20:00", "2022-01-12 20:50", "INOPERATIVE"),
    ],
}

# City polls that failed: (first missing slot, last missing slot).
MISSED_POLLS = {
    "bonn": [
        ("2022-01-10 13:00", "2022-01-10 13:30"),  # 50 minutes between polls: longer than the limit
        ("2022-01-11 10:10", "2022-01-11 10:20"),  # 30 minutes between polls: not longer than the limit
    ],
    "koeln": [
        ("2022-01-12 00:00", "2022-01-12 00:30"),  # a gap right after midnight
        ("2022-01-12 23:00", "2022-01-12 23:50"),  # koeln stops answering before the end of the data
    ],
}

# Sessions the status polls imply: (charging point, start, end, duration in minutes, polls, open).
EXPECTED_SESSIONS = [
    (P1, "2022-01-10 08:00", "2022-01-10 09:30", 90, 9, False),
    (P1, "2022-01-10 12:00", "2022-01-10 13:00", 60, 6, False),
    (P1, "2022-01-10 13:40", "2022-01-10 14:10", 30, 3, False),
    (P1, "2022-01-10 22:00", "2022-01-11 01:00", 180, 18, False),
    (P1, "2022-01-11 09:30", "2022-01-11 11:00", 90, 7, False),
    (P1, "2022-01-12 23:30", "2022-01-13 00:00", 30, 3, True),
    (P2, "2022-01-11 23:50", "2022-01-12 00:10", 20, 2, False),
    (P3, "2022-01-10 23:40", "2022-01-11 00:30", 50, 5, False),
    (P3, "2022-01-11 23:20", "2022-01-12 00:00", 40, 4, False),
    (P3, "2022-01-12 00:40", "2022-01-12 01:10", 30, 3, False),
]


def _missed(city: str, slot: datetime) -> bool:
    return any(t(a) <= slot <= t(b) for a, b in MISSED_POLLS.get(city, []))


def _status(point: str, slot: datetime) -> str:
    for first, last, status in STATUS_RUNS.get(point, []):
        if t(first) <= slot <= t(last):
            return status
    return "AVAILABLE"


def status_rows() -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Charging-point status rows, connector status rows and the poll log, as ingestion writes them."""
    points, connectors, log = [], [], []
    slot = FIRST_POLL
    while slot < END:
        for city in ("bonn", "koeln"):
            ok = not _missed(city, slot)
            log.append((slot, city, slot if ok else None, ok, None if ok else "timeout", 1, 0, 0, f"{city}.json.gz"))
            if not ok:
                continue
            for point, station in POINTS.items():
                if STATIONS[station] != city:
                    continue
                status = _status(point, slot)
                sensor = "OCCUPIED" if status == "CHARGING" and point == P2 else None
                points.append((slot, slot, city, station, point, point[-3:], status, sensor))
                for connector, (cp, *_rest) in CONNECTORS.items():
                    if cp == point:
                        # the Schuko socket of P1 stays free while the Type 2 socket charges
                        connector_status = "AVAILABLE" if connector == "C12" else status
                        connectors.append((slot, slot, city, station, point, connector, connector_status))
        slot += POLL
    return points, connectors, log


def master_rows() -> dict[str, list[tuple]]:
    first, last = FIRST_POLL, END - POLL
    hotline_change = t("2022-01-11 12:00")  # S1 gets a new hotline: a second version
    stations = [
        ("S1", "bonn", "OBI Bonn-Nord", "Bornheimer Str. 166", "Bonn", "53119", "DE", 50.738455, 7.080825,
         "Stadtwerke Bonn", "+49800111", "OBI", False, True, '{"twentyfourseven": true}', "", "h1",
         first, hotline_change - POLL),
        ("S1", "bonn", "OBI Bonn-Nord", "Bornheimer Str. 166", "Bonn", "53119", "DE", 50.738455, 7.080825,
         "Stadtwerke Bonn", "+49800222", "OBI", False, True, '{"twentyfourseven": true}', "", "h2",
         hotline_change, last),
        ("S2", "koeln", "Rheinenergie Schnelllader", "Domstr. 1", "Köln", "50668", "DE", 50.94, 6.96,
         "RheinEnergie", "+49800333", "RheinEnergie", True, True, '{"twentyfourseven": true}', "", "h3",
         first, last),
    ]
    points = [
        (point, point[-3:], station, f"REF{i}", "", "four_wheeled", "RFID_READER,REMOTE_START_STOP_CAPABLE",
         "rechts", None, None, None, False, f"p{i}", first, last)
        for i, (point, station) in enumerate(POINTS.items())
    ]
    connectors = [
        (connector, cp, POINTS[cp], standard, "SOCKET", power_type, ampere, voltage, kw, None, f"c{connector}",
         first, last)
        for connector, (cp, standard, power_type, ampere, voltage, kw) in CONNECTORS.items()
    ]
    return {"chargingstations": stations, "chargingpoints": points, "connectors": connectors}


def session_source_rows() -> dict[str, list[tuple]]:
    return {
        "session_reports": [
            # local Oslo time (UTC+1 in January): 21:00 local = 20:00 UTC, runs past midnight
            ("1", "AdO3", "AdO3-4", "Private", None, datetime(2022, 1, 10, 21, 0), datetime(2022, 1, 11, 1, 0),
             12.0, 4.0, "Europe/Oslo", "reports.csv"),
            ("2", "AdO3", "AdO3-2", "Private", None, datetime(2022, 1, 12, 8, 30), datetime(2022, 1, 12, 9, 0),
             3.0, 0.5, "Europe/Oslo", "reports.csv"),
        ],
        "hourly_loads": [
            (datetime(2022, 1, 10, 21), datetime(2022, 1, 10, 22), "AdO3-4", "1", 3.6, 7.2, None, None, "loads.csv"),
            (datetime(2022, 1, 10, 22), datetime(2022, 1, 10, 23), "AdO3-4", None, None, None, None, None, "loads.csv"),
        ],
        "acn_sessions": [
            ("acn1", "jpl", "c1", "jpl-1", "s1", "u1", t("2022-01-11 15:10"), t("2022-01-11 19:00"),
             t("2022-01-11 17:10"), 14.0, 20.0, 230.0, "America/Los_Angeles", "acn.json"),
        ],
        "charging_events": [
            ("e1", "tx1", "EV-1", "1", "start", t("2022-01-12 10:00"), 0.0, 22.0, None, None, "events.csv"),
            ("e2", "tx1", "EV-1", "1", "progress", t("2022-01-12 10:30"), 5.5, 11.0, None, None, "events.csv"),
            ("e3", "tx1", "EV-1", "1", "complete", t("2022-01-12 11:00"), 10.0, 0.0, 4.2, "EUR", "events.csv"),
            ("e4", "tx2", "EV-1", "1", "start", t("2022-01-12 12:00"), 0.0, 11.0, None, None, "events.csv"),
            ("e5", "tx2", "EV-1", "1", "complete", t("2022-01-12 12:30"), 5.0, 0.0, None, None, "events.csv"),
        ],
    }


def other_source_rows() -> dict[str, list[tuple]]:
    return {
        "ocm_stations": [
            (1001, "uuid-1", "OBI Bonn-Nord", "Bornheimer Str. 166", "Bonn", "NRW", "53119", "DE", 50.7385, 7.0808,
             1, "Stadtwerke Bonn", 1, "Public", 50, "Operational", 2, 22.0, 2, t("2021-12-01 00:00"),
             t("2020-01-01 00:00"), "ocm.json"),
        ],
        "ocm_connections": [(1001, 5001, 25, "Type 2 (Socket Only)", 20, "AC (Three-Phase)", 2, 50, 22.0, 2)],
        "osm_pois": [
            ("node/1", "bonn", "supermarket", "shop", "supermarket", "REWE", 7.081, 50.739,
             "POINT (7.081 50.739)"),
            ("node/2", "koeln", "fast_food", "amenity", "fast_food", "Imbiss", 6.961, 50.941,
             "POINT (6.961 50.941)"),
        ],
        "poi_station_map": [("S1", "node/1", "supermarket", 85.5, 1500.0), ("S2", "node/2", "fast_food", 120.0, 1500.0)],
        "quarantine": [("chargecloud", "2022-01-10T00:00", "connector", "C99", "missing id", "{}", "bonn.json.gz")],
        "vehicle_telemetry": [("CAR-1", "2022-01-10T08:00:00Z", 55.0, True, '{"odometer_km": 1200}', "x.csv.gz")],
    }


def write_raw_warehouse(path: Path) -> None:
    """Create every raw table from its contract and fill it with the hand-made rows."""
    points, connectors, log = status_rows()
    rows = {
        "status_chargingpoints": points,
        "status_connectors": connectors,
        "chargecloud_poll_log": log,
        **master_rows(),
        **session_source_rows(),
        **other_source_rows(),
    }
    assert set(rows) == set(tables.TABLES), "every raw table gets rows"
    with duckdb.connect(str(path)) as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {tables.SCHEMA}")
        for name in tables.TABLES:
            con.execute(tables.ddl(name))
            placeholders = ", ".join("?" for _ in tables.columns(name))
            con.executemany(f"INSERT INTO {tables.SCHEMA}.{name} VALUES ({placeholders})", rows[name])


# --- running dbt ---------------------------------------------------------------------------------------------
def run_dbt(data_dir: Path, *args: str, window: tuple[str, str] | None = None) -> dict:
    """Run the project's dbt on the warehouse in `data_dir`; return run_results.json (raises on dbt errors)."""
    target = data_dir / "dbt_target"
    command = [
        str(DBT), *args,
        "--project-dir", str(DBT_PROJECT), "--profiles-dir", str(DBT_PROJECT),
        "--target-path", str(target), "--log-path", str(data_dir / "dbt_logs"),
    ]
    if window:
        command += ["--vars", json.dumps({"min_date": window[0], "max_date": window[1]})]
    env = {**os.environ, "EV_DATA_DIR": str(data_dir), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    results_file = target / "run_results.json"
    results_file.unlink(missing_ok=True)  # never read the results of the run before
    done = subprocess.run(command, cwd=DBT_PROJECT, env=env, capture_output=True, text=True, timeout=600)
    if not results_file.exists():
        raise AssertionError(f"dbt {' '.join(args)} wrote no results:\n{done.stdout[-5000:]}\n{done.stderr[-3000:]}")
    results = json.loads(results_file.read_text())
    results["returncode"] = done.returncode
    results["stdout"] = done.stdout
    return results


def node_name(unique_id: str) -> str:
    """'test.ev_assets.<name>.<hash>' / 'model.ev_assets.<name>' / 'unit_test.ev_assets.<model>.<name>' -> name."""
    parts = unique_id.split(".")
    return parts[-1] if parts[0] == "unit_test" else parts[2]


def failures(results: dict) -> dict[str, str]:
    """Nodes that did not succeed: name -> status (fail, error, skipped, warn)."""
    return {
        node_name(r["unique_id"]): r["status"] for r in results["results"] if r["status"] not in ("success", "pass")
    }


def query(data_dir: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(sql).fetchall()


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
def full_build(tmp_path_factory, raw_warehouse) -> Path:
    """`dbt build` of the whole project without a window (process everything): every model and test."""
    data_dir = fresh_data_dir(tmp_path_factory, raw_warehouse, "full")
    results = run_dbt(data_dir, "build")
    assert results["returncode"] == 0 and not failures(results), (failures(results), results["stdout"][-5000:])
    return data_dir


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
    with ThreadPoolExecutor(max_workers=len(orders)) as pool:
        futures = {
            name: pool.submit(run_days, fresh_data_dir(tmp_path_factory, raw_warehouse, name), days)
            for name, days in orders.items()
        }
        return {name: future.result() for name, future in futures.items()}


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
    # 21:00-01:00 Oslo = 20:00-00:00 UTC: all 12 kWh on the plug-in day, four active hours
    assert daily == [("user", "AdO3-4", "2022-01-10", 1, 12.0, 4)]
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
    """`dbt build` on a copy of the warehouse with one broken input each, side by side."""

    def build(name: str) -> dict:
        data_dir = fresh_data_dir(tmp_path_factory, raw_warehouse, name)
        with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
            con.execute(BROKEN_INPUTS[name][0])
        return run_dbt(data_dir, "build")

    with ThreadPoolExecutor(max_workers=len(BROKEN_INPUTS)) as pool:
        return dict(zip(BROKEN_INPUTS, pool.map(build, BROKEN_INPUTS)))


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
