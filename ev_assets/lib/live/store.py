"""The landing store of the live path: one SQLite file (`<data root>/live/landed.sqlite`, WAL journal).

`land(messages)` writes a batch in one transaction, and only then may the consumer acknowledge it:

- `messages`: every consumed message as it came (stream, sequence, id, subject, payload): the raw store of the
  live path. Its keys make landing idempotent: a stream sequence or a message id landed before is skipped, so a
  redelivery after a crash, a broker restart, a republished poll or a second consumer adds nothing.
- parsed rows: `status_changes`, `poll_marks`, `charging_events` (the batch parser's row); a message that cannot
  be parsed goes to `quarantine` with its stream sequence and reason, and the batch goes on.
- the live state, updated in the same transaction from the newly landed rows only:
  `status_now` (latest status per charging point and connector), `city_polls` (newest poll per city) and
  `transactions` (one row per charging transaction: started, energy so far, stopped, cost), from which
  `open_sessions` and `station_energy_today` are read.

Readers (`connect_reader`) open the file read-only. In WAL mode a reader sees the state of the last committed
batch, never half of one, and neither blocks the writer nor is blocked by it: the same promise as the marts
snapshot, without a copy per update. Times are stored as UTC ISO text (`messages.iso`), which sorts as time.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

import pandas as pd

from ev_assets.lib.live import messages as M
from ev_assets.lib.live.bus import EVENTS_STREAM, STATUS_STREAM, Message
from ev_assets.lib.live.clock import LiveClock

FILE_NAME = "landed.sqlite"
BUSY_TIMEOUT_S = 30.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    stream TEXT NOT NULL, seq INTEGER NOT NULL, msg_id TEXT, subject TEXT, landed_at TEXT NOT NULL, payload BLOB,
    PRIMARY KEY (stream, seq));
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_id ON messages (stream, msg_id);  -- NULL ids never collide
CREATE TABLE IF NOT EXISTS quarantine (
    stream TEXT NOT NULL, seq INTEGER NOT NULL, msg_id TEXT, reason TEXT NOT NULL, payload BLOB, landed_at TEXT,
    PRIMARY KEY (stream, seq));
CREATE TABLE IF NOT EXISTS status_changes (
    msg_id TEXT PRIMARY KEY, seq INTEGER, table_name TEXT, poll_slot TEXT, poll_time TEXT, city_slug TEXT,
    station_id TEXT, charging_point_id TEXT, connector_id TEXT, status TEXT, previous_status TEXT);
CREATE INDEX IF NOT EXISTS status_changes_by_item ON status_changes (table_name, charging_point_id, connector_id, poll_slot);
CREATE INDEX IF NOT EXISTS status_changes_by_station ON status_changes (station_id);
CREATE TABLE IF NOT EXISTS poll_marks (
    msg_id TEXT PRIMARY KEY, seq INTEGER, city_slug TEXT, poll_slot TEXT, poll_time TEXT, ok INTEGER,
    items INTEGER, changes INTEGER);
CREATE TABLE IF NOT EXISTS charging_events (
    event_id TEXT PRIMARY KEY, seq INTEGER, transaction_id TEXT, station_id TEXT, connector_id TEXT,
    event_type TEXT, event_time TEXT, meter_kwh REAL, power_kw REAL, cost REAL, currency TEXT);
CREATE TABLE IF NOT EXISTS status_now (
    table_name TEXT NOT NULL, charging_point_id TEXT NOT NULL, connector_id TEXT NOT NULL, city_slug TEXT,
    station_id TEXT, status TEXT, since_slot TEXT, since_time TEXT,
    PRIMARY KEY (table_name, charging_point_id, connector_id));
CREATE TABLE IF NOT EXISTS city_polls (
    city_slug TEXT PRIMARY KEY, poll_slot TEXT, poll_time TEXT, ok INTEGER, items INTEGER, changes INTEGER,
    landed_at TEXT);
CREATE TABLE IF NOT EXISTS transactions (
    transaction_id TEXT PRIMARY KEY, station_id TEXT, connector_id TEXT, started_at TEXT, last_event_at TEXT,
    meter_kwh REAL, power_kw REAL, stopped_at TEXT, cost REAL, currency TEXT, events INTEGER);
CREATE INDEX IF NOT EXISTS transactions_open ON transactions (stopped_at);
CREATE INDEX IF NOT EXISTS transactions_day ON transactions (last_event_at);
CREATE TABLE IF NOT EXISTS clock (id INTEGER PRIMARY KEY CHECK (id = 1), origin_wall REAL, origin_sim TEXT, speed REAL);
"""

