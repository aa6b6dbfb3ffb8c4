"""The marts as the service and the dashboard read them: a read-only snapshot published at the end of each
warehouse run. DuckDB allows one writer and then no reader from another process, so nothing outside the pipeline
opens `warehouse.duckdb` itself."""

import dagster as dg
import duckdb

from ev_assets.defs.resources import DUCKDB_POOL, EvConfig
from ev_assets.defs.warehouse.dbt import warehouse_dbt_daily, warehouse_dbt_models
from ev_assets.lib import snapshot


@dg.asset(
    key=["serving", "marts_snapshot"],
    group_name="serving",
    deps=[warehouse_dbt_daily, warehouse_dbt_models],
    kinds={"duckdb"},
    pool=DUCKDB_POOL,
    output_required=False,
)
def marts_snapshot(context: dg.AssetExecutionContext, ev_config: EvConfig):
    """Every table of the `marts` schema copied into a new DuckDB file under `<data root>/serving/snapshots/`, then
    made current in one atomic step (`CURRENT`). The service (`make serve`) and the dashboard switch to it on their
    next request; readers of the previous snapshot finish undisturbed (the newest 3 are kept).
    Not on Spark (EV_WAREHOUSE_ENGINE=spark): the marts are Spark tables then, and the snapshot stays as it was."""
    settings = ev_config.settings()
    if settings.warehouse_engine == "spark":
        context.log.warning("warehouse built on Spark: no new snapshot (the service reads marts built on DuckDB)")
        return
    path = snapshot.publish(settings.warehouse_path, settings.snapshot_dir)
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts' ORDER BY table_name"
        ).fetchall()
        rows = {name: con.execute(f'SELECT count(*) FROM marts."{name}"').fetchone()[0] for (name,) in tables}
    context.log.info(f"published {path.name}: {len(rows)} mart tables")
    yield dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(path)),
        "bytes": path.stat().st_size,
        "tables": len(rows),
        "rows_per_table": dg.MetadataValue.json(rows),
    })
