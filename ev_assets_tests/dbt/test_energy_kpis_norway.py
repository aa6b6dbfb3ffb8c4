"""Energy KPIs of the real Norwegian Dataset 1 equal the same figures computed independently from the CSV.

The real "Dataset 1_EV charging reports.csv" (../shared/data/norway) goes through the project's parser into
`raw.session_reports` of a temporary warehouse (every other raw table empty), then dbt builds the energy marts.
The expected figures are computed here from the CSV with the `csv` module and plain Python (zoneinfo for
Europe/Oslo -> UTC), following the definitions of the docs block `energy_attribution` and the marts' YAML:

- days and clock hours are the garages' own, Europe/Oslo (the facts are UTC instants);
- a session's whole energy counts in the Oslo day it starts (daily totals, sessions started, peak day);
- hourly figures (peak hour, active charging hours, busiest hour of day) come from spreading a session's energy
  evenly over the hours it spans (energy x overlap / duration; a session without duration keeps its energy
  in its hour), each hour in the Oslo day and clock hour it falls in; a session without plug-out (and without
  duration) has no spread;
- every calendar day between an entity's first and last day has a row (0 when idle); the 7-day rolling average
  is the mean daily total of the day and the 6 days before within that range;
- entities are users (User_ID) and garages (Garage_ID); every session belongs to exactly one of each, so the
  whole dataset is the sum over garages (or over users).

Rows the parser quarantines are excluded from the expected figures by an independent check of the same rules
(field count, missing session_ID / Start_plugin, unparsable times or numbers, negative energy, plug-out before
plug-in). The parser is used only to load the warehouse, never for the expected values.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest
from ev_assets_tests.fixtures.dbt import query as dbt_query
from ev_assets_tests.fixtures.dbt import run_dbt

pytestmark = pytest.mark.slow  # dbt builds of a warehouse (a minute or more on 2 cores)


DATASET = Path("norway") / "Dataset 1_EV charging reports.csv"
OSLO = ZoneInfo("Europe/Oslo")
UTC = timezone.utc
HOUR = timedelta(hours=1)
REL = 1e-6  # relative tolerance: DuckDB and Python sum in different orders
ABS = 1e-9

# Concrete (Oslo) days checked one by one: the first day of the data, the switch to summer time, the switch back to
# winter time, a busy pre-Christmas Monday and the last day of the data.
SAMPLE_DAYS = [date(2018, 12, 21), date(2019, 3, 31), date(2019, 10, 27), date(2019, 12, 23), date(2020, 1, 31)]
# Required columns (as the parser requires them) and the header names of the columns used here.
HEADER = {
    "session_id": "session_ID", "garage_id": "Garage_ID", "user_id": "User_ID", "plugin": "Start_plugin",
    "plugout": "End_plugout", "energy": "El_kWh", "duration": "Duration_hours",
}
REQUIRED = ("session_id", "plugin")
TIME_FORMATS = ("%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S")


def approx(value: float):
    return pytest.approx(value, rel=REL, abs=ABS)


# --- the independent reading of the CSV ------------------------------------------------------------------------
@dataclass(frozen=True)
class Session:
    session_id: str
    garage_id: str | None
    user_id: str | None
    start: datetime  # UTC
    end: datetime | None  # UTC; None when the report has neither plug-out nor duration
    energy: float | None


def _local_time(text: str) -> datetime:
    for fmt in TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            pass
    raise ValueError(text)


def oslo_day(instant: datetime) -> date:
    """The Oslo day of a UTC instant: the day a garage counts it in."""
    return instant.astimezone(OSLO).date()


def _utc(local: datetime) -> datetime:
    """Europe/Oslo wall time -> aware UTC (an ambiguous hour takes the earlier offset, fold=0)."""
    return local.replace(tzinfo=OSLO).astimezone(UTC)


def read_reports(path: Path) -> tuple[list[Session], dict[int, list[str]]]:
    """The loadable sessions of the CSV and the bad rows (1-based file line -> reasons)."""
    sessions: list[Session] = []
    bad: dict[int, list[str]] = {}
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=";")
        header = next(reader)
        position = {name.strip().lower(): i for i, name in enumerate(header)}
        index = {key: position[name.lower()] for key, name in HEADER.items()}
        for fields in reader:
            line = reader.line_num
            if not any(f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                bad[line] = [f"{len(fields)} fields"]
                continue
            cell = {key: fields[i].strip() for key, i in index.items()}
            cell = {key: (None if value in ("", "NA") else value) for key, value in cell.items()}
            reasons = [f"missing {key}" for key in REQUIRED if cell[key] is None]
            times: dict[str, datetime | None] = {}
            for key in ("plugin", "plugout"):
                times[key] = None
                if cell[key] is not None:
                    try:
                        times[key] = _local_time(cell[key])
                    except ValueError:
                        reasons.append(f"unparsable {key}")
            numbers: dict[str, float | None] = {}
            for key in ("energy", "duration"):
                numbers[key] = None
                if cell[key] is not None:
                    try:
                        numbers[key] = float(cell[key].replace(",", "."))
                    except ValueError:
                        reasons.append(f"unparsable {key}")
            if times["plugin"] and times["plugout"] and times["plugout"] < times["plugin"]:
                reasons.append("plug-out before plug-in")  # compared in local wall time, like the parser
            if numbers["energy"] is not None and numbers["energy"] < 0:
                reasons.append("negative energy")
            if reasons:
                bad[line] = reasons
                continue
            start = _utc(times["plugin"])
            if times["plugout"] is not None:
                end = _utc(times["plugout"])
            elif numbers["duration"] is not None:
                end = start + timedelta(hours=numbers["duration"])
            else:
                end = None
            sessions.append(Session(cell["session_id"], cell["garage_id"], cell["user_id"], start, end,
                                    numbers["energy"]))
    return sessions, bad


def hourly_spread(session: Session) -> dict[datetime, float]:
    """The session's energy per UTC hour: energy x overlap / duration (all of it in its hour without duration).

    Hours the session touches get an entry even when it has no energy (the marts' day range counts them).
    """
    if session.end is None or session.energy is None or session.end < session.start:
        return {}
    first = session.start.replace(minute=0, second=0, microsecond=0)
    duration = (session.end - session.start).total_seconds()
    if duration == 0:
        return {first: session.energy}
    spread = {}
    hour = first
    while hour < session.end:
        overlap = (min(session.end, hour + HOUR) - max(session.start, hour)).total_seconds()
        if overlap > 0:
            spread[hour] = session.energy * overlap / duration
        hour += HOUR
    return spread


@dataclass
class Entity:
    """The independent KPIs of one user, one garage or the whole dataset."""

    started: dict[date, list[float]] = field(default_factory=lambda: defaultdict(list))  # day -> energies
    hours: dict[datetime, float] = field(default_factory=lambda: defaultdict(float))  # UTC hour -> spread kWh

    def add(self, session: Session) -> None:
        self.started[oslo_day(session.start)].append(session.energy or 0.0)
        for hour, kwh in hourly_spread(session).items():
            self.hours[hour] += kwh

    def days(self) -> list[date]:
        """Every calendar day from the first to the last day with a started session or a spread hour."""
        if "_days" not in self.__dict__:  # computed once, after all sessions were added
            touched = set(self.started) | {oslo_day(hour) for hour in self.hours}
            first, last = min(touched), max(touched)
            self._days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
            self._position = {day: i for i, day in enumerate(self._days)}
            self._by_day = defaultdict(dict)
            for hour, kwh in self.hours.items():
                if kwh > 0:
                    self._by_day[oslo_day(hour)][hour] = kwh
        return self._days

    def energy(self, day: date) -> float:
        return sum(self.started.get(day, []))

    def sessions(self, day: date) -> int:
        return len(self.started.get(day, []))

    def day_hours(self, day: date) -> dict[datetime, float]:
        """The hours (UTC instants) of the Oslo day with spread energy."""
        self.days()
        return self._by_day.get(day, {})

    def active_hours(self, day: date) -> int:
        return len(self.day_hours(day))

    def rolling_7d(self, day: date) -> float:
        days, at = self.days(), self._position[day]
        window = days[max(0, at - 6): at + 1]
        return sum(self.energy(d) for d in window) / len(window)

    def total(self) -> float:
        return sum(sum(values) for values in self.started.values())

    def daily_average(self) -> float:
        return self.total() / len(self.days())

    def mean_active_hours(self) -> float:
        return sum(self.active_hours(d) for d in self.days()) / len(self.days())


def peaks(values: dict, tolerance: float = 1e-9) -> tuple[set, float]:
    """The keys holding the maximum (all of them when equal up to float noise) and the maximum."""
    top = max(values.values())
    return {key for key, value in values.items() if value >= top - tolerance * max(1.0, abs(top))}, top


# --- fixtures ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def csv_path(shared_data: Path) -> Path:
    path = shared_data / DATASET
    if not path.is_file():
        pytest.skip(f"Norwegian Dataset 1 not found at {path}")
    return path


@pytest.fixture(scope="module")
def expected(csv_path: Path) -> dict:
    sessions, bad = read_reports(csv_path)
    ids = [s.session_id for s in sessions]
    assert len(ids) == len(set(ids)), "Dataset 1 repeats session ids: the staging model would keep only one"
    entities: dict[tuple[str, str], Entity] = defaultdict(Entity)
    whole = Entity()
    for session in sessions:
        entities[("user", session.user_id)].add(session)
        entities[("garage", session.garage_id)].add(session)
        whole.add(session)
    return {"sessions": sessions, "bad": bad, "entities": dict(entities), "whole": whole}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, csv_path: Path):
    """A warehouse with Dataset 1 in raw.session_reports through the project's parser (other raw tables empty)."""
    from ev_assets.lib import warehouse
    from ev_assets.lib.sources import sessions

    data_dir = tmp_path_factory.mktemp("norway_kpis")
    name = DATASET.as_posix()
    parsed = sessions.parse("session_reports", name, csv_path.read_bytes(), name)
    with warehouse.connect(data_dir / "warehouse.duckdb") as con:
        warehouse.replace_rows(con, "session_reports", parsed.table, "TRUE")
    return data_dir, parsed


@pytest.fixture(scope="module")
def built(loaded) -> dict:
    """`dbt build` of the energy marts and everything upstream (models, unit and data tests)."""
    data_dir, _parsed = loaded
    run = run_dbt(data_dir, "build", "--select", "+mart_energy_daily", "+mart_energy_summary",
                  dbt_vars={"ev_data_dir": str(data_dir)})
    results = run["results"]
    errors = {r["unique_id"]: r["status"] for r in results if r["status"] not in ("success", "pass", "warn")}
    assert run["returncode"] == 0 and not errors, (errors, run["stdout"][-5000:])
    return {"data_dir": data_dir, "results": results}


def query(built: dict, sql: str, params=()) -> list[tuple]:
    return dbt_query(built["data_dir"], sql, params)


def mart_daily(built: dict) -> dict[tuple[str, str, date], dict]:
    columns = ["sessions_started", "energy_kwh", "energy_kwh_cumulative", "energy_kwh_rolling_7d_avg",
               "peak_hour_start", "peak_hour_kwh", "active_charging_hours"]
    rows = query(built, f"""
        select entity_type, entity_id, day, {', '.join(columns)}
        from marts.mart_energy_daily where source_name = 'norway'
    """)
    return {(t, e, d): dict(zip(columns, rest)) for t, e, d, *rest in rows}


def mart_summary(built: dict) -> dict[tuple[str, str], dict]:
    columns = ["first_day", "last_day", "n_days", "sessions", "total_energy_kwh", "daily_average_kwh", "peak_day",
               "peak_day_kwh", "peak_hour_start", "peak_hour_kwh", "busiest_hour_of_day",
               "mean_active_charging_hours_per_day"]
    rows = query(built, f"select entity_type, entity_id, {', '.join(columns)} from marts.mart_energy_summary "
                        "where source_name = 'norway'")
    return {(t, e): dict(zip(columns, rest)) for t, e, *rest in rows}


def utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def sample_entities(expected: dict) -> dict[str, tuple[str, str]]:
    """The garage with the most energy and the user with the most sessions (chosen from the CSV)."""
    entities = expected["entities"]
    garage = max((k for k in entities if k[0] == "garage"), key=lambda k: entities[k].total())
    user = max((k for k in entities if k[0] == "user"),
               key=lambda k: sum(len(v) for v in entities[k].started.values()))
    return {"garage": garage, "user": user}


def check_day(entity: Entity, day: date, row: dict, what: str) -> None:
    """One mart_energy_daily row against the independent figures of its entity and day."""
    assert row["sessions_started"] == entity.sessions(day), what
    assert row["energy_kwh"] == approx(entity.energy(day)), what
    assert row["energy_kwh_rolling_7d_avg"] == approx(entity.rolling_7d(day)), what
    assert row["active_charging_hours"] == entity.active_hours(day), what
    hours = entity.day_hours(day)
    if not hours:
        assert row["peak_hour_start"] is None and row["peak_hour_kwh"] is None, what
    else:
        candidates, top = peaks(hours)
        assert utc(row["peak_hour_start"]) in candidates, (what, row["peak_hour_start"], sorted(candidates))
        if len(candidates) == 1:
            assert utc(row["peak_hour_start"]) == min(candidates), what
        assert row["peak_hour_kwh"] == approx(top), what


# --- tests -------------------------------------------------------------------------------------------------------
def test_parser_quarantines_exactly_the_rows_the_independent_check_rejects(expected, loaded, csv_path):
    _data_dir, parsed = loaded
    quarantined = {int(record_id.split()[1]) for record_id in parsed.quarantine["record_id"]}
    assert quarantined == set(expected["bad"]), expected["bad"]
    data_lines = sum(1 for line in csv_path.read_text(encoding="utf-8-sig").splitlines()[1:] if line.strip())
    assert len(expected["sessions"]) + len(expected["bad"]) == data_lines
    assert len(parsed.table) == len(expected["sessions"])
    assert set(parsed.table["session_id"]) == {s.session_id for s in expected["sessions"]}


def test_the_only_warning_is_the_sessions_without_plug_out(expected, built):
    # A report without plug-out (and without duration) keeps its energy in the daily totals but has no spread.
    without_end = sum(1 for s in expected["sessions"] if s.end is None or s.end < s.start)
    warnings = {r["unique_id"].split(".")[2]: r["failures"] for r in built["results"] if r["status"] == "warn"}
    assert warnings == ({"report_plugs_out_after_plugging_in": without_end} if without_end else {})


def test_whole_dataset_totals_and_daily_figures(expected, built):
    whole: Entity = expected["whole"]
    sessions = expected["sessions"]
    total = sum(s.energy or 0.0 for s in sessions)
    assert whole.total() == approx(total)
    # every session belongs to exactly one garage and one user: the dataset is the sum over either
    for entity_type in ("garage", "user"):
        [(mart_total, mart_sessions, first_day, last_day)] = query(built, """
            select sum(total_energy_kwh), sum(sessions), min(first_day), max(last_day)
            from marts.mart_energy_summary where source_name = 'norway' and entity_type = ?
        """, (entity_type,))
        assert mart_total == approx(total), entity_type
        assert mart_sessions == len(sessions), entity_type
        assert (first_day, last_day) == (whole.days()[0], whole.days()[-1]), entity_type

        per_day = dict(query(built, """
            select day, sum(energy_kwh) from marts.mart_energy_daily
            where source_name = 'norway' and entity_type = ? group by day
        """, (entity_type,)))
        assert set(per_day) == set(whole.days()), entity_type
        assert {d: approx(whole.energy(d)) for d in whole.days()} == per_day, entity_type
        for day in SAMPLE_DAYS:
            assert per_day[day] == approx(whole.energy(day)), (entity_type, day)
        # daily average over the calendar days of the data, and the peak day
        assert sum(per_day.values()) / len(per_day) == approx(whole.daily_average()), entity_type
        candidates, top = peaks({d: whole.energy(d) for d in whole.days()})
        mart_peak = max(per_day, key=lambda d: (per_day[d], -d.toordinal()))
        assert mart_peak in candidates and per_day[mart_peak] == approx(top), entity_type
    # a non-trivial dataset: guards against comparing two empty results
    assert len(sessions) > 6000 and total > 80_000


def test_daily_mart_equals_independent_figures_for_every_entity_and_day(expected, built):
    entities: dict[tuple[str, str], Entity] = expected["entities"]
    mart = mart_daily(built)
    expected_keys = {(t, e, d) for (t, e), entity in entities.items() for d in entity.days()}
    assert set(mart) == expected_keys, (len(set(mart) - expected_keys), len(expected_keys - set(mart)))
    for (entity_type, entity_id), entity in entities.items():
        cumulative = 0.0
        for day in entity.days():
            row = mart[(entity_type, entity_id, day)]
            cumulative += entity.energy(day)
            what = (entity_type, entity_id, day.isoformat())
            check_day(entity, day, row, what)
            assert row["energy_kwh_cumulative"] == approx(cumulative), what


def test_summary_mart_equals_independent_figures_for_every_entity(expected, built):
    entities: dict[tuple[str, str], Entity] = expected["entities"]
    mart = mart_summary(built)
    assert set(mart) == set(entities)
    for key, entity in entities.items():
        row, days = mart[key], entity.days()
        assert (row["first_day"], row["last_day"], row["n_days"]) == (days[0], days[-1], len(days)), key
        assert row["sessions"] == sum(entity.sessions(d) for d in days), key
        assert row["total_energy_kwh"] == approx(entity.total()), key
        assert row["daily_average_kwh"] == approx(entity.daily_average()), key
        assert row["mean_active_charging_hours_per_day"] == approx(entity.mean_active_hours()), key
        peak_days, peak_day_kwh = peaks({d: entity.energy(d) for d in days})
        assert row["peak_day"] in peak_days and row["peak_day_kwh"] == approx(peak_day_kwh), key
        positive = {hour: kwh for hour, kwh in entity.hours.items() if kwh > 0}
        if not positive:
            assert row["peak_hour_start"] is None and row["busiest_hour_of_day"] is None, key
            continue
        peak_hours, peak_hour_kwh = peaks(positive)
        assert utc(row["peak_hour_start"]) in peak_hours and row["peak_hour_kwh"] == approx(peak_hour_kwh), key
        profile: dict[int, float] = defaultdict(float)
        for hour, kwh in entity.hours.items():
            profile[hour.astimezone(OSLO).hour] += kwh
        busiest, _ = peaks({h: kwh for h, kwh in profile.items() if kwh > 0})
        assert row["busiest_hour_of_day"] in busiest, key


def test_sample_garage_and_user_on_concrete_days(expected, built):
    """Readable spot checks: one garage and one user, on fixed days and around a session crossing midnight."""
    mart, summary = mart_daily(built), mart_summary(built)
    for kind, key in sample_entities(expected).items():
        entity: Entity = expected["entities"][key]
        days = [d for d in SAMPLE_DAYS if d in set(entity.days())]
        assert len(days) >= 3, (key, days)  # the busiest entities span (nearly) the whole dataset
        # a session crossing midnight (Oslo): its energy counts on the plug-in day, its spread reaches the next day
        crossing = next(s for s in expected["sessions"]
                        if (s.user_id if kind == "user" else s.garage_id) == key[1]
                        and s.end is not None and s.energy
                        and s.end > datetime.combine(oslo_day(s.start) + timedelta(days=1), time(), OSLO))
        days += [oslo_day(crossing.start), oslo_day(crossing.start) + timedelta(days=1)]
        # the 7-day average early in the range (fewer than 7 days) and later on
        days += [entity.days()[2], entity.days()[30]]
        for day in days:
            check_day(entity, day, mart[(*key, day)], (kind, key[1], day.isoformat()))
        assert mart[(*key, oslo_day(crossing.start) + timedelta(days=1))]["active_charging_hours"] >= 1
        row = summary[key]
        assert row["total_energy_kwh"] == approx(entity.total())
        assert row["daily_average_kwh"] == approx(entity.daily_average())
        assert row["mean_active_charging_hours_per_day"] == approx(entity.mean_active_hours())
        peak_days, peak_day_kwh = peaks({d: entity.energy(d) for d in entity.days()})
        assert row["peak_day"] in peak_days and row["peak_day_kwh"] == approx(peak_day_kwh)
        peak_hours, peak_hour_kwh = peaks({h: kwh for h, kwh in entity.hours.items() if kwh > 0})
        assert utc(row["peak_hour_start"]) in peak_hours and row["peak_hour_kwh"] == approx(peak_hour_kwh)


def test_a_session_counts_on_the_local_day_it_starts(expected, built):
    """Share-8 plugged in at 00:09 Oslo time on 25 Jan 2020 (23:09 UTC on the 24th): its 16.96 kWh count on
    25 Jan, the garage's own day, for the user, its garage and the 7 days 25-31 Jan that the service answers."""
    from ev_assets.lib.kpis.energy import SessionScope, energy_last_7_days

    session = next(s for s in expected["sessions"] if s.user_id == "Share-8" and oslo_day(s.start) == date(2020, 1, 25)
                   and s.start.date() == date(2020, 1, 24))
    assert (session.garage_id, session.energy) == ("Bl2", 16.96)
    mart = mart_daily(built)
    for key in (("user", "Share-8"), ("garage", "Bl2")):
        day = mart[(*key, date(2020, 1, 25))]
        assert day["sessions_started"] >= 1 and day["energy_kwh"] >= 16.96, (key, day)
        before = mart.get((*key, date(2020, 1, 24)))
        check_day(expected["entities"][key], date(2020, 1, 25), day, key)
        if before is not None:
            check_day(expected["entities"][key], date(2020, 1, 24), before, key)
    [(time_zone,)] = query(built, "select distinct time_zone from marts.mart_energy_daily where source_name = 'norway'")
    assert time_zone == "Europe/Oslo"
    # /kpi/energy/last-7-days?start_date=2020-01-25&end_date=2020-01-31 (all users): 280 sessions, 3,390.96 kWh
    # (by UTC day it was 279 and 3,374.0: the Share-8 session fell on the 24th)
    with duckdb.connect(str(built["data_dir"] / "warehouse.duckdb"), read_only=True) as con:
        week = energy_last_7_days(con, SessionScope("user", None), date(2020, 1, 25), date(2020, 1, 31))
    assert (week["from_day"], week["to_day"], week["n_days"]) == (date(2020, 1, 25), date(2020, 1, 31), 7)
    assert week["sessions"] == 280
    assert week["energy_kwh"] == pytest.approx(3390.96, abs=0.005)
    whole = expected["whole"]
    days = [date(2020, 1, 25) + timedelta(days=i) for i in range(7)]
    assert week["sessions"] == sum(whole.sessions(d) for d in days)
    assert week["energy_kwh"] == approx(sum(whole.energy(d) for d in days))
