"""The strongest simple forecasts of a session's energy and duration, to judge the session models by.

The session models minimise absolute error, whose best constant is a median, so they are judged against medians:

- the user's median of earlier sessions: over the user's sessions that had ENDED by the plug-in (as the history
  features of `sessions.add_history`), falling back to the dataset's training median for a user without one;
- the user-and-weekday median: over the user's ended sessions that plugged in on the same local weekday, falling
  back to the user's median, then the dataset's training median.

Both medians are also features of the models (`user_median_<target>_before`); the weekday one is a baseline only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TARGET_COLUMNS = ("energy_kwh", "duration_h")
BASELINE_USER_MEDIAN = "user median of earlier sessions"
BASELINE_USER_WEEKDAY_MEDIAN = "user-and-weekday median of earlier sessions"
BASELINE_TRAIN_MEDIAN = "train median"


def median_column(target: str) -> str:
    return f"user_median_{target}_before"


def weekday_median_column(target: str) -> str:
    return f"user_weekday_median_{target}_before"


def add_history_medians(frame: pd.DataFrame, starts: np.ndarray, ends: np.ndarray) -> pd.DataFrame:
    """`frame` with, per session, the median energy and duration of its user's sessions that ended by its plug-in
    (`user_median_<target>_before`) and of those among them that plugged in on the same local weekday
    (`user_weekday_median_<target>_before`); NaN when there is none. `starts` / `ends`: the plug-in and plug-out
    instants as int64 nanoseconds, in the frame's row order."""
    out = frame.copy()
    weekday = pd.to_datetime(out["plugin_local"]).dt.weekday.to_numpy()
    values = {t: out[t].to_numpy(float) for t in TARGET_COLUMNS}
    medians = {t: np.full(len(out), np.nan) for t in TARGET_COLUMNS}
    weekday_medians = {t: np.full(len(out), np.nan) for t in TARGET_COLUMNS}
    for _, positions in out.groupby("history_key", sort=False).indices.items():
        by_end = positions[np.argsort(ends[positions], kind="stable")]
        ended = np.searchsorted(ends[by_end], starts[positions], side="right")
        days = weekday[by_end]
        for row, k in zip(positions, ended):
            if k == 0:
                continue
            same_day = by_end[:k][days[:k] == weekday[row]]
            for target in TARGET_COLUMNS:
                medians[target][row] = np.median(values[target][by_end[:k]])
                if len(same_day):
                    weekday_medians[target][row] = np.median(values[target][same_day])
    for target in TARGET_COLUMNS:
        out[median_column(target)] = medians[target]
        out[weekday_median_column(target)] = weekday_medians[target]
    return out


def baseline_predictions(train: pd.DataFrame, test: pd.DataFrame, target: str) -> dict[str, np.ndarray]:
    """The median baselines for the test rows (see the module docstring); `dataset` holds the same values (codes)
    in both frames."""
    train_median = test["dataset"].map(train.groupby("dataset")[target].median()).to_numpy(float)
    user = test[median_column(target)].to_numpy(float)
    user = np.where(np.isnan(user), train_median, user)
    weekday = test[weekday_median_column(target)].to_numpy(float)
    weekday = np.where(np.isnan(weekday), user, weekday)
    return {BASELINE_USER_MEDIAN: user, BASELINE_USER_WEEKDAY_MEDIAN: weekday, BASELINE_TRAIN_MEDIAN: train_median}
