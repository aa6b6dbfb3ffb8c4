"""Station availability and utilisation models: leakage-safe features from the marts, targets found by time, POI
context, and training on a small simulated warehouse (the demo run the session shares, `demo_root`)."""

from __future__ import annotations

import contextlib
import shutil

import duckdb
import numpy as np
import pandas as pd
import pytest

from ev_assets.lib.ml import stations
from ev_assets.lib.ml.core import CLASSIFICATION_METRICS, REGRESSION_METRICS, InsufficientData
from ev_assets_tests.fixtures.roots import DEMO_DAYS, DEMO_STATIONS
from ev_assets_tests.fixtures.synthetic import START, synthetic_daily, synthetic_marts, synthetic_status

TARGETS = ["available_in_10min", "available_in_60min"]


def features_of(status: pd.DataFrame) -> pd.DataFrame:
    with contextlib.closing(synthetic_marts(status)) as con:
        return stations.station_time_features(con)


@pytest.fixture(scope="module")
def status() -> pd.DataFrame:
    return synthetic_status()


@pytest.fixture(scope="module")
def features(status) -> pd.DataFrame:
    return features_of(status)


# --- features ------------------------------------------------------------------------------------------------------
def test_a_feature_at_t_reads_no_poll_after_t(status, features):
    """Invert S1's availability at every poll after t0: no feature of a row at or before t0 may change, and exactly
    the targets that look past t0 do (t0 itself for 10 min, t0-50 .. t0 for 60 min)."""
    t0 = START + pd.Timedelta(hours=30)
    slot = status["polled_at"].dt.floor("10min")
    later = (status["station_id"] == "S1") & (slot > t0)
    free = status.assign(slot=slot, free=status["status"] == "AVAILABLE").groupby(["station_id", "slot"])["free"].any()
    was_free = pd.MultiIndex.from_arrays([status["station_id"], slot]).map(free).to_numpy(bool)
    changed = status.copy()
    changed.loc[later, "status"] = np.where(was_free[later.to_numpy()], "CHARGING", "AVAILABLE")
    after = features_of(changed)

    columns = [c for c in features.columns if c not in TARGETS]
    before_t0 = features["polled_at"] <= t0
    assert before_t0.sum() > 100 and (~before_t0).sum() > 100
    pd.testing.assert_frame_equal(features.loc[before_t0, columns], after.loc[before_t0, columns])
    # the same rows, and S1's rows after t0 really did change
    assert after["polled_at"].equals(features["polled_at"])
    s1_later = (features["station_id"] == "S1") & ~before_t0
    assert (after.loc[s1_later, "any_available"] != features.loc[s1_later, "any_available"]).all()

    for target, offset in (("available_in_10min", 10), ("available_in_60min", 60)):
        differs = before_t0 & (features[target] != after[target]) & features[target].notna()
        expected = (before_t0 & (features["station_id"] == "S1")
                    & (features["polled_at"] + pd.Timedelta(minutes=offset) > t0) & features[target].notna())
        assert expected.sum() == offset // 10
        assert differs.equals(expected), target


def test_targets_and_lags_are_found_by_time_not_by_row(status):
    """S2 misses the poll at T: the rows whose target or lag falls on T get NaN, not the next poll's value."""
    gap = START + pd.Timedelta(hours=20)
    frame = features_of(status[~((status["station_id"] == "S2") & (status["polled_at"].dt.floor("10min") == gap))])
    s2 = frame[frame["station_id"] == "S2"].set_index("polled_at")
    minutes = lambda m: gap + pd.Timedelta(minutes=m)  # noqa: E731
    assert gap not in s2.index
    assert np.isnan(s2.loc[minutes(-10), "available_in_10min"])
    assert np.isnan(s2.loc[minutes(-60), "available_in_60min"])
    assert s2.loc[minutes(-50), "available_in_60min"] == s2.loc[minutes(10), "any_available"]
    assert s2.loc[minutes(-20), "available_in_10min"] == s2.loc[minutes(-10), "any_available"]
    for lag in (10, 30, 60):
        assert np.isnan(s2.loc[minutes(lag), f"any_available_lag_{lag}min"])
        assert np.isnan(s2.loc[minutes(lag), f"share_available_lag_{lag}min"])
    # everywhere: the target is the station's availability at t + 10 min / t + 60 min, or NaN without that poll
    now = frame.set_index(["station_id", "polled_at"])["any_available"]
    for target, offset in (("available_in_10min", 10), ("available_in_60min", 60)):
        ahead = frame["polled_at"] + pd.Timedelta(minutes=offset)
        expected = pd.MultiIndex.from_arrays([frame["station_id"], ahead]).map(now)
        pd.testing.assert_series_equal(frame[target], pd.Series(expected, index=frame.index, dtype=float),
                                       check_names=False)


