"""The dbt project on DuckDB as Dagster assets: star schema, inferred sessions and KPI marts, per UTC day.

dbt sources named `raw.<table>` map onto the ingestion assets ["raw", <table>], so lineage runs unbroken from
each raw pull to each KPI; dbt tests appear as asset checks. Each built model reports its row count and its column
schema (with the descriptions of its dbt yml); tables also a preview.
"""


import json
import shutil
import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets
from dagster_dbt.asset_utils import DAGSTER_DBT_PROJECT_METADATA_KEY

from ev_assets.defs.partitions import daily_partitions
from ev_assets.defs.resources import DUCKDB_POOL, EvConfig
from ev_assets.lib import warehouse
from ev_assets.lib.settings import Settings

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
    """Builds and tests the dbt models for the partition window [first day, last day + 1).

    Every built model reports `dagster/column_schema` (the columns as built, described as in the dbt yml) and
    `dbt_execution_s`; every table also `dagster/row_count` and a `preview` of the rows of the partition window
    (those whose UTC day column, e.g. `day` or `poll_date`, lies in it; the whole table for a model without one),
    and then `table_row_count`, the rows of the whole table. Views are not counted: that would run their query.
    """
    window = context.partition_time_window
    context.log.info(f"dbt build for {window.start:%Y-%m-%d} .. {window.end:%Y-%m-%d} (exclusive)")
    invocation = dbt.cli(["build", "--vars", dbt_vars(ev_config, window)], context=context)
    # While dbt writes the DuckDB file no other process may open it: hold its events until it has exited, then
    # read what it built once, read-only.
    events, failure = run_to_end(invocation.stream())
    if failure is not None and invocation.process.poll() is None:
        # the events broke off while dbt still runs (and holds the file): let it finish (reading what it still
        # writes, or it blocks on a full pipe) before reading the warehouse
        for _ in invocation.process.stdout:
            pass
        invocation.process.wait()
    if isinstance(failure, KeyError):
        raise dg.Failure(
            f"dbt reported node {failure} that Dagster's dbt manifest does not know: the manifest is older than "
            "dbt_project/. `make setup` parses it again (dbt parse), then reload the code location."
        ) from failure
    yield from with_table_metadata(events, ev_config, invocation.manifest, window)
    if failure is not None:
        raise failure


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


def with_table_metadata(events: list, ev_config: EvConfig, manifest: dict, window: dg.TimeWindow) -> list:
    """The events with readable dbt metadata, each built model's with its table metadata."""
    events = [event.with_metadata(readable(event.metadata)) for event in events]
    if not any(is_model(event) for event in events):  # dbt failed before building anything: maybe no warehouse yet
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


def model_metadata(con, manifest: dict, unique_id: str, window: dg.TimeWindow) -> dict:
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
    return {**metadata, **table_rows(con, f'"{node["schema"]}"."{node["alias"]}"', day_column(columns), window)}


def column_schema(columns: list[tuple[str, str]], documented: dict) -> dg.TableSchema:
    """The columns as built, with the descriptions the dbt yml gives them."""
    return dg.TableSchema(
        columns=[dg.TableColumn(name, typ, description=documented.get(name, {}).get("description") or None)
                 for name, typ in columns]
    )


def table_rows(con, relation: str, day: str | None, window: dg.TimeWindow) -> dict:
    """The rows the materialization describes (with a UTC day column: the partition window's, else the whole
    table's), a preview of them, and the rows of the whole table where those differ."""
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
    deps=[warehouse_dbt_models],
    kinds={"dbt", "html"},
    pool=DUCKDB_POOL,
)
def dbt_docs_site(context: dg.AssetExecutionContext, dbt: DbtCliResource, ev_config: EvConfig) -> dg.MaterializeResult:
    """The dbt docs site as one self-contained HTML file under the data root (`docs/index.html`): open it from
    disk, no network needed, or run `make docs` to serve it at `settings.docs_url` (the link in the metadata)."""
    settings = ev_config.settings()
    invocation = dbt.cli(["docs", "generate", "--static", "--vars", dbt_vars(ev_config)], manifest=dbt_project.manifest_path)
    invocation.wait()
    static = Path(invocation.target_path) / "static_index.html"
    if not static.exists():
        raise FileNotFoundError(f"dbt docs generate --static wrote no {static}")
    target = settings.docs_site_path
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(static, target)
    return dg.MaterializeResult(
        metadata={"path": dg.MetadataValue.path(str(target)), "bytes": target.stat().st_size,
                  "open": dg.MetadataValue.url(settings.docs_url)}  # browsers refuse a file:// link from the UI
    )


# The dbt installed beside this Python, so it is found also when the virtualenv is not on PATH.
dbt_resource = DbtCliResource(project_dir=dbt_project, dbt_executable=shutil.which("dbt") or str(Path(sys.executable).with_name("dbt")))
