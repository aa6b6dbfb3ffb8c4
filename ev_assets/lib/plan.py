"""The charging plan: when to charge a plugged-in vehicle so that it gets the energy it needs at least cost.

A linear programme over equal time slots, solved with SciPy's HiGHS. In each slot t where the vehicle is plugged
in (for a share f_t of the slot), it may draw grid energy g_t (paid at the slot's price per kWh) and on-site PV
energy s_t (free), in kWh:

    minimise    sum_t price_t * g_t
    subject to  0 <= g_t <= min(charger_kw, grid_limit_kw_t) * f_t * h      (h: slot length in hours)
                0 <= s_t <= pv_kw_t * f_t * h
                g_t + s_t <= charger_kw * f_t * h
                efficiency * sum_t (g_t + s_t) = energy need                  (the need is met exactly)

The need is an equality, not a lower bound: with negative prices the plan takes the paid-for energy in the most
negative slots but never charges more than was asked for (the battery has no room for more, and a target SOC is
a target). Among plans of equal cost it picks the one that charges earliest (a flat tariff charges at once, like a
plain charger): a tie-break cost per slot index, too small to change the order of any two distinct prices.

Baseline ("immediate"): charge as fast as allowed from the first plugged-in slot until the need is met (PV first,
as a charger behind the meter would). It is a feasible point of the programme, so the plan never costs more; the
answer checks that anyway and falls back to the baseline if the solver ever fails.

When the plugged-in time x power cannot deliver the need, the answer says so (`feasible` False, the most that can
be delivered and the shortfall) and the schedule is the best partial one: every plugged-in slot at its maximum,
cheapest source first.

Not modelled: power tapering near a full battery, battery losses beyond one charging efficiency, selling energy
back. Prices, kW and kWh are whatever unit the caller uses (costs come back in the prices' currency).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Sequence

import numpy as np

# Which quantiles of an interval forecast a plan rests on: the median, or the cautious pair (a high energy need and
# a short stay, so that the car is charged in all but ~1 case in 10 of each).
PLAN_ON = {"p50": ("p50", "p50"), "cautious": ("p90", "p10")}

# Energies below this (kWh) are solver noise, not charging.
EPS_KWH = 1e-9
# A need below this (kWh, one watt-hour's thousandth) is nothing to charge.
MIN_NEED_KWH = 1e-6


@dataclass(frozen=True)
class Problem:
    """One charging request, in slots of equal length starting at `start`.

    `plugged_share[t]` is the share of slot t (0..1) the vehicle is plugged in (None: the whole horizon);
    `grid_limit_kw[t]` caps the power from the grid in slot t (None: only the charger limits it); `pv_kw[t]` is
    free on-site PV power available to the car in slot t. `energy_kwh` is the energy the battery needs, and
    `efficiency` the share of the drawn energy that reaches it.
    """

    start: datetime
    slot_minutes: int
    prices: Sequence[float]
    charger_kw: float
    energy_kwh: float
    plugged_share: Sequence[float] | None = None
    grid_limit_kw: Sequence[float] | None = None
    pv_kw: Sequence[float] | None = None
    efficiency: float = 1.0
    # Battery, only to report the SOC reached after each slot (both or neither).
    capacity_kwh: float | None = None
    soc_pct: float | None = None


@dataclass(frozen=True)
class SlotPlan:
    index: int
    start: datetime
    end: datetime
    kw: float  # mean power drawn over the slot
    kwh: float  # drawn from the charger (grid + PV)
    grid_kwh: float
    pv_kwh: float
    price: float
    cost: float  # price * grid_kwh
    soc_pct: float | None  # state of charge at the end of the slot, when the battery is known


@dataclass(frozen=True)
class Plan:
    feasible: bool
    energy_needed_kwh: float  # into the battery
    max_energy_kwh: float  # the most that can reach the battery while plugged in
    shortfall_kwh: float
    energy_kwh: float  # drawn by the plan's schedule
    cost: float
    immediate_cost: float
    saving: float
    saving_pct: float | None  # of the immediate cost; None when that is not positive
    schedule: list[SlotPlan]  # only the slots that charge
    immediate_schedule: list[SlotPlan]
    solver: str  # "highs", "none" (nothing to optimise) or "baseline" (fallback)
    message: str = field(default="")


def energy_need(capacity_kwh: float, soc_pct: float, target_soc_pct: float = 100.0) -> float:
    """kWh the battery needs to go from `soc_pct` to `target_soc_pct` (0 when it is already there)."""
    return max(0.0, capacity_kwh * (target_soc_pct - soc_pct) / 100.0)


def quantile_of(forecast: dict[str, float], plan_on: str, what: str) -> tuple[float, str]:
    """(value, name) of the quantile of `forecast` ({"p10", "p50", "p90"}) a plan rests on: for `plan_on` "p50"
    the median; for "cautious" the P90 of an energy need (`what` "energy") and the P10 of a stay ("stay")."""
    energy, stay = PLAN_ON[plan_on]
    name = energy if what == "energy" else stay
    return float(forecast[name]), name.upper()


def slot_bounds(start: datetime, slot_minutes: int, n_slots: int) -> list[tuple[datetime, datetime]]:
    step = timedelta(minutes=slot_minutes)
    return [(start + i * step, start + (i + 1) * step) for i in range(n_slots)]


def plugged_share_between(start: datetime, slot_minutes: int, n_slots: int,
                          plug_in_at: datetime | None = None, plug_out_at: datetime | None = None) -> list[float]:
    """Share of each slot between `plug_in_at` (None: the start) and `plug_out_at` (None: the end)."""
    slot_s = slot_minutes * 60.0
    lo = 0.0 if plug_in_at is None else (plug_in_at - start).total_seconds()
    hi = n_slots * slot_s if plug_out_at is None else (plug_out_at - start).total_seconds()
    shares = []
    for i in range(n_slots):
        overlap = min(hi, (i + 1) * slot_s) - max(lo, i * slot_s)
        shares.append(min(1.0, max(0.0, overlap / slot_s)))
    return shares


def _caps(problem: Problem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per slot, in kWh: the most from the grid, the most from PV, and the most the charger takes."""
    n = len(problem.prices)
    hours = problem.slot_minutes / 60.0
    share = np.ones(n) if problem.plugged_share is None else np.clip(np.asarray(problem.plugged_share, float), 0, 1)
    charger = problem.charger_kw * share * hours
    grid = charger.copy() if problem.grid_limit_kw is None else np.minimum(
        charger, np.asarray(problem.grid_limit_kw, float) * share * hours)
    pv = np.zeros(n) if problem.pv_kw is None else np.minimum(charger, np.asarray(problem.pv_kw, float) * share * hours)
    return grid, pv, charger


