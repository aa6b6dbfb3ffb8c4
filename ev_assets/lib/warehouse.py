"""Loading flattened tables into the DuckDB warehouse, idempotently.

DuckDB allows one writer per file: every asset that writes through here runs in the Dagster pool `duckdb`.
Readers elsewhere open the file read-only.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import duckdb
import pandas as pd
from tabulate import tabulate

from ev_assets.lib import tables


@contextmanager
def connect(path: Path, read_only: bool = False, memory_limit: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse with UTC as session time zone (day boundaries are UTC everywhere)."""
    if read_only and not Path(path).exists():
        raise FileNotFoundError(f"no warehouse at {path}: materialize the ingestion assets first")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    try:
        con.execute("SET TimeZone = 'UTC'")
        if memory_limit:
            con.execute(f"SET memory_limit = '{memory_limit}'")
        if not read_only:
            # Every raw table exists from the first write on, so dbt finds all its sources even before
            # every source was ingested.
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {tables.SCHEMA}")
            ensure_tables(con, list(tables.TABLES))
        yield con
    finally:
        con.close()


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
    attrs = [c for c in cols if c not in ("first_seen_at", "last_seen_at")]
    target = f"{tables.SCHEMA}.{name}"
    con.register("_frame", frame[cols])
    try:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _versions AS
                SELECT {', '.join(f'any_value({c}) AS {c}' if c not in ident else c for c in attrs)},
                       min(first_seen_at) AS first_seen_at, max(last_seen_at) AS last_seen_at
                FROM _frame GROUP BY {', '.join(ident)}"""
        )
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
