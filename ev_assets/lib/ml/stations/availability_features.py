"""The availability models' feature set (`station_time_features`): one row per station and 10-minute poll
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

The same rows from the live path: `live_station_time_features` (`live_status_sql`).
"""

from __future__ import annotations

import uuid
from typing import Mapping

import pandas as pd

from ev_assets.lib.ml import catalog
from ev_assets.lib.ml.stations.shared import (
    GRID_MINUTES,
    STATION,
    _add_pois,
    _codes_by_first_appearance,
    _holiday_flags,
    _poi_counts,
    _require_marts,
)
from ev_assets.lib.vocabulary import LOCAL_TZ, OCCUPIED, OUT_OF_ORDER

HORIZONS = catalog.AVAILABILITY_HORIZONS  # the next poll (t + 10) and the poll an hour later
LAGS_MINUTES = (10, 30, 60)
ROLLING_HOURS = (1, 3, 24)
ROLLED = ("share_available", "share_occupied", "any_available")
TIME_MARTS = ("fct_charging_point_status", "dim_station", "dim_connector", "dim_poi_station")
FACT_STATUS = "marts.fct_charging_point_status"  # the status polls `station_time_features` reads by default
CALENDAR = ["hour", "minute_of_day", "weekday", "is_weekend", "is_holiday"]
NOW = ["n_charging_points", "n_available", "share_available", "share_occupied", "share_out_of_order", "any_available"]
LAGS = [f"{v}_lag_{m}min" for m in LAGS_MINUTES for v in ("any_available", "share_available")]
ROLLING = [f"{v}_mean_{h}h" for h in ROLLING_HOURS for v in ROLLED]
AVAILABILITY_FEATURES = [*CALENDAR, *NOW, *LAGS, *ROLLING, "minutes_in_state", *STATION]  # + poi_* columns
NAN_FEATURES = {
    **{c: "the poll that long before t is missing (start of the history, gaps)" for c in LAGS},
    "max_power_kw": "no connector of the station known", "has_dc": "no connector known", "has_ac": "no connector known",
    "n_connectors": "no connector known", "is_open_24_7": "the master data does not say",
}


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
