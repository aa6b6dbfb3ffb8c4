"""The dbt project on DuckDB as Dagster assets: star schema, inferred sessions and KPI marts.

Two assets split by how the models run (`lib/dbt_runs.py`): the incremental models per UTC day
(`warehouse_dbt_daily`), everything else unpartitioned (`warehouse_dbt_models`).

dbt sources named `raw.<table>` map onto the ingestion assets ["raw", <table>], so lineage runs unbroken from
each raw pull to each KPI; dbt tests appear as asset checks. Each built model reports its row count and its column
schema (with the descriptions of its dbt yml); tables also a preview.
"""


import shutil
import sys
import threading
import uuid
from datetime import datetime
from functools import cached_property
from pathlib import Path
from unittest import mock

import dagster as dg
import dagster_dbt.core.resource
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets
from dagster_dbt.asset_utils import DAGSTER_DBT_PROJECT_METADATA_KEY
from dagster_dbt.compat import DBT_PYTHON_VERSION
from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation
from pydantic import Field

from ev_assets.defs.partitions import daily_partitions
from ev_assets.defs.resources import DUCKDB_POOL, EvConfig
from ev_assets.lib import dbt_inprocess, dbt_runs, spark, warehouse
from ev_assets.lib.settings import Settings

PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

DBT_PROJECT_DIR = Path(__file__).resolve().parents[3] / "dbt_project"
# The manifest comes from `dbt parse`, which `make setup` runs (so also before `make ui`).
dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)

# `make docs` serves the docs site here (the UI cannot open file:// links): `Settings.docs_url`.
DOCS_URL = Settings().docs_url
# dagster-dbt's name for the seconds dbt spent on a node; it is shown as `dbt_execution_s` instead.
DBT_DURATION_KEY = "Execution Duration"


class WarehouseTranslator(DagsterDbtTranslator):
    def get_group_name(self, dbt_resource_props) -> str:
        return "warehouse"

    def get_asset_spec(self, manifest, unique_id, project) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        # The DbtProject object cannot be serialized: the UI would list it as "[DbtProject] (unserializable)".
        # Without it dagster-dbt runs dbt in the resource's project_dir, the same folder.
        metadata = {k: v for k, v in spec.metadata.items() if k != DAGSTER_DBT_PROJECT_METADATA_KEY}
        return spec.replace_attributes(metadata=metadata)


class DbtRunConfig(dg.Config):
    full_refresh: bool = Field(
        default=False,
        description="Build the incremental tables again from the run's window alone (dbt --full-refresh): run it "
        "as a backfill over every day, or the days before the window are lost.",
    )


def dbt_args(ev_config: EvConfig, config: DbtRunConfig | None = None) -> list[str]:
    """`dbt build` with the data root and poll interval as --vars (see `dbt_runs.build_args`)."""
    settings = ev_config.settings()
    args = dbt_runs.build_args(settings.data_dir, settings.poll_interval_minutes,
                               full_refresh=bool(config and config.full_refresh), extra_vars=spark.dbt_vars(settings))
    return [*args, *spark.dbt_args(settings)]  # EV_WAREHOUSE_ENGINE=spark: the spark target


TRANSLATOR = WarehouseTranslator(DagsterDbtTranslatorSettings(enable_source_tests_as_checks=True))


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=dbt_runs.INCREMENTAL,
    name="warehouse_dbt_daily",
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    dagster_dbt_translator=TRANSLATOR,
    pool=DUCKDB_POOL,
)
def warehouse_dbt_daily(context: dg.AssetExecutionContext, dbt: DbtCliResource, ev_config: EvConfig,
                        config: DbtRunConfig):
    """The incremental models (status facts, status runs, inferred sessions, hourly utilization) for the partition
    window [first day, last day + 1): each day's polls, with the state of the runs and sessions carried over.

    Every built model reports `dagster/column_schema` (the columns as built, described as in the dbt yml) and
    `dbt_execution_s`; every table also `dagster/row_count` and a `preview` of the rows of the partition window
    (those whose UTC day column, e.g. `day` or `poll_date`, lies in it), and `table_row_count`, the whole table's.
    """
    window = context.partition_time_window
    context.log.info(f"dbt build of the incremental models for {window.start:%Y-%m-%d} .. {window.end:%Y-%m-%d} (exclusive)")
    yield from run_dbt(context, dbt, ev_config, dbt_args(ev_config, config), window)


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    exclude=dbt_runs.INCREMENTAL,
    name="warehouse_dbt_models",
    dagster_dbt_translator=TRANSLATOR,
    pool=DUCKDB_POOL,
)
def warehouse_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, ev_config: EvConfig):
    """Everything but the incremental models, unpartitioned: the staging and interval views, the dimensions,
    the marts rebuilt from the incremental tables, and dbt's tests on the raw tables (as their checks).

    Every built model reports `dagster/column_schema` and `dbt_execution_s`; every table also `dagster/row_count`
    and a `preview` (in a run of days, of the rows of those days where the table has a UTC day column). Views are
    not counted: that would run their query.
    """
    # In a run of days (the warehouse job, a backfill) the run's window still applies: the staging views are
    # built for it (their dedup would otherwise scan the whole status history on every daily run) and the
    # window-bound tests stay on its days, as when the project ran as one invocation.
    window = run_window(context.run.tags)
    yield from run_dbt(context, dbt, ev_config, dbt_args(ev_config), window)


