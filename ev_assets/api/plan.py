"""`POST /plan`: the least-cost charging schedule for a plugged-in vehicle, beside charging at once on plug-in.

The request carries the numbers; the service's forecasts can supply two of them: the plug-in forecast
(`POST /predict/plugin`, the probability that the vehicle is plugged in) gives `plugged_in_probability`, and the
energy-to-full forecast (`POST /predict/energy-to-full`, percentage points of the battery still missing) gives
`energy_to_full_pct`. The optimisation itself is `ev_assets.lib.plan`.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Annotated, Any, Callable, Coroutine, Literal

from fastapi import APIRouter, Body, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import (AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field,
                      ValidationInfo, field_validator, model_validator)

from pydantic_core import PydanticUndefined

from ev_assets.lib import plan as planlib

MAX_SLOTS = 672  # a week of 15-minute slots
MIN_YEAR, MAX_YEAR = 1970, 2200


class _JsonSafeErrorsRoute(APIRoute):
    """Validation errors echo the offending input; a number like 1e400 or NaN parses to a float JSON cannot carry,
    and the default 422 handler would then fail with a 500. Re-raise the same errors with such inputs as text."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def json_safe(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                raise RequestValidationError(_json_safe(list(exc.errors())), body=exc.body) from None

        return json_safe


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_json_safe(v) for v in value)
    return value


router = APIRouter(tags=["plan"], route_class=_JsonSafeErrorsRoute)


def _iso_text(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date-time string with a time zone, e.g. 2025-01-06T18:00:00+01:00")
    return value


def _sane_year(value: datetime) -> datetime:
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"must lie between the years {MIN_YEAR} and {MAX_YEAR}")
    return value


def _number(default: Any = PydanticUndefined, **limits: Any) -> Any:
    """A JSON number (not a string, not true/false), finite, within `limits`."""
    return Field(default, strict=True, allow_inf_nan=False, **limits)


Instant = Annotated[AwareDatetime, BeforeValidator(_iso_text), AfterValidator(_sane_year)]
Price = Annotated[float, _number(ge=-1000, le=1000)]
Kw = Annotated[float, _number(ge=0, le=1000)]
Probability = Annotated[float, _number(ge=0, le=1)]


class Quantiles(BaseModel):
    """An interval forecast: P10 <= P50 <= P90."""

    model_config = ConfigDict(extra="forbid")

    p10: float = _number(ge=0, le=1000, description="10th percentile.")
    p50: float = _number(ge=0, le=1000, description="Median (the point forecast).")
    p90: float = _number(ge=0, le=1000, description="90th percentile.")

    @model_validator(mode="after")
    def _ordered(self) -> "Quantiles":
        if not self.p10 <= self.p50 <= self.p90:
            raise ValueError(f"the quantiles must be ordered p10 <= p50 <= p90 (got {self.p10:g}, {self.p50:g}, "
                             f"{self.p90:g})")
        return self


