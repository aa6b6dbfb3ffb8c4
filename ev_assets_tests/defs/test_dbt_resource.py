"""The dbt resource (`DbtCli` in ev_assets/defs/warehouse/dbt.py): dbt in the step's process (`lib/dbt_inprocess`),
read by dagster-dbt as it reads a `dbt` subprocess; and without two costs of dagster-dbt's at every dbt step (`dbt
--version` in a subprocess, a dbt adapter in Dagster's process)."""

import inspect
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from datetime import date, timedelta

import dagster_dbt.core.resource
import duckdb
import pytest
from dagster_dbt import DbtCliResource

from ev_assets.defs.warehouse.dbt import DbtCli, InProcessInvocation, dbt_resource
from ev_assets.lib import dbt_inprocess, dbt_runs
from ev_assets_tests.fixtures.paths import DBT_PROJECT


def test_dbt_steps_start_no_dbt_version_and_no_adapter(monkeypatch):
    # dagster-dbt's `cli` still calls the two private methods the override replaces (renamed, they would run again)
    source = inspect.getsource(DbtCliResource.cli)
    assert "self._initialize_dbt_core_adapter(" in source and "self._cli_version" in source
    assert dbt_resource._initialize_dbt_core_adapter(["build"]) is None
    started = []
    monkeypatch.setattr(dagster_dbt.core.resource, "check_output", lambda *args, **kwargs: started.append(args))
    fresh = DbtCli(project_dir=dbt_resource.project_dir, dbt_executable=dbt_resource.dbt_executable)
    assert fresh._cli_version.major == 1 and started == []  # dbt-core 1.x, known without starting `dbt --version`


def test_dbt_in_process_starts_no_subprocess_and_reads_as_one(dbt_manifest, monkeypatch, tmp_path):
    # dagster-dbt's `cli` still starts its dbt through the module's `DbtCliInvocation.run`, which `in_process` replaces
    assert "DbtCliInvocation.run(" in inspect.getsource(DbtCliResource.cli)
    popen, started = subprocess.Popen, []
    monkeypatch.setattr(subprocess, "Popen", lambda args, *a, **kw: started.append(args) or popen(args, *a, **kw))
    invocation = dbt_resource.cli(["ls", "--select", "dim_time", "--resource-type", "model", "--output", "name"],
                                  in_process=True, target_path=tmp_path / "target")
    assert isinstance(invocation, InProcessInvocation)
    events = [event.raw_event for event in invocation.stream_raw_events()]
    assert invocation.is_successful() and invocation.process.returncode == 0
    # the JSON lines a `dbt` subprocess prints: dbt's version, then the node listed
    assert events[0]["info"]["name"] == "MainReportVersion"
    assert [e["info"]["msg"] for e in events if e["info"]["name"] == "PrintEvent"] == ["dim_time"]
    assert (tmp_path / "target" / "dbt.log").exists()  # dbt's own log, in the invocation's folder as before
    assert not [args for args in started if "dbt" in str(args[0])], started


def test_a_failing_dbt_in_process_exits_and_fails_as_its_subprocess_would(dbt_manifest, tmp_path):
    args = ["run-operation", "no_such_macro"]
    in_process = dbt_resource.cli(args, in_process=True, raise_on_error=False, target_path=tmp_path / "in")
    error = in_process.get_error()
    assert error is not None and "no_such_macro" in str(error)  # dbt's error message, as dagster-dbt reports it
    # the exit code of a `dbt` subprocess on the same command
    done = subprocess.run([dbt_resource.dbt_executable, *args], cwd=dbt_resource.project_dir, capture_output=True,
                          env={**os.environ, "DBT_TARGET_PATH": str(tmp_path / "sub")})
    assert in_process.process.returncode == done.returncode != 0


def test_an_interrupt_inside_dbt_is_raised_once_dbt_returns(monkeypatch, tmp_path):
    from dbt.cli.main import dbtRunner, dbtRunnerResult

    interrupted = dbtRunnerResult(success=False, exception=KeyboardInterrupt())
    monkeypatch.setattr(dbtRunner, "invoke", lambda self, args: interrupted)
    with pytest.raises(KeyboardInterrupt):
        dbt_inprocess.run(["dbt", "build"], {}, tmp_path)


def test_terminating_a_run_stops_dbt_s_query_and_threads_before_it_is_raised_as_dagster_raises_it(tmp_path):
    from dagster._core.errors import DagsterExecutionInterruptedError
    from dagster._utils.interrupts import raise_interrupts_as

    project, database, logs = tmp_path / "slow", tmp_path / "slow.duckdb", tmp_path / "logs"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: slow\nversion: '1.0'\nprofile: slow\nflags: {send_anonymous_usage_stats: false}\n")
    (project / "profiles.yml").write_text(
        f"slow:\n  target: dev\n  outputs:\n    dev: {{type: duckdb, path: '{database}', threads: 2}}\n")
    (project / "models" / "endless.sql").write_text(
        "{{ config(materialized='table') }} select count(*) as n from range(1000000000000) t(i) where i % 7 = 3")

    def terminate_once_the_query_runs() -> None:
        log, deadline = logs / "dbt.log", time.monotonic() + 60
        while time.monotonic() < deadline and "START sql table model" not in (log.read_text() if log.exists() else ""):
            time.sleep(0.05)
        time.sleep(1)  # the query under way (and at the deadline in any case: the query would never end)
        os.kill(os.getpid(), signal.SIGTERM)  # what Dagster sends a run's process to terminate it

    sigterm, threads = signal.getsignal(signal.SIGTERM), set(threading.enumerate())
    terminator = threading.Thread(target=terminate_once_the_query_runs)
    started = time.monotonic()
    try:
        with pytest.raises(DagsterExecutionInterruptedError), raise_interrupts_as(DagsterExecutionInterruptedError):
            terminator.start()
            dbt_inprocess.run(["dbt", "run", "--project-dir", str(project), "--profiles-dir", str(project),
                               "--log-path", str(logs), "--target-path", str(tmp_path / "target")], {}, project)
    finally:
        signal.signal(signal.SIGTERM, sigterm)  # Dagster's handler leaves SIGTERM mapped to Ctrl-C's
        terminator.join()
    assert time.monotonic() - started < 60
    # dbt stopped as on Ctrl-C: its query cancelled, its threads gone, its run results written, the database closed
    assert "CANCEL query model.slow.endless" in (logs / "dbt.log").read_text()
    assert set(threading.enumerate()) <= threads
    assert json.loads((tmp_path / "target" / "run_results.json").read_text())["results"] == []
    with duckdb.connect(str(database)) as warehouse:
        built = "select count(*) from information_schema.tables where table_name = 'endless'"
        assert warehouse.execute(built).fetchone() == (0,)


