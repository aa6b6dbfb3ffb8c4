"""Deterministic simulated vehicle telemetry, in the recorded CSV format (so it goes through the same parser).

A small fleet of six cars in Germany (local habits in Europe/Berlin, timestamps written in UTC), each with its
own battery, charger and habits:

| vehicle | habit | battery | charger |
|---|---|---|---|
| SIM-EV-01 | commuter, plugs in at home in the evening when below its limit | 60 kWh | 11 kW |
| SIM-EV-02 | short commute, plugs in at home nearly every evening | 40 kWh | 7.4 kW |
| SIM-EV-03 | daytime fleet car: many short trips, charges at the depot at midday | 75 kWh | 11 kW |
| SIM-EV-04 | rare plugger: long commute, charges only when the battery runs low | 80 kWh | 11 kW |
| SIM-EV-05 | charges at work during the day, never at home | 50 kWh | 7.4 kW |
| SIM-EV-06 | occasional driver, mostly at weekends | 64 kWh | 11 kW |

What real traces have, the simulated ones have too: irregular sampling (a car reports every 1-3 minutes while
driving, every 1-10 minutes while charging, and with an occasional dropout of a quarter to half an hour), long gaps
while it sleeps parked (a night, a working day, a weekend: hours to days; sporadic wake-ups such as an app
check split some of them), charging at the charger's power times 90 % efficiency, tapering above 80 % to a
fifth of it near 100 %, consumption while driving, and a slight drain (0.1-1 % a day) while parked unplugged.
Readings are rounded to 0.1 %. The extra column `odometer_km` ends up in the table's `extra`.

Everything follows from `SimulationSettings` (seed, start, days): the same settings give the same bytes.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from ev_assets.lib import vocabulary
from ev_assets.lib.settings import SimulationSettings
from ev_assets.lib.simulator._rng import generator

LOCAL = ZoneInfo(vocabulary.LOCAL_TZ)
EFFICIENCY = 0.9  # share of the charger's power that ends up in the battery
TAPER_FROM_PCT = 80.0  # charging slows above this state of charge ...
TAPER_FLOOR = 0.2  # ... down to this share of full power near 100 %
HEADER = ["vehicle_id", "timestamp", "soc_pct", "plugged_in", "odometer_km"]


@dataclass(frozen=True)
class Vehicle:
    vehicle_id: str
    habit: str  # home_commuter | home_daily | fleet_daytime | rare_plugger | workplace | occasional
    battery_kwh: float
    charger_kw: float
    kwh_per_100km: float
    charge_limit_pct: float  # the car stops charging here
    wake_ups_per_day: float  # sporadic readings while parked asleep (app checks, over-the-air pings)
    drain_pct_per_day: float  # idle drain while parked unplugged


FLEET = (
    Vehicle("SIM-EV-01", "home_commuter", 60.0, 11.0, 17.0, 90.0, 2.0, 0.3),
    Vehicle("SIM-EV-02", "home_daily", 40.0, 7.4, 15.0, 100.0, 1.5, 0.2),
    Vehicle("SIM-EV-03", "fleet_daytime", 75.0, 11.0, 20.0, 100.0, 1.0, 0.4),
    Vehicle("SIM-EV-04", "rare_plugger", 80.0, 11.0, 18.0, 90.0, 0.5, 0.5),
    Vehicle("SIM-EV-05", "workplace", 50.0, 7.4, 16.0, 85.0, 1.5, 0.3),
    Vehicle("SIM-EV-06", "occasional", 64.0, 11.0, 17.0, 80.0, 0.7, 0.6),
)


@dataclass(frozen=True)
class Trip:
    depart: datetime  # local wall time (Europe/Berlin, aware)
    minutes: int
    km: float
    to: str  # home | work | depot | stop: where the car parks afterwards


# --- public API ---------------------------------------------------------------------------------------------------
def simulated_files(sim: SimulationSettings) -> list[tuple[str, bytes]]:
    """The files one simulated pull brings: one CSV of every vehicle's readings."""
    return [(f"simulated_{sim.start:%Y%m%d}_{sim.days}d_vehicle_telemetry.csv", traces_csv(simulate_traces(sim)))]


