"""A station's page: its master data and opening hours, equipment, status timeline, inferred sessions, occupied share
per hour of the week (in local time, `LOCAL_TZ`, the way people think of "Monday morning") and nearby POIs. It
reads marts only (dimensions, hourly utilization, sessions, and the status facts of a bounded window), never the
raw polls, so its cost does not grow with the length of the history."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import duckdb
import pandas as pd

from ev_assets.lib import vocabulary
from ev_assets.lib.dashboard.network import CATEGORY_OF, UNKNOWN
from ev_assets.lib.dashboard.scope import _df, _filters, current_stations_sql, relations

LOCAL_TZ = vocabulary.LOCAL_TZ
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

TIMELINE_MAX_DAYS = 7  # the status timeline shows at most the last week of the period (one row per poll read)


# --- stations ----------------------------------------------------------------------------------------------------
def stations(con: duckdb.DuckDBPyConnection, city: str | None = None, operator: str | None = None) -> pd.DataFrame:
    """Current stations of the filters: station_id, station_name, address, city_slug, operator_name (display
    name), operator (the filter's value), by city and name."""
    sql = f"""
        SELECT station_id, station_name, address, city_slug, operator_name, operator
        FROM ({current_stations_sql(con)}) WHERE {_filters(city, operator)}
        ORDER BY city_slug, station_name, station_id
    """
    return _df(con, sql, city=city, operator=operator)


def station_master(con: duckdb.DuckDBPyConnection, station_id: str) -> dict[str, Any] | None:
    """The current version of a station (every column of dim_station), None when unknown."""
    frame = _df(con, "SELECT * FROM marts.dim_station WHERE station_id = $station ORDER BY is_current DESC, "
                     "valid_from DESC LIMIT 1", station=station_id)
    return None if frame.empty else frame.iloc[0].to_dict()


def opening_hours(opening_times_json: str | None) -> str | None:
    """The feed's opening times (OCPI style: `twentyfourseven`, `regular_hours` with weekday 1 = Monday) as
    text, e.g. "Mon–Sat 07:00–21:00"; days with the same hours are joined into ranges. None when unknown."""
    try:
        opening = json.loads(opening_times_json) if opening_times_json else None
    except ValueError:
        return opening_times_json
    if not isinstance(opening, dict):
        return None
    if opening.get("twentyfourseven"):
        return "24/7"
    hours: dict[int, list[str]] = {}
    for period in opening.get("regular_hours") or []:
        try:
            day = int(period["weekday"]) - 1
            span = f"{str(period['period_begin'])[:5]}–{str(period['period_end'])[:5]}"
        except (KeyError, TypeError, ValueError):
            return json.dumps(opening)
        if 0 <= day < 7:
            hours.setdefault(day, []).append(span)
    if not hours:
        return None
    parts, days = [], sorted(hours)
    i = 0
    while i < len(days):
        j = i
        while j + 1 < len(days) and days[j + 1] == days[j] + 1 and hours[days[j + 1]] == hours[days[i]]:
            j += 1
        label = WEEKDAYS[days[i]][:3] if i == j else f"{WEEKDAYS[days[i]][:3]}–{WEEKDAYS[days[j]][:3]}"
        parts.append(f"{label} {', '.join(hours[days[i]])}")
        i = j + 1
    return "; ".join(parts)


def station_equipment(con: duckdb.DuckDBPyConnection, station_id: str) -> pd.DataFrame:
    """Its current charging points with their current connectors (one row per connector; a point without one keeps
    a row): charging point, EVSE id, position, connector standard, format, power type, max / rated power."""
    sql = """
        SELECT points.charging_point_id, points.evse_uid, points.physical_reference, points.floor_level,
               connectors.connector_id, connectors.standard, connectors.format, connectors.power_type,
               connectors.ampere, connectors.voltage, connectors.max_power_kw, connectors.rated_power_kw
        FROM marts.dim_charging_point AS points
        LEFT JOIN marts.dim_connector AS connectors
          ON connectors.charging_point_id = points.charging_point_id AND connectors.is_current
        WHERE points.station_id = $station AND points.is_current
        ORDER BY points.charging_point_id, connectors.connector_id
    """
    return _df(con, sql, station=station_id)


def status_timeline(con: duckdb.DuckDBPyConnection, station_id: str, start: date, end: date,
                    poll_interval_minutes: int = vocabulary.POLL_GRID_MINUTES, gap_multiple: int = 3) -> pd.DataFrame:
    """Runs of equal status per charging point of the station from the status facts of the UTC days
    [start, end]: charging_point_id, status, category, start, finish, polls. A run ends at the next poll with
    another status; a silence longer than `gap_multiple` poll intervals ends it (as `int_status_intervals` does)
    one poll interval after its last poll."""
    interval = f"INTERVAL {int(poll_interval_minutes)} MINUTE"
    gap = f"INTERVAL {int(poll_interval_minutes) * int(gap_multiple)} MINUTE"
    sql = f"""
        WITH polls AS (
            SELECT charging_point_id, polled_at, status,
                   lag(status) OVER w AS previous_status, lag(polled_at) OVER w AS previous_at,
                   lead(polled_at) OVER w AS next_at
            FROM marts.fct_charging_point_status
            WHERE station_id = $station AND poll_date BETWEEN $start AND $end
            WINDOW w AS (PARTITION BY charging_point_id ORDER BY polled_at)
        ),
        marked AS (
            SELECT *,
                   CASE WHEN next_at IS NULL OR next_at - polled_at > {gap} THEN polled_at + {interval}
                        ELSE next_at END AS until,
                   sum(CASE WHEN previous_status IS DISTINCT FROM status OR polled_at - previous_at > {gap}
                            THEN 1 ELSE 0 END) OVER (PARTITION BY charging_point_id ORDER BY polled_at) AS run
            FROM polls
        )
        SELECT charging_point_id, any_value(status) AS status, min(polled_at) AS start, max(until) AS finish,
               count(*) AS polls
        FROM marked GROUP BY charging_point_id, run ORDER BY charging_point_id, start
    """
    frame = _df(con, sql, station=station_id, start=start, end=end)
    frame["category"] = frame["status"].map(CATEGORY_OF).fillna(UNKNOWN)
    return frame


def station_sessions(con: duckdb.DuckDBPyConnection, station_id: str, start: date, end: date) -> pd.DataFrame:
    """Inferred sessions of the station that started on the UTC days [start, end], newest first."""
    sql = """
        SELECT charging_point_id, session_start, session_end, duration_minutes, is_open, rated_power_kw,
               current_type, energy_kwh_lower, energy_kwh_upper
        FROM marts.fct_charging_sessions
        WHERE station_id = $station AND session_date BETWEEN $start AND $end
        ORDER BY session_start DESC
    """
    return _df(con, sql, station=station_id, start=start, end=end)


def hour_of_week(con: duckdb.DuckDBPyConnection, station_id: str, start: date | None = None,
                 end: date | None = None, tz: str = LOCAL_TZ) -> pd.DataFrame:
    """The station's occupied share (CHARGING, BLOCKED or RESERVED time of its charging points) per hour of the
    week in local time, from the hourly utilization mart over the UTC days [start, end] (None: open).
    Columns: weekday (0 = Monday), hour (0..23), share_occupied, share_charging, hours (observed clock hours)."""
    sql = f"""
        WITH hours AS (
            SELECT timezone('{tz}', hour_start) AS local_start, n_polls, n_polls_occupied, n_polls_charging
            FROM marts.mart_utilization_station_hourly
            WHERE station_id = $station AND n_polls > 0
              AND (CAST($start AS DATE) IS NULL OR day >= CAST($start AS DATE))
              AND (CAST($end AS DATE) IS NULL OR day <= CAST($end AS DATE))
        )
        SELECT CAST(isodow(local_start) - 1 AS INTEGER) AS weekday, CAST(hour(local_start) AS INTEGER) AS hour,
               sum(n_polls_occupied) / sum(n_polls) AS share_occupied,
               sum(n_polls_charging) / sum(n_polls) AS share_charging,
               count(*) AS hours
        FROM hours GROUP BY 1, 2 ORDER BY 1, 2
    """
    return _df(con, sql, station=station_id, start=start, end=end)


def heatmap_grid(frame: pd.DataFrame, value: str = "share_occupied") -> pd.DataFrame:
    """`hour_of_week` as a 7 x 24 grid (rows Monday..Sunday, columns 0..23; NaN where never observed)."""
    grid = pd.DataFrame(float("nan"), index=range(7), columns=range(24))
    for row in frame.itertuples(index=False):
        grid.iat[int(row.weekday), int(row.hour)] = getattr(row, value)
    grid.index = list(WEEKDAYS)
    return grid


def busiest_hours(frame: pd.DataFrame, n: int = 3) -> list[dict[str, Any]]:
    """The `n` hours of the week with the highest occupied share (ties: the earlier in the week)."""
    if frame.empty:
        return []
    top = frame.sort_values(["share_occupied", "weekday", "hour"], ascending=[False, True, True]).head(n)
    return [{"weekday": WEEKDAYS[int(r.weekday)], "hour": int(r.hour), "share_occupied": float(r.share_occupied),
             "label": f"{WEEKDAYS[int(r.weekday)]} {int(r.hour):02d}:00–{(int(r.hour) + 1) % 24:02d}:00"}
            for r in top.itertuples(index=False)]


def nearby_pois(con: duckdb.DuckDBPyConnection, station_id: str) -> pd.DataFrame:
    """Points of interest mapped to the station (within the POI radius), nearest first: name, category, distance."""
    found = relations(con)
    if "marts.dim_poi_station" not in found:
        return pd.DataFrame(columns=["poi_name", "category", "distance_m", "poi_id"])
    names = "marts.dim_poi" in found
    sql = f"""
        SELECT {'coalesce(poi.poi_name, poi.category)' if names else 'NULL'} AS poi_name, near.category,
               near.distance_m, near.poi_id
        FROM marts.dim_poi_station AS near
        {'LEFT JOIN marts.dim_poi AS poi USING (poi_id)' if names else ''}
        WHERE near.station_id = $station
        ORDER BY near.distance_m, near.poi_id
    """
    return _df(con, sql, station=station_id)
