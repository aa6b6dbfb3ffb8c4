"""Status dynamics: sessions, faults and outages of every charging point, as a pure function of (seed, item, t).

Per charging point and UTC day, drivers *want* to charge at the times of a Poisson process whose rate follows a
local-time daily/weekly profile scaled by the point's demand (and by `SimulationSettings.demand_factor`, 1.0 by
default: a demand shift for showing drift). A candidate arrival becomes a session only when the
point is free and working; otherwise the driver goes elsewhere. All draws are addressed by (item, day, stream,
candidate number) through `_rng`, so the candidates of a day never depend on what else is simulated.

To know the status during day d we simulate days d-2 and d-1 from an idle start (sessions may still run after
midnight: charging + blocking is capped below 24 h) and day d from the moment the spill-over ends. Faults
(hours to days) and station-wide communication outages are separate per-day events looked up a few days back.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from ev_assets.lib import vocabulary
from ev_assets.lib.settings import SimulationSettings

from ._rng import exponential, normal, uniform
from .fleet import Fleet, build_fleet

BERLIN = ZoneInfo(vocabulary.LOCAL_TZ)
DAY_S = 86_400.0
POLL_INTERVAL_S = vocabulary.POLL_GRID_MINUTES * 60.0
SLOTS_PER_DAY = int(DAY_S // POLL_INTERVAL_S)

# Status codes, in the order the overlay applies them (a later one wins where periods overlap).
STATUSES = ("AVAILABLE", "RESERVED", "BLOCKED", "CHARGING", "INOPERATIVE", "OUTOFORDER", "UNKNOWN")
AVAILABLE, RESERVED, BLOCKED, CHARGING, INOPERATIVE, OUTOFORDER, UNKNOWN = range(len(STATUSES))
assert set(STATUSES) == set(vocabulary.STATUSES), "the simulator speaks the status vocabulary"
_STATUS_ARRAY = np.array(STATUSES, dtype=object)

# Random streams (the second counter of every draw), so independent quantities never share numbers.
_ARRIVAL, _DURATION, _OVERNIGHT, _BLOCK, _RESERVE, _FAULT, _OUTAGE = range(1, 8)

# Relative arrival intensity by local hour, for [weekday, Saturday, Sunday/holiday]. AC: commuters in the
# morning, residents in the evening (they stay overnight). DC: daytime, lunch and late afternoon peaks.
_PROFILE = {
    "AC": np.array([
        [.04, .03, .02, .02, .03, .08, .30, .75, 1.0, .85, .65, .60,
         .60, .60, .60, .65, .80, .95, .90, .70, .50, .35, .20, .10],
        [.06, .04, .03, .02, .02, .04, .10, .25, .50, .75, .90, .95,
         .90, .85, .80, .80, .80, .75, .70, .55, .40, .30, .20, .10],
        [.06, .05, .03, .02, .02, .03, .05, .12, .30, .50, .65, .70,
         .70, .70, .70, .75, .80, .80, .75, .60, .45, .30, .18, .10],
    ]),
    "DC": np.array([
        [.05, .03, .02, .02, .04, .12, .35, .60, .70, .70, .75, .85,
         1.0, .95, .85, .85, .95, 1.0, .90, .70, .50, .35, .20, .10],
        [.06, .04, .03, .02, .03, .06, .15, .35, .60, .85, 1.0, 1.0,
         1.0, .95, .90, .90, .85, .80, .70, .55, .40, .30, .20, .10],
        [.06, .04, .03, .02, .03, .05, .10, .20, .40, .60, .75, .85,
         .90, .90, .90, .95, 1.0, .95, .85, .65, .45, .30, .20, .10],
    ]),
}
# Chance that an AC arrival at this local hour is someone staying overnight (scaled by the site type).
_OVERNIGHT_P = np.array([.25, .2, .15, .05, .02, .02, .02, .02, .02, .02, .02, .02,
                         .02, .02, .03, .05, .15, .35, .5, .5, .5, .5, .45, .35])
# Chance that a weekday AC arrival at this local hour is a commuter who stays the working day.
_COMMUTER_P = np.zeros(24)
_COMMUTER_P[[6, 7, 8, 9]] = [.35, .45, .4, .25]
_FIXED_HOLIDAYS = {(1, 1), (5, 1), (10, 3), (12, 25), (12, 26)}
_MAX_OCCUPANCY_S = DAY_S - 900.0  # charging + blocking; keeps spill-over within the next day
_FAULT_LOOKBACK_DAYS = 5  # faults last up to 4 days; one more day for the rejections of day d-1
_OUTAGE_LOOKBACK_DAYS = 2
# Days simulated before the evaluated one, starting idle. One would do (sessions never outlast the next day);
# the extra day lets the start-idle guess wash out, so the sessions a day reports never differ (in practice)
# from those its successor sees spilling over midnight.
_WARMUP_DAYS = 2


@dataclass(frozen=True)
class Intervals:
    """Status periods of one UTC day, in seconds from its midnight: point `item` has `code` in [start, end)."""

    item: np.ndarray
    start: np.ndarray
    end: np.ndarray
    code: np.ndarray


# --- public -------------------------------------------------------------------------------------------------


def point_status_codes(fleet: Fleet, day: date, offsets_s: np.ndarray) -> np.ndarray:
    """Status codes (points x times) at `offsets_s` seconds (sorted, in [0, 86400)) after `day`'s UTC midnight."""
    offsets_s = np.asarray(offsets_s, dtype=np.float64)
    iv = day_intervals(fleet, day)
    n, m = len(fleet.charging_points), len(offsets_s)
    codes = np.zeros((n, m), dtype=np.int8)
    for code in range(1, len(STATUSES)):
        sel = iv.code == code
        if sel.any():
            covered = _coverage(iv.item[sel], iv.start[sel], iv.end[sel], offsets_s, n)
            codes[covered] = code
    return codes


