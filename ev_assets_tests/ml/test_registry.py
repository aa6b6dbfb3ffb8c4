"""The MLflow registry and the champion gate on tiny synthetic LightGBM models (no Dagster).

One registry root serves the module (a fresh MLflow database costs ~4 s of migrations); each test uses its own
model names.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from ev_assets.lib.ml import core
from ev_assets.lib.ml.registry import DEFAULT_UI_URL, Registry, heldout_hash, sanitize_key
from ev_assets_tests.fixtures.synthetic import FEATURES, make_trained

@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Registry:
    root = tmp_path_factory.mktemp("data") / "mlflow"
    reg = Registry(root)
    reg.ensure()
    return reg


def version_tags(reg: Registry, name: str, version: str) -> dict[str, str]:
    return reg.client.get_model_version(name, version).tags


def test_register_then_decide_promotes_the_first_good_version(registry):
    trained = make_trained("occupancy_first")
    assert trained.evaluation.beats_baselines
    registered = registry.register(trained, tags={"dagster/run_id": "abc123", "data_version/raw": "v1"})

    assert registered.version == "1" and registered.name == "occupancy_first"
    assert registered.run_url == f"{DEFAULT_UI_URL}/#/experiments/{registered.experiment_id}/runs/{registered.run_id}"
    assert registered.version_url == f"{DEFAULT_UI_URL}/#/models/occupancy_first/versions/1"
    assert registry.champion("occupancy_first") is None

    decision = registry.decide(trained, registered)
    assert decision.promoted and decision.champion_version is None and decision.beats_baselines
    assert decision.metric == "log_loss"
    assert math.isclose(decision.challenger_score, trained.evaluation.model["log_loss"], rel_tol=1e-9)
    assert registry.champion("occupancy_first") == registered

    tags = version_tags(registry, "occupancy_first", "1")
    assert tags["champion_gate.decision"] == "promoted"
    assert tags["dagster/run_id"] == "abc123"
    run = registry.client.get_run(registered.run_id)
    assert run.data.tags["champion_gate.decision"] == "promoted"
    assert run.data.tags["dagster/run_id"] == "abc123" and run.data.tags["data_version/raw"] == "v1"


def test_the_champion_loads_by_alias_and_predicts_like_the_booster(registry):
    trained = make_trained("occupancy_load")
    registry.decide(trained, registry.register(trained, tags={}))

    model = registry.load_champion("occupancy_load")
    expected = trained.booster.predict(trained.test_X)
    np.testing.assert_allclose(model.predict(trained.test_X), expected, rtol=0, atol=1e-12)
    booster = registry.load_version("occupancy_load", "1", flavor="lightgbm")
    assert booster.feature_name() == FEATURES


def test_a_worse_model_is_registered_but_does_not_take_the_alias(registry):
    name = "occupancy_worse"
    good = make_trained(name, rounds=60)
    first = registry.register(good, tags={})
    assert registry.decide(good, first).promoted

    worse = make_trained(name, rounds=4)  # far fewer trees: still beats the base rate, but not the champion
    assert worse.evaluation.beats_baselines
    second = registry.register(worse, tags={"dagster/run_id": "run-2"})
    decision = registry.decide(worse, second)

    assert second.version == "2"
    assert not decision.promoted
    assert decision.champion_version == "1"
    assert decision.champion_score < decision.challenger_score  # log loss: lower is better
    assert math.isclose(decision.champion_score, good.evaluation.model["log_loss"], rel_tol=1e-9)
    assert "does NOT pass the gate" in decision.reason and "champion v1" in decision.reason
    assert registry.champion(name).version == "1"

    tags = version_tags(registry, name, "2")
    assert tags["champion_gate.decision"] == "not promoted"
    assert tags["champion_gate.champion_version"] == "1"
    assert float(tags["champion_gate.champion_score"]) == pytest.approx(decision.champion_score)
    assert float(tags["champion_gate.challenger_score"]) == pytest.approx(decision.challenger_score)
    assert tags["champion_gate.beats_baselines"] == "true"
    # the interval of the loss difference is recorded beside the scores
    low, difference, high = (float(tags[f"champion_gate.champion_{k}"]) for k in ("ci_low", "difference", "ci_high"))
    assert low < difference < high and difference > 0 and float(tags["champion_gate.champion_confidence"]) == 0.95
    run_tags = registry.client.get_run(second.run_id).data.tags
    assert run_tags["champion_gate.decision"] == "not promoted" and run_tags["registered_version"] == "2"


def test_a_better_model_takes_over_and_the_margin_holds_back_a_small_gain(registry):
    name = "occupancy_better"
    weak = make_trained(name, rounds=3, n=5000)
    assert registry.decide(weak, registry.register(weak, tags={})).promoted

    strong = make_trained(name, rounds=60, n=5000)
    strong.description = f"{name}: the stronger synthetic model."
    gain = weak.evaluation.model["log_loss"] - strong.evaluation.model["log_loss"]
    assert gain > 0
    # a margin of twice the relative gain: the interval cannot lie below it
    held_back = registry.decide(strong, registry.register(strong, tags={}),
                                margin_share=2 * gain / weak.evaluation.model["log_loss"])
    assert not held_back.promoted and registry.champion(name).version == "1"
    assert held_back.gate.champion.margin == pytest.approx(2 * gain, rel=1e-6)

    third = registry.register(strong, tags={})
    decision = registry.decide(strong, third)
    assert decision.promoted and decision.champion_version == "1"
    assert decision.gate.champion.high < 0  # the interval of the difference excludes zero
    assert registry.champion(name).version == "3"
    assert version_tags(registry, name, "1")["champion_gate.replaced_by"] == "3"
    # the model's page in MLflow describes the champion, not the first version registered
    described = registry.client.get_registered_model(name).description
    assert described == f"{strong.description}\n\n(Figures of version 3, the champion.)", described


def test_noise_does_not_promote(registry):
    """Equal models, and a slightly different one on a tiny held-out set: no interval excludes zero."""
    name = "occupancy_noise"
    first = make_trained(name, rounds=60)
    assert registry.decide(first, registry.register(first, tags={})).promoted
    same = make_trained(name, rounds=60)
    decision = registry.decide(same, registry.register(same, tags={}))
    assert not decision.promoted and decision.gate.champion.difference == 0
    assert "not distinguishable from champion v1" in decision.reason

    tiny_name = "occupancy_noise_tiny"
    tiny = make_trained(tiny_name, rounds=20)
    tiny.test_X, tiny.test_y = tiny.test_X.head(31), tiny.test_y.head(31)
    tiny.test_baselines = {b: p[:31] for b, p in tiny.test_baselines.items()}
    registry.promote(tiny_name, registry.register(tiny, tags={}).version)  # a champion by hand
    other = make_trained(tiny_name, rounds=22)
    other.test_X, other.test_y = tiny.test_X, tiny.test_y
    other.test_baselines = tiny.test_baselines
    decision = registry.decide(other, registry.register(other, tags={}))
    assert decision.gate.champion.rows == 31 and decision.gate.champion.low < 0 < decision.gate.champion.high
    assert not decision.promoted and registry.champion(tiny_name).version == "1"


def test_the_champion_is_scored_with_its_own_codes(registry):
    """A champion whose category codes differ from the candidate's is scored as it serves: the held-out rows
    re-coded with ITS bundled codes, never with the candidate's."""
    name = "sessions_coded"
    rng = np.random.default_rng(3)
    n = 900
    sites = rng.choice(list("ABCDEF"), n)
    effect = {"A": 2.0, "B": 9.0, "C": 4.0, "D": 15.0, "E": 1.0, "F": 7.0}
    hour = rng.integers(0, 24, n)
    y = pd.Series(np.array([effect[s] for s in sites]) + 0.2 * hour + rng.normal(0, 0.5, n), name="y")
    frame = pd.DataFrame({"site": sites, "hour": hour})
    cut = int(n * 0.7)

    def trained(codes: dict[str, int]) -> core.TrainedModel:
        X = pd.DataFrame({"site_code": frame["site"].map(codes), "hour": frame["hour"]})
        params = {"objective": "regression_l1", "num_leaves": 7, "verbose": -1, "num_threads": 1, "seed": 1}
        booster = lgb.train(params, lgb.Dataset(X.iloc[:cut], y.iloc[:cut]), num_boost_round=40)
        test_X, test_y = X.iloc[cut:].reset_index(drop=True), y.iloc[cut:].reset_index(drop=True)
        baseline = np.full(len(test_y), y.iloc[:cut].median())
        return core.TrainedModel(
            name=name, task="regression", booster=booster, features=["site_code", "hour"], params=params,
            evaluation=core.Evaluation.of("mae", core.REGRESSION_METRICS, test_y, booster.predict(test_X),
                                          {"train median": baseline}),
            test_X=test_X, test_y=test_y, test_baselines={"train median": baseline},
            encodings={"site_code": codes}, test_codes=pd.DataFrame({"site_code": frame["site"].iloc[cut:].to_numpy()}))

    champion = trained({s: i for i, s in enumerate("ABCDEF")})
    assert registry.decide(champion, registry.register(champion, tags={})).promoted
    assert registry.load_encodings(name, "1") == {"site_code": {s: i for i, s in enumerate("ABCDEF")}}
    renumbered = trained({s: i for i, s in enumerate("FEDCBA")})  # the same model, its sites renumbered

    version, prediction, note, comparable = registry.champion_prediction(renumbered)
    assert version == "1" and comparable and "its own codes of site_code" in note
    as_served = champion.booster.predict(champion.test_X)
    np.testing.assert_allclose(prediction, as_served)
    wrong_codes = champion.booster.predict(renumbered.test_X)  # what the old gate did
    assert core.score("mae", renumbered.test_y, wrong_codes) > 1.5 * core.score("mae", renumbered.test_y, as_served)

    decision = registry.decide(renumbered, registry.register(renumbered, tags={}))
    assert decision.gate.champion.rival_score == pytest.approx(champion.evaluation.model["mae"])
    assert not decision.promoted  # equal models: nothing to gain
    assert registry.champion(name).version == "1"