def simulate_traces(sim: SimulationSettings, fleet: tuple[Vehicle, ...] = FLEET) -> pd.DataFrame:
    """Readings of every vehicle over [start, start + days) local time: vehicle_id, reading_at (UTC), soc_pct,
    plugged_in, odometer_km; sorted by vehicle and time."""
    frames = [_simulate_vehicle(vehicle, sim) for vehicle in fleet]
    return pd.concat(frames, ignore_index=True)


def traces_csv(traces: pd.DataFrame) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for row in traces.itertuples(index=False):
        writer.writerow([
            row.vehicle_id, row.reading_at.strftime("%Y-%m-%dT%H:%M:%SZ"), f"{row.soc_pct:.1f}",
            "true" if row.plugged_in else "false", f"{row.odometer_km:.1f}",
        ])
    return out.getvalue().encode("utf-8")


def charge_rate_pct_per_hour(vehicle: Vehicle, soc: float) -> float:
    """SOC gain per hour at `soc`: full power below 80 %, then tapering linearly to a fifth of it at 100 %."""
    full = vehicle.charger_kw * EFFICIENCY / vehicle.battery_kwh * 100.0
    if soc <= TAPER_FROM_PCT:
        return full
    return full * max(TAPER_FLOOR, 1.0 - (1.0 - TAPER_FLOOR) * (soc - TAPER_FROM_PCT) / (100.0 - TAPER_FROM_PCT))


# --- trips --------------------------------------------------------------------------------------------------------
def _at(day: date, hours: float) -> datetime:
    hours = min(max(hours, 0.0), 23.99)
    return datetime.combine(day, time(0), LOCAL) + timedelta(hours=hours)


def _leg(depart: datetime, km: float, to: str, rng: np.random.Generator, speed_kmh: float = 40.0) -> Trip:
    minutes = max(3, int(round(km / speed_kmh * 60 * rng.uniform(0.8, 1.3))))
    return Trip(depart, minutes, km, to)


def _day_trips(vehicle: Vehicle, day: date, seed: int) -> list[Trip]:
    """The trips of one vehicle on one local day (each day from its own stream, so days do not depend on
    each other)."""
    rng = generator(seed, "vehicle_telemetry", vehicle.vehicle_id, day.isoformat())
    weekday = day.weekday() < 5
    h = vehicle.habit
    trips: list[Trip] = []
    if h in ("home_commuter", "home_daily", "rare_plugger", "workplace"):
        km = {"home_commuter": 25.0, "home_daily": 12.0, "rare_plugger": 45.0, "workplace": 20.0}[h]
        if weekday and rng.random() < 0.93:
            go = _at(day, rng.normal(7.4, 0.35))
            back = _at(day, rng.normal(16.9, 0.6))
            trips += [_leg(go, km * rng.uniform(0.9, 1.1), "work", rng, 45),
                      _leg(back, km * rng.uniform(0.9, 1.1), "home", rng, 40)]
            if rng.random() < 0.3:  # an evening errand
                out = _at(day, rng.normal(19.3, 0.6))
                trips += [_leg(out, rng.uniform(3, 10), "stop", rng, 30),
                          _leg(out + timedelta(minutes=int(rng.uniform(20, 70))), rng.uniform(3, 10), "home", rng, 30)]
        elif not weekday and rng.random() < 0.6:
            out = _at(day, rng.normal(11.5, 1.5))
            trips += [_leg(out, rng.uniform(8, 40), "stop", rng, 50),
                      _leg(out + timedelta(minutes=int(rng.uniform(60, 200))), rng.uniform(8, 40), "home", rng, 50)]
    elif h == "fleet_daytime":
        if weekday:
            clock = rng.normal(7.9, 0.25)
            for half in ("morning", "afternoon"):
                legs = int(rng.integers(2, 5))
                for k in range(legs):
                    to = "depot" if k == legs - 1 else "stop"
                    trip = _leg(_at(day, clock), rng.uniform(6, 30), to, rng, 35)
                    trips.append(trip)
                    clock += trip.minutes / 60 + (rng.uniform(0.25, 0.7) if to == "stop" else 0)
                if half == "morning":
                    clock = max(clock + rng.uniform(0.75, 1.5), 12.0)  # lunch break at the depot
        elif day.weekday() == 5 and rng.random() < 0.3:
            out = _at(day, rng.normal(9.5, 0.5))
            trips += [_leg(out, rng.uniform(10, 30), "stop", rng, 35),
                      _leg(out + timedelta(minutes=int(rng.uniform(30, 90))), rng.uniform(10, 30), "depot", rng, 35)]
    elif h == "occasional":
        if (weekday and rng.random() < 0.25) or (not weekday and rng.random() < 0.7):
            out = _at(day, rng.normal(10.5 if not weekday else 14.0, 1.5))
            km = rng.uniform(30, 90) if not weekday else rng.uniform(5, 15)
            back = out + timedelta(minutes=int(rng.uniform(90, 240)))
            trips += [_leg(out, km, "stop", rng, 60), _leg(back, km * rng.uniform(0.8, 1.2), "home", rng, 60)]
    # trips never overlap: a departure waits for the arrival before it
    ordered: list[Trip] = []
    for trip in sorted(trips, key=lambda t: t.depart):
        if ordered:
            earliest = ordered[-1].depart + timedelta(minutes=ordered[-1].minutes + 5)
            if trip.depart < earliest:
                trip = Trip(earliest, trip.minutes, trip.km, trip.to)
        if trip.depart.date() == day:
            ordered.append(trip)
    return ordered


