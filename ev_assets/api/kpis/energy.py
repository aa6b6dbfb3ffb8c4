"""The session energy routes (`/kpi/users`, `/kpi/garages`, `/kpi/energy/...`, `/kpi/active-hours/...`) of the
Norwegian residential reports, counted in the site's local days (`common.ENERGY_DAY_RULE`), and their answers."""

from __future__ import annotations

from datetime import date, datetime

from fastapi import Depends, Path, Query
from pydantic import BaseModel, Field

from ev_assets.api.kpis.common import (
    ENERGY,
    _answer,
    _responses,
    _stamped,
    data_as_of,
    energy_date_range,
    marts,
    router,
)
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