def test_a_model_that_does_not_beat_its_baselines_is_never_promoted(registry):
    name = "occupancy_no_skill"
    shuffled = make_trained(name, shuffle_labels=True)
    oracle = make_trained(name, oracle_baseline=True)
    for trained in (shuffled, oracle):
        assert not trained.evaluation.beats_baselines
        decision = registry.decide(trained, registry.register(trained, tags={}))
        assert not decision.promoted and decision.champion_version is None
        assert "does NOT beat its strongest baseline" in decision.reason and not decision.beats_baselines
    assert registry.champion(name) is None
    assert registry.versions(name) == ["1", "2"]
    with pytest.raises(LookupError):
        registry.load_champion(name)


def test_feature_changes(registry):
    name = "occupancy_features"
    few = make_trained(name, features=FEATURES[:3], n=5000)
    assert registry.decide(few, registry.register(few, tags={})).promoted

    # The challenger has more features; the rows hold the champion's three: both are scored on the same rows.
    more = make_trained(name, n=5000)
    decision = registry.decide(more, registry.register(more, tags={}))
    assert decision.champion_score is not None and "on its own 3 features" in decision.reason
    assert decision.promoted == decision.gate.champion.better

    # Now a challenger whose rows lack a feature the champion needs: not comparable, the champion stays.
    champion_before = registry.champion(name).version
    champion_features = registry.load_version(name, champion_before, flavor="lightgbm").feature_name()
    dropped = [f for f in FEATURES if f in champion_features][-1]
    fewer = make_trained(name, features=[f for f in FEATURES if f != dropped], n=5000)
    decision = registry.decide(fewer, registry.register(fewer, tags={}))
    assert not decision.promoted and decision.champion_score is None
    assert "NOT COMPARABLE" in decision.reason and dropped in decision.reason
    assert registry.champion(name).version == champion_before


