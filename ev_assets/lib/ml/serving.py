"""Feature rows at serving time, built by the training code, so that a served model sees what it was trained on.

| model(s)                                   | where the row comes from                       | built by (training code)                     |
|--------------------------------------------|------------------------------------------------|----------------------------------------------|
| station_available_10min / _60min           | the station's row of `station_time_features`   | `stations.station_time_features` (the ML job |
|                                            | at or before `at`                              | writes it), rounded by `core.float32_exact`  |
|                                            |                                                | over the same columns as in training         |
| station_sessions_per_day / _occupied_share | the station's latest row of                    | `stations.station_utilization_features`; the |
|                                            | `station_day_features`, with the calendar of   | calendar as there (`stations.shared`)        |
|                                            | the requested day                              | (no rounding: training does none)            |
| vehicle_plugged_in_15min / energy_to_full  | the readings of the request                    | `telemetry.features.clean_traces`, then      |
|                                            |                                                | `plugin.model_matrix` (its float32 grids)    |
| session_energy_kwh / session_duration_h    | the user's sessions in `session_features` and  | `sessions.usable_sessions`, `add_history`,   |
|                                            | the request as one more (unfinished) session   | `add_calendar`, `encode` (no rounding)       |

The session models code the garage / site / station / user type with a vocabulary learned on their training rows
(`sessions.vocabularies_of`), bundled with the logged model (`encodings.json` of its run): the service codes with
it. For a version logged before the codes were bundled, `session_vocabularies` rebuilds it the same way
from the session feature set and the champion's recorded split (`split_<dataset>_valid_start`): the training rows
are the sessions of each trained dataset that plugged in before its validation block. That holds as long as no
session older than that is added to the raw tables later (then the codes shift; see the module's report).

Feature sets are read from `<data root>/ml/features/<set>/*.parquet` and re-read when a file changes (the ML job
replaces them atomically); of the station-time set only the last `HISTORY_DAYS` days are kept in memory. Errors a caller can act on are `ServingError`s with an HTTP status: 404 unknown
station / user, 422 unusable input, 503 no feature set yet or a feature set that does not fit the champion.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Callable, Generic, Iterable, TypeVar

import numpy as np
import pandas as pd

from ev_assets.lib.ml import catalog, plugin, sessions, stations
from ev_assets.lib.ml.core import float32_exact
from ev_assets.lib.ml.stations.shared import _holiday_flags
from ev_assets.lib.settings import Settings
from ev_assets.lib.sources.telemetry import features as telemetry

STATION_TIME, STATION_DAY, SESSIONS = catalog.STATION_TIME, catalog.STATION_DAY, catalog.SESSIONS
HISTORY_DAYS = 14  # of the station-time feature set kept in memory (for `at` in the recent past)
MAKE_DEMO = "run `make demo` (or the ML job, ml_job) to build it"

T = TypeVar("T")


class ServingError(Exception):
    """A request that cannot be answered, with the HTTP status that says why (404, 422 or 503)."""

    status_code = 503

    def __init__(self, message: str, status_code: int | None = None, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.extra = dict(extra or {})  # more fields of the JSON answer besides `detail`
        if status_code is not None:
            self.status_code = status_code


class NotFound(ServingError):
    status_code = 404


class Unprocessable(ServingError):
    status_code = 422


class NotReady(ServingError):
    status_code = 503


class Stale(ServingError):
    """The newest data at or before the requested time is older than the staleness limit: answered with 409, the
    data's age and its newest time, never with old features."""

    status_code = 409


