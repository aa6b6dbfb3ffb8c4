"""The prediction log: every answer of the service, one JSON line per prediction, append-only under the data root.

Layout: `settings.prediction_log_dir/<YYYY-MM-DD>.jsonl`, one file per UTC day (the day of the record's `at`).
A record:

    {"request_id": "<uuid4 hex>", "at": "<ISO-8601 UTC, ms>", "endpoint": "/predict/availability",
     "model": "<registered model name>", "version": "<registry version>", "inputs": {<feature>: value, ...},
     "request": {<the request body>}, "output": {<what was answered>}, "latency_ms": <float>}

plus, for availability predictions, `station_id` and `target_at` (the time the forecast is for) at the top level,
so the live-error job can find the outcome.

Durability. `append` serialises the record to one line and writes it with a single `os.write` on an `O_APPEND`
descriptor, under a process-wide lock, before the service answers: a `kill -9` of the service loses nothing it
answered (the bytes are in the kernel's page cache; `settings.predlog_fsync` also fsyncs each line, which survives
a power loss too, at the cost of a disk flush per prediction). On Linux a write to a regular file holds the file's
lock for the whole write, so lines written by several processes at once never interleave.

A crash in the middle of a write can leave a torn last line (no newline). `read` skips every line that is not a
complete JSON record and counts them in `df.attrs["skipped_lines"]`; `append`, when it first opens a file that
does not end with a newline, writes one first, so the next record starts on a line of its own.
"""

from __future__ import annotations

import json
import math
import os
import threading
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from ev_assets.lib.settings import Settings

SUFFIX = ".jsonl"
COLUMNS = ["request_id", "at", "endpoint", "model", "version", "inputs", "request", "output", "latency_ms",
           "station_id", "target_at"]
REQUIRED = ("request_id", "at", "endpoint", "model", "version", "inputs", "output")

_LOCK = threading.Lock()  # one writer at a time in this process (and guards _OPEN)
_OPEN: dict[Path, int] = {}  # path -> O_APPEND descriptor, kept open (opening costs more than the write)


def iso_utc(when: datetime | pd.Timestamp) -> str:
    """`2024-05-01T12:00:00.123Z`: UTC, milliseconds (a naive value is taken as UTC)."""
    if isinstance(when, pd.Timestamp):
        when = when.to_pydatetime(warn=False)
    elif not isinstance(when, datetime):
        when = pd.Timestamp(when).to_pydatetime(warn=False)
    when = when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def now_iso() -> str:
    return iso_utc(datetime.now(timezone.utc))


def path_for(log_dir: Path, day: date) -> Path:
    return Path(log_dir) / f"{day.isoformat()}{SUFFIX}"


def jsonable(value: Any) -> Any:
    """`value` with NaN / infinity as None and numpy / pandas scalars and timestamps as plain JSON values."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (pd.Timestamp, datetime)):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, (int, float)):  # numpy scalar
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return value
    if value is pd.NaT or value is pd.NA:
        return None
    return str(value)


def encode(record: dict) -> bytes:
    """One JSON line (UTF-8, newline-terminated); raises ValueError if the record lacks a required field."""
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        raise ValueError(f"a prediction record needs {', '.join(missing)}")
    try:  # the common case: plain values (the service gives None for a missing feature value)
        text = json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=jsonable)
    except ValueError:  # NaN or infinity somewhere: JSON has none, they are logged as null
        text = json.dumps(jsonable(record), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (text + "\n").encode()


def append(settings: Settings, record: dict) -> Path:
    """Append one record (see `append_all`); returns the file written."""
    return append_all(settings, [record])[0]


def append_all(settings: Settings, records: list[dict]) -> list[Path]:
    """Append records to the log of their UTC day (`record["at"]`, default now), returning the files written.

    The lines of one day go out in one `os.write` on an O_APPEND descriptor under a process-wide lock (the records
    of one answer are all logged or none is), fsynced when `settings.predlog_fsync`. Raises OSError when the log
    cannot be written (the caller must then not answer as if the prediction was logged), ValueError for a record
    that lacks a required field."""
    by_path: dict[Path, list[bytes]] = {}
    for record in records:
        if "at" not in record:
            record = {**record, "at": now_iso()}
        path = _path_of(settings.prediction_log_dir, record["at"])
        by_path.setdefault(path, []).append(encode(record))
    with _LOCK:
        for path, lines in by_path.items():
            fd = _descriptor(path)
            _write_all(fd, b"".join(lines))
            if settings.predlog_fsync:
                os.fsync(fd)
    return list(by_path)


_PATHS: dict[tuple[str, str], Path] = {}


def _path_of(log_dir: Path, at) -> Path:
    """The day file of a record's `at` (our own `...Z` stamps are read without parsing)."""
    if isinstance(at, str) and len(at) >= 20 and at.endswith("Z") and at[4] == "-" and at[10] == "T":
        day = at[:10]
    else:
        day = _utc(at).date().isoformat()
    key = (str(log_dir), day)
    path = _PATHS.get(key)
    if path is None:
        if len(_PATHS) > 1000:
            _PATHS.clear()
        path = _PATHS[key] = Path(log_dir) / f"{day}{SUFFIX}"
    return path