def run_window(tags: dict[str, str]) -> dg.TimeWindow | None:
    """The days of a partitioned run (one day, or a range of them) from its tags; None for a run of no days."""
    first = tags.get(RANGE_START_TAG) or tags.get(PARTITION_TAG)
    last = tags.get(RANGE_END_TAG) or tags.get(PARTITION_TAG)
    if not first or not last:
        return None
    try:  # strictly a day: another job's partition (a poll slot) means the whole history
        days = [datetime.strptime(key, "%Y-%m-%d") for key in (first, last)]
    except ValueError:
        return None
    return dg.TimeWindow(daily_partitions.time_window_for_partition_key(f"{days[0]:%Y-%m-%d}").start,
                         daily_partitions.time_window_for_partition_key(f"{days[1]:%Y-%m-%d}").end)


def run_dbt(context: dg.AssetExecutionContext, dbt: DbtCliResource, ev_config: EvConfig, args: list[str],
            window: dg.TimeWindow | None):
    """One dbt invocation for the selected assets, the window (if any) in its environment; the events with
    their table metadata once dbt has exited. dbt starts from the parse the last run of this data root left."""
    settings = ev_config.settings()
    if settings.warehouse_engine == "spark":  # EV_WAREHOUSE_ENGINE=spark: Spark reads the raw tables as Parquet
        exported = spark.export_raw_tables(settings)
        context.log.info(f"raw tables exported for Spark to {spark.raw_parquet_dir(settings)}: {sum(exported.values())} rows")
    with ev_config.connect():  # the sources: the raw views over the lake, made again (EV_LAKE_URL may have moved)
        pass
    target_path = target_folder(context)
    dbt_runs.reuse_parse(settings.dbt_parse_cache, target_path)
    with dbt_inprocess.environment(dbt_runs.run_env(*((window.start.date(), window.end.date()) if window else ()))):
        invocation = dbt.cli(args, context=context, target_path=target_path, in_process=in_process(settings))
    # While dbt writes the DuckDB file no other process may open it: hold its events until it has exited, then
    # read what it built once, read-only.
    events, failure = run_to_end(invocation.stream())
    if failure is not None and invocation.process.poll() is None:
        # the events broke off while dbt still runs (and holds the file): let it finish (reading what it still
        # writes, or it blocks on a full pipe) before reading the warehouse
        for _ in invocation.process.stdout:
            pass
        invocation.process.wait()
    dbt_runs.keep_parse(target_path, settings.dbt_parse_cache)
    if isinstance(failure, KeyError):
        raise dg.Failure(
            f"dbt reported node {failure} that Dagster's dbt manifest does not know: the manifest is older than "
            "dbt_project/. `make setup` parses it again (dbt parse), then reload the code location."
        ) from failure
    yield from with_table_metadata(events, ev_config, invocation.manifest, window)
    if failure is not None:
        context.log.info(f"dbt's files of this run are kept for a look: {target_path}")
        raise failure
    shutil.rmtree(target_path, ignore_errors=True)  # a run's compiled SQL and artifacts (~7 MB) would pile up daily


def target_folder(context: dg.AssetExecutionContext) -> Path:
    """dbt's files of one step of one run (its compiled SQL, artifacts and log), under dbt_project/target."""
    return DBT_PROJECT_DIR / "target" / f"{context.op_execution_context.op.name}-{context.run.run_id[:8]}-{uuid.uuid4().hex[:7]}"


