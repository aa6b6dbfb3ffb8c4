"""The plug-in and energy-to-full models on vehicle telemetry: trained on a small simulated fleet, judged against
persistence on held-out later rows, and a clear InsufficientData when the traces cannot carry a model."""

import numpy as np
import pytest

from ev_assets.lib.ml import core
from ev_assets.lib.ml.plugin import ENERGY_MODEL, PLUGGED_MODEL, train_plugin_models
from ev_assets.lib.sources.telemetry.features import FEATURES
from ev_assets_tests.fixtures.synthetic import raw_rows

@pytest.fixture(scope="module")
def models() -> dict[str, core.TrainedModel]:
    return {m.name: m for m in train_plugin_models(raw_rows())}


def test_both_models_are_trained_and_described(models):
    assert set(models) == {PLUGGED_MODEL, ENERGY_MODEL}
    plugged, energy = models[PLUGGED_MODEL], models[ENERGY_MODEL]
    assert (plugged.task, plugged.evaluation.primary) == ("classification", "brier")
    assert (energy.task, energy.evaluation.primary) == ("regression", "mae")
    for model in models.values():
        assert model.features == FEATURES and list(model.test_X.columns) == FEATURES
        assert model.train_rows > 1000 and len(model.test_y) > 500
        assert {"train_start", "valid_start", "test_start", "test_end"} <= set(model.splits)
        assert model.splits["horizon_minutes"] == "15" and model.splits["gap_minutes"] == "240"
        assert model.splits["train_start"] < model.splits["test_start"] < model.splits["test_end"]
        assert model.description and model.limits and "persistence" in model.model_card()
        assert model.params["num_threads"] == 2
    probability = plugged.predict(plugged.test_X)
    assert ((probability >= 0) & (probability <= 1)).all()
    assert set(plugged.test_y.unique()) == {0.0, 1.0}


def test_float32_onnx_models_predict_what_the_boosters_do(models):
    """The export to come runs in float32: a split that float32 rounds to the other side would change predictions."""
    import onnxmltools
    import onnxruntime as ort
    from onnxmltools.convert.common.data_types import FloatTensorType

    for model in models.values():
        onnx = onnxmltools.convert_lightgbm(model.booster, initial_types=[("input", FloatTensorType([None, len(FEATURES)]))],
                                            target_opset=15, zipmap=False)
        session = ort.InferenceSession(onnx.SerializeToString(), providers=["CPUExecutionProvider"])
        outputs = session.run(None, {"input": model.test_X.to_numpy(np.float32)})
        onnx_prediction = outputs[1][:, 1] if model.task == "classification" else outputs[0].ravel()
        assert np.allclose(onnx_prediction, model.predict(model.test_X), atol=1e-4, rtol=1e-4), model.name


def test_feature_values_and_split_points_are_exact_in_float32(models):
    """Why the ONNX model agrees: LightGBM splits halfway between two training values, and on the grids of
    `model_matrix` both the values and those midpoints are float32 numbers (17.7 minutes is not)."""
    for column in FEATURES:
        values = np.unique(models[ENERGY_MODEL].test_X[column].dropna().to_numpy())
        midpoints = (values[:-1] + values[1:]) / 2
        for numbers in (values, midpoints):
            assert (numbers.astype(np.float32).astype(float) == numbers).all(), column


def test_evaluation_holds_persistence_and_finite_metrics(models):
    for model, metrics in ((models[PLUGGED_MODEL], core.CLASSIFICATION_METRICS),
                           (models[ENERGY_MODEL], core.REGRESSION_METRICS)):
        evaluation = model.evaluation
        expected = {"persistence"} if model.name == PLUGGED_MODEL else {"persistence", "persistence of the SOC slope"}
        assert set(evaluation.baselines) == expected == set(model.test_baselines)
        for baseline in expected:
            assert set(evaluation.model) == set(metrics) == set(evaluation.baselines[baseline])
            assert all(np.isfinite(v) for v in evaluation.baselines[baseline].values())
            assert len(model.test_baselines[baseline]) == len(model.test_y)
        assert all(np.isfinite(v) for v in evaluation.model.values())


