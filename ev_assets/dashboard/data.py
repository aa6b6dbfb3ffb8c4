"""The dashboard's readers, cached.

- Marts: every page reads the read-only snapshot through one `snapshot.Reader` per snapshot folder (never
  `warehouse.duckdb`, which a pipeline run may hold). `query(name, *args)` runs `READERS[name](con, *args)` under
  `st.cache_data` keyed by the CURRENT snapshot's path: a newly published snapshot is a new key, so the next run
  of a page reads it, and old entries age out.
- Models: the champions of the availability models (for the station forecast) and the registry overview (for the
  Models page) are read from the registry's SQLite file and the boosters' files directly
  (`ev_assets.lib.ml.registry_db`, milliseconds; never through MLflow, whose import and store take seconds).
  `Models` keeps them, with the station-time feature set, after the first page has been drawn (`warm_up`, a
  background thread); the champions are looked up again every `settings.model_reload_s` seconds (as the service
  does), the overview whenever `mlflow.db` changes.
- Live state: `live(settings)` reads the live path's landing store (`store.connect_reader`, read-only: a reader
  sees the last committed batch and never blocks the consumer) under `st.cache_data` keyed by the store file's and
  its WAL's size and modification time, so it is read again only after a batch has landed. The pages that show
  "now" redraw their live part every `REFRESH_S` seconds (`st.fragment(run_every=...)`).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import streamlit as st

from ev_assets.lib import snapshot
from ev_assets.lib.dashboard import formatting
from ev_assets.lib.dashboard.energy import energy_entities, energy_series, energy_span, energy_time_zone
from ev_assets.lib.dashboard.models import registry_overview
from ev_assets.lib.dashboard.network import latest_status, live_status, network_trend, station_points
from ev_assets.lib.dashboard.scope import coverage
from ev_assets.lib.dashboard.stations import (
    hour_of_week,
    nearby_pois,
    station_equipment,
    station_master,
    station_sessions,
    stations,
    status_timeline,
)
from ev_assets.lib.kpis.energy import (
    SessionScope,
    active_hours_average,
    energy_daily,
    energy_daily_average,
    energy_last_7_days,
    energy_peak_day,
    energy_peak_hour,
    energy_total,
    garages,
    users,
)
from ev_assets.lib.kpis.network import reliability_daily, reliability_list
from ev_assets.lib.live import store
from ev_assets.lib.ml import catalog
from ev_assets.lib.settings import Settings

AVAILABILITY_MODELS = catalog.AVAILABILITY
# how often Network now and Station redraw their live part while open (seconds; EV_DASHBOARD_REFRESH_S)
REFRESH_S = max(float(os.environ.get("EV_DASHBOARD_REFRESH_S") or 5), 1.0)


def settings() -> Settings:
    """The settings of this run (read from the environment each run: cheap, and tests can point it elsewhere)."""
    return Settings.from_env()


# --- the marts snapshot ------------------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def _reader(snapshot_dir: str) -> snapshot.Reader:
    return snapshot.Reader(Path(snapshot_dir))


def current_snapshot(s: Settings) -> Path | None:
    """The current snapshot file, None when none has been published."""
    return snapshot.current(s.snapshot_dir)


def _session_kpi(fn: Callable) -> Callable:
    """A session KPI of `kpis` called with (con, entity type, entity id, start, end)."""
    def run(con, entity_type: str, entity_id: str | None, start: date | None, end: date | None):
        return fn(con, SessionScope(entity_type, entity_id), start, end)
    return run


READERS: dict[str, Callable] = {
    "station_points": station_points,
    "coverage": coverage,
    "latest_status": latest_status,
    "network_trend": network_trend,
    "stations": stations,
    "station_master": station_master,
    "station_equipment": station_equipment,
    "status_timeline": status_timeline,
    "station_sessions": station_sessions,
    "hour_of_week": hour_of_week,
    "nearby_pois": nearby_pois,
    "reliability_list": reliability_list,
    "reliability_daily": reliability_daily,
    "users": users,
    "garages": garages,
    "energy_daily": _session_kpi(energy_daily),
    "energy_total": _session_kpi(energy_total),
    "energy_daily_average": _session_kpi(energy_daily_average),
    "energy_last_7_days": _session_kpi(energy_last_7_days),
    "energy_peak_day": _session_kpi(energy_peak_day),
    "energy_peak_hour": _session_kpi(energy_peak_hour),
    "active_hours_average": _session_kpi(active_hours_average),
    "energy_entities": energy_entities,
    "energy_span": energy_span,
    "energy_series": energy_series,
    "energy_time_zone": energy_time_zone,
}


@st.cache_data(show_spinner=False, max_entries=512, ttl=24 * 3600)
def _query(snapshot_file: str, name: str, args: tuple) -> Any:
    reader = _reader(str(Path(snapshot_file).parent))
    with reader.connect() as con:
        return READERS[name](con, *args)


def query(s: Settings, name: str, *args) -> Any:
    """`READERS[name](con, *args)` on the current snapshot, cached per snapshot file. Raises snapshot.NoSnapshot
    without one, and the reader's own errors (KpiUnavailable, ...) as they are (not cached)."""
    current = current_snapshot(s)
    if current is None:
        raise snapshot.NoSnapshot(s.snapshot_dir)
    return _query(str(current), name, tuple(args))