def _plugs_in(vehicle: Vehicle, trip: Trip, soc: float, rng: np.random.Generator) -> bool:
    """Whether the driver plugs in after `trip`, at state of charge `soc`."""
    if soc < 15 and trip.to in ("home", "depot", "work"):
        return True  # nobody leaves a nearly empty car unplugged where there is a charger
    room = soc < vehicle.charge_limit_pct - 5
    h, to = vehicle.habit, trip.to
    if h == "home_commuter" and to == "home":
        return rng.random() < (0.8 if soc < 60 else 0.45 if room else 0.05)
    if h == "home_daily" and to == "home":
        return rng.random() < (0.9 if room else 0.1)
    if h == "rare_plugger" and to == "home":
        return rng.random() < (0.9 if soc < 35 else 0.04)
    if h == "workplace" and to == "work":
        return rng.random() < (0.85 if soc < 75 else 0.2)
    if h == "fleet_daytime" and to == "depot":
        midday = trip.depart.hour < 14
        return rng.random() < ((0.9 if room else 0.2) if midday else 0.25)
    if h == "occasional" and to == "home":
        return rng.random() < (0.75 if soc < 55 else 0.05)
    return False


# --- one vehicle, minute by minute --------------------------------------------------------------------------------
PARK, DRIVE, CHARGE = 0, 1, 2


