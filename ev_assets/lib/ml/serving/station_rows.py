"""Station rows at serving time: the availability row of a station at or before a time, from the station-time feature
set (`StationTimeIndex`) or from the live path (`OnlineFeatures`), and the utilisation row of a station and day
(`StationDayIndex`, `day_calendar`), each built by the training code."""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from ev_assets.lib.ml import catalog, stations
from ev_assets.lib.ml.core import float32_exact
from ev_assets.lib.ml.serving.base import HISTORY_DAYS, NotFound, NotReady, _Columns, _inputs
from ev_assets.lib.ml.stations.shared import _holiday_flags


# --- availability ------------------------------------------------------------------------------------------------
@dataclass
class StationTimeIndex(_Columns):
    """The station-time feature set, rounded as in training, by station: poll times and feature rows."""

    columns: list[str]
    stations: dict[str, tuple[np.ndarray, np.ndarray]]  # station id -> (polled_at as int64 ns, rows x columns)

    kept_from: pd.Timestamp | None = None  # rows before this (older than HISTORY_DAYS) are not kept
    codes: dict[str, dict[str, int]] = field(default_factory=dict)  # operator / city codes (stations.feature_codes)

    @classmethod
    def of(cls, frames: dict[str, pd.DataFrame]) -> "StationTimeIndex":
        frame = frames["features"]
        columns = [*stations.AVAILABILITY_FEATURES, *[c for c in frame.columns if str(c).startswith("poi_")]]
        columns = [c for c in columns if c in frame.columns]
        codes = stations.feature_codes(frame)
        polled = pd.to_datetime(frame["polled_at"], utc=True)
        kept_from = None
        if len(frame):  # only the recent past is served: memory stays bounded however long the history is
            kept_from = polled.max() - pd.Timedelta(days=HISTORY_DAYS)
            frame = frame[polled >= kept_from]
        # exactly as `train_availability_models` does (it rounds every feature column of the frame)
        rounded = float32_exact(frame[["station_id", "polled_at", *columns]], columns)
        polled = pd.to_datetime(rounded["polled_at"], utc=True)
        rounded = rounded.assign(_ns=polled.dt.tz_localize(None).astype("datetime64[ns]").astype("int64"))
        rounded = rounded.sort_values(["station_id", "_ns"], kind="stable")
        values = rounded[columns].to_numpy(dtype=float)
        times = rounded["_ns"].to_numpy()
        by_station = {}
        for station, positions in rounded.groupby(rounded["station_id"].astype(str), sort=False).indices.items():
            by_station[station] = (times[positions], values[positions])
        return cls(columns, by_station, kept_from, codes)

    def newest(self, station_id: str) -> pd.Timestamp | None:
        found = self.stations.get(station_id)
        return pd.Timestamp(int(found[0][-1]), tz="UTC") if found is not None and len(found[0]) else None

    def row(self, station_id: str, at: datetime | None) -> tuple[pd.Timestamp, np.ndarray]:
        """(the poll slot of the row, its feature values in `columns` order): the station's latest row at or
        before `at` (default: its latest)."""
        found = self.stations.get(station_id)
        if found is None:
            raise NotFound(f"unknown station {station_id!r}: no poll of it in the station-time feature set")
        times, values = found
        if at is None:
            i = len(times) - 1
        else:
            i = int(np.searchsorted(times, _ns(at), side="right")) - 1
            if i < 0:
                first = pd.Timestamp(times[0], tz="UTC")
                raise NotFound(f"station {station_id!r} has no features at or before {_iso(at)} (its first poll "
                               f"slot kept is {first.isoformat()}; the service keeps the last {HISTORY_DAYS} days "
                               "of the feature set)")
        return pd.Timestamp(int(times[i]), tz="UTC"), values[i]


def availability_features(index: StationTimeIndex, station_id: str, at: datetime | None,
                          features: Iterable[str]) -> tuple[pd.Timestamp, dict[str, float], np.ndarray]:
    """(features_at, {feature: value}, the model's input row) for an availability champion with `features`."""
    features = tuple(features)
    polled_at, values = index.row(station_id, at)
    x = values[index.positions(features, catalog.STATION_TIME)]
    return polled_at, _inputs(features, x), x


# --- availability from the live path ------------------------------------------------------------------------------
@dataclass(frozen=True)
class OnlineRow:
    """A station's availability features at one landed live poll, built by the training code."""

    features_at: pd.Timestamp  # the poll slot (`polled_at` of the feature set)
    poll_time: pd.Timestamp  # when the city was polled: the data's time (data_as_of)
    columns: tuple[str, ...]
    values: np.ndarray  # rounded as in training

    def features(self, features: Iterable[str]) -> tuple[dict[str, float], np.ndarray]:
        index = {c: i for i, c in enumerate(self.columns)}
        missing = [f for f in features if f not in index]
        if missing:
            raise NotReady(f"the champion needs features the live features lack ({', '.join(missing[:8])}): retrain")
        x = self.values[[index[f] for f in features]]
        return _inputs(features, x), x


