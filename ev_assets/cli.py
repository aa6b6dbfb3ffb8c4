"""Command line of ev-assets: run the main jobs, recorded in the Dagster instance the UI shows.

    python -m ev_assets.cli demo      # the whole graph: polls, ingestion, warehouse (the README's `make demo`)
    python -m ev_assets.cli ingest    # polls and ingestion only (`make ingest`), honouring EV_SOURCE / EV_REPLAY_DIR
    python -m ev_assets.cli rebuild-raw  # the session and telemetry tables again from the raw store alone
    python -m ev_assets.cli warehouse # the warehouse job alone for the ingested days (`make warehouse-spark` on Spark)

The poll window comes from the source mode: the simulated range (EV_SIM_START, EV_SIM_DAYS), the recorded
polls (replay: one window per run of consecutive days that hold recordings), or the latest complete 10-minute
window (live). Runs are created as the UI launches them (with the code location `ev_assets` of workspace.yaml),
so they show under their jobs in `make ui`; they execute here, in this process. The console gets one line per
step; the full event log stays in the Dagster instance (`--verbose` prints it too).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import textwrap
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import yaml

from ev_assets.defs.partitions import POLL_KEY_FORMAT
from ev_assets.lib import lake, warehouse
from ev_assets.lib.sources import chargecloud
from ev_assets.lib.sources.chargecloud import floor_slot
from ev_assets.lib.settings import Settings
from ev_assets.lib.tables import SCHEMA as RAW_SCHEMA
from ev_assets.lib.tables import TABLES as RAW_TABLES
from ev_assets.lib.vocabulary import POLL_GRID_MINUTES

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
GRID = timedelta(minutes=POLL_GRID_MINUTES)
REPO_ROOT = Path(__file__).resolve().parents[1]
WORKSPACE = REPO_ROOT / "workspace.yaml"
MAX_WARNINGS = 8  # per run on the console; all of them are in the run's event log

Window = tuple[datetime, datetime]


# --- what a run covers -----------------------------------------------------------------------------------
def poll_windows(settings: Settings, now: datetime | None = None) -> list[Window]:
    """The [start, end) windows of poll partitions a demo or ingest run covers.

    Replay gives one window per run of consecutive UTC days holding recordings, so a stray recording far from
    the others adds one day of partitions, never the years between; none without a usable recording (see
    `no_polls_notice`).
    """
    mode = settings.mode("chargecloud")
    if mode == "simulated":
        start = datetime.combine(settings.simulation.start, datetime.min.time(), timezone.utc)
        return [(start, start + timedelta(days=settings.simulation.days))]
    if mode == "replay":
        slots = sorted(chargecloud.replay_index(settings))
        windows: list[list[datetime]] = []
        for slot in slots:
            if windows and slot.date() - windows[-1][1].date() <= timedelta(days=1):
                windows[-1][1] = slot
            else:
                windows.append([slot, slot])
        return [(floor_slot(first, POLL_GRID_MINUTES), floor_slot(last, POLL_GRID_MINUTES) + GRID)
                for first, last in windows]
    end = floor_slot(now or datetime.now(timezone.utc), POLL_GRID_MINUTES)
    return [(end - GRID, end)]


def no_polls_notice(settings: Settings) -> str:
    """Why a replay has no poll window: chargecloud is an empty source there, the others still load."""
    unplaced = chargecloud.replay_unplaced(settings)
    hint = f" ({len(unplaced)} recording(s) without a usable poll time, e.g. {next(iter(unplaced.values()))})" if unplaced else ""
    return (f"notice: chargecloud has no recorded polls in {settings.replay_folder('chargecloud')}{hint}: no "
            "chargecloud tables this time; the other sources are ingested")


def poll_tags(window: Window) -> dict[str, str]:
    start, end = window
    return {RANGE_START_TAG: f"{start:{POLL_KEY_FORMAT}}", RANGE_END_TAG: f"{end - GRID:{POLL_KEY_FORMAT}}"}


def day_tags(window: Window) -> dict[str, str]:
    start, end = window
    return {RANGE_START_TAG: f"{start.date()}", RANGE_END_TAG: f"{(end - timedelta(seconds=1)).date()}"}


# --- launching runs as the UI does ------------------------------------------------------------------------
@dataclass
class RunReport:
    """What one run did, for the console: steps, failed checks, failures with their cause, warnings."""

    job: str
    run_id: str = ""
    success: bool = False
    failures: list[str] = field(default_factory=list)  # "step: cause"
    failed_checks: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Launcher:
    """Creates runs with the origin of the workspace's code location and executes them in this process."""

    def __init__(self, instance: dg.DagsterInstance, log_dir: Path, verbose: bool = False):
        from dagster._core.remote_origin import InProcessCodeLocationOrigin
        from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

        target = yaml.safe_load(WORKSPACE.read_text())["load_from"][0]["python_module"]
        origin = InProcessCodeLocationOrigin(
            LoadableTargetOrigin(
                executable_path=sys.executable,
                module_name=target["module_name"],
                attribute=target["attribute"],
                working_directory=str((REPO_ROOT / target.get("working_directory", ".")).resolve()),
            ),
            location_name=target["location_name"],
        )
        self.instance = instance
        self.log_dir = log_dir
        self.verbose = verbose
        self.out = sys.stdout  # progress lines; what steps print (dbt's log) goes to a file per run
        self.location = origin.create_location(instance)
        self.repository = next(iter(self.location.get_repositories().values()))

    def run(self, job_name: str, tags: dict[str, str]) -> RunReport:
        from dagster._core.execution.api import execute_run_iterator
        from dagster._utils.hosted_user_process import recon_job_from_origin

        remote_job = self.repository.get_full_job(job_name)
        run_config = {
            "execution": {"config": {"in_process": {}}},  # small runs: no process per step
            "loggers": {"console": {"config": {"log_level": "DEBUG" if self.verbose else "CRITICAL"}}},
        }
        plan = self.location.get_execution_plan(remote_job, run_config, step_keys_to_execute=None, known_state=None, instance=self.instance)
        run = self.instance.create_run(
            job_name=job_name,
            run_id=None,
            run_config=run_config,
            resolved_op_selection=None,
            step_keys_to_execute=plan.execution_plan_snapshot.step_keys_to_execute,
            op_selection=None,
            status=None,
            root_run_id=None,
            parent_run_id=None,
            tags={**remote_job.tags, **tags},
            job_snapshot=remote_job.job_snapshot,
            execution_plan_snapshot=plan.execution_plan_snapshot,
            parent_job_snapshot=remote_job.parent_job_snapshot,
            remote_job_origin=remote_job.get_remote_origin(),
            job_code_origin=remote_job.get_python_origin(),
            asset_selection=None,
            asset_check_selection=None,
            asset_graph=self.repository.asset_graph,
        )
        report = RunReport(job_name, run.run_id)
        step = _StepTally(self.out)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{run.run_id}.log", "w") as printed:
            quiet = contextlib.ExitStack()
            if not self.verbose:
                quiet.enter_context(contextlib.redirect_stdout(printed))
                quiet.enter_context(contextlib.redirect_stderr(printed))
            with quiet:
                for event in execute_run_iterator(recon_job_from_origin(remote_job.get_python_origin()), run, self.instance):
                    step.add(event, report)
        report.success = self.instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.SUCCESS
        report.warnings = [
            f"{entry.step_key}: {entry.user_message}" if entry.step_key else entry.user_message
            for entry in self.instance.all_logs(run.run_id)
            if not entry.is_dagster_event and entry.level >= logging.WARNING and entry.user_message
        ]
        return report


