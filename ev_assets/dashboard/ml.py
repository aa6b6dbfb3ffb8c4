"""The models the dashboard shows, loaded in the background: the champions of the availability models (for the
station forecast) and the registry overview (for the Models page).

They are read from the registry's SQLite file and the boosters' files directly (`ev_assets.lib.ml.registry_db`,
milliseconds; never through MLflow, whose import and store take seconds). `Models` keeps them, with the
station-time feature set, after the first page has been drawn (`warm_up`, a background thread); the champions are
looked up again every `settings.model_reload_s` seconds (as the service does), the overview whenever `mlflow.db`
changes.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from ev_assets.dashboard.data import reader
from ev_assets.lib import snapshot
from ev_assets.lib.dashboard.models import registry_overview
from ev_assets.lib.ml import catalog
from ev_assets.lib.settings import Settings

AVAILABILITY_MODELS = catalog.AVAILABILITY


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

                self._online = serving.OnlineFeatures(self.settings.live_dir, reader(str(self.settings.snapshot_dir)))
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
