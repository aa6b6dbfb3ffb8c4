"""The utilisation models of site planning and their feature set.

`station_utilization_features`: one row per station and UTC day from
`marts.mart_utilization_station_daily`, with the station's current attributes (24/7, max power, DC/AC, connectors,
operator and city codes), POI counts and the day's weekday / weekend / holiday. Targets: `sessions` (inferred
sessions starting that day) and `share_occupied`.

`train_utilization_models`: models `station_sessions_per_day` (Poisson objective) and
`station_occupied_share` (L2), judged on MAE against the "overall mean" and the "city mean" of the training rows.
Split by day with `core.time_split`; when the days are too few for three time blocks (fewer than 3, or e.g. 5 equal
days, whose quantiles put validation and test on the same day), by station (hashed id) when there are at least
`MIN_STATIONS_STATION_SPLIT` stations; `splits["split_by"]` says which. Station-days observed for less than
half the day (first / last day of a recording) are left out of training and evaluation.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from ev_assets.lib.ml import catalog
from ev_assets.lib.ml.core import LGB_BASE, REGRESSION_METRICS, Evaluation, InsufficientData, TrainedModel, time_split
from ev_assets.lib.ml.stations.shared import (
    STATION,
    _add_pois,
    _city_groups,
    _codes_by_first_appearance,
    _fit,
    _holiday_flags,
    _missing,
    _poi_columns,
    _poi_counts,
    _require_marts,
)

DAY_MARTS = ("mart_utilization_station_daily", "dim_station", "dim_connector", "dim_poi_station")
MIN_UTILIZATION_ROWS = 40  # usable station-days
MIN_STATIONS = 2
MIN_DAYS_TIME_SPLIT = 3  # fewer days (or days that do not make three time blocks): split by station
MIN_STATIONS_STATION_SPLIT = 10
MIN_OBSERVED_SHARE = 0.5  # of the station's charging-point time in the day
UTILIZATION_TARGETS = {catalog.SESSIONS_PER_DAY: "sessions", catalog.OCCUPIED_SHARE: "share_occupied"}
DAY_CALENDAR = ["weekday", "is_weekend", "is_holiday"]
UTILIZATION_FEATURES = ["n_charging_points", *STATION, *DAY_CALENDAR]  # + poi_* columns
BASELINE_OVERALL = "overall mean"
BASELINE_CITY = "city mean"
REGRESSION_PARAMS = {
    "learning_rate": 0.05,
    "num_leaves": 7,
    "min_data_in_leaf": 5,
    "feature_fraction": 0.9,
    "lambda_l2": 1.0,
    **LGB_BASE,
}
OBJECTIVE = {"sessions": "poisson", "share_occupied": "regression"}


def station_utilization_features(con) -> pd.DataFrame:
    """One row per station and UTC day from marts.mart_utilization_station_daily with the station's current static
    attributes, POI counts, the day's calendar and the targets `sessions` and `share_occupied`."""
    _require_marts(con, DAY_MARTS)
    frame = con.execute("""
        WITH stations AS (
            SELECT station_id, CAST(is_open_24_7 AS DOUBLE) AS is_open_24_7
            FROM marts.dim_station WHERE is_current
        ),
        equipment AS (
            SELECT station_id,
                   max(coalesce(max_power_kw, rated_power_kw)) AS max_power_kw,
                   max(CASE WHEN power_type = 'DC' THEN 1 ELSE 0 END) AS has_dc,
                   max(CASE WHEN power_type LIKE 'AC%' THEN 1 ELSE 0 END) AS has_ac,
                   count(DISTINCT connector_id) AS n_connectors
            FROM marts.dim_connector WHERE is_current
            GROUP BY station_id
        )
        SELECT u.day, u.station_id, u.city_slug, u.operator_name, u.n_charging_points,
               u.observed_hours / nullif(u.n_charging_points * 24.0, 0) AS observed_share,
               s.is_open_24_7, e.max_power_kw, e.has_dc, e.has_ac, e.n_connectors,
               u.sessions, u.share_occupied, u.share_available, u.share_out_of_order
        FROM marts.mart_utilization_station_daily AS u
        LEFT JOIN stations AS s ON s.station_id = u.station_id
        LEFT JOIN equipment AS e ON e.station_id = u.station_id
        ORDER BY u.station_id, u.day
    """).df()
    pois = _poi_counts(con)
    frame["day"] = pd.to_datetime(frame["day"])
    dates = frame["day"].dt.date
    frame["weekday"] = frame["day"].dt.weekday.astype("int64")
    frame["is_weekend"] = (frame["weekday"] >= 5).astype("int64")
    frame["is_holiday"] = _holiday_flags(dates)
    operator = frame["operator_name"].where(frame["operator_name"] != "(unknown)")  # the mart's stand-in for NULL
    frame["operator_code"] = _codes_by_first_appearance(operator, frame["day"])
    frame["city_code"] = _codes_by_first_appearance(frame["city_slug"], frame["day"])
    frame["n_charging_points"] = frame["n_charging_points"].astype("int64")
    frame["sessions"] = frame["sessions"].astype("float64")
    floats = ["observed_share", "is_open_24_7", "max_power_kw", "has_dc", "has_ac", "n_connectors", "share_occupied",
              "share_available", "share_out_of_order"]
    frame[floats] = frame[floats].astype("float64")
    frame = _add_pois(frame, pois)
    poi_columns = [c for c in pois.columns if c != "station_id"]
    ids = ["day", "station_id", "city_slug", "operator_name", "observed_share"]
    extra = ["share_available", "share_out_of_order"]
    return frame[[*ids, *UTILIZATION_FEATURES, *poi_columns, "sessions", "share_occupied", *extra]].reset_index(drop=True)