def test_station_state_calendar_and_equipment(features):
    s1 = features[features["station_id"] == "S1"]
    assert set(s1["n_charging_points"]) == {2}
    assert (s1["share_available"] == s1["n_available"] / 2).all()
    assert (s1["any_available"] == (s1["n_available"] > 0)).all()
    assert s1[["max_power_kw", "has_dc", "has_ac", "n_connectors", "is_open_24_7"]].iloc[0].tolist() == [50, 1, 1, 2, 1]
    s2 = features[features["station_id"] == "S2"]  # no connector known, 24/7 not stated: NaN, not 0
    assert s2[["max_power_kw", "has_dc", "n_connectors", "is_open_24_7"]].isna().all().all()
    assert features.groupby("station_id")["operator_code"].first().to_dict() == {"S1": 1, "S2": 1, "S3": 0}
    # calendar in German local time: 23:00 UTC on New Year's Eve is midnight of a public holiday in Berlin
    midnight = features[features["polled_at"] == pd.Timestamp("2021-12-31 23:00", tz="UTC")].iloc[0]
    assert (midnight["hour"], midnight["minute_of_day"], midnight["weekday"], midnight["is_holiday"]) == (0, 0, 5, 1)
    eve = features[features["polled_at"] == pd.Timestamp("2021-12-31 22:50", tz="UTC")].iloc[0]
    assert (eve["hour"], eve["minute_of_day"], eve["is_weekend"], eve["is_holiday"]) == (23, 1430, 0, 0)
    # rolling means of the polls in (t - 1 h, t]: six polls once the history is long enough
    s3 = features[features["station_id"] == "S3"].reset_index(drop=True)
    assert s3.loc[10, "share_available_mean_1h"] == pytest.approx(s3.loc[5:10, "share_available"].mean())
    assert s3.loc[200, "any_available_mean_24h"] == pytest.approx(s3.loc[57:200, "any_available"].mean())


def test_a_station_without_pois_gets_zero_counts(features):
    poi = [c for c in features.columns if c.startswith("poi_")]
    assert {"poi_cafe", "poi_supermarket", "poi_parking", "poi_museum", "poi_total"} <= set(poi)
    assert not features[poi].isna().any().any()
    by_station = features.groupby("station_id")[poi].first()
    assert (by_station.loc["S2"] == 0).all()
    assert by_station.loc["S1", ["poi_cafe", "poi_supermarket", "poi_museum", "poi_total"]].tolist() == [2, 1, 1, 4]
    assert by_station.loc["S3", ["poi_parking", "poi_total"]].tolist() == [1, 1]
    with contextlib.closing(synthetic_marts(pd.DataFrame(), pois=False)) as con:
        days = stations.station_utilization_features(con)
    day_poi = [c for c in days.columns if c.startswith("poi_")]
    assert len(days) == 30 and (days[day_poi] == 0).all().all()


# --- too little data -----------------------------------------------------------------------------------------------
def test_empty_or_missing_marts_raise_insufficient_data():
    with contextlib.closing(synthetic_marts(pd.DataFrame(), daily=synthetic_daily(days=0))) as con:
        empty = stations.station_time_features(con)
        empty_days = stations.station_utilization_features(con)
    assert empty.empty and set(TARGETS) <= set(empty.columns)
    with pytest.raises(InsufficientData, match="no station polls.*fct_charging_point_status"):
        stations.train_availability_models(empty)
    with pytest.raises(InsufficientData, match="no station-days.*mart_utilization_station_daily"):
        stations.train_utilization_models(empty_days)
    with contextlib.closing(duckdb.connect()) as con:
        with pytest.raises(InsufficientData, match="marts.fct_charging_point_status.*warehouse_job"):
            stations.station_time_features(con)


def test_one_class_or_one_station_raises_insufficient_data():
    always = features_of(synthetic_status(days=4, always_available=True))
    with pytest.raises(InsufficientData, match="only 'available' moments"):
        stations.train_availability_models(always)
    with contextlib.closing(synthetic_marts(pd.DataFrame(), daily=synthetic_daily(n_stations=1, days=60))) as con:
        one = stations.station_utilization_features(con)
    with pytest.raises(InsufficientData, match="1 station.*at least 2 stations"):
        stations.train_utilization_models(one)


def test_too_few_days_for_a_time_split_split_by_station():
    with contextlib.closing(synthetic_marts(pd.DataFrame(), daily=synthetic_daily(n_stations=25, days=2))) as con:
        days = stations.station_utilization_features(con)
    models = stations.train_utilization_models(days)
    for model in models:
        assert model.splits["split_by"].startswith("station")
        test_stations = set(model.splits["test_station_ids"].split(", "))
        assert len(test_stations) == 5 and len(model.test_y) == 10
        _assert_finite(model.evaluation, REGRESSION_METRICS, {"overall mean", "city mean"})
    # five equal days: time_split's quantiles put validation and test on the same day; 9 stations are too few
    with contextlib.closing(synthetic_marts(pd.DataFrame(), daily=synthetic_daily(n_stations=9, days=5))) as con:
        few = stations.station_utilization_features(con)
    with pytest.raises(InsufficientData, match="too short to split by time .*three time blocks.*fewer than 10 stations"):
        stations.train_utilization_models(few)


