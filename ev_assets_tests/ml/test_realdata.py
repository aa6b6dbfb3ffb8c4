"""The models judged on real data (`lib/ml/realdata.py`, `lib/ml/occupancy.py`), the paired bootstrap and the
median baselines. Tests with the real files skip when ../shared/data is absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ev_assets.lib.ml import compare, occupancy, realdata, sessions, stations
from ev_assets.lib.ml import session_baselines as M
from ev_assets.lib.ml.sessions.data import INPUT_GRACE_MINUTES, PLUGIN_INPUTS
from ev_assets.lib.ml.sessions.features import FEATURES
from ev_assets.lib.ml.sessions.training import BASELINE_USER
from ev_assets.lib.ml.sessions.training import PARAMS as SESSION_PARAMS


@pytest.fixture(autouse=True)
def one_thread(monkeypatch) -> None:
    """One LightGBM thread: on a loaded 2-core machine two spinning OpenMP threads are many times slower."""
    monkeypatch.setitem(SESSION_PARAMS, "num_threads", 1)
    monkeypatch.setitem(stations.CLASSIFICATION_PARAMS, "num_threads", 1)


# --- the paired bootstrap ------------------------------------------------------------------------------------------
def test_paired_bootstrap_finds_a_real_difference_and_not_a_spurious_one() -> None:
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 1, 500)
    better = compare.paired_bootstrap(np.abs(noise), np.abs(noise) + 0.3 + rng.normal(0, 0.1, 500), n_boot=500)
    assert better.a_better and better.high < 0 and better.low <= better.mean <= better.high
    assert better.mean == pytest.approx(-0.3, abs=0.02) and better.rows == better.groups == 500
    same = compare.paired_bootstrap(np.abs(noise), np.abs(rng.permutation(noise)), n_boot=500)
    assert not same.a_better and not same.b_better and same.low < 0 < same.high
    assert "no difference shown" in same.words()


def test_grouped_bootstrap_resamples_whole_groups_and_is_wider_for_correlated_rows() -> None:
    rng = np.random.default_rng(2)
    day_effect = np.repeat(rng.normal(0, 1, 20), 50)  # 20 days of 50 rows sharing the day's error
    a, b = day_effect + rng.normal(0, 0.1, 1000), np.zeros(1000)
    rows = compare.paired_bootstrap(a, b, n_boot=400)
    days = compare.paired_bootstrap(a, b, groups=np.repeat(np.arange(20), 50), n_boot=400)
    assert days.groups == 20 and days.rows == 1000 and days.mean == pytest.approx(rows.mean)
    assert days.high - days.low > 3 * (rows.high - rows.low)
    with pytest.raises(ValueError, match="paired rows"):
        compare.paired_bootstrap([1.0, 2.0], [1.0])


# --- the median baselines ------------------------------------------------------------------------------------------
def test_history_medians_use_only_sessions_ended_by_the_plug_in() -> None:
    t = pd.Timestamp("2022-01-03 08:00", tz="UTC")  # a Monday
    frame = pd.DataFrame({
        "history_key": ["u"] * 4 + ["v"],
        "plugin_utc": [t, t + pd.Timedelta(days=1), t + pd.Timedelta(days=7), t + pd.Timedelta(days=7, hours=1), t],
        "plugout_utc": [t + pd.Timedelta(hours=2), t + pd.Timedelta(days=1, hours=1),
                        t + pd.Timedelta(days=8), t + pd.Timedelta(days=7, hours=3), t + pd.Timedelta(hours=1)],
        "energy_kwh": [10.0, 20.0, 40.0, 5.0, 7.0], "duration_h": [2.0, 1.0, 24.0, 2.0, 1.0],
    })
    frame["plugin_local"] = frame["plugin_utc"].dt.tz_localize(None)
    ns = lambda c: frame[c].dt.tz_localize(None).to_numpy().astype("datetime64[ns]").astype("int64")  # noqa: E731
    out = M.add_history_medians(frame, ns("plugin_utc"), ns("plugout_utc"))
    energy, weekday = out["user_median_energy_kwh_before"], out["user_weekday_median_energy_kwh_before"]
    assert np.isnan(energy[0]) and np.isnan(weekday[0])  # first session: nothing before
    assert energy[1] == 10.0 and np.isnan(weekday[1])  # Tuesday: the Monday session is no same-weekday history
    assert energy[2] == 15.0 and weekday[2] == 10.0  # next Monday: median of 10, 20; same weekday: 10
    assert energy[3] == 15.0  # session 2 (40 kWh) is still plugged in at this plug-in: not counted
    assert np.isnan(energy[4])  # another user's history is not shared
    test = out.assign(dataset=0)
    baselines = M.baseline_predictions(test.iloc[:2], test, "energy_kwh")
    assert baselines[M.BASELINE_TRAIN_MEDIAN].tolist() == [15.0] * 5
    assert baselines[M.BASELINE_USER_MEDIAN].tolist() == [15.0, 10.0, 15.0, 15.0, 15.0]
    assert baselines[M.BASELINE_USER_WEEKDAY_MEDIAN].tolist() == [15.0, 10.0, 10.0, 10.0, 15.0]


def test_the_first_user_input_counts_only_when_made_by_plug_in_plus_the_grace() -> None:
    t = pd.Timestamp("2021-06-01 16:00", tz="UTC")
    raw = pd.DataFrame({
        "session_id": ["a", "b", "c"], "site_id": "0002", "station_id": "s1", "space_id": None, "user_id": "u",
        "connection_time": [t, t, t], "disconnect_time": [t + pd.Timedelta(hours=2)] * 3,
        "kwh_delivered": [5.0, 6.0, 7.0], "first_kwh_requested": [10.0, 20.0, None],
        "first_minutes_available": [120.0, 240.0, None],
        "first_input_at": [t, t + pd.Timedelta(minutes=INPUT_GRACE_MINUTES + 1), None],
    })
    usable = sessions.usable_sessions(raw, "acn").frame
    assert usable["kwh_requested_first"].tolist()[0] == 10.0
    assert usable["minutes_available_first"].tolist()[0] == 120.0
    assert usable[PLUGIN_INPUTS].iloc[1:].isna().all().all()  # too late, and absent
    older = sessions.usable_sessions(raw.drop(columns=["first_kwh_requested", "first_minutes_available",
                                                       "first_input_at"]), "acn").frame
    assert older[PLUGIN_INPUTS].isna().all().all()  # a raw table from before the columns


# --- occupancy from sessions -------------------------------------------------------------------------------------
def test_a_point_is_occupied_on_the_slots_between_plug_in_and_plug_out() -> None:
    t = pd.Timestamp("2021-06-01 10:00", tz="UTC")
    frame = pd.DataFrame({"site": "s", "point": ["p", "p", "q"],
                          "plugin_utc": [t + pd.Timedelta(minutes=5), t + pd.Timedelta(minutes=50), t],
                          "plugout_utc": [t + pd.Timedelta(minutes=25), t + pd.Timedelta(minutes=60),
                                          t + pd.Timedelta(minutes=10)]})
    polls = occupancy.status_polls(frame).set_index(["charging_point_id", "polled_at"])["status"]
    p = polls.loc["p"]
    # p lives 10:00 .. 11:00: CHARGING at 10:10 and 10:20 (first session), 10:50 (second); free in between
    assert list(p.index.strftime("%H:%M")) == ["10:00", "10:10", "10:20", "10:30", "10:40", "10:50"]
    assert list(p) == ["AVAILABLE", "CHARGING", "CHARGING", "AVAILABLE", "AVAILABLE", "CHARGING"]
    assert list(polls.loc["q"]) == ["CHARGING"]


def test_acn_points_are_grouped_into_sites_of_six_in_id_order() -> None:
    usable = pd.DataFrame({"station": [f"2-39-{i:03d}" for i in range(13)], "history_key": "acn:x", "site": "0002"})
    sites = occupancy.points_and_sites(usable, "acn").groupby("site")["point"].nunique()
    assert sites.tolist() == [6, 6, 1] and sites.index[0] == "acn-site-01"


# --- the real data -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real(shared_data: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return realdata.load_sessions(shared_data)


def test_session_models_on_real_data_are_judged_against_the_strongest_baseline_with_a_ci(real) -> None:
    reports, acn = real
    assert (len(reports), len(acn)) == (6878, 2114)
    result = realdata.judge_sessions(reports, acn, n_boot=300, ablation=False)
    assert set(result["models"]) == {"session_energy_kwh", "session_duration_h"}
    for name, model in result["models"].items():
        assert set(model["datasets"]) == {"norway", "acn"}
        for dataset, parts in model["datasets"].items():
            judged = parts["all"]
            assert judged["rows"] == {"norway": 1365, "acn": 424}[dataset]
            strongest = judged["strongest_baseline"]
            assert judged["baselines"][strongest]["mae"] == min(b["mae"] for b in judged["baselines"].values())
            for ci in judged["vs"].values():
                assert ci["low"] <= ci["mean"] <= ci["high"] and ci["rows"] == judged["rows"]
            assert judged["beats_strongest"] == (judged["vs"][strongest]["high"] < 0)
            assert judged["model"]["smape_half"] == pytest.approx(judged["model"]["smape"] / 2)
            assert parts["returning users"]["rows"] < judged["rows"]
    # what the real data shows: on Norway the model beats the user's median of earlier sessions (CI below 0) ...
    norway = result["models"]["session_energy_kwh"]["datasets"]["norway"]["all"]
    assert norway["vs"][M.BASELINE_USER_MEDIAN]["high"] < 0
    # ... on ACN's returning users it does not: the user's median is as good (the CI holds 0)
    acn_returning = result["models"]["session_energy_kwh"]["datasets"]["acn"]["returning users"]
    assert acn_returning["vs"][M.BASELINE_USER_MEDIAN]["low"] < 0 < acn_returning["vs"][M.BASELINE_USER_MEDIAN]["high"]
    assert result["published"]["smape"] == {"session_duration_h": 9.9, "session_energy_kwh": 11.6}
    # the 80% interval (P10-P90) covers 75-85% of the held-out sessions
    for name, model in result["models"].items():
        coverage = model["interval_80"]["coverage"]
        assert 0.75 <= coverage["all"] <= 0.85, (name, coverage)
        assert set(coverage) == {"all", "norway", "acn"} and model["interval_80"]["mean_width"] > 0


def test_the_ablation_trains_without_the_users_whole_history(real) -> None:
    """The feature ablation of benchmarks/real_data_eval.py leaves each group out; without the user's history the
    user's-mean baseline is still scored (from the rows, not from the model's features)."""
    reports, acn = real
    left_out = realdata.FEATURE_GROUPS["user history (all)"]
    kept = [f for f in FEATURES if f not in left_out]
    for model in sessions.train_session_models(reports, acn, kept):
        assert not set(model.features) & set(left_out)
        assert BASELINE_USER in model.evaluation.baselines, model.name


def test_availability_models_train_on_a_real_occupancy_series(real) -> None:
    _, acn = real
    frame = occupancy.points_and_sites(sessions.usable_sessions(acn, "acn").frame, "acn")
    polls = occupancy.status_polls(frame, start=frame["plugout_utc"].max() - pd.Timedelta(weeks=4))
    assert frame["point"].nunique() == 42 and frame["site"].nunique() == 7
    assert set(polls["status"]) == {"CHARGING", "AVAILABLE"}
    assert polls["polled_at"].dt.minute.isin(range(0, 60, 10)).all()
    features = occupancy.availability_features(polls, "acn")
    assert features["station_id"].nunique() == 7
    local_hours = features["polled_at"].dt.tz_convert("America/Los_Angeles").dt.hour
    assert (features["hour"] == local_hours).all()  # the site's own clock, not Berlin's
    result = occupancy.judge_availability(features, n_boot=200)
    assert set(result["models"]) == {f"station_available_{h}min" for h in stations.HORIZONS}
    for judged in result["models"].values():
        scores = judged["scores"]
        assert {"model", "persistence", occupancy.BASELINE_CALIBRATED} <= set(scores)
        # a hard 0/1 pays dearly for every miss; the calibrated one does not: the fair baseline
        assert scores[occupancy.BASELINE_CALIBRATED]["log_loss"] < scores["persistence"]["log_loss"] / 2
        strongest = judged["strongest_baseline"]
        ci = judged["vs"][strongest]
        assert ci["groups"] == judged["test_days"] and ci["low"] <= ci["mean"] <= ci["high"]
        assert judged["beats_strongest"] == (ci["high"] < 0)
