"""What the operator dashboard shows, as plain functions over a marts snapshot connection (no Streamlit here).

Every reader takes a DuckDB connection on the read-only snapshot (`snapshot.Reader(...).connect()`) and returns a
pandas DataFrame or a dict. The KPIs that the service also answers (reliability, session energy) are NOT computed
here: the dashboard calls `ev_assets.lib.kpis`, so its figures and the API's are the same numbers.

Times are UTC in the marts; the hour-of-week heatmap is in local time (`LOCAL_TZ`), the way people think of
"Monday morning". The station page reads marts only (dimensions, hourly utilization, sessions, and the status
facts of a bounded window), never the raw polls, so its cost does not grow with the length of the history.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Iterable

import duckdb
import pandas as pd

from ev_assets.lib import vocabulary

LOCAL_TZ = "Europe/Berlin"
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# The charging-point status vocabulary (`ev_assets.lib.vocabulary`) in the groups the pages show: charging apart from
# the rest of the occupied group.
AVAILABLE, CHARGING, OCCUPIED, OUT_OF_ORDER, UNKNOWN = (
    "available", "charging", "blocked / reserved", "out of order", "unknown")
CATEGORIES = (AVAILABLE, CHARGING, OCCUPIED, OUT_OF_ORDER, UNKNOWN)
CATEGORY_OF = {"AVAILABLE": AVAILABLE, "UNKNOWN": UNKNOWN,
               **{s: OCCUPIED for s in vocabulary.OCCUPIED}, **{s: OUT_OF_ORDER for s in vocabulary.OUT_OF_ORDER},
               "CHARGING": CHARGING}
assert set(CATEGORY_OF) == set(vocabulary.STATUSES), "every status has its group on the pages"
COLORS = {AVAILABLE: "#2ca02c", CHARGING: "#1f77b4", OCCUPIED: "#9467bd", OUT_OF_ORDER: "#d62728",
          UNKNOWN: "#9e9e9e"}
# A station's status on the map: the most useful status of its charging points (a free point first).
_STATION_ORDER = {c: i for i, c in enumerate(CATEGORIES)}

TIMELINE_MAX_DAYS = 7  # the status timeline shows at most the last week of the period (one row per poll read)

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


# --- network now -------------------------------------------------------------------------------------------------
def latest_status(con: duckdb.DuckDBPyConnection, city: str | None = None, operator: str | None = None,
                  poll_interval_minutes: int = vocabulary.POLL_GRID_MINUTES) -> pd.DataFrame:
    """Every current charging point with its status at the latest poll of its city (one row per point).

    Columns: charging_point_id, station_id, station_name, address, city_slug, operator_name, latitude, longitude,
    polled_at, status, category. A point missing from its city's latest poll (none of its polls within half a
    poll interval of it) has status NULL, category unknown.
    Only the last two days of polls are read (the latest poll of a city that stopped answering earlier is not
    "now")."""
    sql = f"""
        WITH recent AS (
            SELECT charging_point_id, city_slug, polled_at, status
            FROM marts.fct_charging_point_status
            WHERE poll_date >= (SELECT max(poll_date) FROM marts.fct_charging_point_status) - 1
        ),
        latest_poll AS (SELECT city_slug, max(polled_at) AS polled_at FROM recent GROUP BY city_slug),
        now AS (  -- each point's own latest poll, if it belongs to its city's latest poll (same slot)
            SELECT recent.charging_point_id, recent.polled_at, recent.status
            FROM recent JOIN latest_poll USING (city_slug)
            WHERE recent.polled_at > latest_poll.polled_at - INTERVAL (CAST($half_slot AS INTEGER)) SECOND
            QUALIFY row_number() OVER (PARTITION BY recent.charging_point_id ORDER BY recent.polled_at DESC) = 1
        ),
        stations AS (
            SELECT station_id, station_name, address, city_slug, operator_name, latitude, longitude
            FROM ({current_stations_sql(con)}) WHERE {_filters(city, operator)}
        )
        SELECT points.charging_point_id, stations.*, latest_poll.polled_at AS city_polled_at, now.polled_at,
               now.status
        FROM marts.dim_charging_point AS points
        JOIN stations USING (station_id)
        LEFT JOIN now USING (charging_point_id)
        LEFT JOIN latest_poll USING (city_slug)
        WHERE points.is_current
        ORDER BY stations.city_slug, stations.station_id, points.charging_point_id
    """
    frame = _df(con, sql, city=city, operator=operator, half_slot=int(poll_interval_minutes) * 30)
    frame["category"] = frame["status"].map(CATEGORY_OF).fillna(UNKNOWN)
    return frame


def shares(frame: pd.DataFrame, by: str | None = None) -> pd.DataFrame:
    """Share of charging points per status category (columns CATEGORIES, rows summing to 1) and `points`, overall
    (by None: one row "all") or per value of `by`."""
    if frame.empty:
        return pd.DataFrame(columns=[by or "scope", "points", *CATEGORIES])
    keys = frame[by] if by else pd.Series("all", index=frame.index, name="scope")
    counts = pd.crosstab(keys, frame["category"]).reindex(columns=list(CATEGORIES), fill_value=0)
    points = counts.sum(axis=1)
    out = counts.div(points, axis=0)
    out.insert(0, "points", points)
    out.index.name = by or "scope"
    return out.reset_index().sort_values(["points", out.index.name], ascending=[False, True], ignore_index=True)


def station_now(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per station of `latest_status`: its status on the map (the most useful status of its points: a free
    point first), how many of its points are free, its coordinates."""
    if frame.empty:
        return frame.assign(points=[], free=[])
    ranked = frame.assign(rank=frame["category"].map(_STATION_ORDER))
    grouped = ranked.groupby("station_id", sort=False)
    out = grouped.agg(station_name=("station_name", "first"), address=("address", "first"),
                      city_slug=("city_slug", "first"), operator_name=("operator_name", "first"),
                      latitude=("latitude", "first"), longitude=("longitude", "first"),
                      rank=("rank", "min"), points=("charging_point_id", "size"),
                      free=("category", lambda c: int((c == AVAILABLE).sum())))
    out["category"] = [CATEGORIES[int(r)] for r in out.pop("rank")]
    return out.reset_index()