# --- the live state: the live path's landing store ----------------------------------------------------------------
@dataclass(frozen=True)
class Live:
    """What the live path has landed, read in one go: `status` (`store.status_now` of the charging points), `polls`
    (`store.city_polls`), `sessions` (`store.open_sessions`) and `freshness` (data time and the live clock)."""

    path: str
    stamp: tuple
    status: pd.DataFrame
    polls: pd.DataFrame
    sessions: pd.DataFrame
    freshness: store.Freshness

    @property
    def now(self) -> datetime:
        """Now on the live clock (simulated or real)."""
        return self.freshness.now()

    @property
    def data_as_of(self) -> pd.Timestamp | None:
        as_of = self.freshness.data_as_of()
        return None if as_of is None else pd.Timestamp(as_of)

    def age_s(self) -> float | None:
        return self.freshness.age_s()

    def as_of(self) -> str:
        clock = self.freshness.clock
        return formatting.as_of(self.data_as_of, self.now, clock.simulated, clock.speed)

    def stations(self) -> pd.DataFrame:
        """station_id, city_slug, points: every station the live path reported or saw a charging event of."""
        points = self.status.groupby("station_id", as_index=False).agg(city_slug=("city_slug", "first"),
                                                                       points=("charging_point_id", "nunique"))
        extra = sorted(set(self.sessions["station_id"]) - set(points["station_id"]))
        more = pd.DataFrame({"station_id": extra, "city_slug": None, "points": 0})
        return pd.concat([points, more], ignore_index=True) if extra else points


def _stamp(path: Path) -> tuple | None:
    """Size and modification time of the store and its WAL: they change with every landed batch."""
    stamp = []
    for file in (path, path.with_name(path.name + "-wal")):
        try:
            stat = file.stat()
        except FileNotFoundError:
            if file == path:
                return None
            stamp.append(None)
            continue
        stamp.append((stat.st_mtime_ns, stat.st_size))
    return tuple(stamp)


@st.cache_data(show_spinner=False, max_entries=4, ttl=600)
def _live(path: str, stamp: tuple) -> Live:
    con = store.connect_reader(Path(path).parent)
    try:
        return Live(path, stamp, store.status_now(con), store.city_polls(con), store.open_sessions(con),
                    store.freshness(con))
    finally:
        con.close()


def live(s: Settings) -> Live | None:
    """The live state of the data root's landing store; None when the live path has landed nothing (no store, an
    empty one, or one being created)."""
    path = store.store_path(s.live_dir)
    stamp = _stamp(path)
    if stamp is None:
        return None
    try:
        state = _live(str(path), stamp)
    except (store.NoLiveData, sqlite3.Error):  # created this instant, or no schema yet: next refresh
        return None
    return None if state.freshness.data_as_of() is None else state


@st.cache_data(show_spinner=False, max_entries=64, ttl=600)
def _live_station(path: str, stamp: tuple, station_id: str, day: str) -> tuple[dict, pd.DataFrame]:
    con = store.connect_reader(Path(path).parent)
    try:
        energy = store.station_energy_today(con, day)
        row = energy[energy["station_id"] == station_id]
        return ({} if row.empty else row.iloc[0].to_dict()), store.station_transactions(con, station_id, day)
    finally:
        con.close()


