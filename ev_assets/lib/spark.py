"""The dbt project on Spark (profiles.yml target `spark`): the raw tables as Parquet, and dbt's arguments.

Spark reads the raw tables as Parquet files: `export_raw_tables` writes each raw table of the lake (as DuckDB reads it,
a partitioned table's versions collapsed) to
`<data root>/spark/raw/<table>/` (one file, replaced atomically), and dbt's on-run-start hook (macro
register_raw_tables) makes each a view `raw.<table>` over its folder. What Spark builds (its Hive metastore and
table files) stays under `<data root>/spark`. Java 17 and the `spark` extra come from `make spark`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sys
import uuid
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd

from ev_assets.lib import lake, tables, warehouse
from ev_assets.lib.settings import Settings

DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt_project"
FLOAT_TOLERANCE = 1e-9  # two engines' floats are equal within this (relative, or absolute near 0)


def raw_parquet_dir(settings: Settings) -> Path:
    """Where the raw tables are exported for Spark: one folder per table."""
    return settings.data_dir / "spark" / "raw"


def export_raw_tables(settings: Settings, names: list[str] | None = None) -> dict[str, int]:
    """Each raw table of the lake, as the DuckDB warehouse reads it, as `<raw_parquet_dir>/<table>/part-0.parquet`,
    rows per table.

    A table's folder is written beside it, then renamed into place: a reader never sees a half-written file (for a
    moment between the two renames the folder is absent). Empty tables are written too: Spark finds their columns
    and types in the file.
    """
    root = raw_parquet_dir(settings)
    root.mkdir(parents=True, exist_ok=True)
    counts = {}
    with warehouse.lake_connection(lake.from_settings(settings)) as con:
        for name in names or list(tables.TABLES):
            staging = root / f".{name}.{uuid.uuid4().hex}"
            staging.mkdir()
            con.execute(f"COPY {tables.SCHEMA}.{name} TO '{staging / 'part-0.parquet'}' (FORMAT parquet)")
            counts[name] = warehouse.count(con, name)
            target = root / name
            old = root / f".{name}.old.{uuid.uuid4().hex}"
            if target.exists():
                os.replace(target, old)
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
    return counts


def dbt_args(settings: Settings) -> list[str]:
    """The dbt arguments that select the engine's target (none for the default, DuckDB)."""
    return ["--target", "spark"] if settings.warehouse_engine == "spark" else []


def dbt_vars(settings: Settings) -> dict[str, str]:
    """dbt vars of the Spark target: where the raw tables' Parquet folders are."""
    return {"raw_parquet_dir": str(raw_parquet_dir(settings))} if settings.warehouse_engine == "spark" else {}


def table_dir(settings: Settings, schema: str, name: str) -> Path:
    """The files of a table dbt built on the session method's local Spark (its warehouse dir, Hive's layout)."""
    return settings.data_dir / "spark" / "warehouse" / f"{schema}.db" / name


def read_table(settings: Settings, schema: str, name: str) -> pd.DataFrame:
    """A table dbt built on the local Spark, read from its Parquet files (a partitioned table's day column from its
    folder names), so no second Spark session is needed to look at it. Spark's TIMESTAMP reads as UTC instants."""
    folder = table_dir(settings, schema, name)
    if not folder.is_dir():
        raise FileNotFoundError(f"no Spark table {schema}.{name} at {folder}: build it with dbt --target spark")
    files = sorted(str(path) for path in folder.rglob("*.parquet") if not path.name.startswith((".", "_")))
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        if not files:  # a partitioned table without rows has no file at all
            return pd.DataFrame()
        return con.execute("SELECT * FROM read_parquet(?, hive_partitioning = true, union_by_name = true)", [files]).df()
    finally:
        con.close()


def dbt_command(settings: Settings, *args: str, window: tuple[str, str] | None = None) -> list[str]:
    """A dbt command line on the engine of `settings` for its data root; `window` the days [min_date, max_date)."""
    values = {"ev_data_dir": str(settings.data_dir), "poll_interval_minutes": settings.poll_interval_minutes,
              **dbt_vars(settings)}
    if window:
        values.update(min_date=window[0], max_date=window[1])
    return [str(Path(sys.executable).with_name("dbt")), *args, *dbt_args(settings),
            "--project-dir", str(DBT_PROJECT), "--profiles-dir", str(DBT_PROJECT), "--vars", json.dumps(values)]


# --- the same marts on both engines --------------------------------------------------------------------------
def compare_marts(duck: Settings, on_spark: Settings) -> tuple[dict[str, int], list[str]]:
    """Every table of the `marts` schema as DuckDB built it (in `duck`'s warehouse) against Spark's build (under
    `on_spark`'s data root): (rows per table, the differences found, at most 5 per table)."""
    compared, problems = {}, []
    with contextlib.closing(duckdb.connect(str(duck.warehouse_path), read_only=True)) as con:
        names = [name for (name,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts' AND table_type = 'BASE TABLE' "
            "ORDER BY table_name").fetchall()]
        for name in names:
            on_duckdb = con.execute(f"SELECT * FROM marts.{name}").df()
            problems += differences(name, on_duckdb, read_table(on_spark, "marts", name))
            compared[name] = len(on_duckdb)
    return compared, problems


def normalized(value):
    """One cell as a comparable Python value: instants in UTC, dates as dates, lists as tuples, NULL as None."""
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.tz_convert("UTC").to_pydatetime() if value.tzinfo else value.tz_localize("UTC").to_pydatetime()
    if isinstance(value, datetime):
        return pd.Timestamp(value).tz_convert("UTC").to_pydatetime() if value.tzinfo else value
    if hasattr(value, "tolist") and not isinstance(value, (int, float)):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return tuple(normalized(v) for v in value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def sorted_rows(frame: pd.DataFrame, columns: list[str]) -> list[tuple]:
    """The rows as tuples of normalized cells, sorted (floats rounded for the order only)."""
    table = [tuple(normalized(v) for v in row) for row in frame[columns].itertuples(index=False, name=None)]
    key = lambda row: tuple((v is not None, round(v, 6) if isinstance(v, float) else v) for v in row)  # noqa: E731
    return sorted(table, key=key)


def differences(name: str, on_duckdb: pd.DataFrame, on_spark: pd.DataFrame) -> list[str]:
    """What differs between the two builds of one table: columns, row count, then cell by cell (floats 1e-9)."""
    if set(on_duckdb.columns) != set(on_spark.columns) and len(on_spark):
        return [f"{name}: columns differ: DuckDB only {set(on_duckdb.columns) - set(on_spark.columns)}, "
                f"Spark only {set(on_spark.columns) - set(on_duckdb.columns)}"]
    if len(on_duckdb) != len(on_spark):
        return [f"{name}: {len(on_duckdb)} rows on DuckDB, {len(on_spark)} on Spark"]
    columns = list(on_duckdb.columns)
    found = []
    for left, right in zip(sorted_rows(on_duckdb, columns), sorted_rows(on_spark, columns)):
        for column, a, b in zip(columns, left, right):
            same = (math.isclose(a, b, rel_tol=FLOAT_TOLERANCE, abs_tol=FLOAT_TOLERANCE)
                    if isinstance(a, float) and isinstance(b, (int, float)) else a == b)
            if not same:
                found.append(f"{name}.{column}: DuckDB {a!r} != Spark {b!r} (row {dict(zip(columns, left))})")
    return found[:5]
