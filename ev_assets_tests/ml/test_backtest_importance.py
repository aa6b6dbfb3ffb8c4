"""Rolling-origin backtests (`lib/ml/backtest.py`) and gain importance (`lib/ml/importance.py`) on a tiny synthetic
family, and what reaches the model card and the MLflow run."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from ev_assets.lib.ml import backtest, core, importance
from ev_assets.lib.ml.registry import Registry

MIN_ROWS = 300


def frames(n: int = 1500, seed: int = 3) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "t": pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"),
        "signal": rng.normal(0, 1, n), "noise": rng.normal(0, 1, n),
    })
    frame["y"] = 3 * frame["signal"] + rng.normal(0, 0.5, n)
    return {"features": frame}


def train(data: dict[str, pd.DataFrame]) -> list[core.TrainedModel]:
    """A family of one model: too few rows raise InsufficientData, as the real families do."""
    frame = data["features"]
    if len(frame) < MIN_ROWS:
        raise core.InsufficientData(f"{len(frame)} rows, fewer than {MIN_ROWS}")
    train_rows, _, test, bounds = core.time_split(frame, "t")
    features = ["signal", "noise"]
    booster = lgb.train({"objective": "l1", "num_threads": 1, "verbosity": -1, "seed": 1},
                        lgb.Dataset(train_rows[features], train_rows["y"]), num_boost_round=30)
    evaluation = core.Evaluation.of("mae", core.REGRESSION_METRICS, test["y"], booster.predict(test[features]),
                                    {"train mean": np.full(len(test), train_rows["y"].mean())})
    return [core.TrainedModel("toy", "regression", booster, features, {}, evaluation, test[features].reset_index(drop=True),
                              test["y"].reset_index(drop=True), bounds, len(train_rows))]


def test_four_origins_give_four_disjoint_test_blocks_before_the_gates() -> None:
    results = backtest.run(train, frames(), "t", ("toy",))
    toy = results["toy"]
    assert toy.metric == "mae" and len(toy.folds) == 4 and not toy.skipped
    gate_test_start = train(frames())[0].splits["test_start"]
    folds = sorted(toy.folds, key=lambda f: f.origin)
    for earlier, later in zip(folds, folds[1:]):
        assert earlier.origin < later.test_start  # the data before the origin: no test row is in two folds
    assert folds[-1].origin < gate_test_start  # nor in the gate's held-out rows
    assert [f.test_rows for f in folds] == sorted(f.test_rows for f in folds)  # later origins: more data
    mean, low, high = toy.score
    assert low < mean < high and mean == pytest.approx(np.mean([f.score for f in folds]))
    dmean, dlow, dhigh = toy.vs_baseline
    assert dhigh < 0  # the signal is real: the model beats the train mean at every origin
    assert all(f.baseline == "train mean" for f in folds)


def test_an_origin_with_too_little_data_is_listed_as_skipped_with_the_reason() -> None:
    toy = backtest.run(train, frames(n=700), "t", ("toy",))["toy"]
    assert len(toy.folds) == 3 and len(toy.skipped) == 1  # 37.5% of 700 rows is under MIN_ROWS
    assert "fewer than 300" in toy.skipped[0] and "38%" in toy.skipped[0]


def test_backtest_and_importance_reach_the_model_card_and_the_mlflow_run(tmp_path) -> None:
    model = train(frames())[0]
    backtest.attach([model], backtest.run(train, frames(), "t", ("toy",)))
    table = importance.attach(model)
    assert table["feature"].tolist()[0] == "signal" and table["share"].sum() == pytest.approx(1.0)
    assert table.loc[0, "share"] > 0.8
    card = model.model_card()
    assert "## Rolling-origin backtest" in card and "over 4 origins" in card
    assert "## Feature importance (LightGBM gain)" in card and "| signal" in card
    assert model.artifacts[importance.CHART].startswith(b"\x89PNG")
    assert {"backtest_mae_mean", "backtest_mae_ci_low", "backtest_vs_baseline_mae_ci_high"} <= set(model.extra_metrics)

    registry = Registry(tmp_path / "mlflow")
    registry.ensure()
    registered = registry.register(model)
    run = registry.client.get_run(registered.run_id)
    assert run.data.metrics["backtest_mae_mean"] == pytest.approx(model.extra_metrics["backtest_mae_mean"])
    assert run.data.metrics["backtest_folds"] == 4
    assert importance.CHART in {a.path for a in registry.client.list_artifacts(registered.run_id)}
