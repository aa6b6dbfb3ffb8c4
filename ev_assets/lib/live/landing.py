"""Writing the live path's landing store (`store.store_path`): `land(con, messages)` writes a batch in one
transaction, and only then may the consumer acknowledge it:

- `messages`: every consumed message as it came (stream, sequence, id, subject, payload): the raw store of the
  live path. Its keys make landing idempotent: a stream sequence or a message id landed before is skipped, so a
  redelivery after a crash, a broker restart, a republished poll or a second consumer adds nothing.
- parsed rows: `status_changes`, `poll_marks`, `charging_events` (the batch parser's row); a message that cannot
  be parsed goes to `quarantine` with its stream sequence and reason, and the batch goes on.
- the live state, updated in the same transaction from the newly landed rows only:
  `status_now` (latest status per charging point and connector), `city_polls` (newest poll per city) and
  `transactions` (one row per charging transaction: started, energy so far, stopped, cost), which `store` reads.

`connect_writer` opens (and creates) the file in WAL mode; `save_clock` stores the clock the live feed runs on.
Times are stored as UTC ISO text (`messages.iso`), which sorts as time.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from ev_assets.lib.live import messages as M
from ev_assets.lib.live.bus import EVENTS_STREAM, STATUS_STREAM, Message
from ev_assets.lib.live.clock import LiveClock
from ev_assets.lib.live.store import BUSY_TIMEOUT_S, store_path

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

def connect_writer(live_dir: Path) -> sqlite3.Connection:
    path = store_path(live_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: a committed batch survives a process crash
    con.executescript(SCHEMA)
    return con


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


def save_clock(con: sqlite3.Connection, clock: LiveClock) -> None:
    """Store the clock the live feed runs on (the runner's; `store.load_clock` reads it)."""
    con.execute("INSERT OR REPLACE INTO clock VALUES (1, ?, ?, ?)",
                (clock.origin_wall, M.iso(clock.origin_sim), clock.speed))
