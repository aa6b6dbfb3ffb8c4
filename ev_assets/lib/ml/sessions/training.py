"""Training the session models (`train_session_models`).

Design: one LightGBM model per target trained on both datasets together, with a `dataset` feature (0 Norway, 1
ACN), so one registered model serves both sources. The two datasets lie in different years (2018-2020 vs 2021),
so a single time split over their union would put all of Norway in training and all of ACN in the test. Each
dataset is therefore split by time on its own (`core.time_split` on the plug-in instant); the training, validation
and test blocks are the unions of the per-dataset blocks, and every figure is reported for the pooled test set and
per dataset (`mae_norway`, `smape_acn`, ... in the Evaluation's dicts, and in the description).

Baselines on the same held-out rows: the user's median of earlier (ended) sessions and the user's median on the
same weekday (the fair rivals of an L1 model, which predicts a median; falling back to the user's median, then to
the dataset's training median), the user's mean of earlier sessions (falling back to the dataset's training
mean), and the dataset's training mean ("global train mean"; per dataset, since a mean pooled over a Norwegian
garage and a Californian workplace would be a straw man). The gate judges against the strongest.

The garage / site / station / user-type codes are learned on each training's rows; they are bundled with the
logged model (`TrainedModel.encodings`), and the held-out rows keep the value behind each code
(`TrainedModel.test_codes`), so that another version is scored with its own codes.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd

from ev_assets.lib.ml import catalog, intervals
from ev_assets.lib.ml import session_baselines as medians
from ev_assets.lib.ml.core import (
    LGB_BASE,
    REGRESSION_METRICS,
    Evaluation,
    InsufficientData,
    TrainedModel,
    score,
    time_split,
)
from ev_assets.lib.ml.sessions.data import DATASET_CODE, DATASET_LABEL, INPUT_GRACE_MINUTES, MAX_DURATION_H, Sessions
from ev_assets.lib.ml.sessions.features import CODE_OF, FEATURES, _keyed, encode, session_features, vocabularies_of

MIN_SESSIONS = 50  # usable sessions a dataset needs to be trained and judged on (a week of the simulated feed has ~60-90)
VALID_SHARE, TEST_SHARE = 0.15, 0.2

TARGETS = {catalog.SESSION_ENERGY: "energy_kwh", catalog.SESSION_DURATION: "duration_h"}
HISTORY = {"energy_kwh": "user_mean_energy_kwh_before", "duration_h": "user_mean_duration_h_before"}
BASELINE_USER, BASELINE_GLOBAL = "user mean of earlier sessions", "global train mean"
# the model minimises absolute error (a median): its fair rivals are medians of the user's earlier sessions
BASELINE_USER_MEDIAN = medians.BASELINE_USER_MEDIAN
BASELINE_USER_WEEKDAY = medians.BASELINE_USER_WEEKDAY_MEDIAN

PARAMS = {
    "objective": "regression_l1",  # the primary metric is MAE; targets are skewed (overnight sessions)
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 30,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    **LGB_BASE,
}
MAX_ROUNDS, EARLY_STOPPING = 2000, 50


# --- training ------------------------------------------------------------------------------------------------------
def _describe_input(s: Sessions) -> str:
    dropped = ", ".join(f"{n} {reason}" for reason, n in s.dropped.items()) or "none"
    return f"{DATASET_LABEL[s.dataset]}: {s.received:,} sessions received, {len(s.frame):,} usable (dropped: {dropped})"


def _split(features: pd.DataFrame, found: list[Sessions]):
    """Per-dataset time splits, unioned; datasets with fewer than MIN_SESSIONS usable sessions are left out."""
    parts, bounds, used, left_out, unsplit = {"train": [], "valid": [], "test": []}, {}, [], [], []
    for s in found:
        rows = features[features["dataset"] == s.dataset] if len(features) else features
        if len(rows) < MIN_SESSIONS:
            if s.received:
                left_out.append(f"{DATASET_LABEL[s.dataset]} left out: {len(rows)} usable sessions, fewer than "
                                f"{MIN_SESSIONS}")
            continue
        try:
            train, valid, test, b = time_split(rows, "plugin_utc", VALID_SHARE, TEST_SHARE)
        except InsufficientData as exc:
            unsplit.append(f"{DATASET_LABEL[s.dataset]} left out: {exc}")
            continue
        for name, part in (("train", train), ("valid", valid), ("test", test)):
            parts[name].append(part)
        bounds.update({f"{s.dataset}_{k}": v for k, v in b.items()})
        used.append(s.dataset)
    if not used:
        detail = "; ".join(_describe_input(s) for s in found)
        raise InsufficientData(
            f"session models need at least {MIN_SESSIONS} usable sessions (with plug-in and plug-out times, a "
            f"duration over 0 and up to {MAX_DURATION_H} h, energy >= 0) in raw.session_reports or "
            f"raw.acn_sessions; found {detail}" + (f" ({'; '.join(unsplit)})" if unsplit else "")
        )
    return {k: pd.concat(v, ignore_index=True) for k, v in parts.items()}, bounds, used, left_out + unsplit


def _per_dataset(y: pd.Series, prediction: np.ndarray, datasets: pd.Series, used: list[str]) -> dict[str, float]:
    """The overall regression metrics plus `<metric>_<dataset>` for each dataset trained on."""
    metrics = {m: score(m, y, prediction) for m in REGRESSION_METRICS}
    for dataset in used:
        rows = (datasets == DATASET_CODE[dataset]).to_numpy()
        metrics.update({f"{m}_{dataset}": score(m, y[rows], prediction[rows]) for m in REGRESSION_METRICS})
    return metrics


def _verdict(mae: float, baselines: dict[str, float], tie: float = 0.01) -> str:
    """Per-dataset verdict on MAE against the best baseline; a gain under `tie` (relative) is called a tie. (The
    paired bootstrap interval of the difference is in `realdata` and the gate.)"""
    name = min(baselines, key=baselines.get)
    gain = (baselines[name] - mae) / baselines[name] if baselines[name] > 0 else 0.0
    if not np.isfinite(gain):
        return "no verdict (undefined MAE)"
    if gain >= tie:
        return f"beats every baseline on MAE ({gain:.1%} below the {name})"
    if gain > -tie:
        return f"on par with the {name} on MAE (within {tie:.0%}: no real gain)"
    return f"does NOT beat the {name} on MAE ({-gain:.1%} above it)"


def _coverage(bounds: dict[str, str], used: list[str]) -> str:
    """What the data covers, and what the per-dataset split means for the pooled test set."""
    kinds = {"norway": "residential garages in Norway", "acn": "one Californian workplace site"}
    spans = "; ".join(f"{DATASET_LABEL[d]}: {kinds[d]}, {bounds[f'{d}_train_start'][:10]} to "
                      f"{bounds[f'{d}_test_end'][:10]}" for d in used)
    text = f"Trained on {spans}; other sites, countries or years may behave differently."
    latest_train = max(pd.Timestamp(bounds[f"{d}_valid_start"]) for d in used)
    if len(used) > 1 and min(pd.Timestamp(bounds[f"{d}_test_start"]) for d in used) < latest_train:
        text += (" Each dataset is split by time on its own, so some test rows are older than another dataset's "
                 "training rows: only within a dataset is the test set strictly later.")
    return text


def _train_one(name: str, target: str, parts: dict[str, pd.DataFrame], bounds: dict, used: list[str],
               found: list[Sessions], left_out: list[str], vocabularies: dict[str, dict[str, int]],
               test_codes: pd.DataFrame, features: list[str] = FEATURES) -> TrainedModel:
    train, valid, test = parts["train"], parts["valid"], parts["test"]
    train_set = lgb.Dataset(train[features], train[target], free_raw_data=False)
    valid_set = lgb.Dataset(valid[features], valid[target], reference=train_set)
    booster = lgb.train(PARAMS, train_set, num_boost_round=MAX_ROUNDS, valid_sets=[valid_set],
                        callbacks=[lgb.early_stopping(EARLY_STOPPING, verbose=False)])
    best = booster.best_iteration or booster.current_iteration()
    if booster.current_iteration() != best:  # lgb.train returns the best rounds only; make sure of it
        booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))

    test_X = test[features].reset_index(drop=True)
    test_y = test[target].reset_index(drop=True).rename(name)
    test = test.reset_index(drop=True)
    train_mean = train.groupby("dataset")[target].mean()
    global_mean = test_X["dataset"].map(train_mean).to_numpy(float)
    user_mean = test[HISTORY[target]].to_numpy(float)  # from the rows, not the features: an ablation may drop it
    user_mean = np.where(np.isnan(user_mean), global_mean, user_mean)
    median_baselines = medians.baseline_predictions(train, test, target)
    prediction = booster.predict(test_X)
    predictions = {BASELINE_USER_MEDIAN: median_baselines[BASELINE_USER_MEDIAN],
                   BASELINE_USER_WEEKDAY: median_baselines[BASELINE_USER_WEEKDAY],
                   BASELINE_USER: user_mean, BASELINE_GLOBAL: global_mean}
    evaluation = Evaluation(
        primary="mae",
        model=_per_dataset(test_y, prediction, test_X["dataset"], used),
        baselines={b: _per_dataset(test_y, p, test_X["dataset"], used) for b, p in predictions.items()},
    )
    unit = "kWh" if target == "energy_kwh" else "h"
    what = "energy delivered (kWh)" if target == "energy_kwh" else "plug-in duration (h, plug-out minus plug-in)"
    per_dataset, weak = [], []
    for dataset in used:
        rows_train = int((train["dataset"] == DATASET_CODE[dataset]).sum())
        rows_test = int((test_X["dataset"] == DATASET_CODE[dataset]).sum())
        m, s = evaluation.model[f"mae_{dataset}"], evaluation.model[f"smape_{dataset}"]
        maes = {b: d[f"mae_{dataset}"] for b, d in evaluation.baselines.items()}
        smapes = {b: d[f"smape_{dataset}"] for b, d in evaluation.baselines.items()}
        u, g = maes[BASELINE_USER_MEDIAN], maes[BASELINE_GLOBAL]
        su, sg = smapes[BASELINE_USER_MEDIAN], smapes[BASELINE_GLOBAL]
        verdict = _verdict(m, maes)
        best_smape = min(smapes, key=smapes.get)
        if s > smapes[best_smape]:
            verdict += f"; but its SMAPE is worse than that of the {best_smape}"
        if not verdict.startswith("beats") or ";" in verdict:
            weak.append(f"{DATASET_LABEL[dataset]}, {what}: {verdict}.")
        per_dataset.append(
            f"- {DATASET_LABEL[dataset]}: train {rows_train:,} / test {rows_test:,} sessions, test from "
            f"{bounds[f'{dataset}_test_start']} to {bounds[f'{dataset}_test_end']}; MAE {m:.3f} {unit} "
            f"(user median {u:.3f}, train mean {g:.3f}), SMAPE {s:.1f}% (user median {su:.1f}%, train mean {sg:.1f}%): "
            f"{verdict}"
        )
    description = "\n".join([
        f"Predicts a charging session's {what} at plug-in time, from the plug-in's local hour, weekday and public "
        "holiday, the garage/site/station, the user type and the user's earlier (already ended) sessions. One "
        "LightGBM model (L1 objective) for the Norwegian residential session reports and the Caltech ACN sessions "
        "together, with a `dataset` feature; each dataset split by time on its own.",
        "",
        "Input:",
        *(f"- {_describe_input(s)}" for s in found if s.received),
        "",
        "Held-out figures per dataset:",
        *per_dataset,
    ])
    limits = [
        f"Verdict on the pooled test rows: {evaluation.verdict()}.",
        *weak,
        "The user's history is the strongest signal: a user's first sessions (and ACN sessions without a user id, "
        "keyed by parking space) get little more than the calendar.",
        _coverage(bounds, used),
        "Duration is how long the car stays plugged in (not charging time); energy depends on the car's battery "
        "and state of charge, which are not known. Of the ACN user inputs (requested kWh, minutes available) only "
        f"the first is used, when made within {INPUT_GRACE_MINUTES} min of plug-in; later changes post-date it.",
        f"Sessions without a plug-out time, with a duration <= 0 or over {MAX_DURATION_H} h, or negative energy "
        "are dropped (counts above).",
        *left_out,
    ]
    model = TrainedModel(
        name=name, task="regression", booster=booster, features=list(features),
        params={**PARAMS, "num_boost_round": best, "early_stopping_rounds": EARLY_STOPPING,
                "valid_share": VALID_SHARE, "test_share": TEST_SHARE, "max_duration_h": MAX_DURATION_H,
                "datasets": used},
        evaluation=evaluation, test_X=test_X, test_y=test_y, splits=dict(bounds), train_rows=len(train),
        description=description, limits="\n".join(f"- {line}" for line in limits),
        test_baselines=predictions,
        test_groups=test["dataset"].map({v: k for k, v in DATASET_CODE.items()}).reset_index(drop=True),
        test_clusters=test["history_key"].reset_index(drop=True),
        encodings=vocabularies, test_codes=test_codes.reset_index(drop=True),
    )
    interval = intervals.fit(PARAMS, train[features], train[target], valid[features], valid[target],
                             group_feature="dataset")
    intervals.attach(model, interval, {str(code): dataset for dataset, code in DATASET_CODE.items()})
    return model


def train_session_models(session_reports: pd.DataFrame, acn_sessions: pd.DataFrame,
                         feature_names: list[str] = FEATURES) -> list[TrainedModel]:
    """Session energy and duration at plug-in time: [session_energy_kwh, session_duration_h].

    `session_reports` and `acn_sessions` have the columns of raw.session_reports and raw.acn_sessions; either may
    be empty (the model then trains on the other). Raises InsufficientData when neither has enough usable sessions.
    """
    features, found = session_features(session_reports, acn_sessions)
    parts, bounds, used, left_out = _split(features, found)
    vocabularies = vocabularies_of(parts["train"])
    # the value behind each code of the held-out rows: another version re-codes them with its own vocabulary
    test_codes = pd.DataFrame({code: _keyed(parts["test"], column) for code, column in CODE_OF.items()})
    parts = {k: encode(v, vocabularies) for k, v in parts.items()}
    return [_train_one(name, target, parts, bounds, used, found, left_out, vocabularies, test_codes, list(feature_names))
            for name, target in TARGETS.items()]