class PlanRequest(BaseModel):
    """A charging request: the slots with their prices, the charger, when the vehicle is plugged in, how much
    energy it needs. Every per-slot list has one value per price."""

    model_config = ConfigDict(extra="forbid")

    start: Instant = Field(description="Start of the first slot: ISO 8601 with a time zone.")
    slot_minutes: int = Field(15, strict=True, ge=1, le=240, description="Length of every slot in minutes "
                              "(1..240; usually 15, 30 or 60).")
    prices: list[Price] = Field(min_length=1, max_length=MAX_SLOTS, description=(
        f"Price per kWh drawn from the grid in each slot (1..{MAX_SLOTS} slots, -1000..1000 each). Any currency: "
        "the costs come back in it. Negative prices are allowed."))
    charger_kw: float = _number(gt=0, le=1000, description="The charger's (or the car's) maximum power, kW.")
    grid_limit_kw: list[Kw] | None = Field(None, description=(
        "Optional: the most power the grid connection can give the car in each slot, kW (0..1000)."))
    pv_kw: list[Kw] | None = Field(None, description=(
        "Optional: on-site PV power available to the car in each slot, kW (0..1000). PV energy is free."))
    plugged_in: list[Annotated[bool, Field(strict=True)]] | None = Field(None, description=(
        "When the vehicle is plugged in: true/false per slot. Give this, or `plugged_in_probability`, or "
        "`plug_in_at`/`plug_out_at`, or none of them (plugged in for the whole horizon)."))
    plugged_in_probability: list[Probability] | None = Field(None, description=(
        "When the vehicle is plugged in, as a probability per slot (0..1), for example from the service's plug-in "
        "forecast (`POST /predict/plugin`). Slots at or above `min_plugged_in_probability` count as plugged in."))
    min_plugged_in_probability: float = _number(
        0.5, ge=0, le=1, description="Threshold for `plugged_in_probability` (default 0.5).")
    plug_in_at: Instant | None = Field(None, description=(
        "When the vehicle is plugged in (ISO 8601 with a time zone); default: the start of the first slot. "
        "A slot only partly covered is available for that share of its length."))
    plug_out_at: Instant | None = Field(None, description=(
        "When the vehicle leaves (ISO 8601 with a time zone); default: the end of the last slot."))
    capacity_kwh: float | None = _number(None, gt=0, le=300, description="Usable battery capacity, kWh (0..300].")
    soc_pct: float | None = _number(None, ge=0, le=100, description="Current state of charge, % (0..100).")
    target_soc_pct: float | None = _number(None, ge=0, le=100, description=(
        "State of charge to reach, % (default 100). With `capacity_kwh` and `soc_pct` it sets the energy need."))
    energy_kwh: float | None = _number(None, ge=0, le=300, description=(
        "The energy the battery needs, kWh (0..300): overrides the need computed from the state of charge."))
    energy_to_full_pct: float | None = _number(None, ge=0, le=100, description=(
        "The energy the battery needs to be full, in percentage points of `capacity_kwh` (0..100), for example "
        "from the service's energy-to-full forecast (`POST /predict/energy-to-full`)."))
    efficiency: float = _number(1.0, ge=0.5, le=1, description=(
        "Share of the drawn energy that reaches the battery (0.5..1, default 1)."))
    energy_kwh_forecast: Quantiles | None = Field(None, description=(
        "The energy need as an interval forecast, kWh (P10/P50/P90, e.g. the session energy forecast): the plan "
        "takes the quantile `plan_on` names. Instead of the other energy inputs."))
    plugged_in_hours_forecast: Quantiles | None = Field(None, description=(
        "How long the vehicle stays plugged in from `plug_in_at` (default: the start), hours, as an interval "
        "forecast (P10/P50/P90, e.g. the session duration forecast): the plan takes the quantile `plan_on` names. "
        "Instead of `plug_out_at`, `plugged_in` and `plugged_in_probability`."))
    plan_on: Literal["cautious", "p50"] = Field("cautious", description=(
        "Which quantiles of the forecasts the plan rests on: `cautious` (default) the P90 energy need and the P10 "
        "plugged-in time, so that the car is charged in all but about 1 case in 10 of each; `p50` the medians."))

    @field_validator("grid_limit_kw", "pv_kw", "plugged_in", "plugged_in_probability")
    @classmethod
    def _one_value_per_slot(cls, value: list | None, info: ValidationInfo) -> list | None:
        prices = info.data.get("prices")
        if value is not None and prices is not None and len(value) != len(prices):
            raise ValueError(f"{info.field_name} has {len(value)} value(s) but prices has {len(prices)}: "
                             "give one value per slot")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "PlanRequest":
        ways = [name for name, given in (("plugged_in", self.plugged_in is not None),
                                         ("plugged_in_probability", self.plugged_in_probability is not None),
                                         ("plug_in_at/plug_out_at", self.plug_in_at or self.plug_out_at)) if given]
        if len(ways) > 1:
            raise ValueError(f"give only one of plugged_in, plugged_in_probability, plug_in_at/plug_out_at "
                             f"(got {', '.join(ways)})")
        if self.plugged_in_hours_forecast is not None and (self.plug_out_at or self.plugged_in is not None
                                                           or self.plugged_in_probability is not None):
            raise ValueError("give plugged_in_hours_forecast or plug_out_at/plugged_in/plugged_in_probability, "
                             "not both")
        if self.plug_in_at and self.plug_out_at and self.plug_out_at <= self.plug_in_at:
            raise ValueError("plug_out_at must be after plug_in_at")
        self._energy_need()  # raises on a missing or contradictory need
        return self

    def _energy_need(self) -> float:
        if self.energy_kwh_forecast is not None:
            if any(v is not None for v in (self.energy_kwh, self.energy_to_full_pct, self.soc_pct,
                                           self.target_soc_pct)):
                raise ValueError("give energy_kwh_forecast or energy_kwh/energy_to_full_pct/soc_pct/target_soc_pct, "
                                 "not both")
            return planlib.quantile_of(self.energy_kwh_forecast.model_dump(), self.plan_on, "energy")[0]
        if self.energy_kwh is not None:
            if self.energy_to_full_pct is not None or self.target_soc_pct is not None:
                raise ValueError("give energy_kwh, or energy_to_full_pct, or target_soc_pct: not more than one")
            if self.capacity_kwh is not None and self.soc_pct is not None:
                room = self.capacity_kwh * (100.0 - self.soc_pct) / 100.0
                if self.energy_kwh > room + 1e-9:
                    raise ValueError(f"energy_kwh ({self.energy_kwh:g}) is more than the battery can take: "
                                     f"capacity_kwh x (100 - soc_pct) / 100 = {room:g} kWh")
            return self.energy_kwh
        if self.energy_to_full_pct is not None:
            if self.capacity_kwh is None:
                raise ValueError("energy_to_full_pct needs capacity_kwh (percentage points of the battery)")
            if self.soc_pct is not None or self.target_soc_pct is not None:
                raise ValueError("give energy_to_full_pct or soc_pct/target_soc_pct, not both")
            return self.capacity_kwh * self.energy_to_full_pct / 100.0
        if self.capacity_kwh is None or self.soc_pct is None:
            raise ValueError("the energy need is missing: give energy_kwh, or capacity_kwh with soc_pct (and "
                             "optionally target_soc_pct), or capacity_kwh with energy_to_full_pct")
        return planlib.energy_need(self.capacity_kwh, self.soc_pct,
                                   100.0 if self.target_soc_pct is None else self.target_soc_pct)

    def _plug_out(self) -> datetime | None:
        if self.plugged_in_hours_forecast is None:
            return self.plug_out_at
        hours = planlib.quantile_of(self.plugged_in_hours_forecast.model_dump(), self.plan_on, "stay")[0]
        return (self.plug_in_at or self.start) + timedelta(hours=hours)

    def basis(self) -> str:
        """Which inputs, and which quantiles of the forecasts, the plan rests on, in words."""
        if self.energy_kwh_forecast is not None:
            value, name = planlib.quantile_of(self.energy_kwh_forecast.model_dump(), self.plan_on, "energy")
            energy = f"energy need: the {name} of energy_kwh_forecast ({value:g} kWh)"
        elif self.energy_kwh is not None:
            energy = "energy need: energy_kwh"
        elif self.energy_to_full_pct is not None:
            energy = "energy need: capacity_kwh x energy_to_full_pct"
        else:
            energy = "energy need: capacity_kwh with soc_pct and target_soc_pct"
        if self.plugged_in_hours_forecast is not None:
            hours, name = planlib.quantile_of(self.plugged_in_hours_forecast.model_dump(), self.plan_on, "stay")
            stay = (f"plugged in: from {'plug_in_at' if self.plug_in_at else 'the start'} for the {name} of "
                    f"plugged_in_hours_forecast ({hours:g} h, until {self._plug_out().isoformat()})")
        elif self.plugged_in is not None:
            stay = "plugged in: plugged_in"
        elif self.plugged_in_probability is not None:
            stay = f"plugged in: plugged_in_probability >= {self.min_plugged_in_probability:g}"
        elif self.plug_in_at or self.plug_out_at:
            stay = "plugged in: plug_in_at/plug_out_at"
        else:
            stay = "plugged in: the whole horizon"
        return f"{energy}; {stay}"

    def problem(self) -> planlib.Problem:
        n = len(self.prices)
        if self.plugged_in is not None:
            share = [1.0 if p else 0.0 for p in self.plugged_in]
        elif self.plugged_in_probability is not None:
            share = [1.0 if p >= self.min_plugged_in_probability else 0.0 for p in self.plugged_in_probability]
        else:
            share = planlib.plugged_share_between(self.start, self.slot_minutes, n, self.plug_in_at,
                                                  self._plug_out())
        soc = self.soc_pct
        if soc is None and self.energy_to_full_pct is not None:
            soc = 100.0 - self.energy_to_full_pct
        return planlib.Problem(start=self.start, slot_minutes=self.slot_minutes, prices=self.prices,
                               charger_kw=self.charger_kw, energy_kwh=self._energy_need(), plugged_share=share,
                               grid_limit_kw=self.grid_limit_kw, pv_kw=self.pv_kw, efficiency=self.efficiency,
                               capacity_kwh=self.capacity_kwh, soc_pct=soc)


