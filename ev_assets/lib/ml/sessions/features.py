"""The session features at plug-in time (`session_features`).

Leakage safety. A row is one session as seen at its plug-in instant t:

- calendar features in the site's local time (hour with minutes as a fraction, weekday, public holiday: Norway
  for the reports, US/California for ACN);
- the history of its user (Norway: `user_id`; ACN: `user_id`, else the parking space, else the station): the
  count and mean energy and duration of the user's sessions that had ENDED by t (plug-out <= t: a session still
  plugged in at t has no known energy or duration yet), and the days since the user's previous plug-in strictly
  before t. A user's first session has count 0 and NaN means;
- the garage (Norway) or site and station (ACN) and the user type (Norway: private or shared), as integer codes
  learned on the training rows (-1: absent or unseen in training).

- the medians of the user's ended sessions (`user_median_<target>_before`, see `session_baselines`);
- what the driver tells the ACN app at plug-in: the FIRST of the session's user inputs (`kwh_requested_first`,
  `minutes_available_first`), used only when it was made within `INPUT_GRACE_MINUTES` of the plug-in (a median of
  0 min on the real JPL data; 99% within 7 min). A later change of the inputs is never used (it post-dates t).
  NaN for Norway and for ACN sessions without inputs.

No epoch-second or date feature (the ONNX export is float32, and a trend learned on one year would not hold).
"""

from __future__ import annotations

import holidays
import numpy as np
import pandas as pd

from ev_assets.lib.ml import session_baselines as medians
from ev_assets.lib.ml.sessions.data import DATASET_CODE, PLUGIN_INPUTS, Sessions, usable_sessions

HOLIDAYS = {"norway": ("NO", None), "acn": ("US", "CA")}

CODE_OF = {"site_code": "site", "station_code": "station", "user_type_code": "user_type"}
CODES = tuple(CODE_OF)
HISTORY_MEDIANS = [medians.median_column("energy_kwh"), medians.median_column("duration_h")]
FEATURES = [
    "dataset", "plugin_hour", "plugin_weekday", "is_holiday", *CODES, "history_by_station",
    "user_sessions_before", "user_mean_energy_kwh_before", "user_mean_duration_h_before", "days_since_user_previous",
    *HISTORY_MEDIANS, *PLUGIN_INPUTS,
]


# --- features ------------------------------------------------------------------------------------------------------
def _nanoseconds(instants: pd.Series) -> np.ndarray:
    """UTC instants as int64 nanoseconds (for sorting and searching only, never a feature)."""
    return instants.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]").to_numpy().astype("int64")


def add_history(frame: pd.DataFrame) -> pd.DataFrame:
    """Per session, what its user's history says at plug-in time t: the count and mean energy/duration of the
    user's sessions that ended by t (plug-out <= t), and days since the user's last plug-in strictly before t.
    Only usable sessions count (a dropped session's energy or duration is not trusted)."""
    out = frame.copy()
    count = np.zeros(len(out))
    mean_energy = np.full(len(out), np.nan)
    mean_duration = np.full(len(out), np.nan)
    days_since = np.full(len(out), np.nan)
    ns_per_day = 86400e9
    all_starts = _nanoseconds(out["plugin_utc"])
    all_ends = _nanoseconds(out["plugout_utc"])
    all_energy, all_duration = out["energy_kwh"].to_numpy(float), out["duration_h"].to_numpy(float)
    for _, positions in out.groupby("history_key", sort=False).indices.items():
        start, end = all_starts[positions], all_ends[positions]
        energy, duration = all_energy[positions], all_duration[positions]
        by_end = np.argsort(end, kind="stable")
        ends = end[by_end]
        energy_sum = np.concatenate([[0.0], np.cumsum(energy[by_end])])
        duration_sum = np.concatenate([[0.0], np.cumsum(duration[by_end])])
        ended = np.searchsorted(ends, start, side="right")  # sessions with plug-out <= this plug-in
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_energy[positions] = np.where(ended > 0, energy_sum[ended] / ended, np.nan)
            mean_duration[positions] = np.where(ended > 0, duration_sum[ended] / ended, np.nan)
        count[positions] = ended
        starts = np.sort(start)
        previous = np.searchsorted(starts, start, side="left") - 1  # the last plug-in strictly before
        has_previous = previous >= 0
        gap = np.full(len(positions), np.nan)
        gap[has_previous] = (start[has_previous] - starts[previous[has_previous]]) / ns_per_day
        days_since[positions] = gap
    out["user_sessions_before"] = count
    out["user_mean_energy_kwh_before"] = mean_energy
    out["user_mean_duration_h_before"] = mean_duration
    out["days_since_user_previous"] = days_since
    return medians.add_history_medians(out, all_starts, all_ends)


def add_calendar(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    local = out["plugin_local"]
    out["plugin_hour"] = local.dt.hour + local.dt.minute / 60
    out["plugin_weekday"] = local.dt.weekday
    out["is_holiday"] = 0
    for dataset, (country, subdiv) in HOLIDAYS.items():
        rows = out["dataset"] == dataset
        if rows.any():
            years = range(int(local[rows].dt.year.min()), int(local[rows].dt.year.max()) + 1)
            calendar = holidays.country_holidays(country, subdiv=subdiv, years=years)
            out.loc[rows, "is_holiday"] = local[rows].dt.date.map(lambda d: int(d in calendar))
    return out


def _codes(train: pd.Series) -> dict[str, int]:
    return {value: code for code, value in enumerate(sorted(train.dropna().unique()))}


def encode(frame: pd.DataFrame, vocabularies: dict[str, dict[str, int]]) -> pd.DataFrame:
    """The categorical columns as integer codes of the training vocabulary (-1: absent or unseen)."""
    out = frame.copy()
    for code, column in CODE_OF.items():
        out[code] = _keyed(out, column).map(vocabularies[code]).fillna(-1).astype(int)
    out["dataset"] = out["dataset"].map(DATASET_CODE).astype(int)
    return out


def _keyed(frame: pd.DataFrame, column: str) -> pd.Series:
    """`<dataset>:<value>` (None when the value is absent): a garage code means nothing across datasets."""
    values = frame[column].astype(object)
    return (frame["dataset"] + ":" + values.fillna("")).where(values.notna(), None)


def vocabularies_of(train: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Integer codes of the categorical values seen in the training rows, in sorted order."""
    return {code: _codes(_keyed(train, column)) for code, column in CODE_OF.items()}


def session_features(session_reports: pd.DataFrame, acn_sessions: pd.DataFrame) -> tuple[pd.DataFrame, list[Sessions]]:
    """Every usable session with its plug-in-time features (categoricals still as text) and both targets."""
    found = [usable_sessions(session_reports, "norway"), usable_sessions(acn_sessions, "acn")]
    frames = [s.frame for s in found if not s.frame.empty]
    if not frames:
        return pd.DataFrame(), found
    frame = pd.concat(frames, ignore_index=True)
    return add_calendar(add_history(frame)), found
