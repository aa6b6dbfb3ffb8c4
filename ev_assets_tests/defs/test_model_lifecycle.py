"""The model lifecycle as assets: candidate -> evaluation (blocking checks) -> champion, on tiny synthetic models.

The family's training is replaced by the registry tests' synthetic LightGBM models, so the four runs below take
seconds each; everything else (MLflow registry, gate, ONNX export, alias) is the real thing.
"""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from ev_assets.defs.ml import models
from ev_assets.defs.ml.families import Family
from ev_assets.defs.resources import EvConfig, ModelRegistry
from ev_assets.lib.ml import export
from ev_assets.lib.ml.registry import Registry
from ev_assets_tests.fixtures.synthetic import make_trained

NAME = "station_available_60min"  # one of the models exported to ONNX: it has the parity check too


def _run(assets, data_dir, instance):
    return dg.materialize(assets, instance=instance, raise_on_error=False, resources={
        "ev_config": EvConfig(data_dir=str(data_dir)), "model_registry": ModelRegistry(data_dir=str(data_dir))})


def _checks(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
            for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}


def _materialized(result, stage: str) -> list:
    return [e.materialization for e in result.get_asset_materialization_events()
            if e.asset_key == models.key_of(NAME, stage)]


def _metadata(result, stage: str) -> dict:
    [event] = _materialized(result, stage)
    return {k: v.value for k, v in event.metadata.items()}


def test_the_alias_moves_only_when_every_check_passes(data_dir, monkeypatch):
    queue: list = []
    family = Family("synthetic_features", "synthetic", (), None, lambda con, s: {},
                    lambda frames, settings: [queue.pop(0)], (NAME,))
    folder = data_dir / "ml" / "features" / "synthetic_features"
    folder.mkdir(parents=True)
    pd.DataFrame({"x": [1]}).to_parquet(folder / "features.parquet")
    assets = [models.build_candidates_asset(family, [NAME]), models.build_evaluation_asset(NAME),
              models.build_champion_asset(NAME)]
    registry = Registry(data_dir / "mlflow")
    onnx = data_dir / "ml" / "onnx" / f"{NAME}.onnx"

    with dg.DagsterInstance.ephemeral() as instance:
        # 1. the first candidate beats its baseline beyond noise and exports faithfully: the champion
        queue.append(make_trained(NAME, rounds=3, n=5000))
        first = _run(assets, data_dir, instance)
        assert first.success
        assert all(c.passed for c in _checks(first).values()), _checks(first)
        assert registry.champion(NAME).version == "1" and onnx.exists()
        evaluation = _metadata(first, "evaluation")
        assert evaluation["strongest_baseline"] == "baseline: base rate"
        assert evaluation["vs_strongest_baseline"]["ci_high"] < 0  # the interval excludes zero
        assert _metadata(first, "champion")["promoted"] is True
        assert _checks(first)[models.GATE].description.startswith("passes the gate; vs the strongest baseline -")

        # 2. a worse candidate: the gate fails (WARN, the run succeeds), the champion asset leaves the alias
        queue.append(make_trained(NAME, rounds=1, n=5000))
        worse = _run(assets, data_dir, instance)
        assert worse.success
        gate = _checks(worse)[models.GATE]
        assert not gate.passed and gate.severity == dg.AssetCheckSeverity.WARN
        assert "does NOT beat the champion" in gate.metadata["reason"].value
        champion = _metadata(worse, "champion")
        assert champion["promoted"] is False and champion["champion_version"] == "1"
        assert "promotion_gate failed" in champion["reason"]
        assert registry.champion(NAME).version == "1"
        tags = registry.client.get_model_version(NAME, "2").tags
        assert tags["champion_gate.decision"] == "not promoted" and tags["champion_gate.check.promotion_gate"] == "failed"
        # what stays and why, with the figures, on the champion asset and in the version's reason tag in MLflow
        for reason in (champion["reason"], tags["champion_gate.reason"]):
            assert reason.startswith("version 2 not promoted: version 1 stays champion; promotion_gate failed: "), reason
            assert "does NOT beat the champion beyond noise" in reason and "95% CI" in reason, reason
        # the check's execution history lists each run's verdict with its intervals
        assert gate.description.startswith("does NOT pass the gate") and "vs champion v1 +" in gate.description
        assert float(tags["champion_gate.champion_ci_low"]) > 0  # worse beyond noise, recorded with its interval

        # 3. a better candidate whose ONNX export disagrees with LightGBM: parity fails (ERROR, blocking), the
        # champion asset does not even run, the alias and the champion's export stay
        exported = onnx.read_bytes()
        real = export.to_onnx

        def broken(trained, path, **kwargs):
            found = real(trained, path, **kwargs)
            return export.OnnxExport(**{**found.__dict__, "parity_ok": False, "max_abs_diff": 0.5, "n_mismatched": 7})

        monkeypatch.setattr(export, "to_onnx", broken)
        queue.append(make_trained(NAME, rounds=60, n=5000))
        blocked = _run(assets, data_dir, instance)
        assert not blocked.success
        checks = _checks(blocked)
        assert checks[models.GATE].passed and not checks[models.PARITY].passed
        assert checks[models.PARITY].severity == dg.AssetCheckSeverity.ERROR
        assert not _materialized(blocked, "champion")
        assert registry.champion(NAME).version == "1" and onnx.read_bytes() == exported
        assert registry.client.get_model_version(NAME, "3").tags["champion_gate.check.onnx_parity"] == "failed"

        # 4. the same candidate with a faithful export takes over
        monkeypatch.setattr(export, "to_onnx", real)
        queue.append(make_trained(NAME, rounds=60, n=5000))
        better = _run(assets, data_dir, instance)
        assert better.success and _metadata(better, "champion")["promoted"] is True
        assert registry.champion(NAME).version == "4"
        assert registry.client.get_model_version(NAME, "4").tags["champion_gate.decision"] == "promoted"
        assert onnx.read_bytes() != exported


def test_too_little_history_skips_the_candidate_and_everything_after_it(data_dir):
    from ev_assets.defs.ml.families import FAMILIES

    family = next(f for f in FAMILIES if "session_energy_kwh" in f.models)
    assets = [models.build_candidates_asset(family, ["session_energy_kwh"]),
              models.build_evaluation_asset("session_energy_kwh"), models.build_champion_asset("session_energy_kwh")]
    with dg.DagsterInstance.ephemeral() as instance:
        result = _run(assets, data_dir, instance)
    assert result.success  # nothing broke: the model had no history to learn from
    assert not result.get_asset_materialization_events()
    [trained] = _checks(result).values()
    assert trained.check_name == models.TRAINED and not trained.passed
    assert trained.severity == dg.AssetCheckSeverity.WARN and trained.metadata["skipped"].value is True
    assert trained.metadata["reason"].value.startswith("too little history: feature set session_features is empty")
    with pytest.raises(LookupError):
        Registry(data_dir / "mlflow").load_champion("session_energy_kwh")
