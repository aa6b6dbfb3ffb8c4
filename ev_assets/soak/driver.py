"""The soak's clock and what it runs at each tick: the schedules and the sensor of the code location, evaluated as
the daemon would at that simulated time, and their run requests launched in the Dagster instance."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import dagster as dg

from ev_assets.cli import RANGE_END_TAG, RANGE_START_TAG, Launcher
from ev_assets.lib.live import landing
from ev_assets.lib.live.clock import LiveClock
from ev_assets.lib.settings import Settings
from ev_assets.lib.vocabulary import POLL_GRID_MINUTES

TICK = timedelta(minutes=POLL_GRID_MINUTES)  # one poll slot
POLL_SCHEDULE = "chargecloud_every_10_minutes"
SENSOR = "retrain_on_drift"
# a day's data is complete once its ingest (00:15), warehouse (00:45), monitoring (01:15) and the Monday training
# (02:00) of the next day have run: the day is audited at this time of the next day
AUDIT_AT = timedelta(hours=3)


@dataclass(frozen=True)
class Plan:
    """What the soak simulates: `days` days from `start`; from day `shift_day` (1-based) every station's demand is
    `demand_factor` times higher and every city has `added_stations` more stations."""

    days: int = 30
    start: date = date(2022, 1, 10)
    shift_day: int = 20
    demand_factor: float = 4.0
    stations_per_city: int = 12
    added_stations: int = 4
    poll_batch: int = 72  # the poll schedule's requests run as one range run per this many ticks (1: one run each)
    marts_every: int = 1  # compare the marts with a one-shot build every this many days (and on the last day)
    requests_per_hour: int = 6  # requests the service answers per simulated hour

    def day_number(self, day: date) -> int:
        return (day - self.start).days + 1

    def shifted(self, day: date) -> bool:
        return self.day_number(day) >= self.shift_day

    def sim_env(self, day: date) -> dict[str, str]:
        """The simulated feed of `day`: what a pull on that day brings (one day of sessions and telemetry)."""
        shifted = self.shifted(day)
        return {
            "EV_SIM_START": f"{day:%Y-%m-%d}",
            "EV_SIM_DAYS": "1",
            "EV_SIM_DEMAND_FACTOR": str(self.demand_factor if shifted else 1.0),
            "EV_SIM_STATIONS_PER_CITY": str(self.stations_per_city + (self.added_stations if shifted else 0)),
        }

    @property
    def first_tick(self) -> datetime:
        return datetime.combine(self.start, datetime.min.time(), timezone.utc) + TICK

    @property
    def last_tick(self) -> datetime:
        """The last day's audit time (on the day after it)."""
        return datetime.combine(self.start + timedelta(days=self.days), datetime.min.time(), timezone.utc) + AUDIT_AT


@dataclass
class RunRecord:
    tick: datetime
    job: str
    origin: str  # the schedule or sensor that requested it
    partition: str
    run_id: str
    success: bool
    seconds: float
    failed_checks: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


