"""The model lifecycle as assets, three per model `<name>` (in the shape of Dagster's project_ml example):

- `ml/<name>_candidate`: trained on its family's feature set and registered in MLflow as a new version, WITHOUT
  the `champion` alias. Check `enough_history` (WARN, `skipped`) says why when there was too little history. The
  candidates of one family are one step (`<feature set>_candidates`): the family trains once.
- `ml/<name>_evaluation`: the candidate against all its baselines and the current champion (scored as it serves:
  its own booster and its own category codes) on the same held-out rows, with paired bootstrap intervals of the
  loss differences (lib/ml/gate.py); written to the version's MLflow tags and to the metadata. Blocking checks:
  `promotion_gate` (better than its strongest baseline and than the champion beyond noise), `no_regression` (no
  dataset or site group worse than under the champion) and, for the models exported to ONNX, `onnx_parity` (the
  candidate's export predicts the held-out rows as LightGBM does).
- `ml/<name>_champion`: moves the `champion` alias to the candidate only when all of these passed; otherwise the
  alias stays where it was (the metadata says which version serves and why).

A failed `onnx_parity` is an ERROR (an export defect): Dagster then skips the champion asset. A candidate that
simply is not better fails `promotion_gate` / `no_regression` with WARN (the run succeeds, the champion stays):
the champion asset reads the evaluation's verdict and leaves the alias alone.
"""


import shutil
from dataclasses import dataclass, field
from typing import Sequence

import dagster as dg
import pandas as pd

from ev_assets.defs.ml.families import FAMILIES, Family
from ev_assets.defs.ml.features import feature_dir, input_versions, read_feature_set
from ev_assets.defs.resources import EvConfig, ModelRegistry
from ev_assets.lib.ml import catalog, core
from ev_assets.lib.ml.core import InsufficientData, TrainedModel
from ev_assets.lib.ml.registry import GATE_TAG_PREFIX, RegisteredVersion
from ev_assets.lib.settings import Settings

TRAINED, GATE, NO_REGRESSION, PARITY = "enough_history", "promotion_gate", "no_regression", "onnx_parity"
ONNX_MODELS = catalog.ONNX_MODELS  # exported for edge devices, each with a blocking parity check
DESCRIPTIONS = {
    TRAINED: "Passes when the candidate was trained; fails (WARN, `skipped`) when there was too little history: the "
             "reason gives the history needed and the history present. Nothing downstream runs then.",
    GATE: "Passes when the candidate is better than its strongest baseline and than the current champion (scored "
          "with its own category codes) on the same held-out rows: the paired bootstrap interval of the loss "
          "difference lies below zero (or below -EV_GATE_MARGIN x the rival's loss). Fails (WARN): the champion "
          "stays.",
    NO_REGRESSION: "Passes when no dataset or site group of the held-out rows is worse under the candidate than "
                   "under the champion beyond noise (the interval of the difference lies above zero). Fails (WARN): "
                   "the champion stays.",
    PARITY: "The candidate exported to ONNX (`<data root>/ml/onnx/candidates/<model>-v<version>.onnx`) predicts the "
            "held-out rows as LightGBM does, within atol=rtol=1e-4 (float32). Fails (ERROR): the champion asset "
            "does not run.",
}


@dataclass
class Candidate:
    """What `ml/<name>_candidate` hands on: the trained model and its registered version."""

    trained: TrainedModel
    registered: RegisteredVersion


@dataclass
class Verdict:
    """What `ml/<name>_evaluation` hands on: the candidate's version and each blocking check's outcome."""

    registered: RegisteredVersion
    checks: dict[str, bool]  # check name -> passed
    reasons: dict[str, str] = field(default_factory=dict)
    onnx_path: str | None = None  # the candidate's ONNX export (copied to the champion's path on promotion)

    @property
    def cleared(self) -> bool:
        return bool(self.checks) and all(self.checks.values())


def key_of(name: str, stage: str) -> dg.AssetKey:
    """`ml/<name>_candidate`, `ml/<name>_evaluation`, `ml/<name>_champion`."""
    return dg.AssetKey(["ml", f"{name}_{stage}"])


