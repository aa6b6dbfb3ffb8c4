"""KPI endpoints over the read-only marts snapshot (`GET /kpi/...`).

The service never opens `warehouse.duckdb` (a warehouse run holds it); it reads the snapshot the warehouse job
publishes (`ev_assets.lib.snapshot`). The SQL lives in `ev_assets.lib.kpis`; this router parses the request,
maps errors to status codes and documents the answers:

- `start_date` / `end_date`: optional ISO dates (`YYYY-MM-DD`, both inclusive). An unparsable date or a start
  after the end is a 400 (not FastAPI's 422: the parameters are read as text and checked here).
- The day rule (`ENERGY_DAY_RULE`): the session-energy routes count the site's own local days (Europe/Oslo for the
  Norwegian reports); utilization and reliability count UTC days. Times in the answers are UTC instants.
- 404 for a user, garage, station, city or operator that is nowhere in the marts; a known one with no data in
  the range gets an empty list (or, for a single figure, `n_days` 0 and nulls).
- Operators are counted once: an operator is its `operator_key` (every spelling of its name in the feed), asked
  for by the key or any spelling, and shown under one display name.
- 503 while there is no snapshot yet (run `make demo` or the warehouse job), or when it lacks a table a KPI reads.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Iterator

import duckdb
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, Field

from ev_assets.api.deps import get_snapshot
from ev_assets.lib import predlog, snapshot
from ev_assets.lib.kpis.common import InvalidRequest, KpiUnavailable, UnknownEntity, check_range
from ev_assets.lib.kpis.energy import (
    SessionScope,
    active_hours_average,
    active_hours_daily,
    energy_daily,
    energy_daily_average,
    energy_last_7_days,
    energy_peak_day,
    energy_peak_hour,
    energy_total,
    garages,
    hourly_loads,
    session_scope,
    users,
)
from ev_assets.lib.kpis.network import reliability_daily, reliability_list, utilization_daily, utilization_list
from ev_assets.lib.vocabulary import OCCUPIED, OUT_OF_ORDER, spoken

router = APIRouter(prefix="/kpi")

ENERGY = "KPIs: session energy (Norwegian reports)"
ENERGY_DAY_RULE = (
    "Days are the site's own local days (Europe/Oslo for the Norwegian reports; the marts' `time_zone`): a "
    "session's energy counts on the local day it is plugged in (00:09 in Oslo counts on that day, not on the UTC "
    "day before), and hourly figures (peak hour, active hours) count each hour in the local day and clock hour it "
    "falls in. The facts stay in UTC: times in the answers are UTC instants.")
UTILIZATION = "KPIs: utilization"
RELIABILITY = "KPIs: reliability"


# --- errors and common parameters ----------------------------------------------------------------------------
class ErrorBody(BaseModel):
    detail: str = Field(description="What went wrong, and what to do about it.")


def _error(description: str) -> dict:
    return {"model": ErrorBody, "description": description}


E400_RANGE = _error(
    "start_date or end_date is not an ISO date (YYYY-MM-DD), or start_date is after end_date."
)
E503 = _error(
    "No marts snapshot has been published yet (run `make demo` or the warehouse job), or the snapshot lacks a "
    "table this KPI reads (publish a new one)."
)


def _responses(*, not_found: str | None = None, bad: str | None = None) -> dict:
    responses = {400: _error(bad) if bad else E400_RANGE, 503: E503}
    if not_found:
        responses[404] = _error(not_found)
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


DATA_AS_OF_HEADER = "X-Data-As-Of"
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


USER_ID = Query(None, description="Only this user (User_ID of the reports); all users when absent.")
GARAGE_ID = Query(None, description="Only this garage (Garage_ID of the reports); all users when absent.")


def _scope(con, user_id: str | None, garage_id: str | None) -> SessionScope:
    return _answer(session_scope, con, user_id=user_id, garage_id=garage_id)


# --- response models: session energy ---------------------------------------------------------------------------
class AsOf(BaseModel):
    data_as_of: str | None = Field(description="The snapshot's newest data time for this KPI (ISO-8601 UTC, "
                                   "milliseconds; the same text as the X-Data-As-Of header); null when it has none.")


class Scope(AsOf):
    user_id: str | None = Field(description="The user asked for; null when not filtered by user.")
    garage_id: str | None = Field(description="The garage asked for; null when not filtered by garage.")


class DaySpan(BaseModel):
    from_day: date | None = Field(description="First calendar day counted (null without data in the range).")
    to_day: date | None = Field(description="Last calendar day counted (null without data in the range).")
    n_days: int = Field(description="Calendar days counted, idle days included.")


class EntityEnergy(BaseModel):
    first_day: date = Field(description="First (local) day of its data within the range.")
    last_day: date = Field(description="Last (local) day of its data within the range.")
    n_days: int = Field(description="Calendar days from first_day to last_day.")
    sessions: int = Field(description="Sessions starting in those days.")
    energy_kwh: float = Field(description="Energy of those sessions (kWh).")


class UserKey(BaseModel):
    user_id: str = Field(description="User (User_ID of the Norwegian reports).")


class GarageKey(BaseModel):
    garage_id: str = Field(description="Garage (Garage_ID of the Norwegian reports).")


class UserEnergy(EntityEnergy, UserKey):
    pass


class GarageEnergy(EntityEnergy, GarageKey):
    pass


class HourlyLoad(BaseModel):
    hour_start: datetime = Field(description="Start of the hour, UTC.")
    hour_start_local: datetime = Field(
        description="Start of the hour in Europe/Oslo local time, as the dataset gives it, with its UTC offset."
    )
    session_ids: list[str] = Field(description="Sessions of the user active in the hour.")
    synthetic_3_6kw_kwh: float | None = Field(description="Synthetic load charging at 3.6 kW (kWh).")
    synthetic_7_2kw_kwh: float | None = Field(description="Synthetic load charging at 7.2 kW (kWh).")
    flex_3_6kw_kwh: float | None = Field(description="Flexible energy at 3.6 kW (kWh).")
    flex_7_2kw_kwh: float | None = Field(description="Flexible energy at 7.2 kW (kWh).")


class DailyEnergy(BaseModel):
    day: date = Field(description="Local day of the site.")
    sessions: int = Field(description="Sessions starting in the day.")
    energy_kwh: float = Field(description="Daily total: the whole energy of the sessions plugged in on the (local) day (kWh).")
    energy_kwh_cumulative: float = Field(description="Energy since the first day of the data up to this day (kWh).")
    energy_kwh_rolling_7d_avg: float = Field(
        description="Mean daily total of this day and the 6 days before (fewer at the start of the data)."
    )


class EnergyTotal(DaySpan, Scope):
    sessions: int = Field(description="Sessions starting in the days counted.")
    energy_kwh: float = Field(description="Total energy of those sessions (kWh).")


class EnergyAverage(EnergyTotal):
    average_kwh: float | None = Field(description="energy_kwh / n_days (kWh per day); null without days.")


class Last7Days(EnergyAverage):
    """The 7 calendar days ending at to_day: the latest day with data, on or before end_date when given."""


class PeakDay(Scope):
    day: date | None = Field(description="Day with the highest daily total (earliest on a tie).")
    energy_kwh: float | None = Field(description="Its daily total (kWh).")
    sessions: int | None = Field(description="Sessions starting that day.")


class PeakHour(Scope):
    hour_start: datetime | None = Field(
        description="Start (UTC) of the hour with the most energy (earliest on a tie); the range selects it by its "
                    "local day.")
    energy_kwh: float | None = Field(description="Energy spread into that hour (kWh).")


class DailyActiveHours(BaseModel):
    day: date = Field(description="Local day of the site.")
    active_charging_hours: int = Field(
        description="Local clock hours of the day in which energy was drawn, 0-24 (0-25 on the day clocks go back).")


class ActiveHoursAverage(DaySpan, Scope):
    average_active_hours: float | None = Field(
        description="Mean active charging hours per calendar day (idle days count as 0); null without days."
    )


# --- session energy endpoints ----------------------------------------------------------------------------------
@router.get("/users", tags=[ENERGY], response_model=list[UserEnergy], responses=_responses())
def get_users(rng=Depends(energy_date_range), con=Depends(marts)):
    """Users of the Norwegian residential reports with data in the range, with their sessions and energy there."""
    return _answer(users, con, *rng)


@router.get("/garages", tags=[ENERGY], response_model=list[GarageEnergy], responses=_responses())
def get_garages(rng=Depends(energy_date_range), con=Depends(marts)):
    """Garages of the Norwegian residential reports with data in the range, with their sessions and energy there."""
    return _answer(garages, con, *rng)


@router.get(
    "/users/{user_id}/hourly-loads", tags=[ENERGY], response_model=list[HourlyLoad],
    responses=_responses(not_found="Unknown user."),
)
def get_hourly_loads(
    user_id: str = Path(min_length=1, description="User (User_ID)."), rng=Depends(energy_date_range), con=Depends(marts)
):
    """Hourly loads of one user from the dataset's hourly file: one row per hour with a session of the user
    (synthetic load at 3.6 / 7.2 kW and the flexible part); the range selects by the local (Oslo) day of the hour."""
    return _answer(hourly_loads, con, user_id, *rng)


def _scope_responses() -> dict:
    return _responses(
        not_found="Unknown user or garage.",
        bad="Unparsable or inverted date range, or both user_id and garage_id given.",
    )


@router.get("/energy/daily", tags=[ENERGY], response_model=list[DailyEnergy], responses=_scope_responses())
def get_energy_daily(user_id: str | None = USER_ID, garage_id: str | None = GARAGE_ID,
                     rng=Depends(energy_date_range), con=Depends(marts)):
    """Daily energy of a user, a garage or all users, one row per calendar day. Daily totals count a session's
    whole energy in the local day it starts; every calendar day between the first and last day of the data is a row
    (idle days 0)."""
    return _answer(energy_daily, con, _scope(con, user_id, garage_id), *rng)


@router.get("/energy/total", tags=[ENERGY], response_model=EnergyTotal, responses=_scope_responses())
def get_energy_total(user_id: str | None = USER_ID, garage_id: str | None = GARAGE_ID,
                     rng=Depends(energy_date_range), con=Depends(marts),
                     as_of=Depends(data_as_of)):
    """Total energy and sessions of a user, a garage or all users in the range."""
    return _stamped(_answer(energy_total, con, _scope(con, user_id, garage_id), *rng), as_of)


@router.get("/energy/daily-average", tags=[ENERGY], response_model=EnergyAverage, responses=_scope_responses())
def get_energy_daily_average(user_id: str | None = USER_ID, garage_id: str | None = GARAGE_ID,
                             rng=Depends(energy_date_range), con=Depends(marts),
                             as_of=Depends(data_as_of)):
    """Mean daily energy over the calendar days of the range (idle days count)."""
    return _stamped(_answer(energy_daily_average, con, _scope(con, user_id, garage_id), *rng), as_of)


@router.get("/energy/last-7-days", tags=[ENERGY], response_model=Last7Days, responses=_scope_responses())
def get_energy_last_7_days(user_id: str | None = USER_ID, garage_id: str | None = GARAGE_ID,
                           rng=Depends(energy_date_range), con=Depends(marts),
                           as_of=Depends(data_as_of)):
    """Mean daily energy of the last 7 days: the 7 calendar days ending at the latest day with data (on or before
    end_date when given), clipped to start_date and to the first day of the data; from_day / to_day say which."""
    return _stamped(_answer(energy_last_7_days, con, _scope(con, user_id, garage_id), *rng), as_of)


@router.get("/energy/peak-day", tags=[ENERGY], response_model=PeakDay, responses=_scope_responses())
def get_energy_peak_day(user_id: str | None = USER_ID, garage_id: str | None = GARAGE_ID,
                        rng=Depends(energy_date_range), con=Depends(marts),
                        as_of=Depends(data_as_of)):
    """The day of the range with the highest daily total (nulls without data in the range)."""
    return _stamped(_answer(energy_peak_day, con, _scope(con, user_id, garage_id), *rng), as_of)


HOURLY_BAD = ("Unparsable or inverted date range, neither user_id nor garage_id given (the marts keep hourly "
              "figures per user and garage only), or both given.")


def _hourly_responses() -> dict:
    return _responses(not_found="Unknown user or garage.", bad=HOURLY_BAD)


@router.get("/energy/peak-hour", tags=[ENERGY], response_model=PeakHour, responses=_hourly_responses())
def get_energy_peak_hour(user_id: str | None = USER_ID, garage_id: str | None = GARAGE_ID,
                         rng=Depends(energy_date_range), con=Depends(marts),
                         as_of=Depends(data_as_of)):
    """The hour of the range (its start as a UTC instant) in which a user or garage drew the most energy (a
    session's energy spread evenly over its hours). Needs user_id or garage_id."""
    return _stamped(_answer(energy_peak_hour, con, _scope(con, user_id, garage_id), *rng), as_of)


@router.get("/active-hours/daily", tags=[ENERGY], response_model=list[DailyActiveHours],
            responses=_hourly_responses())
def get_active_hours_daily(user_id: str | None = USER_ID, garage_id: str | None = GARAGE_ID,
                           rng=Depends(energy_date_range), con=Depends(marts)):
    """Active charging hours per local day: local clock hours in which a user or garage drew energy. Needs user_id or
    garage_id."""
    return _answer(active_hours_daily, con, _scope(con, user_id, garage_id), *rng)


@router.get("/active-hours/average", tags=[ENERGY], response_model=ActiveHoursAverage,
            responses=_hourly_responses())
def get_active_hours_average(user_id: str | None = USER_ID, garage_id: str | None = GARAGE_ID,
                             rng=Depends(energy_date_range), con=Depends(marts),
                             as_of=Depends(data_as_of)):
    """Mean active charging hours per calendar day of the range (idle days count as 0). Needs user_id or
    garage_id."""
    return _stamped(_answer(active_hours_average, con, _scope(con, user_id, garage_id), *rng), as_of)


# --- response models: utilization and reliability --------------------------------------------------------------
# Bases listed last come first in a response: key, day, counts, then the figures.
class StationKey(BaseModel):
    station_id: str = Field(description="Chargecloud station id.")
    city_slug: str | None = Field(description="The chargecloud city feed of the station.")
    operator_name: str | None = Field(description="Current operator ('(unknown)' when not given).")


class CityKey(BaseModel):
    city_slug: str | None = Field(description="The chargecloud city feed, e.g. koeln.")


class OperatorKey(BaseModel):
    operator_key: str = Field(
        description="The operator: its normalized name, the same for every spelling in the feed ('(unknown)' for "
                    "stations without an operator name). Ask for an operator by it or by any of its spellings."
    )
    operator_name: str = Field(description="Its display name: the spelling most of its stations use.")


class OnDay(BaseModel):
    day: date = Field(description="UTC day.")


class RangeSpan(BaseModel):
    n_days: int = Field(description="Days with polls in the range.")
    first_day: date = Field(description="First day with polls in the range (UTC).")
    last_day: date = Field(description="Last day with polls in the range (UTC).")


class StationPoints(BaseModel):
    n_charging_points: int = Field(description="Charging points (the most polled in one hour of a day).")


class GroupPoints(BaseModel):
    n_charging_points: int = Field(description="Charging points polled in the day (sum over the stations).")


class GroupStations(BaseModel):
    n_stations: int = Field(description="Stations polled.")


class UtilizationFigures(BaseModel):
    observed_hours: float = Field(description="Charging-point hours observed (polls x poll interval).")
    share_charging: float = Field(description="Share of observed charging-point time in CHARGING.")
    share_occupied: float = Field(description=f"Share in {spoken(OCCUPIED)}.")
    share_available: float = Field(description="Share in AVAILABLE.")
    share_out_of_order: float = Field(description=f"Share in {spoken(OUT_OF_ORDER)}.")
    share_unknown: float = Field(description="Share in UNKNOWN.")
    sessions: int = Field(description="Inferred charging sessions starting in the days.")
    mean_session_minutes: float | None = Field(description="Their mean duration (minutes); null without sessions.")
    energy_kwh_lower: float = Field(description="Sum of the sessions' lower energy bounds (kWh).")
    energy_kwh_upper: float = Field(description="Sum of the sessions' upper energy bounds (kWh).")


class ReliabilityFigures(BaseModel):
    observed_hours: float = Field(description="Charging-point hours observed.")
    known_status_hours: float = Field(description="Observed hours with a status other than UNKNOWN.")
    out_of_order_hours: float = Field(description=f"Hours in {spoken(OUT_OF_ORDER)}.")
    in_service_hours: float = Field(description="Known-status hours not out of order.")
    availability_pct: float | None = Field(
        description="100 x in-service hours / known-status hours; null without a known status."
    )
    failures: int = Field(description="Out-of-order episodes of charging points starting in the days.")
    mtbf_hours: float | None = Field(
        description="Mean time between failures: in-service hours per failure; null without failures."
    )


class StationUtilization(UtilizationFigures, StationPoints, RangeSpan, StationKey):
    pass


class StationUtilizationDay(UtilizationFigures, StationPoints, OnDay, StationKey):
    pass


class CityUtilization(UtilizationFigures, GroupStations, RangeSpan, CityKey):
    pass


class CityUtilizationDay(UtilizationFigures, GroupPoints, GroupStations, OnDay, CityKey):
    pass


class OperatorUtilization(UtilizationFigures, GroupStations, RangeSpan, OperatorKey):
    pass


class OperatorUtilizationDay(UtilizationFigures, GroupPoints, GroupStations, OnDay, OperatorKey):
    pass


class StationReliability(ReliabilityFigures, StationPoints, RangeSpan, StationKey):
    pass


class StationReliabilityDay(ReliabilityFigures, StationPoints, OnDay, StationKey):
    pass


class CityReliability(ReliabilityFigures, RangeSpan, CityKey):
    pass


class CityReliabilityDay(ReliabilityFigures, GroupPoints, OnDay, CityKey):
    pass


class OperatorReliability(ReliabilityFigures, RangeSpan, OperatorKey):
    pass


class OperatorReliabilityDay(ReliabilityFigures, GroupPoints, OnDay, OperatorKey):
    pass


# --- utilization and reliability endpoints ---------------------------------------------------------------------
STATION_ID = Path(min_length=1, description="Chargecloud station id (see /kpi/utilization/stations).")
CITY = Path(min_length=1, description="Chargecloud city feed slug, e.g. koeln (see /kpi/utilization/cities).")
OPERATOR = Path(min_length=1, description=(
    "The operator: its operator_key (e.g. rheinenergie) or any spelling of its name in the feed (e.g. "
    "'Rheinenergie AG', case and leading / trailing spaces aside), URL-encoded (a name may contain '/'); see "
    "/kpi/utilization/operators. Every spelling answers for the same one operator."))
UTIL_NOTE = "Shares weigh every charging-point hour equally (poll counts added up before dividing)."
REL_NOTE = ("Availability leaves UNKNOWN time out; failures are out-of-order episodes starting in the range; "
            "MTBF is in-service hours per failure.")
OPERATOR_NOTE = ("An operator counts once however the feed spells it: it is its operator_key (dbt docs: "
                 "dim_operator), shown under its display name.")
UTIL_OPERATOR_NOTE = f"{UTIL_NOTE} {OPERATOR_NOTE}"
REL_OPERATOR_NOTE = f"{REL_NOTE} {OPERATOR_NOTE}"


def _list_doc(measure: str, kind: str, note: str) -> dict:
    return {"summary": f"{measure} per {kind} over the range",
            "description": f"One row per {kind} with polls in the range, its {measure} over the range. {note}",
            "responses": _responses()}


def _day_doc(measure: str, kind: str, note: str) -> dict:
    return {"summary": f"{measure} of one {kind} per day",
            "description": (f"One row per UTC day of the range with polls of the {kind}; an empty list when it has "
                            f"none there. {note}"),
            "responses": _responses(not_found=f"Unknown {kind}: not in the marts.")}


@router.get("/utilization/stations", tags=[UTILIZATION], response_model=list[StationUtilization],
            **_list_doc("Utilization", "station", UTIL_NOTE))
def get_utilization_stations(rng=Depends(date_range), con=Depends(marts)):
    return _answer(utilization_list, con, "station", *rng)


@router.get("/utilization/stations/{station_id}", tags=[UTILIZATION], response_model=list[StationUtilizationDay],
            **_day_doc("Utilization", "station", UTIL_NOTE))
def get_utilization_station(station_id: str = STATION_ID, rng=Depends(date_range), con=Depends(marts)):
    return _answer(utilization_daily, con, "station", station_id, *rng)


@router.get("/utilization/cities", tags=[UTILIZATION], response_model=list[CityUtilization],
            **_list_doc("Utilization", "city", UTIL_NOTE))
def get_utilization_cities(rng=Depends(date_range), con=Depends(marts)):
    return _answer(utilization_list, con, "city", *rng)


@router.get("/utilization/cities/{city}", tags=[UTILIZATION], response_model=list[CityUtilizationDay],
            **_day_doc("Utilization", "city", UTIL_NOTE))
def get_utilization_city(city: str = CITY, rng=Depends(date_range), con=Depends(marts)):
    return _answer(utilization_daily, con, "city", city, *rng)


@router.get("/utilization/operators", tags=[UTILIZATION], response_model=list[OperatorUtilization],
            **_list_doc("Utilization", "operator", UTIL_OPERATOR_NOTE))
def get_utilization_operators(rng=Depends(date_range), con=Depends(marts)):
    return _answer(utilization_list, con, "operator", *rng)


# `:path`: operator names may hold a '/' (e.g. "... Bonn/Rhein-Sieg GmbH")
@router.get("/utilization/operators/{operator:path}", tags=[UTILIZATION],
            response_model=list[OperatorUtilizationDay], **_day_doc("Utilization", "operator", UTIL_OPERATOR_NOTE))
def get_utilization_operator(operator: str = OPERATOR, rng=Depends(date_range), con=Depends(marts)):
    return _answer(utilization_daily, con, "operator", operator, *rng)


@router.get("/reliability/stations", tags=[RELIABILITY], response_model=list[StationReliability],
            **_list_doc("Reliability", "station", REL_NOTE))
def get_reliability_stations(rng=Depends(date_range), con=Depends(marts)):
    return _answer(reliability_list, con, "station", *rng)


@router.get("/reliability/stations/{station_id}", tags=[RELIABILITY], response_model=list[StationReliabilityDay],
            **_day_doc("Reliability", "station", REL_NOTE))
def get_reliability_station(station_id: str = STATION_ID, rng=Depends(date_range), con=Depends(marts)):
    return _answer(reliability_daily, con, "station", station_id, *rng)


@router.get("/reliability/cities", tags=[RELIABILITY], response_model=list[CityReliability],
            **_list_doc("Reliability", "city", REL_NOTE))
def get_reliability_cities(rng=Depends(date_range), con=Depends(marts)):
    return _answer(reliability_list, con, "city", *rng)


@router.get("/reliability/cities/{city}", tags=[RELIABILITY], response_model=list[CityReliabilityDay],
            **_day_doc("Reliability", "city", REL_NOTE))
def get_reliability_city(city: str = CITY, rng=Depends(date_range), con=Depends(marts)):
    return _answer(reliability_daily, con, "city", city, *rng)


@router.get("/reliability/operators", tags=[RELIABILITY], response_model=list[OperatorReliability],
            **_list_doc("Reliability", "operator", REL_OPERATOR_NOTE))
def get_reliability_operators(rng=Depends(date_range), con=Depends(marts)):
    return _answer(reliability_list, con, "operator", *rng)


@router.get("/reliability/operators/{operator:path}", tags=[RELIABILITY],
            response_model=list[OperatorReliabilityDay], **_day_doc("Reliability", "operator", REL_OPERATOR_NOTE))
def get_reliability_operator(operator: str = OPERATOR, rng=Depends(date_range), con=Depends(marts)):
    return _answer(reliability_daily, con, "operator", operator, *rng)