def day_status(sim: SimulationSettings, day: date, level: str = "charging_point") -> pd.DataFrame:
    """Status of every charging point (or connector) at each 10-minute poll slot of the UTC `day`.

    Columns slot (UTC), item_id, status; slot-major order. Exactly what `chargecloud_poll` reports at those times.
    """
    if level not in ("charging_point", "connector"):
        raise ValueError(f"level must be 'charging_point' or 'connector', got {level!r}")
    if isinstance(day, datetime):
        day = day.date()
    fleet = build_fleet(sim)
    offsets = np.arange(SLOTS_PER_DAY) * POLL_INTERVAL_S
    codes = point_status_codes(fleet, day, offsets)
    if level == "connector":
        # every connector shows its charging point's status (as in the real feed)
        codes = codes[fleet.connectors["point_row"].to_numpy()]
        ids = fleet.connectors["connector_id"].to_numpy(dtype=object)
    else:
        ids = fleet.charging_points["charging_point_id"].to_numpy(dtype=object)
    start = pd.Timestamp(day, tz="UTC")
    slots = pd.date_range(start, periods=SLOTS_PER_DAY, freq=f"{int(POLL_INTERVAL_S)}s")
    return pd.DataFrame({
        "slot": slots.repeat(len(ids)),
        "item_id": np.tile(ids, SLOTS_PER_DAY),
        "status": _STATUS_ARRAY[codes.T.ravel()],
    })


def status_at(fleet: Fleet, when: datetime) -> np.ndarray:
    """Status strings of all charging points of `fleet` at the tz-aware instant `when`."""
    day, offset = split_utc(when)
    return _STATUS_ARRAY[point_status_codes(fleet, day, np.array([offset]))[:, 0]]