def train_family(settings: Settings, family: Family) -> dict[str, TrainedModel]:
    """Every model of `family`, trained on its feature set, with backtests and importance in their cards."""
    if not any(feature_dir(settings, family).glob("*.parquet")):
        raise InsufficientData(f"feature set {family.feature_set} is empty: materialize ml/{family.feature_set} first")
    frames = read_feature_set(settings, family)
    models = family.train(frames, settings)
    describe_models(models, family, frames, settings)
    return {model.name: model for model in models}


def describe_models(models: list[TrainedModel], family: Family, frames: dict, settings: Settings) -> None:
    """What is measured beyond the held-out split, into the model cards and MLflow: rolling-origin backtests
    (`settings.backtest_origins` earlier origins) and feature importance."""
    from ev_assets.lib.ml import backtest, importance

    if settings.backtest_origins:
        shares = backtest.ORIGIN_SHARES[: settings.backtest_origins]
        backtest.attach(models, backtest.run(lambda cut: family.train(cut, settings), frames, family.time_column,
                                             family.models, shares))
    for model in models:
        importance.attach(model)


def build_candidates_asset(family: Family, names: Sequence[str] | None = None) -> dg.AssetsDefinition:
    """The candidates of a family's models (all, or `names`) as one step: the family trains once, whichever executor
    runs the step (a step per model would train the whole family, backtests included, once per model)."""
    names = list(names or family.models)
    keys = {name: key_of(name, "candidate") for name in names}

    @dg.multi_asset(
        name=f"{family.feature_set}_candidates",
        deps=[dg.AssetKey(["ml", family.feature_set])],
        outs={keys[name].to_python_identifier(): dg.AssetOut(
            key=keys[name], group_name="ml", kinds={"lightgbm", "mlflow"}, is_required=False,  # too little data: none
            description=f"Candidate `{name}`: LightGBM trained on ml/{family.feature_set}, registered in MLflow as a "
                        "new version without the `champion` alias.") for name in names},
        check_specs=[dg.AssetCheckSpec(TRAINED, asset=keys[name], description=DESCRIPTIONS[TRAINED]) for name in names],
        can_subset=True,
    )
    def candidates(context: dg.AssetExecutionContext, ev_config: EvConfig, model_registry: ModelRegistry):
        settings = ev_config.settings()
        selected = [name for name in names if keys[name] in context.selected_asset_keys]
        try:
            trained_models = train_family(settings, family)
        except InsufficientData as exc:
            # too little history is not a failure of the run: no candidate, the check says what is missing (WARN:
            # it blocks nothing), and the champion, if any, stays
            for name in selected:
                context.log.warning(f"{name} skipped: too little history: {exc}")
                yield dg.AssetCheckResult(asset_key=keys[name], check_name=TRAINED, passed=False,
                                          severity=dg.AssetCheckSeverity.WARN,
                                          metadata={"skipped": True, "reason": f"too little history: {exc}"})
            return
        tags = {"dagster_run_id": context.run_id, "feature_set": family.feature_set,
                **{f"input.{k}": v for k, v in input_versions(context, (f"ml/{family.feature_set}", *family.inputs)).items()}}
        for name in selected:
            trained, key = trained_models[name], keys[name]
            registered = model_registry.store().register(trained, tags=tags)
            context.log.info(f"{name}: candidate version {registered.version} registered; {trained.evaluation.verdict()}")
            yield dg.Output(Candidate(trained, registered), output_name=key.to_python_identifier(), metadata={
                "registered_version": registered.version,
                "mlflow_run": dg.MetadataValue.url(registered.run_url),
                "mlflow_version": dg.MetadataValue.url(registered.version_url),
                "verdict": trained.evaluation.verdict(),
                "train_rows": trained.train_rows,
                "test_rows": len(trained.test_y),
                "splits": dg.MetadataValue.json(trained.splits),
                "features": dg.MetadataValue.json(trained.features),
                "bundled_codes": dg.MetadataValue.json(sorted(trained.encodings)),
            })
            yield dg.AssetCheckResult(asset_key=key, check_name=TRAINED, passed=True,
                                      metadata={"skipped": False, "registered_version": registered.version})

    return candidates


