"""The two raw session tables (raw.session_reports, raw.acn_sessions) as usable sessions in one shape: plug-in and
plug-out instants, local plug-in time, energy, duration, the history key and the first user inputs; and the count
dropped per reason (`usable_sessions`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

DATASETS = ("norway", "acn")
DATASET_CODE = {"norway": 0, "acn": 1}
DATASET_LABEL = {"norway": "Norway (session reports)", "acn": "ACN (Caltech JPL)"}
DEFAULT_TZ = {"norway": "Europe/Oslo", "acn": "America/Los_Angeles"}

MAX_DURATION_H = 7 * 24  # a plug-in longer than a week is a data error or an abandoned car, not a session
INPUT_GRACE_MINUTES = 15  # a first user input later than this after plug-in is not known at plug-in
PLUGIN_INPUTS = ["kwh_requested_first", "minutes_available_first"]

REPORT_COLUMNS = ("session_id", "garage_id", "user_id", "user_type", "plugin_at", "plugout_at", "energy_kwh")
ACN_COLUMNS = ("session_id", "site_id", "station_id", "space_id", "user_id", "connection_time", "disconnect_time",
               "kwh_delivered")


@dataclass
class Sessions:
    """The usable sessions of one dataset in a common shape, and what was dropped (reason -> count)."""

    dataset: str
    frame: pd.DataFrame
    received: int = 0
    dropped: dict[str, int] = field(default_factory=dict)


# --- normalising the two raw tables -------------------------------------------------------------------------------
def _require(frame: pd.DataFrame, columns: tuple[str, ...], table: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        found = ", ".join(map(str, frame.columns))
        raise ValueError(f"raw.{table} frame lacks the columns {', '.join(missing)} (found {found})")


def _text(series: pd.Series) -> pd.Series:
    """Text with None for NULL and blanks, whatever dtype the frame came in with."""
    out = series.astype(object).where(series.notna(), None)
    out = out.map(lambda v: None if v is None or str(v).strip() == "" else str(v).strip())
    return out.astype(object)


def _wall_to_utc(wall: pd.Series, zones: pd.Series) -> pd.Series:
    """Naive local wall times -> UTC instants, per time zone. An ambiguous autumn hour is read as standard time,
    a wall time skipped in spring is moved forward, so durations across a DST change are the real elapsed time."""
    wall = pd.to_datetime(wall)
    if wall.dt.tz is not None:  # already an instant
        return wall.dt.tz_convert("UTC")
    out = pd.Series(pd.NaT, index=wall.index, dtype="datetime64[ns, UTC]")
    for zone, idx in wall.groupby(zones).groups.items():
        part = wall.loc[idx]
        local = part.dt.tz_localize(zone, ambiguous=np.zeros(len(part), dtype=bool), nonexistent="shift_forward")
        out.loc[idx] = local.dt.tz_convert("UTC")
    return out


def _utc_to_wall(instants: pd.Series, zones: pd.Series) -> pd.Series:
    out = pd.Series(pd.NaT, index=instants.index, dtype="datetime64[ns]")
    for zone, idx in instants.groupby(zones).groups.items():
        out.loc[idx] = instants.loc[idx].dt.tz_convert(zone).dt.tz_localize(None)
    return out


def _instants(series: pd.Series) -> pd.Series:
    """TIMESTAMPTZ column as UTC (a naive value, which the table never holds, is taken as UTC)."""
    return pd.to_datetime(series, utc=True, errors="coerce")


def _zones(frame: pd.DataFrame, dataset: str) -> pd.Series:
    if "timezone" not in frame.columns:
        return pd.Series(DEFAULT_TZ[dataset], index=frame.index)
    zones = _text(frame["timezone"])
    return zones.fillna(DEFAULT_TZ[dataset]).astype(str)


def _norway(reports: pd.DataFrame) -> pd.DataFrame:
    _require(reports, REPORT_COLUMNS, "session_reports")
    zones = _zones(reports, "norway")
    wall = pd.to_datetime(reports["plugin_at"], errors="coerce")
    if wall.dt.tz is not None:
        wall = _utc_to_wall(wall.dt.tz_convert("UTC"), zones)
    user_type = _text(reports["user_type"]).str.lower()
    return pd.DataFrame({
        "session_id": _text(reports["session_id"]),
        "history_key": "norway:" + _text(reports["user_id"]).fillna("session:" + _text(reports["session_id"])),
        "history_by_station": 0,
        "site": _text(reports["garage_id"]),
        "station": None,
        "user_type": user_type,
        "plugin_local": wall,
        "plugin_utc": _wall_to_utc(reports["plugin_at"], zones),
        "plugout_utc": _wall_to_utc(reports["plugout_at"], zones),
        "energy_kwh": pd.to_numeric(reports["energy_kwh"], errors="coerce").astype(float),
        **{column: np.nan for column in PLUGIN_INPUTS},
    }, index=reports.index)


def _acn(sessions: pd.DataFrame) -> pd.DataFrame:
    _require(sessions, ACN_COLUMNS, "acn_sessions")
    zones = _zones(sessions, "acn")
    user, space, station = (_text(sessions[c]) for c in ("user_id", "space_id", "station_id"))
    key = ("user:" + user).where(user.notna(), ("space:" + space).where(space.notna(), "station:" + station))
    connection = _instants(sessions["connection_time"])
    return pd.DataFrame({
        "session_id": _text(sessions["session_id"]),
        "history_key": "acn:" + key.fillna("session:" + _text(sessions["session_id"])),  # nothing to key by
        "history_by_station": user.isna().astype(int),
        "site": _text(sessions["site_id"]),
        "station": station,
        "user_type": None,
        "plugin_local": _utc_to_wall(connection, zones),
        "plugin_utc": connection,
        "plugout_utc": _instants(sessions["disconnect_time"]),
        "energy_kwh": pd.to_numeric(sessions["kwh_delivered"], errors="coerce").astype(float),
        **_first_inputs(sessions, connection),
    }, index=sessions.index)


def _first_inputs(sessions: pd.DataFrame, connection: pd.Series) -> dict[str, pd.Series]:
    """The first user input of each ACN session where it was made by plug-in + INPUT_GRACE_MINUTES, else NaN
    (also when the raw table predates the `first_*` columns)."""
    if "first_input_at" not in sessions.columns:
        return {column: pd.Series(np.nan, index=sessions.index) for column in PLUGIN_INPUTS}
    known = _instants(sessions["first_input_at"]) <= connection + pd.Timedelta(minutes=INPUT_GRACE_MINUTES)
    return {
        "kwh_requested_first": pd.to_numeric(sessions["first_kwh_requested"], errors="coerce").where(known),
        "minutes_available_first": pd.to_numeric(sessions["first_minutes_available"], errors="coerce").where(known),
    }


def usable_sessions(raw: pd.DataFrame, dataset: str) -> Sessions:
    """The sessions of one raw table that can be trained on, with duration in hours, and the count dropped per
    reason (no plug-in or plug-out time, duration <= 0 or > 7 days, energy missing or negative)."""
    if raw is None or raw.empty:
        return Sessions(dataset, pd.DataFrame(columns=["session_id"]), 0, {})
    raw = raw.reset_index(drop=True)
    frame = _norway(raw) if dataset == "norway" else _acn(raw)
    frame["dataset"] = dataset
    frame["duration_h"] = (frame["plugout_utc"] - frame["plugin_utc"]).dt.total_seconds() / 3600
    checks = [
        ("no plug-in time", frame["plugin_utc"].isna()),
        ("no plug-out time", frame["plugout_utc"].isna()),
        ("zero or negative duration", frame["duration_h"] <= 0),
        (f"duration over {MAX_DURATION_H} h", frame["duration_h"] > MAX_DURATION_H),
        ("no energy", frame["energy_kwh"].isna()),
        ("negative energy", frame["energy_kwh"] < 0),
    ]
    bad = pd.Series(False, index=frame.index)
    dropped = {}
    for reason, mask in checks:
        new = mask.fillna(False) & ~bad  # each session counted once, under its first reason
        if new.any():
            dropped[reason] = int(new.sum())
        bad |= new
    return Sessions(dataset, frame.loc[~bad].reset_index(drop=True), len(frame), dropped)
