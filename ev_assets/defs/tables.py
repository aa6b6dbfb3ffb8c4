"""Asset specs and materialization metadata for the warehouse tables of `ev_assets.lib.tables`."""


from typing import Sequence

import dagster as dg

from ev_assets.lib import tables, warehouse


def column_schema(name: str) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(col, typ) for col, typ in tables.TABLES[name]])


def table_spec(name: str, description: str, group_name: str = "raw", **kwargs) -> dg.AssetSpec:
    """The spec of the asset that owns table `raw.<name>`: key ["raw", name], so dbt sources map onto it."""
    return dg.AssetSpec(
        key=dg.AssetKey([tables.SCHEMA, name]),
        description=description,
        group_name=group_name,
        kinds={"duckdb"},
        metadata={"dagster/column_schema": column_schema(name), "dagster/table_name": f"warehouse.{tables.SCHEMA}.{name}"},
        **kwargs,
    )


def table_metadata(con, name: str, written: int, where: str = "TRUE", params: Sequence = ()) -> dict:
    """Row counts (of the whole table, and written by this run) and a preview of what was written."""
    return {
        "dagster/row_count": warehouse.count(con, name),
        "rows_written": written,
        "preview": dg.MetadataValue.md(warehouse.preview(con, name, where, params)),
    }
