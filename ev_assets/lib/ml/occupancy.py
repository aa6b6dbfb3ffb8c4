"""A real occupancy series from real charging sessions, to train and judge the availability models on.

The real status recordings are too short (3 polls), but a session says when its charging point was occupied: from
plug-in to plug-out. `status_polls` turns sessions into the polls a status feed would have given on the 10-minute
grid: at each slot t of a point's life (its first plug-in to its last plug-out), CHARGING when a session of the
point holds t (plug-in <= t < plug-out), else AVAILABLE. Points are grouped into sites, the "stations" of the
availability models (a site is available when one of its points is free):

- ACN (JPL): a point is an EVSE (`station_id`); the 42 EVSEs sit in one cluster, so they are grouped into sites of
  `ACN_SITE_SIZE` EVSEs in the order of their ids (neighbouring ids share a bank);
- Norway: a point is a user's charger (private) or a shared charger (`User_ID`, e.g. `Share-12`); a site is the
  garage.

`availability_features` builds the model rows with the very SQL the platform trains on (`stations.
station_time_features` over in-memory marts holding these polls), with the calendar in the site's own time zone
and holidays. `judge_availability` trains `stations.train_availability_models` on them and scores the model
against persistence, calibrated persistence (P(free later | state now) fitted on the training rows) and calibrated
persistence by hour of day, with day-clustered paired bootstrap intervals of the Brier difference.

What it cannot say: sessions show occupancy, not faults (no OUTOFORDER), a point unused for weeks is AVAILABLE all
that time, and a private Norwegian charger is "free" only for its owner.
"""

from __future__ import annotations

import duckdb
import holidays
import numpy as np
import pandas as pd

from ev_assets.lib.ml import compare, stations
from ev_assets.lib.ml.core import score, time_split
from ev_assets.lib.ml.stations.availability_models import _historical_mean

GRID = pd.Timedelta(minutes=stations.GRID_MINUTES)
ACN_SITE_SIZE = 6
ZONES = {"acn": ("America/Los_Angeles", "US", "CA"), "norway": ("Europe/Oslo", "NO", None)}
BASELINE_CALIBRATED = "calibrated persistence"
BASELINE_CALIBRATED_HOUR = "calibrated persistence by hour"


