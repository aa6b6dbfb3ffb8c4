"""The model store of the service and the dashboard: each registered model's `champion`, loaded from the data
root's MLflow registry and swapped for a new champion without a restart.

Each model is held as one immutable `Champion` (version, run id, LightGBM booster, feature names, metrics, ...);
a request takes the reference once and uses it to the end, so a swap in the middle of a request cannot mix two
versions. A background thread looks up the `champion` alias of every model every `settings.model_reload_s`
seconds and loads a version it does not hold yet; when loading fails it keeps the model it has and logs why
(`/health` shows the error). `POST /admin/reload` runs the same check at once.

Loading does not go through MLflow: the alias, the version's artifact folder and the run's metrics and tags are
read from the registry's SQLite file (`registry_db`, milliseconds, where importing MLflow and opening its store
take seconds), and the booster from its `model.lgb` with LightGBM itself. Prediction uses that booster on a numpy
row with one thread (tens of microseconds), not MLflow's pyfunc (whose signature check costs ~0.5 ms per call):
the serving code builds the features exactly as training did (`ev_assets.lib.ml.serving`), so the signature has
nothing left to enforce. The service and the dashboard share this store.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

import numpy as np

from ev_assets.lib.ml import registry_db
# the model names, re-exported for the service's modules
from ev_assets.lib.ml.catalog import (  # noqa: F401
    AVAILABILITY, ENERGY_TO_FULL, OCCUPIED_SHARE, PLUGGED_IN, SESSION_DURATION, SESSION_ENERGY, SESSIONS_PER_DAY,
)
from ev_assets.lib.ml.catalog import MODELS as MODEL_NAMES
from ev_assets.lib.ml.registry import GATE_TAG_PREFIX
from ev_assets.lib.ml.registry_db import DEFAULT_UI_URL, RegistryDB, VersionRow
from ev_assets.lib.settings import Settings

log = logging.getLogger(__name__)

CHAMPION = registry_db.CHAMPION


class NoChampion(LookupError):
    """A model has no champion loaded (none registered yet, or its loading failed)."""

    def __init__(self, name: str, detail: str | None = None):
        message = f"no champion for {name} yet: run `make demo` (or ml_job) to train and register one"
        super().__init__(f"{message} ({detail})" if detail else message)
        self.name = name


@dataclass(frozen=True)
class Champion:
    """One loaded version of a registered model; never changed after loading (a reload makes a new one)."""

    name: str
    version: str
    run_id: str
    booster: Any  # lightgbm.Booster
    features: tuple[str, ...]
    metrics: Mapping[str, float]
    params: Mapping[str, str]
    tags: Mapping[str, str]
    experiment_id: str
    trained_at: str | None  # the run's start, ISO UTC
    run_url: str
    version_url: str
    loaded_at: str
    interval: Any = None  # intervals.Interval (P10-P90) when the run logged one

    def predict_interval(self, x: np.ndarray) -> tuple[float, float] | None:
        """(P10, P90) for one feature row, or None when this version has no interval forecast."""
        return None if self.interval is None else self.interval.predict_row(self.features, x)
    # the category codes bundled with the version (`encodings.json`; None: logged before codes were bundled, the
    # serving code then rebuilds them from the feature set and the recorded split)
    encodings: Mapping[str, Mapping[str, int]] | None = None

    def predict(self, x: np.ndarray) -> float:
        """The model's output for one feature row (in `features` order)."""
        return float(self.booster.predict(np.asarray(x, dtype=float).reshape(1, -1), num_threads=1)[0])

    def describe(self) -> dict[str, Any]:
        """Name, version, metrics vs baselines, training time, MLflow links and lineage (for /metadata)."""
        model_metrics = {k[len("test_"):]: v for k, v in self.metrics.items() if k.startswith("test_")}
        baselines: dict[str, dict[str, float]] = {}
        for key, value in self.metrics.items():
            if key.startswith("baseline_") and "_test_" in key:
                baseline, _, metric = key[len("baseline_"):].rpartition("_test_")
                baselines.setdefault(baseline, {})[metric] = value
        primary = self.tags.get("primary_metric")
        return {
            "name": self.name,
            "version": self.version,
            "run_id": self.run_id,
            "trained_at": self.trained_at,
            "primary_metric": primary,
            "metrics": model_metrics,
            "baselines": baselines,
            "beats_baselines": _bool(self.tags.get("beats_baselines")),
            "verdict": self.tags.get("verdict"),
            "champion_gate": _gate(self.tags),
            "mlflow_run_url": self.run_url,
            "mlflow_version_url": self.version_url,
            "feature_set": self.tags.get("feature_set"),
            "lineage": {k[len("input."):]: v for k, v in sorted(self.tags.items()) if k.startswith("input.")},
            "features": list(self.features),
            "dagster_run_id": self.tags.get("dagster_run_id"),
        }


@dataclass
class ModelStatus:
    """What the store knows of one model: the champion it serves and the outcome of the last check."""

    champion: Champion | None = None
    registry_version: str | None = None  # the version the alias pointed at, at the last check
    error: str | None = None
    checked_at: str | None = None
    history: list[str] = field(default_factory=list)  # versions loaded, oldest first


