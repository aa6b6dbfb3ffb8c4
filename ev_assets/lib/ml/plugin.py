"""Will the vehicle be plugged in 15 minutes from now, and how much energy will it still need to be full then?

Two LightGBM models on the readings of `raw.vehicle_telemetry` (features and targets: `lib/sources/telemetry/features.py`):

- `vehicle_plugged_in_15min` (classification, a probability): the plug flag at t + 15 min.
- `vehicle_energy_to_full_15min` (regression): 100 - state of charge at t + 15 min, in percentage points of the
  battery (the table has no battery capacity, so not kWh).

A row is one reading at t with a target (a reading near t + h, no gap in between); rows whose horizon falls in a
gap are neither trained on nor judged. Features only look back (the reading itself, lags and deltas within the
segment, time since the last gap and since the plug flag changed, UTC hour and weekday); no vehicle id and no
epoch-second feature (float32 ONNX export, and no trend to learn from a date).

Split: `core.time_split` on the reading time over all vehicles together (train, then validation for early
stopping, then the held-out test), with the rows whose target lies beyond their block's end dropped (purged), so
no training label looks into the validation or test period.

Baselines on the same held-out rows: "persistence", nothing changes in 15 minutes (plugged in now; 100 - SOC now);
for energy-to-full also "persistence of the SOC slope" (the SOC keeps its recent rate per hour for 15 minutes,
within 0..100).

Primary metrics. Regression: MAE (percentage points, the unit a user reads). Classification: Brier score, not
AUC. The flag changes within 15 minutes of only 5-8 % of the readings (simulated fleet), so what matters is whether the probability
is right where a change is likely (in the evening, on the way home, near a full battery), and Brier is a proper
score of exactly that; it is also defined when a test period holds one class only, where AUC is not (NaN never
wins a comparison). AUC and the others are reported beside it.

Features reach LightGBM on binary grids (`model_matrix`), so the float32 ONNX export takes the same branches.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd

from ev_assets.lib.ml import intervals
from ev_assets.lib.ml import catalog
from ev_assets.lib.ml.core import (
    LGB_BASE,
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    Evaluation,
    InsufficientData,
    TrainedModel,
    time_split,
)
from ev_assets.lib.sources.telemetry.features import FEATURES, GAP_MINUTES, HORIZON_MINUTES, feature_frame

# The registered names say 15 min whatever `horizon_minutes` is (defs/ml declares them): another horizon is in
# the description and in splits["horizon_minutes"].
PLUGGED_MODEL, ENERGY_MODEL = catalog.PLUGGED_IN, catalog.ENERGY_TO_FULL
BASELINE = "persistence"
BASELINE_SLOPE = "persistence of the SOC slope"  # the state of charge keeps changing at its recent rate
MIN_ROWS = 500  # readings with a target needed to train and judge
# days the readings with a target must span: on fewer, the held-out last 20 % is less than a day (a few hours,
# often without a single plug-in). Four days are the bare minimum, not enough to beat persistence: on the simulated
# fleet the plug-in model does so on 2 of 8 seeds at 7 days (the test period is the first weekend), 4 of 8 at 14,
# and 8 of 8 at 28 (the energy model on all of them).
MIN_DAYS = 4
VALID_SHARE, TEST_SHARE = 0.15, 0.2
COMMON = {
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    **LGB_BASE,
}
PARAMS = {
    PLUGGED_MODEL: {**COMMON, "objective": "binary"},
    # L2, although the primary metric is MAE: on the simulated fleet it is as good on MAE as L1 (within +-0.03
    # points) in a third to a half of the boosting rounds
    ENERGY_MODEL: {**COMMON, "objective": "regression"},
}
MAX_ROUNDS, EARLY_STOPPING = 1000, 50
# binary digits kept after the point, per feature (the others are whole numbers): a value below 2**e with b bits
# needs e + b + 1 < 24 mantissa bits for it and the midpoints to be exact in float32. SOC (0..100, deltas and rates
# within +-1000) to 1/1024, minutes (at most a week, 10080 < 2**14) to 1/64 (~1 s), hour (< 32) to 1/1024.
GRID_BITS = {
    **{c: 10 for c in ("soc_pct", "soc_lag1", "soc_lag2", "soc_delta", "soc_change_30min", "soc_rate_per_hour")},
    **{c: 6 for c in ("minutes_since_prev", "minutes_in_segment", "minutes_in_plug_state")},
    "hour": 10,
}


def train_plugin_models(traces: pd.DataFrame, horizon_minutes: int = HORIZON_MINUTES,
                        gap_minutes: int = GAP_MINUTES) -> list[TrainedModel]:
    """The plug-in probability and energy-to-full models at `horizon_minutes`, from rows of raw.vehicle_telemetry.

    Raises InsufficientData (with what the traces gave) when there are too few readings with a target, or the
    plug flag never changes in the training period.
    """
    frame, report = feature_frame(traces, horizon_minutes, gap_minutes)
    rows = frame[frame["plugged_in_target"].notna()]
    if len(rows) < MIN_ROWS:
        raise InsufficientData(
            f"{len(rows)} telemetry reading(s) have a target {horizon_minutes} min ahead, {MIN_ROWS} are needed: "
            f"{report.summary()}. A target needs a later reading of the same vehicle near t + {horizon_minutes} min "
            f"without a gap (> {gap_minutes} min) in between; ingest more telemetry (EV_SIM_DAYS for the simulated "
            "feed)"
        )
    span_days = (rows["reading_at"].max() - rows["reading_at"].min()).total_seconds() / 86400
    if span_days < MIN_DAYS:
        raise InsufficientData(
            f"the telemetry readings with a target span {span_days:.1f} day(s), {MIN_DAYS} are needed (so that the "
            f"held-out last {int(TEST_SHARE * 100)} % is more than a few hours): {report.summary()}. Ingest more "
            "telemetry (for the simulated feed, EV_SIM_DAYS; 28 days give models that beat persistence)"
        )
    train, valid, test, bounds = time_split(rows, "reading_at", VALID_SHARE, TEST_SHARE)
    valid_start, test_start = pd.Timestamp(bounds["valid_start"]), pd.Timestamp(bounds["test_start"])
    train = train[train["target_at"] < valid_start]
    valid = valid[valid["target_at"] < test_start]
    if min(len(train), len(valid), len(test)) < 30:
        raise InsufficientData(f"too few rows per time block after purging ({len(train)} train, {len(valid)} valid, "
                               f"{len(test)} test): {report.summary()}")
    if train["plugged_in_target"].nunique() < 2:
        state = "plugged in" if train["plugged_in_target"].iloc[0] else "unplugged"
        raise InsufficientData(f"every vehicle is {state} throughout the training period ({bounds['train_start']} .. "
                               f"{bounds['valid_start']}): nothing to learn about plugging in")
    splits = {**bounds, "horizon_minutes": str(horizon_minutes), "gap_minutes": str(gap_minutes),
              "train_rows": str(len(train)), "valid_rows": str(len(valid)), "test_rows": str(len(test))}
    vehicles = rows["vehicle_id"].nunique()
    trained = []
    slope = test["soc_rate_per_hour"].astype(float).fillna(0.0) * horizon_minutes / 60
    clusters = (test["vehicle_id"].astype(str) + "@" + test["reading_at"].dt.strftime("%Y-%m-%d")).reset_index(drop=True)
    for name, target, task, metrics, primary, baselines in (
        (PLUGGED_MODEL, "plugged_in_target", "classification", CLASSIFICATION_METRICS, "brier",
         {BASELINE: test["plugged_in"]}),
        (ENERGY_MODEL, "energy_to_full_target", "regression", REGRESSION_METRICS, "mae",
         {BASELINE: 100.0 - test["soc_pct"], BASELINE_SLOPE: 100.0 - (test["soc_pct"] + slope).clip(0, 100)}),
    ):
        booster = _fit(PARAMS[name], train, valid, target)
        test_X = model_matrix(test).reset_index(drop=True)
        test_y = test[target].astype(float).reset_index(drop=True)
        baselines = {b: p.astype(float).to_numpy() for b, p in baselines.items()}
        evaluation = Evaluation.of(primary, metrics, test_y, booster.predict(test_X), baselines)
        trained.append(TrainedModel(
            name=name, task=task, booster=booster, features=list(FEATURES), params=dict(PARAMS[name]),
            evaluation=evaluation, test_X=test_X, test_y=test_y, splits=dict(splits), train_rows=len(train),
            description=_description(name, horizon_minutes, gap_minutes, vehicles, report.summary()),
            limits=_limits(name, horizon_minutes), test_baselines=baselines, test_clusters=clusters,
        ))
        if task == "regression":  # energy to full: P10-P90 beside the point forecast
            interval = intervals.fit(PARAMS[name], model_matrix(train), train[target].astype(float),
                                     model_matrix(valid), valid[target].astype(float))
            intervals.attach(trained[-1], interval)
    return trained


def model_matrix(frame: pd.DataFrame) -> pd.DataFrame:
    """The features on binary grids (`GRID_BITS`), so that every value, and every midpoint of two values where
    LightGBM puts a split, is exact in float32: the float32 ONNX model then takes the same branch as the booster.
    (On a decimal grid it does not: a test value of 17.7 minutes sits exactly on the split between training values
    17.67 and 17.73, which float64 and float32 round to different sides.)"""
    X = frame[FEATURES].astype(float)
    for column, bits in GRID_BITS.items():
        X[column] = np.round(X[column] * 2.0**bits) / 2.0**bits
    return X


def _fit(params: dict, train: pd.DataFrame, valid: pd.DataFrame, target: str) -> lgb.Booster:
    train_set = lgb.Dataset(model_matrix(train), train[target].astype(float), free_raw_data=False)
    valid_set = lgb.Dataset(model_matrix(valid), valid[target].astype(float), reference=train_set)
    return lgb.train(params, train_set, num_boost_round=MAX_ROUNDS, valid_sets=[valid_set],
                     callbacks=[lgb.early_stopping(EARLY_STOPPING, verbose=False)])


def _description(name: str, horizon: int, gap: int, vehicles: int, summary: str) -> str:
    what = (f"The probability that a vehicle is plugged in {horizon} minutes after a telemetry reading"
            if name == PLUGGED_MODEL else
            f"The energy a vehicle will still need to be full {horizon} minutes after a telemetry reading, as 100 - "
            "state of charge in percentage points of its battery")
    return (f"{what}, from that reading and the ones before it (state of charge, plug flag, their recent changes, "
            f"time of day and week). Trained on raw.vehicle_telemetry of {vehicles} vehicle(s): {summary}. A silence "
            f"of more than {gap} minutes is a gap: nothing is derived across it, and readings whose horizon falls in "
            f"one are left out. Judged against persistence (nothing changes in {horizon} minutes) on the last "
            f"{int(TEST_SHARE * 100)} % of the time range.")


def _limits(name: str, horizon: int) -> str:
    common = ("Only defined where the car reports again within the horizon: readings just before it falls asleep "
              "have no target and are not judged. Hour and weekday are UTC (the table has no location), so a "
              "change of daylight saving time shifts habits by an hour. One model for all vehicles, without their "
              "identity: a vehicle with habits unlike any in training is predicted from the others. ")
    if name == PLUGGED_MODEL:
        return common + (f"Plug-ins are hard to foresee {horizon} minutes ahead from state of charge alone; most of "
                         "the skill is in keeping the current state and in the hours when changes happen.")
    return common + ("Percentage points, not kWh (no battery capacity in the table); a charge limit below 100 % "
                     "means the car never gets to zero.")
