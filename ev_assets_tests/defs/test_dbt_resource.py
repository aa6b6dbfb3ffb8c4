"""The dbt resource leaves out two costs of dagster-dbt's (`DbtCli` in ev_assets/defs/warehouse/dbt.py): `dbt
--version` in a subprocess and a dbt adapter in Dagster's process, at every dbt step."""

import inspect

import dagster_dbt.core.resource
from dagster_dbt import DbtCliResource

from ev_assets.defs.warehouse.dbt import DbtCli, dbt_resource


def test_dbt_steps_start_no_dbt_version_and_no_adapter(monkeypatch):
    # dagster-dbt's `cli` still calls the two private methods the override replaces (renamed, they would run again)
    source = inspect.getsource(DbtCliResource.cli)
    assert "self._initialize_dbt_core_adapter(" in source and "self._cli_version" in source
    assert dbt_resource._initialize_dbt_core_adapter(["build"]) is None
    started = []
    monkeypatch.setattr(dagster_dbt.core.resource, "check_output", lambda *args, **kwargs: started.append(args))
    fresh = DbtCli(project_dir=dbt_resource.project_dir, dbt_executable=dbt_resource.dbt_executable)
    assert fresh._cli_version.major == 1 and started == []  # dbt-core 1.x, known without starting `dbt --version`