_STATUS_NOW = """
INSERT INTO status_now VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (table_name, charging_point_id, connector_id) DO UPDATE SET
    city_slug = excluded.city_slug, station_id = excluded.station_id, status = excluded.status,
    since_slot = excluded.since_slot, since_time = excluded.since_time
WHERE excluded.since_slot >= status_now.since_slot
"""
_CITY_POLL = """
INSERT INTO city_polls VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (city_slug) DO UPDATE SET poll_slot = excluded.poll_slot, poll_time = excluded.poll_time,
    ok = excluded.ok, items = excluded.items, changes = excluded.changes, landed_at = excluded.landed_at
WHERE excluded.poll_slot >= city_polls.poll_slot
"""
# Events of one transaction may land in any order: each keeps what is newest (meter, power by event time) or
# what only its kind knows (start, stop, cost).
_TRANSACTION = """
INSERT INTO transactions VALUES (:transaction_id, :station_id, :connector_id, :started_at, :event_time, :meter_kwh,
    :power_kw, :stopped_at, :cost, :currency, 1)
ON CONFLICT (transaction_id) DO UPDATE SET
    started_at = coalesce(excluded.started_at, transactions.started_at),
    stopped_at = coalesce(excluded.stopped_at, transactions.stopped_at),
    cost = coalesce(excluded.cost, transactions.cost),
    currency = coalesce(excluded.currency, transactions.currency),
    meter_kwh = CASE WHEN excluded.last_event_at >= transactions.last_event_at OR transactions.meter_kwh IS NULL
                     THEN coalesce(excluded.meter_kwh, transactions.meter_kwh) ELSE transactions.meter_kwh END,
    power_kw = CASE WHEN excluded.last_event_at >= transactions.last_event_at
                    THEN coalesce(excluded.power_kw, transactions.power_kw) ELSE transactions.power_kw END,
    last_event_at = max(excluded.last_event_at, transactions.last_event_at),
    events = transactions.events + 1
"""


def store_path(live_dir: Path) -> Path:
    return Path(live_dir) / FILE_NAME


def connect_writer(live_dir: Path) -> sqlite3.Connection:
    path = store_path(live_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: a committed batch survives a process crash
    con.executescript(SCHEMA)
    return con


class NoLiveData(RuntimeError):
    """Nothing has been landed by the live path (yet)."""

    def __init__(self, live_dir: Path):
        super().__init__(f"no live data in {live_dir}: start the live path with `make live`")


def connect_reader(live_dir: Path) -> sqlite3.Connection:
    path = store_path(live_dir)
    if not path.exists():
        raise NoLiveData(Path(live_dir))
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=False)


@dataclass
class Landed:
    messages: int = 0  # newly landed
    duplicates: int = 0  # landed before (by stream sequence or message id): skipped
    quarantined: int = 0
    status_changes: int = 0
    poll_marks: int = 0
    events: int = 0
    last_seq: dict[str, int] = field(default_factory=dict)

    def add(self, other: "Landed") -> None:
        for name in ("messages", "duplicates", "quarantined", "status_changes", "poll_marks", "events"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for stream, seq in other.last_seq.items():
            self.last_seq[stream] = max(seq, self.last_seq.get(stream, 0))


def _now() -> str:
    return M.iso(datetime.now(timezone.utc))


def land(con: sqlite3.Connection, batch: Iterable[Message]) -> Landed:
    """Land a batch in one transaction (see the module docstring). Safe to call again with the same messages.

    What the store holds already (by stream sequence, by message id, and for events by event id) is looked up for
    the whole batch at once and skipped; the rest is written with one statement per table."""
    batch = list(batch)
    result = Landed()
    now = _now()
    con.execute("BEGIN IMMEDIATE")
    try:
        fresh = _unseen(con, batch, result)
        con.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)",
                        [(m.stream, m.seq, m.msg_id or None, m.subject, now, m.data) for m in fresh])
        changes, marks, events, quarantined = [], [], [], []
        for message in fresh:
            try:
                if message.stream == STATUS_STREAM:
                    kind, row = M.parse_status(message.data)
                    (changes if kind == "status_change" else marks).append((message, row))
                elif message.stream == EVENTS_STREAM:
                    events.append((message, M.parse_event(message.data)))
                else:
                    raise M.MessageError(f"message of unknown stream {message.stream!r}")
            except M.MessageError as exc:
                quarantined.append((message.stream, message.seq, message.msg_id, str(exc), message.data, now))
        events = _new_events(con, events)
        _write_changes(con, changes)
        _write_marks(con, marks, now)
        _write_events(con, events)
        con.executemany("INSERT OR IGNORE INTO quarantine VALUES (?, ?, ?, ?, ?, ?)", quarantined)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    result.messages = len(fresh)
    result.status_changes, result.poll_marks, result.events = len(changes), len(marks), len(events)
    result.quarantined = len(quarantined)
    return result