# --- training: utilisation ---------------------------------------------------------------------------------------
def _station_split(rows: pd.DataFrame, valid_share: float = 0.15, test_share: float = 0.2):
    """(train, valid, test, description): stations ordered by a hash of their id, cut into three groups."""
    stations = sorted(rows["station_id"].unique(), key=lambda s: hashlib.sha256(str(s).encode()).hexdigest())
    n = len(stations)
    n_test = max(1, round(n * test_share))
    n_valid = max(1, round(n * valid_share))
    test_ids, valid_ids = set(stations[:n_test]), set(stations[n_test:n_test + n_valid])
    test = rows[rows["station_id"].isin(test_ids)]
    valid = rows[rows["station_id"].isin(valid_ids)]
    train = rows[~rows["station_id"].isin(test_ids | valid_ids)]
    bounds = {"train_stations": str(n - n_test - n_valid), "valid_stations": str(n_valid),
              "test_stations": str(n_test), "test_station_ids": ", ".join(sorted(map(str, test_ids)))}
    return train, valid, test, bounds


def _city_mean(train: pd.DataFrame, test: pd.DataFrame, target: str) -> np.ndarray:
    by_city = train.groupby("city_slug")[target].mean()
    return test["city_slug"].map(by_city).fillna(train[target].mean()).to_numpy(float)


