"""The utilization and reliability routes (`/kpi/utilization/...`, `/kpi/reliability/...`) per station, city and
operator, counted in UTC days, and their answers."""

from __future__ import annotations

from datetime import date

from fastapi import Depends, Path
from pydantic import BaseModel, Field

from ev_assets.api.kpis.common import RELIABILITY, UTILIZATION, _answer, _responses, date_range, marts, router
from ev_assets.lib.kpis.network import reliability_daily, reliability_list, utilization_daily, utilization_list
from ev_assets.lib.vocabulary import OCCUPIED, OUT_OF_ORDER, spoken


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
