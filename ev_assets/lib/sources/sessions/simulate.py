"""Deterministic simulated session files, in exactly the recorded formats.

Simulated mode must exercise the same parsers as replay and live, so the generator writes bytes (Norway CSVs
with decimal commas and CRLF, ACN JSON with RFC-1123 times, JSON Lines event logs) rather than rows. Everything
follows from `SimulationSettings` (seed, start, days, cities, stations_per_city): the same settings give the
same bytes. Each source draws from its own stream per day, so the reports and the hourly loads derived from them
always match, whichever is pulled first, and a day's records are the same whatever range it was pulled in.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any, Iterable
from zoneinfo import ZoneInfo

from ev_assets.lib.settings import SimulationSettings

GARAGES = ("SimA1", "SimB2", "SimC3")
PRIVATE_USERS_PER_GARAGE = 4
HOURLY_POWERS_KW = (3.6, 7.2)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
ACN_TIMEZONE = "America/Los_Angeles"
ACN_SITE, ACN_CLUSTER = "0099", "0099"
EVENT_INTERVAL = timedelta(minutes=15)
PRICE_PER_KWH_EUR = 0.39
CAR_POWERS_KW = (3.7, 7.4, 11.0, 11.0, 22.0, 50.0, 100.0)  # what the car can take


def simulated_files(sim: SimulationSettings, source: str) -> list[tuple[str, bytes]]:
    """The files one simulated pull of `source` brings."""
    stamp = f"{sim.start:%Y%m%d}_{sim.days}d"
    if source == "session_reports":
        return [(f"simulated_{stamp}_EV charging reports.csv", reports_csv(norway_sessions(sim)))]
    if source == "hourly_loads":
        sessions = norway_sessions(sim)
        return [(f"simulated_{stamp}_Hourly EV loads.csv", hourly_loads_csv(sessions, sim.start))]
    if source == "acn_sessions":
        return [(f"simulated_{stamp}_acndata_sessions.json", acn_json(sim))]
    if source == "charging_events":
        return event_log_files(sim)
    raise ValueError(f"unknown session source {source!r}")


# --- Norway-format reports and hourly loads --------------------------------------------------------------------


@dataclass(frozen=True)
class NorwaySession:
    session_id: int
    garage_id: str
    user_id: str
    shared_id: str | None  # set for shared users ("Shared-<n>"), who have user ids like "Share-<n>"
    plugin: datetime  # naive local (Europe/Oslo) wall time, to the minute
    plugout: datetime
    energy_kwh: float

    @property
    def duration_hours(self) -> float:
        return (self.plugout - self.plugin).total_seconds() / 3600.0


def _users() -> list[tuple[str, str, str | None]]:
    """(garage, user, shared id): a few private users per garage and one shared (pool) user each."""
    users = []
    for n, garage in enumerate(GARAGES, start=1):
        users += [(garage, f"{garage}-{k}", None) for k in range(1, PRIVATE_USERS_PER_GARAGE + 1)]
        users.append((garage, f"Share-{n}", f"Shared-{n}"))
    return users


def _day_stream(sim: SimulationSettings, source: str, day: date) -> random.Random:
    """The random stream of one source and day: a day's records are the same whatever range they were pulled in
    (an overlapping export repeats them exactly), and no two days are alike."""
    return random.Random(f"{sim.seed}:{source}:{day.isoformat()}")


def _energy(rng: random.Random, plugin: datetime, plugout: datetime) -> float:
    """2-40 kWh, but never more than a 3.6 kW charger could deliver while plugged in."""
    hours = (plugout - plugin).total_seconds() / 3600.0
    return round(min(rng.uniform(2.0, 40.0), 0.95 * HOURLY_POWERS_KW[0] * hours), 2)


def _minute(day: date, rng: random.Random, first_hour: int, last_hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, rng.randint(first_hour, last_hour), rng.randint(0, 59))


def norway_sessions(sim: SimulationSettings) -> list[NorwaySession]:
    """Evening plug-ins (16-21 h) until the next morning, plus some midday top-ups of shared cars.

    Energy is 2-40 kWh, but never more than a 3.6 kW charger could deliver while plugged in, so the hourly
    loads derived from the sessions deliver exactly the reported energy.
    """
    drafts = []
    for offset in range(sim.days):
        day = sim.start + timedelta(days=offset)
        rng = _day_stream(sim, "norway", day)
        plugged = []
        for garage, user, shared in _users():
            if shared and rng.random() < 0.4:
                start = _minute(day, rng, 10, 12)
                plugged.append((garage, user, shared, start, start + timedelta(minutes=rng.randint(60, 180))))
            if rng.random() < 0.7:
                start = _minute(day, rng, 16, 21)
                plugged.append((garage, user, shared, start, _minute(day + timedelta(days=1), rng, 6, 8)))
        drafts += [(*draft, _energy(rng, draft[3], draft[4])) for draft in plugged]
    sessions = []
    number = {user: n for n, (_, user, _) in enumerate(_users(), start=1)}
    for garage, user, shared, plugin, plugout, energy in sorted(drafts, key=lambda d: (d[3], d[1])):
        # the id names the user and the plug-in minute: the same session has the same id whatever range is
        # simulated, and sessions of other ranges never reuse it (the raw tables merge pulls by session id)
        session_id = int(f"{plugin:%y%m%d%H%M}") * 100 + number[user]
        sessions.append(NorwaySession(session_id, garage, user, shared, plugin, plugout, energy))
    return sessions


def _decimal(value: float, digits: int) -> str:
    """A number as the dataset writes it: decimal comma, no trailing zeros (`0,3`, `29,87`)."""
    text = f"{round(value, digits):.{digits}f}".rstrip("0").rstrip(".")
    return text.replace(".", ",") or "0"


def _stamp(moment: datetime) -> str:
    return f"{moment:%d.%m.%Y %H:%M}"


def _csv_bytes(rows: Iterable[list[str]]) -> bytes:
    return "".join(";".join(row) + "\r\n" for row in rows).encode("utf-8")


REPORT_HEADER = ["session_ID", "Garage_ID", "User_ID", "User_type", "Shared_ID", "Start_plugin", "Start_plugin_hour",
                 "End_plugout", "End_plugout_hour", "El_kWh", "Duration_hours", "month_plugin", "weekdays_plugin"]


def reports_csv(sessions: list[NorwaySession]) -> bytes:
    rows = [REPORT_HEADER]
    for s in sessions:
        rows.append([
            str(s.session_id), s.garage_id, s.user_id, "Shared" if s.shared_id else "Private", s.shared_id or "NA",
            _stamp(s.plugin), str(s.plugin.hour), _stamp(s.plugout), str(s.plugout.hour),
            _decimal(s.energy_kwh, 2), _decimal(s.duration_hours, 9), MONTHS[s.plugin.month - 1],
            WEEKDAYS[s.plugin.weekday()],
        ])
    return _csv_bytes(rows)


HOURLY_HEADER = ["date_from", "date_to", "User_ID", "session_ID", "Synthetic_3_6kW", "Synthetic_7_2kW",
                 "Flex_3_6kW", "Flex_7_2kW"]


def _hour_loads(s: NorwaySession, hour: datetime, power_kw: float) -> tuple[float, float]:
    """(energy charged, flexible energy) in one hour when charging at `power_kw` from plug-in until done.

    This is how the dataset defines its synthetic loads: charging starts at plug-in at full power; the plugged-in
    time after the car is full is flexibility (`Flex_*`).
    """
    def charged_by(moment: datetime) -> float:
        elapsed = max(0.0, (min(moment, s.plugout) - s.plugin).total_seconds() / 3600.0)
        return min(s.energy_kwh, power_kw * elapsed)

    end = hour + timedelta(hours=1)
    plugged = max(0.0, (min(end, s.plugout) - max(hour, s.plugin)).total_seconds() / 3600.0)
    charged = charged_by(end) - charged_by(hour)
    return charged, power_kw * plugged - charged


def _load_cell(value: float) -> str:
    return "NA" if value < 0.0005 else _decimal(value, 3)


def hourly_loads_csv(sessions: list[NorwaySession], start: date) -> bytes:
    """One row per hour and active session, one row of NAs for an hour without any, from `start` 00:00 on."""
    rows = [HOURLY_HEADER]
    hour = datetime(start.year, start.month, start.day)
    end = max((s.plugout for s in sessions), default=hour)
    while hour < end:
        active = [s for s in sessions if s.plugin < hour + timedelta(hours=1) and s.plugout > hour]
        stamps = [_stamp(hour), _stamp(hour + timedelta(hours=1))]
        if not active:
            rows.append(stamps + ["NA"] * 6)
        for s in sorted(active, key=lambda s: (s.user_id, s.session_id)):
            (syn36, flex36), (syn72, flex72) = (_hour_loads(s, hour, p) for p in HOURLY_POWERS_KW)
            loads = [_load_cell(v) for v in (syn36, syn72, flex36, flex72)]
            rows.append(stamps + [s.user_id, str(s.session_id)] + loads)
        hour += timedelta(hours=1)
    return _csv_bytes(rows)


# --- ACN-Data-like sessions --------------------------------------------------------------------------------------


def _rfc1123(moment: datetime) -> str:
    return format_datetime(moment.astimezone(timezone.utc), usegmt=True)


def _acn_session(rng: random.Random, station: str, space: str, arrival: datetime) -> dict[str, Any]:
    """One workplace session: arrive in the morning, stay 3-10 h, charge at up to 6.6 kW."""
    stay = timedelta(minutes=rng.randint(180, 600))
    connection = arrival.astimezone(timezone.utc)
    disconnect = connection + stay
    delivered = round(min(rng.uniform(1.0, 30.0), 6.6 * stay.total_seconds() / 3600.0 * 0.9), 3)
    done = connection + timedelta(hours=delivered / 6.6, minutes=rng.randint(1, 20))
    user = rng.randint(100, 2500) if rng.random() < 0.9 else None
    inputs = None
    if user is not None:
        inputs = []
        for k in range(rng.choice((1, 1, 1, 2))):
            requested = round(rng.uniform(5.0, 50.0), 1)
            minutes = rng.randint(60, 720)
            inputs.append({
                "WhPerMile": 300, "kWhRequested": requested, "milesRequested": int(requested * 1000 / 300),
                "minutesAvailable": minutes, "modifiedAt": _rfc1123(connection + timedelta(minutes=k * 7)),
                "paymentRequired": True, "requestedDeparture": _rfc1123(connection + timedelta(minutes=minutes)),
                "userID": user,
            })
    return {
        "_id": f"{rng.getrandbits(96):024x}",
        "clusterID": ACN_CLUSTER,
        "connectionTime": _rfc1123(connection),
        "disconnectTime": _rfc1123(disconnect),
        "doneChargingTime": _rfc1123(done) if done < disconnect and rng.random() < 0.7 else None,
        "kWhDelivered": delivered,
        "sessionID": f"{station.replace('-', '_')}_{connection:%Y-%m-%d %H:%M:%S}.{rng.randint(0, 999999):06d}",
        "siteID": ACN_SITE,
        "spaceID": space,
        "stationID": station,
        "timezone": ACN_TIMEZONE,
        "userID": None if user is None else f"{user:09d}",
        "userInputs": inputs,
    }


def acn_json(sim: SimulationSettings) -> bytes:
    """A JSON list of sessions at one simulated workplace site with `stations_per_city` stations."""
    local = ZoneInfo(ACN_TIMEZONE)
    sessions = []
    for offset in range(sim.days):
        day = sim.start + timedelta(days=offset)
        rng = _day_stream(sim, "acn", day)
        for k in range(1, sim.stations_per_city + 1):
            if rng.random() < 0.75:
                arrival = _minute(day, rng, 6, 10).replace(tzinfo=local)
                station = f"{int(ACN_SITE)}-{int(ACN_CLUSTER)}-{k}-{1000 + k}"
                sessions.append((arrival, station, _acn_session(rng, station, f"SIM-{k:02d}", arrival)))
    items = [item for _, _, item in sorted(sessions, key=lambda s: s[:2])]  # by connection time, like the API
    return json.dumps(items, indent=2).encode("utf-8")


# --- charging-event logs -------------------------------------------------------------------------------------------


def fleet_stations(sim: SimulationSettings) -> list[tuple[str, tuple[float, ...]]]:
    """(station id, max power in kW of each charging point) of the simulated fleet.

    Taken from the chargecloud simulator (`ev_assets.lib.simulator.build_fleet`), so event logs name the same
    stations as the simulated polls. That simulator is optional for the session sources: when it is missing,
    rejects the settings (e.g. a city it does not know) or fails, stations of the same shape are made up here
    (`SIM-KOELN-001`, two 11 / 22 kW points each) rather than breaking the pull.
    """
    try:
        from ev_assets.lib.simulator import build_fleet  # noqa: PLC0415 - optional, see above

        points = build_fleet(sim).charging_points
        powers = points.groupby("station_id", sort=False)["max_power_kw"].agg(lambda kw: tuple(map(float, kw)))
        stations = [(str(station), kws) for station, kws in powers.items()]
    except Exception:  # noqa: BLE001 - any failure of the optional simulator means: use own stations
        stations = []
    return stations or [
        (f"SIM-{city.upper()}-{i:03d}", (11.0, 22.0)) for city in sim.cities for i in range(1, sim.stations_per_city + 1)
    ]


def _uuid(rng: random.Random, salt: str) -> str:
    """A random id made unique to `salt` (the transaction's station and start): a simulated range that starts on
    another day draws the same random numbers, and its events must not reuse the ids of another range's."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"ev-assets:{salt}:{rng.getrandbits(128):032x}"))


def _iso(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%SZ}"


def _transaction_events(rng: random.Random, station: str, connector: int, start: datetime,
                        minutes: int, power_kw: float) -> list[dict[str, Any]]:
    """Started, an Updated every 15 minutes, and Ended with the total energy and its cost."""
    salt = f"{station}|{connector}|{start:%Y-%m-%dT%H:%M}"
    transaction = _uuid(rng, salt)
    end = start + timedelta(minutes=minutes)
    events = []

    def event(kind: str, moment: datetime, energy_wh: int, power_w: int, **extra: Any) -> None:
        events.append({"eventId": _uuid(rng, salt), "transactionId": transaction, "stationId": station,
                       "connectorId": connector, "eventType": kind, "timestamp": _iso(moment), "seqNo": len(events),
                       "meterValue": {"energyWh": energy_wh, "powerW": power_w}, **extra})

    event("Started", start, 0, int(power_kw * 1000))
    energy, moment = 0.0, start
    while moment + EVENT_INTERVAL < end:
        power = power_kw * rng.uniform(0.85, 1.0)
        energy += power * EVENT_INTERVAL.total_seconds() / 3.6  # Wh
        moment += EVENT_INTERVAL
        event("Updated", moment, int(energy), int(power * 1000))
    energy += power_kw * 0.9 * (end - moment).total_seconds() / 3.6
    total = round(energy / 1000.0 * PRICE_PER_KWH_EUR, 2)
    event("Ended", end, int(energy), 0, cost={"total": total, "currency": "EUR"})
    return events


def simulated_events(sim: SimulationSettings) -> list[dict[str, Any]]:
    """0-3 transactions per station and day, one after another, starting 06:00-22:00 UTC.

    Each uses one of the station's charging points (its OCPP connector number) at the lower of the point's and
    the car's power.
    """
    stations = fleet_stations(sim)
    events = []
    for offset in range(sim.days):
        day = sim.start + timedelta(days=offset)
        rng = _day_stream(sim, "events", day)
        last_start = datetime(day.year, day.month, day.day, 22, tzinfo=timezone.utc)
        for station, point_kw in stations:
            cursor = datetime(day.year, day.month, day.day, 6, tzinfo=timezone.utc)
            for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
                cursor += timedelta(minutes=rng.randint(10, 240))
                minutes = rng.randint(20, 180)
                if cursor >= last_start:
                    break
                connector = rng.randint(1, len(point_kw))
                power = min(point_kw[connector - 1], rng.choice(CAR_POWERS_KW))
                events += _transaction_events(rng, station, connector, cursor, minutes, power)
                cursor += timedelta(minutes=minutes)
    return sorted(events, key=lambda e: (e["timestamp"], e["stationId"], e["seqNo"]))


def event_log_files(sim: SimulationSettings) -> list[tuple[str, bytes]]:
    """One JSON Lines file per UTC day of the events, as a station back end would export them."""
    days: dict[str, list[str]] = {}
    for e in simulated_events(sim):
        days.setdefault(e["timestamp"][:10], []).append(json.dumps(e, separators=(",", ":")))
    return [(f"simulated_charging_events_{day}.jsonl", ("\n".join(lines) + "\n").encode("utf-8"))
            for day, lines in sorted(days.items())]