class _StepTally:
    """Turns a run's events into one console line per step."""

    def __init__(self, out):
        self.out = out
        self.started: dict[str, float] = {}
        self.assets: dict[str, set] = {}
        self.partitions: Counter = Counter()
        self.checks: dict[str, Counter] = {}

    def add(self, event: dg.DagsterEvent, report: RunReport) -> None:
        key = event.step_key
        kind = event.event_type_value
        if kind == "STEP_START":
            self.started[key] = time.monotonic()
            self.assets[key], self.checks[key] = set(), Counter()
        elif kind == "ASSET_MATERIALIZATION":
            self.assets[key].add(event.asset_key.to_user_string())
            self.partitions[key] += 1
        elif kind == "ASSET_CHECK_EVALUATION":
            data = event.asset_check_evaluation_data
            warn = data.severity == dg.AssetCheckSeverity.WARN
            self.checks[key]["passed" if data.passed else "warned" if warn else "failed"] += 1
            if not data.passed:
                name = f"{data.asset_key.to_user_string()}:{data.check_name}"
                report.failed_checks.append(f"{name} (warn)" if warn else name)
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
            seconds = time.monotonic() - self.started.get(key, time.monotonic())
            did = f"{len(self.assets.get(key, ()))} asset(s)"
            if self.partitions[key] > len(self.assets.get(key, ())):
                did += f", {self.partitions[key]} materializations"
            checks = self.checks.get(key, Counter())
            if checks:
                did += f"; checks: {checks['passed']} passed" + (f", {checks['warned']} warned" if checks["warned"] else "")
                did += f", {checks['failed']} FAILED" if checks["failed"] else ""
            mark = "ok  " if kind == "STEP_SUCCESS" else "FAIL"
            line = f"  {mark} {key:<42} {seconds:6.1f} s  {did}"
            print(line, file=self.out, flush=True)
            if kind == "STEP_FAILURE":
                cause = root_cause(event.step_failure_data.error)
                print(f"       cause: {cause}", file=self.out, flush=True)
                report.failures.append(f"{key}: {cause}")