def _in(con: sqlite3.Connection, sql: str, first: tuple, values: list) -> set:
    """The values of `values` that `sql` (ending in `IN`) finds, asked in chunks."""
    found = set()
    for i in range(0, len(values), 500):
        chunk = values[i:i + 500]
        found.update(r[0] for r in con.execute(f"{sql} ({', '.join('?' * len(chunk))})", (*first, *chunk)))
    return found


def _unseen(con: sqlite3.Connection, batch: list[Message], result: Landed) -> list[Message]:
    """The messages of the batch that are not landed yet (nor earlier in the batch), in order."""
    seen_seq: dict[str, set] = {}
    seen_id: dict[str, set] = {}
    for stream in {m.stream for m in batch}:
        mine = [m for m in batch if m.stream == stream]
        seen_seq[stream] = _in(con, "SELECT seq FROM messages WHERE stream = ? AND seq IN", (stream,),
                               [m.seq for m in mine])
        seen_id[stream] = _in(con, "SELECT msg_id FROM messages WHERE stream = ? AND msg_id IN", (stream,),
                              [m.msg_id for m in mine if m.msg_id])
    fresh = []
    for message in batch:
        result.last_seq[message.stream] = max(message.seq, result.last_seq.get(message.stream, 0))
        if message.seq in seen_seq[message.stream] or (message.msg_id and message.msg_id in seen_id[message.stream]):
            result.duplicates += 1
            continue
        seen_seq[message.stream].add(message.seq)
        if message.msg_id:
            seen_id[message.stream].add(message.msg_id)
        fresh.append(message)
    return fresh


def _new_events(con: sqlite3.Connection, events: list[tuple[Message, dict]]) -> list[tuple[Message, dict]]:
    """Events whose event id is not landed yet (a message without a message id can repeat one)."""
    known = _in(con, "SELECT event_id FROM charging_events WHERE event_id IN", (), [row["event_id"] for _, row in events])
    out = []
    for message, row in events:
        if row["event_id"] not in known:
            known.add(row["event_id"])
            out.append((message, row))
    return out


def _write_changes(con: sqlite3.Connection, changes: list[tuple[Message, dict]]) -> None:
    con.executemany("INSERT OR IGNORE INTO status_changes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        (m.msg_id, m.seq, r["table_name"], r["poll_slot"], r["poll_time"], r["city_slug"], r["station_id"],
         r["charging_point_id"], r["connector_id"], r["status"], r["previous_status"]) for m, r in changes])
    con.executemany(_STATUS_NOW, [
        (r["table_name"], r["charging_point_id"], r["connector_id"], r["city_slug"], r["station_id"], r["status"],
         r["poll_slot"], r["poll_time"]) for _, r in changes])


def _write_marks(con: sqlite3.Connection, marks: list[tuple[Message, dict]], now: str) -> None:
    con.executemany("INSERT OR IGNORE INTO poll_marks VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [
        (m.msg_id, m.seq, r["city_slug"], r["poll_slot"], r["poll_time"], int(r["ok"]), r["items"], r["changes"])
        for m, r in marks])
    con.executemany(_CITY_POLL, [
        (r["city_slug"], r["poll_slot"], r["poll_time"], int(r["ok"]), r["items"], r["changes"], now) for _, r in marks])


def _write_events(con: sqlite3.Connection, events: list[tuple[Message, dict]]) -> None:
    con.executemany("INSERT INTO charging_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        (r["event_id"], m.seq, r["transaction_id"], r["station_id"], r["connector_id"], r["event_type"],
         r["event_time"], r["meter_kwh"], r["power_kw"], r["cost"], r["currency"]) for m, r in events])
    con.executemany(_TRANSACTION, [{
        **r,
        "started_at": r["event_time"] if r["event_type"] == "start" else None,
        "stopped_at": r["event_time"] if r["event_type"] == "complete" else None,
        "cost": r["cost"] if r["event_type"] == "complete" else None,
        "currency": r["currency"] if r["event_type"] == "complete" else None,
    } for _, r in events])


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


def save_clock(con: sqlite3.Connection, clock: LiveClock) -> None:
    con.execute("INSERT OR REPLACE INTO clock VALUES (1, ?, ?, ?)",
                (clock.origin_wall, M.iso(clock.origin_sim), clock.speed))


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