def train_utilization_models(frame: pd.DataFrame) -> list[TrainedModel]:
    """`station_sessions_per_day` and `station_occupied_share` (LightGBM regression, primary metric MAE) from the
    station's static attributes, POI context and the day's calendar, against the overall and the city mean."""
    if frame is None or len(frame) == 0:
        raise InsufficientData("no station-days: marts.mart_utilization_station_daily is empty (ingest polls and run "
                               "warehouse_job)")
    poi_columns = _poi_columns(frame)
    feature_names = [*UTILIZATION_FEATURES, *poi_columns]
    _missing(frame, ["day", "station_id", "city_slug", "observed_share", *UTILIZATION_TARGETS.values(), *feature_names],
             "station-day")
    rows = frame.copy()
    rows["day"] = pd.to_datetime(rows["day"])
    partial = rows["observed_share"].fillna(0) < MIN_OBSERVED_SHARE
    rows = rows[~partial]
    n_stations, n_days = rows["station_id"].nunique(), rows["day"].nunique()
    seen = (f"{len(rows)} usable station-days ({n_stations} station(s), {n_days} day(s); {int(partial.sum())} "
            f"station-days observed for less than {MIN_OBSERVED_SHARE:.0%} of the day left out)")
    if n_stations < MIN_STATIONS:
        raise InsufficientData(f"{seen}: the utilisation models learn from differences between stations and need at "
                               f"least {MIN_STATIONS} stations")
    if len(rows) < MIN_UTILIZATION_ROWS:
        raise InsufficientData(f"{seen}: the utilisation models need at least {MIN_UTILIZATION_ROWS} usable station-days")
    split_by, too_short = "", f"only {n_days} day(s)"
    if n_days >= MIN_DAYS_TIME_SPLIT:
        try:
            train, valid, test, bounds = time_split(rows, "day")
            split_by = "time (day)"
        except InsufficientData as exc:  # the days' rows do not fall into three blocks
            too_short = str(exc)
    if not split_by:
        if n_stations < MIN_STATIONS_STATION_SPLIT:
            raise InsufficientData(f"{seen}: too short to split by time ({too_short}) and fewer than "
                                   f"{MIN_STATIONS_STATION_SPLIT} stations to split by station")
        split_by = f"station (held-out stations, all days; too short to split by time: {too_short})"
        train, valid, test, bounds = _station_split(rows)

    held_out = ("The test stations are the training stations (on later days): the figures say how well known sites "
                "are predicted on new days, not how well a new site is." if split_by.startswith("time") else
                "The test stations were not trained on: the figures say how well a new site is predicted, from "
                "the same days.")
    models = []
    for name, target in UTILIZATION_TARGETS.items():
        params = {**REGRESSION_PARAMS, "objective": OBJECTIVE[target]}
        booster = _fit(params, train, valid, feature_names, target)
        test_X = test[feature_names].reset_index(drop=True)
        test_y = test[target].reset_index(drop=True).rename(name)
        prediction = booster.predict(test_X)
        baselines = {
            BASELINE_OVERALL: np.full(len(test), train[target].mean()),
            BASELINE_CITY: _city_mean(train, test, target),
        }
        evaluation = Evaluation.of("mae", REGRESSION_METRICS, test_y, prediction, baselines)
        table = evaluation.table()
        what = ("inferred charging sessions starting per day" if target == "sessions"
                else "share of the day's charging-point time occupied (charging, blocked or reserved)")
        models.append(TrainedModel(
            name=name,
            task="regression",
            booster=booster,
            features=feature_names,
            params={**params, "num_boost_round": booster.current_iteration()},
            evaluation=evaluation,
            test_X=test_X,
            test_y=test_y,
            test_baselines=baselines,
            test_groups=_city_groups(test),
            test_clusters=test["station_id"].astype(str).reset_index(drop=True),
            splits={"split_by": split_by, **{k: str(v) for k, v in bounds.items()}, "train_rows": str(len(train)),
                    "valid_rows": str(len(valid)), "test_rows": str(len(test))},
            train_rows=len(train),
            description=(
                f"Predicts a station's {what}, for site planning: from what is known about a site without its "
                "history - charging points, power, DC/AC, connectors, 24/7, operator, city, points of interest "
                "within the mapping radius - and the day's weekday and German public holiday. Held-out MAE: model "
                f"{table.loc['model', 'mae']:.4g}, overall mean {table.loc['baseline: ' + BASELINE_OVERALL, 'mae']:.4g}, "
                f"city mean {table.loc['baseline: ' + BASELINE_CITY, 'mae']:.4g}."
            ),
            limits=(
                f"Verdict: {evaluation.verdict()}. Split by {split_by}; {seen}. {held_out} Sessions are inferred "
                "from status polls (a 10-minute poll misses "
                "short sessions). Static attributes are the stations' current master data and today's OSM map. "
                "Features that can be NaN: max_power_kw, has_dc, has_ac, n_connectors (no connector known), "
                "is_open_24_7 (not stated)."
            ),
        ))
    return models
