"""chargecloud source: one poll of `GET <chargecloud_url>/<city>` per slot, and its flattening into tables.

A *poll envelope* is what one poll slot pulled: `{city_slug: response, ...}`, the wrapper format of the real
recordings, plus the reserved key `"_failed": {city_slug_or_file: reason}` when something could not be read.
Keys starting with "_" are never cities. The envelope is stored unchanged as the raw pull, so everything
below it can be rebuilt from the raw files.

Three modes give the same envelope (`settings.mode("chargecloud")`):
- `live`: real HTTP through `lib.http.get_json`, one city at a time; a failing city does not fail the rest.
- `replay`: recorded polls (`*.json`, `*.json.gz`) from `settings.replay_folder("chargecloud")`, grouped by
  the slot of their poll time.
- `simulated`: `lib.simulator.chargecloud_poll` (real schema, offline).

`flatten_poll` turns an envelope into DataFrames matching `lib.tables.TABLES` exactly. Bad input is never
dropped silently and good records always survive: what cannot be loaded as it is goes to `quarantine` with
the reason, and every city gets one `chargecloud_poll_log` row.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable
from zoneinfo import ZoneInfo

import pandas as pd
import requests

from ev_assets.lib.http import MalformedResponseError, RetryPolicy, SourceHTTPError, get_json
from ev_assets.lib.settings import SOURCES, Settings
from ev_assets.lib import tables
from ev_assets.lib.rawstore import read_json_file

SOURCE = "chargecloud"
FAILED_KEY = "_failed"
SUPERSEDED_KEY = "_superseded"  # set when loading: what the earlier, failed attempts at the slot said
OK_STATUS_CODE = 1000
STATUSES = frozenset({"AVAILABLE", "CHARGING", "RESERVED", "BLOCKED", "OUTOFORDER", "INOPERATIVE", "UNKNOWN"})

# --- data contracts: what the real feeds get wrong, and what a value must be to load as it is -------------
# Polls are partitioned from this day on (the earliest recordings); an earlier poll time is a broken clock.
PARTITIONS_START = datetime(2021, 9, 1, tzinfo=timezone.utc)
# A poll time this far after now (or a city's time this far from its poll slot) is not a real poll time.
POLL_TIME_TOLERANCE = timedelta(hours=1)
# Germany with a margin (the same box as the dbt test `station_coordinates_in_germany`).
GERMANY_LATITUDE = (47.2, 55.1)
GERMANY_LONGITUDE = (5.8, 15.1)
# Plausible connector ratings; the feed sends kW, so 22000 "kW" is a value in W.
CONNECTOR_RANGES = {"ampere": (0.0, 1000.0, "A"), "voltage": (0.0, 1500.0, "V"), "max_power": (0.0, 1000.0, "kW")}
# Each contract is an asset check on the table it protects: rule -> (table, check name, what it asserts).
CONTRACTS = {
    "poll": ("chargecloud_poll_log", "every_poll_usable",
             "Every recording and every city's answer of every poll could be used: readable, a plausible poll time, "
             "status_code 1000 without an error message, stations in data."),
    "status": ("status_chargingpoints", "statuses_valid",
               "Every charging point and connector has a status of the vocabulary, and one status per poll: an id "
               "reported twice in one poll (e.g. by two cities) keeps the first."),
    "ids": ("chargingpoints", "records_have_ids",
            "Every station, charging point and connector is a JSON object with an id, and child lists are lists."),
    "ratings": ("connectors", "plausible_connector_ratings",
                "Connector ampere, voltage and max_power are numbers in range (max_power in kW, at most 1000)."),
    "coordinates": ("chargingstations", "coordinates_in_germany",
                    "Every station has coordinates, inside Germany."),
}
# The endpoint answers in German local time (+01:00 / +02:00); the real scraper named its files in it too.
SOURCE_TZ = ZoneInfo("Europe/Berlin")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

Log = Callable[[str], None] | None


class ChargecloudError(ValueError):
    """A chargecloud poll was asked for in a way its mode cannot serve (e.g. a live backfill)."""


# ---------------------------------------------------------------------------------------------------------
# Poll slots
# ---------------------------------------------------------------------------------------------------------
def to_utc(t: datetime) -> datetime:
    """`t` in UTC; a naive datetime is taken to be UTC already (Dagster partition bounds are UTC)."""
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def floor_slot(t: datetime, interval_minutes: int) -> datetime:
    """The start of the poll slot holding `t`: slots are aligned to the UTC epoch, so 10-minute slots start at
    :00, :10, ... of every hour whatever the time zone."""
    step = timedelta(minutes=interval_minutes)
    return _EPOCH + ((to_utc(t) - _EPOCH) // step) * step


def poll_slots(settings: Settings, start: datetime, end: datetime) -> list[datetime]:
    """The poll slots starting in [start, end).

    Live and simulated polls can happen in every slot; replay only has the slots that were recorded.
    """
    start, end = to_utc(start), to_utc(end)
    if settings.mode(SOURCE) == "replay":
        return [slot for slot in replay_index(settings) if start <= slot < end]
    step = timedelta(minutes=settings.poll_interval_minutes)
    slot = floor_slot(start, settings.poll_interval_minutes)
    if slot < start:
        slot += step
    slots = []
    while slot < end:
        slots.append(slot)
        slot += step
    return slots


# ---------------------------------------------------------------------------------------------------------
# Fetching one poll
# ---------------------------------------------------------------------------------------------------------
def fetch_poll(
    settings: Settings,
    slot_start: datetime,
    log: Log = None,
    *,
    now: datetime | None = None,
    sleep: Callable[[float], None] | None = None,
) -> dict:
    """The poll envelope of the slot starting at `slot_start`, in the source's mode.

    `now` and `sleep` exist for tests (the live backfill guard and HTTP retry waits).
    """
    slot = floor_slot(slot_start, settings.poll_interval_minutes)
    mode = settings.mode(SOURCE)
    if mode == "live":
        return _fetch_live(settings, slot, log, now=now, sleep=sleep)
    if mode == "replay":
        return _fetch_replay(settings, slot, log)
    return _fetch_simulated(settings, slot)


def _fetch_live(settings: Settings, slot: datetime, log: Log, now: datetime | None, sleep) -> dict:
    """Ask every city for its current state. The endpoint has no history, so only a current slot makes sense."""
    now = to_utc(now or datetime.now(timezone.utc))
    max_age = timedelta(minutes=2 * settings.poll_interval_minutes)
    if now - slot > max_age:
        raise ChargecloudError(
            f"chargecloud live mode cannot backfill the past: slot {slot.isoformat()} is {now - slot} old "
            f"(more than 2 poll intervals) and the endpoint only returns the current state. "
            f"Use replay mode (EV_SOURCE_CHARGECLOUD=replay, EV_REPLAY_DIR=<recorded polls>) for past slots."
        )
    policy = RetryPolicy(settings.http_timeout_s, settings.http_retries, settings.http_backoff_s)
    extra = {"sleep": sleep} if sleep is not None else {}
    envelope: dict[str, Any] = {}
    failed: dict[str, str] = {}
    base = settings.chargecloud_url.rstrip("/")
    with requests.Session() as session:  # one connection pool for all cities of the poll
        for city in settings.cities:
            try:
                envelope[city] = get_json(f"{base}/{city}", policy=policy, session=session, log=log, **extra)
            except (SourceHTTPError, MalformedResponseError) as exc:
                failed[city] = str(exc)
            except requests.RequestException as exc:  # anything else requests raises (bad URL, ...)
                failed[city] = f"GET {base}/{city} failed: {type(exc).__name__}"
            if city in failed and log:
                log(f"chargecloud {city}: {failed[city]}")
    if failed:
        envelope[FAILED_KEY] = failed
    return envelope


def _fetch_simulated(settings: Settings, slot: datetime) -> dict:
    # Imported here so this module works (and its tests run) independently of the simulator.
    from ev_assets.lib import simulator

    return simulator.chargecloud_poll(settings.simulation, slot)


# ---------------------------------------------------------------------------------------------------------
# Replay of recorded polls
# ---------------------------------------------------------------------------------------------------------
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


def implausible_poll_time(when: datetime, now: datetime | None = None) -> str | None:
    """Why `when` cannot be a poll time (in the future, or before the partitions start), or None."""
    now = to_utc(now or datetime.now(timezone.utc))
    if when > now + POLL_TIME_TOLERANCE:
        return f"poll time {when:%Y-%m-%d %H:%M} UTC is in the future (now {now:%Y-%m-%d %H:%M} UTC)"
    if when < PARTITIONS_START:
        return f"poll time {when:%Y-%m-%d %H:%M} UTC is before the poll partitions start ({PARTITIONS_START:%Y-%m-%d})"
    return None


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


def _fetch_replay(settings: Settings, slot: datetime, log: Log) -> dict:
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
        (SOURCE, UNPLACED_PARTITION, "recording", str(path), reason,
         json.dumps({"file": str(path), "bytes": path.stat().st_size if path.exists() else None}), str(path))
        for path, reason in unplaced.items()
    ]
    return tables.frame("quarantine", rows)


# ---------------------------------------------------------------------------------------------------------
# Several stored attempts at one slot
# ---------------------------------------------------------------------------------------------------------
def pick_attempt(attempts: list[tuple[Any, str]]) -> tuple[int, Any]:
    """(index, envelope to load) of the stored attempts `(envelope, file name)` at one slot, oldest first.

    A failed poll must not block a later good one: the attempt with the most usable cities wins (the latest on a
    tie), and when earlier attempts did worse, the envelope returned says so under `_superseded`.
    """
    if len(attempts) == 1:
        return 0, attempts[0][0]

    def usable(envelope: Any) -> int:
        cities = [k for k in envelope if not str(k).startswith("_")] if isinstance(envelope, dict) else []
        return len(cities) - len(set(cities) & set(poll_failures(envelope)))

    scores = [usable(envelope) for envelope, _ in attempts]
    best = max(range(len(attempts)), key=lambda i: (scores[i], i))
    envelope = attempts[best][0]
    worse = [
        f"{Path(name).name} ({'; '.join(f'{k}: {v}' for k, v in list(poll_failures(env).items())[:3]) or 'fewer cities'})"
        for i, (env, name) in enumerate(attempts)
        if scores[i] < scores[best]
    ]
    if worse and isinstance(envelope, dict):
        envelope = {**envelope, SUPERSEDED_KEY: "earlier attempt(s) failed: " + ", ".join(worse)}
    return best, envelope


# ---------------------------------------------------------------------------------------------------------
# Flattening
# ---------------------------------------------------------------------------------------------------------
@dataclass
class FlatPoll:
    """One or more polls as DataFrames with exactly the columns of their `lib.tables` table."""

    stations: pd.DataFrame
    charging_points: pd.DataFrame
    connectors: pd.DataFrame
    status_chargingpoints: pd.DataFrame
    status_connectors: pd.DataFrame
    poll_log: pd.DataFrame
    quarantine: pd.DataFrame
    # contract rule (see CONTRACTS) -> what broke it: the count and the first reasons
    problems: dict[str, "Problems"] = field(default_factory=dict)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The frames by their table name in `lib.tables`, ready for the loader."""
        return {TABLE_OF[f.name]: getattr(self, f.name) for f in fields(self) if f.name in TABLE_OF}


