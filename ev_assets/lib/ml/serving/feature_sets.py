"""The feature sets on disk: each set's Parquet files, prepared once and re-read when a file changes
(`FeatureSetCache`), and the sets the service reads (`FeatureSets`)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Callable, Generic, Iterable, TypeVar

import pandas as pd

from ev_assets.lib.ml import catalog
from ev_assets.lib.ml.serving.base import MAKE_DEMO, NotReady
from ev_assets.lib.ml.serving.session_rows import SessionHistory, session_vocabularies
from ev_assets.lib.ml.serving.station_rows import StationDayIndex, StationTimeIndex
from ev_assets.lib.settings import Settings

STATION_TIME, STATION_DAY, SESSIONS = catalog.STATION_TIME, catalog.STATION_DAY, catalog.SESSIONS
T = TypeVar("T")


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
