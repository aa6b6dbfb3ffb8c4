"""Model assets: each trains on its family's feature set, is tracked and registered in MLflow, and takes the
`champion` alias only through the gate (better than its baselines and than the current champion on the same
held-out rows). A model that is not promoted stays a registered version."""


import dagster as dg

from ev_assets.defs.ml.families import FAMILIES, Family
from ev_assets.defs.ml.features import feature_dir, input_versions, read_feature_set
from ev_assets.defs.resources import EvConfig
from ev_assets.lib.ml.core import InsufficientData, TrainedModel
from ev_assets.lib.settings import Settings

GATE = "promotion_gate"
# Champions exported to ONNX for edge devices (a charger, a vehicle), each with a blocking parity check.
ONNX_MODELS = ("station_available_15min", "station_available_60min", "vehicle_plugged_in_15min")
PARITY = "onnx_parity"
GATE_DESCRIPTION = (
    "Passes when this training's version took the `champion` alias: it beats its baselines and the current champion "
    "on the same held-out rows. Fails (WARN) when the version stays a challenger, and (WARN, `skipped`) when there "
    "was too little history to train: the reason gives the history needed and the history present."
)


_REGISTRIES: dict = {}  # data root -> its Registry, whose store is ensured once per process (~3 s each time)


def registry(settings: Settings):
    from ev_assets.lib.ml.registry import Registry

    root = settings.mlflow_dir
    if root not in _REGISTRIES or not (root / "mlflow.db").exists():
        _REGISTRIES[root] = Registry(root)
        _REGISTRIES[root].ensure()
    return _REGISTRIES[root]


# (feature set, data root, file stamps) -> trained models: the models of a family train once per feature-set version
_TRAINED: dict[tuple, dict[str, TrainedModel]] = {}


def trained_model(settings: Settings, family: Family, name: str) -> TrainedModel:
    folder = feature_dir(settings, family)
    stamp = tuple(sorted((p.name, p.stat().st_mtime_ns) for p in folder.glob("*.parquet")))
    if not stamp:
        raise InsufficientData(f"feature set {family.feature_set} is empty: materialize ml/{family.feature_set} first")
    key = (family.feature_set, str(settings.data_dir), stamp)
    if key not in _TRAINED:
        _TRAINED.clear()  # one family's models at a time in memory
        _TRAINED[key] = {model.name: model for model in family.train(read_feature_set(settings, family), settings)}
    return _TRAINED[key][name]


def build_model_asset(family: Family, name: str) -> dg.AssetsDefinition:
    key = dg.AssetKey(["ml", name])

    @dg.multi_asset(
        name=name,
        specs=[
            dg.AssetSpec(
                key,
                deps=[dg.AssetKey(["ml", family.feature_set])],
                group_name="ml",
                kinds={"lightgbm", "mlflow"},
                skippable=True,  # too little data: no model, a failed check says why
                description=f"LightGBM model `{name}` trained on ml/{family.feature_set}, registered in MLflow.",
            )
        ],
        check_specs=[
            dg.AssetCheckSpec(GATE, asset=key, blocking=True, description=GATE_DESCRIPTION),
            *([dg.AssetCheckSpec(PARITY, asset=key, blocking=True, description=(
                "The champion exported to ONNX (`<data root>/ml/onnx/<model>.onnx`) predicts the held-out rows as "
                "LightGBM does, within atol=rtol=1e-4 (float32)."))] if name in ONNX_MODELS else []),
        ],
    )
    def model(context: dg.AssetExecutionContext, ev_config: EvConfig):
        settings = ev_config.settings()
        try:
            trained = trained_model(settings, family, name)
        except InsufficientData as exc:
            # too little history is not a failure of the run: the model is skipped, its check says what is missing
            # (WARN: it blocks nothing), and the champion, if any, stays
            context.log.warning(f"{name} skipped: too little history: {exc}")
            skipped = {"skipped": True, "reason": f"too little history: {exc}"}
            yield dg.AssetCheckResult(asset_key=key, check_name=GATE, passed=False,
                                      severity=dg.AssetCheckSeverity.WARN, metadata=skipped)
            if name in ONNX_MODELS:
                yield dg.AssetCheckResult(asset_key=key, check_name=PARITY, passed=False,
                                          severity=dg.AssetCheckSeverity.WARN, metadata={**skipped, "exported": False})
            return
        store = registry(settings)
        tags = {"dagster_run_id": context.run_id, "feature_set": family.feature_set,
                **{f"input.{k}": v for k, v in input_versions(context, (f"ml/{family.feature_set}", *family.inputs)).items()}}
        version = store.register(trained, tags=tags)
        decision = store.decide(trained, version)
        table = trained.evaluation.table()
        context.log.info(f"{name} v{version.version}: {trained.evaluation.verdict()}; "
                         f"{'promoted to champion' if decision.promoted else 'not promoted: ' + decision.reason}")
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                "registered_version": version.version,
                "mlflow_run": dg.MetadataValue.url(version.run_url),
                "mlflow_version": dg.MetadataValue.url(version.version_url),
                "evaluation": dg.MetadataValue.md(table.to_markdown()),
                "verdict": trained.evaluation.verdict(),
                "primary_metric": trained.evaluation.primary,
                "test_score": float(trained.evaluation.model[trained.evaluation.primary]),
                "beats_baselines": trained.evaluation.beats_baselines,
                "promoted": decision.promoted,
                "decision": decision.reason,
                "train_rows": trained.train_rows,
                "test_rows": len(trained.test_y),
                "splits": dg.MetadataValue.json(trained.splits),
                "features": dg.MetadataValue.json(trained.features),
            },
        )
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name=GATE,
            passed=decision.promoted,
            severity=dg.AssetCheckSeverity.ERROR if decision.promoted else dg.AssetCheckSeverity.WARN,
            metadata={
                "decision": decision.reason,
                "metric": decision.metric,
                "challenger_score": _number(decision.challenger_score),
                "champion_version": decision.champion_version or "none",
                "champion_score": _number(decision.champion_score),
            },
        )
        if name in ONNX_MODELS:
            yield onnx_parity(settings, key, trained, decision.promoted)

    return model


def onnx_parity(settings: Settings, key: dg.AssetKey, trained: TrainedModel, promoted: bool) -> dg.AssetCheckResult:
    """Export a new champion to ONNX and check it against LightGBM on the held-out rows."""
    from ev_assets.lib.ml import export

    path = settings.onnx_dir / f"{trained.name}.onnx"
    if not promoted:
        return dg.AssetCheckResult(asset_key=key, check_name=PARITY, passed=True, metadata={
            "exported": False, "reason": "not the champion: the champion's export stays", "path": dg.MetadataValue.path(str(path))})
    result = export.to_onnx(trained, path)
    return dg.AssetCheckResult(asset_key=key, check_name=PARITY, passed=result.parity_ok, metadata={
        "exported": True, "path": dg.MetadataValue.path(str(path)), "bytes": result.bytes,
        "max_abs_diff": float(result.max_abs_diff), "rows": result.n_rows, "tolerance": dg.MetadataValue.json(result.tolerance)})


def _number(value) -> float:
    return float("nan") if value is None else float(value)


model_assets = [build_model_asset(family, name) for family in FAMILIES for name in family.models]