class PlanSlot(BaseModel):
    """One slot in which the vehicle charges."""

    start: datetime
    end: datetime
    kw: float = Field(description="Mean power drawn over the slot, kW.")
    kwh: float = Field(description="Energy drawn in the slot (grid + PV), kWh.")
    grid_kwh: float = Field(description="Of which from the grid (paid), kWh.")
    pv_kwh: float = Field(description="Of which from on-site PV (free), kWh.")
    price: float = Field(description="The slot's price per kWh.")
    cost: float = Field(description="price x grid_kwh.")
    soc_pct: float | None = Field(description="State of charge at the end of the slot, when the battery is known.")


class PlanResponse(BaseModel):
    feasible: bool = Field(description="False when the plugged-in time x power cannot deliver the energy need.")
    message: str = Field(description="The answer in plain words.")
    plugged_in_slots: int = Field(description="Slots in which the vehicle is plugged in (for any share of it).")
    energy_needed_kwh: float = Field(description="Energy the battery needs, kWh.")
    max_energy_kwh: float = Field(description="The most that can reach the battery while plugged in, kWh.")
    shortfall_kwh: float = Field(description="energy_needed_kwh - max_energy_kwh when infeasible, else 0.")
    energy_kwh: float = Field(description="Energy drawn by the schedule, kWh (energy_needed_kwh / efficiency "
                                          "when feasible).")
    cost: float = Field(description="Cost of the schedule (grid energy x price).")
    immediate_cost: float = Field(description="Cost of charging as fast as allowed from the first plugged-in "
                                              "slot until the need is met.")
    saving: float = Field(description="immediate_cost - cost, never negative.")
    saving_pct: float | None = Field(description="saving as % of immediate_cost; null when that is not positive.")
    schedule: list[PlanSlot] = Field(description="The least-cost schedule: only the slots that charge, in order. "
                                                 "When infeasible, the best partial one (everything possible).")
    immediate_schedule: list[PlanSlot] = Field(description="The charge-at-once schedule it is compared with.")
    basis: str = Field(description="Which inputs the plan rests on, and with forecasts which quantile of each "
                                   "(e.g. the P90 of energy_kwh_forecast and the P10 of plugged_in_hours_forecast).")