# --- on a small simulated warehouse ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def simulated(demo_root):
    """The warehouse of the session's small simulated demo (`demo_root`: polls, ingestion, dbt, as `make demo` runs
    them), read only here."""
    return demo_root.data_dir / "warehouse.duckdb"


@pytest.fixture(scope="module")
def simulated_frames(simulated):
    with contextlib.closing(duckdb.connect(str(simulated), read_only=True)) as con:
        con.execute("SET TimeZone = 'UTC'")
        return stations.station_time_features(con), stations.station_utilization_features(con)


def _assert_finite(evaluation, names, baselines):
    assert set(evaluation.baselines) == set(baselines)
    for predictor in (evaluation.model, *evaluation.baselines.values()):
        assert set(names) <= set(predictor)
        assert all(np.isfinite(predictor[m]) for m in names), predictor


@pytest.mark.slow
def test_availability_models_train_on_the_simulated_warehouse(simulated_frames):
    features, _ = simulated_frames
    assert features["station_id"].nunique() == DEMO_STATIONS
    assert features["polled_at"].dt.floor("D").nunique() == DEMO_DAYS
    models = stations.train_availability_models(features)
    assert [m.name for m in models] == ["station_available_10min", "station_available_60min"]
    for model in models:
        assert model.task == "classification" and model.evaluation.primary == "brier"
        _assert_finite(model.evaluation, CLASSIFICATION_METRICS,
                       {"persistence", "calibrated persistence", "state and hour transition",
                        "historical mean for the station, weekday and hour"})
        # calibrated persistence: one probability per state now, the training rate of 'available later' in it
        calibrated = pd.Series(model.test_baselines["calibrated persistence"]).groupby(
            model.test_X["any_available"].to_numpy()).unique()
        assert all(len(p) == 1 and 0 < p[0] < 1 for p in calibrated), calibrated
        assert calibrated[1][0] > calibrated[0][0]  # free now: more likely free later
        # the gate judges against the strongest: never the 0/1 persistence when a calibrated one is beside it
        assert model.evaluation.strongest_baseline() != "persistence", model.evaluation.table()
        assert model.test_groups.str.startswith("city=").all() and model.test_clusters.str.contains("@").all()
        assert not {"available_in_10min", "available_in_60min", "station_id", "polled_at"} & set(model.features)
        assert list(model.test_X.columns) == model.features
        p = model.predict(model.test_X)
        assert ((p >= 0) & (p <= 1)).all() and set(model.test_y.unique()) == {0, 1}
        s = model.splits
        assert s["split_by"].startswith("time")
        assert pd.Timestamp(s["train_start"]) < pd.Timestamp(s["valid_start"]) < pd.Timestamp(s["test_start"])
        assert model.test_X.shape[0] == int(s["test_rows"]) and model.train_rows == int(s["train_rows"])
        assert "persistence" in model.model_card()


@pytest.mark.slow
def test_utilization_models_train_on_the_simulated_warehouse(simulated_frames):
    _, days = simulated_frames
    assert len(days) == DEMO_STATIONS * DEMO_DAYS
    assert not days[[c for c in days.columns if c.startswith("poi_")]].isna().any().any()
    models = stations.train_utilization_models(days)
    assert [m.name for m in models] == ["station_sessions_per_day", "station_occupied_share"]
    for model in models:
        assert model.task == "regression" and model.evaluation.primary == "mae"
        _assert_finite(model.evaluation, REGRESSION_METRICS, {"overall mean", "city mean"})
        assert model.splits["split_by"] == "time (day)"
        assert pd.Timestamp(model.splits["test_start"]) > pd.Timestamp(model.splits["train_start"])
        assert not {"sessions", "share_occupied", "share_available"} & set(model.features)


@pytest.mark.slow
def test_a_one_day_warehouse_raises_insufficient_data(simulated, tmp_path):
    one_day = tmp_path / "one_day.duckdb"
    shutil.copy(simulated, one_day)
    with contextlib.closing(duckdb.connect(str(one_day))) as con:
        con.execute("DELETE FROM marts.fct_charging_point_status WHERE poll_date > DATE '2022-01-10'")
        con.execute("DELETE FROM marts.mart_utilization_station_daily WHERE day > DATE '2022-01-10'")
    with contextlib.closing(duckdb.connect(str(one_day), read_only=True)) as con:
        features = stations.station_time_features(con)
        days = stations.station_utilization_features(con)
    assert len(features) == DEMO_STATIONS * 144
    with pytest.raises(InsufficientData, match=r"only 1 day\(s\) of polls .*at least 2 days"):
        stations.train_availability_models(features)
    with pytest.raises(InsufficientData, match=f"{DEMO_STATIONS} usable station-days.*at least 40"):
        stations.train_utilization_models(days)
