"""Monitoring: the prediction log, drift reports and live error of the served availability models, the jobs that
run them and retrain, and the sensor that closes the loop."""

import dagster as dg

from ev_assets.defs.ml.models import key_of
from ev_assets.defs.monitoring.assets import MONITORED, MONITORED_FAMILIES, monitoring_assets
from ev_assets.defs.monitoring.sensors import build_retrain_sensor
from ev_assets.defs.resources import after_the_warehouse

FEATURE_SETS = dg.AssetSelection.assets(*(dg.AssetKey(["ml", f.feature_set]) for f in MONITORED_FAMILIES))

monitoring_job = dg.define_asset_job(
    "monitoring_job",
    selection=dg.AssetSelection.groups("monitoring") | FEATURE_SETS,
    description="Refresh the station-time features from the latest polls, then the prediction log, the drift report "
    "of each availability model against its training reference, and their live error (checks: no_drift, "
    "live_error_within_limit).",
)

retrain_job = dg.define_asset_job(
    "retrain_job",
    selection=FEATURE_SETS | dg.AssetSelection.assets(
        *(key_of(name, stage) for family in MONITORED_FAMILIES for name in family.models
          for stage in ("candidate", "evaluation", "champion"))),
    description="Retrain the monitored models on fresh features: rebuild their feature set, train and register a "
    "candidate of each, evaluate it against its baselines and the champion (checks promotion_gate, no_regression, "
    "onnx_parity) and move the champion alias only when all pass (the version's MLflow tags say why). Requested by "
    f"the sensor retrain_on_drift. Models: {', '.join(MONITORED)} (with their family).",
)

retrain_on_drift = build_retrain_sensor(retrain_job)

# Daily, after the warehouse run (00:45 UTC) has built the day: the drift and live-error checks the sensor reads.
monitoring_schedule = after_the_warehouse(
    "monitoring_daily", monitoring_job, "15 1 * * *",
    "Refresh the station-time features, the drift reports and the live error every day at 01:15 UTC.")

defs = dg.Definitions(assets=monitoring_assets, jobs=[monitoring_job, retrain_job], schedules=[monitoring_schedule],
                      sensors=[retrain_on_drift])
