"""The dashboard's settings and its reader of the marts, cached.

Every page reads the read-only snapshot through one `snapshot.Reader` per snapshot folder (`reader`; never
`warehouse.duckdb`, which a pipeline run may hold). `query(name, *args)` runs `READERS[name](con, *args)` under
`st.cache_data` keyed by the CURRENT snapshot's path: a newly published snapshot is a new key, so the next run of a
page reads it, and old entries age out. The live state is read in `live`, the models in `ml`.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Callable

import streamlit as st

from ev_assets.lib import snapshot
from ev_assets.lib.dashboard.energy import energy_entities, energy_series, energy_span, energy_time_zone
from ev_assets.lib.dashboard.network import latest_status, network_trend, station_points
from ev_assets.lib.dashboard.scope import coverage
from ev_assets.lib.dashboard.stations import (
    hour_of_week,
    nearby_pois,
    station_equipment,
    station_master,
    station_sessions,
    stations,
    status_timeline,
)
from ev_assets.lib.kpis.energy import (
    SessionScope,
    active_hours_average,
    energy_daily,
    energy_daily_average,
    energy_last_7_days,
    energy_peak_day,
    energy_peak_hour,
    energy_total,
    garages,
    users,
)
from ev_assets.lib.kpis.network import reliability_daily, reliability_list
from ev_assets.lib.settings import Settings

def settings() -> Settings:
    """The settings of this run (read from the environment each run: cheap, and tests can point it elsewhere)."""
    return Settings.from_env()


# --- the marts snapshot ------------------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def reader(snapshot_dir: str) -> snapshot.Reader:
    """The one `snapshot.Reader` of a snapshot folder in this process."""
    return snapshot.Reader(Path(snapshot_dir))


def current_snapshot(s: Settings) -> Path | None:
    """The current snapshot file, None when none has been published."""
    return snapshot.current(s.snapshot_dir)


def _session_kpi(fn: Callable) -> Callable:
    """A session KPI of `kpis` called with (con, entity type, entity id, start, end)."""
    def run(con, entity_type: str, entity_id: str | None, start: date | None, end: date | None):
        return fn(con, SessionScope(entity_type, entity_id), start, end)
    return run


READERS: dict[str, Callable] = {
    "station_points": station_points,
    "coverage": coverage,
    "latest_status": latest_status,
    "network_trend": network_trend,
    "stations": stations,
    "station_master": station_master,
    "station_equipment": station_equipment,
    "status_timeline": status_timeline,
    "station_sessions": station_sessions,
    "hour_of_week": hour_of_week,
    "nearby_pois": nearby_pois,
    "reliability_list": reliability_list,
    "reliability_daily": reliability_daily,
    "users": users,
    "garages": garages,
    "energy_daily": _session_kpi(energy_daily),
    "energy_total": _session_kpi(energy_total),
    "energy_daily_average": _session_kpi(energy_daily_average),
    "energy_last_7_days": _session_kpi(energy_last_7_days),
    "energy_peak_day": _session_kpi(energy_peak_day),
    "energy_peak_hour": _session_kpi(energy_peak_hour),
    "active_hours_average": _session_kpi(active_hours_average),
    "energy_entities": energy_entities,
    "energy_span": energy_span,
    "energy_series": energy_series,
    "energy_time_zone": energy_time_zone,
}


@st.cache_data(show_spinner=False, max_entries=512, ttl=24 * 3600)
def _query(snapshot_file: str, name: str, args: tuple) -> Any:
    with reader(str(Path(snapshot_file).parent)).connect() as con:
        return READERS[name](con, *args)


def query(s: Settings, name: str, *args) -> Any:
    """`READERS[name](con, *args)` on the current snapshot, cached per snapshot file. Raises snapshot.NoSnapshot
    without one, and the reader's own errors (KpiUnavailable, ...) as they are (not cached)."""
    current = current_snapshot(s)
    if current is None:
        raise snapshot.NoSnapshot(s.snapshot_dir)
    return _query(str(current), name, tuple(args))