@dataclass
class Problems:
    """Records that broke one data contract: how many, and the reasons of the first few."""

    count: int = 0
    examples: list[str] = field(default_factory=list)
    MAX_EXAMPLES = 10

    def add(self, reason: str) -> None:
        self.count += 1
        if len(self.examples) < self.MAX_EXAMPLES:
            self.examples.append(reason)

    def merge(self, other: "Problems") -> None:
        self.count += other.count
        self.examples = (self.examples + other.examples)[: self.MAX_EXAMPLES]


TABLE_OF = {
    "stations": "chargingstations",
    "charging_points": "chargingpoints",
    "connectors": "connectors",
    "status_chargingpoints": "status_chargingpoints",
    "status_connectors": "status_connectors",
    "poll_log": "chargecloud_poll_log",
    "quarantine": "quarantine",
}
# Master data holds one row per version of an item: its key plus the hash of its attributes.
MASTER_KEYS = {
    "stations": ["station_id", "attr_hash"],
    "charging_points": ["charging_point_id", "attr_hash"],
    "connectors": ["charging_point_id", "connector_id", "attr_hash"],  # OCPI connector ids are per EVSE
}


def item_key(table: str) -> list[str]:
    """The columns naming one item of a master-data table; each of its versions adds `attr_hash`."""
    field = next(f for f, t in TABLE_OF.items() if t == table)
    return [k for k in MASTER_KEYS[field] if k != "attr_hash"]