def split_utc(when: datetime) -> tuple[date, float]:
    """(UTC date, seconds since that UTC midnight) of a tz-aware datetime."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"poll time must be timezone-aware, got {when!r}")
    utc = when.astimezone(timezone.utc)
    day = utc.date()
    midnight = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return day, utc.timestamp() - midnight.timestamp()


# --- the day's periods ------------------------------------------------------------------------------------


def day_intervals(fleet: Fleet, day: date) -> Intervals:
    s = fleet.settings
    return _day_intervals(s.seed, s.cities, s.stations_per_city, day.toordinal(), float(s.demand_factor))


@functools.lru_cache(maxsize=32)
def _day_intervals(seed: int, cities: tuple[str, ...], stations_per_city: int, day_ord: int,
                   demand_factor: float = 1.0) -> Intervals:
    fleet = build_fleet(SimulationSettings(seed=seed, cities=cities, stations_per_city=stations_per_city))
    pts = _PointArrays.of(fleet, demand_factor)
    spill = np.zeros(pts.n)
    for d in range(day_ord - _WARMUP_DAYS, day_ord):
        prev = _simulate_day(pts, d, spill, _faults(pts, d))
        spill = _spill_over(pts.n, prev)
    faults = _faults(pts, day_ord)
    today = _simulate_day(pts, day_ord, spill, faults)

    parts = [_session_periods(prev, -DAY_S), _session_periods(today, 0.0), faults.periods(),
             _outages(fleet, pts, day_ord)]
    item, start, end, code = (np.concatenate(x) for x in zip(*parts))
    keep = (end > 0.0) & (start < DAY_S) & (end > start)
    return Intervals(item[keep], start[keep], end[keep], code[keep])


def _spill_over(n: int, sessions: dict[str, np.ndarray]) -> np.ndarray:
    """Seconds into the next day that each point stays occupied by sessions of this day (0: free at midnight)."""
    spill = np.zeros(n)
    np.maximum.at(spill, sessions["item"], sessions["block_end"] - DAY_S)
    return spill


@dataclass(frozen=True)
class _PointArrays:
    """Column arrays of the charging points that the session simulation needs."""

    n: int
    keys: np.ndarray
    is_dc: np.ndarray
    rate: np.ndarray
    ac_median_h: np.ndarray
    overnight_factor: np.ndarray
    commuter_factor: np.ndarray
    dc_median_h: np.ndarray
    reservable: np.ndarray
    fault_rate: np.ndarray
    station_row: np.ndarray

    @classmethod
    def of(cls, fleet: Fleet, demand_factor: float = 1.0) -> "_PointArrays":
        p = fleet.charging_points
        kw = p["max_power_kw"].to_numpy(dtype=float)
        rate = p["arrival_rate"].to_numpy(dtype=float)
        return cls(
            n=len(p),
            keys=p["key"].to_numpy(dtype=np.uint64),
            is_dc=(p["kind"] == "DC").to_numpy(),
            rate=rate if demand_factor == 1.0 else rate * demand_factor,  # 1.0: the very same numbers as before
            ac_median_h=p["ac_median_h"].to_numpy(dtype=float),
            overnight_factor=p["overnight_factor"].to_numpy(dtype=float),
            commuter_factor=p["commuter_factor"].to_numpy(dtype=float),
            dc_median_h=0.55 * (50.0 / kw) ** 0.15,  # faster chargers, slightly shorter stops
            reservable=p["reservable"].to_numpy(dtype=bool),
            fault_rate=p["fault_rate"].to_numpy(dtype=float),
            station_row=p["station_row"].to_numpy(),
        )


# --- sessions ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=128)
def _day_clock(day_ord: int) -> tuple[np.ndarray, np.ndarray]:
    """Local (Europe/Berlin) hour and day type (0 weekday, 1 Saturday, 2 Sunday/holiday) of each UTC hour."""
    day = date.fromordinal(day_ord)
    midnight = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    hours, types = np.empty(24, dtype=int), np.empty(24, dtype=int)
    for h in range(24):
        local = (midnight + timedelta(hours=h)).astimezone(BERLIN)
        hours[h] = local.hour
        holiday = (local.month, local.day) in _FIXED_HOLIDAYS
        types[h] = 2 if holiday or local.weekday() == 6 else 1 if local.weekday() == 5 else 0
    return hours, types


@functools.lru_cache(maxsize=128)
def _cumulative_intensity(day_ord: int, kind: str) -> np.ndarray:
    """Integrated profile at each UTC hour boundary of the day (25 knots), for inverting arrivals."""
    hours, types = _day_clock(day_ord)
    return np.concatenate([[0.0], np.cumsum(_PROFILE[kind][types, hours])])


_KNOTS_S = np.arange(25) * 3600.0


def _simulate_day(pts: _PointArrays, day_ord: int, busy0: np.ndarray, faults: "_Faults") -> dict[str, np.ndarray]:
    """Sessions arriving during one UTC day, in seconds from its midnight.

    Candidate arrivals come from a time-changed unit-rate Poisson process (exact for the piecewise-constant
    profile); the loop runs over candidate numbers, vectorised over all points still inside the day.
    """
    lam = {kind: _cumulative_intensity(day_ord, kind) for kind in ("AC", "DC")}
    end_pos = np.where(pts.is_dc, lam["DC"][-1], lam["AC"][-1])
    pos = np.zeros(pts.n)
    busy = busy0.astype(float).copy()
    idx = np.arange(pts.n)
    out: list[dict[str, np.ndarray]] = []
    k = 0
    while idx.size:
        pos[idx] += exponential(pts.keys[idx], day_ord, _ARRIVAL, k) / pts.rate[idx]
        inside = pos[idx] < end_pos[idx]
        idx = idx[inside]
        if not idx.size:
            break
        p = pos[idx]
        t = np.where(pts.is_dc[idx], np.interp(p, lam["DC"], _KNOTS_S), np.interp(p, lam["AC"], _KNOTS_S))
        free = (t >= busy[idx]) & ~faults.covers(idx, t)
        if free.any():
            session = _session(pts, idx[free], t[free], day_ord, k)
            busy[session["item"]] = session["block_end"]
            out.append(session)
        k += 1
    if not out:
        return {name: np.array([], dtype=int if name == "item" else float)
                for name in ("item", "start", "charge_end", "block_end", "reserve_start")}
    return {name: np.concatenate([o[name] for o in out]) for name in out[0]}


def _session(pts: _PointArrays, item: np.ndarray, start: np.ndarray, day_ord: int, k: int) -> dict[str, np.ndarray]:
    """Durations of accepted arrivals: AC hours (or until the next morning), DC 20-60 min; lognormal."""
    keys = pts.keys[item]
    hours, types = _day_clock(day_ord)
    utc_hour = np.minimum((start // 3600).astype(int), 23)
    local_h = hours[utc_hour] + (start % 3600) / 3600.0
    z = normal(keys, day_ord, _DURATION, k)

    ac_h = np.clip(pts.ac_median_h[item] * np.exp(0.75 * z), 1 / 6, 12.0)
    p_commute = np.where(types[utc_hour] == 0, _COMMUTER_P[local_h.astype(int)] * pts.commuter_factor[item], 0.0)
    commuter = uniform(keys, day_ord, _OVERNIGHT, k, 1) < p_commute
    ac_h = np.where(commuter, np.clip(8.5 + 1.2 * z, 4.0, 11.0), ac_h)
    p_night = np.clip(_OVERNIGHT_P[local_h.astype(int) % 24] * pts.overnight_factor[item], 0.0, 0.9)
    overnight = uniform(keys, day_ord, _OVERNIGHT, k) < p_night
    until_morning = ((7.5 - local_h) % 24.0) * np.exp(0.15 * z)
    ac_h = np.where(overnight, np.clip(until_morning, 2.0, 20.0), ac_h)
    dc_h = np.clip(pts.dc_median_h[item] * np.exp(0.35 * z), 8 / 60, 1.5)
    charge_s = np.where(pts.is_dc[item], dc_h, ac_h) * 3600.0

    blocks = uniform(keys, day_ord, _BLOCK, k, 0) < np.where(pts.is_dc[item], 0.04, 0.1)
    block_s = np.where(blocks, np.clip(2400.0 * np.exp(0.8 * normal(keys, day_ord, _BLOCK, k)), 600, 4 * 3600), 0.0)
    occupied = np.minimum(charge_s + block_s, _MAX_OCCUPANCY_S)
    charge_s = np.minimum(charge_s, occupied)

    reserves = pts.reservable[item] & (uniform(keys, day_ord, _RESERVE, k, 0) < 0.15)
    reserve_s = np.where(reserves, 300.0 + 1500.0 * uniform(keys, day_ord, _RESERVE, k, 1), 0.0)
    return {"item": item, "start": start, "charge_end": start + charge_s, "block_end": start + occupied,
            "reserve_start": start - reserve_s}


def _session_periods(s: dict[str, np.ndarray], shift: float):
    """CHARGING, BLOCKED and RESERVED periods of simulated sessions, shifted onto the evaluated day."""
    item, start = s["item"], s["start"] + shift
    charge_end, block_end, reserve_start = s["charge_end"] + shift, s["block_end"] + shift, s["reserve_start"] + shift
    n = len(item)
    return (np.concatenate([item, item, item]),
            np.concatenate([start, charge_end, reserve_start]),
            np.concatenate([charge_end, block_end, start]),
            np.concatenate([np.full(n, CHARGING), np.full(n, BLOCKED), np.full(n, RESERVED)]))


# --- faults and outages -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Faults:
    """OUTOFORDER / INOPERATIVE periods per point (points x lookback days), seconds from the day's midnight."""

    start: np.ndarray
    end: np.ndarray
    code: np.ndarray

    def covers(self, item: np.ndarray, t: np.ndarray) -> np.ndarray:
        return ((self.start[item] <= t[:, None]) & (t[:, None] < self.end[item])).any(axis=1)

    def periods(self):
        item = np.repeat(np.arange(self.start.shape[0]), self.start.shape[1])
        start, end, code = self.start.ravel(), self.end.ravel(), self.code.ravel()
        real = np.isfinite(start)
        return item[real], start[real], end[real], code[real]


