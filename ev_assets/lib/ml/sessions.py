"""Session energy (kWh) and duration (h) forecast at plug-in time, on the Norwegian residential session reports
(Sørensen et al. 2021) and Caltech ACN-Data sessions.

Design: one LightGBM model per target trained on both datasets together, with a `dataset` feature (0 Norway, 1
ACN), so one registered model serves both sources. The two datasets lie in different years (2018-2020 vs 2021),
so a single time split over their union would put all of Norway in training and all of ACN in the test. Each
dataset is therefore split by time on its own (`core.time_split` on the plug-in instant); the training, validation
and test blocks are the unions of the per-dataset blocks, and every figure is reported for the pooled test set and
per dataset (`mae_norway`, `smape_acn`, ... in the Evaluation's dicts, and in the description).

Leakage safety. A row is one session as seen at its plug-in instant t:

- calendar features in the site's local time (hour with minutes as a fraction, weekday, public holiday: Norway
  for the reports, US/California for ACN);
- the history of its user (Norway: `user_id`; ACN: `user_id`, else the parking space, else the station): the
  count and mean energy and duration of the user's sessions that had ENDED by t (plug-out <= t: a session still
  plugged in at t has no known energy or duration yet), and the days since the user's previous plug-in strictly
  before t. A user's first session has count 0 and NaN means;
- the garage (Norway) or site and station (ACN) and the user type (Norway: private or shared), as integer codes
  learned on the training rows (-1: absent or unseen in training).

- the medians of the user's ended sessions (`user_median_<target>_before`, see `session_baselines`);
- what the driver tells the ACN app at plug-in: the FIRST of the session's user inputs (`kwh_requested_first`,
  `minutes_available_first`), used only when it was made within `INPUT_GRACE_MINUTES` of the plug-in (a median of
  0 min on the real JPL data; 99% within 7 min). A later change of the inputs is never used (it post-dates t).
  NaN for Norway and for ACN sessions without inputs.

No epoch-second or date feature (the ONNX export is float32, and a trend learned on one year would not hold).

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

from dataclasses import dataclass, field

import holidays
import lightgbm as lgb
import numpy as np
import pandas as pd

from ev_assets.lib.ml import catalog, intervals
from ev_assets.lib.ml import session_baselines as medians
from ev_assets.lib.ml.core import LGB_BASE, REGRESSION_METRICS, Evaluation, InsufficientData, TrainedModel, score, time_split

DATASETS = ("norway", "acn")
DATASET_CODE = {"norway": 0, "acn": 1}
DATASET_LABEL = {"norway": "Norway (session reports)", "acn": "ACN (Caltech JPL)"}
DEFAULT_TZ = {"norway": "Europe/Oslo", "acn": "America/Los_Angeles"}
HOLIDAYS = {"norway": ("NO", None), "acn": ("US", "CA")}

MAX_DURATION_H = 7 * 24  # a plug-in longer than a week is a data error or an abandoned car, not a session
MIN_SESSIONS = 50  # usable sessions a dataset needs to be trained and judged on (a week of the simulated feed has ~60-90)
VALID_SHARE, TEST_SHARE = 0.15, 0.2

TARGETS = {catalog.SESSION_ENERGY: "energy_kwh", catalog.SESSION_DURATION: "duration_h"}
HISTORY = {"energy_kwh": "user_mean_energy_kwh_before", "duration_h": "user_mean_duration_h_before"}
CODE_OF = {"site_code": "site", "station_code": "station", "user_type_code": "user_type"}
CODES = tuple(CODE_OF)
INPUT_GRACE_MINUTES = 15  # a first user input later than this after plug-in is not known at plug-in
PLUGIN_INPUTS = ["kwh_requested_first", "minutes_available_first"]
HISTORY_MEDIANS = [medians.median_column("energy_kwh"), medians.median_column("duration_h")]
FEATURES = [
    "dataset", "plugin_hour", "plugin_weekday", "is_holiday", *CODES, "history_by_station",
    "user_sessions_before", "user_mean_energy_kwh_before", "user_mean_duration_h_before", "days_since_user_previous",
    *HISTORY_MEDIANS, *PLUGIN_INPUTS,
]
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

REPORT_COLUMNS = ("session_id", "garage_id", "user_id", "user_type", "plugin_at", "plugout_at", "energy_kwh")
ACN_COLUMNS = ("session_id", "site_id", "station_id", "space_id", "user_id", "connection_time", "disconnect_time",
               "kwh_delivered")


@dataclass
class Sessions:
    """The usable sessions of one dataset in a common shape, and what was dropped (reason -> count)."""

    dataset: str
    frame: pd.DataFrame
    received: int = 0
    dropped: dict[str, int] = field(default_factory=dict)


# --- normalising the two raw tables -------------------------------------------------------------------------------
def _require(frame: pd.DataFrame, columns: tuple[str, ...], table: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        found = ", ".join(map(str, frame.columns))
        raise ValueError(f"raw.{table} frame lacks the columns {', '.join(missing)} (found {found})")


def _text(series: pd.Series) -> pd.Series:
    """Text with None for NULL and blanks, whatever dtype the frame came in with."""
    out = series.astype(object).where(series.notna(), None)
    out = out.map(lambda v: None if v is None or str(v).strip() == "" else str(v).strip())
    return out.astype(object)


def _wall_to_utc(wall: pd.Series, zones: pd.Series) -> pd.Series:
    """Naive local wall times -> UTC instants, per time zone. An ambiguous autumn hour is read as standard time,
    a wall time skipped in spring is moved forward, so durations across a DST change are the real elapsed time."""
    wall = pd.to_datetime(wall)
    if wall.dt.tz is not None:  # already an instant
        return wall.dt.tz_convert("UTC")
    out = pd.Series(pd.NaT, index=wall.index, dtype="datetime64[ns, UTC]")
    for zone, idx in wall.groupby(zones).groups.items():
        part = wall.loc[idx]
        local = part.dt.tz_localize(zone, ambiguous=np.zeros(len(part), dtype=bool), nonexistent="shift_forward")
        out.loc[idx] = local.dt.tz_convert("UTC")
    return out


def _utc_to_wall(instants: pd.Series, zones: pd.Series) -> pd.Series:
    out = pd.Series(pd.NaT, index=instants.index, dtype="datetime64[ns]")
    for zone, idx in instants.groupby(zones).groups.items():
        out.loc[idx] = instants.loc[idx].dt.tz_convert(zone).dt.tz_localize(None)
    return out


def _instants(series: pd.Series) -> pd.Series:
    """TIMESTAMPTZ column as UTC (a naive value, which the table never holds, is taken as UTC)."""
    return pd.to_datetime(series, utc=True, errors="coerce")


def _zones(frame: pd.DataFrame, dataset: str) -> pd.Series:
    if "timezone" not in frame.columns:
        return pd.Series(DEFAULT_TZ[dataset], index=frame.index)
    zones = _text(frame["timezone"])
    return zones.fillna(DEFAULT_TZ[dataset]).astype(str)


def _norway(reports: pd.DataFrame) -> pd.DataFrame:
    _require(reports, REPORT_COLUMNS, "session_reports")
    zones = _zones(reports, "norway")
    wall = pd.to_datetime(reports["plugin_at"], errors="coerce")
    if wall.dt.tz is not None:
        wall = _utc_to_wall(wall.dt.tz_convert("UTC"), zones)
    user_type = _text(reports["user_type"]).str.lower()
    return pd.DataFrame({
        "session_id": _text(reports["session_id"]),
        "history_key": "norway:" + _text(reports["user_id"]).fillna("session:" + _text(reports["session_id"])),
        "history_by_station": 0,
        "site": _text(reports["garage_id"]),
        "station": None,
        "user_type": user_type,
        "plugin_local": wall,
        "plugin_utc": _wall_to_utc(reports["plugin_at"], zones),
        "plugout_utc": _wall_to_utc(reports["plugout_at"], zones),
        "energy_kwh": pd.to_numeric(reports["energy_kwh"], errors="coerce").astype(float),
        **{column: np.nan for column in PLUGIN_INPUTS},
    }, index=reports.index)


def _acn(sessions: pd.DataFrame) -> pd.DataFrame:
    _require(sessions, ACN_COLUMNS, "acn_sessions")
    zones = _zones(sessions, "acn")
    user, space, station = (_text(sessions[c]) for c in ("user_id", "space_id", "station_id"))
    key = ("user:" + user).where(user.notna(), ("space:" + space).where(space.notna(), "station:" + station))
    connection = _instants(sessions["connection_time"])
    return pd.DataFrame({
        "session_id": _text(sessions["session_id"]),
        "history_key": "acn:" + key.fillna("session:" + _text(sessions["session_id"])),  # nothing to key by
        "history_by_station": user.isna().astype(int),
        "site": _text(sessions["site_id"]),
        "station": station,
        "user_type": None,
        "plugin_local": _utc_to_wall(connection, zones),
        "plugin_utc": connection,
        "plugout_utc": _instants(sessions["disconnect_time"]),
        "energy_kwh": pd.to_numeric(sessions["kwh_delivered"], errors="coerce").astype(float),
        **_first_inputs(sessions, connection),
    }, index=sessions.index)


def _first_inputs(sessions: pd.DataFrame, connection: pd.Series) -> dict[str, pd.Series]:
    """The first user input of each ACN session where it was made by plug-in + INPUT_GRACE_MINUTES, else NaN
    (also when the raw table predates the `first_*` columns)."""
    if "first_input_at" not in sessions.columns:
        return {column: pd.Series(np.nan, index=sessions.index) for column in PLUGIN_INPUTS}
    known = _instants(sessions["first_input_at"]) <= connection + pd.Timedelta(minutes=INPUT_GRACE_MINUTES)
    return {
        "kwh_requested_first": pd.to_numeric(sessions["first_kwh_requested"], errors="coerce").where(known),
        "minutes_available_first": pd.to_numeric(sessions["first_minutes_available"], errors="coerce").where(known),
    }


def usable_sessions(raw: pd.DataFrame, dataset: str) -> Sessions:
    """The sessions of one raw table that can be trained on, with duration in hours, and the count dropped per
    reason (no plug-in or plug-out time, duration <= 0 or > 7 days, energy missing or negative)."""
    if raw is None or raw.empty:
        return Sessions(dataset, pd.DataFrame(columns=["session_id"]), 0, {})
    raw = raw.reset_index(drop=True)
    frame = _norway(raw) if dataset == "norway" else _acn(raw)
    frame["dataset"] = dataset
    frame["duration_h"] = (frame["plugout_utc"] - frame["plugin_utc"]).dt.total_seconds() / 3600
    checks = [
        ("no plug-in time", frame["plugin_utc"].isna()),
        ("no plug-out time", frame["plugout_utc"].isna()),
        ("zero or negative duration", frame["duration_h"] <= 0),
        (f"duration over {MAX_DURATION_H} h", frame["duration_h"] > MAX_DURATION_H),
        ("no energy", frame["energy_kwh"].isna()),
        ("negative energy", frame["energy_kwh"] < 0),
    ]
    bad = pd.Series(False, index=frame.index)
    dropped = {}
    for reason, mask in checks:
        new = mask.fillna(False) & ~bad  # each session counted once, under its first reason
        if new.any():
            dropped[reason] = int(new.sum())
        bad |= new
    return Sessions(dataset, frame.loc[~bad].reset_index(drop=True), len(frame), dropped)


# --- features ------------------------------------------------------------------------------------------------------
def _nanoseconds(instants: pd.Series) -> np.ndarray:
    """UTC instants as int64 nanoseconds (for sorting and searching only, never a feature)."""
    return instants.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]").to_numpy().astype("int64")


def add_history(frame: pd.DataFrame) -> pd.DataFrame:
    """Per session, what its user's history says at plug-in time t: the count and mean energy/duration of the
    user's sessions that ended by t (plug-out <= t), and days since the user's last plug-in strictly before t.
    Only usable sessions count (a dropped session's energy or duration is not trusted)."""
    out = frame.copy()
    count = np.zeros(len(out))
    mean_energy = np.full(len(out), np.nan)
    mean_duration = np.full(len(out), np.nan)
    days_since = np.full(len(out), np.nan)
    ns_per_day = 86400e9
    all_starts = _nanoseconds(out["plugin_utc"])
    all_ends = _nanoseconds(out["plugout_utc"])
    all_energy, all_duration = out["energy_kwh"].to_numpy(float), out["duration_h"].to_numpy(float)
    for _, positions in out.groupby("history_key", sort=False).indices.items():
        start, end = all_starts[positions], all_ends[positions]
        energy, duration = all_energy[positions], all_duration[positions]
        by_end = np.argsort(end, kind="stable")
        ends = end[by_end]
        energy_sum = np.concatenate([[0.0], np.cumsum(energy[by_end])])
        duration_sum = np.concatenate([[0.0], np.cumsum(duration[by_end])])
        ended = np.searchsorted(ends, start, side="right")  # sessions with plug-out <= this plug-in
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_energy[positions] = np.where(ended > 0, energy_sum[ended] / ended, np.nan)
            mean_duration[positions] = np.where(ended > 0, duration_sum[ended] / ended, np.nan)
        count[positions] = ended
        starts = np.sort(start)
        previous = np.searchsorted(starts, start, side="left") - 1  # the last plug-in strictly before
        has_previous = previous >= 0
        gap = np.full(len(positions), np.nan)
        gap[has_previous] = (start[has_previous] - starts[previous[has_previous]]) / ns_per_day
        days_since[positions] = gap
    out["user_sessions_before"] = count
    out["user_mean_energy_kwh_before"] = mean_energy
    out["user_mean_duration_h_before"] = mean_duration
    out["days_since_user_previous"] = days_since
    return medians.add_history_medians(out, all_starts, all_ends)


def add_calendar(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    local = out["plugin_local"]
    out["plugin_hour"] = local.dt.hour + local.dt.minute / 60
    out["plugin_weekday"] = local.dt.weekday
    out["is_holiday"] = 0
    for dataset, (country, subdiv) in HOLIDAYS.items():
        rows = out["dataset"] == dataset
        if rows.any():
            years = range(int(local[rows].dt.year.min()), int(local[rows].dt.year.max()) + 1)
            calendar = holidays.country_holidays(country, subdiv=subdiv, years=years)
            out.loc[rows, "is_holiday"] = local[rows].dt.date.map(lambda d: int(d in calendar))
    return out


def _codes(train: pd.Series) -> dict[str, int]:
    return {value: code for code, value in enumerate(sorted(train.dropna().unique()))}


def encode(frame: pd.DataFrame, vocabularies: dict[str, dict[str, int]]) -> pd.DataFrame:
    """The categorical columns as integer codes of the training vocabulary (-1: absent or unseen)."""
    out = frame.copy()
    for code, column in CODE_OF.items():
        out[code] = _keyed(out, column).map(vocabularies[code]).fillna(-1).astype(int)
    out["dataset"] = out["dataset"].map(DATASET_CODE).astype(int)
    return out


def _keyed(frame: pd.DataFrame, column: str) -> pd.Series:
    """`<dataset>:<value>` (None when the value is absent): a garage code means nothing across datasets."""
    values = frame[column].astype(object)
    return (frame["dataset"] + ":" + values.fillna("")).where(values.notna(), None)


def vocabularies_of(train: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Integer codes of the categorical values seen in the training rows, in sorted order."""
    return {code: _codes(_keyed(train, column)) for code, column in CODE_OF.items()}


def session_features(session_reports: pd.DataFrame, acn_sessions: pd.DataFrame) -> tuple[pd.DataFrame, list[Sessions]]:
    """Every usable session with its plug-in-time features (categoricals still as text) and both targets."""
    found = [usable_sessions(session_reports, "norway"), usable_sessions(acn_sessions, "acn")]
    frames = [s.frame for s in found if not s.frame.empty]
    if not frames:
        return pd.DataFrame(), found
    frame = pd.concat(frames, ignore_index=True)
    return add_calendar(add_history(frame)), found


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
