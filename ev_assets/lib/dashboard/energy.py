"""Session energy of the sources the KPI service does not cover (ACN sites, charging-event stations), by the same
rules as `ev_assets.lib.kpis` (calendar days, ranges clipped to the data)."""

from __future__ import annotations

from datetime import date
from typing import Any

import duckdb
import pandas as pd

from ev_assets.lib.dashboard.scope import _df


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
