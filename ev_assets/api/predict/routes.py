"""The endpoints of `POST /predict/...` (`router`): each builds its model row with `ev_assets.lib.ml.serving`, asks the
champion, and logs the answer to the prediction log before it is sent."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime, timezone

import pandas as pd
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from ev_assets.api.deps import get_champions, get_settings
from ev_assets.api.responses import DATA_AS_OF_HEADER
from ev_assets.api.predict.schemas import (
    E409,
    ERRORS,
    AvailabilityRequest,
    AvailabilityResponse,
    EnergyResponse,
    PluginResponse,
    SessionRequest,
    SessionResponse,
    UtilizationRequest,
    UtilizationResponse,
    VehicleRequest,
)
from ev_assets.lib import predlog
from ev_assets.lib.ml import catalog
from ev_assets.lib.ml import champions as C
from ev_assets.lib.ml import serving
from ev_assets.lib.ml.serving.base import _inputs
from ev_assets.lib.settings import Settings

log = logging.getLogger("ev_assets.api")

REQUEST_ID_HEADER = "X-Request-ID"
router = APIRouter(prefix="/predict", tags=["predict"])


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
