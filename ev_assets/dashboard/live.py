"""The live state the dashboard shows, cached: what the live path has landed, and the status of every charging
point now (live, else from the marts snapshot).

`live(settings)` reads the live path's landing store (`store.connect_reader`, read-only: a reader sees the last
committed batch and never blocks the consumer) under `st.cache_data` keyed by the store file's and its WAL's size
and modification time, so it is read again only after a batch has landed. The pages that show "now" redraw their
live part every `REFRESH_S` seconds (`st.fragment(run_every=...)`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import streamlit as st

from ev_assets.dashboard.data import current_snapshot, query, settings
from ev_assets.lib import snapshot
from ev_assets.lib.dashboard import formatting
from ev_assets.lib.dashboard.network import live_status
from ev_assets.lib.live import store
from ev_assets.lib.settings import Settings

# how often Network now and Station redraw their live part while open (seconds; EV_DASHBOARD_REFRESH_S)
REFRESH_S = settings().dashboard_refresh_s


# --- what the live path has landed -------------------------------------------------------------------------------
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


# --- the status now: live, else from the marts snapshot ----------------------------------------------------------
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
