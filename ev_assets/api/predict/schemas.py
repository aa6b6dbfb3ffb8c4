"""The bodies of `POST /predict/...`: requests (strict: ISO-8601 times in 2000..2099 as the patterns say, no unknown
field) and responses, with the error answers each endpoint documents."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from ev_assets.api.responses import ErrorBody, error_response

Date = date  # (a field below is called `date`)

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


class StaleBody(ErrorBody):
    stale: bool = Field(description="Always true.")
    requested_at: datetime = Field(description="The `at` of the request (UTC).")
    data_as_of: str = Field(description="The poll time of the newest features at or before `at` (ISO-8601 UTC).")
    age_s: float = Field(description="Seconds from data_as_of to requested_at.")
    newest_data_at: datetime = Field(description="The newest poll time of the station (UTC), live or feature set.")
    stale_after_s: float = Field(description="The staleness limit in seconds.")


E404 = error_response("Unknown station or user (the message says which).")
E503 = error_response("No champion for the model yet, no feature set yet, a feature set that does not fit the champion, "
              "the model failing on the row, or a prediction log that cannot be written: the message says which "
              "(`make demo` builds everything).")
E409 = {"model": StaleBody, "description": "`at` is beyond the newest data: the station's newest poll at or "
        "before `at` is older than the staleness limit (EV_LIVE_STALE_POLLS poll intervals). The answer names the "
        "data's age and its newest time; old features are never used silently."}
E422 = {"description": "Invalid request: a field out of range or of the wrong type, an unknown field, or a body "
        "that is not valid JSON (or not UTF-8). `detail` lists each problem (loc, msg, type); `message` sums them up."}
ERRORS = {404: E404, 422: E422, 503: E503}
