"""The network pages: the status groups and their colours, the network now (`latest_status` from the marts,
`live_status` from the live path's landing store), its trend, and the reliability page's worst operator."""

from __future__ import annotations

import math
from datetime import date
from typing import Any, Iterable

import duckdb
import pandas as pd

from ev_assets.lib import vocabulary
from ev_assets.lib.dashboard.scope import _df, _filters, _station_scope, current_stations_sql, relations

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


# --- reliability -------------------------------------------------------------------------------------------------
def worst_availability(rows: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The row with the lowest availability_pct (rows of `kpis.reliability_list`; rows without a known status hour
    are left out; ties: the most out-of-order hours, then by name)."""
    scored = [r for r in rows if r.get("availability_pct") is not None and not math.isnan(r["availability_pct"])]
    if not scored:
        return None
    return min(scored, key=lambda r: (r["availability_pct"], -(r.get("out_of_order_hours") or 0),
                                      str(r.get("operator_name") or r.get("city_slug") or r.get("station_id"))))


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
