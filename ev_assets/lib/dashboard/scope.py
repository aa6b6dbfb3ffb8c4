"""What the marts snapshot holds (`coverage`), the period filter (`Period`, `period_of`), the city / operator
filters of the current stations (`current_stations_sql`), and the query helpers every dashboard reader uses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import duckdb
import pandas as pd

MART_TABLES = {
    "stations": "marts.dim_station",
    "status": "marts.fct_charging_point_status",
    "station_days": "marts.mart_utilization_station_daily",
    "station_hours": "marts.mart_utilization_station_hourly",
    "reliability": "marts.mart_reliability_daily",
    "sessions": "marts.fct_charging_sessions",
    "energy": "marts.mart_energy_daily",
}


# --- what the snapshot holds -------------------------------------------------------------------------------------
def relations(con: duckdb.DuckDBPyConnection) -> set[str]:
    """`schema.table` of every relation in the snapshot."""
    return {f"{s}.{t}" for s, t in con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables").fetchall()}


def _has_rows(con, relation: str) -> bool:
    return bool(con.execute(f"SELECT EXISTS (SELECT 1 FROM {relation})").fetchone()[0])


def coverage(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The span of the snapshot and its choices: first / last UTC day of the station days (else of the polls), the
    latest poll, current cities, current operators (`{"value": what the operator filter takes, "label": its
    name}`), and which marts hold rows (`present`: key of MART_TABLES -> bool)."""
    found = relations(con)
    present = {key: table in found and _has_rows(con, table) for key, table in MART_TABLES.items()}
    first = last = latest_poll = None
    if present["station_days"]:
        first, last = con.execute("SELECT min(day), max(day) FROM marts.mart_utilization_station_daily").fetchone()
    if present["status"]:
        latest_poll, first_poll = con.execute(
            "SELECT max(polled_at), min(poll_date) FROM marts.fct_charging_point_status").fetchone()
        if last is None:
            first, last = first_poll, latest_poll.date()
    cities: list[str] = []
    operators: list[str] = []
    if present["stations"]:
        cities = [r[0] for r in con.execute(
            "SELECT DISTINCT city_slug FROM marts.dim_station WHERE is_current AND city_slug IS NOT NULL "
            "ORDER BY 1").fetchall()]
        operators = [{"value": r[0], "label": r[1]} for r in con.execute(
            f"SELECT DISTINCT operator, operator_name FROM ({current_stations_sql(con)}) "
            "WHERE operator IS NOT NULL ORDER BY operator_name, operator").fetchall()]
    return {"first_day": first, "last_day": last, "latest_poll": latest_poll, "cities": cities,
            "operators": operators, "present": present}


# --- the period filter -------------------------------------------------------------------------------------------
PERIODS = {"Last 7 days": 7, "Last 30 days": 30, "Last 365 days": 365, "All data": None}


@dataclass(frozen=True)
class Period:
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def label(self) -> str:
        return f"{self.start:%d %b %Y} – {self.end:%d %b %Y}"


def period_of(preset: str, first_day: date | None, last_day: date | None,
              custom: tuple[date, date] | None = None) -> Period | None:
    """The days a preset means for a snapshot whose data ends on `last_day` ("last 7 days" = the 7 days up to the
    latest day with data, so an old snapshot still shows something); None without data."""
    if last_day is None or first_day is None:
        return None
    if preset == "Custom" and custom:
        start, end = sorted(custom)
        return Period(start, end)
    days = PERIODS.get(preset, 7)
    start = first_day if days is None else max(first_day, last_day - timedelta(days=days - 1))
    return Period(start, last_day)


def _columns(con, relation: str) -> set[str]:
    schema, table = relation.split(".", 1)
    return {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
        [schema, table]).fetchall()}


def current_stations_sql(con: duckdb.DuckDBPyConnection) -> str:
    """SQL of the current stations with `operator` (what the operator filter compares: the operator_key of
    `marts.dim_operator`, which counts every spelling of an operator once, or the station's own operator_name in
    a snapshot from before that dimension) and `operator_name` (the operator's display name)."""
    if "marts.dim_operator" in relations(con) and "operator_key" in _columns(con, "marts.dim_station"):
        return """
            SELECT stations.* EXCLUDE (operator_name), stations.operator_key AS operator,
                   coalesce(operators.operator_name, stations.operator_name) AS operator_name
            FROM marts.dim_station AS stations
            LEFT JOIN marts.dim_operator AS operators USING (operator_key)
            WHERE stations.is_current
        """
    return "SELECT *, operator_name AS operator FROM marts.dim_station WHERE is_current"


def _filters(city: str | None, operator: str | None) -> str:
    """Conditions on `current_stations_sql` columns."""
    parts = []
    if city:
        parts.append("city_slug = $city")
    if operator:
        parts.append("operator = $operator")
    return " AND ".join(parts) or "TRUE"


def _station_scope(con, city: str | None, operator: str | None) -> str:
    """A condition on `station_id` selecting the current stations of the filters."""
    if not city and not operator:
        return "TRUE"
    return f"station_id IN (SELECT station_id FROM ({current_stations_sql(con)}) WHERE {_filters(city, operator)})"


def _params(sql: str, **values) -> dict[str, Any]:
    """The named parameters `sql` uses (DuckDB rejects unused ones)."""
    return {k: v for k, v in values.items() if f"${k}" in sql}


def _df(con, sql: str, **values) -> pd.DataFrame:
    return con.execute(sql, _params(sql, **values)).df()
