"""What the asset catalog shows about each table: described columns of the raw tables, and for every dbt model
built its columns, row counts and a preview, with nothing the UI cannot display; the docs site link opens.

The warehouse job runs once, on the hand-made raw tables of `fixtures/raw_fleet.py`, for the day 2022-01-11.
"""

import dagster as dg
import duckdb
import pytest
from dagster._core.definitions.metadata import normalize_metadata

from ev_assets.lib import tables
from ev_assets_tests.fixtures.jobs import check_results, run_job
from ev_assets_tests.fixtures.paths import DBT_PROJECT
from ev_assets_tests.fixtures.raw_fleet import write_raw_warehouse

DAY = "2022-01-11"
# Definition metadata the Dagster UI never shows (dagster-dbt's handles on its manifest and translator).
HIDDEN_BY_THE_UI = {"dagster_dbt/manifest", "dagster_dbt/dagster_dbt_translator"}


@pytest.fixture(scope="module")
def warehouse_run(tmp_path_factory, dbt_manifest):
    """`warehouse_job` for one day on hand-made raw tables: the data root, the dbt models' materializations by
    asset key, the docs site's, and the run's result."""
    from ev_assets.definitions import defs

    data_dir = tmp_path_factory.mktemp("asset_metadata") / "data"
    data_dir.mkdir()
    write_raw_warehouse(data_dir / "warehouse.duckdb")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("EV_DATA_DIR", str(data_dir))
        result = run_job(defs, "warehouse_job", DAY, DAY)
    # the dbt models come from the daily asset (incremental models) and the unpartitioned one, in several steps
    dbt_steps = {e.step_key for e in result.all_events if e.step_key and e.step_key.startswith("warehouse_dbt_")}
    materialized = {m.asset_key.to_user_string(): m for step in dbt_steps for m in result.asset_materializations_for_node(step)}
    docs = result.asset_materializations_for_node("dbt_docs_site")
    return data_dir, materialized, docs, result


def query(data_dir, sql: str) -> list[tuple]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(sql).fetchall()


# --- raw tables -------------------------------------------------------------------------------------------------
def test_every_raw_table_column_is_described(defs):
    graph = defs.resolve_asset_graph()
    for name in tables.TABLES:
        schema = graph.get(dg.AssetKey(["raw", name])).metadata["dagster/column_schema"]
        assert [c.name for c in schema.columns] == tables.columns(name)
        undescribed = [c.name for c in schema.columns if not (c.description or "").strip()]
        assert undescribed == [], f"raw.{name}: columns without a description in the Dagster asset"


def test_raw_column_descriptions_come_from_the_dbt_sources(defs):
    """One home: what Dagster shows is what dbt_project/models/staging/__sources.yml says (docs blocks rendered)."""
    from ev_assets.defs.tables import source_column_descriptions

    schema = defs.resolve_asset_graph().get(dg.AssetKey(["raw", "status_chargingpoints"])).metadata["dagster/column_schema"]
    shown = {c.name: c.description for c in schema.columns}
    assert shown == source_column_descriptions()["status_chargingpoints"]
    assert "{{" not in shown["status"] and "| OUTOFORDER |" in shown["status"]  # the `status` docs block, rendered


# --- dbt models -------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_every_dbt_model_shows_its_columns_as_built_with_descriptions(warehouse_run):
    data_dir, materialized, _, _ = warehouse_run
    assert len(materialized) > 30
    for key, event in materialized.items():
        schema, table = key.split("/")
        built = [c for (c,) in query(data_dir, f"SELECT column_name FROM information_schema.columns WHERE "
                                               f"table_schema = '{schema}' AND table_name = '{table}' ORDER BY ordinal_position")]
        shown = event.metadata["dagster/column_schema"].schema.columns
        assert [c.name for c in shown] == built, key
        assert all(c.type for c in shown), key
    # marts document every column; the dbt yml descriptions arrive as they are
    for key in (k for k in materialized if k.startswith("marts/")):
        shown = materialized[key].metadata["dagster/column_schema"].schema.columns
        assert [c.name for c in shown if not c.description] == [], key
    share = next(c for c in materialized["marts/mart_utilization_city_daily"].metadata["dagster/column_schema"].schema.columns
                 if c.name == "share_available")
    assert share.description.startswith("Share of observed time AVAILABLE.\n\n**AVAILABLE**: free and working")


@pytest.mark.slow
def test_tables_report_the_rows_of_the_day_and_views_are_not_run(warehouse_run):
    data_dir, materialized, _, _ = warehouse_run
    facts = materialized["marts/fct_charging_point_status"].metadata
    # one status per charging point and poll of the day, as ingested
    (polls,) = query(data_dir, f"SELECT count(*) FROM raw.status_chargingpoints WHERE poll_time::DATE = '{DAY}'")[0]
    assert facts["dagster/row_count"].value == polls > 0
    assert facts["table_row_count"].value == query(data_dir, "SELECT count(*) FROM marts.fct_charging_point_status")[0][0]
    assert f"| {DAY} " in facts["preview"].value and "2022-01-10" not in facts["preview"].value
    # a dimension has no day: the whole table
    stations = materialized["marts/dim_station"].metadata
    assert stations["dagster/row_count"].value == 3 and "table_row_count" not in stations  # S1 twice (new hotline), S2
    assert "OBI Bonn-Nord" in stations["preview"].value
    view = materialized["staging/stg_chargecloud__charging_point_statuses"].metadata
    assert "dagster/row_count" not in view and "dagster/column_schema" in view


@pytest.mark.slow
def test_dbt_metadata_is_readable_in_the_ui(warehouse_run, defs):
    _, materialized, _, result = warehouse_run
    for key, event in materialized.items():
        assert "Execution Duration" not in event.metadata, key  # seconds, but it did not say so
        assert event.metadata["dbt_execution_s"].value >= 0, key
    # what the asset's definition shows: no "[DbtProject] (unserializable)"
    graph = defs.resolve_asset_graph()
    for key in materialized:
        shown = {k: v for k, v in graph.get(dg.AssetKey.from_user_string(key)).metadata.items() if k not in HIDDEN_BY_THE_UI}
        unserializable = [k for k, v in normalize_metadata(shown, allow_invalid=True).items() if "(unserializable)" in str(v.value)]
        assert unserializable == [], key
    # the dbt tests still arrive as asset checks, and pass on these tables
    checks = check_results(result)
    assert len(checks) > 100 and all(checks.values())


@pytest.mark.slow
def test_a_run_that_succeeded_leaves_no_dbt_files_behind(warehouse_run):
    """Each dbt step writes its compiled SQL and artifacts (~7 MB) under dbt_project/target: gone once it succeeded."""
    _, _, _, result = warehouse_run
    assert result.success
    assert sorted(p.name for p in (DBT_PROJECT / "target").glob(f"*-{result.run_id[:7]}*")) == []


@pytest.mark.slow
def test_docs_site_link_opens_in_a_browser_on_the_overview(warehouse_run):
    from ev_assets.defs.warehouse.dbt import DOCS_URL

    _, _, (docs,), _ = warehouse_run
    assert docs.metadata["open"].value == DOCS_URL and DOCS_URL.startswith("http://")
    page = docs.metadata["path"]
    assert isinstance(page, dg.PathMetadataValue)
    html = open(page.value).read()
    assert "# EV charging warehouse" in html  # the project's overview, not dbt's "Welcome!" page
