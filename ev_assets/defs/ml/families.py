"""The model families: which feature set each trains on, how that set is read from the warehouse, and which
registered models its training returns. One place to add a model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pandas as pd

from ev_assets.lib.ml import catalog
from ev_assets.lib.settings import Settings

Frames = dict[str, pd.DataFrame]


@dataclass(frozen=True)
class Family:
    feature_set: str  # the feature-set asset, ["ml", feature_set]
    description: str
    inputs: tuple[str, ...]  # upstream asset keys ("marts/dim_station", ...)
    time_column: str | None  # of the first frame: the feature set's time range
    build: Callable[[object, Settings], Frames]  # (read-only DuckDB connection, settings) -> frames
    train: Callable[[Frames, Settings], list]  # frames -> TrainedModel list
    models: tuple[str, ...]


def _station_time(con, settings: Settings) -> Frames:
    from ev_assets.lib.ml import stations

    return {"features": stations.station_time_features(con)}


def _station_days(con, settings: Settings) -> Frames:
    from ev_assets.lib.ml import stations

    return {"features": stations.station_utilization_features(con)}


def _traces(con, settings: Settings) -> Frames:
    return {"traces": con.execute("SELECT * FROM raw.vehicle_telemetry").df()}


def _sessions(con, settings: Settings) -> Frames:
    return {name: con.execute(f"SELECT * FROM raw.{name}").df() for name in ("session_reports", "acn_sessions")}


def _train_availability(frames: Frames, settings: Settings) -> list:
    from ev_assets.lib.ml import stations

    return stations.train_availability_models(frames["features"])


def _train_utilization(frames: Frames, settings: Settings) -> list:
    from ev_assets.lib.ml import stations

    return stations.train_utilization_models(frames["features"])


def _train_plugin(frames: Frames, settings: Settings) -> list:
    from ev_assets.lib.ml import plugin

    return plugin.train_plugin_models(frames["traces"], settings.telemetry_horizon_minutes, settings.telemetry_gap_minutes)


def _train_sessions(frames: Frames, settings: Settings) -> list:
    from ev_assets.lib.ml import sessions

    return sessions.train_session_models(frames["session_reports"], frames["acn_sessions"])


FAMILIES = (
    Family(
        catalog.STATION_TIME,
        "Station x 10-minute poll features (time, holidays, lags and rolling availability, station attributes, POI "
        "counts) with availability targets at t+10 (the next poll) and t+60 min; leakage-safe: a row at t reads nothing after t.",
        ("marts/fct_charging_point_status", "marts/dim_station", "marts/dim_charging_point", "marts/dim_connector",
         "marts/dim_poi_station"),
        "polled_at",
        _station_time,
        _train_availability,
        catalog.MODELS_OF[catalog.STATION_TIME],
    ),
    Family(
        catalog.STATION_DAY,
        "Station x day: sessions and occupied share with static station attributes and POI context (site planning).",
        ("marts/mart_utilization_station_daily", "marts/dim_station", "marts/dim_poi_station"),
        "day",
        _station_days,
        _train_utilization,
        catalog.MODELS_OF[catalog.STATION_DAY],
    ),
    Family(
        catalog.TELEMETRY,
        "Vehicle state-of-charge traces (irregular sampling, gaps), the input of the plug-in and energy-to-full "
        "forecasts.",
        ("raw/vehicle_telemetry",),
        "reading_at",
        _traces,
        _train_plugin,
        catalog.MODELS_OF[catalog.TELEMETRY],
    ),
    Family(
        catalog.SESSIONS,
        "Charging sessions at plug-in time (Norwegian residential reports, Caltech ACN), the input of the session "
        "energy and duration forecasts.",
        ("raw/session_reports", "raw/acn_sessions"),
        None,
        _sessions,
        _train_sessions,
        catalog.MODELS_OF[catalog.SESSIONS],
    ),
)
