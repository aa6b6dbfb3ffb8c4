"""Station models from the warehouse marts: will a station have a free charging point in 10 / 60 minutes (the next poll, and the poll an hour later)
(classification), and how used is a station per day (regression, for site planning). Plain functions: a read-only
DuckDB connection in, frames and `TrainedModel`s out.

**Availability** (`station_time_features`, `train_availability_models`). One row per station and 10-minute poll
slot t (`polled_at`, UTC, the slot start; a charging point polled twice in a slot counts with its last poll). A
station is *available* at a poll when at least one of its charging points polled then is AVAILABLE. A row at t
reads nothing after t:

- calendar at t in local time (Europe/Berlin): `hour`, `minute_of_day`, `weekday` (0 = Monday), `is_weekend`,
  `is_holiday` (German nationwide public holidays, `holidays` package; regional ones are not known per station);
- now: `n_charging_points` (polled at t), `n_available`, `share_available`, `share_occupied` (CHARGING, BLOCKED,
  RESERVED), `share_out_of_order` (OUTOFORDER, INOPERATIVE), `any_available` (0/1);
- lags by time (the poll exactly 10 / 30 / 60 min before t): `any_available_lag_<m>min`,
  `share_available_lag_<m>min` - NaN when that poll is missing (start of history, gaps);
- rolling means over the polls in (t - w, t] for w = 1 h, 3 h, 24 h: `<share_available|share_occupied|any_available>
  _mean_<w>h` (never NaN: the window holds t itself; early in the history it holds fewer polls);
- `minutes_in_state`: minutes since `any_available` last changed (a lower bound in the first run of a station);
- the station as known at t (the master-data versions valid at the poll): `max_power_kw`, `has_dc`, `has_ac`,
  `n_connectors` (NaN when no connector of the station is known), `is_open_24_7` (NaN when not stated),
  `operator_code`, `city_code` (integer codes by first appearance in time, so later data never renumbers earlier
  rows; -1: no operator known);
- POI counts within the mapping radius (`marts.dim_poi_station`): `poi_<category>` for the default OSM categories
  plus any other category found, and `poi_total`; 0 for a station without POIs (static: today's OSM map).

Targets `available_in_<h>min`: `any_available` of the same station at the poll slot t + h rounded down to the
10-minute grid (the poll whose interval holds t + h, as in the utilisation marts where a poll stands for its
interval: t + 10 min for 10 min, t + 60 min for 60 min), found by time - NaN when that poll is missing, never the
next row. Training drops rows without a target.

Models `station_available_<h>min`: LightGBM binary (probabilities), split by time (`core.time_split` on
`polled_at`), early stopping on the validation block, judged on the test block against "persistence" (available
now -> available later, 0/1), "calibrated persistence" (the training rate of available later given available
now), the "state and hour transition" (given the state now and the local hour, falling back to the state alone)
and the "historical mean for the station, weekday and hour" (target rate in the training block, falling back to
the station's rate, then the global rate). The gate judges against the strongest, with station-days as the
bootstrap's clusters and cities as the groups that must not get worse.

**Utilisation** (`station_utilization_features`, `train_utilization_models`). One row per station and UTC day from
`marts.mart_utilization_station_daily`, with the station's current attributes (24/7, max power, DC/AC, connectors,
operator and city codes), POI counts and the day's weekday / weekend / holiday. Targets: `sessions` (inferred
sessions starting that day) and `share_occupied`. Models `station_sessions_per_day` (Poisson objective) and
`station_occupied_share` (L2), judged on MAE against the "overall mean" and the "city mean" of the training rows.
Split by day with `core.time_split`; when the days are too few for three time blocks (fewer than 3, or e.g. 5 equal
days, whose quantiles put validation and test on the same day), by station (hashed id) when there are at least
`MIN_STATIONS_STATION_SPLIT` stations; `splits["split_by"]` says which. Station-days observed for less than
half the day (first / last day of a recording) are left out of training and evaluation.

Every training function raises `core.InsufficientData` with the reason when the data cannot make a model.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Iterable, Mapping

import holidays
import lightgbm as lgb
import numpy as np
import pandas as pd

from ev_assets.lib.ml import catalog
from ev_assets.lib.ml.core import (
    float32_exact,
    LGB_BASE,
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    Evaluation,
    InsufficientData,
    TrainedModel,
    time_split,
)
from ev_assets.lib.settings import DEFAULT_OSM_TAGS
from ev_assets.lib.vocabulary import OCCUPIED, OUT_OF_ORDER, POLL_GRID_MINUTES

GRID_MINUTES = POLL_GRID_MINUTES  # the poll grid of the chargecloud partitions
LOCAL_TZ = "Europe/Berlin"
HORIZONS = catalog.AVAILABILITY_HORIZONS  # the next poll (t + 10) and the poll an hour later
LAGS_MINUTES = (10, 30, 60)
ROLLING_HOURS = (1, 3, 24)
ROLLED = ("share_available", "share_occupied", "any_available")
POI_CATEGORIES = tuple(v for values in DEFAULT_OSM_TAGS.values() if isinstance(values, list) for v in values)

TIME_MARTS = ("fct_charging_point_status", "dim_station", "dim_connector", "dim_poi_station")
FACT_STATUS = "marts.fct_charging_point_status"  # the status polls `station_time_features` reads by default
DAY_MARTS = ("mart_utilization_station_daily", "dim_station", "dim_connector", "dim_poi_station")

# --- availability ------------------------------------------------------------------------------------------------
MIN_AVAILABILITY_DAYS = 2  # distinct UTC days with polls (the default `make demo` simulates 2)
AVAILABILITY_TARGET = re.compile(r"^available_in_(\d+)min$")
CALENDAR = ["hour", "minute_of_day", "weekday", "is_weekend", "is_holiday"]
NOW = ["n_charging_points", "n_available", "share_available", "share_occupied", "share_out_of_order", "any_available"]
LAGS = [f"{v}_lag_{m}min" for m in LAGS_MINUTES for v in ("any_available", "share_available")]
ROLLING = [f"{v}_mean_{h}h" for h in ROLLING_HOURS for v in ROLLED]
STATION = ["max_power_kw", "has_dc", "has_ac", "n_connectors", "is_open_24_7", "operator_code", "city_code"]
AVAILABILITY_FEATURES = [*CALENDAR, *NOW, *LAGS, *ROLLING, "minutes_in_state", *STATION]  # + poi_* columns
NAN_FEATURES = {
    **{c: "the poll that long before t is missing (start of the history, gaps)" for c in LAGS},
    "max_power_kw": "no connector of the station known", "has_dc": "no connector known", "has_ac": "no connector known",
    "n_connectors": "no connector known", "is_open_24_7": "the master data does not say",
}
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

# --- utilisation -------------------------------------------------------------------------------------------------
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


# --- reading the marts -------------------------------------------------------------------------------------------
def _require_marts(con, names: Iterable[str]) -> None:
    found = {row[0] for row in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts'").fetchall()}
    missing = [f"marts.{n}" for n in names if n not in found]
    if missing:
        raise InsufficientData(f"{', '.join(missing)} not in the warehouse: materialize warehouse_job (dbt) first")


def _utc(column: str) -> str:
    """A TIMESTAMPTZ column as a naive UTC timestamp, whatever the session time zone."""
    return f"timezone('UTC', CAST({column} AS TIMESTAMPTZ))"


def _status_sql(horizons: tuple[int, ...], status: str = FACT_STATUS) -> str:
    lists = lambda values: ", ".join(f"'{v}'" for v in values)  # noqa: E731
    rolling = ",\n".join(
        f"avg({v}) OVER (PARTITION BY station_id ORDER BY slot RANGE BETWEEN INTERVAL {h * 60 - GRID_MINUTES} MINUTE "
        f"PRECEDING AND CURRENT ROW) AS {v}_mean_{h}h"
        for h in ROLLING_HOURS for v in ROLLED
    )
    lag_columns = ",\n".join(f"lag{m}.{v} AS {v}_lag_{m}min"
                             for m in LAGS_MINUTES for v in ("any_available", "share_available"))
    lag_joins = "\n".join(
        f"LEFT JOIN base AS lag{m} ON lag{m}.station_id = w.station_id AND lag{m}.slot = w.slot - INTERVAL {m} MINUTE"
        for m in LAGS_MINUTES)
    target_columns = ",\n".join(f"ahead{h}.any_available AS available_in_{h}min" for h in horizons)
    target_joins = "\n".join(
        f"LEFT JOIN base AS ahead{h} ON ahead{h}.station_id = w.station_id "
        f"AND ahead{h}.slot = w.slot + INTERVAL {_target_offset(h)} MINUTE" for h in horizons)
    return f"""
