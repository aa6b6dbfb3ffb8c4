"""dbt: the project's invocations as Dagster makes them (lib/dbt_runs.py), each measured, with per-node times from
run_results.json."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
import time
from datetime import date, datetime
from pathlib import Path

from bench.config import DBT, DBT_PROJECT, POLL_MINUTES, group_of
from bench.measure import run_measured
from ev_assets.lib import dbt_runs


@dataclass
class DbtRun:
    label: str  # the day (daily) or 'range' (full)
    steps: list[str]
    seconds: float = 0.0
    peak_rss: int = 0
    ok: bool = True
    by_group: dict[str, float] = field(default_factory=dict)
    by_node: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    rows: int = 0  # status rows (both levels) of the days this run processed
    step_seconds: dict[str, float] = field(default_factory=dict)
    fixed_cost: dict[str, dict[str, float]] = field(default_factory=dict)  # per invocation: seconds per phase

    @property
    def node_seconds(self) -> float:
        return sum(self.by_group.values())

    @property
    def overhead(self) -> float:
        """dbt start-up, parsing (partial: the window is no longer in --vars), compilation, connection."""
        return max(0.0, self.seconds - self.node_seconds)


def write_patched_profile(data_dir: Path) -> Path:
    """A copy of dbt_project/profiles.yml with `temp_directory` moved from `settings` to `config_options`.

    dbt-duckdb applies `settings` with SET on every cursor it opens; once DuckDB has spilled to its temp
    directory, DuckDB refuses any further `SET temp_directory` (even to the same path): "Cannot switch temporary
    directory after the current one has been used", and every later model of the run fails. `config_options`
    are given once, when the database is opened. The project's profile does that since 7739d85; this is for
    measuring older revisions. Only with --patched-profile; dbt_project/ is never changed.
    """
    import yaml

    profiles = yaml.safe_load((DBT_PROJECT / "profiles.yml").read_text())
    moved = False
    for profile in profiles.values():
        for output in profile.get("outputs", {}).values():
            settings = output.get("settings") or {}
            if "temp_directory" in settings:
                output.setdefault("config_options", {})["temp_directory"] = settings.pop("temp_directory")
                moved = True
    if not moved:
        print("--patched-profile: the project's profile has no temp_directory under settings; using it as it is")
        return DBT_PROJECT
    folder = data_dir / "dbt_profile"
    folder.mkdir(exist_ok=True)
    (folder / "profiles.yml").write_text(yaml.safe_dump(profiles, sort_keys=False))
    return folder


# The phases of one invocation, from its dbt.log: (phase, the log line that ends it). The first starts when the
# process starts; "exit" ends when it has exited.
PHASES = (
    ("start-up (imports)", "Running with dbt="),
    ("adapter", "Registered adapter"),
    ("parse check", ("partial pars", "Starting full parse", "Nothing changed")),
    ("manifest, graph", "Found "),
    ("connect, compile first node", " START "),
    ("nodes", "Finished running "),
    ("results", "Done."),
)
LOG_TIME = re.compile(r"^\x1b\[0m(\d\d:\d\d:\d\d\.\d+) ")


def fixed_cost(log: Path, started: float, ended: float) -> dict[str, float]:
    """Seconds per phase of one invocation (`started`/`ended`: wall-clock times of the process), from the lines
    of its dbt.log: where dbt's fixed cost goes. Empty when the log cannot be read."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return {}
    day = datetime.fromtimestamp(started).date()
    marks: dict[str, float] = {}
    for line in lines:
        match = LOG_TIME.match(line)
        if not match:
            continue
        at = datetime.combine(day, datetime.strptime(match.group(1), "%H:%M:%S.%f").time()).timestamp()
        for phase, needle in PHASES:
            needles = needle if isinstance(needle, tuple) else (needle,)
            if any(n in line for n in needles):
                if phase == "nodes" or phase not in marks:  # the last node's end; the first of the others
                    marks[phase] = at
    profile, previous = {}, started
    for phase, _ in PHASES:
        if phase in marks:
            profile[phase] = round(max(0.0, marks[phase] - previous), 2)
            previous = marks[phase]
    profile["exit"] = round(max(0.0, ended - previous), 2)
    return profile


