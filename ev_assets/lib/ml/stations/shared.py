"""What both station model families use: the poll grid and the station attributes they share, reading the marts
(POI counts, operator / city codes by first appearance, German public holidays), and fitting a LightGBM model with
early stopping."""

from __future__ import annotations

import re
from typing import Iterable, Mapping

import holidays
import lightgbm as lgb
import pandas as pd

from ev_assets.lib.ml.core import InsufficientData
from ev_assets.lib.settings import DEFAULT_OSM_TAGS
from ev_assets.lib.vocabulary import POLL_GRID_MINUTES

GRID_MINUTES = POLL_GRID_MINUTES  # the poll grid of the chargecloud partitions
POI_CATEGORIES = tuple(v for values in DEFAULT_OSM_TAGS.values() if isinstance(values, list) for v in values)
STATION = ["max_power_kw", "has_dc", "has_ac", "n_connectors", "is_open_24_7", "operator_code", "city_code"]
MAX_ROUNDS, EARLY_STOPPING = 1000, 50


# --- reading the marts -------------------------------------------------------------------------------------------
def _require_marts(con, names: Iterable[str]) -> None:
    found = {row[0] for row in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts'").fetchall()}
    missing = [f"marts.{n}" for n in names if n not in found]
    if missing:
        raise InsufficientData(f"{', '.join(missing)} not in the warehouse: materialize warehouse_job (dbt) first")


def _poi_counts(con) -> pd.DataFrame:
    """station_id -> poi_<category> counts (default categories first) and poi_total."""
    counts = con.execute(
        "SELECT station_id, coalesce(category, 'other') AS category, count(DISTINCT poi_id) AS n "
        "FROM marts.dim_poi_station WHERE station_id IS NOT NULL GROUP BY ALL").df()
    categories = [*POI_CATEGORIES, *sorted(set(counts["category"]) - set(POI_CATEGORIES))]
    table = (counts.groupby(["station_id", "category"])["n"].sum().unstack("category")
             .reindex(columns=categories).fillna(0))
    table.columns = [f"poi_{_column_name(c)}" for c in categories]
    table["poi_total"] = table.sum(axis=1)
    table.index.name = "station_id"
    return table.astype("int64").reset_index()


def _column_name(category: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", str(category)).strip("_").lower() or "other"


def _add_pois(frame: pd.DataFrame, pois: pd.DataFrame) -> pd.DataFrame:
    """POI counts per row; a station without POIs gets zeros."""
    out = frame.merge(pois, on="station_id", how="left")
    columns = [c for c in pois.columns if c != "station_id"]
    out[columns] = out[columns].fillna(0).astype("int64")
    return out


def _codes_by_first_appearance(values: pd.Series, times: pd.Series,
                               known: Mapping[str, int] | None = None) -> pd.Series:
    """Integer codes in order of first appearance (ties by name), -1 for a missing value: data added later never
    renumbers earlier rows. `known` codes (those of a feature set, see `feature_codes`) are kept as they are, and a
    value they lack gets the next code, as it would when its first appearance is added to the history."""
    seen = pd.DataFrame({"value": values, "time": times}).dropna(subset=["value"])
    first = seen.groupby("value")["time"].min().reset_index().sort_values(["time", "value"], kind="stable")
    codes = dict(known or {})
    start = max(codes.values(), default=-1) + 1
    for value in first["value"]:
        if value not in codes:
            codes[value], start = start, start + 1
    return values.map(codes).fillna(-1).astype("int64")


CODED = {"operator_code": "operator_name", "city_code": "city_slug"}


def feature_codes(features: pd.DataFrame) -> dict[str, dict[str, int]]:
    """The integer codes a station-time feature set gave each operator and city ({"operator_name": {name: code},
    "city_slug": {slug: code}}): `station_time_features(..., codes=...)` codes new rows the same way."""
    out: dict[str, dict[str, int]] = {}
    for code, column in CODED.items():
        if code not in features.columns or column not in features.columns:
            out[column] = {}
            continue
        pairs = features[[column, code]].dropna().drop_duplicates()
        pairs = pairs[pairs[code] >= 0]
        out[column] = {str(v): int(c) for v, c in zip(pairs[column], pairs[code])}
    return out


def _holiday_flags(dates: pd.Series) -> pd.Series:
    """1 on a German nationwide public holiday."""
    if dates.empty:
        return pd.Series(dtype="int64", index=dates.index)
    unique = set(dates)
    calendar = holidays.country_holidays("DE", years=range(min(unique).year, max(unique).year + 1))
    return dates.map({d: int(d in calendar) for d in unique}).astype("int64")


# --- training ------------------------------------------------------------------------------------------------------
def _fit(params: dict, train: pd.DataFrame, valid: pd.DataFrame, features: list[str], target: str) -> lgb.Booster:
    """LightGBM with early stopping on the validation block, cut to the best round."""
    train_set = lgb.Dataset(train[features], train[target], free_raw_data=False)
    valid_set = lgb.Dataset(valid[features], valid[target], reference=train_set)
    booster = lgb.train(params, train_set, num_boost_round=MAX_ROUNDS, valid_sets=[valid_set],
                        callbacks=[lgb.early_stopping(EARLY_STOPPING, verbose=False)])
    best = booster.best_iteration or booster.current_iteration()
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=best))


def _poi_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith("poi_")]


def _missing(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise InsufficientData(f"the {what} frame lacks the columns {', '.join(absent)}: build it with "
                               f"ev_assets.lib.ml.stations")


def _city_groups(test: pd.DataFrame) -> pd.Series:
    """The site group of each held-out row (its city; no city may get worse under a new champion)."""
    city = test["city_slug"] if "city_slug" in test.columns else pd.Series("all", index=test.index)
    return ("city=" + city.fillna("unknown").astype(str)).reset_index(drop=True)