WITH polls AS (
    SELECT station_id, charging_point_id,
           time_bucket(INTERVAL {GRID_MINUTES} MINUTE, {_utc('polled_at')}) AS slot,
           max({_utc('polled_at')}) AS polled_at,
           arg_max(status, polled_at) AS status,
           arg_max(station_key, polled_at) AS station_key,
           arg_max(city_slug, polled_at) AS city_slug
    FROM {status}
    GROUP BY station_id, charging_point_id, slot
),
station_slots AS (
    SELECT station_id, slot,
           arg_max(station_key, polled_at) AS station_key,
           arg_max(city_slug, polled_at) AS city_slug,
           count(*) AS n_charging_points,
           count(*) FILTER (WHERE status = 'AVAILABLE') AS n_available,
           count(*) FILTER (WHERE status IN ({lists(OCCUPIED)})) AS n_occupied,
           count(*) FILTER (WHERE status IN ({lists(OUT_OF_ORDER)})) AS n_out_of_order
    FROM polls
    GROUP BY station_id, slot
),
base AS (
    SELECT *,
           n_available / n_charging_points AS share_available,
           n_occupied / n_charging_points AS share_occupied,
           n_out_of_order / n_charging_points AS share_out_of_order,
           CAST(n_available > 0 AS INTEGER) AS any_available
    FROM station_slots
),
changes AS (
    SELECT *,
           CASE WHEN any_available IS DISTINCT FROM lag(any_available) OVER (PARTITION BY station_id ORDER BY slot)
                THEN 1 ELSE 0 END AS changed
    FROM base
),
runs AS (
    SELECT *, sum(changed) OVER (PARTITION BY station_id ORDER BY slot ROWS UNBOUNDED PRECEDING) AS run_id
    FROM changes
),
windowed AS (
    SELECT *,
           date_diff('minute', min(slot) OVER (PARTITION BY station_id, run_id ORDER BY slot ROWS UNBOUNDED PRECEDING),
                     slot) AS minutes_in_state,
           {rolling}
    FROM runs
),
connector_versions AS (
    -- each connector version from its first sighting to the next one's; the first version also before it
    SELECT charging_point_id, connector_id, power_type,
           coalesce(max_power_kw, rated_power_kw) AS power_kw,
           CASE WHEN row_number() OVER (PARTITION BY connector_id ORDER BY valid_from) = 1 THEN TIMESTAMP '-infinity'
                ELSE {_utc('valid_from')} END AS effective_from,
           coalesce({_utc('valid_to')}, TIMESTAMP 'infinity') AS effective_to
    FROM marts.dim_connector
),
equipment AS (
    SELECT polls.station_id, polls.slot,
           max(c.power_kw) AS max_power_kw,
           max(CASE WHEN c.power_type = 'DC' THEN 1 ELSE 0 END) AS has_dc,
           max(CASE WHEN c.power_type LIKE 'AC%' THEN 1 ELSE 0 END) AS has_ac,
           count(DISTINCT c.connector_id) AS n_connectors
    FROM polls
    JOIN connector_versions AS c
      ON c.charging_point_id = polls.charging_point_id
     AND c.effective_from <= polls.polled_at AND polls.polled_at < c.effective_to
    GROUP BY polls.station_id, polls.slot
)
SELECT w.station_id, w.slot,
       coalesce(w.city_slug, d.city_slug) AS city_slug,
       d.operator_name,
       CAST(d.is_open_24_7 AS DOUBLE) AS is_open_24_7,
       w.n_charging_points, w.n_available, w.share_available, w.share_occupied, w.share_out_of_order, w.any_available,
       {lag_columns},
       {", ".join(f"w.{v}_mean_{h}h" for h in ROLLING_HOURS for v in ROLLED)},
       w.minutes_in_state,
       e.max_power_kw, e.has_dc, e.has_ac, e.n_connectors,
       {target_columns}
