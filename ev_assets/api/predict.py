"""`POST /predict/...`: the forecasts of the champions, each answer logged to the prediction log before it is sent.

Every response carries `request_id` (also in the `X-Request-ID` header) and the registered model name and version
that answered; the prediction log holds one record per model answer with the same request id (two for the
endpoints that ask two models: utilization and session).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from datetime import date, datetime, timezone
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Request, Response
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from ev_assets.api.deps import get_champions, get_settings
from ev_assets.lib import predlog
from ev_assets.lib.ml import catalog
from ev_assets.lib.ml import champions as C
from ev_assets.lib.ml import serving
from ev_assets.lib.ml.serving.base import _inputs
from ev_assets.lib.settings import Settings

log = logging.getLogger("ev_assets.api")

Date = date  # (a field below is called `date`)
REQUEST_ID_HEADER = "X-Request-ID"
DATA_AS_OF_HEADER = "X-Data-As-Of"  # on every KPI and prediction answer: the newest time of the data it used
router = APIRouter(prefix="/predict", tags=["predict"])

# Times are ISO-8601 text in the years 2000..2099, exactly as these patterns say (the OpenAPI schema carries them,
# so a schema-valid time is always accepted): a date that exists, a time, and a time zone (Z or +hh:mm).
_YEAR, _LEAP = "20[0-9]{2}", "20(?:0[48]|[2468][048]|[13579][26])"
_MONTH_DAY = ("(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
              "|02-(?:0[1-9]|1[0-9]|2[0-8]))")
_DATE = f"(?:{_YEAR}-{_MONTH_DAY}|{_LEAP}-02-29)"
_TIME = "(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\\.[0-9]{1,6})?)?"
_ZONE = "(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
INSTANT_PATTERN = f"^{_DATE}T{_TIME}{_ZONE}$"
DAY_PATTERN = f"^{_DATE}$"
INSTANT_TEXT = "ISO-8601 date-time with a time zone, years 2000..2099, e.g. 2024-05-01T12:00:00Z"
DAY_TEXT = "ISO-8601 date, years 2000..2099, e.g. 2024-05-01"


def _matching(pattern: str, text: str):
    compiled = re.compile(pattern)

    def check(value: Any) -> Any:
        if isinstance(value, (datetime, date)):  # Python callers
            return value
        if not isinstance(value, str) or not compiled.fullmatch(value):
            raise ValueError(f"must be an {text}")
        return value

    return check


def _utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc)


Instant = Annotated[AwareDatetime, BeforeValidator(_matching(INSTANT_PATTERN, INSTANT_TEXT)), AfterValidator(_utc),
                    Field(strict=False), WithJsonSchema({"type": "string", "pattern": INSTANT_PATTERN,
                                                         "description": INSTANT_TEXT})]
Day = Annotated[date, BeforeValidator(_matching(DAY_PATTERN, DAY_TEXT)), Field(strict=False),
                WithJsonSchema({"type": "string", "pattern": DAY_PATTERN, "description": DAY_TEXT})]
Identifier = Annotated[str, Field(min_length=1, max_length=200)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class AvailabilityRequest(Strict):
    station_id: Identifier = Field(description="A station id of the station-time feature set (chargecloud).",
                                   examples=["10006"])
    horizon_minutes: Literal[10, 60] = Field(description="How far ahead: 10 (the next poll) or 60 minutes.")
    at: Instant | None = Field(
        default=None, description="Forecast from the station's latest poll slot at or before this instant (ISO-8601 "
        "with a time zone, 2000..2099); default: its latest poll slot.")


class UtilizationRequest(Strict):
    station_id: Identifier = Field(description="A station id of the station-day feature set.", examples=["10006"])
    date: Day | None = Field(default=None, description="The day to forecast (ISO date, 2000..2099); default: today "
                             "(UTC).")


class Reading(Strict):
    reading_at: Instant = Field(description="When the vehicle reported (ISO-8601 with a time zone).")
    soc_pct: float = Field(ge=0, le=100, allow_inf_nan=False, description="State of charge, 0..100 %.")
    plugged_in: bool = Field(description="Whether the vehicle was plugged in.")


class VehicleRequest(Strict):
    vehicle_id: Identifier | None = Field(default=None, description="Only a label, echoed and logged.")
    readings: list[Reading] = Field(
        min_length=1, max_length=2000,
        description="The vehicle's recent readings (1..2000), any order. As in training they are sorted by time, a "
        "repeated timestamp keeps its first reading, and nothing is derived across a silence longer than the gap "
        "setting (EV_TELEMETRY_GAP_MINUTES). The forecast is for the latest reading.")


class SessionRequest(Strict):
    dataset: Literal["norway", "acn"] = Field(description="Which session source the user belongs to: `norway` "
                                              "(residential session reports) or `acn` (Caltech ACN).")
    user_id: Identifier = Field(description="The user's id in that dataset; their earlier sessions are looked up in "
                                "the session feature set.", examples=["SimA1-2"])
    plug_in_at: Instant = Field(description="The plug-in instant (ISO-8601 with a time zone, 2000..2099).")
    site_id: Identifier | None = Field(default=None, description="Garage (norway) or site (acn); default: that of "
                                       "the user's latest session.")
    station_id: Identifier | None = Field(default=None, description="ACN station; default: that of the user's "
                                          "latest session. Ignored for norway.")
    user_type: Literal["private", "shared"] | None = Field(default=None, description="Norway: private or shared "
                                                           "charger; default: that of the user's latest session.")
    kwh_requested: float | None = Field(default=None, ge=0, le=500, description="ACN: the energy the driver asks "
                                        "for at plug-in (the app's first input), kWh. Ignored for norway.")
    minutes_available: float | None = Field(default=None, ge=0, le=10080, description="ACN: how long the driver "
                                            "says the car stays, minutes (the app's first input). Ignored for norway.")
    new_user: bool = Field(default=False, description="Allow a user without any session in the feature set (cold "
                           "start: no history, the model falls back on the calendar and the site). Without it an "
                           "unknown user is a 404, which catches typos.")


# --- response types ----------------------------------------------------------------------------------------------
class Answered(BaseModel):
    request_id: str = Field(description="Also in the X-Request-ID header and in the prediction log.")
    data_as_of: str | None = Field(description="The newest time of the data the answer used (ISO-8601 UTC, "
                                   "milliseconds; the same text as the X-Data-As-Of header).")


class Forecast(BaseModel):
    value: float
    model: str = Field(description="The registered model that answered.")
    version: str = Field(description="Its registry version (the champion at the time).")


class IntervalForecast(Forecast):
    value: float = Field(description="The point forecast: the P50.")
    p10: float | None = Field(None, description="10th percentile (the 80 % interval's lower end); null when the "
                              "champion has no interval forecast.")
    p90: float | None = Field(None, description="90th percentile (its upper end).")


class AvailabilityResponse(Answered):
    station_id: str
    horizon_minutes: int
    probability_available: float = Field(ge=0, le=1, description="Probability that at least one charging point of "
                                         "the station is AVAILABLE at target_at.")
    features_at: datetime = Field(description="The poll slot whose features were used (UTC).")
    target_at: datetime = Field(description="The time the forecast is for: features_at + horizon (UTC).")
    features_from: Literal["live", "feature_set"] = Field(
        description="live: the station's newest live poll (lags and rolling windows computed by the training code "
        "over the live status history); feature_set: the station-time feature set (no live data for the station).")
    age_s: float = Field(description="Seconds from data_as_of (the poll time of the features used) to `at`, or to "
                         "now when `at` is not given (the live path's clock, which a simulated feed may run fast).")
    stale: bool = Field(description="age_s is over the staleness limit (EV_LIVE_STALE_POLLS poll intervals). Only "
                        "possible without `at`: a request whose `at` is that far past the newest data is a 409.")
    model: str
    version: str


class UtilizationResponse(Answered):
    station_id: str
    date: Date
    sessions_per_day: Forecast = Field(description="Inferred charging sessions starting that day.")
    occupied_share: Forecast = Field(description="Share of the day's charging-point time occupied, 0..1.")
    attributes_from: Date = Field(description="The station's latest observed day, whose attributes were used.")


class VehicleResponse(Answered):
    vehicle_id: str | None
    reading_at: datetime = Field(description="The latest usable reading, whose features were used (UTC).")
    target_at: datetime = Field(description="reading_at + the model's horizon (UTC).")
    readings_used: int
    readings_dropped: dict[str, int] = Field(description="Readings left out, by reason (as in training).")
    model: str
    version: str


class PluginResponse(VehicleResponse):
    probability_plugged_in: float = Field(ge=0, le=1)


class EnergyResponse(VehicleResponse):
    energy_to_full_pct: float = Field(ge=0, le=100, description="100 - state of charge at target_at, in percentage "
                                      "points of the battery (clipped to 0..100).")
    energy_to_full_pct_p10: float | None = Field(None, ge=0, le=100, description=(
        "10th percentile of the same (the 80 % interval's lower end); null when the champion has no interval."))
    energy_to_full_pct_p90: float | None = Field(None, ge=0, le=100, description="90th percentile of the same.")


class SessionResponse(Answered):
    dataset: str
    user_id: str
    plug_in_at: datetime
    known_user: bool
    user_sessions_before: int = Field(description="The user's sessions that had ended by plug_in_at.")
    site_id: str | None
    station_id: str | None
    user_type: str | None
    energy_kwh: IntervalForecast
    duration_h: IntervalForecast


class ErrorBody(BaseModel):
    detail: str


class StaleBody(ErrorBody):
    stale: bool = Field(description="Always true.")
    requested_at: datetime = Field(description="The `at` of the request (UTC).")
    data_as_of: str = Field(description="The poll time of the newest features at or before `at` (ISO-8601 UTC).")
    age_s: float = Field(description="Seconds from data_as_of to requested_at.")
    newest_data_at: datetime = Field(description="The newest poll time of the station (UTC), live or feature set.")
    stale_after_s: float = Field(description="The staleness limit in seconds.")


def _error(description: str) -> dict:
    return {"model": ErrorBody, "description": description}


E404 = _error("Unknown station or user (the message says which).")
E503 = _error("No champion for the model yet, no feature set yet, a feature set that does not fit the champion, "
              "the model failing on the row, or a prediction log that cannot be written: the message says which "
              "(`make demo` builds everything).")
E409 = {"model": StaleBody, "description": "`at` is beyond the newest data: the station's newest poll at or "
        "before `at` is older than the staleness limit (EV_LIVE_STALE_POLLS poll intervals). The answer names the "
        "data's age and its newest time; old features are never used silently."}
E422 = {"description": "Invalid request: a field out of range or of the wrong type, an unknown field, or a body "
        "that is not valid JSON (or not UTF-8). `detail` lists each problem (loc, msg, type); `message` sums them up."}
ERRORS = {404: E404, 422: E422, 503: E503}


# --- helpers -----------------------------------------------------------------------------------------------------
class _Call:
    """One request: its id, its clock, and the records to log."""

    def __init__(self, request: Request, endpoint: str, body: BaseModel):
        self.started = time.perf_counter()
        self.request_id = uuid.uuid4().hex
        self.endpoint = endpoint
        self.settings: Settings = get_settings(request)
        self.store: C.ChampionStore = get_champions(request)
        self.features: serving.FeatureSets = request.app.state.features
        self.body = body
        self.records: list[dict] = []

    def champion(self, name: str) -> C.Champion:
        try:
            return self.store.require(name)
        except C.NoChampion as exc:
            raise serving.NotReady(str(exc)) from None

    def predict(self, champion: C.Champion, x) -> float:
        try:
            return champion.predict(x)
        except Exception as exc:  # noqa: BLE001 - a model failing on a row is a 503 with the reason, not a 500
            raise serving.NotReady(f"{champion.name} version {champion.version} failed on the request's features "
                                   f"({type(exc).__name__}: {str(exc)[:300]})") from exc

    def record(self, champion: C.Champion, inputs: dict, output: dict, **top) -> None:
        self.records.append({"request_id": self.request_id, "endpoint": self.endpoint, "model": champion.name,
                             "version": champion.version, "inputs": inputs, "output": output, **top})

    def data_as_of(self, response: Response, when) -> str | None:
        """Set the X-Data-As-Of header (and return the time for the body) of the newest data the answer used."""
        text = _iso(pd.Timestamp(when)) if when is not None else None
        response.headers[DATA_AS_OF_HEADER] = text or "unknown"
        return text

    def log(self, response: Response) -> None:
        """Append the records (one write) before the answer goes out; 503 if the log cannot be written."""
        latency_ms = round((time.perf_counter() - self.started) * 1000, 3)
        at = predlog.now_iso()
        request = self.body.model_dump(mode="json")
        records = [{**r, "at": at, "request": request, "latency_ms": latency_ms} for r in self.records]
        try:
            predlog.append_all(self.settings, records)
        except (OSError, ValueError) as exc:
            raise serving.NotReady(f"the prediction could not be written to the prediction log "
                                   f"({type(exc).__name__}: {exc}); it was not answered") from exc
        response.headers[REQUEST_ID_HEADER] = self.request_id
        log.debug("%s %s answered by %s (%.2f ms)", self.endpoint, self.request_id,
                   ", ".join(f"{r['model']} v{r['version']}" for r in self.records), latency_ms)


def _iso(stamp: pd.Timestamp) -> str:
    return predlog.iso_utc(stamp)


# --- endpoints ---------------------------------------------------------------------------------------------------
@router.post("/availability", response_model=AvailabilityResponse, responses={**ERRORS, 409: E409},
             summary="Will the station have a free charging point in 10 / 60 minutes?")
async def predict_availability(body: AvailabilityRequest, request: Request, response: Response):
    """The probability that at least one charging point of the station is AVAILABLE `horizon_minutes` after its
    latest poll slot at or before `at` (`station_available_10min` / `_60min`).

    Features: when the live store has a poll of the station at or before `at` (and not older than the feature
    set's row), the row of that live poll, computed by the training code (`stations.station_time_features`) over
    the live status history (lags 10 / 30 / 60 min, rolling 1 / 3 / 24 h, time in state) with the station's
    attributes from the marts snapshot and the feature set's operator / city codes; otherwise the station's row of
    the station-time feature set (rounded as in training).

    Freshness: `data_as_of` (and the X-Data-As-Of header) is the poll time of the features used. A request whose
    `at` is more than the staleness limit past that poll (a time beyond the newest data, or in a gap) is a 409
    naming the data's age and its newest time; without `at` the answer says `age_s` and `stale`."""
    call = _Call(request, "/predict/availability", body)
    champion = call.champion(C.AVAILABILITY[body.horizon_minutes])
    index, stamp = call.features.station_time.get()
    live_row, clock, live_newest = _live_availability(request, body, index, stamp)
    try:
        from_set = index.row(body.station_id, body.at)
    except serving.NotFound:
        if live_row is None:
            raise
        from_set = None
    if live_row is not None and (from_set is None or live_row.features_at >= from_set[0]):
        features_at, data_as_of, source = live_row.features_at, live_row.poll_time, "live"
        inputs, x = live_row.features(champion.features)
    else:
        features_at, values = from_set
        data_as_of, source = features_at, "feature_set"
        x = values[index.positions(tuple(champion.features), catalog.STATION_TIME)]
        inputs = _inputs(champion.features, x)
    now = pd.Timestamp(clock.now() if clock is not None else datetime.now(timezone.utc))
    reference = pd.Timestamp(body.at) if body.at is not None else now
    age_s = max((reference - data_as_of).total_seconds(), 0.0)
    limit = call.settings.live_stale_after_s
    if age_s > limit:
        newest = max(t for t in (index.newest(body.station_id), live_newest, data_as_of) if t is not None)
        if body.at is not None:
            raise serving.Stale(
                f"no data for station {body.station_id!r} near {_iso(reference)}: its newest poll at or before it is "
                f"from {_iso(data_as_of)}, {age_s:,.0f} s earlier (the limit is {limit:,.0f} s, "
                f"{call.settings.live_stale_polls} poll intervals); its newest data is from {_iso(newest)}. Ask "
                "without `at` for a forecast from the newest data (answered with its age), or for a time covered "
                "by the data.",
                extra={"stale": True, "requested_at": _iso(reference), "data_as_of": _iso(data_as_of),
                       "age_s": age_s, "newest_data_at": _iso(newest), "stale_after_s": limit})
    p = min(max(call.predict(champion, x), 0.0), 1.0)
    target_at = features_at + pd.Timedelta(minutes=body.horizon_minutes)
    as_of = call.data_as_of(response, data_as_of)
    call.record(champion, inputs, {"probability_available": p}, station_id=body.station_id,
                target_at=_iso(target_at), features_at=_iso(features_at), horizon_minutes=body.horizon_minutes,
                data_as_of=as_of, features_from=source)
    call.log(response)
    return {"request_id": call.request_id, "station_id": body.station_id, "horizon_minutes": body.horizon_minutes,
            "probability_available": p, "features_at": features_at, "target_at": target_at,
            "features_from": source, "data_as_of": as_of, "age_s": age_s, "stale": age_s > limit,
            "model": champion.name, "version": champion.version}


def _live_availability(request: Request, body: AvailabilityRequest, index, stamp):
    """(the station's live feature row or None, the live clock or None without a live store, the station's newest
    live poll time or None)."""
    from ev_assets.lib import snapshot
    from ev_assets.lib.live import store

    settings: Settings = get_settings(request)
    try:
        con = store.connect_reader(settings.live_dir)
    except store.NoLiveData:
        return None, None, None
    try:
        clock = store.load_clock(con)
        online: serving.OnlineFeatures = request.app.state.online
        newest = online.newest_slot(con, body.station_id, None)
        try:
            row = online.row(con, body.station_id, body.at, index, stamp)
        except snapshot.NoSnapshot:
            log.warning("live data but no marts snapshot: availability answered from the feature set")
            row = None
        return row, clock, pd.Timestamp(newest[1]) if newest else None
    finally:
        con.close()


@router.post("/utilization", response_model=UtilizationResponse, responses=ERRORS,
             summary="How used will the station be on a day?")
async def predict_utilization(body: UtilizationRequest, request: Request, response: Response):
    """Sessions per day (`station_sessions_per_day`) and the occupied share (`station_occupied_share`) of the
    station on `date`, from its latest attributes in the station-day feature set and the day's calendar."""
    call = _Call(request, "/predict/utilization", body)
    sessions_model = call.champion(C.SESSIONS_PER_DAY)
    share_model = call.champion(C.OCCUPIED_SHARE)
    day = body.date or datetime.now(timezone.utc).date()
    index, _ = call.features.station_day.get()
    answers = {}
    for key, champion, low, high in (("sessions_per_day", sessions_model, 0.0, None),
                                     ("occupied_share", share_model, 0.0, 1.0)):
        latest, inputs, x = serving.utilization_features(index, body.station_id, day, champion.features)
        value = max(call.predict(champion, x), low)
        value = min(value, high) if high is not None else value
        answers[key] = {"value": value, "model": champion.name, "version": champion.version}
        call.record(champion, inputs, {key: value}, station_id=body.station_id, day=day.isoformat())
    as_of = call.data_as_of(response, latest)
    call.log(response)
    return {"request_id": call.request_id, "station_id": body.station_id, "date": day, "data_as_of": as_of,
            "attributes_from": latest.date(), **answers}


def _vehicle(call: _Call, name: str, body: VehicleRequest) -> tuple[C.Champion, serving.VehicleRow, float]:
    champion = call.champion(name)
    readings = pd.DataFrame({
        "vehicle_id": body.vehicle_id or "request",
        "reading_at": [r.reading_at for r in body.readings],
        "soc_pct": [r.soc_pct for r in body.readings],
        "plugged_in": [r.plugged_in for r in body.readings],
    })
    row = serving.vehicle_features(readings, champion.features, call.settings.telemetry_gap_minutes)
    return champion, row, call.predict(champion, row.x)


def _vehicle_answer(call: _Call, champion: C.Champion, row: serving.VehicleRow, key: str, value: float,
                    body: VehicleRequest, response: Response) -> dict:
    target_at = row.reading_at + pd.Timedelta(minutes=call.settings.telemetry_horizon_minutes)
    call.record(champion, row.inputs, {key: value}, vehicle_id=body.vehicle_id, reading_at=_iso(row.reading_at),
                target_at=_iso(target_at))
    as_of = call.data_as_of(response, row.reading_at)
    call.log(response)
    return {"request_id": call.request_id, "vehicle_id": body.vehicle_id, "reading_at": row.reading_at,
            "data_as_of": as_of,
            "target_at": target_at, "readings_used": row.readings_used, "readings_dropped": row.dropped, key: value,
            "model": champion.name, "version": champion.version}


@router.post("/plugin", response_model=PluginResponse, responses=ERRORS,
             summary="Will the vehicle be plugged in 15 minutes after its latest reading?")
def predict_plugin(body: VehicleRequest, request: Request, response: Response):
    """The probability that the vehicle is plugged in at its latest reading + the horizon
    (`vehicle_plugged_in_15min`), from its readings, cleaned and featurised as in training."""
    call = _Call(request, "/predict/plugin", body)
    champion, row, p = _vehicle(call, C.PLUGGED_IN, body)
    return _vehicle_answer(call, champion, row, "probability_plugged_in", min(max(p, 0.0), 1.0), body, response)


@router.post("/energy-to-full", response_model=EnergyResponse, responses=ERRORS,
             summary="How much energy will the vehicle still need to be full, 15 minutes after its latest reading?")
def predict_energy_to_full(body: VehicleRequest, request: Request, response: Response):
    """100 - state of charge at the latest reading + the horizon, in percentage points of the battery
    (`vehicle_energy_to_full_15min`), from the vehicle's readings, cleaned and featurised as in training."""
    call = _Call(request, "/predict/energy-to-full", body)
    champion, row, value = _vehicle(call, C.ENERGY_TO_FULL, body)
    value = min(max(value, 0.0), 100.0)
    answer = _vehicle_answer(call, champion, row, "energy_to_full_pct", value, body, response)
    quantiles = _quantiles(champion, row.x, value)
    return {**answer, **{f"energy_to_full_pct_{k}": min(v, 100.0) for k, v in quantiles.items()}}


def _quantiles(champion, x, value: float) -> dict[str, float]:
    """P10 / P90 of the champion's interval forecast around `value` (never below 0, P10 <= value <= P90)."""
    found = champion.predict_interval(x)
    if found is None:
        return {}
    low, high = found
    return {"p10": min(max(low, 0.0), value), "p90": max(high, value)}


@router.post("/session", response_model=SessionResponse, responses=ERRORS,
             summary="Energy (kWh) and duration (h) of a charging session, at plug-in time")
def predict_session(body: SessionRequest, request: Request, response: Response):
    """`session_energy_kwh` and `session_duration_h` for a user plugging in at `plug_in_at`: the user's history
    (count and mean energy / duration of their sessions that had ended by then, days since their previous
    plug-in) comes from the session feature set; calendar in the site's local time; garage / site / station /
    user type coded as in training. A user without sessions needs `new_user: true` (cold start)."""
    call = _Call(request, "/predict/session", body)
    answers, row = {}, None
    for key, name in (("energy_kwh", C.SESSION_ENERGY), ("duration_h", C.SESSION_DURATION)):
        champion = call.champion(name)
        if champion.encodings:  # the codes it was trained with, bundled with the model
            history, vocabularies = call.features.session_history()[0], champion.encodings
        else:
            history, vocabularies = call.features.vocabularies(champion.name, champion.version, champion.params)
        row = serving.session_features(
            history, vocabularies, champion.features, dataset=body.dataset, user_id=body.user_id,
            plug_in_at=body.plug_in_at, site_id=body.site_id,
            station_id=body.station_id if body.dataset == "acn" else None,
            user_type=body.user_type if body.dataset == "norway" else None, allow_new_user=body.new_user,
            kwh_requested=body.kwh_requested, minutes_available=body.minutes_available)
        value = max(call.predict(champion, row.x), 0.0)
        answers[key] = {"value": value, "model": champion.name, "version": champion.version,
                        **_quantiles(champion, row.x, value)}
        call.record(champion, row.inputs, {key: value}, dataset=body.dataset, user_id=body.user_id,
                    plug_in_at=_iso(pd.Timestamp(body.plug_in_at)))
    as_of = call.data_as_of(response, row.history_as_of if row.history_as_of is not None else body.plug_in_at)
    call.log(response)
    return {"request_id": call.request_id, "dataset": body.dataset, "user_id": body.user_id, "data_as_of": as_of,
            "plug_in_at": body.plug_in_at, "known_user": row.known_user,
            "user_sessions_before": row.user_sessions_before, "site_id": row.site, "station_id": row.station,
            "user_type": row.user_type, **answers}