def network_trend(con: duckdb.DuckDBPyConnection, start: date, end: date, city: str | None = None,
                  operator: str | None = None, hourly: bool | None = None) -> pd.DataFrame:
    """Shares of charging-point time per status category per hour (periods up to 14 days, or `hourly=True`) or
    per UTC day, over the current stations of the filters: sums of poll counts of the utilization marts, divided
    last. Columns: at, n_polls, and one per category."""
    hourly = (end - start).days < 14 if hourly is None else hourly
    source, at = (("marts.mart_utilization_station_hourly", "hour_start") if hourly else
                  ("marts.mart_utilization_station_daily", "day"))
    scope = _station_scope(con, city, operator)  # the stations' current city and operator
    sql = f"""
        SELECT {at} AS at, sum(n_polls) AS n_polls,
               sum(n_polls_available) / sum(n_polls) AS "{AVAILABLE}",
               sum(n_polls_charging) / sum(n_polls) AS "{CHARGING}",
               sum(n_polls_occupied - n_polls_charging) / sum(n_polls) AS "{OCCUPIED}",
               sum(n_polls_out_of_order) / sum(n_polls) AS "{OUT_OF_ORDER}",
               sum(n_polls_unknown) / sum(n_polls) AS "{UNKNOWN}"
        FROM {source}
        WHERE day BETWEEN $start AND $end AND {scope}
        GROUP BY 1 HAVING sum(n_polls) > 0 ORDER BY 1
    """
    return _df(con, sql, start=start, end=end, city=city, operator=operator)


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