class PlanValidationProblem(BaseModel):
    loc: list[str | int] = Field(description="Where: [\"body\", <field>, <index>...].")
    msg: str = Field(description="What is wrong, in words.")
    type: str = Field(description="Pydantic's error type, e.g. float_type, less_than_equal, value_error.")


class PlanValidationErrors(BaseModel):
    """FastAPI's 422 body (each item may carry more keys, such as the offending `input`)."""

    detail: list[PlanValidationProblem]


class PlanBadRequest(BaseModel):
    detail: str = Field(description="What is wrong, in words.")


_EXAMPLES = {
    "night tariff": {
        "summary": "Cheap night hours, plugged in until 07:00, SOC known",
        "value": {"start": "2025-01-06T18:00:00+01:00", "slot_minutes": 60,
                  "prices": [0.42, 0.40, 0.36, 0.30, 0.24, 0.21, 0.20, 0.20, 0.21, 0.24, 0.30, 0.38, 0.45],
                  "charger_kw": 11, "plug_out_at": "2025-01-07T07:00:00+01:00",
                  "capacity_kwh": 60, "soc_pct": 35, "target_soc_pct": 80},
    },
    "from the forecasts": {
        "summary": "Plug-in probability and energy-to-full from the service's forecasts",
        "value": {"start": "2025-01-06T18:00:00Z", "slot_minutes": 30,
                  "prices": [0.40, 0.38, 0.30, 0.22, 0.18, 0.18],
                  "plugged_in_probability": [0.2, 0.7, 0.9, 0.95, 0.95, 0.9],
                  "charger_kw": 7.4, "capacity_kwh": 50, "energy_to_full_pct": 20},
    },
    "cautious, from interval forecasts": {
        "summary": "Session energy and duration forecasts as P10/P50/P90: plan on the P90 need and the P10 stay",
        "value": {"start": "2025-01-06T18:00:00+01:00", "slot_minutes": 60,
                  "prices": [0.42, 0.40, 0.36, 0.30, 0.24, 0.21, 0.20, 0.20, 0.21, 0.24, 0.30, 0.38, 0.45],
                  "charger_kw": 11, "energy_kwh_forecast": {"p10": 6.0, "p50": 11.5, "p90": 19.0},
                  "plugged_in_hours_forecast": {"p10": 4.0, "p50": 9.5, "p90": 12.0}, "plan_on": "cautious"},
    },
    "PV and grid limit": {
        "summary": "Free PV at midday, a 4 kW grid limit, an explicit energy need",
        "value": {"start": "2025-06-02T09:00:00+02:00", "slot_minutes": 60,
                  "prices": [0.30, 0.28, 0.25, 0.25, 0.27, 0.32],
                  "pv_kw": [1.0, 3.0, 5.0, 5.5, 4.0, 1.5], "grid_limit_kw": [4, 4, 4, 4, 4, 4],
                  "charger_kw": 11, "energy_kwh": 25},
    },
}


