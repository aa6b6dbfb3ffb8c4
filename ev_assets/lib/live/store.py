"""The landing store of the live path: one SQLite file (`<data root>/live/landed.sqlite`, WAL journal), written by
`landing` (one transaction per batch of messages) and read here.

Readers (`connect_reader`) open the file read-only. In WAL mode a reader sees the state of the last committed
batch, never half of one, and neither blocks the writer nor is blocked by it: the same promise as the marts
snapshot, without a copy per update. They read the live state (`status_now`, `city_polls`, the `transactions`
behind `open_sessions`, `station_energy_today` and `station_transactions`), the status history rebuilt from the
landed changes, how fresh it all is (`freshness`) and the clock the live feed runs on (`load_clock`).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from ev_assets.lib.live.bus import EVENTS_STREAM, STATUS_STREAM
from ev_assets.lib.live.clock import LiveClock

FILE_NAME = "landed.sqlite"
BUSY_TIMEOUT_S = 30.0


def store_path(live_dir: Path) -> Path:
    """The landing store's file under the live folder (`settings.live_dir`)."""
    return Path(live_dir) / FILE_NAME


class NoLiveData(RuntimeError):
    """Nothing has been landed by the live path (yet)."""

    def __init__(self, live_dir: Path):
        super().__init__(f"no live data in {live_dir}: start the live path with `make live`")


def connect_reader(live_dir: Path) -> sqlite3.Connection:
    path = store_path(live_dir)
    if not path.exists():
        raise NoLiveData(Path(live_dir))
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=False)


# --- reading ---------------------------------------------------------------------------------------------------------
def _frame(con: sqlite3.Connection, sql: str, params: tuple = ()) -> pd.DataFrame:
    cursor = con.execute(sql, params)
    return pd.DataFrame(cursor.fetchall(), columns=[d[0] for d in cursor.description])


def status_now(con: sqlite3.Connection, table: str = "status_chargingpoints") -> pd.DataFrame:
    """The latest status of every charging point (or connector), with the slot and poll time it changed at."""
    return _frame(con, "SELECT city_slug, station_id, charging_point_id, connector_id, status, since_slot, since_time "
                       "FROM status_now WHERE table_name = ? ORDER BY city_slug, station_id, charging_point_id, "
                       "connector_id", (table,))


def status_history(con: sqlite3.Connection, since_slot: str, station_id: str | None = None) -> pd.DataFrame:
    """The status of every charging point at each landed poll of its city from `since_slot` on, rebuilt from the
    changes (each item keeps its last change): the rows of `raw.status_chargingpoints` for those polls, limited to
    one station when given. Items first reported after a poll are not in it."""
    station_filter = "AND station_id = :station" if station_id else ""
    return _frame(con, f"""
        WITH items AS (
            SELECT DISTINCT city_slug, station_id, charging_point_id FROM status_changes
            WHERE table_name = 'status_chargingpoints' {station_filter}),
        polls AS (SELECT city_slug, poll_slot, poll_time FROM poll_marks WHERE poll_slot >= :since AND ok)
        SELECT p.poll_slot, p.poll_time, i.city_slug, i.station_id, i.charging_point_id,
            (SELECT c.status FROM status_changes c
             WHERE c.table_name = 'status_chargingpoints' AND c.charging_point_id = i.charging_point_id
               AND c.connector_id = '' AND c.poll_slot <= p.poll_slot
             ORDER BY c.poll_slot DESC LIMIT 1) AS status
        FROM polls p JOIN items i ON i.city_slug = p.city_slug
        ORDER BY p.poll_slot, i.station_id, i.charging_point_id""", {"since": since_slot, "station": station_id}
    ).dropna(subset=["status"]).reset_index(drop=True)


def city_polls(con: sqlite3.Connection) -> pd.DataFrame:
    return _frame(con, "SELECT * FROM city_polls ORDER BY city_slug")


def open_sessions(con: sqlite3.Connection) -> pd.DataFrame:
    """Transactions started and not stopped, with the energy so far (the latest meter value)."""
    return _frame(con, "SELECT transaction_id, station_id, connector_id, started_at, last_event_at, meter_kwh, "
                       "power_kw, events FROM transactions WHERE stopped_at IS NULL AND started_at IS NOT NULL "
                       "ORDER BY started_at")