def flatten_poll(envelope: dict, slot_start: datetime, raw_file: str = "") -> FlatPoll:
    """The tables of one poll envelope (see the module docstring for what goes where)."""
    return flatten_polls([(envelope, slot_start, raw_file)])


def flatten_polls(polls: Iterable[tuple[dict, datetime, str]]) -> FlatPoll:
    """The tables of many `(envelope, slot_start, raw_file)` polls at once.

    Far faster than flattening one by one and concatenating: rows are collected as tuples and become
    DataFrames once, and master data collapses to its versions as it goes, so a day of polls stays small.
    """
    rows = _Rows(_EPOCH, "")
    for envelope, slot_start, raw_file in polls:
        rows.start_poll(to_utc(slot_start), str(raw_file))
        _flatten_envelope(rows, envelope)
        rows.compact()
    return rows.frames()


def _flatten_envelope(rows: "_Rows", envelope: Any) -> None:
    if not isinstance(envelope, dict):
        rows.quarantine("poll", "response", None, "poll envelope is not a JSON object", envelope)
        return
    superseded = envelope.get(SUPERSEDED_KEY)
    rows.superseded = f"loaded from a later attempt: {superseded}" if superseded else None
    for key, response in envelope.items():
        if not str(key).startswith("_"):
            _flatten_city(rows, str(key), response)
    failed = envelope.get(FAILED_KEY, {})
    if not isinstance(failed, dict):
        rows.quarantine("poll", "response", FAILED_KEY, "'_failed' is not a JSON object", failed)
        failed = {}
    for city, reason in failed.items():
        if city not in envelope:  # a city that answered after all has its own log row
            rows.failed_poll(str(city), None, str(reason))