# --- reliability -------------------------------------------------------------------------------------------------
def worst_availability(rows: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The row with the lowest availability_pct (rows of `kpis.reliability_list`; rows without a known status hour
    are left out; ties: the most out-of-order hours, then by name)."""
    scored = [r for r in rows if r.get("availability_pct") is not None and not math.isnan(r["availability_pct"])]
    if not scored:
        return None
    return min(scored, key=lambda r: (r["availability_pct"], -(r.get("out_of_order_hours") or 0),
                                      str(r.get("operator_name") or r.get("city_slug") or r.get("station_id"))))


# --- session energy of the other sources (ACN sites, charging-event stations) -------------------------------------
def energy_entities(con: duckdb.DuckDBPyConnection, source: str, entity_type: str) -> list[str]:
    """Entity ids of a source and type in mart_energy_summary."""
    return [r[0] for r in con.execute(
        "SELECT DISTINCT entity_id FROM marts.mart_energy_summary WHERE source_name = $source "
        "AND entity_type = $type AND entity_id IS NOT NULL ORDER BY 1", {"source": source, "type": entity_type}
    ).fetchall()]


def energy_time_zone(con: duckdb.DuckDBPyConnection, source: str) -> str:
    """The time zone whose days a source's energy counts in (mart_energy_summary.time_zone); UTC for a snapshot
    from before that column."""
    try:
        found = con.execute("SELECT any_value(time_zone) FROM marts.mart_energy_summary WHERE source_name = $source",
                            {"source": source}).fetchone()[0]
    except duckdb.BinderException:
        found = None
    return found or "UTC"


def energy_span(con: duckdb.DuckDBPyConnection, source: str) -> tuple[date | None, date | None]:
    """First and last day of a source in mart_energy_daily."""
    return tuple(con.execute("SELECT min(day), max(day) FROM marts.mart_energy_daily WHERE source_name = $source",
                             {"source": source}).fetchone())


def energy_series(con: duckdb.DuckDBPyConnection, source: str, entity_type: str, entity_id: str | None,
                  start: date | None = None, end: date | None = None) -> pd.DataFrame:
    """Every calendar day of the entity's span (all entities of the type summed when `entity_id` is None) within
    [start, end], idle days 0: day, sessions, energy_kwh, active_charging_hours, peak_hour_start, peak_hour_kwh
    (the hourly figures only for one entity). For the sources the KPI service does not cover (ACN sites,
    charging-event stations); the same rules as `kpis` (calendar days, ranges clipped to the data)."""
    entity = "" if entity_id is None else "AND entity_id = $id"
    sql = f"""
        WITH per_day AS (
            SELECT day, sum(sessions_started) AS sessions, sum(energy_kwh) AS energy_kwh,
                   -- hourly figures exist per entity only (with one entity these are its own)
                   any_value(active_charging_hours) AS active_charging_hours,
                   any_value(peak_hour_start) AS peak_hour_start, any_value(peak_hour_kwh) AS peak_hour_kwh
            FROM marts.mart_energy_daily
            WHERE source_name = $source AND entity_type = $type {entity}
            GROUP BY day
        ),
        calendar AS (
            SELECT CAST(unnest(generate_series(min(day), max(day), INTERVAL 1 DAY)) AS DATE) AS day FROM per_day
        )
        SELECT calendar.day, CAST(coalesce(sessions, 0) AS BIGINT) AS sessions,
               CAST(coalesce(energy_kwh, 0) AS DOUBLE) AS energy_kwh,
               CASE WHEN $single THEN coalesce(active_charging_hours, 0) END AS active_charging_hours,
               CASE WHEN $single THEN peak_hour_start END AS peak_hour_start,
               CASE WHEN $single THEN peak_hour_kwh END AS peak_hour_kwh
        FROM calendar LEFT JOIN per_day USING (day)
        WHERE (CAST($start AS DATE) IS NULL OR calendar.day >= CAST($start AS DATE))
          AND (CAST($end AS DATE) IS NULL OR calendar.day <= CAST($end AS DATE))
        ORDER BY calendar.day
    """
    return _df(con, sql, source=source, type=entity_type, id=entity_id, start=start, end=end,
               single=entity_id is not None)


def energy_figures(series: pd.DataFrame) -> dict[str, Any]:
    """The session KPIs of an `energy_series`: total, daily average over calendar days, the mean of the last 7
    days (ending at the latest day), peak day, peak hour and mean active hours (None where not defined)."""
    if series.empty:
        return {"n_days": 0, "energy_kwh": 0.0, "sessions": 0, "average_kwh": None, "last_7_average_kwh": None,
                "peak_day": None, "peak_day_kwh": None, "peak_hour_start": None, "peak_hour_kwh": None,
                "average_active_hours": None}
    last7 = series[series["day"] > series["day"].max() - pd.Timedelta(days=7)]
    peak_day = series.sort_values(["energy_kwh", "day"], ascending=[False, True]).iloc[0]
    hours = series.dropna(subset=["peak_hour_kwh"])
    peak_hour = hours.sort_values(["peak_hour_kwh", "peak_hour_start"], ascending=[False, True]).iloc[0] \
        if len(hours) else None
    active = series["active_charging_hours"].dropna()
    return {
        "n_days": len(series), "energy_kwh": float(series["energy_kwh"].sum()),
        "sessions": int(series["sessions"].sum()), "average_kwh": float(series["energy_kwh"].mean()),
        "last_7_average_kwh": float(last7["energy_kwh"].mean()),
        "peak_day": peak_day["day"], "peak_day_kwh": float(peak_day["energy_kwh"]),
        "peak_hour_start": None if peak_hour is None else peak_hour["peak_hour_start"],
        "peak_hour_kwh": None if peak_hour is None else float(peak_hour["peak_hour_kwh"]),
        "average_active_hours": float(active.mean()) if len(active) else None,
    }


# --- models ------------------------------------------------------------------------------------------------------
def split_metrics(metrics: dict[str, float]) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """A run's metrics as (the model's held-out `test_<metric>`, {baseline: {metric: value}}) from
    `baseline_<name>_test_<metric>` (the names `Registry.register` logs)."""
    model = {k[len("test_"):]: v for k, v in metrics.items() if k.startswith("test_")}
    baselines: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        if key.startswith("baseline_") and "_test_" in key:
            baseline, _, metric = key[len("baseline_"):].rpartition("_test_")
            baselines.setdefault(baseline, {})[metric] = value
    return model, baselines


def metrics_table(metrics: dict[str, float]) -> pd.DataFrame:
    """Predictors (model, then each baseline) x metrics, from a run's metrics."""
    model, baselines = split_metrics(metrics)
    rows = {"model": model, **{name.replace("_", " "): values for name, values in sorted(baselines.items())}}
    return pd.DataFrame.from_dict(rows, orient="index")