class OnlineFeatures:
    """The availability row of a station's newest live poll (at or before a time): the live landing store's status
    history of the station (`store.status_history`), shaped like `marts.fct_charging_point_status` and run through
    `stations.station_time_features` on the marts snapshot (station versions, connectors, POIs, and the station's
    polls before the live data) with the operator and city codes of the station-time feature set
    (`stations.live_station_time_features`), then rounded as in training. The history reaches `HISTORY_DAYS` back.

    Rows are cached per (station, poll slot, snapshot, feature set): a station's row changes only when a poll of
    its city lands."""

    CACHE_SIZE = 4096

    def __init__(self, live_dir: Path, snapshot_reader):
        self.live_dir = Path(live_dir)
        self.snapshot_reader = snapshot_reader
        self._cache: dict[tuple, OnlineRow] = {}
        self._lock = threading.Lock()

    def newest_slot(self, live_con, station_id: str, at: datetime | None) -> tuple[str, str] | None:
        """(poll slot, poll time) as ISO text of the newest landed poll of the station's city at or before `at`,
        or None when the live store does not know the station."""
        from ev_assets.lib.live import messages  # the live path is optional for the rest of serving

        found = live_con.execute("SELECT city_slug FROM status_changes WHERE station_id = ? AND table_name = "
                                 "'status_chargingpoints' LIMIT 1", (station_id,)).fetchone()
        if found is None:
            return None
        bound = "" if at is None else "AND poll_slot <= ?"
        params = (found[0],) if at is None else (found[0], messages.iso(pd.Timestamp(at)))
        row = live_con.execute(f"SELECT poll_slot, poll_time FROM poll_marks WHERE city_slug = ? AND ok {bound} "
                               "ORDER BY poll_slot DESC LIMIT 1", params).fetchone()
        return (row[0], row[1] or row[0]) if row else None

    def row(self, live_con, station_id: str, at: datetime | None, index: StationTimeIndex,
            index_stamp: tuple) -> OnlineRow | None:
        """The station's features at its newest live poll at or before `at`; None when the live store has no poll
        of it then (the caller falls back on the feature set)."""
        from ev_assets.lib.live import messages, store  # the live path is optional for the rest of serving

        newest = self.newest_slot(live_con, station_id, at)
        if newest is None:
            return None
        slot, poll_time = newest
        connection = self.snapshot_reader.connect()  # NoSnapshot: the static attributes are unknown
        try:
            key = (station_id, slot, self.snapshot_reader.name, index_stamp)
            with self._lock:
                cached = self._cache.get(key)
            if cached is not None:
                return cached
            since = pd.Timestamp(slot) - pd.Timedelta(days=HISTORY_DAYS)
            history = store.status_history(live_con, messages.iso(since), station_id)
            history = history[history["poll_slot"] <= slot]
            if history.empty:
                return None
            frame = stations.live_station_time_features(connection, history, index.codes, since=since.isoformat())
        finally:
            connection.close()
        frame = frame[frame["station_id"].astype(str) == station_id]
        if at is not None:
            frame = frame[frame["polled_at"] <= pd.Timestamp(at)]
        if frame.empty:
            return None
        columns = [*stations.AVAILABILITY_FEATURES, *[c for c in frame.columns if str(c).startswith("poi_")]]
        last = float32_exact(frame.iloc[[-1]], columns)
        online = OnlineRow(pd.Timestamp(last["polled_at"].iloc[0]), pd.Timestamp(poll_time),
                           tuple(columns), last[columns].to_numpy(dtype=float)[0])
        with self._lock:
            if len(self._cache) >= self.CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = online
        return online


# --- utilisation -------------------------------------------------------------------------------------------------
@dataclass
class StationDayIndex(_Columns):
    """Each station's latest row of the station-day feature set (its static attributes and POI counts)."""

    columns: list[str]
    stations: dict[str, tuple[pd.Timestamp, np.ndarray]]  # station id -> (its latest day, values in columns order)

    @classmethod
    def of(cls, frames: dict[str, pd.DataFrame]) -> "StationDayIndex":
        frame = frames["features"]
        columns = [*stations.UTILIZATION_FEATURES, *[c for c in frame.columns if str(c).startswith("poi_")]]
        columns = [c for c in columns if c in frame.columns]
        ordered = frame.assign(day=pd.to_datetime(frame["day"])).sort_values(["station_id", "day"], kind="stable")
        latest = ordered.groupby(ordered["station_id"].astype(str), sort=False).tail(1)
        values = latest[columns].to_numpy(dtype=float)
        return cls(columns, {str(s): (pd.Timestamp(d), values[i])
                             for i, (s, d) in enumerate(zip(latest["station_id"], latest["day"]))})


@functools.lru_cache(maxsize=4096)
def day_calendar(day: date) -> dict[str, int]:
    """weekday, is_weekend, is_holiday of a day, as `stations.station_utilization_features` computes them."""
    frame = pd.DataFrame({"day": pd.to_datetime([day])})
    weekday = frame["day"].dt.weekday.astype("int64")
    holiday = _holiday_flags(frame["day"].dt.date)
    return {"weekday": int(weekday.iloc[0]), "is_weekend": int(weekday.iloc[0] >= 5), "is_holiday": int(holiday.iloc[0])}


def utilization_features(index: StationDayIndex, station_id: str, day: date,
                         features: Iterable[str]) -> tuple[pd.Timestamp, dict[str, float], np.ndarray]:
    """(the station's latest observed day, {feature: value}, the model's input row) for `day`."""
    features = tuple(features)
    found = index.stations.get(station_id)
    if found is None:
        raise NotFound(f"unknown station {station_id!r}: no day of it in the station-day feature set")
    latest, values = found
    values = values.copy()
    for column, value in day_calendar(day).items():
        if column in index.columns:
            values[index.columns.index(column)] = value
    x = values[index.positions(features, catalog.STATION_DAY)]
    return latest, _inputs(features, x), x


def _ns(when: datetime) -> int:
    stamp = pd.Timestamp(when)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.tz_localize(None).as_unit("ns").value)


def _iso(when: datetime) -> str:
    return pd.Timestamp(when).isoformat()
