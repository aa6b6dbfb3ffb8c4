"""The session row of a plug-in: the request as one more session of the user, run through the training functions with
the user's sessions (`SessionHistory`, `session_features`); and the codes a session champion was trained with when
its logged model does not bundle them (`session_vocabularies`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

import numpy as np
import pandas as pd

from ev_assets.lib.ml import sessions
from ev_assets.lib.ml.serving.base import NotFound, NotReady, Unprocessable, _inputs
from ev_assets.lib.ml.sessions import data as session_data
from ev_assets.lib.ml.sessions.features import add_calendar, add_history, encode, vocabularies_of


@dataclass
class SessionHistory:
    """The usable sessions of the session feature set, normalised as in training, by history key."""

    usable: dict[str, pd.DataFrame]  # dataset -> normalised usable sessions (sessions.usable_sessions)
    by_key: dict[str, pd.DataFrame]  # history key -> that user's normalised sessions
    zones: dict[str, str]  # history key -> the time zone of the user's latest raw session

    @classmethod
    def of(cls, frames: dict[str, pd.DataFrame]) -> "SessionHistory":
        usable, zones, parts = {}, {}, []
        for dataset, table in (("norway", "session_reports"), ("acn", "acn_sessions")):
            raw = frames.get(table)
            found = sessions.usable_sessions(raw if raw is not None else pd.DataFrame(), dataset).frame
            if "dataset" not in found.columns:
                found = found.assign(dataset=dataset)
            usable[dataset] = found
            if len(found):
                parts.append(found)
            if raw is not None and len(raw) and "user_id" in raw.columns:
                user = session_data._text(raw["user_id"])
                zone = session_data._zones(raw, dataset)
                prefix = "norway:" if dataset == "norway" else "acn:user:"
                for key, tz in zip(user, zone):
                    if key is not None:
                        zones[prefix + key] = tz
        by_key = {}
        if parts:
            frame = pd.concat(parts, ignore_index=True)
            by_key = {str(k): g.reset_index(drop=True) for k, g in frame.groupby("history_key", sort=False)}
        return cls(usable, by_key, zones)


def history_key(dataset: str, user_id: str) -> str:
    """The key `sessions.data._norway` / `_acn` give a session with this user id."""
    return f"norway:{user_id}" if dataset == "norway" else f"acn:user:{user_id}"


def session_vocabularies(history: SessionHistory, params: dict[str, str]) -> dict[str, dict[str, int]]:
    """The integer codes a session champion was trained with, rebuilt from its training rows: per trained dataset,
    the usable sessions that plugged in before `split_<dataset>_valid_start` (the champion's run params), as
    `sessions.training._split` / `core.time_split` cut them; coded by `vocabularies_of` as in training."""
    parts = []
    for dataset in session_data.DATASETS:
        start = params.get(f"split_{dataset}_valid_start")
        frame = history.usable.get(dataset)
        if start is None or frame is None or frame.empty:
            continue  # not trained on
        parts.append(frame[frame["plugin_utc"] < pd.Timestamp(start)])
    if not parts:
        raise NotReady("the session champion records no training split (split_<dataset>_valid_start) that the "
                       "session feature set can rebuild its codes from: retrain (ml_job)")
    return vocabularies_of(pd.concat(parts, ignore_index=True))


@dataclass
class SessionRow:
    inputs: dict[str, float]
    x: np.ndarray
    known_user: bool
    user_sessions_before: int
    site: str | None
    station: str | None
    user_type: str | None
    history_as_of: pd.Timestamp | None = None  # the newest plug-in of the user's sessions before the request


def session_features(history: SessionHistory, vocabularies: dict[str, dict[str, int]], features: Iterable[str], *,
                     dataset: str, user_id: str, plug_in_at: datetime, site_id: str | None = None,
                     station_id: str | None = None, user_type: str | None = None,
                     allow_new_user: bool = False, kwh_requested: float | None = None,
                     minutes_available: float | None = None) -> SessionRow:
    """The model row of a session plugging in at `plug_in_at`: the request becomes one more session of the user
    (with a plug-out a minute later, so it counts in no history), run through the training functions with the
    user's sessions; site / station / user type default to those of the user's latest session."""
    features = list(features)
    key = history_key(dataset, user_id)
    past = history.by_key.get(key)
    if past is None and not allow_new_user:
        raise NotFound(f"unknown user {user_id!r} in the {dataset} sessions: no session of theirs in the session "
                       "feature set (send \"new_user\": true for a forecast without history)")
    if past is not None and len(past):
        latest = past.sort_values("plugin_utc", kind="stable").iloc[-1]
        site_id = site_id if site_id is not None else latest["site"]
        station_id = station_id if station_id is not None else latest["station"]
        user_type = user_type if user_type is not None else latest["user_type"]
    start = pd.Timestamp(plug_in_at).tz_convert("UTC")
    end = start + pd.Timedelta(minutes=1)
    zone = history.zones.get(key, session_data.DEFAULT_TZ[dataset])
    if dataset == "norway":
        raw = pd.DataFrame({"session_id": ["request"], "garage_id": [site_id], "user_id": [user_id],
                            "user_type": [user_type], "plugin_at": [start], "plugout_at": [end], "energy_kwh": [0.0],
                            "timezone": [zone]})
    else:
        raw = pd.DataFrame({"session_id": ["request"], "site_id": [site_id], "station_id": [station_id],
                            "space_id": [None], "user_id": [user_id], "connection_time": [start],
                            "disconnect_time": [end], "kwh_delivered": [0.0], "timezone": [zone],
                            # what the driver tells the app at plug-in (the first user input)
                            "first_kwh_requested": [kwh_requested], "first_minutes_available": [minutes_available],
                            "first_input_at": [start]})
    request = sessions.usable_sessions(raw, dataset).frame
    if len(request) != 1:
        raise Unprocessable("the plug-in time cannot be read as a session start")
    request = request.assign(dataset=dataset)
    frame = pd.concat([past, request], ignore_index=True) if past is not None and len(past) else request
    frame = add_calendar(add_history(frame))
    coded = encode(frame.iloc[[-1]], vocabularies)
    missing = [f for f in features if f not in coded.columns]
    if missing:
        raise NotReady(f"the champion needs features the session features lack ({', '.join(missing)}): retrain")
    x = coded[features].to_numpy(dtype=float)[0]
    row = coded.iloc[0]
    has_past = past is not None and len(past)
    before = past[past["plugin_utc"] < start]["plugin_utc"] if has_past else pd.Series([], dtype=object)
    return SessionRow(_inputs(features, x), x, past is not None, int(row["user_sessions_before"]),
                      _text(row["site"]), _text(row["station"]), _text(row["user_type"]),
                      pd.Timestamp(before.max()) if len(before) else None)


def _text(value) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    return str(value)
