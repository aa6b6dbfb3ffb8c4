"""The dbt resource (`DbtCli` in ev_assets/defs/warehouse/dbt.py): dbt in the step's process (`lib/dbt_inprocess`),
read by dagster-dbt as it reads a `dbt` subprocess; and without two costs of dagster-dbt's at every dbt step (`dbt
--version` in a subprocess, a dbt adapter in Dagster's process)."""

import inspect
import os
import subprocess

import dagster_dbt.core.resource
import pytest
from dagster_dbt import DbtCliResource

from ev_assets.defs.warehouse.dbt import DbtCli, InProcessInvocation, dbt_resource
from ev_assets.lib import dbt_inprocess


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
