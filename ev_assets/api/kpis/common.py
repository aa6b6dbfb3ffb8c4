"""What every KPI route shares: the error bodies and responses, the `start_date` / `end_date` parameters, the OpenAPI
tags, the read-only marts connection of a request with its data time (`X-Data-As-Of`), and the mapping of the KPI
errors to status codes."""

from __future__ import annotations

import re
from datetime import date
from typing import Iterator

import duckdb
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from ev_assets.api.deps import get_snapshot
from ev_assets.api.responses import DATA_AS_OF_HEADER, error_response
from ev_assets.lib import predlog, snapshot
from ev_assets.lib.kpis.common import InvalidRequest, KpiUnavailable, UnknownEntity, check_range

router = APIRouter(prefix="/kpi")  # the routes of `energy` and `network`, in that order

ENERGY = "KPIs: session energy (Norwegian reports)"
ENERGY_DAY_RULE = (
    "Days are the site's own local days (Europe/Oslo for the Norwegian reports; the marts' `time_zone`): a "
    "session's energy counts on the local day it is plugged in (00:09 in Oslo counts on that day, not on the UTC "
    "day before), and hourly figures (peak hour, active hours) count each hour in the local day and clock hour it "
    "falls in. The facts stay in UTC: times in the answers are UTC instants.")
UTILIZATION = "KPIs: utilization"
RELIABILITY = "KPIs: reliability"


# --- errors and common parameters ----------------------------------------------------------------------------
E400_RANGE = error_response(
    "start_date or end_date is not an ISO date (YYYY-MM-DD), or start_date is after end_date."
)
E503 = error_response(
    "No marts snapshot has been published yet (run `make demo` or the warehouse job), or the snapshot lacks a "
    "table this KPI reads (publish a new one)."
)


def _responses(*, not_found: str | None = None, bad: str | None = None) -> dict:
    responses = {400: error_response(bad) if bad else E400_RANGE, 503: E503}
    if not_found:
        responses[404] = error_response(not_found)
    return responses


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATE_DOC = {"format": "date", "examples": ["2022-01-10"]}


def _parse_date(name: str, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        if not _ISO_DATE.fullmatch(text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise HTTPException(400, f"{name} {text!r} is not an ISO date (YYYY-MM-DD)") from None


def _date_range(day: str):
    """The `start_date` / `end_date` parameters of a route whose days are `day` (documented as such)."""
    def date_range(
        start_date: str | None = Query(
            None, description=f"First {day} (YYYY-MM-DD), inclusive; open when absent.", json_schema_extra=_DATE_DOC
        ),
        end_date: str | None = Query(
            None, description=f"Last {day} (YYYY-MM-DD), inclusive; open when absent.", json_schema_extra=_DATE_DOC
        ),
    ) -> tuple[date | None, date | None]:
        start, end = _parse_date("start_date", start_date), _parse_date("end_date", end_date)
        try:
            check_range(start, end)
        except InvalidRequest as error:
            raise HTTPException(400, str(error)) from None
        return start, end
    return date_range


date_range = _date_range("UTC day")  # utilization and reliability
energy_date_range = _date_range("local day of the site (Europe/Oslo for the Norwegian reports; see the day rule of "
                                "the session energy routes)")
OPENAPI_TAGS = [
    {"name": ENERGY, "description": f"Session energy of the Norwegian residential reports. {ENERGY_DAY_RULE}"},
    {"name": UTILIZATION, "description": "Charging-point time shares from the chargecloud polls, per UTC day."},
    {"name": RELIABILITY, "description": "Availability and failures from the chargecloud polls, per UTC day."},
]


DATA_AS_OF_RULE = (
    "Freshness: every answer carries the X-Data-As-Of header (and an object answer a `data_as_of` field): the "
    "marts snapshot's newest data time for what the route reads, i.e. the newest status poll "
    "(marts.fct_charging_point_status; else the start of the newest day of marts.mart_utilization_station_daily) for "
    "utilization and reliability, the start (UTC) of the newest local day with session "
    "energy (marts.mart_energy_daily) for the energy routes; `unknown` when the snapshot has none.")
ENERGY_PREFIXES = ("/kpi/users", "/kpi/garages", "/kpi/energy", "/kpi/active-hours")
_AS_OF_SQL = {  # the first that gives a time
    "status": ("SELECT max(polled_at) FROM marts.fct_charging_point_status",
               "SELECT max(CAST(day AS TIMESTAMP)) FROM marts.mart_utilization_station_daily"),
    # the start of the newest local day (a snapshot from before `time_zone`: of the newest day read as UTC)
    "energy": ("SELECT max(timezone(time_zone, CAST(day AS TIMESTAMP))) FROM marts.mart_energy_daily",
               "SELECT max(CAST(day AS TIMESTAMP)) FROM marts.mart_energy_daily"),
}
_AS_OF: dict[tuple[str | None, str], str | None] = {}


def snapshot_as_of(con, name: str | None, kind: str) -> str | None:
    """The newest data time of the snapshot for `kind` (status or energy), ISO UTC; computed once per snapshot."""
    key = (name, kind)
    if key not in _AS_OF or name is None:
        value = None
        for sql in _AS_OF_SQL[kind]:
            try:
                value = con.execute(sql).fetchone()[0]
            except duckdb.Error:  # the snapshot lacks the table
                continue
            if value is not None:
                break
        if len(_AS_OF) > 64:
            _AS_OF.clear()
        _AS_OF[key] = None if value is None else predlog.iso_utc(value)
    return _AS_OF[key]


def marts(request: Request, response: Response,
          reader: snapshot.Reader = Depends(get_snapshot)) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only cursor on the current marts snapshot for one request; sets the X-Data-As-Of header."""
    try:
        con = reader.connect()
    except snapshot.NoSnapshot as error:
        raise HTTPException(503, str(error)) from None
    try:
        kind = "energy" if request.url.path.startswith(ENERGY_PREFIXES) else "status"
        as_of = snapshot_as_of(con, reader.name, kind)
        request.state.data_as_of = as_of
        response.headers[DATA_AS_OF_HEADER] = as_of or "unknown"
        yield con
    finally:
        con.close()


def data_as_of(request: Request, con=Depends(marts)) -> str | None:
    """The `data_as_of` of an object answer (after `marts` has set it)."""
    return getattr(request.state, "data_as_of", None)


def _stamped(result, as_of: str | None) -> dict:
    return {**result, "data_as_of": as_of}


def _answer(function, *args, **kwargs):
    """Call a KPI function, turning its errors into status codes."""
    try:
        return function(*args, **kwargs)
    except UnknownEntity as error:
        raise HTTPException(404, str(error)) from None
    except InvalidRequest as error:
        raise HTTPException(400, str(error)) from None
    except KpiUnavailable as error:
        raise HTTPException(503, str(error)) from None
