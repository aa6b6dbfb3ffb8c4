"""How `drift.compare` samples its two sides.

**Bounded**: the window and the reference are each sampled (seeded) to at most `max_rows` rows.

**Like with like**: the reference is resampled so that it has the same mix of hours of the week (local time,
Europe/Berlin) as the window, so a night-only window is compared with nights, a Sunday with Sundays, and the
daily rhythm is not read as drift. An hour of the week that the reference does not hold is matched with the same
hour on the same kind of day (Monday-Friday, Saturday, Sunday), then with the same hour on any day, then with
any reference row; the summary says how many window rows were matched at each level. A level serves an hour
only when its reference rows come from at least two different days (one day is too thin a yardstick); when no
level has two days for an hour, the most specific level with one day serves it ("(one day)" in the summary).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ev_assets.lib.vocabulary import LOCAL_TZ


def _local(times: pd.Series, tz: str) -> pd.Series:
    times = pd.to_datetime(times, utc=True)
    return times.dt.tz_convert(tz)


def hour_of_week(times: pd.Series, tz: str = LOCAL_TZ) -> np.ndarray:
    """0 (Monday 00:00-00:59 local time) .. 167 (Sunday 23:00-23:59)."""
    local = _local(times, tz)
    return (local.dt.weekday * 24 + local.dt.hour).to_numpy(dtype=np.int64)


def _day_type(weekday: np.ndarray) -> np.ndarray:
    return np.where(weekday < 5, 0, np.where(weekday == 5, 1, 2))  # Monday-Friday, Saturday, Sunday


def sample_rows(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """At most `n` rows of `frame`, drawn without replacement (seeded), in their original order."""
    if len(frame) <= n:
        return frame
    picked = np.sort(np.random.default_rng(seed).choice(len(frame), size=n, replace=False))
    return frame.iloc[picked]


def _quotas(counts: pd.Series, total: int) -> pd.Series:
    """`total` split in proportion to `counts` (largest remainders; the parts add up to `total`)."""
    exact = counts / counts.sum() * total
    parts = np.floor(exact).astype(int)
    short = total - int(parts.sum())
    if short > 0:
        order = (exact - parts).sort_values(ascending=False, kind="stable").index[:short]
        parts[order] += 1
    return parts


def match_hour_of_week(reference: pd.DataFrame, current: pd.DataFrame, time_column: str, n: int, seed: int,
                       tz: str = LOCAL_TZ, min_days: int = 2) -> tuple[pd.DataFrame, dict]:
    """`n` reference rows (at most as many as the reference holds) with the current window's mix of hours of the
    week, and how the window's rows were matched (see the module docstring). A level serves an hour only when its
    reference rows come from at least `min_days` different local days: one day is too thin a yardstick."""
    if reference.empty or current.empty:
        return reference.iloc[:0], {"method": "hour_of_week", "rows_by_level": {}}
    rng = np.random.default_rng(seed)
    n = min(int(n), len(reference))
    local = _local(reference[time_column], tz)
    ref_weekday, ref_hour = local.dt.weekday.to_numpy(), local.dt.hour.to_numpy()
    ref_day = local.dt.strftime("%Y-%m-%d").to_numpy()
    keys_of = {"hour_of_week": ref_weekday * 24 + ref_hour,
               "day_type_and_hour": _day_type(ref_weekday) * 24 + ref_hour,
               "hour_of_day": ref_hour}
    pools, thin = {}, {}
    for level, keys in keys_of.items():
        frame = pd.DataFrame({"key": keys, "day": ref_day, "row": np.arange(len(reference))})
        days = frame.groupby("key")["day"].nunique()
        thin[level] = {key: group.to_numpy() for key, group in frame.groupby("key")["row"]}
        pools[level] = {key: rows for key, rows in thin[level].items() if days[key] >= min_days}
    counts = pd.Series(hour_of_week(current[time_column], tz)).value_counts().sort_index()
    quotas = _quotas(counts, n)
    picks, by_level, resampled = [], {}, False
    for how, quota in quotas.items():
        weekday, hour = divmod(int(how), 24)
        keys = {"hour_of_week": int(how), "day_type_and_hour": int(_day_type(np.array([weekday]))[0]) * 24 + hour,
                "hour_of_day": hour}
        level, pool = next(((lvl, pools[lvl][key]) for lvl, key in keys.items() if key in pools[lvl]), (None, None))
        if level is None:  # no level from enough days: the same hour from a single day beats any hour
            level, pool = next(((f"{lvl} (one day)", thin[lvl][key]) for lvl, key in keys.items() if key in thin[lvl]),
                               ("any", np.arange(len(reference))))
        by_level[level] = by_level.get(level, 0) + int(counts[how])
        if quota:
            replace = quota > len(pool)
            resampled |= replace
            picks.append(rng.choice(pool, size=int(quota), replace=replace))
    chosen = np.sort(np.concatenate(picks)) if picks else np.array([], dtype=int)
    return reference.iloc[chosen], {
        "method": "hour_of_week",
        "time_zone": tz,
        "min_days": int(min_days),
        "hours_of_week_in_window": int(len(counts)),
        "rows_by_level": by_level,
        "drawn_with_replacement": bool(resampled),
    }
