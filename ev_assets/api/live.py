"""`GET /kpi/status/now...`: what the network looks like now, read from the live path's landing store.

The live path (`make live`) lands every status change and charging event in `<data root>/live/landed.sqlite`
(`ev_assets.lib.live.landing`); these routes read its live state (the latest status per charging point, the
newest poll per city, the open transactions) through a read-only connection (`ev_assets.lib.live.store`), which
sees the last committed batch and never blocks the consumer. Ages are measured on the live path's clock (a
simulated feed may run faster than the wall clock). 503 while there is no live data (`make live` starts the live
path).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Iterator

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from pydantic import BaseModel, Field

from ev_assets.api.deps import get_settings
from ev_assets.api.responses import DATA_AS_OF_HEADER, ErrorBody
from ev_assets.lib import predlog
from ev_assets.lib.live import store
from ev_assets.lib.vocabulary import OCCUPIED, OUT_OF_ORDER, spoken  # the status groups of the features too
from ev_assets.lib.settings import Settings

router = APIRouter(prefix="/kpi/status", tags=["KPIs: live status (now)"])

AVAILABLE = "AVAILABLE"
E503 = {"model": ErrorBody, "description": "No live data: the live path's landing store does not exist (start it "
        "with `make live`) or has landed nothing yet."}
E404 = {"model": ErrorBody, "description": "The live data knows no such station."}


# --- response models ----------------------------------------------------------------------------------------------
class Freshness(BaseModel):
    data_as_of: str | None = Field(description="The newest poll time the figures come from (ISO-8601 UTC, "
                                   "milliseconds; the same text as the X-Data-As-Of header).")
    age_s: float | None = Field(description="Seconds from data_as_of to now, on the live path's clock.")
    stale: bool | None = Field(description="age_s is over stale_after_s (EV_LIVE_STALE_POLLS poll intervals).")
    stale_after_s: float
    now: datetime = Field(description="Now on the live path's clock.")


class StatusCounts(BaseModel):
    n_stations: int
    n_charging_points: int
    by_status: dict[str, int] = Field(description="Charging points per status (their latest live status).")
    shares: dict[str, float] = Field(description="by_status / n_charging_points.")
    n_available: int = Field(description="Charging points AVAILABLE.")
    share_available: float
    share_occupied: float = Field(description=f"Share in {spoken(OCCUPIED)}.")
    share_out_of_order: float = Field(description=f"Share in {spoken(OUT_OF_ORDER)}.")
    stations_with_free_point: int = Field(description="Stations with at least one AVAILABLE charging point.")


class CityNow(StatusCounts):
    city_slug: str
    poll_slot: datetime | None = Field(description="The city's newest landed poll slot.")
    poll_time: datetime | None = Field(description="Its poll time (UTC).")
    poll_ok: bool | None = Field(description="Whether that poll answered.")
    poll_age_s: float | None = Field(description="Seconds from poll_time to now (live clock).")
    stale: bool | None


class NetworkNow(Freshness):
    network: StatusCounts
    cities: list[CityNow]


class ConnectorNow(BaseModel):
    connector_id: str
    status: str
    since: datetime | None = Field(description="The poll time at which it changed to this status.")


class ChargingPointNow(BaseModel):
    charging_point_id: str
    status: str
    since: datetime | None = Field(description="The poll time at which it changed to this status.")
    connectors: list[ConnectorNow]


class OpenSession(BaseModel):
    transaction_id: str
    connector_id: str | None
    started_at: datetime | None
    last_event_at: datetime | None = Field(description="The newest start / meter event of the transaction.")
    energy_kwh: float | None = Field(description="Energy so far: the latest meter value (kWh).")
    power_kw: float | None = Field(description="The latest power (kW).")
    events: int


class StationNow(Freshness):
    station_id: str
    city_slug: str | None
    poll_time: datetime | None = Field(description="The newest landed poll of the station's city (UTC).")
    newest_event_at: datetime | None = Field(description="The newest charging event of the station's open sessions.")
    free_now: int = Field(description="Charging points AVAILABLE now.")
    of: int = Field(description="Charging points of the station known to the live data.")
    any_free: bool
    charging_points: list[ChargingPointNow]
    open_sessions: list[OpenSession] = Field(description="Transactions started and not stopped, with the energy so "
                                             "far.")


# --- helpers ------------------------------------------------------------------------------------------------------
def live_store(request: Request) -> Iterator[sqlite3.Connection]:
    settings: Settings = get_settings(request)
    try:
        con = store.connect_reader(settings.live_dir)
    except store.NoLiveData as exc:
        raise HTTPException(503, f"no live data: {exc}") from None
    try:
        yield con
    finally:
        con.close()


def _age(now: datetime, when: str | None) -> float | None:
    return None if when is None else (now - store.parse_iso(when)).total_seconds()


def _counts(frame: pd.DataFrame) -> dict:
    n = len(frame)
    by_status = {str(k): int(v) for k, v in frame["status"].value_counts().sort_index().items()} if n else {}
    share = (lambda k: (sum(by_status.get(s, 0) for s in k) / n) if n else 0.0)  # noqa: E731
    free = frame[frame["status"] == AVAILABLE]["station_id"].nunique() if n else 0
    return {"n_stations": int(frame["station_id"].nunique()) if n else 0, "n_charging_points": n,
            "by_status": by_status, "shares": {k: v / n for k, v in by_status.items()},
            "n_available": by_status.get(AVAILABLE, 0), "share_available": share((AVAILABLE,)),
            "share_occupied": share(OCCUPIED), "share_out_of_order": share(OUT_OF_ORDER),
            "stations_with_free_point": int(free)}


def _freshness(con: sqlite3.Connection, settings: Settings, as_of: str | None, response: Response) -> dict:
    now = store.load_clock(con).now()
    age = _age(now, as_of)
    as_of = predlog.iso_utc(store.parse_iso(as_of)) if as_of else None
    response.headers[DATA_AS_OF_HEADER] = as_of or "unknown"
    limit = settings.live_stale_after_s
    return {"data_as_of": as_of, "age_s": age, "stale": None if age is None else age > limit, "stale_after_s": limit,
            "now": now}


def _none(value):
    return None if value is None or (isinstance(value, float) and value != value) else value


# --- routes -------------------------------------------------------------------------------------------------------
@router.get("/now", response_model=NetworkNow, responses={503: E503},
            summary="The network now: charging points per status, per city, from the live data")
def network_now(request: Request, response: Response, con: sqlite3.Connection = Depends(live_store)):
    """Counts and shares of the charging points per latest live status, for the whole network and per city, with
    each city's newest poll and its age. `data_as_of` (and X-Data-As-Of) is the newest poll time landed; ages are
    on the live path's clock."""
    settings: Settings = get_settings(request)
    try:
        points = store.status_now(con)
        polls = store.city_polls(con)
    except sqlite3.Error as exc:
        raise HTTPException(503, f"no live data: the landing store is not readable yet ({exc})") from None
    if polls.empty and points.empty:
        raise HTTPException(503, "no live data: the live path has landed nothing yet")
    as_of = polls["poll_time"].dropna().max() if len(polls) else None
    fresh = _freshness(con, settings, _none(as_of), response)
    cities = []
    poll_by_city = {row["city_slug"]: row for row in polls.to_dict("records")}
    for city in sorted(set(points["city_slug"].dropna()) | set(poll_by_city)):
        poll = poll_by_city.get(city, {})
        age = _age(fresh["now"], poll.get("poll_time"))
        cities.append({"city_slug": city, **_counts(points[points["city_slug"] == city]),
                       "poll_slot": poll.get("poll_slot"), "poll_time": poll.get("poll_time"),
                       "poll_ok": None if not poll else bool(poll.get("ok")), "poll_age_s": age,
                       "stale": None if age is None else age > settings.live_stale_after_s})
    return {**fresh, "network": _counts(points), "cities": cities}


