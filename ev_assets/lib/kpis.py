"""KPIs over the marts snapshot: one function per KPI, taking a DuckDB connection, returning plain dicts / lists.

Ranges `[start, end]` are inclusive, either end optional (None: open). Callers check a range with `check_range`
first. Session energy counts the site's own local days (the marts' `time_zone`: Europe/Oslo for the Norwegian
reports; dbt docs block `energy_attribution`); utilization and reliability count UTC days. Times are UTC instants.

Session KPIs come from the Norwegian residential reports (`source_name = 'norway'` of `marts.mart_energy_daily`),
per user, per garage, or (without either) summed over all users (= the whole dataset: every session has one user).
Daily totals count a session's whole energy in the day it starts; hourly figures (peak hour, active hours) come
from spreading a session's energy evenly over its hours (dbt docs block `energy_attribution`). Averages are over
calendar days: every day between the first and the last day of the entity's data counts, idle days as 0; a range
is clipped to that span. The marts keep hourly figures per user and garage only, so the peak hour and active hours
need a user or a garage.

Utilization and reliability are charging-point time shares from the chargecloud polls: per station from
`marts.mart_utilization_station_daily`, per city / operator added up from the same station days before dividing
(exactly as dbt's `utilization_rollup` builds `mart_utilization_city_daily` / `_operator_daily`), and reliability
per city / operator from `marts.mart_reliability_daily`; per station from the station days and the failures of
`marts.fct_out_of_order_intervals`, by the rules of `mart_reliability_daily`.

An operator is its `operator_key` (`marts.dim_operator`, dbt docs block `operator_key`): every spelling of its
name counts as one operator, shown under its display name. An operator is asked for by its key or by any of its
spellings (`operator_key`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timezone
from typing import Any

import duckdb

NORWAY = "norway"
HOURLY_LOADS = "staging.stg_sessions__hourly_loads"  # see snapshot.EXTRA_RELATIONS: no mart holds them yet

Row = dict[str, Any]


class UnknownEntity(LookupError):
    """The station, city, operator, user or garage is not in the marts at all."""


class KpiUnavailable(RuntimeError):
    """The snapshot lacks a relation the KPI reads (published by an older warehouse, or the source was empty)."""


class InvalidRequest(ValueError):
    """The request cannot be answered as asked (inverted range, both a user and a garage, ...)."""


class ScopeRequired(InvalidRequest):
    """The KPI exists per user or garage only."""


def check_range(start: date | None, end: date | None) -> None:
    """Raise InvalidRequest for an inverted range."""
    if start is not None and end is not None and start > end:
        raise InvalidRequest(f"start_date {start.isoformat()} is after end_date {end.isoformat()}")


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> list[Row]:
    try:
        cursor = con.execute(sql, params)
    except duckdb.CatalogException as error:
        raise KpiUnavailable(
            f"the marts snapshot lacks what this KPI reads ({str(error).splitlines()[0]}): publish a new one by "
            "running the warehouse job"
        ) from None
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, values)) for values in cursor.fetchall()]


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> Row:
    return _rows(con, sql, params)[0]


def _in_range(column: str) -> str:
    return (
        f"(CAST($start AS DATE) IS NULL OR {column} >= CAST($start AS DATE)) "
        f"AND (CAST($end AS DATE) IS NULL OR {column} <= CAST($end AS DATE))"
    )


def _exists(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> bool:
    return bool(_one(con, f"SELECT EXISTS ({sql}) AS found", params)["found"])


# --- session data (Norwegian reports): users and garages ------------------------------------------------------
@dataclass(frozen=True)
class SessionScope:
    """One user, one garage, or all users (`entity_id` None)."""

    entity_type: str  # 'user' or 'garage'
    entity_id: str | None

    @property
    def user_id(self) -> str | None:
        return self.entity_id if self.entity_type == "user" else None

    @property
    def garage_id(self) -> str | None:
        return self.entity_id if self.entity_type == "garage" else None

    def as_dict(self) -> Row:
        return {"user_id": self.user_id, "garage_id": self.garage_id}


def session_scope(con: duckdb.DuckDBPyConnection, user_id: str | None = None,
                  garage_id: str | None = None) -> SessionScope:
    """The scope of a session KPI; UnknownEntity for a user / garage without any data, InvalidRequest for both."""
    if user_id is not None and garage_id is not None:
        raise InvalidRequest("give user_id or garage_id, not both")
    if user_id is None and garage_id is None:
        return SessionScope("user", None)
    entity_type, entity_id = ("user", user_id) if user_id is not None else ("garage", garage_id)
    if not _exists(
        con,
        "SELECT 1 FROM marts.mart_energy_summary WHERE source_name = $source AND entity_type = $type "
        "AND entity_id = $id",
        {"source": NORWAY, "type": entity_type, "id": entity_id},
    ):
        raise UnknownEntity(f"unknown {entity_type} {entity_id!r}: no session of it in the marts")
    return SessionScope(entity_type, entity_id)


def _entities(con, entity_type: str, start: date | None, end: date | None) -> list[Row]:
    return _rows(
        con,
        f"""
        SELECT entity_id, min(day) AS first_day, max(day) AS last_day, count(*) AS n_days,
               CAST(sum(sessions_started) AS BIGINT) AS sessions, sum(energy_kwh) AS energy_kwh
        FROM marts.mart_energy_daily
        WHERE source_name = $source AND entity_type = $type AND {_in_range('day')}
        GROUP BY entity_id
        ORDER BY entity_id
        """,
        {"source": NORWAY, "type": entity_type, "start": start, "end": end},
    )


def users(con, start: date | None = None, end: date | None = None) -> list[Row]:
    """Users with data in the range: their first / last day in it, calendar days, sessions and energy there."""
    return [{"user_id": r.pop("entity_id"), **r} for r in _entities(con, "user", start, end)]


def garages(con, start: date | None = None, end: date | None = None) -> list[Row]:
    """Garages with data in the range, like `users`."""
    return [{"garage_id": r.pop("entity_id"), **r} for r in _entities(con, "garage", start, end)]


def _daily_series_sql(scope: SessionScope) -> str:
    """Every calendar day of the scope's span with sessions, energy, cumulative energy and 7-day rolling mean.

    Cumulative and rolling figures run over the whole span (a range only selects days), as in mart_energy_daily.
    """
    entity = "" if scope.entity_id is None else "AND entity_id = $id"
    return f"""
        WITH per_day AS (
            SELECT day, sum(sessions_started) AS sessions, sum(energy_kwh) AS energy_kwh
            FROM marts.mart_energy_daily
            WHERE source_name = $source AND entity_type = $type {entity}
            GROUP BY day
        ),
        calendar AS (
            SELECT CAST(unnest(generate_series(first_day, last_day, INTERVAL 1 DAY)) AS DATE) AS day
            FROM (SELECT min(day) AS first_day, max(day) AS last_day FROM per_day)
        ),
        series AS (
            SELECT calendar.day,
                   CAST(coalesce(per_day.sessions, 0) AS BIGINT) AS sessions,
                   CAST(coalesce(per_day.energy_kwh, 0) AS DOUBLE) AS energy_kwh
            FROM calendar LEFT JOIN per_day USING (day)
        )
        SELECT day, sessions, energy_kwh,
               sum(energy_kwh) OVER (ORDER BY day ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
                   AS energy_kwh_cumulative,
               avg(energy_kwh) OVER (ORDER BY day ROWS BETWEEN 6 PRECEDING AND CURRENT ROW)
                   AS energy_kwh_rolling_7d_avg
        FROM series
    """


def _scope_params(scope: SessionScope, start: date | None, end: date | None) -> dict[str, Any]:
    params: dict[str, Any] = {"source": NORWAY, "type": scope.entity_type, "start": start, "end": end}
    if scope.entity_id is not None:
        params["id"] = scope.entity_id
    return params


def energy_daily(con, scope: SessionScope, start: date | None = None, end: date | None = None) -> list[Row]:
    """Daily energy of the scope in the range, one row per calendar day of its data (idle days 0)."""
    return _rows(
        con,
        f"SELECT * FROM ({_daily_series_sql(scope)}) WHERE {_in_range('day')} ORDER BY day",
        _scope_params(scope, start, end),
    )


def _range_totals(con, scope: SessionScope, start: date | None, end: date | None) -> Row:
    row = _one(
        con,
        f"""
        SELECT min(day) AS from_day, max(day) AS to_day, count(*) AS n_days,
               CAST(coalesce(sum(sessions), 0) AS BIGINT) AS sessions,
               CAST(coalesce(sum(energy_kwh), 0) AS DOUBLE) AS energy_kwh
        FROM ({_daily_series_sql(scope)}) WHERE {_in_range('day')}
        """,
        _scope_params(scope, start, end),
    )
    return {**scope.as_dict(), **row}


def energy_total(con, scope: SessionScope, start: date | None = None, end: date | None = None) -> Row:
    """Total energy and sessions over the calendar days of the range within the scope's data."""
    return _range_totals(con, scope, start, end)


def energy_daily_average(con, scope: SessionScope, start: date | None = None, end: date | None = None) -> Row:
    """Total energy / calendar days of the range within the scope's data (idle days count); None without days."""
    row = _range_totals(con, scope, start, end)
    row["average_kwh"] = row["energy_kwh"] / row["n_days"] if row["n_days"] else None
    return row


def energy_last_7_days(con, scope: SessionScope, start: date | None = None, end: date | None = None) -> Row:
    """Mean daily energy of the 7 calendar days ending at the latest day with data (on or before `end`).

    The window is clipped to the range (`start`) and to the first day of the data, so it may hold fewer days.
    """
    row = _one(
        con,
        f"""
        WITH selected AS (SELECT * FROM ({_daily_series_sql(scope)}) WHERE {_in_range('day')}),
        bounds AS (
            SELECT greatest(CAST(max(day) - INTERVAL 6 DAY AS DATE), min(day)) AS from_day, max(day) AS to_day
            FROM selected
        )
        SELECT any_value(bounds.from_day) AS from_day, any_value(bounds.to_day) AS to_day,
               count(selected.day) AS n_days,
               CAST(coalesce(sum(selected.sessions), 0) AS BIGINT) AS sessions,
               CAST(coalesce(sum(selected.energy_kwh), 0) AS DOUBLE) AS energy_kwh,
               avg(selected.energy_kwh) AS average_kwh
        FROM bounds LEFT JOIN selected ON selected.day BETWEEN bounds.from_day AND bounds.to_day
        """,
        _scope_params(scope, start, end),
    )
    return {**scope.as_dict(), **row}


def energy_peak_day(con, scope: SessionScope, start: date | None = None, end: date | None = None) -> Row:
    """The day of the range with the highest daily total (earliest on a tie); None fields without data."""
    rows = _rows(
        con,
        f"""
        SELECT day, energy_kwh, sessions FROM ({_daily_series_sql(scope)}) WHERE {_in_range('day')}
        ORDER BY energy_kwh DESC, day LIMIT 1
        """,
        _scope_params(scope, start, end),
    )
    return {**scope.as_dict(), **(rows[0] if rows else {"day": None, "energy_kwh": None, "sessions": None})}


def _require_entity(scope: SessionScope, what: str) -> None:
    if scope.entity_id is None:
        raise ScopeRequired(
            f"{what} needs user_id or garage_id: the marts keep hourly energy per user and per garage "
            "(mart_energy_daily), not summed over all users"
        )


def _entity_days(con, scope: SessionScope, start, end, columns: str, extra: str = "", order: str = "day") -> list[Row]:
    return _rows(
        con,
        f"""
        SELECT {columns} FROM marts.mart_energy_daily
        WHERE source_name = $source AND entity_type = $type AND entity_id = $id AND {_in_range('day')} {extra}
        ORDER BY {order}
        """,
        _scope_params(scope, start, end),
    )


def energy_peak_hour(con, scope: SessionScope, start: date | None = None, end: date | None = None) -> Row:
    """The hour of the range (its start, UTC) with the most (spread) energy, earliest on a tie; None fields without
    one. The range selects hours by their local day."""
    _require_entity(scope, "the peak hour")
    rows = _entity_days(
        con, scope, start, end, "peak_hour_start AS hour_start, peak_hour_kwh AS energy_kwh",
        extra="AND peak_hour_start IS NOT NULL", order="peak_hour_kwh DESC, peak_hour_start LIMIT 1",
    )
    return {**scope.as_dict(), **(rows[0] if rows else {"hour_start": None, "energy_kwh": None})}


def active_hours_daily(con, scope: SessionScope, start: date | None = None, end: date | None = None) -> list[Row]:
    """Per local calendar day of the range: local clock hours in which the user / garage drew energy."""
    _require_entity(scope, "active hours")
    return _entity_days(con, scope, start, end, "day, active_charging_hours")


def active_hours_average(con, scope: SessionScope, start: date | None = None, end: date | None = None) -> Row:
    """Mean active charging hours per calendar day of the range within the data (idle days count as 0)."""
    _require_entity(scope, "active hours")
    row = _one(
        con,
        f"""
        SELECT min(day) AS from_day, max(day) AS to_day, count(*) AS n_days,
               CAST(avg(active_charging_hours) AS DOUBLE) AS average_active_hours
        FROM marts.mart_energy_daily
        WHERE source_name = $source AND entity_type = $type AND entity_id = $id AND {_in_range('day')}
        """,
        _scope_params(scope, start, end),
    )
    return {**scope.as_dict(), **row}


def hourly_loads(con, user_id: str, start: date | None = None, end: date | None = None) -> list[Row]:
    """The user's hourly loads of the Norwegian dataset (synthetic and flexible loads at 3.6 / 7.2 kW), per hour.

    One row per local hour with a session of the user (sessions sharing an hour are added up); the range selects
    by the local (Oslo) day of the hour, as the other energy KPIs do.
    """
    known = _exists(
        con,
        "SELECT 1 FROM marts.mart_energy_summary WHERE source_name = $source AND entity_type = 'user' "
        f"AND entity_id = $user UNION ALL SELECT 1 FROM {HOURLY_LOADS} WHERE user_id = $user",
        {"source": NORWAY, "user": user_id},
    )
    if not known:
        raise UnknownEntity(f"unknown user {user_id!r}: no session of it in the marts")
    rows = _rows(
        con,
        f"""
        SELECT hour_start_at AS hour_start, hour_start_local,
               array_agg(DISTINCT session_id ORDER BY session_id) AS session_ids,
               sum(synthetic_3_6kw_kwh) AS synthetic_3_6kw_kwh, sum(synthetic_7_2kw_kwh) AS synthetic_7_2kw_kwh,
               sum(flex_3_6kw_kwh) AS flex_3_6kw_kwh, sum(flex_7_2kw_kwh) AS flex_7_2kw_kwh
        FROM {HOURLY_LOADS}
        WHERE user_id = $user AND {_in_range('CAST(hour_start_local AS DATE)')}
        GROUP BY hour_start_local, hour_start_at
        ORDER BY hour_start_local, hour_start_at
        """,
        {"user": user_id, "start": start, "end": end},
    )
    for row in rows:  # the wall time with the offset the dataset's hour had (+01:00 or +02:00 in Oslo)
        offset = row["hour_start_local"] - row["hour_start"].replace(tzinfo=None)
        row["hour_start_local"] = row["hour_start_local"].replace(tzinfo=timezone(offset))
    return rows


# --- utilization and reliability (chargecloud polls): stations, cities, operators -----------------------------
GROUPS = {"station": "station_id", "city": "city_slug", "operator": "operator_key"}

_OPERATOR_NAMES = """
    SELECT operator_key, 0 AS rank FROM marts.dim_operator WHERE operator_key = $value
    UNION ALL
    SELECT operator_key, 1 AS rank
    FROM (SELECT operator_key, unnest(list_append(spellings, operator_name)) AS spelling FROM marts.dim_operator)
    WHERE lower(trim(spelling)) = lower(trim($value))
"""


def operator_key(con, value: str) -> str:
    """The operator_key of the operator `value` names: the key itself, or any spelling of the operator in
    `marts.dim_operator` (compared without leading / trailing spaces and case, which the rule ignores anyway, so
    at most one operator matches). UnknownEntity when it names none."""
    rows = _rows(con, f"SELECT operator_key FROM ({_OPERATOR_NAMES}) ORDER BY rank, operator_key LIMIT 1",
                 {"value": value})
    if not rows:
        raise UnknownEntity(
            f"unknown operator {value!r}: neither an operator_key nor a spelling of an operator in the marts "
            "(see /kpi/utilization/operators)"
        )
    return rows[0]["operator_key"]


def _require_operators(con) -> None:
    """KpiUnavailable for a snapshot from before the operator dimension (no `marts.dim_operator`)."""
    _rows(con, "SELECT 1 FROM marts.dim_operator LIMIT 0", {})


def check_known(con, kind: str, value: str) -> None:
    """UnknownEntity when the station / city / operator appears nowhere in the marts."""
    if kind == "operator":
        operator_key(con, value)
        return
    column = GROUPS[kind]
    sources = ["marts.dim_station", "marts.mart_utilization_station_daily"]
    if kind != "station":
        sources.append("marts.mart_reliability_daily")
    union = " UNION ALL ".join(f"SELECT 1 FROM {s} WHERE {column} = $value" for s in sources)
    if not _exists(con, union, {"value": value}):
        raise UnknownEntity(f"unknown {kind} {value!r}: not in the marts")


def _days_and_points(kind: str, daily: bool) -> str:
    """Day span of a range row; charging points of a day (a station's over the range: the most in a day)."""
    if daily:
        return "CAST(sum(n_charging_points) AS INTEGER) AS n_charging_points, "
    span = "count(DISTINCT day) AS n_days, min(day) AS first_day, max(day) AS last_day, "
    return span + ("CAST(max(n_charging_points) AS INTEGER) AS n_charging_points, " if kind == "station" else "")


# Station days with the operator's display name (dim_operator) in place of the station's own spelling.
_OPERATOR_STATION_DAYS = """
    (SELECT station_days.* EXCLUDE (operator_name),
            coalesce(operators.operator_name, station_days.operator_key) AS operator_name
     FROM marts.mart_utilization_station_daily AS station_days
     LEFT JOIN marts.dim_operator AS operators USING (operator_key))
"""


def _attributes(kind: str) -> str:
    """What a row shows beside its key: a station its city and operator, an operator its display name."""
    if kind == "station":
        return "arg_max(city_slug, day) AS city_slug, arg_max(operator_name, day) AS operator_name, "
    return "any_value(operator_name) AS operator_name, " if kind == "operator" else ""


def _utilization(con, kind: str, start, end, value: str | None, daily: bool) -> list[Row]:
    key = GROUPS[kind]
    keys = f"{key}, day" if daily else key
    attributes = _attributes(kind)
    stations = "" if kind == "station" else "count(DISTINCT station_id) AS n_stations, "
    source = _OPERATOR_STATION_DAYS if kind == "operator" else "marts.mart_utilization_station_daily"
    return _rows(
        con,
        f"""
        SELECT {keys}, {attributes}{_days_and_points(kind, daily)}{stations}
               sum(observed_hours) AS observed_hours,
               sum(n_polls_charging) / sum(n_polls) AS share_charging,
               sum(n_polls_occupied) / sum(n_polls) AS share_occupied,
               sum(n_polls_available) / sum(n_polls) AS share_available,
               sum(n_polls_out_of_order) / sum(n_polls) AS share_out_of_order,
               sum(n_polls_unknown) / sum(n_polls) AS share_unknown,
               CAST(sum(sessions) AS BIGINT) AS sessions,
               sum(session_minutes) / nullif(sum(sessions), 0) AS mean_session_minutes,
               sum(energy_kwh_lower) AS energy_kwh_lower,
               sum(energy_kwh_upper) AS energy_kwh_upper
        FROM {source}
        WHERE {_in_range('day')} AND (CAST($value AS VARCHAR) IS NULL OR {key} = $value)
        GROUP BY {keys}
        ORDER BY {keys}
        """,
        {"start": start, "end": end, "value": value},
    )


def _group_value(con, kind: str, value: str) -> str:
    """The value to filter the group column by: an operator's key for any of its spellings (UnknownEntity when
    the station / city / operator is not in the marts)."""
    if kind == "operator":
        return operator_key(con, value)
    check_known(con, kind, value)
    return value


def utilization_list(con, kind: str, start: date | None = None, end: date | None = None) -> list[Row]:
    """Per station / city / operator over the range: shares of charging-point time, sessions, energy bounds."""
    if kind == "operator":
        _require_operators(con)
    return _utilization(con, kind, start, end, None, daily=False)


def utilization_daily(con, kind: str, value: str, start: date | None = None, end: date | None = None) -> list[Row]:
    """One station / city / operator per UTC day of the range (UnknownEntity when it is not in the marts); an
    operator by its key or any of its spellings."""
    return _utilization(con, kind, start, end, _group_value(con, kind, value), daily=True)


_STATION_RELIABILITY = """
    WITH station_days AS (
        SELECT day, station_id, city_slug, operator_name, n_charging_points, n_polls, observed_hours,
               n_polls_unknown, n_polls_out_of_order
        FROM marts.mart_utilization_station_daily
    ),
    failures AS (
        SELECT interval_date AS day, station_id, count(*) AS failures
        FROM marts.fct_out_of_order_intervals
        WHERE level = 'charging_point' AND is_failure_start
        GROUP BY 1, 2
    )
    SELECT station_days.day, station_days.station_id, city_slug, operator_name, n_charging_points,
           observed_hours,
           -- hours from poll counts, each poll standing for observed_hours / n_polls
           (n_polls - n_polls_unknown) * observed_hours / n_polls AS known_status_hours,
           n_polls_out_of_order * observed_hours / n_polls AS out_of_order_hours,
           (n_polls - n_polls_unknown - n_polls_out_of_order) * observed_hours / n_polls AS in_service_hours,
           coalesce(failures.failures, 0) AS failures
    FROM station_days
    LEFT JOIN failures ON failures.day = station_days.day AND failures.station_id = station_days.station_id
"""

_RELIABILITY_DAYS = """
    SELECT day, city_slug, operator_name, n_charging_points, observed_hours, known_status_hours,
           out_of_order_hours, in_service_hours, failures
    FROM marts.mart_reliability_daily
"""

# the mart's operator_name is the display name already (one per operator_key)
_OPERATOR_RELIABILITY_DAYS = """
    SELECT day, operator_key, operator_name, n_charging_points, observed_hours, known_status_hours,
           out_of_order_hours, in_service_hours, failures
    FROM marts.mart_reliability_daily
"""
_RELIABILITY_SOURCES = {"station": _STATION_RELIABILITY, "city": _RELIABILITY_DAYS,
                        "operator": _OPERATOR_RELIABILITY_DAYS}


def _reliability(con, kind: str, start, end, value: str | None, daily: bool) -> list[Row]:
    key = GROUPS[kind]
    keys = f"{key}, day" if daily else key
    source = _RELIABILITY_SOURCES[kind]
    attributes = _attributes(kind)
    return _rows(
        con,
        f"""
        SELECT {keys}, {attributes}{_days_and_points(kind, daily)}
               sum(observed_hours) AS observed_hours,
               sum(known_status_hours) AS known_status_hours,
               sum(out_of_order_hours) AS out_of_order_hours,
               sum(in_service_hours) AS in_service_hours,
               -- summed hours can overshoot 100 % by a rounding error
               least(100.0, 100.0 * sum(in_service_hours) / nullif(sum(known_status_hours), 0)) AS availability_pct,
               CAST(sum(failures) AS BIGINT) AS failures,
               sum(in_service_hours) / nullif(sum(failures), 0) AS mtbf_hours
        FROM ({source})
        WHERE {_in_range('day')} AND (CAST($value AS VARCHAR) IS NULL OR {key} = $value)
        GROUP BY {keys}
        ORDER BY {keys}
        """,
        {"start": start, "end": end, "value": value},
    )


def reliability_list(con, kind: str, start: date | None = None, end: date | None = None) -> list[Row]:
    """Per station / city / operator over the range: availability, out-of-order hours, failures, MTBF."""
    if kind == "operator":
        _require_operators(con)
    return _reliability(con, kind, start, end, None, daily=False)


def reliability_daily(con, kind: str, value: str, start: date | None = None, end: date | None = None) -> list[Row]:
    """One station / city / operator per UTC day of the range (UnknownEntity when it is not in the marts); an
    operator by its key or any of its spellings."""
    return _reliability(con, kind, start, end, _group_value(con, kind, value), daily=True)