def test_only_the_first_interrupt_stops_dbt_and_it_is_raised_as_the_replaced_handler_would(monkeypatch, tmp_path):
    from dbt.cli.main import dbtRunner, dbtRunnerResult

    recorded, cancelled = [], []

    def interrupted_twice(self, args):  # Ctrl-C, then Dagster's executor passing it on while dbt cancels
        with pytest.raises(KeyboardInterrupt):  # the first stops dbt...
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        os.kill(os.getpid(), signal.SIGINT)  # ...the second must not cut its cancelling short
        time.sleep(0.2)
        cancelled.append(True)
        return dbtRunnerResult(success=False, exception=KeyboardInterrupt())

    monkeypatch.setattr(dbtRunner, "invoke", interrupted_twice)
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGINT, lambda signo, frame: recorded.append(signo))  # a handler that only records
        with pytest.raises(KeyboardInterrupt):
            dbt_inprocess.run(["dbt", "build"], {}, tmp_path)
        assert cancelled and recorded == [signal.SIGINT]  # dbt ran to its end; the interrupt passed on once
        signal.getsignal(signal.SIGINT)(signal.SIGINT, None)
        assert recorded == [signal.SIGINT, signal.SIGINT]  # the handler is back
    finally:
        signal.signal(signal.SIGINT, before[0])
    assert signal.getsignal(signal.SIGTERM) == before[1]


def test_the_next_dbt_command_starts_from_the_last_parse_while_nothing_it_read_changed(monkeypatch, tmp_path):
    project = tmp_path / "project"  # a copy: the test changes a model
    shutil.copytree(DBT_PROJECT, project, ignore=shutil.ignore_patterns("target", "logs"))
    monkeypatch.setattr(dbt_inprocess, "LAST_PARSE", None)
    commands, run = [], dbt_inprocess.run
    monkeypatch.setattr(dbt_inprocess, "run", lambda args, *a, **kw: commands.append(args[1]) or run(args, *a, **kw))
    target = tmp_path / "target"
    compiled = target / "compiled" / "ev_assets" / "models" / "marts" / "fct_connector_status.sql"

    def compile_day(day: date, poll_interval_minutes: int = 10, **env: str) -> tuple[list[str], str]:
        commands.clear()
        args = ["dbt", "compile", "--select", "stg_chargecloud__polls fct_connector_status",
                "--project-dir", str(project), "--profiles-dir", str(project), "--target-path", str(target),
                "--vars", json.dumps(dbt_runs.dbt_vars(tmp_path, poll_interval_minutes))]
        done = dbt_inprocess.run_reusing_parse(args, {**dbt_runs.window_env(day, day + timedelta(days=1)), **env},
                                               project, compile_env=dbt_runs.WINDOW_ENV)
        assert done.returncode == 0, done.stdout.getvalue().decode()[-3000:]
        return commands[:], compiled.read_text()

    day = date(2026, 1, 5)
    first, sql = compile_day(day)
    assert first == ["parse", "compile"] and "2026-01-05 00:00:00" in sql
    staging = target / "compiled" / "ev_assets" / "models" / "staging" / "stg_chargecloud__polls.sql"
    assert '"raw"."chargecloud_poll_log"' in staging.read_text()  # a source, resolved by the kept parse's lookups
    # the next day (its window is read while compiling): the same parse, the new window
    second, sql = compile_day(day + timedelta(days=1), EV_SIM_START="2026-01-06")  # a setting dbt does not read
    assert second == ["compile"] and "2026-01-06 00:00:00" in sql and "2026-01-05 00:00:00" not in sql
    # what the parse read changes: other vars, a setting of the project's, a model's file
    assert compile_day(day, poll_interval_minutes=15)[0] == ["parse", "compile"]
    assert compile_day(day, poll_interval_minutes=15, EV_DUCKDB_MEMORY_LIMIT="1GB")[0] == ["parse", "compile"]
    model = project / "models" / "marts" / "fct_connector_status.sql"
    model.write_text(model.read_text() + "\n-- the day's polls\n")
    changed, sql = compile_day(day, poll_interval_minutes=15, EV_DUCKDB_MEMORY_LIMIT="1GB")
    assert changed == ["parse", "compile"] and sql.rstrip().endswith("-- the day's polls")
    assert compile_day(day, poll_interval_minutes=15, EV_DUCKDB_MEMORY_LIMIT="1GB")[0] == ["compile"]
