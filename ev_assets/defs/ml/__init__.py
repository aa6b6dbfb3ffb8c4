"""ML: feature sets from the warehouse and the raw tables, LightGBM models tracked and registered in MLflow with
a champion gate, and the job that trains them all."""

import dagster as dg

from ev_assets.defs.ml.features import feature_set_assets
from ev_assets.defs.ml.models import model_assets
from ev_assets.defs.resources import after_the_warehouse

ml_job = dg.define_asset_job(
    "ml_job",
    selection=dg.AssetSelection.groups("ml"),
    description="Build the feature sets, then per model: train and register a candidate, evaluate it against its "
    "baselines and the champion (blocking checks promotion_gate, no_regression, onnx_parity), and move the champion "
    "alias only when all pass (MLflow under the data root).",
)

# Weekly, after the Sunday's warehouse run (00:45 UTC): models train on the accumulated history; between two
# trainings the retraining sensor (monitoring) reacts to drift. Stopped by default, like every schedule.
ml_schedule = after_the_warehouse(
    "ml_weekly", ml_job, "0 2 * * 1",
    "Train every model on the accumulated history each Monday at 02:00 UTC; the gate decides.")

defs = dg.Definitions(assets=[*feature_set_assets, *model_assets], jobs=[ml_job], schedules=[ml_schedule])
