"""The availability classifiers `station_available_<h>min` (`train_availability_models`) on the station-time
feature set (`availability_features`): LightGBM binary (probabilities), split by time (`core.time_split` on
`polled_at`), early stopping on the validation block, judged on the test block against "persistence" (available
now -> available later, 0/1), "calibrated persistence" (the training rate of available later given available
now), the "state and hour transition" (given the state now and the local hour, falling back to the state alone)
and the "historical mean for the station, weekday and hour" (target rate in the training block, falling back to
the station's rate, then the global rate). The gate judges against the strongest, with station-days as the
bootstrap's clusters and cities as the groups that must not get worse.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ev_assets.lib.ml import catalog
from ev_assets.lib.ml.core import (
    float32_exact,
    LGB_BASE,
    CLASSIFICATION_METRICS,
    Evaluation,
    InsufficientData,
    TrainedModel,
    time_split,
)
from ev_assets.lib.ml.stations.availability_features import AVAILABILITY_FEATURES, NAN_FEATURES, _target_offset
from ev_assets.lib.ml.stations.shared import _city_groups, _fit, _missing, _poi_columns

MIN_AVAILABILITY_DAYS = 2  # distinct UTC days with polls (the default `make demo` simulates 2)
AVAILABILITY_TARGET = re.compile(r"^available_in_(\d+)min$")
BASELINE_PERSISTENCE = "persistence"
BASELINE_HISTORY = "historical mean for the station, weekday and hour"
BASELINE_CALIBRATED = "calibrated persistence"  # P(available later | available now), on the training rows
BASELINE_TRANSITION = "state and hour transition"  # P(available later | available now, local hour)
CLASSIFICATION_PARAMS = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    **LGB_BASE,
}
MAX_ROUNDS, EARLY_STOPPING = 1000, 50


def _horizons_in(frame: pd.DataFrame) -> list[int]:
    return sorted(int(m.group(1)) for c in frame.columns if (m := AVAILABILITY_TARGET.match(str(c))))


def _historical_mean(train: pd.DataFrame, test: pd.DataFrame, target: str) -> np.ndarray:
    """Training rate of the target per (station, weekday, hour), else per station, else overall."""
    keys = ["station_id", "weekday", "hour"]
    by_slot = train.groupby(keys)[target].mean().rename("by_slot")
    by_station = train.groupby("station_id")[target].mean().rename("by_station")
    joined = test[keys].join(by_slot, on=keys).join(by_station, on="station_id")
    return joined["by_slot"].fillna(joined["by_station"]).fillna(train[target].mean()).to_numpy(float)


def _transition(train: pd.DataFrame, test: pd.DataFrame, target: str, keys: list[str]) -> np.ndarray:
    """The training rate of the target given `keys` of the row now (e.g. its state, and the hour), falling back to
    the rate given the state alone, then overall: persistence made a calibrated probability."""
    by_keys = train.groupby(keys)[target].mean().rename("by_keys")
    by_state = train.groupby("any_available")[target].mean().rename("by_state")
    joined = test[keys].join(by_keys, on=keys).join(by_state, on="any_available")
    return joined["by_keys"].fillna(joined["by_state"]).fillna(train[target].mean()).to_numpy(float)


def _check_classes(part: pd.DataFrame, target: str, block: str) -> None:
    values = set(part[target].unique())
    if values != {0, 1}:
        only = "available" if values == {1} else "unavailable"
        raise InsufficientData(
            f"{target}: the {block} block ({len(part):,} rows, {part['polled_at'].min()} .. {part['polled_at'].max()}) "
            f"holds only '{only}' moments; a classifier needs both outcomes in training and test. More history or "
            "more stations are needed."
        )


def train_availability_models(features: pd.DataFrame) -> list[TrainedModel]:
    """One LightGBM classifier per target `available_in_<h>min` of `station_time_features`: names
    `station_available_<h>min`, probabilities, primary metric Brier score, evaluated against persistence and the
    historical mean for the station, weekday and hour on a later time block."""
    if features is None or len(features) == 0:
        raise InsufficientData("no station polls: the station-time feature set is empty (marts.fct_charging_point_status "
                               "has no rows - ingest polls and run warehouse_job)")
    horizons = _horizons_in(features)
    if not horizons:
        raise InsufficientData("the station-time frame has no target column available_in_<h>min")
    poi_columns = _poi_columns(features)
    feature_names = [*AVAILABILITY_FEATURES, *poi_columns]
    _missing(features, ["station_id", "polled_at", *feature_names], "station-time")

    frame = float32_exact(features, feature_names)  # the ONNX export reads float32
    frame["polled_at"] = pd.to_datetime(frame["polled_at"], utc=True)
    days = frame["polled_at"].dt.floor("D")
    n_days = days.nunique()
    if n_days < MIN_AVAILABILITY_DAYS:
        raise InsufficientData(
            f"only {n_days} day(s) of polls ({days.min():%Y-%m-%d} .. {days.max():%Y-%m-%d}) for "
            f"{frame['station_id'].nunique()} station(s): the availability models need at least "
            f"{MIN_AVAILABILITY_DAYS} days, so that training, validation and test cover different times"
        )

    models = []
    for horizon in horizons:
        target = f"available_in_{horizon}min"
        name = catalog.AVAILABILITY.get(horizon, f"station_available_{horizon}min")
        rows = frame[frame[target].notna()].copy()
        rows[target] = rows[target].astype(int)
        if rows.empty:
            raise InsufficientData(f"{target}: no poll has a poll {horizon} minutes later to learn from")
        train, valid, test, bounds = time_split(rows, "polled_at")
        for block, part in (("training", train), ("test", test)):
            _check_classes(part, target, block)
        booster = _fit(CLASSIFICATION_PARAMS, train, valid, feature_names, target)

        test_X = test[feature_names].reset_index(drop=True)
        test_y = test[target].reset_index(drop=True).rename(name)
        prediction = booster.predict(test_X)
        baselines = {
            BASELINE_PERSISTENCE: test["any_available"].to_numpy(float),
            BASELINE_CALIBRATED: _transition(train, test, target, ["any_available"]),
            BASELINE_TRANSITION: _transition(train, test, target, ["any_available", "hour"]),
            BASELINE_HISTORY: _historical_mean(train, test, target),
        }
        evaluation = Evaluation.of("brier", CLASSIFICATION_METRICS, test_y, prediction, baselines)
        offset = _target_offset(horizon)
        splits = {
            "split_by": "time (poll slot, UTC)",
            **bounds,
            "train_rows": str(len(train)), "valid_rows": str(len(valid)), "test_rows": str(len(test)),
            "stations": str(rows["station_id"].nunique()),
            "target_poll": f"the station's poll slot t + {offset} min (holds t + {horizon} min); rows without it dropped",
            "dropped_without_target": str(int(frame[target].isna().sum())),
        }
        table = evaluation.table()
        models.append(TrainedModel(
            name=name,
            task="classification",
            booster=booster,
            features=feature_names,
            params={**CLASSIFICATION_PARAMS, "num_boost_round": booster.current_iteration(), "horizon_minutes": horizon},
            evaluation=evaluation,
            test_X=test_X,
            test_y=test_y,
            splits=splits,
            train_rows=len(train),
            test_baselines=baselines,
            test_groups=_city_groups(test),
            # the polls of one station on one day move together: the bootstrap resamples station-days
            test_clusters=(test["station_id"].astype(str) + "@" + test["polled_at"].dt.strftime("%Y-%m-%d"))
            .reset_index(drop=True),
            description=(
                f"Probability that a charging station has at least one AVAILABLE charging point {horizon} minutes "
                f"from now (its poll at t + {offset} min), for drivers choosing where to go. Features at poll time t "
                "only: local time of day, weekday, German public holidays, the station's current and recent "
                "availability and occupancy (lags, 1 h / 3 h / 24 h rolling means), its equipment, operator, city "
                f"and nearby points of interest. Test block {bounds['test_start']} .. {bounds['test_end']}: model "
                f"Brier {table.loc['model', 'brier']:.4f}; "
                + ", ".join(f"{b} {table.loc['baseline: ' + b, 'brier']:.4f}" for b in baselines) + "."
            ),
            limits=(
                f"Verdict: {evaluation.verdict()}. Trained on {rows['station_id'].nunique()} stations over "
                f"{n_days} days: weekly rhythm and holidays are barely seen in a short history. 'Available' "
                "means a charging point reported AVAILABLE at the poll - not whether its connector fits the car "
                "or whether someone arrives first. Public holidays are the nationwide ones only. Station "
                "attributes are the master-data version valid at t; POI counts are today's OSM map. Features that "
                f"can be NaN: {', '.join(NAN_FEATURES)}."
            ),
        ))
    return models