class _Rows:
    """Row tuples of every table of one poll, in `lib.tables` column order, plus the poll's context."""

    def __init__(self, slot: datetime, raw_file: str):
        self.start_poll(slot, raw_file)
        self.stations: list[tuple] = []
        self.charging_points: list[tuple] = []
        self.connectors: list[tuple] = []
        self.status_chargingpoints: list[tuple] = []
        self.status_connectors: list[tuple] = []
        self.poll_log: list[tuple] = []
        self.quarantine_rows: list[tuple] = []
        self.problems: dict[str, Problems] = defaultdict(Problems)
        # master data versions seen so far: {list name: {(key..., attr_hash): row}}
        self._versions: dict[str, dict[tuple, tuple]] = {name: {} for name in MASTER_KEYS}

    def start_poll(self, slot: datetime, raw_file: str) -> None:
        self.slot = slot
        self.raw_file = raw_file
        self.partition_key = slot.isoformat()
        # ids with a status in this poll -> the city that reported it first
        self.reported: dict[tuple[str, ...], str] = {}
        self.superseded: str | None = None

    def earlier_report(self, key: tuple[str, ...], city: str) -> str | None:
        """The city that already reported a status for `key` in this poll, or None (and `city` now has)."""
        if key in self.reported:
            return self.reported[key]
        self.reported[key] = city
        return None

    def compact(self) -> None:
        """Fold the master rows collected so far into their versions, widening first/last seen."""
        for name, keys in MASTER_KEYS.items():
            cols = tables.columns(TABLE_OF[name])
            positions = [cols.index(k) for k in keys]
            versions = self._versions[name]
            for row in getattr(self, name):
                key = tuple(row[i] for i in positions)
                old = versions.get(key)
                versions[key] = row if old is None else (*old[:-2], min(old[-2], row[-2]), max(old[-1], row[-1]))
            getattr(self, name).clear()

    def quarantine(self, rule: str, level: str, record_id: str | None, reason: str, record: Any) -> None:
        """A record that broke the contract `rule` (a key of CONTRACTS), kept with the reason."""
        text = json.dumps(record, ensure_ascii=False, default=str)
        self.quarantine_rows.append((SOURCE, self.partition_key, level, record_id, reason, text, self.raw_file))
        self.problems[rule].add(f"{self.slot:%Y-%m-%d %H:%M} {record_id or level}: {reason}")

    def failed_poll(self, city: str, poll_time: datetime | None, reason: str) -> None:
        """A city whose poll could not be used: a poll log row saying why."""
        self.poll_log.append((self.slot, city, poll_time, False, reason, 0, 0, 0, self.raw_file))
        self.problems["poll"].add(f"{self.slot:%Y-%m-%d %H:%M} {city}: {reason}")

    def frames(self) -> FlatPoll:
        self.compact()
        return FlatPoll(
            stations=tables.frame("chargingstations", list(self._versions["stations"].values())),
            charging_points=tables.frame("chargingpoints", list(self._versions["charging_points"].values())),
            connectors=tables.frame("connectors", list(self._versions["connectors"].values())),
            status_chargingpoints=tables.frame("status_chargingpoints", self.status_chargingpoints),
            status_connectors=tables.frame("status_connectors", self.status_connectors),
            poll_log=tables.frame("chargecloud_poll_log", self.poll_log),
            quarantine=tables.frame("quarantine", self.quarantine_rows),
            problems=dict(self.problems),
        )