def root_cause(error) -> str:
    """The innermost error of a Dagster error chain ("Error occurred while executing op ..." wraps the real one)."""
    while error.cause is not None:
        error = error.cause
    return f"{error.cls_name}: {error.message.strip()}" if error.cls_name else error.message.strip()


# --- the commands -------------------------------------------------------------------------------------------
def _run(launcher: Launcher, job: str, tags: dict[str, str] | None = None) -> bool:
    tags = tags or {}
    print(f"{job} {tags[RANGE_START_TAG]} .. {tags[RANGE_END_TAG]}" if tags else job, flush=True)
    report = launcher.run(job, tags)
    for warning in report.warnings[:MAX_WARNINGS]:
        print(f"  warning {warning}")
    if len(report.warnings) > MAX_WARNINGS:
        print(f"  ... {len(report.warnings) - MAX_WARNINGS} more warnings in the run's event log")
    status = "succeeded" if report.success else "FAILED"
    checks = f"; failed checks: {', '.join(report.failed_checks)}" if report.failed_checks else ""
    print(f"  {job} {status} (run {report.run_id[:8]}){checks}", flush=True)
    if report.failures:
        print(f"  what the steps printed: {launcher.log_dir / (report.run_id + '.log')}")
    return report.success


def _summary(settings: Settings) -> None:
    def counted(con, relations: list[tuple[str, str]]) -> list[tuple[str, str, int]]:
        # exact counts: duckdb_tables().estimated_size still counts the rows a rerun deleted
        return [(schema, name, con.execute(f'SELECT count(*) FROM "{schema}"."{name}"').fetchone()[0])
                for schema, name in relations]

    with warehouse.lake_connection(lake.from_settings(settings)) as con:  # the raw tables live in the lake
        rows = counted(con, [(RAW_SCHEMA, name) for name in sorted(RAW_TABLES)])
    if settings.warehouse_path.exists():  # the warehouse's own tables, once a warehouse run made them
        with warehouse.connect(settings.warehouse_path, read_only=True) as con:
            rows += counted(con, con.execute(
                "SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name <> ? ORDER BY ALL", [RAW_SCHEMA]).fetchall())
    print(f"\nWarehouse {settings.warehouse_path}, raw tables in the lake {settings.lake_location} (rows per table):")
    for schema in dict.fromkeys(schema for schema, _, _ in rows):
        tables = ", ".join(f"{name}\0{size:,}" for s, name, size in rows if s == schema)  # \0 keeps name and count together
        print(textwrap.fill(tables, width=110, initial_indent=f"  {schema:<13}", subsequent_indent=" " * 15).replace("\0", " "))


def _models(instance: dg.DagsterInstance) -> None:
    """Each model's latest candidate against its strongest baseline, and whether it became (or stayed) champion:
    trained, skipped (too little history) or promoted, from the lifecycle assets' latest records."""
    from ev_assets.defs.ml.families import FAMILIES
    from ev_assets.defs.ml.models import TRAINED, key_of

    def metadata(event) -> dict:
        return {} if event is None else {k: v.value for k, v in event.asset_materialization.metadata.items()}

    rows, counts = [], {"trained": 0, "skipped": 0, "promoted": 0}
    for name in (name for family in FAMILIES for name in family.models):
        trained = instance.get_latest_asset_check_evaluation_record(dg.AssetCheckKey(key_of(name, "candidate"), TRAINED))
        evaluated = getattr(trained, "evaluation", None)  # None, or only planned: the step did not run or failed
        check = {k: v.value for k, v in getattr(evaluated, "metadata", {}).items()}
        if check.get("skipped"):  # this run had too little history for it
            counts["skipped"] += 1
            rows.append(f"  {name:<32} skipped: {check['reason']}")
            continue
        candidate_event = instance.get_latest_materialization_event(key_of(name, "candidate"))
        if candidate_event is None:
            rows.append(f"  {name:<32} not trained (see its {TRAINED} check)")
            continue
        counts["trained"] += 1
        candidate = metadata(candidate_event)
        champion_event = instance.get_latest_materialization_event(key_of(name, "champion"))
        champion = metadata(champion_event) if champion_event and champion_event.run_id == candidate_event.run_id else {}
        evaluation_event = instance.get_latest_materialization_event(key_of(name, "evaluation"))
        evaluation = metadata(evaluation_event) if evaluation_event and evaluation_event.run_id == candidate_event.run_id else {}
        if champion.get("promoted"):
            counts["promoted"] += 1
            state = "promoted"
        elif champion:
            current = champion.get("champion_version")
            state = f"challenger (champion v{current})" if current not in (None, "none") else "challenger (no champion)"
        else:
            state = "challenger (a blocking check failed)" if evaluation or not champion_event else "challenger"
        rows.append(f"  {name:<32} v{candidate['registered_version']:<3} {state:<28} "
                    + (gate_words(evaluation) if evaluation else candidate["verdict"]))
    if rows:
        print(f"\nModels: {counts['trained']} trained, {counts['skipped']} skipped, {counts['promoted']} promoted "
              "(held-out test rows; candidate -> evaluation -> champion; MLflow UI: `make mlflow`):")
        print("\n".join(rows))