def test_the_soc_slope_baseline_extends_the_recent_rate(models):
    """Persistence of the SOC slope: 100 - (SOC now + its rate per hour x the horizon), within 0..100."""
    energy = models[ENERGY_MODEL]
    rate = energy.test_X["soc_rate_per_hour"].fillna(0) * 15 / 60
    expected = 100 - (energy.test_X["soc_pct"] + rate).clip(0, 100)
    np.testing.assert_allclose(energy.test_baselines["persistence of the SOC slope"], expected, atol=0.02)
    assert energy.evaluation.beats_baselines, energy.evaluation.verdict()


def test_persistence_is_what_the_reading_says_now(models):
    """The baseline is scored on the same rows: plugged in now, and 100 - SOC now."""
    plugged, energy = models[PLUGGED_MODEL], models[ENERGY_MODEL]
    assert plugged.evaluation.baselines["persistence"]["brier"] == pytest.approx(
        ((plugged.test_X["plugged_in"] - plugged.test_y) ** 2).mean())
    assert energy.evaluation.baselines["persistence"]["mae"] == pytest.approx(
        (100 - energy.test_X["soc_pct"] - energy.test_y).abs().mean(), abs=1e-3)  # test_X: SOC to 1/1024


def test_models_beat_persistence_on_the_simulated_fleet(models):
    """Observed at 28 days for seeds 1, 2, 3, 5, 7, 11, 42 and 100 (8 of 8): plug-in Brier 0.043-0.057 against
    persistence's 0.052-0.083, energy-to-full MAE 0.69-0.82 points against 2.0-2.1. (At 14 days the plug-in model
    wins on 4 of the 8 seeds, at 7 days on 2: see DAYS.) Persistence is wrong only around plug-ins and plug-outs,
    so the plug-in model wins on Brier by getting those hours less wrong."""
    plugged, energy = models[PLUGGED_MODEL], models[ENERGY_MODEL]
    assert plugged.evaluation.beats_baselines, plugged.evaluation.verdict()
    assert energy.evaluation.beats_baselines, energy.evaluation.verdict()
    assert energy.evaluation.model["mae"] < 0.6 * energy.evaluation.baselines["persistence"]["mae"]
    assert plugged.evaluation.model["auc"] > plugged.evaluation.baselines["persistence"]["auc"]


def test_no_data_or_one_reading_per_vehicle_is_insufficient():
    empty = raw_rows(days=1).iloc[0:0]
    with pytest.raises(core.InsufficientData, match="0 telemetry reading"):
        train_plugin_models(empty)
    one_each = raw_rows(days=2).groupby("vehicle_id").head(1)
    with pytest.raises(core.InsufficientData, match="6 vehicle\\(s\\) with a single reading"):
        train_plugin_models(one_each)


def test_a_few_days_of_telemetry_are_insufficient():
    """Two days leave a test period of a few hours: no model, and the reason says what to do."""
    with pytest.raises(core.InsufficientData, match=r"span 1\.\d day\(s\), 4 are needed.*EV_SIM_DAYS"):
        train_plugin_models(raw_rows(days=2))


def test_a_fleet_that_never_plugs_in_is_insufficient():
    rows = raw_rows(days=10)
    rows["plugged_in"] = False
    with pytest.raises(core.InsufficientData, match="unplugged throughout the training period"):
        train_plugin_models(rows)


def test_energy_to_full_gives_an_80_percent_interval_that_covers_75_to_85_percent_of_held_out_rows(models):
    energy = models[ENERGY_MODEL]
    low, high = energy.interval.predict(energy.test_X)
    p50 = energy.predict(energy.test_X)
    assert (low <= high).all() and np.mean((low <= p50) & (p50 <= high)) > 0.95
    inside = np.mean((energy.test_y >= low) & (energy.test_y <= high))
    assert 0.75 <= inside <= 0.85 and energy.interval.coverage["all"] == pytest.approx(inside)
    assert energy.extra_metrics["interval_coverage_80"] == pytest.approx(inside)
    assert "Interval forecast (P10-P90, 80%)" in energy.model_card()
    assert {"interval_p10.txt", "interval_p90.txt", "interval.json"} <= set(energy.artifacts)
    assert models[PLUGGED_MODEL].interval is None  # a probability needs no interval