def points_and_sites(usable: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """`usable` (`sessions.usable_sessions(...).frame`) with `point` and `site` columns."""
    out = usable.copy()
    if dataset == "acn":
        out["point"] = out["station"].astype(str)
        order = {p: i for i, p in enumerate(sorted(out["point"].unique()))}
        out["site"] = out["point"].map(lambda p: f"acn-site-{order[p] // ACN_SITE_SIZE + 1:02d}")
    else:
        out["point"] = out["history_key"].str.removeprefix("norway:")
        out["site"] = "norway-" + out["site"].astype(str)
    return out


def status_polls(sessions_frame: pd.DataFrame, start=None, end=None) -> pd.DataFrame:
    """One row per point and 10-minute slot of its life (within [start, end) when given): `charging_point_id`,
    `station_id` (the site), `polled_at` (UTC slot start), `status` (CHARGING or AVAILABLE)."""
    parts = []
    for (site, point), rows in sessions_frame.groupby(["site", "point"], sort=True):
        first = rows["plugin_utc"].min().floor(GRID)
        last = rows["plugout_utc"].max().ceil(GRID)
        if start is not None:
            first = max(first, pd.Timestamp(start).tz_convert("UTC").ceil(GRID))
        if end is not None:
            last = min(last, pd.Timestamp(end).tz_convert("UTC"))
        if last <= first:
            continue
        slots = pd.date_range(first, last, freq=GRID, inclusive="left")
        grid = slots.asi8
        busy = np.zeros(len(grid) + 1, dtype=np.int64)
        on = np.searchsorted(grid, pd.DatetimeIndex(rows["plugin_utc"]).asi8, "left")
        off = np.searchsorted(grid, pd.DatetimeIndex(rows["plugout_utc"]).asi8, "left")
        np.add.at(busy, on, 1)
        np.add.at(busy, off, -1)
        occupied = np.cumsum(busy)[:-1] > 0
        parts.append(pd.DataFrame({"charging_point_id": point, "station_id": site, "polled_at": slots,
                                   "status": np.where(occupied, "CHARGING", "AVAILABLE")}))
    if not parts:
        return pd.DataFrame(columns=["charging_point_id", "station_id", "polled_at", "status"])
    return pd.concat(parts, ignore_index=True)


def _marts(polls: pd.DataFrame, dataset: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the marts `station_time_features` reads, holding these polls and their sites."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE SCHEMA marts")
    fact = polls.assign(station_key=polls["station_id"], city_slug=dataset)
    con.register("fact", fact)
    con.execute("CREATE TABLE marts.fct_charging_point_status AS SELECT station_id, charging_point_id, "
                "CAST(polled_at AS TIMESTAMPTZ) AS polled_at, status, station_key, city_slug FROM fact")
    con.execute("CREATE TABLE marts.dim_station AS SELECT DISTINCT station_key, station_id, city_slug, "
                "CAST(NULL AS VARCHAR) AS operator_name, CAST(NULL AS BOOLEAN) AS is_open_24_7, "
                "TIMESTAMPTZ '2000-01-01' AS valid_from, CAST(NULL AS TIMESTAMPTZ) AS valid_to FROM fact")
    con.unregister("fact")
    con.execute("CREATE TABLE marts.dim_connector (charging_point_id VARCHAR, connector_id VARCHAR, power_type "
                "VARCHAR, max_power_kw DOUBLE, rated_power_kw DOUBLE, valid_from TIMESTAMPTZ, valid_to TIMESTAMPTZ)")
    con.execute("CREATE TABLE marts.dim_poi_station (station_id VARCHAR, category VARCHAR, poi_id VARCHAR)")
    return con


def availability_features(polls: pd.DataFrame, dataset: str, horizons=stations.HORIZONS) -> pd.DataFrame:
    """The availability model rows of these polls (`stations.station_time_features`), the calendar columns in
    the dataset's own time zone and public holidays (the platform's are German)."""
    con = _marts(polls, dataset)
    try:
        frame = stations.station_time_features(con, tuple(horizons))
    finally:
        con.close()
    zone, country, subdiv = ZONES[dataset]
    local = frame["polled_at"].dt.tz_convert(zone)
    frame["hour"] = local.dt.hour.astype("int64")
    frame["minute_of_day"] = (local.dt.hour * 60 + local.dt.minute).astype("int64")
    frame["weekday"] = local.dt.weekday.astype("int64")
    frame["is_weekend"] = (frame["weekday"] >= 5).astype("int64")
    dates = local.dt.date
    calendar = holidays.country_holidays(country, subdiv=subdiv, years=range(dates.min().year, dates.max().year + 1))
    frame["is_holiday"] = dates.map(lambda d: int(d in calendar)).astype("int64")
    return frame


def _calibrated(train: pd.DataFrame, test: pd.DataFrame, target: str, keys: list[str]) -> np.ndarray:
    """P(target | keys) on the training rows, for the test rows (falling back to P(target | state now), then
    the training rate)."""
    by_keys = train.groupby(keys)[target].mean().rename("p")
    by_state = train.groupby("any_available")[target].mean()
    p = test[keys].join(by_keys, on=keys)["p"]
    return p.fillna(test["any_available"].map(by_state)).fillna(train[target].mean()).to_numpy(float)


def judge_availability(features: pd.DataFrame, n_boot: int = compare.N_BOOT) -> dict:
    """Train the availability models on `features` and judge them (see the module docstring)."""
    out = {"rows": len(features), "sites": int(features["station_id"].nunique()),
           "from": str(features["polled_at"].min()), "to": str(features["polled_at"].max()), "models": {}}
    for model in stations.train_availability_models(features):
        target = f"available_in_{model.params['horizon_minutes']}min"
        rows = features[features[target].notna()].copy()
        rows[target] = rows[target].astype(int)
        train, _, test, _ = time_split(rows, "polled_at")
        if not np.array_equal(test[target].to_numpy(), model.test_y.to_numpy()):
            raise RuntimeError("the recomputed split does not give the model's held-out rows")
        y = test[target].to_numpy(float)
        predictions = {
            "model": model.predict(model.test_X),
            stations.BASELINE_PERSISTENCE: test["any_available"].to_numpy(float),
            stations.BASELINE_HISTORY: _historical_mean(train, test, target),
            BASELINE_CALIBRATED: _calibrated(train, test, target, ["any_available"]),
            BASELINE_CALIBRATED_HOUR: _calibrated(train, test, target, ["any_available", "hour"]),
        }
        scores = {name: {m: score(m, y, p) for m in ("brier", "log_loss", "auc", "ece")}
                  for name, p in predictions.items()}
        baselines = [b for b in predictions if b != "model"]
        strongest = min(baselines, key=lambda b: scores[b]["brier"])
        days = test["polled_at"].dt.floor("D").to_numpy()
        model_loss = compare.squared_errors(y, predictions["model"])
        vs = {b: compare.paired_bootstrap(model_loss, compare.squared_errors(y, predictions[b]), groups=days,
                                          n_boot=n_boot).as_dict()
              for b in dict.fromkeys([strongest, BASELINE_CALIBRATED])}
        out["models"][model.name] = {
            "train_rows": model.train_rows, "test_rows": len(y), "test_days": int(len(np.unique(days))),
            "test_available_rate": float(y.mean()), "scores": scores, "strongest_baseline": strongest,
            "vs": vs, "beats_strongest": vs[strongest]["a_better"],
        }
    return out