def _faults(pts: _PointArrays, day_ord: int) -> _Faults:
    """Each point fails on a day with its own (small) probability; repairs take hours to days."""
    days = range(day_ord - _FAULT_LOOKBACK_DAYS, day_ord + 1)
    start = np.full((pts.n, len(days)), np.inf)
    end = np.full((pts.n, len(days)), -np.inf)
    code = np.zeros((pts.n, len(days)), dtype=np.int8)
    for j, d in enumerate(days):
        hit = uniform(pts.keys, d, _FAULT, 0) < pts.fault_rate
        begin = (d - day_ord) * DAY_S + DAY_S * uniform(pts.keys, d, _FAULT, 1)
        length = np.clip(14 * 3600.0 * np.exp(1.0 * normal(pts.keys, d, _FAULT, 2)), 3600.0, 4 * DAY_S)
        start[hit, j], end[hit, j] = begin[hit], begin[hit] + length[hit]
        code[:, j] = np.where(uniform(pts.keys, d, _FAULT, 3) < 0.55, OUTOFORDER, INOPERATIVE)
    return _Faults(start, end, code)


def _outages(fleet: Fleet, pts: _PointArrays, day_ord: int):
    """Station-wide UNKNOWN periods: the backend lost contact with the station (all its points)."""
    st = fleet.stations
    keys = st["key"].to_numpy(dtype=np.uint64)
    rate = st["outage_rate"].to_numpy(dtype=float)
    items, starts, ends = [], [], []
    for d in range(day_ord - _OUTAGE_LOOKBACK_DAYS, day_ord + 1):
        hit = uniform(keys, d, _OUTAGE, 0) < rate
        begin = (d - day_ord) * DAY_S + DAY_S * uniform(keys, d, _OUTAGE, 1)
        length = np.clip(5 * 3600.0 * np.exp(0.9 * normal(keys, d, _OUTAGE, 2)), 1200.0, 2 * DAY_S)
        on_point = hit[pts.station_row]
        items.append(np.flatnonzero(on_point))
        starts.append(begin[pts.station_row][on_point])
        ends.append((begin + length)[pts.station_row][on_point])
    item = np.concatenate(items)
    return item, np.concatenate(starts), np.concatenate(ends), np.full(len(item), UNKNOWN)


# --- marking periods on a time grid ------------------------------------------------------------------------


def _coverage(item: np.ndarray, start: np.ndarray, end: np.ndarray, times: np.ndarray, n: int) -> np.ndarray:
    """Boolean (n x len(times)): is times[j] inside some [start, end) of item i? Difference arrays, no loops."""
    m = len(times)
    lo = np.searchsorted(times, start, side="left")  # first time >= start
    hi = np.searchsorted(times, end, side="left")  # first time >= end
    width = m + 1
    diff = (np.bincount(item * width + lo, minlength=n * width)
            - np.bincount(item * width + hi, minlength=n * width)).reshape(n, width)
    return np.cumsum(diff[:, :m], axis=1) > 0