def _response_problem(response: Any) -> str | None:
    """Why a city's response cannot be loaded at all, or None."""
    if not isinstance(response, dict):
        return f"response is not a JSON object (got {type(response).__name__})"
    code = response.get("status_code")
    if str(code) != str(OK_STATUS_CODE):
        return f"status_code {code!r} ({response.get('status_message') or 'no status_message'}), expected 1000"
    data = response.get("data")
    if data is None:
        return "no data in the response"
    if not isinstance(data, list):
        return f"data is not a list (got {type(data).__name__})"
    if not data:
        return "empty data: no stations"
    return None


def _message_problem(response: dict) -> str | None:
    """A `status_message` reporting an error although `status_code` says success: the data loads, but the poll
    is not clean."""
    message = str(response.get("status_message") or "").strip()
    if message and not message.lower().startswith(("success", "ok")):
        return f"status_message {message!r} reports an error although status_code is {OK_STATUS_CODE}"
    return None


def poll_failures(envelope: Any, slot: datetime | None = None) -> dict[str, str]:
    """city (or recording) -> why its part of a stored poll could not be used cleanly; empty for a clean poll.

    The same rules as flattening, so the `all_cities_polled` check and `raw.chargecloud_poll_log` agree.
    """
    if not isinstance(envelope, dict):
        return {"_envelope": "poll envelope is not a JSON object"}
    failed = {str(k): str(v) for k, v in (envelope.get(FAILED_KEY) or {}).items() if k not in envelope}
    for city, response in envelope.items():
        if str(city).startswith("_"):
            continue
        problem = _response_problem(response) or _message_problem(response) or (
            _time_problem(parse_time(response.get("timestamp")), slot) if slot is not None else None
        )
        if problem:
            failed[str(city)] = problem
    return failed


def _time_problem(poll_time: datetime | None, slot: datetime) -> str | None:
    """Why a city's response time cannot belong to the poll slot `slot`, or None (a missing time is allowed)."""
    if poll_time is not None and abs(poll_time - slot) > POLL_TIME_TOLERANCE:
        return f"timestamp {poll_time:%Y-%m-%d %H:%M} UTC is more than {POLL_TIME_TOLERANCE} from the poll slot"
    return None


def _flatten_city(rows: _Rows, city: str, response: Any) -> None:
    poll_time = parse_time(response.get("timestamp")) if isinstance(response, dict) else None
    problem = _response_problem(response) or _time_problem(poll_time, rows.slot)
    if problem:  # a poll log row and the response in quarantine: one broken contract
        rows.poll_log.append((rows.slot, city, poll_time, False, problem, 0, 0, 0, rows.raw_file))
        rows.quarantine("poll", "response", city, problem, response)
        return
    note = _message_problem(response)
    if note:
        rows.problems["poll"].add(f"{rows.slot:%Y-%m-%d %H:%M} {city}: {note}")
    if poll_time is None:
        note = f"no valid timestamp ({response.get('timestamp')!r}): poll_time set to the poll slot"
        poll_time = rows.slot
    if rows.superseded:
        note = "; ".join(filter(None, [note, rows.superseded]))
    before = (len(rows.stations), len(rows.charging_points), len(rows.connectors))
    for station in response["data"]:
        _flatten_station(rows, city, poll_time, station)
    counts = (len(rows.stations) - before[0], len(rows.charging_points) - before[1], len(rows.connectors) - before[2])
    rows.poll_log.append((rows.slot, city, poll_time, True, note, *counts, rows.raw_file))