def _slot_max(grid: np.ndarray, pv: np.ndarray, charger: np.ndarray) -> np.ndarray:
    return np.minimum(charger, grid + pv)


def _immediate(need_drawn: float, grid: np.ndarray, pv: np.ndarray, charger: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """Charge as fast as allowed from the first plugged-in slot until `need_drawn` kWh are drawn; PV first."""
    slot_max = _slot_max(grid, pv, charger)
    g, s = np.zeros_like(grid), np.zeros_like(pv)
    left = need_drawn
    for t in range(len(grid)):
        if left <= EPS_KWH:
            break
        take = min(slot_max[t], left)
        s[t] = min(pv[t], take)
        g[t] = take - s[t]
        left -= take
    return g, s


def _everything(prices: np.ndarray, grid: np.ndarray, pv: np.ndarray, charger: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Every slot at its maximum, the cheaper source first (PV unless the grid price is negative)."""
    slot_max = _slot_max(grid, pv, charger)
    paid_first = prices < 0
    g = np.where(paid_first, np.minimum(grid, slot_max), slot_max - np.minimum(pv, slot_max))
    return g, slot_max - g


def _solve_lp(prices: np.ndarray, grid: np.ndarray, pv: np.ndarray, charger: np.ndarray, need_drawn: float
              ) -> tuple[np.ndarray, np.ndarray] | None:
    """The least-cost (g, s) drawing exactly `need_drawn` kWh, the earliest among equal costs; None on failure."""
    from scipy.optimize import linprog
    from scipy.sparse import csr_matrix, hstack, identity

    idx = np.flatnonzero(_slot_max(grid, pv, charger) > 0)  # only slots where something can be drawn
    k = len(idx)
    if k == 0:
        return None
    has_pv = bool(pv[idx].max() > 0)
    c = np.concatenate([prices[idx], np.zeros(k)])
    c_order = c + _tie_break(prices[idx], has_pv) * np.tile(np.arange(k, dtype=float), 2)
    bounds = [(0.0, float(b)) for b in np.concatenate([grid[idx], pv[idx]])]
    try:
        result = linprog(c_order, A_ub=hstack([identity(k), identity(k)], format="csr"), b_ub=charger[idx],
                         A_eq=csr_matrix(np.ones((1, 2 * k))), b_eq=np.array([need_drawn]), bounds=bounds,
                         method="highs")
    except (ValueError, ArithmeticError):  # the caller falls back to charging at once
        return None
    if result.status != 0 or result.x is None or not np.all(np.isfinite(result.x)):
        return None
    g, s = np.zeros_like(grid), np.zeros_like(pv)
    g[idx], s[idx] = result.x[:k], result.x[k:]
    return _clean(g, grid), _clean(s, pv)


def _tie_break(prices: np.ndarray, has_pv: bool) -> float:
    """A cost per kWh and slot index small enough to keep the order of all distinct prices (PV counts as 0).

    The optimum of this programme depends only on the order of the sources' costs, so a perturbation that keeps
    that order and ranks equal costs by time returns an exact optimum that charges as early as possible.
    """
    values = np.unique(np.concatenate([prices, [0.0]]) if has_pv else prices)
    gap = float(np.diff(values).min()) if len(values) > 1 else np.inf
    return min(1e-6, gap / (4.0 * len(prices)))


def _clean(x: np.ndarray, cap: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, cap)
    x[x < EPS_KWH] = 0.0
    return x


def _schedule(problem: Problem, g: np.ndarray, s: np.ndarray) -> list[SlotPlan]:
    prices = np.asarray(problem.prices, float)
    hours = problem.slot_minutes / 60.0
    bounds = slot_bounds(problem.start, problem.slot_minutes, len(prices))
    battery = problem.capacity_kwh is not None and problem.soc_pct is not None and problem.capacity_kwh > 0
    stored = 0.0
    out = []
    for t in range(len(prices)):
        kwh = float(g[t] + s[t])
        stored += kwh * problem.efficiency
        if kwh <= EPS_KWH:
            continue
        soc = None
        if battery:
            soc = min(100.0, problem.soc_pct + 100.0 * stored / problem.capacity_kwh)
        out.append(SlotPlan(index=t, start=bounds[t][0], end=bounds[t][1], kw=kwh / hours, kwh=kwh,
                            grid_kwh=float(g[t]), pv_kwh=float(s[t]), price=float(prices[t]),
                            cost=float(prices[t] * g[t]), soc_pct=soc))
    return out


def _money(x: float) -> str:
    return f"{x:.2f} (a credit)" if x < -5e-3 else f"{abs(x):.2f}" if abs(x) < 5e-3 else f"{x:.2f}"


def solve(problem: Problem) -> Plan:
    """The least-cost schedule meeting `problem.energy_kwh` while plugged in, beside charging at once on plug-in.

    Never raises for a well-formed problem: an impossible need is answered with `feasible` False, the most that can
    be delivered and the shortfall, and the best partial schedule.
    """
    prices = np.asarray(problem.prices, float)
    eta = problem.efficiency
    need = max(0.0, float(problem.energy_kwh))
    grid, pv, charger = _caps(problem)
    slot_max = _slot_max(grid, pv, charger)
    max_energy = float(slot_max.sum()) * eta

    if need < MIN_NEED_KWH:
        return Plan(feasible=True, energy_needed_kwh=0.0, max_energy_kwh=max_energy, shortfall_kwh=0.0,
                    energy_kwh=0.0, cost=0.0, immediate_cost=0.0, saving=0.0, saving_pct=None, schedule=[],
                    immediate_schedule=[], solver="none",
                    message="Nothing to charge: the battery already has the energy asked for.")

    tolerance = 1e-9 * max(1.0, need)
    if need > max_energy + tolerance:
        g, s = _everything(prices, grid, pv, charger)
        gi, si = _immediate(float(slot_max.sum()), grid, pv, charger)
        plan = _answer(problem, g, s, gi, si, need, max_energy, solver="none")
        if max_energy <= EPS_KWH:
            why = ("The vehicle is not plugged in during any slot of the horizon (or no power is available "
                   "then), so nothing can be charged.")
        else:
            why = (f"Not enough plugged-in time: the battery needs {need:.2f} kWh but at most {max_energy:.2f} kWh "
                   f"can reach it while the vehicle is plugged in (shortfall {need - max_energy:.2f} kWh). The "
                   f"schedule charges as much as possible at the lowest cost: {_money(plan.cost)}.")
        return replace(plan, feasible=False, shortfall_kwh=need - max_energy, message=why)

    need = min(need, max_energy)  # within the tolerance: exactly what can be delivered
    need_drawn = need / eta
    gi, si = _immediate(need_drawn, grid, pv, charger)
    solved = _solve_lp(prices, grid, pv, charger, need_drawn)
    solver = "highs"
    if solved is None:
        solved, solver = (gi, si), "baseline"
    elif float(prices @ solved[0]) > float(prices @ gi):
        solved = (gi, si)  # equal up to rounding (charging at once is optimal): keep the simpler plan
    g, s = solved
    plan = _answer(problem, g, s, gi, si, need, max_energy, solver=solver)
    return replace(plan, message=_feasible_message(plan))


def _answer(problem: Problem, g, s, gi, si, need: float, max_energy: float, solver: str) -> Plan:
    prices = np.asarray(problem.prices, float)
    cost, immediate = float(prices @ g), float(prices @ gi)
    saving = max(0.0, immediate - cost)
    return Plan(feasible=True, energy_needed_kwh=need, max_energy_kwh=max_energy, shortfall_kwh=0.0,
                energy_kwh=float(g.sum() + s.sum()), cost=cost, immediate_cost=immediate, saving=saving,
                saving_pct=100.0 * saving / immediate if immediate >= 1e-6 else None,
                schedule=_schedule(problem, g, s), immediate_schedule=_schedule(problem, gi, si), solver=solver)


def _feasible_message(plan: Plan) -> str:
    if not plan.schedule:
        return "Nothing to charge: the energy asked for is too small to schedule."
    first, last = plan.schedule[0], plan.schedule[-1]
    text = (f"Charge {plan.energy_kwh:.2f} kWh in {len(plan.schedule)} slot(s) from {first.start.isoformat()} to "
            f"{last.end.isoformat()} for {_money(plan.cost)}; charging at once on plug-in would cost "
            f"{_money(plan.immediate_cost)}")
    if plan.saving > 5e-3:
        pct = f" ({plan.saving_pct:.0f} %)" if plan.saving_pct is not None else ""
        text += f": a saving of {_money(plan.saving)}{pct}."
    else:
        text += ": no saving, charging at once is already the cheapest."
    if plan.solver == "baseline":
        text += " (The optimiser gave no answer, so this is the immediate schedule.)"
    return text