def station_energy_today(con: sqlite3.Connection, day: str | None = None) -> pd.DataFrame:
    """Energy and revenue per station on a UTC day (default: the day of the newest event): each transaction counts
    on the day of its latest event, with its energy so far; revenue is the cost of the stopped ones."""
    if day is None:
        newest = con.execute("SELECT max(last_event_at) FROM transactions").fetchone()[0]
        if newest is None:
            return pd.DataFrame(columns=["day", "station_id", "sessions", "open_sessions", "energy_kwh", "revenue"])
        day = newest[:10]
    return _frame(con, """
        SELECT substr(last_event_at, 1, 10) AS day, station_id, count(*) AS sessions,
               sum(stopped_at IS NULL) AS open_sessions, round(sum(coalesce(meter_kwh, 0)), 6) AS energy_kwh,
               round(sum(coalesce(cost, 0)), 6) AS revenue
        FROM transactions WHERE last_event_at >= ? AND last_event_at < ? || 'T99'
        GROUP BY 1, 2 ORDER BY 2""", (day, day))


def station_transactions(con: sqlite3.Connection, station_id: str, day: str | None = None) -> pd.DataFrame:
    """The transactions of one station whose latest event is on a UTC day (default: the day of the station's newest
    event), open and stopped, newest first: what `station_energy_today` sums for that station, with the currency
    of the cost (for the dashboard's station page)."""
    columns = ["transaction_id", "connector_id", "started_at", "last_event_at", "stopped_at", "meter_kwh", "power_kw",
               "cost", "currency", "events"]
    if day is None:
        newest = con.execute("SELECT max(last_event_at) FROM transactions WHERE station_id = ?",
                             (station_id,)).fetchone()[0]
        if newest is None:
            return pd.DataFrame(columns=columns)
        day = newest[:10]
    return _frame(con, f"""
        SELECT {', '.join(columns)} FROM transactions
        WHERE station_id = ? AND last_event_at >= ? AND last_event_at < ? || 'T99'
        ORDER BY coalesce(started_at, last_event_at) DESC, transaction_id""", (station_id, day, day))


@dataclass
class Freshness:
    """How old the live data is: the newest poll time of any city and the newest event time, both as UTC text, and
    the highest landed stream sequence per stream."""

    newest_poll_time: str | None
    newest_poll_slot: str | None
    newest_event_time: str | None
    last_seq: dict[str, int]
    landed_at: str | None

    def data_as_of(self) -> str | None:
        times = [t for t in (self.newest_poll_time, self.newest_event_time) if t]
        return max(times) if times else None

    clock: LiveClock = field(default_factory=LiveClock.real)

    def now(self) -> datetime:
        return self.clock.now()

    def age_s(self, now: datetime | None = None) -> float | None:
        """Seconds between the newest data and now, on the live path's clock."""
        as_of = self.data_as_of()
        if as_of is None:
            return None
        return ((now or self.now()) - parse_iso(as_of)).total_seconds()

    def poll_age_s(self, now: datetime | None = None) -> float | None:
        if self.newest_poll_time is None:
            return None
        return ((now or self.now()) - parse_iso(self.newest_poll_time)).total_seconds()


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def freshness(con: sqlite3.Connection) -> Freshness:
    poll_time, poll_slot = con.execute("SELECT max(poll_time), max(poll_slot) FROM city_polls").fetchone()
    event_time = con.execute("SELECT max(last_event_at) FROM transactions").fetchone()[0]
    # each a look-up in an index, not a scan: the messages grow for as long as the live path runs
    seqs = {stream: seq for stream in (STATUS_STREAM, EVENTS_STREAM)
            if (seq := con.execute("SELECT max(seq) FROM messages WHERE stream = ?", (stream,)).fetchone()[0])}
    landed = con.execute("SELECT landed_at FROM messages WHERE rowid = (SELECT max(rowid) FROM messages)").fetchone()
    landed = landed[0] if landed else None
    return Freshness(poll_time, poll_slot, event_time, seqs, landed, load_clock(con))


def load_clock(con: sqlite3.Connection) -> LiveClock:
    """The clock the live feed runs on (stored by the runner), or real time."""
    try:
        row = con.execute("SELECT origin_wall, origin_sim, speed FROM clock WHERE id = 1").fetchone()
    except sqlite3.OperationalError:
        row = None
    return LiveClock(row[0], parse_iso(row[1]), row[2]) if row else LiveClock.real()


def platform_now(live_dir: Path) -> datetime:
    """Now on the platform's clock: the simulated clock that `make live` or `make soak` stored in the landing
    store, else real time. What measures a cool-down or an age in simulated time reads it here."""
    try:
        con = connect_reader(live_dir)
    except NoLiveData:
        return datetime.now(timezone.utc)
    try:
        return load_clock(con).now()
    finally:
        con.close()


def counts(con: sqlite3.Connection) -> dict[str, int]:
    names = ("messages", "quarantine", "status_changes", "poll_marks", "charging_events", "status_now", "transactions")
    return {name: con.execute(f"SELECT count(*) FROM {name}").fetchone()[0] for name in names}


def wait_until(predicate, timeout_s: float, every_s: float = 0.05) -> bool:
    """Poll `predicate()` until it is true or the time is up (for tests and benchmarks)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every_s)
    return bool(predicate())