# --- feature sets on disk ----------------------------------------------------------------------------------------
class FeatureSetCache(Generic[T]):
    """A feature set's Parquet files, prepared once by `prepare` and re-read when a file changes (its mtime, size
    or inode): the ML job replaces them with `os.replace`, so a changed file is always a complete one. The files
    are looked at no more often than every `check_every_s` seconds (a stat per request costs latency)."""

    def __init__(self, folder: Path, files: Iterable[str], prepare: Callable[[dict[str, pd.DataFrame]], T],
                 required: Iterable[str] | None = None, check_every_s: float = 0.5):
        self.folder = Path(folder)
        self.files = tuple(files)
        self.required = tuple(self.files if required is None else required)
        self.prepare = prepare
        self._lock = threading.Lock()
        self.check_every_s = check_every_s
        self._stamp: tuple | None = None
        self._value: T | None = None
        self._checked = float("-inf")

    @property
    def name(self) -> str:
        return self.folder.name

    def stamp(self) -> tuple:
        stamps = []
        for name in self.files:
            try:
                st = os.stat(self.folder / f"{name}.parquet")
            except FileNotFoundError:
                if name in self.required:
                    raise NotReady(f"no feature set {self.name} yet ({self.folder / name}.parquet is missing): "
                                   f"{MAKE_DEMO}") from None
                stamps.append((name, None))
                continue
            stamps.append((name, st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(stamps)

    def get(self) -> tuple[T, tuple]:
        """(the prepared value, its file stamp); re-read when the files changed since the last look."""
        now = time.monotonic()
        if self._value is not None and now - self._checked < self.check_every_s:
            return self._value, self._stamp
        stamp = self.stamp()
        if stamp == self._stamp and self._value is not None:
            self._checked = now
            return self._value, stamp
        with self._lock:
            stamp = self.stamp()
            if stamp != self._stamp or self._value is None:
                frames = {}
                for entry in stamp:
                    if entry[1] is not None:
                        frames[entry[0]] = pd.read_parquet(self.folder / f"{entry[0]}.parquet")
                self._value, self._stamp = self.prepare(frames), stamp
            self._checked = time.monotonic()
            return self._value, self._stamp

    def present(self) -> bool:
        try:
            self.stamp()
            return True
        except NotReady:
            return False


class _Columns:
    """Feature columns of an index, and the positions of a model's features among them (cached per feature list)."""

    columns: list[str]

    def positions(self, features: tuple[str, ...], what: str) -> list[int]:
        cache = self.__dict__.setdefault("_positions", {})
        found = cache.get(features)
        if found is None:
            index = {c: i for i, c in enumerate(self.columns)}
            missing = [f for f in features if f not in index]
            if missing:
                raise NotReady(f"the champion needs features the {what} feature set lacks ({', '.join(missing[:8])}): "
                               "retrain (ml_job) so that the model and its feature set agree")
            found = cache[features] = [index[f] for f in features]
        return found


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
    x = values[index.positions(features, STATION_TIME)]
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
    x = values[index.positions(features, STATION_DAY)]
    return latest, _inputs(features, x), x


# --- vehicle telemetry -------------------------------------------------------------------------------------------
@dataclass
class VehicleRow:
    reading_at: pd.Timestamp  # the latest usable reading: the forecast is for reading_at + horizon
    inputs: dict[str, float]
    x: np.ndarray
    readings_used: int
    dropped: dict[str, int] = field(default_factory=dict)


def vehicle_features(readings: pd.DataFrame, features: Iterable[str], gap_minutes: float) -> VehicleRow:
    """The model row of the latest reading of one vehicle's `readings` (columns reading_at, soc_pct, plugged_in),
    cleaned as in training: sorted by time, the first of repeated timestamps kept, unusable rows dropped."""
    features = list(features)
    frame = readings.copy()
    if "vehicle_id" not in frame.columns:
        frame["vehicle_id"] = "request"
    frame["vehicle_id"] = frame["vehicle_id"].fillna("request")
    report = telemetry.TraceReport()
    clean = telemetry.clean_traces(frame, gap_minutes, report)
    if clean.empty:
        raise Unprocessable(f"no usable reading: {report.summary()}")
    latest = clean.iloc[[-1]]
    matrix = plugin.model_matrix(latest)
    missing = [f for f in features if f not in matrix.columns]
    if missing:
        raise NotReady(f"the champion needs features the telemetry features lack ({', '.join(missing)}): retrain")
    x = matrix[features].to_numpy(dtype=float)[0]
    return VehicleRow(pd.Timestamp(latest["reading_at"].iloc[0]).tz_convert("UTC"), _inputs(features, x),
                      x, len(clean), dict(report.dropped))


# --- sessions ----------------------------------------------------------------------------------------------------
@dataclass
class SessionHistory:
    """The usable sessions of the session feature set, normalised as in training, by history key."""

    usable: dict[str, pd.DataFrame]  # dataset -> normalised usable sessions (sessions.usable_sessions)
    by_key: dict[str, pd.DataFrame]  # history key -> that user's normalised sessions
    zones: dict[str, str]  # history key -> the time zone of the user's latest raw session

    @classmethod
    def of(cls, frames: dict[str, pd.DataFrame]) -> "SessionHistory":
        usable, zones, parts = {}, {}, []
        for dataset, table in (("norway", "session_reports"), ("acn", "acn_sessions")):
            raw = frames.get(table)
            found = sessions.usable_sessions(raw if raw is not None else pd.DataFrame(), dataset).frame
            if "dataset" not in found.columns:
                found = found.assign(dataset=dataset)
            usable[dataset] = found
            if len(found):
                parts.append(found)
            if raw is not None and len(raw) and "user_id" in raw.columns:
                user = sessions._text(raw["user_id"])
                zone = sessions._zones(raw, dataset)
                prefix = "norway:" if dataset == "norway" else "acn:user:"
                for key, tz in zip(user, zone):
                    if key is not None:
                        zones[prefix + key] = tz
        by_key = {}
        if parts:
            frame = pd.concat(parts, ignore_index=True)
            by_key = {str(k): g.reset_index(drop=True) for k, g in frame.groupby("history_key", sort=False)}
        return cls(usable, by_key, zones)


def history_key(dataset: str, user_id: str) -> str:
    """The key `sessions._norway` / `sessions._acn` give a session with this user id."""
    return f"norway:{user_id}" if dataset == "norway" else f"acn:user:{user_id}"


def session_vocabularies(history: SessionHistory, params: dict[str, str]) -> dict[str, dict[str, int]]:
    """The integer codes a session champion was trained with, rebuilt from its training rows: per trained dataset,
    the usable sessions that plugged in before `split_<dataset>_valid_start` (the champion's run params), as
    `sessions._split` / `core.time_split` cut them; coded by `sessions.vocabularies_of` as in training."""
    parts = []
    for dataset in sessions.DATASETS:
        start = params.get(f"split_{dataset}_valid_start")
        frame = history.usable.get(dataset)
        if start is None or frame is None or frame.empty:
            continue  # not trained on
        parts.append(frame[frame["plugin_utc"] < pd.Timestamp(start)])
    if not parts:
        raise NotReady("the session champion records no training split (split_<dataset>_valid_start) that the "
                       "session feature set can rebuild its codes from: retrain (ml_job)")
    return sessions.vocabularies_of(pd.concat(parts, ignore_index=True))


@dataclass
class SessionRow:
    inputs: dict[str, float]
    x: np.ndarray
    known_user: bool
    user_sessions_before: int
    site: str | None
    station: str | None
    user_type: str | None
    history_as_of: pd.Timestamp | None = None  # the newest plug-in of the user's sessions before the request


def session_features(history: SessionHistory, vocabularies: dict[str, dict[str, int]], features: Iterable[str], *,
                     dataset: str, user_id: str, plug_in_at: datetime, site_id: str | None = None,
                     station_id: str | None = None, user_type: str | None = None,
                     allow_new_user: bool = False, kwh_requested: float | None = None,
                     minutes_available: float | None = None) -> SessionRow:
    """The model row of a session plugging in at `plug_in_at`: the request becomes one more session of the user
    (with a plug-out a minute later, so it counts in no history), run through the training functions with the
    user's sessions; site / station / user type default to those of the user's latest session."""
    features = list(features)
    key = history_key(dataset, user_id)
    past = history.by_key.get(key)
    if past is None and not allow_new_user:
        raise NotFound(f"unknown user {user_id!r} in the {dataset} sessions: no session of theirs in the session "
                       "feature set (send \"new_user\": true for a forecast without history)")
    if past is not None and len(past):
        latest = past.sort_values("plugin_utc", kind="stable").iloc[-1]
        site_id = site_id if site_id is not None else latest["site"]
        station_id = station_id if station_id is not None else latest["station"]
        user_type = user_type if user_type is not None else latest["user_type"]
    start = pd.Timestamp(plug_in_at).tz_convert("UTC")
    end = start + pd.Timedelta(minutes=1)
    zone = history.zones.get(key, sessions.DEFAULT_TZ[dataset])
    if dataset == "norway":
        raw = pd.DataFrame({"session_id": ["request"], "garage_id": [site_id], "user_id": [user_id],
                            "user_type": [user_type], "plugin_at": [start], "plugout_at": [end], "energy_kwh": [0.0],
                            "timezone": [zone]})
    else:
        raw = pd.DataFrame({"session_id": ["request"], "site_id": [site_id], "station_id": [station_id],
                            "space_id": [None], "user_id": [user_id], "connection_time": [start],
                            "disconnect_time": [end], "kwh_delivered": [0.0], "timezone": [zone],
                            # what the driver tells the app at plug-in (the first user input)
                            "first_kwh_requested": [kwh_requested], "first_minutes_available": [minutes_available],
                            "first_input_at": [start]})
    request = sessions.usable_sessions(raw, dataset).frame
    if len(request) != 1:
        raise Unprocessable("the plug-in time cannot be read as a session start")
    request = request.assign(dataset=dataset)
    frame = pd.concat([past, request], ignore_index=True) if past is not None and len(past) else request
    frame = sessions.add_calendar(sessions.add_history(frame))
    coded = sessions.encode(frame.iloc[[-1]], vocabularies)
    missing = [f for f in features if f not in coded.columns]
    if missing:
        raise NotReady(f"the champion needs features the session features lack ({', '.join(missing)}): retrain")
    x = coded[features].to_numpy(dtype=float)[0]
    row = coded.iloc[0]
    has_past = past is not None and len(past)
    before = past[past["plugin_utc"] < start]["plugin_utc"] if has_past else pd.Series([], dtype=object)
    return SessionRow(_inputs(features, x), x, past is not None, int(row["user_sessions_before"]),
                      _text(row["site"]), _text(row["station"]), _text(row["user_type"]),
                      pd.Timestamp(before.max()) if len(before) else None)


# --- the feature sets of one data root ---------------------------------------------------------------------------
class FeatureSets:
    """The feature sets the service reads, under `settings.feature_sets_dir`."""

    def __init__(self, settings: Settings):
        root = settings.feature_sets_dir
        self.station_time = FeatureSetCache(root / STATION_TIME, ["features"], StationTimeIndex.of)
        self.station_day = FeatureSetCache(root / STATION_DAY, ["features"], StationDayIndex.of)
        self.sessions = FeatureSetCache(root / SESSIONS, ["session_reports", "acn_sessions"], SessionHistory.of,
                                        required=())
        self._vocabularies: dict[tuple, dict] = {}
        self._lock = threading.Lock()

    def all(self) -> dict[str, FeatureSetCache]:
        return {STATION_TIME: self.station_time, STATION_DAY: self.station_day, SESSIONS: self.sessions}

    def session_history(self) -> tuple[SessionHistory, tuple]:
        history, stamp = self.sessions.get()
        if not history.usable or all(f.empty for f in history.usable.values()):
            if all(entry[1] is None for entry in stamp):
                raise NotReady(f"no feature set {SESSIONS} yet: {MAKE_DEMO}")
        return history, stamp

    def vocabularies(self, model: str, version: str, params: dict[str, str]) -> tuple[SessionHistory, dict]:
        history, stamp = self.session_history()
        key = (model, version, stamp)
        with self._lock:
            if key not in self._vocabularies:
                if len(self._vocabularies) > 16:
                    self._vocabularies.clear()
                self._vocabularies[key] = session_vocabularies(history, params)
            return history, self._vocabularies[key]


# --- helpers -----------------------------------------------------------------------------------------------------
def _inputs(features: Iterable[str], x: np.ndarray) -> dict[str, float | None]:
    """{feature: value} of a model row, None for a missing value (NaN), as the prediction log keeps it."""
    return {f: (v if v == v else None) for f, v in zip(features, x.tolist())}


def _ns(when: datetime) -> int:
    stamp = pd.Timestamp(when)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.tz_localize(None).as_unit("ns").value)


def _iso(when: datetime) -> str:
    return pd.Timestamp(when).isoformat()


def _text(value) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    return str(value)
