"""The DuckDB warehouse: the raw tables as views over the lake, and loading tables idempotently.

The raw tables live in the lake (`ev_assets.lib.lake`, Parquet under EV_LAKE_URL); the warehouse file holds them as
views in schema `raw` (dbt's sources), made by every writing connection. DuckDB allows one writer per file: every
asset that writes the file runs in the Dagster pool `duckdb`. Readers elsewhere open the file read-only.
Ingestion writes only the lake, so it needs no writer slot.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import duckdb
import pandas as pd
from tabulate import tabulate

from ev_assets.lib import lake as lakes
from ev_assets.lib import tables

log = logging.getLogger(__name__)


@contextmanager
def connect(path: Path, read_only: bool = False, memory_limit: str | None = None,
            lake: lakes.Lake | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse with UTC as session time zone (day boundaries are UTC everywhere).

    A writing connection with a `lake` (re)makes the raw views over it. Without one, the raw tables are made
    inside the file (the layout before the lake, kept for the ingestion benchmark's comparison and tests).
    """
    if read_only and not Path(path).exists():
        raise FileNotFoundError(f"no warehouse at {path}: materialize the ingestion assets first")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    try:
        _prepare(con, memory_limit, lake)
        if not read_only:
            # Every raw table exists from the first write on, so dbt finds all its sources even before
            # every source was ingested.
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {tables.SCHEMA}")
            if lake is not None:
                create_raw_views(con, lake)
            else:
                ensure_tables(con, list(tables.TABLES))
        yield con
    finally:
        con.close()


@contextmanager
def lake_connection(lake: lakes.Lake, memory_limit: str | None = None,
                    partition: tuple[str, str] | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB with the raw tables of `lake` as views (only one (source, day) partition of each when
    `partition` is given): for ingestion's metadata, which must not wait for the warehouse file's single writer."""
    con = duckdb.connect()
    try:
        _prepare(con, memory_limit, lake)
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {tables.SCHEMA}")
        create_raw_views(con, lake, partition)
        yield con
    finally:
        con.close()


def _prepare(con: duckdb.DuckDBPyConnection, memory_limit: str | None, lake: lakes.Lake | None) -> None:
    con.execute("SET TimeZone = 'UTC'")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    if lake is not None and not lake.local:
        con.register_filesystem(lake.fs)  # DuckDB reads s3:// through the lake's fsspec filesystem


def create_raw_views(con: duckdb.DuckDBPyConnection, lake: lakes.Lake, partition: tuple[str, str] | None = None) -> None:
    """`raw.<table>` as a view over the lake's Parquet files of that table (each table's schema partition made
    first, so the view has its columns before any data came). A raw table left in the file from before the lake
    is dropped: it is rebuilt from the raw store (`make rebuild-raw`, or by ingesting again)."""
    old = {row[0] for row in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND table_type = 'BASE TABLE'",
        [tables.SCHEMA],
    ).fetchall()}
    for name in tables.TABLES:
        lake.ensure(name)
        if partition is not None and not lake.fs.exists(lake.partition_path(name, *partition)):
            continue  # DuckDB binds a view when it is made: no view over files that are not there
        if name in old:
            moved = _move_to_lake(con, lake, name)
            log.warning("raw.%s was a table in the warehouse file: its %d rows moved to the lake %s", name, moved, lake.url)
            con.execute(f"DROP TABLE {tables.SCHEMA}.{name}")
        glob = lake.glob_url(name, partition).replace("'", "''")
        files = (f"read_parquet('{glob}', hive_partitioning = true, union_by_name = true, "
                 "hive_types = {'source': VARCHAR, 'day': VARCHAR})")
        select = (f"SELECT {', '.join(tables.columns(name))} FROM ({tables.collapse_versions_sql(name, files)})"
                  if name in tables.VERSIONED else f"SELECT {', '.join(tables.columns(name))} FROM {files}")
        con.execute(f"CREATE OR REPLACE VIEW {tables.SCHEMA}.{name} AS {select}")


# The lake partition of a row of a raw table kept in the warehouse file before the lake: (source, day) as SQL.
_DAY = "strftime({}, '%Y-%m-%d')"
_CHARGECLOUD = {name: ("'chargecloud'", _DAY.format("poll_slot"))
                for name in ("status_chargingpoints", "status_connectors", "chargecloud_poll_log")}
_CHARGECLOUD.update({name: ("'chargecloud'", _DAY.format("first_seen_at")) for name in tables.VERSIONED})
_LEGACY_PARTITION = {
    **_CHARGECLOUD,
    "quarantine": ("source", "CASE WHEN source = 'chargecloud' AND partition_key <> 'unplaced' "
                             "THEN left(partition_key, 10) WHEN source = 'chargecloud' THEN partition_key ELSE 'all' END"),
    "ocm_stations": ("'openchargemap'", "'all'"),
    "ocm_connections": ("'openchargemap'", "'all'"),
    "osm_pois": ("'osm'", "'all'"),
    "poi_station_map": ("'geo'", "'all'"),
}


def _move_to_lake(con: duckdb.DuckDBPyConnection, lake: lakes.Lake, name: str) -> int:
    """The rows of a raw table of the warehouse file (the layout before the lake) written to the lake partitions
    ingestion would write them to, so ingesting a day again replaces them."""
    source, day = _LEGACY_PARTITION.get(name, (f"'{name}'", "'all'"))  # the session sources, telemetry
    rows = con.execute(f"SELECT *, {source} AS _source, {day} AS _day FROM {tables.SCHEMA}.{name}").df()
    for (part_source, part_day), group in rows.groupby(["_source", "_day"], dropna=False):
        # a table older than its schema lacks the columns added since: they are empty in its rows
        lake.write(name, group.reindex(columns=tables.columns(name)), str(part_source), str(part_day))
    return len(rows)


def ensure_tables(con: duckdb.DuckDBPyConnection, names: Sequence[str]) -> None:
    """Create the raw tables that are missing, and add to an existing one the columns a newer version of its
    schema has (appended at the end, empty in the rows already there): an older data root keeps working."""
    present: dict[str, set[str]] = {}
    for table, column in con.execute("SELECT table_name, column_name FROM information_schema.columns "
                                     "WHERE table_schema = ?", [tables.SCHEMA]).fetchall():
        present.setdefault(table, set()).add(column)
    for name in names:
        if name not in present:
            con.execute(tables.ddl(name))
            continue
        for column, typ in tables.TABLES[name]:
            if column not in present[name]:
                con.execute(f"ALTER TABLE {tables.SCHEMA}.{name} ADD COLUMN {column} {typ}")


def _insert(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame) -> int:
    if frame.empty:
        return 0
    cols = tables.columns(name)
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ValueError(f"frame for {name} lacks columns {missing}")
    con.register("_frame", frame[cols])
    try:
        con.execute(f"INSERT INTO {tables.SCHEMA}.{name} ({', '.join(cols)}) SELECT {', '.join(cols)} FROM _frame")
    finally:
        con.unregister("_frame")
    return len(frame)


def replace_rows(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame, where: str, params: Sequence = ()) -> int:
    """Delete the rows matching `where` (the partition being reloaded) and insert `frame`, in one transaction.

    Re-running a partition therefore never duplicates rows.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DELETE FROM {tables.SCHEMA}.{name} WHERE {where}", list(params))
        inserted = _insert(con, name, frame)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return inserted