def _simulate_vehicle(vehicle: Vehicle, sim: SimulationSettings) -> pd.DataFrame:
    start = datetime.combine(sim.start, time(0), LOCAL)
    start_utc = start.astimezone(timezone.utc)
    n = int((datetime.combine(sim.start + timedelta(days=sim.days), time(0), LOCAL) - start).total_seconds() // 60)
    rng = generator(sim.seed, "vehicle_telemetry", vehicle.vehicle_id, "trace")

    def minute(moment: datetime) -> int:
        return int((moment.astimezone(timezone.utc) - start_utc).total_seconds() // 60)

    trips = [t for offset in range(sim.days) for t in _day_trips(vehicle, sim.start + timedelta(days=offset), sim.seed)]
    soc = np.empty(n + 1)
    odo = np.empty(n + 1)
    plugged = np.zeros(n, bool)
    mode = np.full(n, PARK, np.int8)
    awake = np.zeros(n, bool)
    events: list[int] = []  # minutes with a reading whatever the sampling (plug in/out, arrival, departure)
    soc[0] = rng.uniform(45, 80)
    odo[0] = float(rng.integers(5_000, 60_000))

    def wake(a: int, b: int) -> None:
        awake[max(a, 0):max(min(b, n), 0)] = True

    # parking periods [arrival, next departure) and the trips between them
    starts = [0] + [minute(t.depart) + t.minutes for t in trips]
    ends = [minute(t.depart) for t in trips] + [n]
    arrivals = [None] + trips
    for period, (a, b, came) in enumerate(zip(starts, ends, arrivals)):
        a, b = min(max(a, 0), n), min(max(b, a), n)
        drain = vehicle.drain_pct_per_day * rng.uniform(0.4, 1.6) / 1440
        plug_from, plug_to = b, b
        if came is not None and b - a > 20 and _plugs_in(vehicle, came, soc[a], rng):
            plug_from = a + int(min(rng.exponential(12) + 1, max(1, (b - a) / 3)))
            plug_to = max(plug_from + 10, b - int(rng.uniform(1, 10)))
            plug_to = min(plug_to, b)
            events += [plug_from, plug_to]
            wake(plug_from, plug_from + int(rng.uniform(2, 6)))
            wake(plug_to, plug_to + int(rng.uniform(2, 5)))
        if came is not None:
            events.append(a)
            wake(a, a + int(rng.uniform(5, 20)))
        if b < n:
            events.append(b)
            wake(b - int(rng.uniform(2, 8)), b)
        full_at = None
        for m in range(a, b):
            if plug_from <= m < plug_to:
                plugged[m] = True
                if soc[m] < vehicle.charge_limit_pct:
                    soc[m + 1] = min(vehicle.charge_limit_pct, soc[m] + charge_rate_pct_per_hour(vehicle, soc[m]) / 60)
                    mode[m] = CHARGE
                    awake[m] = True
                else:
                    soc[m + 1] = soc[m]
                    if full_at is None:
                        full_at = m
                        wake(m, m + int(rng.uniform(5, 15)))
            else:
                soc[m + 1] = max(0.0, soc[m] - drain)
            odo[m + 1] = odo[m]
        # sporadic wake-ups while parked: a Poisson process
        t = a + rng.exponential(1440 / vehicle.wake_ups_per_day)
        while t < b:
            wake(int(t), int(t) + int(rng.integers(1, 3)))
            t += rng.exponential(1440 / vehicle.wake_ups_per_day)
        if b < n and period < len(trips):
            trip = trips[period]
            d0, d1 = b, min(b + trip.minutes, n)
            use = trip.km * vehicle.kwh_per_100km / 100 / vehicle.battery_kwh * 100  # % of the battery
            for m in range(d0, d1):
                soc[m + 1] = max(1.0, soc[m] - use / trip.minutes)
                odo[m + 1] = odo[m] + trip.km / trip.minutes
                mode[m] = DRIVE
                awake[m] = True

    return _sample(vehicle, rng, start_utc, soc, odo, plugged, mode, awake, sorted(set(events)))


def _interval(mode: int, rng: np.random.Generator) -> float:
    """Minutes to the next reading while awake; now and then one is lost (a dropout of a quarter hour or more)."""
    if mode == DRIVE:
        step = rng.uniform(1.0, 3.0)
    elif mode == CHARGE:
        step = float(np.clip(rng.lognormal(np.log(4.5), 0.5), 1.0, 10.0))
    else:
        step = rng.uniform(1.0, 5.0)
    if rng.random() < 0.02:
        step += rng.uniform(12, 35)
    return step


def _sample(vehicle, rng, start_utc, soc, odo, plugged, mode, awake, events) -> pd.DataFrame:
    n = len(mode)
    is_event = np.zeros(n, bool)
    is_event[[e for e in events if 0 <= e < n]] = True
    times: list[float] = []
    next_t = -1.0
    for m in range(n):
        if is_event[m] and not (m <= next_t < m + 1):
            times.append(m + rng.uniform(0.0, 0.5))
            next_t = times[-1] + _interval(mode[m], rng)
        if not awake[m]:
            continue
        if next_t < m:  # waking up: the first reading within the minute
            next_t = m + rng.uniform(0.0, 1.0)
        while next_t < m + 1:
            if not times or next_t - times[-1] > 0.2:
                times.append(next_t)
            next_t += _interval(mode[m], rng)
    at = np.array(sorted(times))
    m = np.minimum(at.astype(int), n - 1)
    frac = at - m
    soc_at = soc[m] + frac * (soc[m + 1] - soc[m])
    odo_at = odo[m] + frac * (odo[m + 1] - odo[m])
    seconds = np.round(at * 60).astype("int64")
    reading_at = pd.Timestamp(start_utc) + pd.to_timedelta(seconds, unit="s")
    frame = pd.DataFrame({
        "vehicle_id": vehicle.vehicle_id,
        "reading_at": reading_at,
        "soc_pct": np.round(soc_at, 1),
        "plugged_in": plugged[m],
        "odometer_km": np.round(odo_at, 1),
    })
    return frame.drop_duplicates(["vehicle_id", "reading_at"]).reset_index(drop=True)