def _flatten_station(rows: _Rows, city: str, poll_time: datetime, station: Any) -> None:
    if not isinstance(station, dict):
        rows.quarantine("ids", "station", None, f"station is not a JSON object (got {type(station).__name__})", station)
        return
    station_id = _id(station.get("id"))
    if station_id is None:
        rows.quarantine("ids", "station", None, "station without id: skipped with its charging points", station)
        return
    lat, lon, coord_problem = _coordinates(station.get("coordinates"))
    if coord_problem:
        rows.quarantine(
            "coordinates", "station", station_id, f"station without usable coordinates ({coord_problem}): loaded with NULL coordinates",
            _without(station, "evses"),
        )
    operator = station.get("operator") if isinstance(station.get("operator"), dict) else {}
    opening = station.get("opening_times")
    attrs = (
        station_id, _text(station.get("name")), _text(station.get("address")), _text(station.get("city")),
        _text(station.get("postal_code")), _text(station.get("country")), lat, lon,
        _text(operator.get("name")), _text(operator.get("hotline")), _text(station.get("owner")),
        _bool(station.get("roaming")),
        _bool(opening.get("twentyfourseven")) if isinstance(opening, dict) else None,
        _json_text(opening), _text(station.get("directions")),
    )
    # city_slug is where the station was found, not an attribute of it: kept out of the hash.
    rows.stations.append((attrs[0], city, *attrs[1:], _hash(attrs), poll_time, poll_time))
    for evse in _children(rows, station, "evses", "station", station_id):
        _flatten_evse(rows, city, poll_time, station_id, evse)


def _flatten_evse(rows: _Rows, city: str, poll_time: datetime, station_id: str, evse: Any) -> None:
    if not isinstance(evse, dict):
        rows.quarantine("ids", "charging_point", None, f"charging point is not a JSON object (station {station_id})", evse)
        return
    cp_id = _id(evse.get("id"))
    if cp_id is None:
        reason = f"charging point without id (station {station_id}): skipped with its connectors"
        rows.quarantine("ids", "charging_point", None, reason, evse)
        return
    uid = _id(evse.get("uid"))
    attrs = (
        cp_id, uid, station_id, _text(evse.get("physical_reference")), _text(evse.get("floor_level")),
        _text(evse.get("vehicle_type")), _joined(evse.get("capabilities")), _text(evse.get("chargePointPosition")),
        _text(evse.get("chargingStationPosition")), _joined(evse.get("chargePointParkingSpaceNumbers")),
        _text(evse.get("chargePointPublicComment")), _bool(evse.get("roaming")),
    )
    rows.charging_points.append((*attrs, _hash(attrs), poll_time, poll_time))
    status, problem = _status(evse.get("status"))
    earlier = rows.earlier_report((cp_id,), city) if not problem else None
    if earlier:
        problem = f"charging point {cp_id} already has a status in this poll (from {earlier}): the first is kept"
    if problem:
        rows.quarantine("status", "charging_point", cp_id, problem, _without(evse, "connectors"))
    else:
        rows.status_chargingpoints.append(
            (rows.slot, poll_time, city, station_id, cp_id, uid, status, _text(evse.get("parkingsensor_status")))
        )
    for connector in _children(rows, evse, "connectors", "charging_point", cp_id):
        _flatten_connector(rows, city, poll_time, station_id, cp_id, connector)


def _flatten_connector(rows: _Rows, city: str, poll_time: datetime, station_id: str, cp_id: str, conn: Any) -> None:
    if not isinstance(conn, dict):
        rows.quarantine("ids", "connector", None, f"connector is not a JSON object (charging point {cp_id})", conn)
        return
    conn_id = _id(conn.get("id"))
    if conn_id is None:
        rows.quarantine("ids", "connector", None, f"connector without id (charging point {cp_id}): skipped", conn)
        return
    numbers = {}
    for name, (low, high, unit) in CONNECTOR_RANGES.items():
        numbers[name], problem = _number(conn.get(name))
        if numbers[name] is not None and not low <= numbers[name] <= high:
            numbers[name], problem = None, f"{conn.get(name)!r} is outside {low:g}..{high:g} {unit}"
        if problem:
            rows.quarantine("ratings", "connector", conn_id, f"{name} {problem}: loaded as NULL", conn)
    attrs = (
        conn_id, cp_id, station_id, _text(conn.get("standard")), _text(conn.get("format")),
        _text(conn.get("power_type")), numbers["ampere"], numbers["voltage"], numbers["max_power"],
        _text(conn.get("tariff_id")),
    )
    rows.connectors.append((*attrs, _hash(attrs), poll_time, poll_time))
    status, problem = _status(conn.get("status"))
    earlier = rows.earlier_report((cp_id, conn_id), city) if not problem else None
    if earlier:
        problem = f"connector {conn_id} of {cp_id} already has a status in this poll (from {earlier}): the first is kept"
    if problem:
        rows.quarantine("status", "connector", conn_id, problem, conn)
    else:
        rows.status_connectors.append((rows.slot, poll_time, city, station_id, cp_id, conn_id, status))