def registry_overview(db, names: Iterable[str], ui_url: str | None = None) -> list[dict[str, Any]]:
    """Per model: its champion (version, metrics, primary metric, run link) and its newest version with that
    version's champion-gate decision (`champion_gate.*` tags: promoted or not, and why). `db` is an
    `ev_assets.lib.ml.registry_db.RegistryDB` (read straight from the registry's file, without MLflow)."""
    from ev_assets.lib.ml import registry_db

    ui_url = ui_url or registry_db.DEFAULT_UI_URL
    out = []
    with db.connect() as con:
        for name in names:
            entry: dict[str, Any] = {"name": name, "champion": None, "newest": None}
            versions = sorted(db.versions(name, con), key=lambda v: int(v.version))
            if not versions:
                out.append(entry)
                continue
            champion = db.champion(name, con)
            if champion is not None:
                run = db.run(champion.run_id, con)
                entry["champion"] = {
                    "version": champion.version, "run_id": champion.run_id, "metrics": run.metrics,
                    "primary_metric": run.tags.get("primary_metric"), "verdict": run.tags.get("verdict"),
                    "trained_at": pd.Timestamp(run.start_ms, unit="ms", tz="UTC") if run.start_ms else None,
                    "run_url": registry_db.run_url(ui_url, run.experiment_id, champion.run_id),
                    "version_url": registry_db.version_url(ui_url, name, champion.version),
                }
            newest = versions[-1]
            gate = {k.split(".", 1)[1]: v for k, v in newest.tags.items() if k.startswith("champion_gate.")}
            entry["newest"] = {"version": newest.version, "gate": gate, "n_versions": len(versions),
                               "created_at": pd.Timestamp(newest.created_ms, unit="ms", tz="UTC")
                               if newest.created_ms else None}
            out.append(entry)
    return out


def drift_status(drift_dir: Path, model: str, share_limit: float) -> dict[str, Any] | None:
    """The latest drift report of a model (`<drift_dir>/<model>/latest.json` and `latest.html`, written
    by `ev_assets.lib.monitoring.drift.save`), with `drifted` = share_drifted > share_limit as the check judges;
    None when there is none."""
    folder = Path(drift_dir) / model
    summary_path, html = folder / "latest.json", folder / "latest.html"
    if not summary_path.exists() and not html.exists():
        return None
    summary: dict[str, Any] = {}
    if summary_path.exists():
        try:
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            summary = {"error": f"unreadable {summary_path.name}: {exc}"}
    share = summary.get("share_drifted")
    return {
        **summary,
        "share_drifted": share,
        "share_limit": share_limit,
        "drifted": None if share is None else bool(share > share_limit),
        "html": str(html) if html.exists() else None,
        "summary_path": str(summary_path) if summary_path.exists() else None,
    }


def live_error(live_error_dir: Path) -> dict[str, Any] | None:
    """`<live_error_dir>/latest.json` (the live Brier score per model), None when there is none."""
    path = Path(live_error_dir) / "latest.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def fmt_pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f} %"


def fmt_time(value: datetime | pd.Timestamp | None) -> str:
    if value is None or value is pd.NaT:
        return "–"
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%d %H:%M UTC")


# --- the live state (the live path's landing store) ------------------------------------------------------------------
LIVE_COLUMNS = ["charging_point_id", "station_id", "station_name", "address", "city_slug", "operator_name", "operator",
                "latitude", "longitude"]
UNKNOWN_OPERATOR = "(not in the snapshot)"


def _utc(values) -> pd.Series:
    return pd.to_datetime(pd.Series(values, dtype="object"), utc=True, errors="coerce")