def build_evaluation_asset(name: str) -> dg.AssetsDefinition:
    key, candidate_key = key_of(name, "evaluation"), key_of(name, "candidate")
    checks = [GATE, NO_REGRESSION, *([PARITY] if name in ONNX_MODELS else [])]

    @dg.multi_asset(
        name=f"{name}_evaluation",
        ins={"candidate": dg.AssetIn(candidate_key)},
        outs={key.to_python_identifier(): dg.AssetOut(
            key=key, group_name="ml", kinds={"mlflow"},
            description=f"Candidate `{name}` against all its baselines and the current champion (with its own "
                        "category codes) on the same held-out rows, with paired bootstrap intervals; recorded in the "
                        "version's MLflow tags.")},
        check_specs=[dg.AssetCheckSpec(c, asset=key, blocking=True, description=DESCRIPTIONS[c]) for c in checks],
    )
    def evaluation(context: dg.AssetExecutionContext, ev_config: EvConfig, model_registry: ModelRegistry,
                   candidate: Candidate):
        settings = ev_config.settings()
        store = model_registry.store()
        trained, registered = candidate.trained, candidate.registered
        champion_version, champion_prediction, note, comparable = store.champion_prediction(trained)
        from ev_assets.lib.ml import gate

        result = gate.judge(trained, champion_prediction, champion_version, note, comparable=comparable,
                            confidence=settings.gate_confidence, resamples=settings.gate_resamples,
                            margin_share=settings.gate_margin)
        verdict = Verdict(registered, {GATE: result.passed, NO_REGRESSION: not result.regressions},
                          {GATE: result.reason(), NO_REGRESSION: result.regression_reason()})
        parity = None
        if name in ONNX_MODELS:
            parity = onnx_export(settings, trained, registered.version)
            verdict.checks[PARITY] = parity.parity_ok
            verdict.onnx_path = str(parity.path)
            verdict.reasons[PARITY] = (f"max |onnx - lightgbm| {parity.max_abs_diff:.3g} on {parity.n_rows:,} rows"
                                       + ("" if parity.parity_ok else f"; {parity.n_mismatched} rows outside"))
        failed = [c for c, ok in verdict.checks.items() if not ok]
        decision = ("cleared for promotion" if verdict.cleared else "not promoted")
        reason = result.reason() if not failed else "; ".join(f"{c} failed: {verdict.reasons[c]}" for c in failed)
        store.record(registered, {**result.tags(), f"{GATE_TAG_PREFIX}decision": decision,
                                  f"{GATE_TAG_PREFIX}reason": reason,
                                  **{f"{GATE_TAG_PREFIX}check.{c}": "passed" if ok else "failed"
                                     for c, ok in verdict.checks.items()}})
        context.log.info(f"{name} v{registered.version}: {decision}; {reason}")
        table = trained.evaluation.table()
        if champion_prediction is not None:
            table.loc[f"champion v{champion_version}"] = {
                m: round(core.score(m, trained.test_y, champion_prediction), 4) for m in table.columns if m in core.METRICS}
        yield dg.Output(verdict, output_name=key.to_python_identifier(), metadata={
            "candidate_version": registered.version,
            "champion_version": champion_version or "none",
            "champion_scored": note,
            "evaluation": dg.MetadataValue.md(table.to_markdown()),
            "primary_metric": result.metric,
            "strongest_baseline": result.baseline.rival if result.baseline else "none",
            "vs_strongest_baseline": dg.MetadataValue.json(result.baseline.as_dict() if result.baseline else {}),
            "vs_champion": dg.MetadataValue.json(result.champion.as_dict() if result.champion else {}),
            "groups_vs_champion": dg.MetadataValue.json({g: c.as_dict() for g, c in result.groups.items()}),
            "decision": decision,
            "reason": reason,
            "mlflow_version": dg.MetadataValue.url(registered.version_url),
        })
        # the check's description is what its execution history lists per run: the verdict and its intervals
        gate_summary = "; ".join([result.reason().split("; ")[0], f"vs the strongest baseline {_interval(result.baseline)}",
                                  *([f"vs champion v{champion_version} {_interval(result.champion)}"] if result.champion else [])])
        yield _check(key, GATE, result.passed, gate_summary, {
            "reason": result.reason(), "metric": result.metric,
            "challenger_score": _number(result.baseline.candidate if result.baseline else None),
            "strongest_baseline": result.baseline.rival if result.baseline else "none",
            "baseline_ci": _interval(result.baseline), "champion_version": champion_version or "none",
            "champion_score": _number(result.champion.rival_score if result.champion else None),
            "champion_ci": _interval(result.champion), "champion_scored": note})
        yield _check(key, NO_REGRESSION, not result.regressions, _short(result.regression_reason()), {
            "reason": result.regression_reason(), "groups": dg.MetadataValue.json(
                {g: {"difference": c.difference, "ci_low": c.low, "ci_high": c.high, "worse": c.worse}
                 for g, c in result.groups.items()})})
        if parity is not None:
            yield dg.AssetCheckResult(asset_key=key, check_name=PARITY, passed=parity.parity_ok,
                                      description=verdict.reasons[PARITY], metadata={
                "path": dg.MetadataValue.path(str(parity.path)), "bytes": parity.bytes,
                "max_abs_diff": float(parity.max_abs_diff), "rows": parity.n_rows,
                "tolerance": dg.MetadataValue.json(parity.tolerance)})  # a failure is an ERROR: it blocks

    return evaluation