def _children(rows: _Rows, parent: dict, key: str, level: str, parent_id: str) -> list:
    """The child list `parent[key]`; absent means none, anything but a list is quarantined."""
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        rows.quarantine("ids", level, parent_id, f"{key} is not a list (got {type(value).__name__}): none loaded", value)
        return []
    return value


# --- value helpers: the API sends strings for numbers, and newer versions may change types --------------
def poll_time(envelope: Any) -> datetime | None:
    """When a stored poll was taken: the earliest response `timestamp` in it (UTC), None if it has none."""
    if not isinstance(envelope, dict):
        return None
    times = [
        parse_time(response.get("timestamp"))
        for key, response in envelope.items()
        if not str(key).startswith("_") and isinstance(response, dict)
    ]
    return min((t for t in times if t is not None), default=None)


def parse_time(value: Any) -> datetime | None:
    """An ISO timestamp as UTC; without an offset it is German local time like all the endpoint's times."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        t = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return (t.replace(tzinfo=SOURCE_TZ) if t.tzinfo is None else t).astimezone(timezone.utc)


def _id(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value).strip()
    return text or None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return _json_text(value)
    return str(value)


def _json_text(value: Any) -> str | None:
    """Stable JSON text (sorted keys), so the attribute hash does not depend on key order."""
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _joined(value: Any) -> str | None:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return _text(value)


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    return None


def _number(value: Any) -> tuple[float | None, str | None]:
    """(number, problem): absent or empty is NULL without a problem; a value that is not a number is one."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    if isinstance(value, bool):
        return None, f"is not a number ({value!r})"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None, f"is not a number ({value!r})"
    if not math.isfinite(number):
        return None, f"is not a finite number ({value!r})"
    return number, None


def _coordinates(coords: Any) -> tuple[float | None, float | None, str | None]:
    """(latitude, longitude, problem). Both or neither: half a position is no position."""
    if not isinstance(coords, dict):
        return None, None, "coordinates missing" if coords is None else f"coordinates not an object: {coords!r}"
    lat, lat_problem = _number(coords.get("latitude"))
    lon, lon_problem = _number(coords.get("longitude"))
    if lat is None or lon is None:
        problem = "; ".join(
            f"{name} {p or 'missing or empty'}"
            for name, v, p in (("latitude", lat, lat_problem), ("longitude", lon, lon_problem))
            if v is None
        )
        return None, None, problem
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None, None, f"out of range ({lat}, {lon})"
    if lat == 0 and lon == 0:
        return None, None, "placeholder position (0, 0)"
    if not (GERMANY_LATITUDE[0] <= lat <= GERMANY_LATITUDE[1] and GERMANY_LONGITUDE[0] <= lon <= GERMANY_LONGITUDE[1]):
        return None, None, f"({lat}, {lon}) is outside Germany"
    return lat, lon, None


def _status(value: Any) -> tuple[str | None, str | None]:
    """(status upper-case, problem)."""
    if value is None:
        return None, "missing status"
    status = str(value).strip().upper()
    if status not in STATUSES:
        return None, f"unknown status {str(value)!r}"
    return status, None


def _hash(attrs: tuple) -> str:
    return hashlib.sha1(json.dumps(attrs, ensure_ascii=False, default=str).encode("utf-8")).hexdigest()


def _without(record: dict, key: str) -> dict:
    """The record without its children: they are loaded (or quarantined) on their own."""
    return {k: v for k, v in record.items() if k != key}