def upsert_versions(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame, key: Sequence[str]) -> int:
    """Merge master-data versions: one row per (key..., attr_hash), widening first/last seen.

    `frame` may hold the same version many times (once per poll); it is collapsed first. Returns the number
    of versions that were new.
    """
    if frame.empty:
        return 0
    cols = tables.columns(name)
    ident = [*key, "attr_hash"]
    target = f"{tables.SCHEMA}.{name}"
    con.register("_frame", frame[cols])
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _versions AS {tables.collapse_versions_sql(name, '_frame')}")
        on = " AND ".join(f"t.{c} = v.{c}" for c in ident)
        con.execute("BEGIN TRANSACTION")
        con.execute(
            f"""UPDATE {target} AS t SET
                  first_seen_at = least(t.first_seen_at, v.first_seen_at),
                  last_seen_at = greatest(t.last_seen_at, v.last_seen_at)
                FROM _versions AS v WHERE {on}"""
        )
        new = con.execute(
            f"SELECT count(*) FROM _versions v WHERE NOT EXISTS (SELECT 1 FROM {target} t WHERE {on})"
        ).fetchone()[0]
        con.execute(
            f"""INSERT INTO {target} SELECT {', '.join('v.' + c for c in cols)} FROM _versions v
                WHERE NOT EXISTS (SELECT 1 FROM {target} t WHERE {on})"""
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("_frame")
    return int(new)


def count(con: duckdb.DuckDBPyConnection, name: str, where: str = "TRUE", params: Sequence = ()) -> int:
    return count_rows(con, f"{tables.SCHEMA}.{name}", where, params)


def count_rows(con: duckdb.DuckDBPyConnection, relation: str, where: str = "TRUE", params: Sequence = ()) -> int:
    return int(con.execute(f"SELECT count(*) FROM {relation} WHERE {where}", list(params)).fetchone()[0])


def preview(con: duckdb.DuckDBPyConnection, name: str, where: str = "TRUE", params: Sequence = (), limit: int = 5) -> str:
    """The first rows of a raw table as Markdown, for asset metadata."""
    return preview_rows(con, f"{tables.SCHEMA}.{name}", where, params, limit)


def preview_rows(con: duckdb.DuckDBPyConnection, relation: str, where: str = "TRUE", params: Sequence = (), limit: int = 5) -> str:
    """The first rows of any table or view as a Markdown table, for asset metadata."""
    cursor = con.execute(f"SELECT * FROM {relation} WHERE {where} LIMIT {int(limit)}", list(params))
    # ids such as DE*REK*E10006*001 must not turn into emphasis, nor a | into a new column; Python values, not
    # pandas, so a DATE reads 2022-01-10
    rows = [[markdown_text(value) for value in row] for row in cursor.fetchall()]
    if not rows:
        return "_no rows_"
    return tabulate(rows, headers=[column[0] for column in cursor.description], tablefmt="pipe", disable_numparse=True)


_MARKDOWN_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]<>|#~"})


def markdown_text(value) -> str:
    """`value` as Markdown table cell text that reads exactly as the value."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    return str(value).replace("\n", " ").translate(_MARKDOWN_SPECIAL)
