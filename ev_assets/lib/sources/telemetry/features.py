"""Cleaned vehicle traces, features and targets from rows of `raw.vehicle_telemetry` (plain pandas, no Dagster).

A trace is irregular: a car reports every minute or two while driving or charging and nothing while it sleeps.
So everything here is defined by time, never by row offset:

- `clean_traces`: one row per (vehicle, time), sorted; `minutes_since_prev`; `gap_before` when the car was silent
  for longer than `gap_minutes` (default 240, EV_TELEMETRY_GAP_MINUTES), which starts a new `segment`. Deltas
  and everything derived from the previous readings (`soc_delta`, `soc_rate_per_hour`, lags,
  `soc_change_30min`) are NaN across a gap: what happened in a gap is unknown. `minutes_since_prev` itself is
  kept (a long silence is information). Time features (`hour` with minutes as a fraction, `weekday`) are UTC:
  the table says nothing about where a vehicle is.
- `add_targets`: for a reading at t, the reading that says how things stand at t + h (`horizon_minutes`, default
  15, EV_TELEMETRY_HORIZON_MINUTES) is the one nearest to t + h within `tolerance_minutes` (default h / 2),
  strictly after t and in the same segment (no gap in between). `plugged_in_target` is its plug flag (1.0 /
  0.0) and `energy_to_full_target` is 100 - its state of charge, in percentage points of the battery. Without
  such a reading (t + h falls in a gap, or after the end of the trace) both are NaN: not trainable, not judged.
- `feature_frame`: both, and a `TraceReport` of what could be used (a vehicle with one reading, or none with a
  target, is reported there, not an error).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

GAP_MINUTES = 240
HORIZON_MINUTES = 15
WINDOW_MINUTES = 30  # `soc_change_30min` looks this far back
# Features lie on a grid without float64 noise (49.7 - 49.6 = 0.10000000000000142), in bounded ranges: state of
# charge in 0.001 points, rates in 0.001 %/h within +-1000, minutes in 0.01 and at most a week (longer silences are
# gaps anyway). `lib/ml/plugin.model_matrix` relies on the ranges for its float32-exact grids (ONNX export).
SOC_DECIMALS, MINUTE_DECIMALS = 3, 2
RATE_CAP, MINUTES_CAP = 1000.0, 7 * 24 * 60
REQUIRED = ("vehicle_id", "reading_at", "soc_pct", "plugged_in")
FEATURES = [
    "soc_pct", "plugged_in", "minutes_since_prev", "gap_before", "minutes_in_segment", "soc_delta",
    "soc_rate_per_hour", "soc_lag1", "soc_lag2", "plugged_lag1", "plugged_lag2", "soc_change_30min",
    "minutes_in_plug_state", "hour", "weekday",
]
TARGETS = ("plugged_in_target", "energy_to_full_target")


@dataclass
class TraceReport:
    """What the traces gave: readings and vehicles, what was dropped, and which vehicles give no target."""

    readings_received: int = 0
    readings: int = 0
    vehicles: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> readings
    gaps: int = 0
    rows_with_target: int = 0
    single_reading_vehicles: list[str] = field(default_factory=list)
    vehicles_without_target: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{self.readings:,} readings of {self.vehicles} vehicle(s) ({self.readings_received:,} received)",
                 f"{self.gaps} gap(s)", f"{self.rows_with_target:,} reading(s) with a target"]
        parts += [f"{n} dropped: {reason}" for reason, n in self.dropped.items()]
        if self.single_reading_vehicles:
            parts.append(f"{len(self.single_reading_vehicles)} vehicle(s) with a single reading "
                         f"({', '.join(self.single_reading_vehicles[:5])})")
        if self.vehicles_without_target:
            parts.append(f"{len(self.vehicles_without_target)} vehicle(s) without any target "
                         f"({', '.join(self.vehicles_without_target[:5])})")
        return "; ".join(parts)


def clean_traces(traces: pd.DataFrame, gap_minutes: float = GAP_MINUTES,
                 report: TraceReport | None = None) -> pd.DataFrame:
    """Rows of raw.vehicle_telemetry as sorted, deduplicated traces with gap flags and features (module docstring).

    Rows without vehicle, time, state of charge or plug flag, or with a state of charge outside 0..100, are dropped
    (counted in `report`); of readings repeated for one vehicle and time the first is kept.
    """
    missing = [c for c in REQUIRED if c not in traces.columns]
    if missing:
        found = ", ".join(map(str, traces.columns))
        raise ValueError(f"telemetry rows lack the columns {', '.join(missing)} (found {found})")
    traces = traces.reset_index(drop=True)
    report = report if report is not None else TraceReport()
    report.readings_received = len(traces)
    frame = pd.DataFrame({
        "vehicle_id": traces["vehicle_id"].astype(object).where(traces["vehicle_id"].notna(), None),
        "reading_at": pd.to_datetime(traces["reading_at"], utc=True, errors="coerce"),
        "soc_pct": pd.to_numeric(traces["soc_pct"], errors="coerce").astype(float).round(SOC_DECIMALS),
        "plugged_in": pd.to_numeric(traces["plugged_in"].astype(object).map(_flag), errors="coerce").astype(float),
    })
    checks = [
        ("no vehicle id, time, state of charge or plug flag", frame[list(REQUIRED)].isna().any(axis=1)),
        ("state of charge outside 0..100 %", ~frame["soc_pct"].between(0, 100)),
    ]
    bad = pd.Series(False, index=frame.index)
    for reason, mask in checks:
        new = mask & ~bad
        if new.any():
            report.dropped[reason] = int(new.sum())
        bad |= new
    frame = frame[~bad]
    repeated = frame.duplicated(["vehicle_id", "reading_at"], keep="first")
    if repeated.any():
        report.dropped["repeated reading of a vehicle at the same time (the first is kept)"] = int(repeated.sum())
    frame = frame[~repeated].sort_values(["vehicle_id", "reading_at"], kind="stable").reset_index(drop=True)

    vehicle = frame["vehicle_id"]
    first = vehicle.ne(vehicle.shift())
    minutes = np.zeros(0)
    if len(frame):  # minutes since the first reading of the first vehicle (another's may be earlier: negative)
        minutes = (frame["reading_at"] - frame["reading_at"].iloc[0]).dt.total_seconds().to_numpy() / 60
    frame["minutes_since_prev"] = np.where(first, np.nan, np.diff(minutes, prepend=np.nan))
    frame["gap_before"] = (frame["minutes_since_prev"] > gap_minutes).astype(float)
    frame["segment"] = (first | (frame["gap_before"] > 0)).cumsum() - 1
    segment = frame["segment"].to_numpy()
    start = pd.Series(minutes).groupby(segment).transform("first").to_numpy()
    frame["minutes_in_segment"] = minutes - start

    soc = frame["soc_pct"].to_numpy()
    plugged = frame["plugged_in"].to_numpy()
    frame["soc_lag1"] = _lag(soc, segment, 1)
    frame["soc_lag2"] = _lag(soc, segment, 2)
    frame["plugged_lag1"] = _lag(plugged, segment, 1)
    frame["plugged_lag2"] = _lag(plugged, segment, 2)
    frame["soc_delta"] = soc - frame["soc_lag1"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = frame["soc_delta"].to_numpy() / (frame["minutes_since_prev"].to_numpy() / 60)
    frame["soc_rate_per_hour"] = np.where(np.isfinite(rate), rate, np.nan)
    frame["soc_change_30min"] = soc - _value_at_or_before(minutes, soc, segment, minutes - WINDOW_MINUTES)
    # time since the plug flag last changed within the segment (from the segment start, if it did not change)
    run = (first | (frame["gap_before"] > 0) | frame["plugged_in"].ne(frame["plugged_in"].shift())).cumsum()
    frame["minutes_in_plug_state"] = minutes - pd.Series(minutes).groupby(run.to_numpy()).transform("first").to_numpy()
    frame["hour"] = frame["reading_at"].dt.hour + frame["reading_at"].dt.minute / 60
    frame["weekday"] = frame["reading_at"].dt.weekday.astype(float)
    frame["_minutes"] = minutes  # unrounded, for finding targets by time
    for column in ("soc_lag1", "soc_lag2", "soc_delta", "soc_change_30min"):
        frame[column] = frame[column].round(SOC_DECIMALS)
    frame["soc_rate_per_hour"] = frame["soc_rate_per_hour"].clip(-RATE_CAP, RATE_CAP).round(SOC_DECIMALS)
    for column in ("minutes_since_prev", "minutes_in_segment", "minutes_in_plug_state"):
        frame[column] = frame[column].clip(upper=MINUTES_CAP).round(MINUTE_DECIMALS)
    frame["hour"] = frame["hour"].round(4)

    counts = frame.groupby("vehicle_id").size()
    report.readings, report.vehicles = len(frame), int(counts.size)
    report.gaps = int(frame["gap_before"].sum())
    report.single_reading_vehicles = sorted(counts[counts == 1].index.astype(str))
    return frame


def add_targets(clean: pd.DataFrame, horizon_minutes: float = HORIZON_MINUTES, tolerance_minutes: float | None = None,
                report: TraceReport | None = None) -> pd.DataFrame:
    """`target_at`, `plugged_in_target` and `energy_to_full_target` of each reading of `clean_traces` (module
    docstring): the reading nearest to t + horizon within the tolerance, after t, with no gap in between."""
    tolerance = horizon_minutes / 2 if tolerance_minutes is None else tolerance_minutes
    out = clean.copy()
    minutes = out["_minutes"].to_numpy()
    segment = out["segment"].to_numpy()
    n = len(out)
    goal = minutes + horizon_minutes
    # rows are sorted by vehicle and time, and segments never span vehicles: search within each segment
    seg_start = np.searchsorted(segment, segment, side="left")
    seg_end = np.searchsorted(segment, segment, side="right")
    # a key that orders rows by segment, then time, so one searchsorted finds each row's neighbours of t + h
    span = (minutes.max() - minutes.min() + 2 * horizon_minutes + 1) if n else 1.0
    key = segment * span + (minutes - (minutes.min() if n else 0))
    goal_key = segment * span + (goal - (minutes.min() if n else 0))
    after = np.searchsorted(key, goal_key, side="left")  # first reading at or after t + h
    before = np.searchsorted(key, goal_key, side="right") - 1  # last reading at or before t + h
    chosen = np.full(n, -1)
    best = np.full(n, np.inf)
    rows = np.arange(n)
    for candidate in (before, after):  # `before` first: a tie goes to the earlier reading
        ok = (candidate > rows) & (candidate >= seg_start) & (candidate < seg_end)
        c = np.where(ok, candidate, 0)
        distance = np.where(ok, np.abs(minutes[c] - goal), np.inf) if n else np.zeros(0)
        take = ok & (distance <= tolerance) & (distance < best)
        chosen = np.where(take, candidate, chosen)
        best = np.where(take, distance, best)
    has = chosen >= 0
    c = np.where(has, chosen, 0)
    out["target_at"] = out["reading_at"].iloc[c].set_axis(out.index).where(has)
    out["plugged_in_target"] = np.where(has, out["plugged_in"].to_numpy()[c] if n else [], np.nan)
    out["energy_to_full_target"] = np.where(has, 100.0 - out["soc_pct"].to_numpy()[c] if n else [], np.nan)
    if report is not None:
        report.rows_with_target = int(has.sum())
        with_target = set(out.loc[has, "vehicle_id"])
        report.vehicles_without_target = sorted(str(v) for v in set(out["vehicle_id"]) - with_target)
    return out


def feature_frame(traces: pd.DataFrame, horizon_minutes: float = HORIZON_MINUTES, gap_minutes: float = GAP_MINUTES,
                  tolerance_minutes: float | None = None) -> tuple[pd.DataFrame, TraceReport]:
    """Every reading with its features and targets (NaN targets where there is none), and the report."""
    report = TraceReport()
    clean = clean_traces(traces, gap_minutes, report)
    return add_targets(clean, horizon_minutes, tolerance_minutes, report), report


# --- helpers -----------------------------------------------------------------------------------------------------
def _flag(value) -> float:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return np.nan
    if isinstance(value, str):
        word = value.strip().lower()
        return 1.0 if word in ("true", "t", "1", "yes") else 0.0 if word in ("false", "f", "0", "no") else np.nan
    return 1.0 if bool(value) else 0.0


def _lag(values: np.ndarray, segment: np.ndarray, k: int) -> np.ndarray:
    """The value k readings earlier in the same segment, NaN when that reading lies before a gap (or there is none)."""
    out = np.full(len(values), np.nan)
    if len(values) > k:
        same = segment[k:] == segment[:-k]
        out[k:] = np.where(same, values[:-k], np.nan)
    return out


def _value_at_or_before(minutes: np.ndarray, values: np.ndarray, segment: np.ndarray, when: np.ndarray) -> np.ndarray:
    """Per row, `values` of the last reading at or before `when` in the row's segment (NaN if the segment started
    later)."""
    n = len(minutes)
    if not n:
        return np.zeros(0)
    span = minutes.max() - minutes.min() + 2 * WINDOW_MINUTES + 1
    key = segment * span + (minutes - minutes.min())
    idx = np.searchsorted(key, segment * span + (when - minutes.min()), side="right") - 1
    seg_start = np.searchsorted(segment, segment, side="left")
    ok = idx >= seg_start
    return np.where(ok, values[np.where(ok, idx, 0)], np.nan)
