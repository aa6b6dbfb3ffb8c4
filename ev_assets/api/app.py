"""The prediction and KPI service: `create_app(settings)` builds it, `python -m ev_assets.api` serves it.

- `GET /health`: ok or degraded, the champion version of each model, the marts snapshot and feature sets present.
- `GET /metadata`: per model, name, version, metrics vs baselines, trained at, MLflow run and links, and the
  lineage (the data versions of the feature set and of the raw / warehouse assets it was built from).
- `POST /predict/...`: `ev_assets.api.predict`. `POST /admin/reload`: look for new champions now (a JSON body, and
  the `X-Admin-Token` when bound beyond loopback).
- `ev_assets.api.guard`: a foreign Host header is 400, a body over EV_MAX_BODY_BYTES 413, a long query string 414.
- the KPI endpoints (`ev_assets.api.kpis`), the live "now" endpoints (`ev_assets.api.live`: `GET /kpi/status/now`,
  `GET /kpi/status/now/{station_id}`) and the charging plan (`ev_assets.api.plan`).
- Freshness: every KPI and prediction answer carries the `X-Data-As-Of` header, and a `data_as_of` field when its
  body is an object (`DATA_AS_OF_RULE` says what time it is per route); `/health` reports the live data's age.

No request produces a 500: validation errors (including a body that is not JSON) are 422 with every problem
listed and summed up in `message`; the errors of the service's own logic map to 404 / 503 with a message; the
codes each route can return are in its OpenAPI `responses`.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import sqlite3
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ev_assets.api import guard, kpis, live, plan, predict
from ev_assets.api.deps import get_champions, get_settings
from ev_assets.lib import snapshot
from ev_assets.lib.ml import champions as C
from ev_assets.lib.ml import serving
from ev_assets.lib.settings import Settings

log = logging.getLogger("ev_assets.api")

DESCRIPTION = """Forecasts of the ev-assets models (each answered by the registered model's current `champion`,
logged to the prediction log with a request id) and KPIs over the warehouse marts (read from a published
read-only snapshot). Errors: `{"detail": "<message>"}`; 422 lists each invalid field."""


# --- health and metadata ----------------------------------------------------------------------------------------
class ModelHealth(BaseModel):
    version: str | None = Field(description="The champion version served (null: none loaded).")
    registry_version: str | None = Field(description="The version the champion alias pointed at, at the last check.")
    checked_at: str | None
    error: str | None = Field(description="Why the last check did not load a champion (null: fine).")


class SnapshotHealth(BaseModel):
    present: bool
    file: str | None


class LiveHealth(BaseModel):
    present: bool = Field(description="Whether the live path's landing store exists (false: \"no live data\").")
    message: str | None = Field(description="\"no live data\" and what to do, when there is none.")
    data_as_of: datetime | None = Field(description="The newest poll or charging-event time landed (UTC).")
    newest_poll_time: datetime | None
    newest_event_time: datetime | None
    age_s: float | None = Field(description="Seconds from data_as_of to now, on the live path's clock (a simulated "
                                "feed may run faster than the wall clock).")
    poll_age_s: float | None = Field(description="Seconds from the newest poll to now (live clock).")
    stale: bool | None = Field(description="age_s over stale_after_s (EV_LIVE_STALE_POLLS poll intervals).")
    stale_after_s: float
    clock_simulated: bool | None = Field(description="Whether the live clock is a simulated (accelerated) one.")
    now: datetime | None = Field(description="Now on the live clock.")
    landed_at: datetime | None = Field(description="When the last message was landed (wall clock, UTC).")
    last_seq: dict[str, int] = Field(description="The highest landed stream sequence per stream.")


class Health(BaseModel):
    status: Literal["ok", "degraded"] = Field(description="ok: every model has a champion, every feature set and "
                                              "the marts snapshot are there; degraded: something is missing. (Live "
                                              "data is optional: its absence or age does not degrade the service.)")
    models: dict[str, ModelHealth]
    snapshot: SnapshotHealth
    feature_sets: dict[str, bool]
    live: LiveHealth = Field(description="The age of the live data (see GET /kpi/status/now).")


class ModelMetadata(BaseModel):
    name: str
    version: str | None
    available: bool = Field(description="Whether a champion is loaded (false: the predict endpoint answers 503).")
    detail: dict[str, Any] | None = Field(
        description="Of the champion: run_id, trained_at, primary_metric, metrics (held-out test), baselines "
        "(baseline -> metrics on the same rows), beats_baselines, verdict, champion_gate, mlflow_run_url, "
        "mlflow_version_url, feature_set, lineage (asset -> data version), features.")


class Metadata(BaseModel):
    models: list[ModelMetadata]


class ReloadAnswer(BaseModel):
    models: dict[str, dict[str, Any]] = Field(description="Per model: version (served now), previous_version, "
                                              "changed, registry_version, error.")


service = APIRouter(tags=["service"])


@service.get("/health", response_model=Health, summary="Is the service ready?")
def health(request: Request) -> dict:
    settings: Settings = get_settings(request)
    store: C.ChampionStore = get_champions(request)
    models = {name: {"version": s.champion.version if s.champion else None, "registry_version": s.registry_version,
                     "checked_at": s.checked_at, "error": s.error} for name, s in store.status().items()}
    current = _snapshot_file(settings)
    feature_sets = {name: cache.present() for name, cache in request.app.state.features.all().items()}
    ok = all(m["version"] for m in models.values()) and current is not None and all(feature_sets.values())
    return {"status": "ok" if ok else "degraded", "models": models,
            "snapshot": {"present": current is not None, "file": current}, "feature_sets": feature_sets,
            "live": live_health(settings)}


def live_health(settings: Settings) -> dict:
    """The age of the live data landed by the live path, or "no live data"."""
    from ev_assets.lib.live import store

    limit = settings.live_stale_after_s
    empty = {"present": False, "data_as_of": None, "newest_poll_time": None, "newest_event_time": None,
             "age_s": None, "poll_age_s": None, "stale": None, "stale_after_s": limit, "clock_simulated": None,
             "now": None, "landed_at": None, "last_seq": {}}
    try:
        con = store.connect_reader(settings.live_dir)
    except store.NoLiveData as exc:
        return {**empty, "message": f"no live data ({exc})"}
    try:
        fresh = store.freshness(con)
    except sqlite3.Error as exc:  # a store being created: no tables yet
        return {**empty, "message": f"no live data (the landing store is not readable yet: {exc})"}
    finally:
        con.close()
    now = fresh.now()
    age = fresh.age_s(now)
    return {"present": True, "message": None if age is not None else "no live data landed yet",
            "data_as_of": fresh.data_as_of(), "newest_poll_time": fresh.newest_poll_time,
            "newest_event_time": fresh.newest_event_time, "age_s": age, "poll_age_s": fresh.poll_age_s(now),
            "stale": None if age is None else age > limit, "stale_after_s": limit,
            "clock_simulated": fresh.clock.simulated, "now": now, "landed_at": fresh.landed_at,
            "last_seq": fresh.last_seq}


@service.get("/metadata", response_model=Metadata, summary="What each model is, how good, and what it was built from")
def metadata(request: Request) -> dict:
    store: C.ChampionStore = get_champions(request)
    models = []
    for name in store.names:
        champion = store.get(name)
        models.append({"name": name, "version": champion.version if champion else None,
                       "available": champion is not None, "detail": _describe(champion)})
    return {"models": models}


_DESCRIPTIONS: dict[tuple[str, str, str], dict] = {}


def _describe(champion: C.Champion | None) -> dict | None:
    """Metadata per model version (it never changes), computed once."""
    if champion is None:
        return None
    key = (champion.name, champion.version, champion.run_id)
    if key not in _DESCRIPTIONS:
        _DESCRIPTIONS[key] = champion.describe()
    return _DESCRIPTIONS[key]


class ReloadRequest(BaseModel):
    """An empty JSON object: the admin routes take only JSON, which a cross-site form or `text/plain` POST is not."""


def admin_request(request: Request, x_admin_token: str | None = Header(
        default=None, description="The admin token (EV_ADMIN_TOKEN): required when the service is bound beyond "
        "loopback (EV_SERVE_HOST) or a token is configured.")) -> None:
    """An admin route needs a JSON body (415 otherwise) and, bound beyond loopback, the admin token (403)."""
    settings: Settings = get_settings(request)
    media_type = (request.headers.get("content-type") or "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise HTTPException(415, "admin routes take a JSON body (Content-Type: application/json), e.g. {}")
    if settings.admin_token is None:
        if not settings.serves_loopback_only:
            raise HTTPException(403, f"admin routes are off: the service is bound beyond loopback (EV_SERVE_HOST="
                                     f"{settings.serve_host}) and no EV_ADMIN_TOKEN is set")
    elif not hmac.compare_digest((x_admin_token or "").encode(), settings.admin_token.encode()):
        raise HTTPException(403, "admin routes need the admin token in the X-Admin-Token header")


ADMIN_RESPONSES = {403: {"description": "Bound beyond loopback without EV_ADMIN_TOKEN, or a missing / wrong "
                              "X-Admin-Token."},
                   415: {"description": "The body is not JSON (Content-Type: application/json)."}}


@service.post("/admin/reload", response_model=ReloadAnswer, dependencies=[Depends(admin_request)],
              responses=ADMIN_RESPONSES, summary="Look for new champions now (instead of waiting for the next poll)")
def reload_champions(request: Request, body: ReloadRequest) -> dict:
    return {"models": get_champions(request).refresh()}


def _snapshot_file(settings: Settings) -> str | None:
    current = snapshot.current(settings.snapshot_dir)
    return current.name if current else None


# --- error handlers ---------------------------------------------------------------------------------------------
def _problems(exc: RequestValidationError) -> list[dict]:
    """The validation errors without their `input` / `ctx` (which may hold NaN or bytes that JSON cannot carry)."""
    out = []
    for error in exc.errors():
        loc = [part if isinstance(part, (str, int)) else str(part) for part in error.get("loc", ())]
        out.append({"loc": loc, "msg": str(error.get("msg", "invalid")), "type": str(error.get("type", "value_error"))})
    return out


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = _problems(exc)
    if any(p["type"] == "json_invalid" for p in problems):
        message = "the request body is not valid JSON"
    else:
        message = "; ".join(f"{'.'.join(str(x) for x in p['loc'][1:] or p['loc'])}: {p['msg']}" for p in problems)
    return JSONResponse(status_code=422, content={"detail": problems, "message": message or "invalid request"})


BODY_PARSE_ERROR = "There was an error parsing the body"  # FastAPI's 400 for a body it cannot decode


async def http_error(request: Request, exc: StarletteHTTPException):
    """FastAPI answers a body it cannot even decode (not UTF-8) with a 400 of its own, while a body that decodes
    but is not JSON is a 422: both are malformed JSON, so both are the documented 422."""
    if exc.status_code == 400 and exc.detail == BODY_PARSE_ERROR:
        problem = {"loc": ["body"], "msg": "the request body is not valid JSON (UTF-8)", "type": "json_invalid"}
        return JSONResponse(status_code=422, content={"detail": [problem], "message": problem["msg"]})
    return await http_exception_handler(request, exc)


async def serving_error(request: Request, exc: serving.ServingError) -> JSONResponse:
    return JSONResponse(status_code=exc.status_code, content={"detail": exc.message, **exc.extra})


async def no_snapshot(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=503, content={"detail": str(exc)})


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """Last resort (a bug): logged with its traceback, answered with a message instead of a bare 500 page."""
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse(status_code=500, content={"detail": f"internal error ({type(exc).__name__}); see the "
                                                            "service log"})


# --- the app ----------------------------------------------------------------------------------------------------
def create_app(settings: Settings | None = None) -> FastAPI:
    """The service over `settings.data_dir` (default: `Settings.from_env()`). Champions are loaded when the app
    starts (its lifespan: `with TestClient(app)` in tests) and looked for again every `settings.model_reload_s`."""
    settings = settings or Settings.from_env()
    store = C.ChampionStore(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        store.start()
        try:
            yield
        finally:
            store.stop()
            if app.state.snapshot is not None:
                with contextlib.suppress(Exception):
                    app.state.snapshot.close()

    # /docs and /redoc serve Swagger UI and ReDoc from the package, not from a CDN: they work offline
    app = FastAPIOffline(title="ev-assets service", version="1.0", description=DESCRIPTION, lifespan=lifespan,
                          openapi_tags=kpis.OPENAPI_TAGS)
    app.state.settings = settings
    app.state.champions = store
    app.state.features = serving.FeatureSets(settings)
    app.state.snapshot = snapshot.Reader(settings.snapshot_dir)
    app.state.online = serving.OnlineFeatures(settings.live_dir, app.state.snapshot)
    app.add_exception_handler(snapshot.NoSnapshot, no_snapshot)

    app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                       allow_headers=["*"], expose_headers=["X-Request-ID", "X-Data-As-Of"])
    # outermost (added last): a foreign Host, then an oversized request, are refused before anything else runs
    app.add_middleware(guard.RequestLimits, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(guard.HostCheck, hosts=settings.trusted_hosts)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(serving.ServingError, serving_error)
    app.add_exception_handler(Exception, unexpected_error)

    _document_data_as_of(predict.router, kpis.router, live.router)
    app.include_router(service)
    app.include_router(predict.router)
    app.include_router(kpis.router)
    app.include_router(live.router)
    app.include_router(plan.router)
    return app


DATA_AS_OF_RULE = {
    "/kpi/status/now": "Freshness: `data_as_of` and the X-Data-As-Of header give the newest live poll (or event) "
                       "time the answer comes from, with its age on the live clock.",
    "/kpi": kpis.DATA_AS_OF_RULE,
    "/predict/availability": "Freshness: `data_as_of` and the X-Data-As-Of header give the poll time of the features "
                             "used.",
    "/predict": "Freshness: `data_as_of` and the X-Data-As-Of header give the newest time of the data the answer "
                "used: the station's latest observed day (utilization), the latest usable reading (plug-in, energy "
                "to full), the user's newest earlier session, else the plug-in time (session).",
}


def _document_data_as_of(*routers: APIRouter) -> None:
    """Every KPI and prediction route's description ends with the rule its `data_as_of` follows (once)."""
    from fastapi.routing import APIRoute

    for router in routers:
        for route in router.routes:
            if not isinstance(route, APIRoute):
                continue
            rule = next((text for prefix, text in DATA_AS_OF_RULE.items() if route.path.startswith(prefix)), None)
            if rule and rule not in (route.description or ""):
                route.description = f"{route.description.rstrip()}\n\n{rule}" if route.description else rule