class Driver:
    """Evaluates the schedules and the sensor at each tick and runs their requests (in this process, recorded in
    the instance). The simulated clock is stored in the landing store, where the sensor's cool-down and the
    service's ages read it (`ev_assets.lib.live.store.platform_now`)."""

    def __init__(self, plan: Plan, settings: Settings, instance: dg.DagsterInstance, launcher: Launcher, out):
        from ev_assets.definitions import defs

        self.plan, self.settings, self.instance, self.launcher, self.out = plan, settings, instance, launcher, out
        self.repository = defs.get_repository_def()
        self.schedules = {s.name: s for s in self.repository.schedule_defs}
        self.sensor = self.repository.get_sensor_def(SENSOR)
        self.cursor: str | None = None
        self.next_fire: dict[str, datetime] = {}
        self.polls: list[str] = []  # requested poll partitions not yet run
        self.runs: list[RunRecord] = []
        self.sensor_skips: list[tuple[datetime, str]] = []

    # --- the clock ------------------------------------------------------------------------------------------
    def set_clock(self, now: datetime) -> None:
        con = landing.connect_writer(self.settings.live_dir)
        try:
            landing.save_clock(con, LiveClock(time.time(), now, 1.0))
        finally:
            con.close()

    def due(self, name: str, now: datetime) -> datetime | None:
        """The time the schedule fired at since the previous tick (its cron time), or None."""
        from dagster._utils.schedules import cron_string_iterator

        schedule = self.schedules[name]
        times = lambda after: cron_string_iterator(after.timestamp() + 1, schedule.cron_schedule,  # noqa: E731
                                                   schedule.execution_timezone or "UTC")
        fire = self.next_fire.setdefault(name, next(times(now - TICK)))
        if fire > now:
            return None
        self.next_fire[name] = next(times(fire))
        return fire

    # --- one tick -------------------------------------------------------------------------------------------
    def tick(self, now: datetime) -> None:
        self.set_clock(now)
        for name in self.schedules:
            fired = self.due(name, now)
            if fired is not None:
                self.evaluate_schedule(name, fired, now)
        if len(self.polls) >= self.plan.poll_batch:
            self.flush_polls(now)
        self.evaluate_sensor(now)

    def evaluate_schedule(self, name: str, fired: datetime, now: datetime) -> None:
        schedule = self.schedules[name]
        with dg.build_schedule_context(instance=self.instance, scheduled_execution_time=fired,
                                       repository_def=self.repository) as context:  # closes what it opened
            # the soak's instance: the context would open another from its ref at every tick (~0.1 s each, Dagster
            # checking the storage's schema migrations; 40 s of a three-day soak)
            context._instance = self.instance
            data = schedule.evaluate_tick(context)
        for request in data.run_requests or []:
            if name == POLL_SCHEDULE:
                self.polls.append(request.partition_key)
                continue
            if request.partition_key and partition_day(request.partition_key) < self.plan.start:
                continue  # a day before the soak's first: no data (the daemon would run it empty)
            self.flush_polls(now)  # the polls come first: a day's ingest reads them
            job = request.job_name or schedule.job_name
            self.launch(now, job, name, {"dagster/schedule_name": name, **request.tags}, request.partition_key)

    def evaluate_sensor(self, now: datetime) -> None:
        with dg.build_sensor_context(instance=self.instance, cursor=self.cursor,
                                     repository_def=self.repository) as context:
            data = self.sensor.evaluate_tick(context)
        self.cursor = data.cursor
        if data.skip_message and not data.run_requests:
            self.sensor_skips.append((now, data.skip_message))
        for request in data.run_requests or []:
            self.flush_polls(now)
            job = request.job_name or self.sensor.job_name
            self.launch(now, job, SENSOR, {"dagster/sensor_name": SENSOR, **request.tags}, None)

    def flush_polls(self, now: datetime) -> None:
        """Run the requested poll partitions of one day as one range run (a backfill's single-run policy)."""
        while self.polls:
            day = self.polls[0][:10]
            batch = [key for key in self.polls if key[:10] == day]
            self.polls = self.polls[len(batch):]
            tags = {"dagster/schedule_name": POLL_SCHEDULE, RANGE_START_TAG: batch[0], RANGE_END_TAG: batch[-1]}
            self.launch(now, "chargecloud_poll_job", POLL_SCHEDULE, tags, f"{batch[0]}..{batch[-1][11:]}")

    def launch(self, now: datetime, job: str, origin: str, tags: dict[str, str], partition: str | None) -> RunRecord:
        if partition and ".." not in partition:
            tags = {**tags, "dagster/partition": partition}
        tags = {**tags, "ev_assets/soak_tick": now.isoformat()}
        day = partition_day(partition) if partition else (now - timedelta(days=1)).date()
        os.environ.update(self.plan.sim_env(day))  # what a pull brings on that day (the settings read it at run time)
        started = time.monotonic()
        report = self.launcher.run(job, tags)
        record = RunRecord(now, job, origin, partition or "", report.run_id, report.success,
                           round(time.monotonic() - started, 2), report.failed_checks, report.failures)
        self.runs.append(record)
        if job != "chargecloud_poll_job" or not report.success:
            status = "ok" if report.success else "FAILED"
            shown = report.failed_checks[:3] + ([f"{len(report.failed_checks) - 3} more"] if len(report.failed_checks) > 3 else [])
            checks = f"; checks not passed: {', '.join(shown)}" if shown else ""
            print(f"  {now:%m-%d %H:%M} {job:<20} {partition or '':<24} {status:<6} {record.seconds:6.1f} s  "
                  f"({origin}){checks}", file=self.out, flush=True)
            for failure in report.failures:
                print(f"      {failure}", file=self.out, flush=True)
        return record


def partition_day(partition: str) -> date:
    return datetime.strptime(partition[:10], "%Y-%m-%d").date()