def in_process(settings: Settings) -> bool:
    """dbt runs in the step's process on DuckDB (`lib/dbt_inprocess`); Spark's dbt keeps its own process, where
    its JVM starts and ends."""
    return settings.warehouse_engine != "spark"


def run_to_end(stream) -> tuple[list, Exception | None]:
    """All events of a dbt invocation, and the error that ended it (a failed dbt test fails the step only after
    every model and check result has been reported)."""
    events = []
    try:
        for event in stream:
            events.append(event)
    except Exception as error:  # noqa: BLE001 - raised by the caller once the events are out
        return events, error
    return events, None


def with_table_metadata(events: list, ev_config: EvConfig, manifest: dict, window: dg.TimeWindow | None) -> list:
    """The events with readable dbt metadata, each built model's with its table metadata."""
    events = [event.with_metadata(readable(event.metadata)) for event in events]
    if not any(is_model(event) for event in events):  # dbt failed before building anything: maybe no warehouse yet
        return events
    if ev_config.settings().warehouse_engine == "spark":  # the tables are in Spark, not DuckDB: dbt's metadata only
        return events
    with ev_config.connect(read_only=True) as con:
        return [
            event.with_metadata({**event.metadata, **model_metadata(con, manifest, node_id(event), window)})
            if is_model(event) else event
            for event in events
        ]


def is_model(event) -> bool:
    """A built model (as opposed to a dbt test's result)."""
    return isinstance(event, (dg.Output, dg.AssetMaterialization))


def node_id(event) -> str:
    return event.metadata["unique_id"].value


def readable(metadata: dict) -> dict:
    """dagster-dbt's metadata with dbt's node duration under a key that names its unit."""
    metadata = dict(metadata)
    duration = metadata.pop(DBT_DURATION_KEY, None)
    if duration is not None:
        metadata["dbt_execution_s"] = round(float(duration.value), 3)
    return metadata


def model_metadata(con, manifest: dict, unique_id: str, window: dg.TimeWindow | None) -> dict:
    """Column schema of one built model and, for a table, its row counts and a preview, read from the warehouse."""
    node = manifest["nodes"][unique_id]
    columns = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
        "ORDER BY ordinal_position",
        [node["schema"], node["alias"]],
    ).fetchall()
    metadata = {"dagster/column_schema": column_schema(columns, node.get("columns", {}))}
    if node["config"].get("materialized") == "view":
        return metadata  # counting a view runs its query over all raw rows: too slow for every run
    day = day_column(columns) if window is not None else None
    return {**metadata, **table_rows(con, f'"{node["schema"]}"."{node["alias"]}"', day, window)}


def column_schema(columns: list[tuple[str, str]], documented: dict) -> dg.TableSchema:
    """The columns as built, with the descriptions the dbt yml gives them."""
    return dg.TableSchema(
        columns=[dg.TableColumn(name, typ, description=documented.get(name, {}).get("description") or None)
                 for name, typ in columns]
    )


def table_rows(con, relation: str, day: str | None, window: dg.TimeWindow | None) -> dict:
    """The rows the materialization describes (with a UTC day column and a window: the window's, else the
    whole table's), a preview of them, and the rows of the whole table where those differ."""
    where, params = (f"{day} >= ? AND {day} < ?", [window.start.date(), window.end.date()]) if day else ("TRUE", [])
    return {
        "dagster/row_count": warehouse.count_rows(con, relation, where, params),
        **({"table_row_count": warehouse.count_rows(con, relation)} if day else {}),
        "preview": dg.MetadataValue.md(warehouse.preview_rows(con, relation, where, params)),
    }


def day_column(columns: list[tuple[str, str]]) -> str | None:
    """The UTC day a row counts in: the first DATE column named `day` or `<something>_date` (`poll_date`,
    `session_date`, ...), as the models name it."""
    return next((name for name, typ in columns if typ == "DATE" and (name == "day" or name.endswith("_date"))), None)