@router.get("/now/{station_id}", response_model=StationNow, responses={404: E404, 503: E503},
            summary="One station now: each charging point's live status, free now n of m, open sessions")
def station_now(request: Request, response: Response,
                station_id: str = Path(min_length=1, description="Chargecloud station id."),
                con: sqlite3.Connection = Depends(live_store)):
    """Each charging point's (and connector's) latest live status and since when, how many are free now of how
    many, and the station's open charging sessions with their energy so far (from the start / meter events). 
    `data_as_of` (and X-Data-As-Of) is the newest of the city's latest poll time and the newest event of the open
    sessions; ages are on the live path's clock."""
    settings: Settings = get_settings(request)
    try:
        points = store.status_now(con)
        connectors = store.status_now(con, "status_connectors")
        sessions = store.open_sessions(con)
        polls = store.city_polls(con)
    except sqlite3.Error as exc:
        raise HTTPException(503, f"no live data: the landing store is not readable yet ({exc})") from None
    mine = points[points["station_id"] == station_id]
    open_here = sessions[sessions["station_id"] == station_id]
    if mine.empty and open_here.empty:
        raise HTTPException(404, f"unknown station {station_id!r}: no live status or open session of it")
    city = mine["city_slug"].dropna().iloc[0] if mine["city_slug"].notna().any() else None
    poll = polls[polls["city_slug"] == city]
    poll_time = _none(poll["poll_time"].iloc[0]) if len(poll) else None
    newest_event = _none(open_here["last_event_at"].max()) if len(open_here) else None
    as_of = max([t for t in (poll_time, newest_event) if t], default=None)
    fresh = _freshness(con, settings, as_of, response)
    cons = connectors[connectors["station_id"] == station_id]
    charging_points = []
    for row in mine.to_dict("records"):
        own = cons[cons["charging_point_id"] == row["charging_point_id"]]
        charging_points.append({
            "charging_point_id": row["charging_point_id"], "status": row["status"], "since": row["since_time"],
            "connectors": [{"connector_id": c["connector_id"], "status": c["status"], "since": c["since_time"]}
                           for c in own.to_dict("records")]})
    free = int((mine["status"] == AVAILABLE).sum())
    return {**fresh, "station_id": station_id, "city_slug": city, "poll_time": poll_time,
            "newest_event_at": newest_event, "free_now": free, "of": len(mine), "any_free": free > 0,
            "charging_points": charging_points,
            "open_sessions": [{"transaction_id": s["transaction_id"], "connector_id": _none(s["connector_id"]),
                               "started_at": s["started_at"], "last_event_at": s["last_event_at"],
                               "energy_kwh": _none(s["meter_kwh"]), "power_kw": _none(s["power_kw"]),
                               "events": int(s["events"])} for s in open_here.to_dict("records")]}