# How Dagster runs the project (lib/dbt_runs.py, defs/warehouse/dbt.py): the unpartitioned models the daily ones
# read, the incremental models for the window, then the rest (marts, tests across both). --no-split: one invocation.
# Each with the run's window, as Dagster gives it to the unpartitioned asset in a run of days.
SPLIT = (
    ("upstream", {"select": f"+{dbt_runs.INCREMENTAL}", "exclude": dbt_runs.INCREMENTAL}, True),
    ("daily", {"select": dbt_runs.INCREMENTAL}, True),
    ("rest", {"exclude": f"+{dbt_runs.INCREMENTAL}"}, True),
)
WHOLE = (("all", {}, True),)


def run_dbt(data_dir: Path, min_date: str, max_date: str, steps: list[str], memory_limit: str, label: str,
            profiles_dir: Path = DBT_PROJECT, split: bool = True) -> DbtRun:
    target = data_dir / "dbt_target"
    env = {**os.environ, "EV_DATA_DIR": str(data_dir), "EV_DUCKDB_MEMORY_LIMIT": memory_limit,
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_PARTIAL_PARSE": "true"}
    window = dbt_runs.run_env(date.fromisoformat(min_date), date.fromisoformat(max_date))
    run = DbtRun(label, steps)
    for step, (part, selection, windowed) in ((s, i) for s in steps for i in (SPLIT if split else WHOLE)):
        results_file = target / "run_results.json"
        results_file.unlink(missing_ok=True)
        command = [str(DBT), *dbt_runs.build_args(data_dir, POLL_MINUTES, command=step, **selection),
                   "--project-dir", str(DBT_PROJECT), "--profiles-dir", str(profiles_dir),
                   "--target-path", str(target), "--log-path", str(data_dir / "dbt_logs")]
        log = data_dir / "dbt_logs" / "dbt.log"
        log.unlink(missing_ok=True)
        started = time.time()
        m = run_measured(command, env={**env, **(window if windowed else dbt_runs.run_env())}, cwd=DBT_PROJECT)
        run.fixed_cost[f"{step}:{part}"] = fixed_cost(log, started, time.time())
        run.seconds += m.seconds
        run.step_seconds[f"{step}:{part}"] = m.seconds
        run.peak_rss = max(run.peak_rss, m.peak_rss)
        if m.returncode != 0:
            run.ok = False
            errors = [ln.strip() for ln in (m.stdout + "\n" + m.stderr).splitlines()
                      if "Error" in ln or "error" in ln.lower()[:40]]
            run.failures.append(f"dbt {step} {part} exited {m.returncode}: " + (errors[-1][:300] if errors else m.stderr[-300:]))
            plain = re.sub(r"\x1b\[[0-9;]*m", "", m.stdout)
            run.failures += [" ".join(ln.split())[:200] for ln in plain.splitlines() if " ERROR creating " in ln][:5]
        if not results_file.exists():
            run.failures.append(f"dbt {step} wrote no run_results.json")
            continue
        for r in json.loads(results_file.read_text())["results"]:
            parts = r["unique_id"].split(".")
            kind, name = parts[0], parts[2]
            group = group_of(kind, name)
            t = float(r.get("execution_time") or 0.0)
            run.by_group[group] = run.by_group.get(group, 0.0) + t
            key = name if kind == "model" else f"{kind}:{name}"
            run.by_node[key] = run.by_node.get(key, 0.0) + t
            if r["status"] not in ("success", "pass"):
                run.ok = False
                run.failures.append(f"{name}: {r['status']} {(r.get('message') or '')[:200]}")
    return run