def test_run_params_metrics_and_artifacts(registry):
    trained = make_trained("session_kwh", task="regression")
    trained.evaluation.baselines["zero (kWh)"]["r2"] = float("nan")  # NaN metrics are left out
    registered = registry.register(trained, tags={"dagster/run_id": "r1", "odd key!": "kept"})
    run = registry.client.get_run(registered.run_id)

    metrics = run.data.metrics
    assert metrics["test_mae"] == pytest.approx(trained.evaluation.model["mae"])
    assert metrics["baseline_user_mean_test_mae"] == pytest.approx(trained.evaluation.baselines["user mean"]["mae"])
    assert "baseline_zero_kwh_test_mae" in metrics and "baseline_zero_kwh_test_r2" not in metrics
    params = run.data.params
    assert params["features"] == ",".join(FEATURES) and params["n_features"] == "5"
    assert params["heldout_sha256"] == heldout_hash(trained.test_X, trained.test_y)
    assert params["learning_rate"] == "0.1" and params["split_test_start"] == "row 560"
    assert run.data.tags["odd key_"] == "kept" and run.data.tags["task"] == "regression"

    artifacts = {a.path for a in registry.client.list_artifacts(registered.run_id)}
    assert {"model_card.md", "evaluation.csv", "features.json", "encodings.json"} <= artifacts
    version = registry.client.get_model_version("session_kwh", registered.version)
    assert version.description == trained.model_card()
    assert version.tags["heldout_sha256"] == params["heldout_sha256"]
    local = Path(registry.client.download_artifacts(registered.run_id, "features.json", str(registry.root.parent)))
    assert json.loads(local.read_text()) == FEATURES
    assert sanitize_key("Baseline: user mean (kWh)") == "baseline_user_mean_kwh"


def test_ensure_is_idempotent_and_a_second_registry_sees_the_same_store(registry):
    trained = make_trained("occupancy_shared")
    registered = registry.register(trained, tags={})
    registry.decide(trained, registered)

    registry.ensure(["occupancy_shared", "another_model"])
    registry.ensure(["occupancy_shared", "another_model"])
    other = Registry(registry.root)
    other.ensure(["another_model"])
    assert other.experiment_id("occupancy_shared") == registry.experiment_id("occupancy_shared")
    assert other.versions("occupancy_shared") == registry.versions("occupancy_shared") == ["1"]
    assert other.champion("occupancy_shared") == registry.champion("occupancy_shared") == registered
    names = [e.name for e in other.client.search_experiments()]
    assert names.count("ev-assets/another_model") == 1 and names.count("ev-assets/occupancy_shared") == 1
    assert sorted(p.name for p in registry.root.iterdir()) == ["artifacts", "mlflow.db", "mlflow.db.lock"]


def test_mlflow_global_state_is_left_as_it_was(registry, monkeypatch):
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////nonexistent/elsewhere.db")
    before = mlflow.get_tracking_uri()
    trained = make_trained("occupancy_global_state")
    registry.register(trained, tags={})
    assert mlflow.get_tracking_uri() == before == "sqlite:////nonexistent/elsewhere.db"
    assert os.environ["MLFLOW_TRACKING_URI"] == before
    assert mlflow.active_run() is None
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
