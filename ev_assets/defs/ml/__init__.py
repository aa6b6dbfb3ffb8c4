"""ML: feature sets from the warehouse and the raw tables, LightGBM models tracked and registered in MLflow with
a champion gate, and the job that trains them all."""

import dagster as dg

from ev_assets.defs.ml.features import feature_set_assets
from ev_assets.defs.ml.models import model_assets

ml_job = dg.define_asset_job(
    "ml_job",
    selection=dg.AssetSelection.groups("ml"),
    description="Build the feature sets, then per model: train and register a candidate, evaluate it against its "
    "baselines and the champion (blocking checks promotion_gate, no_regression, onnx_parity), and move the champion "
    "alias only when all pass (MLflow under the data root).",
)

defs = dg.Definitions(assets=[*feature_set_assets, *model_assets], jobs=[ml_job])
