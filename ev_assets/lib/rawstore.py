"""Immutable store of raw pulls under `<data root>/raw/<source>/`.

Each pull is one gzip file named `<key>.<sha256[:12]><suffix>.gz` (suffix `.json` unless the pull is a CSV or JSON Lines
file kept as it came), where the hash is of the uncompressed bytes.
A key is written once: writing it again returns the file already there untouched, so re-running a partition
never changes what was pulled, and every later layer can be rebuilt from these files.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RawFile:
    path: Path
    sha256: str
    size_bytes: int
    written: bool  # False when the key existed already and the earlier pull was kept

    def load(self) -> Any:
        return read_raw(self.path)


def _encode(payload: Any) -> bytes:
    if isinstance(payload, bytes):
        return payload
    return json.dumps(payload, ensure_ascii=False, sort_keys=False).encode("utf-8")


def find_attempts(root: Path, source: str, key: str, suffix: str = ".json") -> list[RawFile]:
    """Every stored pull for `key`, oldest first: more than one when a failed pull was tried again."""
    folder = (root / source / key).parent
    stem = Path(key).name
    matches = list(folder.glob(f"{stem}.*{suffix}.gz")) if folder.is_dir() else []
    return [
        RawFile(path, _sha_from_name(path), path.stat().st_size, written=False)
        for path in sorted(matches, key=lambda p: (p.stat().st_mtime_ns, p.name))
    ]


def find_raw(root: Path, source: str, key: str, suffix: str = ".json") -> RawFile | None:
    """The first stored pull for `key`, or None."""
    attempts = find_attempts(root, source, key, suffix)
    if not attempts:
        return None
    path = attempts[0].path
    return RawFile(path, hashlib.sha256(read_raw_bytes(path)).hexdigest(), path.stat().st_size, written=False)


def write_raw(root: Path, source: str, key: str, payload: Any, suffix: str = ".json", new_attempt: bool = False) -> RawFile:
    """Store `payload` (JSON-serialisable, or bytes as they came) under `key` unless that key was stored before.

    `suffix` names the format of the bytes (".json", ".csv", ".jsonl"); ".gz" is added. With `new_attempt`, a
    payload that differs from what is stored is kept beside it (earlier attempts stay as evidence); the same
    payload again is never written twice.
    """
    data = _encode(payload)
    digest = hashlib.sha256(data).hexdigest()
    path = root / source / f"{key}.{digest[:12]}{suffix}.gz"
    existing = find_attempts(root, source, key, suffix)
    if existing and not new_attempt:
        return existing[0]
    if path.exists():
        return RawFile(path, digest, path.stat().st_size, written=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write to a temporary file and rename, so a crash never leaves a half-written pull behind.
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as gz:
            gz.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return RawFile(path, digest, path.stat().st_size, written=True)


def read_raw(path: Path) -> Any:
    return json.loads(read_raw_bytes(path))


def read_json_file(path: Path) -> Any:
    """A recorded JSON file as it lies in a replay folder: plain, or gzipped when its name ends in `.gz`."""
    data = Path(path).read_bytes()
    return json.loads(gzip.decompress(data) if str(path).endswith(".gz") else data)


def read_raw_bytes(path: Path) -> bytes:
    return gzip.decompress(Path(path).read_bytes())


# --- pulls keyed by a point in time (polls) -----------------------------------------------------------------
SLOT_FORMAT = "%Y%m%dT%H%MZ"


def slot_key(slot: datetime, prefix: str = "poll") -> str:
    """`YYYY/MM/DD/<prefix>_<YYYYmmddTHHMMZ>` for a UTC slot: one folder per day keeps listings short."""
    slot = slot.astimezone(timezone.utc)
    return f"{slot:%Y/%m/%d}/{prefix}_{slot.strftime(SLOT_FORMAT)}"


def stored_slots(root: Path, source: str, start: datetime, end: datetime, prefix: str = "poll") -> list[tuple[datetime, RawFile]]:
    """The stored pulls of `source` whose slot lies in [start, end), oldest first."""
    found = []
    day = datetime.combine(start.astimezone(timezone.utc).date(), datetime.min.time(), timezone.utc)
    while day < end:
        folder = root / source / f"{day:%Y/%m/%d}"
        for path in sorted(folder.glob(f"{prefix}_*.json.gz")) if folder.is_dir() else []:
            stamp = path.name[len(prefix) + 1 :].split(".", 1)[0]
            slot = datetime.strptime(stamp, SLOT_FORMAT).replace(tzinfo=timezone.utc)
            if start <= slot < end:
                found.append((slot, RawFile(path, _sha_from_name(path), path.stat().st_size, written=False)))
        day += timedelta(days=1)
    return found


def _sha_from_name(path: Path) -> str:
    """The hash prefix recorded in the file name (cheap: no decompression when listing many polls)."""
    return path.name.split(".")[-3]


def stored_pulls(root: Path, source: str) -> list[Path]:
    """Every file ever pulled for `source` (`raw/<source>/**`), in the order they were first stored, oldest first
    (a file is written once: pulling the same content again keeps its first time)."""
    folder = root / source
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.rglob("*.gz") if p.is_file()), key=lambda p: (p.stat().st_mtime_ns, p.name))


def write_pull(root: Path, source: str, payload: Any, prefix: str, suffix: str = ".json") -> RawFile:
    """Store a whole pull under a key made from its content: pulling identical data again adds no file."""
    data = _encode(payload)
    return write_raw(root, source, f"{prefix}_{hashlib.sha256(data).hexdigest()[:16]}", data, suffix)