class ChampionStore:
    """The champions of `names` from the registry of `settings.mlflow_dir`, reloaded in the background."""

    def __init__(self, settings: Settings, names: tuple[str, ...] = MODEL_NAMES, ui_url: str = DEFAULT_UI_URL):
        self.settings = settings
        self.names = tuple(names)
        self.root = settings.mlflow_dir
        self.db = RegistryDB(self.root, settings.mlflow_store_uri)
        self.ui_url = ui_url
        self._status: dict[str, ModelStatus] = {name: ModelStatus() for name in self.names}
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- reading --------------------------------------------------------------------------------------------------
    def get(self, name: str) -> Champion | None:
        status = self._status.get(name)
        return status.champion if status else None

    def require(self, name: str) -> Champion:
        """The champion of `name`, or NoChampion (the service answers 503)."""
        status = self._status.get(name)
        if status is None or status.champion is None:
            raise NoChampion(name, status.error if status else None)
        return status.champion

    def status(self) -> dict[str, ModelStatus]:
        return dict(self._status)

    def versions(self) -> dict[str, str | None]:
        return {name: (s.champion.version if s.champion else None) for name, s in self._status.items()}

    # --- loading --------------------------------------------------------------------------------------------------
    def refresh(self) -> dict[str, dict[str, Any]]:
        """Look up every model's champion alias now and load the versions not held yet. Returns, per model, the
        version served, whether it changed, and the error of this check (None when fine)."""
        with self._refresh_lock:
            return {name: self._refresh_one(name) for name in self.names}

    def _refresh_one(self, name: str) -> dict[str, Any]:
        status = self._status[name]
        before = status.champion.version if status.champion else None
        now = _now()
        error = None
        try:
            if not self.db.exists():  # (nothing is created here)
                error = f"no model registry at {self.db.where} yet"
                target = None
            else:
                target = self.db.champion(name)
                if target is None:
                    error = "no version holds the alias champion"
            status.registry_version = target.version if target else None
            if target is None:
                if status.champion is not None:
                    log.warning("%s: the champion alias is gone; version %s is no longer served", name, before)
                status.champion = None
            elif status.champion is None or status.champion.version != target.version:
                champion = self._load(target)
                status.champion = champion
                status.history.append(champion.version)
                log.info("%s: serving version %s (run %s)%s", name, champion.version, champion.run_id,
                         f", replacing version {before}" if before else "")
        except Exception as exc:  # noqa: BLE001 - keep the model we have; the error is shown in /health
            error = f"{type(exc).__name__}: {str(exc)[:500]}"
            log.error("%s: could not load the champion (%s); keeping version %s", name, error, before)
        status.error, status.checked_at = error, now
        after = status.champion.version if status.champion else None
        return {"version": after, "previous_version": before, "changed": after != before,
                "registry_version": status.registry_version, "error": error}

    def _load(self, version: VersionRow) -> Champion:
        """The version's booster from its file and its run's metrics and tags from the registry's tables."""
        booster = registry_db.load_booster(version)
        run = self.db.run(version.run_id)
        started = run.start_ms
        return Champion(
            name=version.name, version=version.version, run_id=version.run_id, booster=booster,
            features=tuple(booster.feature_name()), metrics=run.metrics, params=run.params, tags=run.tags,
            experiment_id=run.experiment_id,
            trained_at=datetime.fromtimestamp(started / 1000, timezone.utc).isoformat(timespec="seconds")
            if started else None,
            run_url=registry_db.run_url(self.ui_url, run.experiment_id, version.run_id),
            version_url=registry_db.version_url(self.ui_url, version.name, version.version),
            loaded_at=_now(), interval=_interval(run), encodings=_encodings(run),
        )

    # --- the background poller ------------------------------------------------------------------------------------
    def start(self) -> None:
        """Check now, then every `settings.model_reload_s` seconds in a daemon thread (<= 0: no polling)."""
        self.refresh()
        if self.settings.model_reload_s <= 0 or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="champion-reload", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(self.settings.model_reload_s):
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - never let the poller die
                log.exception("champion reload check failed")

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def _interval(run: registry_db.RunRow):
    """The P10-P90 interval forecast logged with the run (`lib/ml/intervals.py`), read from its artifact folder,
    or None (classifiers, and versions trained before intervals existed)."""
    from ev_assets.lib.ml import intervals

    files = ("interval.json", "interval_p10.txt", "interval_p90.txt")
    if run.artifact_dir is None or not all((run.artifact_dir / name).exists() for name in files):
        return None
    return intervals.Interval.from_files(run.artifact_dir)


def _encodings(run: registry_db.RunRow):
    """The category codes bundled with the run (`encodings.json`), or None (logged before codes were bundled)."""
    import json

    path = None if run.artifact_dir is None else run.artifact_dir / "encodings.json"
    return json.loads(path.read_text()) if path is not None and path.exists() else None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _bool(value: str | None) -> bool | None:
    return None if value is None else value.lower() == "true"


_NUMBERS = ("_candidate", "_rival_score", "_difference", "_ci_low", "_ci_high", "_confidence", "_margin")


def _gate(tags: dict[str, str]) -> dict:
    """The champion gate's decision from the version's tags (MLflow keeps text): scores as numbers, flags as
    booleans, empty values as null."""
    gate = {}
    for key, value in tags.items():
        if not key.startswith(GATE_TAG_PREFIX):
            continue
        name = key[len(GATE_TAG_PREFIX):]
        if value in ("", None):
            gate[name] = None
        elif name in ("challenger_score", "champion_score", "margin") or name.endswith(_NUMBERS):
            gate[name] = float(value)
        elif name == "beats_baselines":
            gate[name] = _bool(value)
        else:
            gate[name] = value
    return gate


def wait_for(store: ChampionStore, name: str, version: str, timeout: float = 30.0) -> bool:
    """Block until `store` serves `version` of `name` (tests, scripts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        champion = store.get(name)
        if champion is not None and champion.version == str(version):
            return True
        time.sleep(0.05)
    return False