def live_status(points: pd.DataFrame | None, now: pd.DataFrame, polls: pd.DataFrame, city: str | None = None,
                operator: str | None = None) -> pd.DataFrame:
    """`latest_status`'s frame (one row per charging point, same columns) from the live path's state.

    `points`: `latest_status` of the marts snapshot for every city and operator (the dimensions: names, operator,
    coordinates), None without a snapshot. `now`: `store.status_now` (the latest live status per charging point);
    `polls`: `store.city_polls`. Every current charging point of the dimension gets its live status (unknown when
    the live path never reported it; never its batch status), a point only the live path knows is added with its
    live city and station (operator UNKNOWN_OPERATOR); then the city and operator filters. `polled_at` is the time of
    the latest live poll of the point's city (its status holds until a poll changes it), `since` when it changed."""
    base = pd.DataFrame(columns=LIVE_COLUMNS) if points is None or points.empty else \
        points[[c for c in LIVE_COLUMNS if c in points.columns]].copy()
    base["charging_point_id"] = base["charging_point_id"].astype(str)
    live = now[["charging_point_id", "station_id", "city_slug", "status", "since_time"]].rename(
        columns={"station_id": "live_station_id", "city_slug": "live_city_slug"})
    live = live.assign(charging_point_id=live["charging_point_id"].astype(str))
    frame = base.merge(live, on="charging_point_id", how="outer")
    known = frame["station_id"].notna()
    frame["station_id"] = frame["station_id"].where(known, frame["live_station_id"])
    frame["city_slug"] = frame["city_slug"].where(frame["city_slug"].notna(), frame["live_city_slug"])
    frame["operator_name"] = frame["operator_name"].where(known, UNKNOWN_OPERATOR)
    poll_times = dict(zip(polls["city_slug"], polls["poll_time"])) if len(polls) else {}
    frame["city_polled_at"] = _utc(frame["live_city_slug"].fillna(frame["city_slug"]).map(poll_times)).to_numpy()
    frame["polled_at"] = frame["city_polled_at"].where(frame["status"].notna())
    frame["since"] = _utc(frame["since_time"]).to_numpy()
    if city:
        frame = frame[frame["city_slug"] == city]
    if operator:
        frame = frame[frame["operator"] == operator]
    frame = frame.drop(columns=["live_station_id", "live_city_slug", "since_time"])
    frame["category"] = frame["status"].map(CATEGORY_OF).fillna(UNKNOWN)
    return frame.sort_values(["city_slug", "station_id", "charging_point_id"], ignore_index=True)


def station_points(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The current charging points with their station's name, address, city, operator and coordinates (columns
    LIVE_COLUMNS), for `live_status`; empty when the snapshot lacks the station or charging-point dimension."""
    if not {"marts.dim_station", "marts.dim_charging_point"} <= relations(con):
        return pd.DataFrame(columns=LIVE_COLUMNS)
    return _df(con, f"""
        SELECT points.charging_point_id, stations.station_id, stations.station_name, stations.address,
               stations.city_slug, stations.operator_name, stations.operator, stations.latitude, stations.longitude
        FROM marts.dim_charging_point AS points JOIN ({current_stations_sql(con)}) AS stations USING (station_id)
        WHERE points.is_current ORDER BY stations.city_slug, stations.station_id, points.charging_point_id""")


def fmt_age(seconds: float | None) -> str:
    """"14 s", "3 min", "5 h", "12 days"."""
    if seconds is None or seconds != seconds:
        return "–"
    seconds = max(float(seconds), 0.0)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:,.0f} days"


def as_of(data_time: datetime | pd.Timestamp | str | None, now: datetime | pd.Timestamp,
          simulated: bool = False, speed: float = 1.0) -> str:
    """"as of 10:20 UTC (14 s ago)": the data's own time and its age against `now` (the clock the data runs on),
    with the date when it is not `now`'s day, and "simulated clock, 60x" when that clock is not the wall clock."""
    clock = f" · simulated clock, {speed:g}x" if simulated else ""
    if data_time is None or data_time is pd.NaT:
        return f"no data yet{clock}"
    stamp = pd.Timestamp(data_time)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    current = pd.Timestamp(now)
    current = current.tz_localize("UTC") if current.tzinfo is None else current.tz_convert("UTC")
    day = "" if stamp.date() == current.date() else f" on {stamp:%d %b %Y}"
    return f"as of {stamp:%H:%M} UTC{day} ({fmt_age((current - stamp).total_seconds())} ago){clock}"
