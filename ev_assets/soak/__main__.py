"""`python -m ev_assets.soak` (`make soak`): N simulated days of scheduled operation, audited day by day.

Exit code 0 when every day passed: nothing lost, the marts equal a one-shot build, the retraining sensor asked
only after the shift, every request answered, the champion served only the one the gate chose, and disk growing
with the data. `--results-json` writes the per-day figures (benchmarks/README.md has the 30-day table).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import dagster as dg

from ev_assets.cli import Launcher
from ev_assets.lib.settings import Settings
from ev_assets.soak import audit
from ev_assets.soak.driver import AUDIT_AT, SENSOR, TICK, Driver, Plan
from ev_assets.soak.service import Service

MARKER = ".soak"  # a data root the soak made; only such a root (or an empty one) is cleared for a new soak
RAW_TABLES = ("status_chargingpoints", "status_connectors", "chargecloud_poll_log", "session_reports",
              "hourly_loads", "acn_sessions", "charging_events", "vehicle_telemetry")
MB = 1024 * 1024


@dataclass
class Day:
    day: int
    date: str
    shifted: bool
    runs: int
    failed_runs: list[str]
    raw_rows: int
    lost: dict[str, int]  # table -> expected minus held (0 everywhere: nothing lost, nothing doubled)
    marts_compared: int
    marts_differing: list[str]
    one_shot_s: float | None
    retrain_requests: int
    champions: dict[str, str]
    promotions: list[str]
    requests: int
    unanswered: list[str]
    served_not_champion: list[str]
    data_mb: float
    warehouse_mb: float
    raw_mb: float
    mlflow_mb: float
    peak_rss_mb: float
    wall_s: float
    problems: list[str] = field(default_factory=list)


def prepare_root(root: Path) -> None:
    """An empty data root, or one an earlier soak made (cleared); anything else is refused."""
    INSTANCE = "dagster_home"  # the instance the Makefile prepared: its runs are kept, shown by `make ui`
    if root.exists() and any(c.name != INSTANCE for c in root.iterdir()) and not (root / MARKER).exists():
        raise SystemExit(f"soak: {root} holds data the soak did not make; it needs a data root of its own "
                         "(`make soak` uses data/soak; or set EV_DATA_DIR to an empty folder)")
    if root.exists():
        for child in root.iterdir():
            if child.name != INSTANCE:
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text("made by `python -m ev_assets.soak`; cleared by the next soak\n")


def parse_args(argv: list[str] | None) -> tuple[Plan, argparse.Namespace]:
    defaults = Plan()
    parser = argparse.ArgumentParser(prog="ev_assets.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=defaults.days)
    parser.add_argument("--start", type=date.fromisoformat, default=defaults.start, help="first simulated day (UTC)")
    parser.add_argument("--shift-day", type=int, default=defaults.shift_day,
                        help="the day (1-based) from which demand grows and new stations open")
    parser.add_argument("--demand-factor", type=float, default=defaults.demand_factor)
    parser.add_argument("--added-stations", type=int, default=defaults.added_stations, help="new stations per city")
    parser.add_argument("--poll-batch", type=int, default=defaults.poll_batch,
                        help="poll requests run as one range run per this many ticks (1: a run per poll)")
    parser.add_argument("--marts-every", type=int, default=defaults.marts_every,
                        help="compare the marts with a one-shot build every N days (and on the last day)")
    parser.add_argument("--requests-per-hour", type=int, default=defaults.requests_per_hour)
    parser.add_argument("--results-json", type=Path, help="write the per-day figures here")
    args = parser.parse_args(argv)
    plan = Plan(days=args.days, start=args.start, shift_day=args.shift_day, demand_factor=args.demand_factor,
                added_stations=args.added_stations, poll_batch=args.poll_batch, marts_every=args.marts_every,
                requests_per_hour=args.requests_per_hour)
    return plan, args


def main(argv: list[str] | None = None) -> int:
    plan, args = parse_args(argv)
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    os.environ["EV_SOURCE"] = "simulated"  # the soak's feed; only the simulated feed can be told to shift
    settings = Settings.from_env()
    prepare_root(settings.data_dir)
    try:
        instance = dg.DagsterInstance.get()
    except Exception:  # noqa: BLE001 - DAGSTER_HOME unset
        print("DAGSTER_HOME is not set: a temporary Dagster instance (the UI will not show these runs)")
        instance = dg.DagsterInstance.ephemeral()
    logs = settings.data_dir / "logs"
    launcher = Launcher(instance, logs)
    logs.mkdir(parents=True, exist_ok=True)
    launcher.out = open(logs / "soak_steps.log", "a")  # one line per step of every run
    print(f"soak: {plan.days} day(s) from {plan.start}, shift on day {plan.shift_day} (demand x{plan.demand_factor:g}, "
          f"+{plan.added_stations} stations per city), data root {settings.data_dir}", flush=True)
    driver = Driver(plan, settings, instance, launcher, sys.stdout)
    service = Service(settings, logs / "soak_service.log").start()
    memory = audit.MemoryPeak()
    def save(days: list[Day], failed: list[str] | None = None) -> None:
        """The figures so far (after each day, so a long soak can be read while it runs)."""
        if args.results_json:
            args.results_json.parent.mkdir(parents=True, exist_ok=True)
            args.results_json.write_text(json.dumps({"plan": {k: str(v) for k, v in asdict(plan).items()},
                                                     "days": [asdict(d) for d in days], "failed": failed}, indent=1))

    try:
        days = Soak(plan, settings, driver, service, memory, save).run()
    finally:
        service.stop()
        memory.stop()
    failed = verdict(plan, days)
    save(days, failed)
    if not instance.is_ephemeral:
        print(f"Runs: `EV_DATA_DIR={settings.data_dir} make ui`; models: `EV_DATA_DIR={settings.data_dir} make mlflow`")
    return 1 if failed else 0


class Soak:
    def __init__(self, plan: Plan, settings: Settings, driver: Driver, service: Service, memory: audit.MemoryPeak,
                 save=lambda days: None):
        self.plan, self.settings, self.driver, self.service, self.memory = plan, settings, driver, service, memory
        self.save = save
        self.ledger = audit.Ledger()
        self.stations: list[str] = []
        self.champions_seen: dict[str, set[str]] = {}
        self.last_champions: dict[str, str] = {}

    def run(self) -> list[Day]:
        days: list[Day] = []
        now, runs_before, answers_before, wall = self.plan.first_tick, 0, 0, time.monotonic()
        print(HEADER, flush=True)
        while now <= self.plan.last_tick:
            self.driver.tick(now)
            if now.minute == 0:
                self.ask(now)
            day = now.date() - timedelta(days=1)  # audited at AUDIT_AT of the next day
            if now - now.replace(hour=0, minute=0) == AUDIT_AT and day >= self.plan.start:
                report = self.audit(day, self.driver.runs[runs_before:], self.service.answers[answers_before:],
                                    time.monotonic() - wall)
                days.append(report)
                self.save(days)
                print(line(report), flush=True)
                details = ([f"{name}: {n:+,} record(s) pulled but not held" for name, n in report.lost.items()]
                           + report.marts_differing + report.unanswered[:3] + report.served_not_champion + report.problems)
                for problem in details:
                    print(f"      problem: {problem}", flush=True)
                runs_before, answers_before, wall = len(self.driver.runs), len(self.service.answers), time.monotonic()
            now += TICK
        return days

    def ask(self, now: datetime) -> None:
        for i in range(self.plan.requests_per_hour):
            station = self.stations[(now.hour * self.plan.requests_per_hour + i) % len(self.stations)] if self.stations else None
            self.service.ask(now, station)

    def audit(self, day: date, runs, answers, wall_s: float) -> Day:
        number = self.plan.day_number(day)
        env = {**os.environ, **self.plan.sim_env(day)}
        self.ledger.add_day(Settings.from_env(env), day)
        held = audit.raw_counts(self.settings, list(RAW_TABLES))
        expected = self.ledger.expected()
        lost = {name: expected[name] - held[name] for name in RAW_TABLES}
        self.stations = audit.station_ids(self.settings)
        differing, one_shot_s, compared = [], None, 0
        if number % self.plan.marts_every == 0 or number == self.plan.days:
            differing, one_shot_s, compared = audit.one_shot_differences(self.settings, self.plan.start, day)
        before = dict(self.last_champions)  # the champions at the previous audit
        champions = self.registry_champions()
        promotions = [f"{name} v{self.last_champions.get(name, '-')} -> v{version}"
                      for name, version in champions.items() if self.last_champions.get(name) != version]
        self.last_champions = champions
        for name, version in champions.items():
            self.champions_seen.setdefault(name, set()).add(version)
        served = [a for a in answers if a.path == "/predict/availability"]
        unanswered = [f"{a.at:%m-%d %H:%M} {a.path} {a.status} {a.detail}" for a in answers
                      if not (a.status == 200 or no_champion_yet(a, before))]
        served_not_champion = sorted({f"{a.model} v{a.version}" for a in served if a.status == 200
                                      and a.version not in self.champions_seen.get(a.model, set())})
        now_served = self.service.champions()
        problems = [f"the service serves {name} v{v}, the registry's champion is v{champions.get(name)}"
                    for name, v in now_served.items() if champions.get(name) and v != champions[name]]
        report = Day(
            day=number, date=f"{day}", shifted=self.plan.shifted(day), runs=len(runs),
            failed_runs=[f"{r.job} {r.partition}: {'; '.join(r.failures)[:300]}" for r in runs if not r.success],
            raw_rows=sum(held.values()), lost={k: v for k, v in lost.items() if v}, marts_compared=compared,
            marts_differing=differing, one_shot_s=one_shot_s,
            retrain_requests=sum(1 for r in runs if r.origin == SENSOR), champions=champions, promotions=promotions,
            requests=len(answers), unanswered=unanswered, served_not_champion=served_not_champion,
            data_mb=round(audit.folder_bytes(self.settings.data_dir) / MB, 1),
            warehouse_mb=round(self.settings.warehouse_path.stat().st_size / MB, 1),
            raw_mb=round(audit.folder_bytes(self.settings.raw_dir) / MB, 1),
            mlflow_mb=round(audit.folder_bytes(self.settings.mlflow_dir) / MB, 1),
            peak_rss_mb=round(self.memory.take() / MB), wall_s=round(wall_s, 1), problems=problems)
        return report

    def registry_champions(self) -> dict[str, str]:
        """Model -> the version holding the `champion` alias in the registry (every model of every family)."""
        from ev_assets.defs.ml.families import FAMILIES
        from ev_assets.lib.ml.registry import Registry

        registry = Registry(self.settings.mlflow_dir)
        found = {name: registry.champion(name) for family in FAMILIES for name in family.models}
        return {name: str(champion.version) for name, champion in found.items() if champion is not None}


def no_champion_yet(answer, champions: dict[str, str]) -> bool:
    """A forecast refused (503) because its model had no champion yet: the right answer before the first
    training that promoted one."""
    found = re.search(r"no champion for (\S+)", answer.detail) if answer.status == 503 else None
    return found is not None and found.group(1) not in champions


HEADER = (f"{'day':>3} {'date':<10} {'runs':>4} {'fail':>4} {'raw rows':>10} {'lost':>4} {'marts':>9} "
          f"{'retrain':>7} {'answered':>9} {'data MB':>8} {'wh MB':>6} {'peak MB':>7} {'wall s':>6}  promotions")


def line(d: Day) -> str:
    marts = "-" if d.one_shot_s is None else (f"{d.marts_compared}=" if not d.marts_differing else f"{len(d.marts_differing)}!=")
    answered = f"{d.requests - len(d.unanswered)}/{d.requests}"
    return (f"{d.day:>3} {d.date:<10} {d.runs:>4} {len(d.failed_runs):>4} {d.raw_rows:>10,} {sum(map(abs, d.lost.values())):>4} "
            f"{marts:>9} {d.retrain_requests:>7} {answered:>9} {d.data_mb:>8.1f} {d.warehouse_mb:>6.1f} "
            f"{d.peak_rss_mb:>7.0f} {d.wall_s:>6.0f}  {', '.join(d.promotions)}")


def markdown(days: list[dict]) -> str:
    """The per-day table of a `--results-json` file, as benchmarks/README.md shows it."""
    head = ("| day | date | runs | failed | raw rows | lost | marts equal | one-shot s | retrain requests | answered | "
            "data MB | warehouse MB | raw MB | MLflow MB | peak MB | wall s | promotions |")
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for d in days:
        marts = "-" if d["one_shot_s"] is None else f"{d['marts_compared'] - len(d['marts_differing'])}/{d['marts_compared']}"
        rows.append(
            f"| {d['day']}{' (shift)' if d['shifted'] and d['day'] == min(x['day'] for x in days if x['shifted']) else ''} "
            f"| {d['date']} | {d['runs']} | {len(d['failed_runs'])} | {d['raw_rows']:,} | {sum(map(abs, d['lost'].values()))} "
            f"| {marts} | {d['one_shot_s'] if d['one_shot_s'] is not None else '-'} | {d['retrain_requests']} "
            f"| {d['requests'] - len(d['unanswered'])}/{d['requests']} | {d['data_mb']} | {d['warehouse_mb']} | {d['raw_mb']} "
            f"| {d['mlflow_mb']} | {d['peak_rss_mb']:.0f} | {d['wall_s']:.0f} | {', '.join(d['promotions']) or ''} |")
    return "\n".join(rows) + "\n"


def verdict(plan: Plan, days: list[Day]) -> list[str]:
    """What failed over the whole soak (empty: it passed), printed."""
    failed = []
    for d in days:
        failed += [f"day {d.day}: run failed: {f}" for f in d.failed_runs]
        failed += [f"day {d.day}: {name} differs from the records pulled by {n:+,}" for name, n in d.lost.items()]
        failed += [f"day {d.day}: marts: {m}" for m in d.marts_differing]
        failed += [f"day {d.day}: not answered: {u}" for u in d.unanswered[:5]]
        failed += [f"day {d.day}: served a version that was never the champion: {s}" for s in d.served_not_champion]
        failed += [f"day {d.day}: {p}" for p in d.problems]
        if not d.shifted and d.retrain_requests:
            failed.append(f"day {d.day}: {d.retrain_requests} retraining request(s) before the shift (day {plan.shift_day})")
    served_before_shift = any(d.champions for d in days if not d.shifted)
    if served_before_shift and plan.days >= plan.shift_day and not any(d.retrain_requests for d in days if d.shifted):
        failed.append(f"no retraining was requested after the shift on day {plan.shift_day} (champions were served "
                      "before it)")
    growth = [d for d in days if d.day >= 3]
    if len(growth) >= 2:
        first, last = growth[0], growth[-1]
        ratio = (last.warehouse_mb / max(last.raw_rows, 1)) / (first.warehouse_mb / max(first.raw_rows, 1))
        if ratio > 1.5:
            failed.append(f"the warehouse grew {ratio:.1f}x faster than its raw rows (day {first.day} to {last.day})")
    print("\nsoak " + ("passed" if not failed else f"FAILED ({len(failed)} problem(s)):"), flush=True)
    for problem in failed[:40]:
        print(f"  {problem}", flush=True)
    return failed


if __name__ == "__main__":
    sys.exit(main())