@dg.asset(
    group_name="docs",
    deps=[warehouse_dbt_daily, warehouse_dbt_models],
    kinds={"dbt", "html"},
    pool=DUCKDB_POOL,
)
def dbt_docs_site(context: dg.AssetExecutionContext, dbt: DbtCliResource, ev_config: EvConfig) -> dg.MaterializeResult:
    """The dbt docs site as one self-contained HTML file under the data root (`docs/index.html`): open it from
    disk, no network needed, or run `make docs` to serve it at `settings.docs_url` (the link in the metadata)."""
    settings = ev_config.settings()
    args = dbt_runs.build_args(settings.data_dir, settings.poll_interval_minutes, command="docs generate",
                               extra_vars=spark.dbt_vars(settings))
    target_path = target_folder(context)
    dbt_runs.reuse_parse(settings.dbt_parse_cache, target_path)  # the parse the warehouse steps left (same vars)
    invocation = dbt.cli([*args, "--static", *spark.dbt_args(settings)], manifest=dbt_project.manifest_path,
                         target_path=target_path, in_process=in_process(settings))
    invocation.wait()
    static = Path(invocation.target_path) / "static_index.html"
    if not static.exists():
        raise FileNotFoundError(f"dbt docs generate --static wrote no {static}")
    target = settings.docs_site_path
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(static, target)
    shutil.rmtree(invocation.target_path, ignore_errors=True)  # dbt's catalog and artifacts: the site holds them
    return dg.MaterializeResult(
        metadata={"path": dg.MetadataValue.path(str(target)), "bytes": target.stat().st_size,
                  "open": dg.MetadataValue.url(settings.docs_url)}  # browsers refuse a file:// link from the UI
    )


CLI_CALLS = threading.Lock()  # `DbtCli.cli` replaces a name of dagster-dbt's module while it runs


class InProcessInvocation(DbtCliInvocation):
    """dagster-dbt's invocation of a dbt command, run in this process (`lib/dbt_inprocess`) instead of a subprocess;
    its events are read as dagster-dbt reads a subprocess's."""

    @classmethod
    def run(cls, args, env, manifest, dagster_dbt_translator, project_dir, target_path, raise_on_error, context,
            adapter, cli_version, dbt_project=None) -> "InProcessInvocation":
        if not (target_path / dbt_runs.PARTIAL_PARSE).exists():  # as dagster-dbt: start from the project's parse
            dbt_runs.reuse_parse(project_dir / "target" / dbt_runs.PARTIAL_PARSE, target_path)
        # the window is read only while dbt compiles: the days of a run use the same parse
        process = dbt_inprocess.run_reusing_parse(args, env, project_dir, compile_env=dbt_runs.WINDOW_ENV)
        return cls(process=process, manifest=manifest, project=dbt_project,
                   dagster_dbt_translator=dagster_dbt_translator, project_dir=project_dir, target_path=target_path,
                   raise_on_error=raise_on_error, context=context, adapter=adapter, cli_version=cli_version)


class DbtCli(DbtCliResource):
    """dagster-dbt's resource, with dbt run in the step's process (`in_process`, ~7 s a step less than a `dbt`
    subprocess, see `lib/dbt_inprocess`) and without two costs of each step that this project does not need
    (about 5 s a step): `dbt --version` in a subprocess (~3 s; the version is that of the dbt-core installed here,
    whose `dbt` this runs) and a dbt adapter opened in Dagster's process (~2 s), which dagster-dbt opens for
    `fetch_column_metadata` and `fetch_row_counts` (not used: `with_table_metadata` reads the tables once dbt has
    exited). They are private parts of dagster-dbt 0.29 (its module's `DbtCliInvocation`, `_cli_version`,
    `_initialize_dbt_core_adapter`); the tests of `test_dbt_resource.py` fail if they change."""

    def cli(self, args, *, in_process: bool = False, **kwargs) -> DbtCliInvocation:
        """dagster-dbt's `cli`; with `in_process`, dbt runs in this process (as `InProcessInvocation`). The
        replacement is the module's for the call: one call at a time in a process (threads included)."""
        with CLI_CALLS:
            if not in_process:
                return super().cli(args, **kwargs)
            with mock.patch.object(dagster_dbt.core.resource, "DbtCliInvocation", InProcessInvocation):
                return super().cli(args, **kwargs)

    @cached_property
    def _cli_version(self):
        return DBT_PYTHON_VERSION  # dagster-dbt's own reading of the installed dbt-core's version

    def _initialize_dbt_core_adapter(self, args) -> None:
        return None


# The dbt installed beside this Python, so it is found also when the virtualenv is not on PATH.
dbt_resource = DbtCli(project_dir=dbt_project, dbt_executable=shutil.which("dbt") or str(Path(sys.executable).with_name("dbt")))
