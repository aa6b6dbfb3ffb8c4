"""The dbt project on Spark (profiles.yml target `spark`): the raw tables as Parquet, and dbt's arguments.

Spark reads the raw tables as Parquet files: `export_raw_tables` writes each raw table of the DuckDB warehouse to
`<data root>/spark/raw/<table>/` (one file, replaced atomically), and dbt's on-run-start hook (macro
register_raw_tables) makes each a view `raw.<table>` over its folder. What Spark builds (its Hive metastore and
table files) stays under `<data root>/spark`. Java 17 and the `spark` extra come from `make spark`.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from ev_assets.lib import tables, warehouse
from ev_assets.lib.settings import Settings

def raw_parquet_dir(settings: Settings) -> Path:
    """Where the raw tables are exported for Spark: one folder per table."""
    return settings.data_dir / "spark" / "raw"


def export_raw_tables(settings: Settings, names: list[str] | None = None) -> dict[str, int]:
    """Each raw table of the DuckDB warehouse as `<raw_parquet_dir>/<table>/part-0.parquet`, rows per table.

    A table's folder is swapped in whole (written beside it, then renamed), so a reader sees the old or the new
    export, never half of one. Empty tables are written too: Spark finds their columns and types in the file.
    """
    root = raw_parquet_dir(settings)
    root.mkdir(parents=True, exist_ok=True)
    counts = {}
    with warehouse.connect(settings.warehouse_path, read_only=True) as con:
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

