"""The dbt project on DuckDB as Dagster assets: star schema, inferred sessions and KPI marts, per UTC day.

dbt sources named `raw.<table>` map onto the ingestion assets ["raw", <table>], so lineage runs unbroken from
each raw pull to each KPI; dbt tests appear as asset checks.
"""


import json
import shutil
import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets

from ev_assets.defs.partitions import daily_partitions
from ev_assets.defs.resources import DUCKDB_POOL, EvConfig

DBT_PROJECT_DIR = Path(__file__).resolve().parents[3] / "dbt_project"
# The manifest comes from `dbt parse`, which `make setup` runs (so also before `make ui`).
dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


class WarehouseTranslator(DagsterDbtTranslator):
    def get_group_name(self, dbt_resource_props) -> str:
        return "warehouse"


def dbt_vars(ev_config: EvConfig, window: dg.TimeWindow | None = None) -> str:
    """`--vars` for dbt: the data root (so dbt writes where the Python assets do) and the partition window."""
    settings = ev_config.settings()
    values = {"ev_data_dir": str(settings.data_dir), "poll_interval_minutes": settings.poll_interval_minutes}
    if window is not None:
        values.update(min_date=f"{window.start:%Y-%m-%d}", max_date=f"{window.end:%Y-%m-%d}")
    return json.dumps(values)


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    # dbt tests on sources (e.g. no duplicate poll per item in raw.status_chargingpoints) become checks too
    dagster_dbt_translator=WarehouseTranslator(DagsterDbtTranslatorSettings(enable_source_tests_as_checks=True)),
    pool=DUCKDB_POOL,
)
def warehouse_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, ev_config: EvConfig):
    """Builds and tests the dbt models for the partition window [first day, last day + 1)."""
    window = context.partition_time_window
    context.log.info(f"dbt build for {window.start:%Y-%m-%d} .. {window.end:%Y-%m-%d} (exclusive)")
    yield from dbt.cli(["build", "--vars", dbt_vars(ev_config, window)], context=context).stream()


@dg.asset(
    group_name="docs",
    deps=[warehouse_dbt_models],
    kinds={"dbt", "html"},
    pool=DUCKDB_POOL,
)
def dbt_docs_site(context: dg.AssetExecutionContext, dbt: DbtCliResource, ev_config: EvConfig) -> dg.MaterializeResult:
    """The dbt docs site as one self-contained HTML file under the data root (`docs/index.html`): open it from
    disk, no server or network needed."""
    settings = ev_config.settings()
    invocation = dbt.cli(["docs", "generate", "--static", "--vars", dbt_vars(ev_config)], manifest=dbt_project.manifest_path)
    invocation.wait()
    static = Path(invocation.target_path) / "static_index.html"
    if not static.exists():
        raise FileNotFoundError(f"dbt docs generate --static wrote no {static}")
    target = settings.data_dir / "docs" / "index.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(static, target)
    return dg.MaterializeResult(
        metadata={"path": dg.MetadataValue.path(str(target)), "bytes": target.stat().st_size,
                  "open": dg.MetadataValue.url(target.as_uri())}
    )


# The dbt installed beside this Python, so it is found also when the virtualenv is not on PATH.
dbt_resource = DbtCliResource(project_dir=dbt_project, dbt_executable=shutil.which("dbt") or str(Path(sys.executable).with_name("dbt")))
