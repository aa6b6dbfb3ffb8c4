"""Session energy KPIs of the Norwegian residential reports (`source_name = 'norway'` of `marts.mart_energy_daily`),
per user, per garage, or (without either) summed over all users (= the whole dataset: every session has one user).
Daily totals count a session's whole energy in the day it starts; hourly figures (peak hour, active hours) come
from spreading a session's energy evenly over its hours (dbt docs block `energy_attribution`). Averages are over
calendar days: every day between the first and the last day of the entity's data counts, idle days as 0; a range
is clipped to that span. The marts keep hourly figures per user and garage only, so the peak hour and active hours
need a user or a garage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timezone
from typing import Any

import duckdb

from ev_assets.lib.kpis.common import InvalidRequest, Row, ScopeRequired, UnknownEntity, _exists, _in_range, _one, _rows

NORWAY = "norway"
HOURLY_LOADS = "staging.stg_sessions__hourly_loads"  # see snapshot.EXTRA_RELATIONS: no mart holds them yet


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
