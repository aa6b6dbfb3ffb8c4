"""chargecloud replay: recorded polls (`*.json`, `*.json.gz`) read from `settings.replay_folder("chargecloud")`,
placed on the poll slots by their poll time, and merged into one poll envelope per slot."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ev_assets.lib import replayfiles, tables
from ev_assets.lib.rawstore import read_json_file
from ev_assets.lib.settings import SOURCES, Settings
from ev_assets.lib.sources.chargecloud.contracts import FAILED_KEY
from ev_assets.lib.sources.chargecloud.slots import SOURCE, SOURCE_TZ, floor_slot, implausible_poll_time, poll_time

Log = Callable[[str], None] | None


class RecordingError(ValueError):
    """A replay file is not valid JSON or not a chargecloud poll."""


# (path, mtime_ns, size) -> poll time of the file (None: could not be placed). Files are parsed once per
# version, so re-indexing a growing folder of recordings only reads the new files.
_POLL_TIME_MEMO: dict[tuple[str, int, int], datetime | None] = {}
# A time at the start of a file name as the real scraper wrote it: 20220111_215824_... or 20220111_2158__koeln
_NAME_TIME = re.compile(r"^(\d{8})_(\d{4})(\d{2})?(?!\d)")


def replay_files(folder: Path) -> list[Path]:
    """Every recording under `folder` (recursively), in name order.

    When the folder is the replay root shared with other sources, their sub-folders are not chargecloud polls
    and are skipped.
    """
    others = set(SOURCES) - {SOURCE}
    found = []
    for path in folder.rglob("*"):
        if not path.is_file() or not (path.name.endswith(".json") or path.name.endswith(".json.gz")):
            continue
        if path.relative_to(folder).parts[0] in others:
            continue
        found.append(path)
    return sorted(found)


def _claims(rel: str) -> str | None:
    """What chargecloud reads of a shared replay root: its sub-folder, and JSON recordings anywhere (a format Open
    Charge Map reads too)."""
    if replayfiles.in_folder(rel, SOURCE):
        return replayfiles.MINE
    return replayfiles.FORMAT if rel.lower().endswith(replayfiles.JSON_RECORDINGS) else None


def _recognise(path: Path) -> bool:
    """A chargecloud recording: a poll in either shape, or, if it cannot be read, a file named with its poll time
    as the scraper names them (this source reads it into that slot and reports it there)."""
    try:
        read_recording(path)
    except RecordingError:
        return _name_time(path) is not None
    return True


replayfiles.register(SOURCE, _claims, _recognise)


def replay_index(settings: Settings) -> dict[datetime, list[Path]]:
    """Slot start (UTC) -> the recordings whose poll time falls in that slot, earliest poll first.

    A file's poll time is the earliest response `timestamp` in it; a file without one (e.g. not valid JSON)
    falls back to the time at the start of its name (`20220111_2158__koeln.json`, German local time like the
    real recordings), so a broken file still shows up as failed in its slot. Files with neither are listed by
    `replay_unplaced`.
    """
    index, _ = _scan_replay(settings)
    return index


def replay_unplaced(settings: Settings) -> dict[Path, str]:
    """Recordings that belong to no slot (no readable poll time, no time in the name), with the reason."""
    _, unplaced = _scan_replay(settings)
    return unplaced


def _scan_replay(settings: Settings) -> tuple[dict[datetime, list[Path]], dict[Path, str]]:
    placed: dict[datetime, list[tuple[datetime, Path]]] = defaultdict(list)
    unplaced: dict[Path, str] = {}
    for path in replay_files(settings.replay_folder(SOURCE)):
        when = _file_poll_time(path)
        if when is None:
            unplaced[path] = "no response timestamp in it and no date_time at the start of its name"
            continue
        # A single file with a broken clock must not plan years of partitions: it is left out, with the reason.
        problem = implausible_poll_time(when)
        if problem:
            unplaced[path] = problem
            continue
        placed[floor_slot(when, settings.poll_interval_minutes)].append((when, path))
    return {slot: [p for _, p in sorted(files)] for slot, files in sorted(placed.items())}, unplaced


def _file_poll_time(path: Path) -> datetime | None:
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _POLL_TIME_MEMO:
        try:
            when = poll_time(read_recording(path)[0])
        except RecordingError:
            when = None
        _POLL_TIME_MEMO[key] = when or _name_time(path)
    return _POLL_TIME_MEMO[key]


def _name_time(path: Path) -> datetime | None:
    match = _NAME_TIME.match(path.name)
    if not match:
        return None
    try:
        local = datetime.strptime(match.group(1) + match.group(2) + (match.group(3) or "00"), "%Y%m%d%H%M%S")
    except ValueError:
        return None
    return local.replace(tzinfo=SOURCE_TZ).astimezone(timezone.utc)


def _city_from_name(path: Path) -> str:
    """`koeln.json` / `koeln.json.gz` -> koeln; `20220111_2158__koeln.json` -> koeln."""
    stem = path.name.removesuffix(".gz").removesuffix(".json")
    return stem.rsplit("__", 1)[-1]


def _is_response(value: Any) -> bool:
    return isinstance(value, dict) and ("data" in value or "status_code" in value)


def read_recording(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """(responses by city, recorded failures) of one replay file, in either accepted shape.

    Shapes: the `{city_slug: response}` wrapper (also an envelope stored by live mode, whose `_failed` is kept)
    or one city's plain response, named after the city.
    """
    try:
        doc = read_json_file(path)
    except (OSError, EOFError, ValueError) as exc:
        raise RecordingError(f"not valid JSON ({type(exc).__name__}: {exc})") from None
    if _is_response(doc):
        return {_city_from_name(path): doc}, {}
    if isinstance(doc, dict):
        cities = {k: v for k, v in doc.items() if not k.startswith("_")}
        failed = doc.get(FAILED_KEY)
        failed = {str(k): str(v) for k, v in failed.items()} if isinstance(failed, dict) else {}
        if any(_is_response(v) for v in cities.values()) or (failed and not cities):
            return cities, failed
    kind = type(doc).__name__ if not isinstance(doc, dict) else "object without city responses"
    raise RecordingError(
        f"not a chargecloud poll (a JSON {kind}): expected {{city_slug: response}} "
        f"or one city's response with 'data'/'status_code'"
    )


def fetch_replay(settings: Settings, slot: datetime, log: Log) -> dict:
    """Merge every recording of the slot. A broken file is listed under `_failed` by its name."""
    folder = settings.replay_folder(SOURCE)
    envelope: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for path in replay_index(settings).get(slot, []):
        name = path.relative_to(folder).as_posix()
        try:
            responses, recorded_failed = read_recording(path)
        except RecordingError as exc:
            failed[name] = f"replay file {name}: {exc}"
            if log:
                log(f"chargecloud replay: {failed[name]}")
            continue
        for city, response in responses.items():
            if city in envelope:  # two recordings of one city in one slot: the earlier poll wins
                if log:
                    log(f"chargecloud replay: {city} in {name} ignored, already read for slot {slot.isoformat()}")
                continue
            envelope[city] = response
        for city, reason in recorded_failed.items():
            failed.setdefault(city, reason)
    failed = {k: v for k, v in failed.items() if k not in envelope}  # answered in another recording
    if failed:
        envelope[FAILED_KEY] = failed
    return envelope


UNPLACED_PARTITION = "unplaced"  # the quarantine partition_key of recordings without a usable poll time


def unplaced_quarantine(unplaced: dict[Path, str]) -> pd.DataFrame:
    """`raw.quarantine` rows for recordings that belong to no poll slot, so they are visible in the warehouse."""
    rows = [
        tables.quarantine_row(SOURCE, str(path), reason,
                              json.dumps({"file": str(path), "bytes": path.stat().st_size if path.exists() else None}),
                              str(path), level="recording", partition_key=UNPLACED_PARTITION)
        for path, reason in unplaced.items()
    ]
    return tables.frame("quarantine", rows)
