"""The plug-in and energy-to-full models on vehicle telemetry: trained on a small simulated fleet, judged against
persistence on held-out later rows, and a clear InsufficientData when the traces cannot carry a model."""

import numpy as np
import pandas as pd
import pytest

from ev_assets.lib.ml import core
from ev_assets.lib.ml.plugin import ENERGY_MODEL, PLUGGED_MODEL, model_name, train_plugin_models
from ev_assets.lib.settings import SimulationSettings
from ev_assets.lib.telemetry import combine, parse, simulated_files
from ev_assets.lib.telemetry.features import FEATURES

# Four weeks: the held-out last 20 % then holds weekdays as well as a weekend. With two weeks the test period is
# mostly the second weekend, of which training saw one, and the plug-in model does NOT reliably beat persistence.
DAYS = 28


def raw_rows(days: int = DAYS, seed: int = 42) -> pd.DataFrame:
    """Rows of raw.vehicle_telemetry as the table asset writes them (simulated file -> parser)."""
    return combine([parse(name, data) for name, data in simulated_files(SimulationSettings(seed=seed, days=days))]).table


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
        assert model.splits["train_start"] < model.splits["test_start"] < model.splits["test_end"]
        assert model.description and model.limits and "persistence" in model.model_card()
        assert model.params["num_threads"] == 2
    probability = plugged.predict(plugged.test_X)
    assert ((probability >= 0) & (probability <= 1)).all()
    assert set(plugged.test_y.unique()) == {0.0, 1.0}


def test_predictions_survive_float32_features(models):
    """The ONNX export feeds float32: float64 noise in the features (49.7 - 49.6 != 0.1) must not flip a split."""
    for model in models.values():
        as_float32 = model.test_X.astype(np.float32).astype(float)
        assert np.abs(model.predict(as_float32) - model.predict(model.test_X)).max() < 1e-4, model.name


def test_model_names_follow_the_horizon():
    assert model_name(PLUGGED_MODEL, 15) == "vehicle_plugged_in_15min"
    assert model_name(ENERGY_MODEL, 30) == "vehicle_energy_to_full_30min"


def test_evaluation_holds_persistence_and_finite_metrics(models):
    for model, metrics in ((models[PLUGGED_MODEL], core.CLASSIFICATION_METRICS),
                           (models[ENERGY_MODEL], core.REGRESSION_METRICS)):
        evaluation = model.evaluation
        assert set(evaluation.baselines) == {"persistence"}
        assert set(evaluation.model) == set(metrics) == set(evaluation.baselines["persistence"])
        assert all(np.isfinite(v) for v in evaluation.model.values())
        assert all(np.isfinite(v) for v in evaluation.baselines["persistence"].values())


def test_persistence_is_what_the_reading_says_now(models):
    """The baseline is scored on the same rows: plugged in now, and 100 - SOC now."""
    plugged, energy = models[PLUGGED_MODEL], models[ENERGY_MODEL]
    assert plugged.evaluation.baselines["persistence"]["brier"] == pytest.approx(
        ((plugged.test_X["plugged_in"] - plugged.test_y) ** 2).mean())
    assert energy.evaluation.baselines["persistence"]["mae"] == pytest.approx(
        (100 - energy.test_X["soc_pct"] - energy.test_y).abs().mean())


def test_models_beat_persistence_on_the_simulated_fleet(models):
    """Observed at 28 days for seeds 1, 2, 3, 5, 7, 11, 42 and 100 (8 of 8): plug-in Brier 0.043-0.058 against
    persistence's 0.052-0.083, energy-to-full MAE 0.68-0.80 points against 2.0-2.1. (At 14 days the plug-in model
    wins on 4 of the 8 seeds, at 7 days on 3: see DAYS.) Persistence is wrong only around plug-ins and plug-outs,
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
