"""The charging plan: least cost, never above charging at once, the need met exactly, and clear answers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ev_assets.api import plan as plan_api
from ev_assets.lib import plan

START = datetime(2025, 1, 6, 18, tzinfo=timezone.utc)


def _problem(prices, energy_kwh, charger_kw=11.0, slot_minutes=60, **kw) -> plan.Problem:
    return plan.Problem(start=START, slot_minutes=slot_minutes, prices=prices, charger_kw=charger_kw,
                        energy_kwh=energy_kwh, **kw)


def _greedy_optimum(p: plan.Problem) -> tuple[float, float]:
    """(least cost, most deliverable into the battery), computed without an LP: per slot the cheaper source first
    (PV is free), then energy units across slots cheapest first. Exact for this separable problem."""
    h = p.slot_minutes / 60
    segments, most = [], 0.0
    for t, price in enumerate(p.prices):
        share = 1.0 if p.plugged_share is None else p.plugged_share[t]
        cap = p.charger_kw * share * h
        grid = min(cap, (p.grid_limit_kw[t] if p.grid_limit_kw else p.charger_kw) * share * h)
        pv = min(cap, (p.pv_kw[t] if p.pv_kw else 0.0) * share * h)
        if price >= 0:
            first, second = (0.0, pv), (price, min(grid, cap - pv))
        else:
            first, second = (price, grid), (0.0, min(pv, cap - grid))
        segments += [first, second]
        most += first[1] + second[1]
    left, cost = p.energy_kwh / p.efficiency, 0.0
    for price, amount in sorted(segments):
        take = min(amount, left)
        cost += price * take
        left -= take
    return cost, most * p.efficiency


def _random_problem(rng: np.random.Generator) -> plan.Problem:
    n = int(rng.integers(1, 49))
    slot_minutes = int(rng.choice([15, 30, 60]))
    prices = np.round(rng.uniform(-0.1, 0.6, n), 2)  # rounded: ties happen
    share = rng.choice([0.0, 1.0, 1.0, 1.0, rng.uniform()], n)
    grid = rng.uniform(0, 15, n).tolist() if rng.uniform() < 0.4 else None
    pv = rng.uniform(0, 6, n).tolist() if rng.uniform() < 0.4 else None
    charger = float(rng.choice([3.7, 7.4, 11.0, 22.0]))
    efficiency = float(rng.choice([1.0, 0.9]))
    most = charger * share.sum() * slot_minutes / 60 * efficiency
    need = float(rng.uniform(0, 1.3) * most) if most > 0 else float(rng.uniform(0, 10))
    return plan.Problem(start=START, slot_minutes=slot_minutes, prices=prices.tolist(), charger_kw=charger,
                        energy_kwh=need, plugged_share=share.tolist(), grid_limit_kw=grid, pv_kw=pv,
                        efficiency=efficiency)


def test_a_cheap_night_slot_is_used_before_the_expensive_evening():
    prices = [0.40, 0.38, 0.35, 0.30, 0.12, 0.10, 0.15]  # 18:00 .. 00:00
    result = plan.solve(_problem(prices, energy_kwh=15))
    assert result.feasible
    # the cheapest hour (23:00) full, the rest in the next cheapest (22:00); nothing in the evening
    assert [(s.start.hour, round(s.kwh, 6)) for s in result.schedule] == [(22, 4.0), (23, 11.0)]
    assert result.cost == pytest.approx(11 * 0.10 + 4 * 0.12)
    assert result.immediate_cost == pytest.approx(11 * 0.40 + 4 * 0.38)
    assert result.saving == pytest.approx(result.immediate_cost - result.cost)
    assert result.saving_pct == pytest.approx(100 * result.saving / result.immediate_cost)


def test_over_random_problems_the_plan_is_optimal_never_dearer_than_at_once_and_meets_the_need():
    rng = np.random.default_rng(8)
    feasible = infeasible = 0
    for _ in range(200):
        p = _random_problem(rng)
        result = plan.solve(p)
        best, most = _greedy_optimum(p)
        assert result.max_energy_kwh == pytest.approx(most, abs=1e-9)
        assert result.cost <= result.immediate_cost + 1e-9
        assert result.saving >= 0
        h = p.slot_minutes / 60
        for s in result.schedule:  # within every limit, and only while plugged in
            share = p.plugged_share[s.index]
            assert share > 0
            assert s.kw <= p.charger_kw * share + 1e-9
            assert s.pv_kwh <= (p.pv_kw[s.index] * share * h if p.pv_kw else 0) + 1e-9
            if p.grid_limit_kw:
                assert s.grid_kwh <= p.grid_limit_kw[s.index] * share * h + 1e-9
        if p.energy_kwh <= most:
            feasible += 1
            assert result.feasible
            assert sum(s.kwh for s in result.schedule) * p.efficiency == pytest.approx(p.energy_kwh, abs=1e-6)
            assert result.cost == pytest.approx(best, abs=1e-6)
        else:
            infeasible += 1
            assert not result.feasible
            assert result.shortfall_kwh == pytest.approx(p.energy_kwh - most, abs=1e-9)
    assert feasible > 100 and infeasible > 20  # both kinds were exercised


def test_not_enough_plugged_in_time_gives_the_shortfall_and_the_best_partial_plan():
    result = plan.solve(_problem([0.3, 0.2, 0.1, 0.4], energy_kwh=20, charger_kw=7,
                                 plugged_share=[0, 1, 1, 0]))
    assert not result.feasible
    assert result.max_energy_kwh == pytest.approx(14)
    assert result.shortfall_kwh == pytest.approx(6)
    assert [(s.start.hour, s.kwh) for s in result.schedule] == [(19, 7.0), (20, 7.0)]
    assert "shortfall 6.00 kWh" in result.message


def test_never_plugged_in_is_an_answer_not_an_error():
    result = plan.solve(_problem([0.3, 0.2], energy_kwh=5, plugged_share=[0, 0]))
    assert not result.feasible and result.schedule == [] and result.shortfall_kwh == 5
    assert "not plugged in" in result.message


def test_a_grid_limit_caps_the_power_and_pv_adds_to_it():
    result = plan.solve(_problem([0.3] * 8, energy_kwh=20, grid_limit_kw=[3] * 8))
    assert max(s.kw for s in result.schedule) == pytest.approx(3)
    assert len(result.schedule) == 7  # 20 kWh at 3 kW
    with_pv = plan.solve(_problem([0.3] * 8, energy_kwh=20, grid_limit_kw=[3] * 8, pv_kw=[2] * 8))
    assert max(s.kw for s in with_pv.schedule) == pytest.approx(5)
    assert with_pv.cost == pytest.approx(4 * 0.3)  # 8 h x 2 kW of PV are free: only 4 kWh paid
    assert sum(s.pv_kwh for s in with_pv.schedule) == pytest.approx(16)


def test_zero_need_gives_an_empty_schedule_at_no_cost():
    result = plan.solve(_problem([0.3, 0.1], energy_kwh=0))
    assert result.feasible and result.schedule == [] and result.cost == 0 and result.saving == 0
    assert plan.energy_need(60, soc_pct=90, target_soc_pct=80) == 0  # already above the target


def test_negative_prices_never_charge_beyond_the_need():
    result = plan.solve(_problem([-0.2, -0.1, -0.3, -0.05], energy_kwh=15))
    assert result.energy_kwh == pytest.approx(15)
    assert result.cost == pytest.approx(11 * -0.3 + 4 * -0.2)
    assert result.cost <= result.immediate_cost


def test_equal_prices_charge_at_once_and_efficiency_draws_more():
    flat = plan.solve(_problem([0.3] * 6, energy_kwh=18, efficiency=0.9))
    assert [s.index for s in flat.schedule] == [0, 1]  # the earliest among equally cheap plans
    assert flat.energy_kwh == pytest.approx(20)  # 18 kWh into the battery at 90 %
    assert flat.saving == 0


def test_plug_times_give_the_share_of_each_slot():
    out = START + timedelta(hours=2, minutes=30)
    assert plan.plugged_share_between(START, 60, 4, START + timedelta(minutes=15), out) == [0.75, 1, 0.5, 0]


# --- the endpoint ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    app.include_router(plan_api.router)
    return TestClient(app)


GOOD = {"start": "2025-01-06T18:00:00+01:00", "slot_minutes": 60,
        "prices": [0.42, 0.40, 0.36, 0.30, 0.24, 0.21, 0.20, 0.20, 0.21],
        "charger_kw": 11, "plug_out_at": "2025-01-07T03:00:00+01:00", "capacity_kwh": 60, "soc_pct": 35,
        "target_soc_pct": 80}


def test_a_good_request_gets_the_cheapest_schedule(client):
    response = client.post("/plan", json=GOOD)
    assert response.status_code == 200
    body = response.json()
    assert body["feasible"] is True
    assert body["energy_needed_kwh"] == body["energy_kwh"] == 27.0  # 60 kWh x (80 - 35) %
    assert [s["start"] for s in body["schedule"]] == ["2025-01-06T23:00:00+01:00", "2025-01-07T00:00:00+01:00",
                                                      "2025-01-07T01:00:00+01:00"]
    assert body["schedule"][-1]["soc_pct"] == 80.0
    assert body["cost"] == pytest.approx(5 * 0.21 + 22 * 0.20)
    assert body["immediate_cost"] == pytest.approx(11 * 0.42 + 11 * 0.40 + 5 * 0.36)
    assert body["saving"] == pytest.approx(body["immediate_cost"] - body["cost"], abs=1e-4)
    assert "saving" in body["message"]


def test_the_forecasts_feed_the_plan(client):
    body = {"start": "2025-01-06T18:00:00Z", "slot_minutes": 30, "prices": [0.1, 0.4, 0.3, 0.2],
            "plugged_in_probability": [0.2, 0.9, 0.8, 0.6], "charger_kw": 7.4,
            "capacity_kwh": 50, "energy_to_full_pct": 10}
    answer = client.post("/plan", json=body).json()
    assert answer["energy_kwh"] == 5.0  # 10 % of 50 kWh
    assert answer["plugged_in_slots"] == 3
    assert [s["price"] for s in answer["schedule"]] == [0.3, 0.2]


def test_interval_forecasts_plan_on_the_p90_need_and_the_p10_stay_and_say_so(client):
    body = {"start": "2025-01-06T18:00:00+01:00", "slot_minutes": 60,
            "prices": [0.42, 0.40, 0.36, 0.30, 0.24, 0.21, 0.20, 0.20, 0.21, 0.24, 0.30, 0.38, 0.45],
            "charger_kw": 11, "energy_kwh_forecast": {"p10": 6.0, "p50": 11.5, "p90": 19.0},
            "plugged_in_hours_forecast": {"p10": 4.0, "p50": 9.5, "p90": 12.0}}
    cautious = client.post("/plan", json=body).json()  # plan_on defaults to cautious
    assert cautious["energy_needed_kwh"] == 19.0 and cautious["plugged_in_slots"] == 4  # 18:00 .. 22:00
    assert cautious["schedule"][-1]["end"] <= "2025-01-06T22:00:00+01:00"
    assert cautious["basis"] == ("energy need: the P90 of energy_kwh_forecast (19 kWh); plugged in: from the start "
                                 "for the P10 of plugged_in_hours_forecast (4 h, until 2025-01-06T22:00:00+01:00)")
    median = client.post("/plan", json={**body, "plan_on": "p50"}).json()
    assert median["energy_needed_kwh"] == 11.5 and median["plugged_in_slots"] == 10  # 9.5 h: 10 slots, one half
    assert "the P50 of energy_kwh_forecast (11.5 kWh)" in median["basis"] and "P50 of plugged_in" in median["basis"]
    assert median["cost"] < cautious["cost"]  # less energy, more time for the cheap night hours
    assert client.post("/plan", json=GOOD).json()["basis"] == (
        "energy need: capacity_kwh with soc_pct and target_soc_pct; plugged in: plug_in_at/plug_out_at")
    for bad, words in (({"energy_kwh_forecast": {"p10": 9, "p50": 8, "p90": 10}}, "ordered"),
                       ({"energy_kwh": 5}, "energy_kwh_forecast or"),
                       ({"plug_out_at": "2025-01-07T03:00:00+01:00"}, "plugged_in_hours_forecast or")):
        response = client.post("/plan", json={**body, **bad})
        assert response.status_code == 422 and words in response.text


def test_not_enough_plugged_in_time_is_a_200_with_feasible_false(client):
    body = {**GOOD, "plug_out_at": "2025-01-06T19:30:00+01:00"}
    response = client.post("/plan", json=body)
    assert response.status_code == 200
    answer = response.json()
    assert answer["feasible"] is False
    assert answer["max_energy_kwh"] == 16.5 and answer["shortfall_kwh"] == 10.5
    assert "Not enough plugged-in time" in answer["message"]


@pytest.mark.parametrize("change, where, words", [
    ({"pv_kw": [1.0, 2.0]}, ["body", "pv_kw"], "pv_kw has 2 value(s) but prices has 9"),
    ({"prices": ["0.3"] + GOOD["prices"][1:]}, ["body", "prices", 0], "valid number"),
    ({"charger_kw": True}, ["body", "charger_kw"], "valid number"),
    ({"soc_pct": 101}, ["body", "soc_pct"], "less than or equal to 100"),
    ({"start": "2025-01-06T18:00:00"}, ["body", "start"], "timezone"),
    ({"prices": []}, ["body", "prices"], "at least 1"),
    ({"energy_kwh": 10}, ["body"], "energy_kwh"),
    ({"surprise": 1}, ["body", "surprise"], "Extra inputs"),
])
def test_bad_requests_get_a_422_naming_the_field(client, change, where, words):
    response = client.post("/plan", json={**GOOD, **change})
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"] == where
    assert words in detail["msg"]


def test_a_number_json_cannot_carry_back_is_a_422_not_a_500(client):
    raw = b'{"start": "2025-01-06T18:00:00Z", "prices": [1e400], "charger_kw": 11, "energy_kwh": 5}'
    response = client.post("/plan", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "prices", 0]


def test_random_valid_requests_always_get_an_answer(client):
    rng = np.random.default_rng(88)
    for _ in range(60):
        n = int(rng.integers(1, 97))
        body = {"start": "2025-03-30T00:00:00+01:00", "slot_minutes": int(rng.choice([15, 30, 60, 7])),
                "prices": np.round(rng.uniform(-1, 1, n), 3).tolist(), "charger_kw": float(rng.uniform(0.1, 50)),
                "capacity_kwh": float(rng.uniform(10, 120)), "soc_pct": float(rng.uniform(0, 100)),
                "efficiency": float(rng.uniform(0.5, 1))}
        if rng.uniform() < 0.5:
            body["plugged_in"] = (rng.uniform(size=n) < 0.7).tolist()
        if rng.uniform() < 0.5:
            body["grid_limit_kw"] = rng.uniform(0, 20, n).tolist()
        if rng.uniform() < 0.5:
            body["pv_kw"] = rng.uniform(0, 8, n).tolist()
        response = client.post("/plan", json=body)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["cost"] <= answer["immediate_cost"] and answer["saving"] >= 0
        if answer["feasible"]:
            assert answer["energy_kwh"] == pytest.approx(answer["energy_needed_kwh"] / body["efficiency"], abs=1e-3)
        else:
            assert answer["shortfall_kwh"] > 0
