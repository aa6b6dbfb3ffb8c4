"""The raw tables as a lake: Hive-partitioned Parquet under one URL (`EV_LAKE_URL`, default `<data root>/lake`).

Layout: `<lake>/<table>/source=<source>/day=<YYYY-MM-DD>/part-0.parquet`, one file per partition, with the
columns of `ev_assets.lib.tables` (a column named like a partition key, quarantine's `source`, lives in the path
only, so Spark and DuckDB read the same table). Tables reloaded whole from every pull (Open Charge Map, OSM, the
session sources, telemetry) are one partition per source, `day=all`.

- Atomic: a local partition is written to a hidden temporary file beside it and renamed over it; on an object store
  (s3://) one PUT replaces the object whole. A reader sees the old partition or the new one, never half of one.
- Idempotent: a partition is always that one file, so writing it again replaces it and never duplicates rows.
- Independent: partitions of different days are different files, so they can be written at the same time
  (no shared file is locked, unlike the DuckDB file with its single writer).

Every table also holds an empty, typed schema partition (`source=_schema`), so a reader's glob always matches and
the column types never depend on which partitions exist yet. Reading and writing go through fsspec (`file://` by
default, `s3://` through s3fs); DuckDB reads the lake as views (`ev_assets.lib.warehouse.create_raw_views`).
"""

from __future__ import annotations

import io
import os
import uuid
import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ev_assets.lib import tables

PART = "part-0.parquet"
SCHEMA_SOURCE = "_schema"  # the empty, typed partition every table holds
WHOLE = "all"  # the day of a table reloaded whole
PARTITION_KEYS = ("source", "day")

_ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
    "TIMESTAMP": pa.timestamp("us"),
    "DOUBLE": pa.float64(),
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "BOOLEAN": pa.bool_(),
}


def from_settings(settings) -> "Lake":
    """The lake a `Settings` names (EV_LAKE_URL, EV_S3_ENDPOINT_URL)."""
    url = settings.lake_location
    return Lake(url, **storage_options(url, settings.s3_endpoint_url))


def arrow_schema(name: str) -> pa.Schema:
    """The Parquet schema of table `name`: its columns but the partition keys, typed as DuckDB types them."""
    return pa.schema([(col, _ARROW_TYPES[typ]) for col, typ in tables.TABLES[name] if col not in PARTITION_KEYS])


def storage_options(url: str, s3_endpoint: str | None = None) -> dict:
    """fsspec options for `url`: an s3:// lake on another endpoint than AWS (moto in the tests, any S3-compatible
    store) names it in EV_S3_ENDPOINT_URL; credentials come from the usual AWS_* variables or files."""
    if url.startswith(("s3://", "s3a://")) and s3_endpoint:
        return {"client_kwargs": {"endpoint_url": s3_endpoint}}
    return {}


class Lake:
    """The lake at `url` (a local path, file://, s3://, or any fsspec URL)."""

    def __init__(self, url: str, **options):
        self.url = str(url).rstrip("/")
        self.options = options
        self.fs, self.root = fsspec.core.url_to_fs(self.url, **options)
        self.root = self.root.rstrip("/")
        self.local = "file" in protocols(self.fs)

    def __repr__(self) -> str:
        return f"Lake({self.url!r})"

    # --- paths ----------------------------------------------------------------------------------------------------
    def table_path(self, name: str) -> str:
        if name not in tables.TABLES:
            raise KeyError(f"{name!r} is not a raw table; expected one of {', '.join(tables.TABLES)}")
        return f"{self.root}/{name}"

    def partition_path(self, name: str, source: str, day: str) -> str:
        return f"{self.table_path(name)}/source={_key(source)}/day={_key(day)}/{PART}"

    def glob_url(self, name: str, partition: tuple[str, str] | None = None) -> str:
        """The URL of every Parquet file of table `name` (or of one (source, day) partition), as DuckDB reads it
        (its protocol kept)."""
        source, day = (f"source={_key(partition[0])}", f"day={_key(partition[1])}") if partition else ("*", "*")
        path = f"{self.table_path(name)}/{source}/{day}/*.parquet"
        protocol = protocols(self.fs)[0]
        return path if self.local else f"{protocol}://{path}"

    # --- writing ----------------------------------------------------------------------------------------------
    def write(self, name: str, rows: pd.DataFrame | pa.Table, source: str, day: str) -> int:
        """Replace partition (`source`, `day`) of table `name` with `rows` (the table's columns), atomically.
        Returns the rows written."""
        data = to_arrow(name, rows)
        self._put(self.partition_path(name, source, day), data)
        return data.num_rows

    def ensure(self, name: str) -> None:
        """The table's empty schema partition, written once."""
        path = self.partition_path(name, SCHEMA_SOURCE, SCHEMA_SOURCE)
        if not self.fs.exists(path):
            self._put(path, to_arrow(name, arrow_schema(name).empty_table()))

    def _put(self, path: str, data: pa.Table) -> None:
        if not self.local:  # one PUT: the object is replaced whole or not at all
            buffer = io.BytesIO()
            pq.write_table(data, buffer)
            self.fs.pipe_file(path, buffer.getvalue())
            return
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        tmp = f"{folder}/.{uuid.uuid4().hex}.tmp"  # hidden, and not *.parquet: no reader's glob sees it
        try:
            pq.write_table(data, tmp)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    # --- reading ----------------------------------------------------------------------------------------------
    def days(self, name: str, source: str) -> list[str]:
        return sorted(d for s, d in self.partitions(name) if s == _key(source))

    def partitions(self, name: str) -> list[tuple[str, str]]:
        """(source, day) of every partition of table `name` that holds a file."""
        found = []
        for path in self.fs.glob(f"{self.table_path(name)}/source=*/day=*/{PART}"):
            source_part, day_part = path.split("/")[-3:-1]
            found.append((source_part.split("=", 1)[1], day_part.split("=", 1)[1]))
        return sorted(set(found))

    def read(self, name: str, source: str, day: str) -> pa.Table:
        """One partition as Arrow, with every column of the table (partition keys filled in from the path)."""
        with self.fs.open(self.partition_path(name, source, day), "rb") as fh:
            data = pq.read_table(fh)
        for key, value in (("source", source), ("day", day)):
            if key in tables.columns(name):
                data = data.append_column(key, pa.array([value] * data.num_rows, pa.string()))
        return data.select(tables.columns(name))


def to_arrow(name: str, rows: pd.DataFrame | pa.Table) -> pa.Table:
    """`rows` as an Arrow table of exactly the lake schema of `name` (partition-key columns left out). Rows without
    a column of the table are refused: a parser's missing column never becomes a column of NULLs unnoticed."""
    schema = arrow_schema(name)
    have = rows.column_names if isinstance(rows, pa.Table) else list(rows.columns)
    missing = [c for c in schema.names if c not in have]
    if missing:
        raise ValueError(f"rows for {name} lack columns {missing}")
    if isinstance(rows, pa.Table):
        return rows.select(schema.names).cast(schema, safe=False)
    return pa.Table.from_pandas(rows[schema.names], schema=schema, preserve_index=False, safe=False)


def _key(value: str) -> str:
    value = str(value)
    if not value or "/" in value or "=" in value:
        raise ValueError(f"{value!r} cannot name a lake partition")
    return value


def protocols(fs) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)
