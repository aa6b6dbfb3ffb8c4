"""Asset specs and materialization metadata for the raw tables of `ev_assets.lib.tables` (lake partitions, read by
the warehouse as the views of schema `raw`)."""


import json
from functools import cache
from pathlib import Path
from typing import Sequence

import dagster as dg

from ev_assets.lib import tables, warehouse

# The raw tables are the dbt source `raw`, whose columns are described in one place,
# dbt_project/models/staging/__sources.yml; `dbt parse` (run by `make setup`) renders them into this manifest.
DBT_MANIFEST = Path(__file__).resolve().parents[2] / "dbt_project" / "target" / "manifest.json"


def column_schema(name: str) -> dg.TableSchema:
    """The columns of `raw.<name>` with their DuckDB types and the descriptions of the dbt source."""
    described = source_column_descriptions().get(name, {})
    return dg.TableSchema(
        columns=[dg.TableColumn(col, typ, description=described.get(col)) for col, typ in tables.TABLES[name]]
    )


@cache
def source_column_descriptions() -> dict[str, dict[str, str | None]]:
    """Table -> column -> description of the dbt source `raw`, as dbt renders them (docs blocks filled in)."""
    if not DBT_MANIFEST.exists():
        raise FileNotFoundError(f"no dbt manifest at {DBT_MANIFEST}: run `make setup` (it runs `dbt parse`)")
    sources = json.loads(DBT_MANIFEST.read_text())["sources"].values()
    return {
        source["name"]: {col: info.get("description") or None for col, info in source["columns"].items()}
        for source in sources
        if source["source_name"] == tables.SCHEMA
    }


def table_spec(name: str, description: str, group_name: str = "raw", **kwargs) -> dg.AssetSpec:
    """The spec of the asset that owns table `raw.<name>`: key ["raw", name], so dbt sources map onto it."""
    return dg.AssetSpec(
        key=dg.AssetKey([tables.SCHEMA, name]),
        description=description,
        group_name=group_name,
        kinds={"parquet"},  # lake partitions; the warehouse reads them as the view warehouse.raw.<name>
        metadata={"dagster/column_schema": column_schema(name), "dagster/table_name": f"warehouse.{tables.SCHEMA}.{name}"},
        **kwargs,
    )


def table_metadata(con, name: str, written: int, where: str = "TRUE", params: Sequence = ()) -> dict:
    """The rows the materialization describes (`where`: a partition's, else the whole table's), how many of them
    this run wrote, and a preview of them."""
    return {
        "dagster/row_count": warehouse.count(con, name, where, params),
        "rows_written": written,
        "preview": dg.MetadataValue.md(warehouse.preview(con, name, where, params)),
    }
