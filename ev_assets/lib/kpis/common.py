"""What every KPI shares: its errors, the range check, and the query helpers (a KPI whose relation the snapshot lacks
raises `KpiUnavailable`)."""

from __future__ import annotations

from datetime import date
from typing import Any

import duckdb

Row = dict[str, Any]


class UnknownEntity(LookupError):
    """The station, city, operator, user or garage is not in the marts at all."""


class KpiUnavailable(RuntimeError):
    """The snapshot lacks a relation the KPI reads (published by an older warehouse, or the source was empty)."""


class InvalidRequest(ValueError):
    """The request cannot be answered as asked (inverted range, both a user and a garage, ...)."""


class ScopeRequired(InvalidRequest):
    """The KPI exists per user or garage only."""


def check_range(start: date | None, end: date | None) -> None:
    """Raise InvalidRequest for an inverted range."""
    if start is not None and end is not None and start > end:
        raise InvalidRequest(f"start_date {start.isoformat()} is after end_date {end.isoformat()}")


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> list[Row]:
    try:
        cursor = con.execute(sql, params)
    except duckdb.CatalogException as error:
        raise KpiUnavailable(
            f"the marts snapshot lacks what this KPI reads ({str(error).splitlines()[0]}): publish a new one by "
            "running the warehouse job"
        ) from None
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, values)) for values in cursor.fetchall()]


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> Row:
    return _rows(con, sql, params)[0]


def _in_range(column: str) -> str:
    return (
        f"(CAST($start AS DATE) IS NULL OR {column} >= CAST($start AS DATE)) "
        f"AND (CAST($end AS DATE) IS NULL OR {column} <= CAST($end AS DATE))"
    )


def _exists(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> bool:
    return bool(_one(con, f"SELECT EXISTS ({sql}) AS found", params)["found"])