FROM windowed AS w
LEFT JOIN marts.dim_station AS d ON d.station_key = w.station_key
LEFT JOIN equipment AS e ON e.station_id = w.station_id AND e.slot = w.slot
{lag_joins}
{target_joins}
ORDER BY w.station_id, w.slot
"""


def _target_offset(horizon: int) -> int:
    """Minutes from t to the poll slot whose interval holds t + horizon."""
    return (int(horizon) // GRID_MINUTES) * GRID_MINUTES


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


def station_time_features(con, horizons: tuple[int, ...] = HORIZONS, *, status: str = FACT_STATUS,
                          codes: Mapping[str, Mapping[str, int]] | None = None) -> pd.DataFrame:
    """One row per station and 10-minute poll slot (`polled_at`, UTC) with leakage-safe features at t and the
    targets `available_in_<h>min` (see the module docstring). Reads marts only; an empty fact table gives an empty
    frame with all columns.

    Training reads `marts.fct_charging_point_status`. The service runs the same code over another relation with its
    columns (`status`: the live status history shaped by `live_status_relation`), with the operator and city codes
    of the feature set the model was trained on (`codes`, from `feature_codes`)."""
    horizons = tuple(int(h) for h in horizons)
    if not horizons or min(horizons) < GRID_MINUTES:
        raise ValueError(f"horizons must be at least {GRID_MINUTES} minutes (one poll interval), got {horizons}")
    _require_marts(con, TIME_MARTS)
    frame = con.execute(_status_sql(horizons, status)).df()
    pois = _poi_counts(con)
    codes = codes or {}

    frame = frame.rename(columns={"slot": "polled_at"})
    frame["polled_at"] = pd.to_datetime(frame["polled_at"]).dt.tz_localize("UTC")
    local = frame["polled_at"].dt.tz_convert(LOCAL_TZ)
    frame["hour"] = local.dt.hour.astype("int64")
    frame["minute_of_day"] = (local.dt.hour * 60 + local.dt.minute).astype("int64")
    frame["weekday"] = local.dt.weekday.astype("int64")
    frame["is_weekend"] = (frame["weekday"] >= 5).astype("int64")
    frame["is_holiday"] = _holiday_flags(local.dt.date)
    frame["operator_code"] = _codes_by_first_appearance(frame["operator_name"], frame["polled_at"],
                                                        codes.get("operator_name"))
    frame["city_code"] = _codes_by_first_appearance(frame["city_slug"], frame["polled_at"], codes.get("city_slug"))
    for column in ("n_charging_points", "n_available", "any_available", "minutes_in_state"):
        frame[column] = frame[column].astype("int64")
    float_columns = ["share_available", "share_occupied", "share_out_of_order", *LAGS, *ROLLING, "max_power_kw",
                     "has_dc", "has_ac", "n_connectors", "is_open_24_7", *(f"available_in_{h}min" for h in horizons)]
    frame[float_columns] = frame[float_columns].astype("float64")
    frame = _add_pois(frame, pois)
    poi_columns = [c for c in pois.columns if c != "station_id"]
    ids = ["station_id", "polled_at", "city_slug", "operator_name"]
    targets = [f"available_in_{h}min" for h in horizons]
    return frame[[*ids, *AVAILABILITY_FEATURES, *poi_columns, *targets]].reset_index(drop=True)


LIVE_HISTORY_COLUMNS = ("poll_slot", "poll_time", "city_slug", "station_id", "charging_point_id", "status")


def live_status_sql(history: str, since: str | None = None) -> str:
    """The rows `station_time_features` reads from `marts.fct_charging_point_status`, built from `history`: a
    relation of status history rows (`LIVE_HISTORY_COLUMNS`, times as ISO text: the live landing store's
    `status_history`, i.e. the rows of raw.status_chargingpoints at each landed poll) the way dbt builds them from
    raw.status_chargingpoints: the status trimmed and upper-cased, empty as UNKNOWN (staging); a city's answer
    repeated in a later slot kept once, in its first slot (staging's first loads); the station version valid at the
    poll (the fct model). The history of the same stations in the marts before their first row in `history` (from
    `since` on, when given) comes first, so that lags, rolling windows and runs reach back across the start of the
    live data."""
    since_filter = f"AND f.polled_at >= CAST('{since}' AS TIMESTAMPTZ)" if since else ""
    return f"""
WITH renamed AS (
    SELECT CAST(charging_point_id AS VARCHAR) AS charging_point_id, CAST(station_id AS VARCHAR) AS station_id,
           CAST(city_slug AS VARCHAR) AS city_slug,
           coalesce(upper(nullif(trim(status), '')), 'UNKNOWN') AS status,
           CAST(poll_time AS TIMESTAMPTZ) AS polled_at, CAST(poll_slot AS TIMESTAMPTZ) AS poll_slot
    FROM {history}
),
first_loads AS (
    SELECT city_slug, polled_at, min(poll_slot) AS poll_slot FROM renamed GROUP BY city_slug, polled_at
),
polls AS (
    SELECT renamed.* FROM renamed
    SEMI JOIN first_loads ON renamed.city_slug = first_loads.city_slug AND renamed.polled_at = first_loads.polled_at
        AND renamed.poll_slot = first_loads.poll_slot
),
station_versions AS (
    SELECT station_key, station_id, valid_from, valid_to,
           row_number() OVER (PARTITION BY station_id ORDER BY valid_from) = 1 AS is_first_version
    FROM marts.dim_station
),
live AS (
    SELECT polls.charging_point_id, polls.station_id, v.station_key, polls.city_slug, polls.polled_at, polls.status
    FROM polls
    LEFT JOIN station_versions AS v
      ON polls.station_id = v.station_id
     AND (polls.polled_at >= v.valid_from OR v.is_first_version)
     AND (polls.polled_at < v.valid_to OR v.valid_to IS NULL)
),
live_start AS (SELECT station_id, min(polled_at) AS first_polled_at FROM live GROUP BY station_id)
SELECT * FROM live
UNION ALL
SELECT f.charging_point_id, f.station_id, f.station_key, f.city_slug, f.polled_at, f.status
FROM {FACT_STATUS} AS f
JOIN live_start ON live_start.station_id = f.station_id AND f.polled_at < live_start.first_polled_at
WHERE TRUE {since_filter}
"""


def live_station_time_features(con, history: pd.DataFrame, codes: Mapping[str, Mapping[str, int]] | None = None,
                               since: str | None = None, horizons: tuple[int, ...] = HORIZONS) -> pd.DataFrame:
    """`station_time_features` of the stations in `history` (live status history, see `live_status_sql`) on the
    marts of `con` (the station's versions, connectors and POIs; its earlier polls), coded with `codes`."""
    name = f"_live_status_{uuid.uuid4().hex}"
    con.register(f"{name}_rows", history[list(LIVE_HISTORY_COLUMNS)].astype(object))
    try:
        con.execute(f"CREATE TEMP VIEW {name} AS {live_status_sql(f'{name}_rows', since)}")
        try:
            return station_time_features(con, horizons, status=name, codes=codes)
        finally:
            con.execute(f"DROP VIEW IF EXISTS {name}")
    finally:
        con.unregister(f"{name}_rows")


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


# --- training: shared ----------------------------------------------------------------------------------------------
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


# --- training: availability ----------------------------------------------------------------------------------------
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


def _city_groups(test: pd.DataFrame) -> pd.Series:
    """The site group of each held-out row (its city; no city may get worse under a new champion)."""
    city = test["city_slug"] if "city_slug" in test.columns else pd.Series("all", index=test.index)
    return ("city=" + city.fillna("unknown").astype(str)).reset_index(drop=True)


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