def _descriptor(path: Path) -> int:
    fd = _OPEN.get(path)
    if fd is not None:
        try:  # still the file at `path`? (it may have been moved away or deleted: then start a new one)
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(_OPEN.pop(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    # a torn line left by a crashed writer: end it, so that our first record starts on a line of its own
    size = os.fstat(fd).st_size
    if size and os.pread(fd, 1, size - 1) != b"\n":
        _write_all(fd, b"\n")
    # one descriptor per file: close the ones of other days (the log rolls over at midnight UTC)
    for old in [p for p in _OPEN if p.parent == path.parent]:
        os.close(_OPEN.pop(old))
    _OPEN[path] = fd
    return fd


def _write_all(fd: int, data: bytes) -> None:
    written = os.write(fd, data)
    while written < len(data):  # a short write (signal, disk nearly full): write the rest
        more = os.write(fd, data[written:])
        if more <= 0:
            raise OSError(f"could not write the prediction log ({written} of {len(data)} bytes)")
        written += more


def close_all() -> None:
    """Close the cached descriptors (tests, shutdown)."""
    with _LOCK:
        while _OPEN:
            os.close(_OPEN.popitem()[1])


def files(log_dir: Path, since: datetime | pd.Timestamp | None = None) -> list[Path]:
    """The day files of the log, oldest first (from the day of `since` when given)."""
    log_dir = Path(log_dir)
    if not log_dir.is_dir():
        return []
    found = []
    for path in sorted(log_dir.glob(f"*{SUFFIX}")):
        try:
            day = date.fromisoformat(path.name[: -len(SUFFIX)])
        except ValueError:
            continue  # not a day file
        found.append((day, path))
    if since is not None:
        first = _utc(since).date()
        found = [(d, p) for d, p in found if d >= first]
    return [p for _, p in found]


def read(log_dir: Path, since: datetime | pd.Timestamp | None = None) -> pd.DataFrame:
    """Every complete record (of `since` and later when given) as one row: `at` and `target_at` as UTC
    timestamps, `inputs` / `request` / `output` as dicts. Lines that are not a complete record (a torn last line
    after a crash) are skipped; `df.attrs["skipped_lines"]` says how many, `df.attrs["files"]` how many files."""
    records, skipped = [], 0
    paths = files(log_dir, since)
    for path in paths:
        with open(path, "rb") as handle:
            data = handle.read()
        for raw in data.split(b"\n"):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except ValueError:
                skipped += 1
                continue
            if not isinstance(record, dict) or any(k not in record for k in REQUIRED):
                skipped += 1
                continue
            records.append(record)
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=COLUMNS)
    for column in COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    frame["at"] = pd.to_datetime(frame["at"], utc=True, errors="coerce", format="ISO8601")
    frame["target_at"] = pd.to_datetime(frame["target_at"], utc=True, errors="coerce", format="ISO8601")
    if since is not None and len(frame):
        frame = frame[frame["at"] >= _utc(since)].reset_index(drop=True)
    frame = frame[[*COLUMNS, *[c for c in frame.columns if c not in COLUMNS]]]
    frame.attrs["skipped_lines"] = skipped
    frame.attrs["files"] = len(paths)
    return frame


def _utc(when) -> pd.Timestamp:
    stamp = pd.Timestamp(when)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