def live_station_today(state: Live, station_id: str) -> tuple[str, dict, pd.DataFrame]:
    """(the UTC day on the live clock, `store.station_energy_today`'s row of the station for it ({} without
    transactions), `store.station_transactions` of it)."""
    day = state.now.astimezone(timezone.utc).date().isoformat()
    energy, transactions = _live_station(state.path, state.stamp, str(station_id), day)
    return day, energy, transactions


@dataclass(frozen=True)
class Now:
    """The status of every charging point now, for Network now and Station: from the live state when the live path
    has landed data, else from the marts snapshot's latest poll."""

    frame: pd.DataFrame  # `latest_status`'s columns
    live: Live | None  # None: from the snapshot
    as_of: str  # "as of 10:20 UTC (14 s ago) · simulated clock, 60x"
    source: str  # where the figures come from, in a sentence
    stale: bool = False  # the live data is older than settings.live_stale_after_s (on the live clock)


def _snapshot_points(s: Settings) -> pd.DataFrame | None:
    try:
        return query(s, "station_points")
    except snapshot.NoSnapshot:
        return None


def status_now(s: Settings, city: str | None = None, operator: str | None = None,
               coverage: dict | None = None) -> Now | None:
    """`Now` for the filters; None when there is neither live data nor a snapshot with status polls."""
    state = live(s)
    if state is not None:
        frame = live_status(_snapshot_points(s), state.status, state.polls, city, operator)
        age = state.age_s()
        cities = len(state.polls)
        return Now(frame, state, state.as_of(),
                   f"Live: the live path's landing store ({len(state.status):,} charging points reported, "
                   f"{cities} cit{'y' if cities == 1 else 'ies'} polled); refreshed every {REFRESH_S:g} s.",
                   stale=age is not None and age > s.live_stale_after_s)
    if not (coverage or {}).get("present", {}).get("status"):
        return None
    frame = query(s, "latest_status", city, operator, s.poll_interval_minutes)
    latest = coverage.get("latest_poll")
    current = current_snapshot(s)
    return Now(frame, None, formatting.as_of(latest, datetime.now(timezone.utc)),
               f"Batch: the marts snapshot `{current.name if current else '–'}` (no live data in "
               f"`{s.live_dir}`: `make live` starts the live path).")


