"""A read-only snapshot of the marts that the service reads instead of the warehouse.

DuckDB allows one writer per file and, while it writes, no reader from another process: a service that opened
`warehouse.duckdb` would fail (or block the warehouse job) during every warehouse run. So the warehouse job ends
by publishing a copy of the `marts` schema to a file of its own, and the service reads only those copies:

    snapshot_dir/marts-<UTC timestamp>.duckdb   one complete copy per publish, never written again
    snapshot_dir/CURRENT                        the name of the newest complete copy (replaced atomically)

`publish` writes the copy under a temporary name, checkpoints and closes it, renames it into place and only then
points `CURRENT` at it, so a reader never sees a half-written snapshot. Readers that have an older copy open keep
reading it (on POSIX an open file outlives its deletion); new connections see the new one. The newest `KEEP`
copies stay on disk, older ones are deleted.
"""

from __future__ import annotations

import os
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb

SCHEMA = "marts"
CURRENT_FILE = "CURRENT"
KEEP = 3
# Relations outside `marts` that the KPI service reads, copied under their own schema and name. The hourly loads
# of the Norwegian users live only in staging (no mart holds them yet): once dbt has a mart of them, read that
# and drop this entry.
EXTRA_RELATIONS: tuple[str, ...] = ("staging.stg_sessions__hourly_loads",)

_STAMP = "%Y%m%dT%H%M%S%fZ"
_NAME = re.compile(r"^marts-\d{8}T\d{12}Z\.duckdb$")


class NoSnapshot(RuntimeError):
    """There is no published marts snapshot (yet) in the snapshot folder."""

    def __init__(self, snapshot_dir: Path, detail: str = "no marts snapshot has been published yet"):
        super().__init__(
            f"{detail} (in {snapshot_dir}): run `make demo`, or the warehouse job (warehouse_job), which "
            "publishes one when it ends"
        )
        self.snapshot_dir = Path(snapshot_dir)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _snapshot_files(snapshot_dir: Path) -> list[Path]:
    """The published snapshot files, oldest first (their names sort by time)."""
    if not snapshot_dir.is_dir():
        return []
    return sorted(p for p in snapshot_dir.iterdir() if _NAME.match(p.name))


def _new_name(snapshot_dir: Path) -> str:
    """`marts-<UTC timestamp, microseconds>.duckdb`, later than every existing snapshot (even if the clock
    stepped back), so the newest name is always the newest snapshot."""
    stamp = datetime.now(timezone.utc)
    existing = _snapshot_files(snapshot_dir)
    if existing:
        newest = datetime.strptime(existing[-1].name[len("marts-"):-len(".duckdb")], _STAMP)
        stamp = max(stamp, newest.replace(tzinfo=timezone.utc) + timedelta(microseconds=1))
    return f"marts-{stamp.strftime(_STAMP)}.duckdb"