def _r(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(x, digits) + 0.0  # + 0.0: no "-0.0" in the answer


def _slots(slots: list[planlib.SlotPlan]) -> list[PlanSlot]:
    return [PlanSlot(start=s.start, end=s.end, kw=_r(s.kw), kwh=_r(s.kwh), grid_kwh=_r(s.grid_kwh),
                     pv_kwh=_r(s.pv_kwh), price=s.price, cost=_r(s.cost), soc_pct=_r(s.soc_pct, 2))
            for s in slots]


@router.post(
    "/plan",
    response_model=PlanResponse,
    summary="Least-cost charging schedule",
    description=(
        "Plans when to charge a plugged-in vehicle so that it gets the energy it needs at least cost: a linear "
        "programme (SciPy's HiGHS) over the given price slots, within the charger's power, an optional grid limit "
        "and free on-site PV, and only while the vehicle is plugged in. The need is met exactly (never more, even "
        "at negative prices); among equally cheap plans the earliest is chosen. The answer compares the cost with "
        "charging as fast as allowed from plug-in on and shows the saving (never negative).\n\n"
        "**Where the numbers come from.** When the vehicle is plugged in: `plugged_in` per slot, or "
        "`plug_in_at`/`plug_out_at`, or `plugged_in_probability` per slot from the plug-in forecast "
        "(`POST /predict/plugin`). The energy need: `energy_kwh`, or `capacity_kwh` with `soc_pct` (and "
        "`target_soc_pct`, default 100), or `capacity_kwh` with `energy_to_full_pct` from the energy-to-full "
        "forecast (`POST /predict/energy-to-full`, percentage points of the battery). With interval forecasts "
        "(`energy_kwh_forecast`, `plugged_in_hours_forecast`: P10/P50/P90) the plan rests by default on the P90 "
        "energy need and the P10 plugged-in time (`plan_on: cautious`), or on the medians (`plan_on: p50`); "
        "`basis` says which it used.\n\n"
        "**Not enough plugged-in time** is an answer, not an error: 200 with `feasible: false`, the most that can "
        "be delivered, the shortfall, and the best partial schedule."
    ),
    responses={
        200: {"description": "The schedule (or, with `feasible: false`, the shortfall and the best partial "
                             "schedule)."},
        400: {"description": "The body could not be read as JSON (for example not UTF-8).",
              "model": PlanBadRequest},
        422: {"description": "Invalid request: a field missing, of the wrong type (strings, booleans and "
                             "non-finite numbers are not numbers), out of range, a per-slot list of another "
                             "length than `prices`, or contradictory inputs. `detail` names the field.",
              "model": PlanValidationErrors},
    },
)
def plan(request: Annotated[PlanRequest, Body(openapi_examples=_EXAMPLES)]) -> PlanResponse:
    problem = request.problem()
    result = planlib.solve(problem)
    return PlanResponse(
        feasible=result.feasible, message=result.message,
        plugged_in_slots=sum(1 for s in (problem.plugged_share or []) if s > 0),
        energy_needed_kwh=_r(result.energy_needed_kwh), max_energy_kwh=_r(result.max_energy_kwh),
        shortfall_kwh=_r(result.shortfall_kwh), energy_kwh=_r(result.energy_kwh), cost=_r(result.cost),
        immediate_cost=_r(result.immediate_cost), saving=_r(result.saving), saving_pct=_r(result.saving_pct, 2),
        schedule=_slots(result.schedule), immediate_schedule=_slots(result.immediate_schedule),
        basis=request.basis(),
    )
