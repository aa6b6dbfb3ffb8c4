"""ONNX export: parity with the booster on the held-out rows, and a parity check that can fail."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import onnx
import pandas as pd
import pytest

from ev_assets.lib.ml import core
from ev_assets.lib.ml.export import ATOL, RTOL, check_parity, latency, to_onnx

FEATURES = ["hour", "weekday", "n_points", "max_power_kw", "pois_500m", "occupancy_lag_1h"]


def make_trained(task: str, rounds: int = 40, **extra_params) -> core.TrainedModel:
    rng = np.random.default_rng(3)
    n = 1000
    X = pd.DataFrame({
        "hour": rng.integers(0, 24, n), "weekday": rng.integers(0, 7, n), "n_points": rng.integers(1, 9, n),
        "max_power_kw": rng.choice([11.0, 22.0, 50.0, 150.0], n), "pois_500m": rng.poisson(3, n).astype(float),
        "occupancy_lag_1h": rng.random(n),
    })
    X.loc[rng.random(n) < 0.05, "occupancy_lag_1h"] = np.nan  # missing values take the default branch
    signal = np.sin(X["hour"] / 24 * 2 * np.pi) + 0.3 * X["pois_500m"] + 2 * X["occupancy_lag_1h"].fillna(0.5)
    if task == "classification":
        y = pd.Series((rng.random(n) < 1 / (1 + np.exp(-(signal - 2)))).astype(int))
        objective, primary, names = "binary", "log_loss", core.CLASSIFICATION_METRICS
    else:
        y = pd.Series(5 + 3 * signal + 0.1 * X["max_power_kw"] + rng.normal(0, 1, n))
        objective, primary, names = "regression", "mae", core.REGRESSION_METRICS
    cut = 700
    params = {"objective": objective, "num_leaves": 15, "verbose": -1, "num_threads": 1, "seed": 1, **extra_params}
    booster = lgb.train(params, lgb.Dataset(X.iloc[:cut], y.iloc[:cut]), num_boost_round=rounds)
    test_X, test_y = X.iloc[cut:], y.iloc[cut:]
    evaluation = core.Evaluation.of(primary, names, test_y, booster.predict(test_X),
                                    {"mean": np.full(len(test_y), y.iloc[:cut].mean())})
    return core.TrainedModel(name=f"test_{task}", task=task, booster=booster, features=FEATURES, params=params,
                             evaluation=evaluation, test_X=test_X, test_y=test_y, train_rows=cut)


@pytest.fixture(scope="module")
def classifier():
    return make_trained("classification")


@pytest.fixture(scope="module")
def regressor():
    return make_trained("regression")


@pytest.mark.parametrize("which", ["classifier", "regressor"])
def test_parity_holds_on_the_held_out_rows(which, request, tmp_path):
    trained = request.getfixturevalue(which)
    export = to_onnx(trained, tmp_path / "model.onnx")
    assert export.parity_ok, export
    assert export.n_rows == 300 and export.n_mismatched == 0
    assert 0 < export.max_abs_diff < ATOL  # float32 in ONNX: close, not identical
    assert export.tolerance == {"atol": ATOL, "rtol": RTOL}
    assert export.bytes == (tmp_path / "model.onnx").stat().st_size > 0
    assert export.output == ("probabilities[:, 1]" if which == "classifier" else "variable")


def test_parity_fails_with_a_tolerance_tighter_than_float32(classifier, tmp_path):
    export = to_onnx(classifier, tmp_path / "model.onnx", atol=0.0, rtol=0.0)
    assert not export.parity_ok and export.n_mismatched > 0


@pytest.mark.parametrize("which,attribute", [("classifier", "class_weights"), ("regressor", "target_weights")])
def test_parity_fails_on_a_corrupted_model(which, attribute, request, tmp_path):
    trained = request.getfixturevalue(which)
    path = tmp_path / "model.onnx"
    assert to_onnx(trained, path).parity_ok
    model = onnx.load(str(path))
    (weights,) = [a for node in model.graph.node for a in node.attribute if a.name == attribute]
    weights.floats[len(weights.floats) // 2] += 0.5  # one leaf of one tree is off
    onnx.save(model, str(path))

    export = check_parity(trained, path)
    assert not export.parity_ok
    assert export.max_abs_diff > ATOL and 0 < export.n_mismatched < export.n_rows


def test_linear_trees_are_refused(tmp_path):
    trained = make_trained("regression", rounds=5, linear_tree=True)
    with pytest.raises(ValueError, match="linear_tree"):
        to_onnx(trained, tmp_path / "model.onnx")


def test_latency_reports_each_runtime(classifier, tmp_path):
    export = to_onnx(classifier, tmp_path / "model.onnx")

    class FakePyfunc:  # stands in for an MLflow pyfunc model (loading one costs seconds)
        def predict(self, frame):
            return classifier.booster.predict(frame)

    figures = latency(classifier, export.path, pyfunc_model=FakePyfunc(), runs=30, warmup=5, batch_runs=2)
    assert figures["onnx_file_bytes"] == export.bytes
    single = figures["single_row_median_us"]
    assert set(single) == {"lightgbm_booster_numpy_us", "lightgbm_booster_dataframe_us", "onnxruntime_us",
                           "lightgbm_booster_dataframe_default_threads_us", "mlflow_pyfunc_us"}
    assert all(v > 0 for v in single.values())
    assert figures["batch_rows"] == 300 and all(v > 0 for v in figures["batch_median_us"].values())
    without_pyfunc = latency(classifier, export.path, runs=3, warmup=0, batch_runs=1)
    assert without_pyfunc["single_row_median_us"]["mlflow_pyfunc_us"] is None