def build_champion_asset(name: str) -> dg.AssetsDefinition:
    key, evaluation_key = key_of(name, "champion"), key_of(name, "evaluation")

    @dg.asset(key=key, ins={"verdict": dg.AssetIn(evaluation_key)}, group_name="ml", kinds={"mlflow"},
              description=f"The champion of `{name}`: the version holding the MLflow alias `champion`, which the "
                          "service loads. Moves to the candidate only when every check of its evaluation passed.")
    def champion(context: dg.AssetExecutionContext, ev_config: EvConfig, model_registry: ModelRegistry,
                 verdict: Verdict) -> dg.MaterializeResult:
        settings = ev_config.settings()
        store = model_registry.store()
        registered = verdict.registered
        previous = store.champion(name)
        failed = [c for c, ok in verdict.checks.items() if not ok]
        promoted = verdict.cleared
        if promoted:
            store.promote(name, registered.version)
            if verdict.onnx_path:  # the champion's export, where edge devices fetch it
                target = settings.onnx_dir / f"{name}.onnx"
                shutil.copyfile(verdict.onnx_path, target)
            reason = f"version {registered.version} passed {', '.join(verdict.checks)}: promoted"
        else:  # what stays, then why: each failed check with its figures (the version's reason tag keeps them)
            reason = (f"version {registered.version} not promoted: "
                      + (f"version {previous.version} stays champion" if previous else "no champion yet") + "; "
                      + "; ".join(f"{c} failed: {verdict.reasons.get(c, 'no reason recorded')}" for c in failed))
        store.record(registered, {f"{GATE_TAG_PREFIX}decision": "promoted" if promoted else "not promoted",
                                  f"{GATE_TAG_PREFIX}decided_at": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
                                  **({} if promoted else {f"{GATE_TAG_PREFIX}reason": reason})})
        context.log.info(f"{name}: {reason}")
        current = store.champion(name)
        return dg.MaterializeResult(metadata={
            "champion_version": current.version if current else "none",
            "promoted": promoted,
            "candidate_version": registered.version,
            "previous_version": previous.version if previous else "none",
            "reason": reason,
            **({"mlflow_version": dg.MetadataValue.url(current.version_url)} if current else {}),
        })

    return champion


def onnx_export(settings: Settings, trained: TrainedModel, version: str):
    """Export a candidate to ONNX beside the champions' exports and check it against LightGBM."""
    from ev_assets.lib.ml import export

    return export.to_onnx(trained, settings.onnx_dir / "candidates" / f"{trained.name}-v{version}.onnx")


def _check(key: dg.AssetKey, name: str, passed: bool, description: str, metadata: dict) -> dg.AssetCheckResult:
    # not better is a normal outcome (WARN: the run succeeds); the champion asset reads the verdict
    return dg.AssetCheckResult(asset_key=key, check_name=name, passed=passed, metadata=metadata, description=description,
                               severity=dg.AssetCheckSeverity.ERROR if passed else dg.AssetCheckSeverity.WARN)


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _interval(comparison) -> str:
    if comparison is None:
        return "none"
    return f"{comparison.difference:+.4g} [{comparison.low:+.4g}, {comparison.high:+.4g}] ({comparison.confidence:.0%})"


def _number(value) -> float:
    return float("nan") if value is None else float(value)


model_assets = [
    *(build_candidates_asset(family) for family in FAMILIES),
    *(asset for family in FAMILIES for name in family.models
      for asset in (build_evaluation_asset(name), build_champion_asset(name))),
]
