"""Immutable store of raw pulls under one URL (`EV_RAW_URL`, default `<data root>/raw`), a folder per source.

Each pull is one gzip file named `<key>.<sha256[:12]><suffix>.gz` (suffix `.json` unless the pull is a CSV or JSON Lines
file kept as it came), where the hash is of the uncompressed bytes.
A key is written once: writing it again returns the file already there untouched, so re-running a partition
never changes what was pulled, and every later layer can be rebuilt from these files.

The store is a local folder by default and any fsspec URL otherwise (`s3://bucket/raw` through s3fs, as the lake):
a local file is written to a temporary file and renamed, an object in one PUT, so a crash never leaves half a
pull. A stored file's `path` is a `Path` in a local store and its URL (`s3://...`) in any other.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import fsspec

from ev_assets.lib import lake as lakes


@dataclass(frozen=True)
class RawFile:
    path: Path | str  # a Path in a local store, the object's URL in any other
    sha256: str
    size_bytes: int
    written: bool  # False when the key existed already and the earlier pull was kept
    modified: float = 0.0  # when it was stored (POSIX seconds): the order of attempts and pulls
    store: "RawStore | None" = field(default=None, compare=False, repr=False)

    @property
    def name(self) -> str:
        return str(self.path).rsplit("/", 1)[-1]

    def read_bytes(self) -> bytes:
        return (self.store or RawStore(Path(self.path).parent)).read_bytes(self.path)  # no store: a local file

    def load(self) -> Any:
        return json.loads(self.read_bytes())


def from_settings(settings) -> "RawStore":
    """The raw store a `Settings` names (EV_RAW_URL, EV_S3_ENDPOINT_URL)."""
    url = settings.raw_location
    return RawStore(url, **lakes.storage_options(url, settings.s3_endpoint_url))


def _encode(payload: Any) -> bytes:
    if isinstance(payload, bytes):
        return payload
    return json.dumps(payload, ensure_ascii=False, sort_keys=False).encode("utf-8")


class RawStore:
    """The raw pulls under `url` (a local path, file://, s3://, or any fsspec URL)."""

    def __init__(self, url: str | Path, **options):
        self.url = str(url).rstrip("/")
        self.fs, root = fsspec.core.url_to_fs(self.url, **options)
        self.root = root.rstrip("/")
        self.local = "file" in lakes.protocols(self.fs)
        self._protocol = lakes.protocols(self.fs)[0]

    def __repr__(self) -> str:
        return f"RawStore({self.url!r})"

    def _location(self, path: str) -> Path | str:
        return Path(path) if self.local else f"{self._protocol}://{path}"

    def _fs_path(self, location: Path | str) -> str:
        text, prefix = str(location), f"{self._protocol}://"
        return text[len(prefix):] if text.startswith(prefix) else text

    def _file(self, info: dict, written: bool = False, sha256: str | None = None) -> RawFile:
        path = info["name"]
        return RawFile(self._location(path), sha256 or _sha_from_name(path), int(info.get("size") or 0), written,
                       _modified(info), self)

    def _files(self, pattern: str) -> list[RawFile]:
        """The stored files matching a glob below the root, oldest first (ties by name)."""
        found = self.fs.glob(f"{self.root}/{pattern}", detail=True)
        files = [self._file(info) for info in found.values() if info.get("type", "file") == "file"]
        return sorted(files, key=lambda f: (f.modified, f.name))

    # --- reading ------------------------------------------------------------------------------------------------
    def read_bytes(self, location: Path | str) -> bytes:
        """The uncompressed bytes of a stored file (its path or URL)."""
        with self.fs.open(self._fs_path(location), "rb") as fh:
            return gzip.decompress(fh.read())

    def read(self, location: Path | str) -> Any:
        return json.loads(self.read_bytes(location))

    def attempts(self, source: str, key: str, suffix: str = ".json") -> list[RawFile]:
        """Every stored pull for `key`, oldest first: more than one when a failed pull was tried again."""
        return self._files(f"{source}/{key}.*{suffix}.gz")

    def slots(self, source: str, start: datetime, end: datetime, prefix: str = "poll") -> list[tuple[datetime, RawFile]]:
        """The stored pulls of `source` whose slot lies in [start, end), oldest first."""
        found = []
        day = datetime.combine(start.astimezone(timezone.utc).date(), datetime.min.time(), timezone.utc)
        while day < end:
            for raw in sorted(self._files(f"{source}/{day:%Y/%m/%d}/{prefix}_*.json.gz"), key=lambda f: f.name):
                stamp = raw.name[len(prefix) + 1 :].split(".", 1)[0]
                slot = datetime.strptime(stamp, SLOT_FORMAT).replace(tzinfo=timezone.utc)
                if start <= slot < end:
                    found.append((slot, raw))
            day += timedelta(days=1)
        return found

    def pulls(self, source: str) -> list[RawFile]:
        """Every file ever pulled for `source` (`<source>/**`), in the order they were first stored, oldest first
        (a file is written once: pulling the same content again keeps its first time)."""
        return self._files(f"{source}/**/*.gz")

    # --- writing ------------------------------------------------------------------------------------------------
    def write(self, source: str, key: str, payload: Any, suffix: str = ".json", new_attempt: bool = False) -> RawFile:
        """Store `payload` (JSON-serialisable, or bytes as they came) under `key` unless that key was stored before.

        `suffix` names the format of the bytes (".json", ".csv", ".jsonl"); ".gz" is added. With `new_attempt`, a
        payload that differs from what is stored is kept beside it (earlier attempts stay as evidence); the same
        payload again is never written twice.
        """
        data = _encode(payload)
        digest = hashlib.sha256(data).hexdigest()
        path = f"{self.root}/{source}/{key}.{digest[:12]}{suffix}.gz"
        existing = self.attempts(source, key, suffix)
        if existing and not new_attempt:
            return existing[0]
        if self.fs.exists(path):
            return self._file(self.fs.info(path), sha256=digest)
        packed = gzip.compress(data, mtime=0)
        if self.local:  # a temporary file renamed into place: a crash never leaves a half-written pull behind
            folder = os.path.dirname(path)
            os.makedirs(folder, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(packed)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        else:  # one PUT: the object is there whole or not at all
            self.fs.pipe_file(path, packed)
        return self._file(self.fs.info(path), written=True, sha256=digest)

    def write_pull(self, source: str, payload: Any, prefix: str, suffix: str = ".json") -> RawFile:
        """Store a whole pull under a key made from its content: pulling identical data again adds no file."""
        data = _encode(payload)
        return self.write(source, f"{prefix}_{hashlib.sha256(data).hexdigest()[:16]}", data, suffix)


def _modified(info: dict) -> float:
    stamp = info.get("mtime", info.get("LastModified", info.get("last_modified", 0.0)))
    return stamp.timestamp() if isinstance(stamp, datetime) else float(stamp or 0.0)


def _sha_from_name(path: str) -> str:
    """The hash prefix recorded in the file name (cheap: no decompression when listing many polls)."""
    return str(path).rsplit("/", 1)[-1].split(".")[-3]


def _store(root: "RawStore | Path | str") -> RawStore:
    return root if isinstance(root, RawStore) else RawStore(root)


# --- the store as functions of its root (a RawStore, or a local folder) -------------------------------------------
def write_raw(root, source: str, key: str, payload: Any, suffix: str = ".json", new_attempt: bool = False) -> RawFile:
    return _store(root).write(source, key, payload, suffix, new_attempt)


def write_pull(root, source: str, payload: Any, prefix: str, suffix: str = ".json") -> RawFile:
    return _store(root).write_pull(source, payload, prefix, suffix)


def find_attempts(root, source: str, key: str, suffix: str = ".json") -> list[RawFile]:
    return _store(root).attempts(source, key, suffix)


def stored_slots(root, source: str, start: datetime, end: datetime, prefix: str = "poll") -> list[tuple[datetime, RawFile]]:
    return _store(root).slots(source, start, end, prefix)


def stored_pulls(root, source: str) -> list[RawFile]:
    return _store(root).pulls(source)


def read_json_file(path: Path) -> Any:
    """A recorded JSON file as it lies in a replay folder: plain, or gzipped when its name ends in `.gz`."""
    data = Path(path).read_bytes()
    return json.loads(gzip.decompress(data) if str(path).endswith(".gz") else data)


# --- pulls keyed by a point in time (polls) -----------------------------------------------------------------
SLOT_FORMAT = "%Y%m%dT%H%MZ"


def slot_key(slot: datetime, prefix: str = "poll") -> str:
    """`YYYY/MM/DD/<prefix>_<YYYYmmddTHHMMZ>` for a UTC slot: one folder per day keeps listings short."""
    slot = slot.astimezone(timezone.utc)
    return f"{slot:%Y/%m/%d}/{prefix}_{slot.strftime(SLOT_FORMAT)}"