def _write_current(snapshot_dir: Path, name: str) -> None:
    tmp = snapshot_dir / f".{CURRENT_FILE}.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(name + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, snapshot_dir / CURRENT_FILE)
    _fsync_dir(snapshot_dir)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(warehouse_path: Path, snapshot_dir: Path) -> Path:
    """Copy every table and view of the warehouse's `marts` schema into a new snapshot file and make it current.

    Views are copied as tables (the snapshot has nothing they could refer to). The relations of
    `EXTRA_RELATIONS` that the warehouse has are copied too. Returns the path of the new snapshot. The
    warehouse is opened read-only, so it must not be held by a writer (the warehouse job runs this as its last
    step, in the `duckdb` pool).
    """
    warehouse_path, snapshot_dir = Path(warehouse_path), Path(snapshot_dir)
    if not warehouse_path.exists():
        raise FileNotFoundError(f"no warehouse at {warehouse_path}: run the warehouse job first")
    snapshot_dir.mkdir(parents=True, exist_ok=True)
    name = _new_name(snapshot_dir)
    final = snapshot_dir / name
    tmp = snapshot_dir / f".{name}.tmp"
    tmp.unlink(missing_ok=True)

    con = duckdb.connect(str(tmp))
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"ATTACH {_literal(str(warehouse_path))} AS wh (READ_ONLY)")
        relations = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_catalog = 'wh' AND table_schema = ? ORDER BY table_name",
            [SCHEMA],
        ).fetchall()
        if not relations:
            raise ValueError(f"the warehouse {warehouse_path} has no relation in schema {SCHEMA!r}: run dbt first")
        extras = []
        for qualified in EXTRA_RELATIONS:
            schema, table = qualified.split(".", 1)
            found = con.execute(
                "SELECT count(*) FROM information_schema.tables "
                "WHERE table_catalog = 'wh' AND table_schema = ? AND table_name = ?",
                [schema, table],
            ).fetchone()[0]
            if found:
                extras.append((schema, table))
        for schema, table in [*relations, *extras]:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(schema)}")
            con.execute(
                f"CREATE TABLE {_quote(schema)}.{_quote(table)} AS "
                f"SELECT * FROM wh.{_quote(schema)}.{_quote(table)}"
            )
        con.execute("DETACH wh")
        con.execute("CHECKPOINT")
    except BaseException:
        con.close()
        tmp.unlink(missing_ok=True)
        raise
    con.close()
    with open(tmp, "rb") as handle:  # the data is on disk before any reader can be pointed at it
        os.fsync(handle.fileno())
    os.replace(tmp, final)
    _write_current(snapshot_dir, name)
    _prune(snapshot_dir, keep=KEEP, current=name)
    return final


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _prune(snapshot_dir: Path, keep: int, current: str) -> None:
    """Delete snapshots older than the newest `keep` (never the current one). Open readers keep their file."""
    files = _snapshot_files(snapshot_dir)
    for path in files[: max(len(files) - keep, 0)]:
        if path.name != current:
            path.unlink(missing_ok=True)
            path.with_name(path.name + ".wal").unlink(missing_ok=True)
    # copies left by a publish that crashed (an hour is far longer than any publish takes)
    for path in snapshot_dir.glob(".marts-*.duckdb.tmp*"):
        try:
            if time.time() - path.stat().st_mtime > 3600:
                path.unlink()
        except FileNotFoundError:
            pass


def current(snapshot_dir: Path) -> Path | None:
    """The current snapshot file, or None when none has been published (or the one named is gone)."""
    try:
        name = (Path(snapshot_dir) / CURRENT_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    if not _NAME.match(name):
        return None
    path = Path(snapshot_dir) / name
    return path if path.exists() else None


class Reader:
    """Read-only access to the current snapshot, for many threads of one process.

    `connect()` returns a new cursor (its own DuckDB connection, safe to use in one thread) on the current
    snapshot; close it when done (`with reader.connect() as con:`). When `CURRENT` names a new snapshot, the next
    `connect()` opens it; cursors already handed out keep reading the snapshot they were opened on.
    """

    def __init__(self, snapshot_dir: Path):
        self.snapshot_dir = Path(snapshot_dir)
        self._lock = threading.Lock()
        self._name: str | None = None
        self._con: duckdb.DuckDBPyConnection | None = None

    @property
    def name(self) -> str | None:
        """File name of the snapshot the last `connect()` used (None before the first)."""
        return self._name

    def _current_name(self) -> str:
        try:
            name = (self.snapshot_dir / CURRENT_FILE).read_text(encoding="utf-8").strip()
        except (FileNotFoundError, NotADirectoryError):
            raise NoSnapshot(self.snapshot_dir) from None
        if not _NAME.match(name):
            raise NoSnapshot(self.snapshot_dir, f"{CURRENT_FILE} names no snapshot file ({name!r})")
        return name

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A read-only cursor on the current snapshot, session time zone UTC. Raises NoSnapshot without one."""
        for attempt in range(3):  # a file named by CURRENT can be pruned by later publishes before it is opened
            name = self._current_name()
            with self._lock:
                if name == self._name and self._con is not None:
                    cursor = self._con.cursor()
                    break
                path = self.snapshot_dir / name
                if not path.exists():
                    if attempt < 2:
                        continue
                    raise NoSnapshot(self.snapshot_dir, f"the current snapshot {name} is missing")
                # The previous connection is not closed here: cursors of it may be mid-query in other threads.
                # It is closed when the last of them is dropped.
                self._con, self._name = duckdb.connect(str(path), read_only=True), name
                cursor = self._con.cursor()
                break
        cursor.execute("SET TimeZone = 'UTC'")
        return cursor

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
            self._con, self._name = None, None