# --- models: champions and the registry, loaded in the background ------------------------------------------------
class Models:
    """The champions of the availability models and the registry overview of one data root."""

    def __init__(self, s: Settings):
        self.settings = s
        self.root = s.mlflow_dir
        self._lock = threading.Lock()
        self._store = None
        self._checked = float("-inf")
        self._overview: tuple[tuple, list[dict]] | None = None
        self._db = None
        self._features = None
        self._online = None
        self._warm: threading.Thread | None = None

    def has_registry(self) -> bool:
        return self.settings.mlflow_store_uri is not None or (self.root / "mlflow.db").exists()

    def warm_up(self) -> None:
        """Load champions, overview and the station-time features in a daemon thread (once)."""
        with self._lock:
            if self._warm is not None or not self.has_registry():
                return
            self._warm = threading.Thread(target=self._warm_up, name="dashboard-models", daemon=True)
            self._warm.start()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the background loading (if started) has finished (benchmarks, tests)."""
        thread = self._warm
        if thread is not None:
            thread.join(timeout)

    def _warm_up(self) -> None:
        try:
            self.champions()
            self.overview()
            self.features()
        except Exception:  # noqa: BLE001 - the page that needs it shows the error
            pass

    def champions(self):
        """A `ChampionStore` (the service's) of the two availability models, refreshed at most every
        `model_reload_s` seconds; None without a registry."""
        if not self.has_registry():
            return None
        with self._lock:
            if self._store is None:
                from ev_assets.lib.ml.champions import ChampionStore

                self._store = ChampionStore(self.settings, names=tuple(AVAILABILITY_MODELS.values()))
            if time.monotonic() - self._checked >= max(self.settings.model_reload_s, 1.0):
                self._store.refresh()
                self._checked = time.monotonic()
            return self._store

    def features(self):
        """The service's station-time feature index (re-read when its file changes)."""
        with self._lock:
            if self._features is None:
                from ev_assets.lib.ml import serving

                self._features = serving.FeatureSets(self.settings)
        index, _ = self._features.station_time.get()
        return index

    def features_and_stamp(self):
        self.features()
        return self._features.station_time.get()

    def online(self):
        """The service's online availability rows (`serving.OnlineFeatures`) over this data root's live store."""
        with self._lock:
            if self._online is None:
                from ev_assets.lib.ml import serving

                self._online = serving.OnlineFeatures(self.settings.live_dir, _reader(str(self.settings.snapshot_dir)))
            return self._online

    def overview(self, names: tuple[str, ...] | None = None) -> list[dict] | None:
        """`dashboard.registry_overview` of every model the service serves, re-read when mlflow.db changes."""
        if not self.has_registry():
            return None
        from ev_assets.lib.ml.champions import MODEL_NAMES
        from ev_assets.lib.ml.registry_db import RegistryDB

        names = names or MODEL_NAMES
        with self._lock:
            if self._db is None:  # one (its connection pool, for a server store)
                self._db = RegistryDB(self.root, self.settings.mlflow_store_uri)
        db = self._db
        stamp = (db.stamp(), names)
        with self._lock:
            if self._overview is None or self._overview[0] != stamp:
                self._overview = (stamp, registry_overview(db, names))
            return self._overview[1]


@st.cache_resource(show_spinner=False)
def _models(data_dir: str, _settings: Settings) -> Models:  # (arguments with a leading _ are not hashed)
    return Models(_settings)


def models(s: Settings) -> Models:
    """The one `Models` of the data root in this process."""
    return _models(str(Path(s.data_dir).resolve()), s)


def forecast(s: Settings, station_id: str) -> dict[int, dict[str, Any]]:
    """Per horizon (10, 60): the probability that a charging point of the station is free at `target_at`, from the
    champion and the station's latest row of the station-time feature set, built as the service builds it
    (`serving.availability_features`); or `error` saying why there is none."""
    holder = models(s)
    if not holder.has_registry():
        return {h: {"error": "no model registry yet: run `make demo` to train the models"} for h in AVAILABILITY_MODELS}
    from ev_assets.lib.ml import serving

    out: dict[int, dict[str, Any]] = {}
    store = holder.champions()
    try:
        index = holder.features()
    except serving.ServingError as exc:
        return {h: {"error": exc.message} for h in AVAILABILITY_MODELS}
    online = _online_row(holder, str(station_id))
    for horizon, name in AVAILABILITY_MODELS.items():
        champion = store.get(name)
        if champion is None:
            status = store.status().get(name)
            why = status.error if status and status.error else "none registered"
            out[horizon] = {"error": f"no champion for {name} yet ({why}): run `make demo`"}
            continue
        try:
            if online is not None:  # the station's newest live poll, with the training features' function
                (_, x), features_at, source = online.features(champion.features), online.features_at, "live"
            else:
                features_at, _, x = serving.availability_features(index, str(station_id), None, champion.features)
                source = "feature set"
            p = min(max(champion.predict(x), 0.0), 1.0)
        except serving.ServingError as exc:
            out[horizon] = {"error": exc.message}
            continue
        out[horizon] = {"probability": p, "features_at": features_at, "features_from": source,
                        "target_at": features_at + pd.Timedelta(minutes=horizon), "model": name,
                        "version": champion.version}
    return out


def _online_row(holder: "Models", station_id: str):
    """The station's online feature row (as `/predict/availability` builds it) or None without live data for it."""
    from ev_assets.lib.live import store

    try:
        con = store.connect_reader(holder.settings.live_dir)
    except store.NoLiveData:
        return None
    try:
        index, stamp = holder.features_and_stamp()
        return holder.online().row(con, station_id, None, index, stamp)
    except (snapshot.NoSnapshot, LookupError):
        return None
    finally:
        con.close()


def warm_up(s: Settings) -> None:
    """Start loading the models in the background (the first visit of the Station or Models page then waits
    less or not at all)."""
    models(s).warm_up()