def gate_words(evaluation: dict) -> str:
    """What decided, from an evaluation's metadata: the first rival the candidate did not beat beyond noise (its
    strongest baseline, then the champion) with the interval; when it beat both, the last one; when it beat both and
    still was not promoted, the failed check's reason."""
    from ev_assets.lib.ml.gate import Comparison

    found = [Comparison.from_dict(d) for d in (evaluation.get("vs_strongest_baseline"), evaluation.get("vs_champion")) if d]
    deciding = next((c for c in found if not c.better), found[-1] if found else None)
    if deciding is None or (deciding.better and evaluation.get("decision") == "not promoted"):
        reason = str(evaluation.get("reason", ""))
        return reason if len(reason) <= 200 else reason[:197] + "..."
    return deciding.words()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ev_assets.cli", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["demo", "ingest", "rebuild-raw", "warehouse"])
    parser.add_argument("-v", "--verbose", action="store_true", help="print Dagster's full event log on the console too")
    args = parser.parse_args(argv)
    if not args.verbose:
        warnings.filterwarnings("ignore", category=dg.BetaWarning)
        warnings.filterwarnings("ignore", category=dg.PreviewWarning)
        logging.getLogger("mlflow").setLevel(logging.ERROR)  # its INFO lines (model registered, ...) are in the event log

    settings = Settings.from_env()
    try:
        instance = dg.DagsterInstance.get()
    except Exception:  # DAGSTER_HOME unset: runs still work, but the UI will not show them
        print("DAGSTER_HOME is not set: using a temporary Dagster instance (the UI will not show these runs)")
        instance = dg.DagsterInstance.ephemeral()

    if args.command == "rebuild-raw":
        ok = _run(Launcher(instance, settings.data_dir / "logs", verbose=args.verbose), "rebuild_raw_job")
        _summary(settings)
        return 0 if ok else 1
    if args.command == "warehouse":  # `make warehouse-spark`: the warehouse job alone, on the configured engine
        print(f"data root {settings.data_dir}; warehouse engine {settings.warehouse_engine}", flush=True)
        launcher = Launcher(instance, settings.data_dir / "logs", verbose=args.verbose)
        ok = True
        for window in poll_windows(settings):
            ok = ok and _run(launcher, "warehouse_job", day_tags(window))
        _summary(settings)
        return 0 if ok else 1
    windows = poll_windows(settings)
    spans = ", ".join(f"{start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC" for start, end in windows) or "none"
    print(f"data root {settings.data_dir}; chargecloud {settings.mode('chargecloud')}; polls {spans}", flush=True)
    launcher = Launcher(instance, settings.data_dir / "logs", verbose=args.verbose)
    ok = True
    if not windows:  # a replay without chargecloud polls: an empty source, not a failure
        print(no_polls_notice(settings), flush=True)
        ok = _run(launcher, "sources_job")
        if args.command == "demo":
            print("notice: the warehouse and the models are built per day of chargecloud polls: skipped", flush=True)
    for window in windows:
        ok = ok and _run(launcher, "chargecloud_poll_job", poll_tags(window))
        ok = ok and _run(launcher, "ingest_job", day_tags(window))
        if args.command == "demo" and ok:
            ok = _run(launcher, "warehouse_job", day_tags(window))
    if args.command == "demo" and ok and windows:
        ok = _run(launcher, "ml_job")
    if args.command == "demo" and ok and windows:
        ok = _run(launcher, "monitoring_job")  # the prediction log, drift reports, live error
    _summary(settings)
    if args.command == "demo":
        _models(instance)
    docs = settings.docs_site_path
    if docs.exists():
        print(f"\ndbt docs site: {docs} (opens offline; `make docs` serves it)")
    for report in sorted(settings.drift_dir.glob("*/latest.html")):
        print(f"drift report ({report.parent.name}): {report}")
    if args.command == "demo":
        print(f"Service: `make serve`, docs at {settings.service_url}/docs; dashboard: `make dashboard`, "
              f"{settings.dashboard_url}")
    if instance.is_ephemeral:
        return 0 if ok else 1
    print(f"Runs, assets and checks: `make ui`, then {settings.dagster_ui_url} (Dagster instance {instance.root_directory})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
