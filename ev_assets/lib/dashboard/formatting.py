"""How the pages write figures and times: percentages, UTC times, ages, and the "as of" line of live data."""

from __future__ import annotations

import math
from datetime import datetime

import pandas as pd


def fmt_pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f} %"


def fmt_time(value: datetime | pd.Timestamp | None) -> str:
    if value is None or value is pd.NaT:
        return "–"
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%d %H:%M UTC")


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
