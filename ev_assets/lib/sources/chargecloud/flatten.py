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

Stored polls are flattened from their bytes (`flatten_polls`): a city's answer is, most of the time, its answer
of ten minutes before with other status values, so once one answer of a city went the full way (`_flatten_*`),
the next ones only have their status values read out of the raw JSON (`_CityShape`). The tables are those of the
full way, always; whatever the shortcut cannot vouch for takes the full way.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cached_property
from operator import itemgetter
from pathlib import Path
from typing import Any, Callable, Iterable
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import requests

try:  # splits a stored poll into its cities' raw JSON fast; without it, stored polls are parsed whole
    import msgspec
except ImportError:  # pragma: no cover
    msgspec = None

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
    """One or more polls as DataFrames with exactly the columns of their `lib.tables` table.

    The status facts (`status_chargingpoints`, `status_connectors`) are built when first asked for, from `facts`.
    """

    stations: pd.DataFrame
    charging_points: pd.DataFrame
    connectors: pd.DataFrame
    poll_log: pd.DataFrame
    quarantine: pd.DataFrame
    facts: dict[str, "_Facts"] = field(repr=False, compare=False)
    # contract rule (see CONTRACTS) -> what broke it: the count and the first reasons
    problems: dict[str, "Problems"] = field(default_factory=dict)

    @cached_property
    def status_chargingpoints(self) -> pd.DataFrame:
        return self.facts["status_chargingpoints"].frame()

    @cached_property
    def status_connectors(self) -> pd.DataFrame:
        return self.facts["status_connectors"].frame()

    def tables(self, arrow: bool = False) -> dict[str, pd.DataFrame]:
        """The frames by their table name in `lib.tables`, ready for the loader. With `arrow`, the status facts are
        backed by Arrow dictionary arrays rather than Python strings: the same values, which DuckDB loads faster."""
        frames = {TABLE_OF[name]: getattr(self, name) for name in TABLE_OF if not (arrow and name in self.facts)}
        if arrow:
            frames.update({name: facts.arrow_frame() for name, facts in self.facts.items()})
        return {table: frames[table] for table in TABLE_OF.values()}


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


def flatten_poll(envelope: dict | bytes, slot_start: datetime, raw_file: str = "") -> FlatPoll:
    """The tables of one poll envelope (see the module docstring for what goes where)."""
    return flatten_polls([(envelope, slot_start, raw_file)])


def flatten_polls(polls: Iterable[tuple[dict | bytes, datetime, str]], shapes: "CityShapes | None" = None) -> FlatPoll:
    """The tables of many `(envelope, slot_start, raw_file)` polls at once.

    An envelope is the parsed poll, or the JSON text of a stored poll as bytes (`rawstore.read_raw_bytes`): the
    tables are the same either way, but bytes are far faster. Each city's answer differs from its answer of the
    previous poll mostly in the statuses, so a city whose answer equals one seen before apart from its status
    values reuses what flattening that answer gave (see `_CityShape`); anything else takes the full path.

    Rows are collected as tuples or columns and become DataFrames once, and master data collapses to its versions
    as it goes, so a day of polls stays small. `polls` may be a generator: one poll at a time is held. Pass the
    same `shapes` to the calls for consecutive days, and a city is flattened in full only when it changes.
    """
    rows = _Rows(_EPOCH, "", shapes or CityShapes())
    for envelope, slot_start, raw_file in polls:
        rows.start_poll(to_utc(slot_start), str(raw_file))
        if isinstance(envelope, (bytes, bytearray, memoryview)):
            _flatten_envelope_bytes(rows, bytes(envelope))
        else:
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
    _flatten_failed(rows, envelope, envelope.get(FAILED_KEY, {}))


def _flatten_failed(rows: "_Rows", envelope: dict, failed: Any) -> None:
    if not isinstance(failed, dict):
        rows.quarantine("poll", "response", FAILED_KEY, "'_failed' is not a JSON object", failed)
        failed = {}
    for city, reason in failed.items():
        if city not in envelope:  # a city that answered after all has its own log row
            rows.failed_poll(str(city), None, str(reason))


def _flatten_envelope_bytes(rows: "_Rows", blob: bytes) -> None:
    """`_flatten_envelope(rows, json.loads(blob))`, without parsing what an earlier poll already showed.

    msgspec splits the poll into the cities' answers as raw JSON, checking its syntax; what only Python's json
    reads (NaN, a byte order mark, ...) or is not shaped like a poll is parsed with `json` and takes the full
    path, and every value that is used is parsed with `json`, so the result is always that of `json.loads`.
    """
    if msgspec is None:
        _flatten_envelope(rows, json.loads(blob))
        return
    try:
        try:
            envelope = _RAW_ENVELOPE.decode(blob)  # {key: {field: raw JSON}}: every stored poll
        except msgspec.ValidationError:  # a value that is not an object
            envelope = _RAW_OBJECT.decode(blob)
    except msgspec.DecodeError:  # not an object, or not JSON to msgspec
        _flatten_envelope(rows, json.loads(blob))
        return
    reserved = {key: _loads(value) for key, value in envelope.items() if key.startswith("_")}
    superseded = reserved.get(SUPERSEDED_KEY)
    rows.superseded = f"loaded from a later attempt: {superseded}" if superseded else None
    for key, value in envelope.items():
        if not key.startswith("_"):
            _flatten_city_bytes(rows, key, value)
    _flatten_failed(rows, envelope, reserved.get(FAILED_KEY, {}))


def _json_value(raw: Any) -> Any:
    """json.loads of raw JSON: msgspec reads strings, integers, booleans and null exactly as json does, faster
    (it refuses what only json reads, such as a lone surrogate: that goes to json)."""
    try:
        value = _ANY.decode(raw)
    except ValueError:
        return json.loads(bytes(raw))
    return value if value is None or type(value) in (str, int, bool) else json.loads(bytes(raw))


def _loads(value: Any) -> Any:
    """json.loads of raw JSON, or of an object given as its fields' raw JSON."""
    if isinstance(value, dict):
        return {key: json.loads(bytes(item)) for key, item in value.items()}
    return json.loads(bytes(value))


class CityShapes:
    """What flattening learnt of each city's answers (see `_CityShape`), kept from one `flatten_polls` call to the
    next, e.g. a day's polls after the day before's: then a city is flattened in full only when its stations
    change, not once a call. For one caller at a time."""

    def __init__(self):
        self.strings = _Strings()
        self.by_city: dict[str, list[_CityShape]] = {}  # latest first
        self.last: dict[str, tuple] = {}  # city -> (raw data, shape, status values) of its last reused answer

    def add(self, city: str, shape: "_CityShape") -> None:
        self.by_city[city] = [shape, *self.by_city.get(city, ())][:_SHAPES_PER_CITY]


class _Rows:
    """Row tuples of every table of one poll, in `lib.tables` column order, plus the poll's context.

    The status facts end up in `facts` (blocks of columns, text as codes): the full path appends tuples to
    `status_chargingpoints` / `status_connectors`, which `flush_status_rows` moves there, and a city shape adds
    a block per city and poll.
    """

    def __init__(self, slot: datetime, raw_file: str, shapes: "CityShapes"):
        self.start_poll(slot, raw_file)
        self.stations: list[tuple] = []
        self.charging_points: list[tuple] = []
        self.connectors: list[tuple] = []
        self.status_chargingpoints: list[tuple] = []
        self.status_connectors: list[tuple] = []
        self.shapes = shapes
        self.strings = shapes.strings
        self.facts = {name: _Facts(name, self.strings) for name in _FACTS}
        self.poll_log: list[tuple] = []
        self.quarantine_rows: list[tuple] = []
        self.problems: dict[str, Problems] = defaultdict(Problems)
        # master data versions seen so far: {list name: {(key..., attr_hash): row}}
        self._versions: dict[str, dict[tuple, tuple]] = {name: {} for name in MASTER_KEYS}
        # the shapes used here -> [first, last] poll time of the polls that reused them (fold into _versions)
        self.seen: dict[_CityShape, list] = {}
        self.capture: list[tuple] | None = None  # quarantined records while a shape is being learnt

    def start_poll(self, slot: datetime, raw_file: str) -> None:
        self.slot = slot
        self.slot_ns = _ns(slot)
        self.raw_file = raw_file
        self.partition_key = slot.isoformat()
        # ids with a status in this poll -> the city that reported it first: charging point ids, and connectors
        # as the repr of (charging point id, connector id) (str keys hash once)
        self.reported: dict[str, str] = {}
        self.reported_connectors: dict[str, str] = {}
        self.superseded: str | None = None

    def earlier_report(self, key: tuple[str, ...], city: str) -> str | None:
        """The city that already reported a status for `key` in this poll, or None (and `city` now has)."""
        reported, key = (self.reported, key[0]) if len(key) == 1 else (self.reported_connectors, repr(key))
        if key in reported:
            return reported[key]
        reported[key] = city
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

    def flush_status_rows(self) -> None:
        """Move the status rows of the full path into the facts (before a shape adds a block, to keep the order)."""
        for name in _FACTS:
            pending = getattr(self, name)
            if pending:
                self.facts[name].add_rows(pending)
                pending.clear()

    def quarantine(self, rule: str, level: str, record_id: str | None, reason: str, record: Any) -> None:
        """A record that broke the contract `rule` (a key of CONTRACTS), kept with the reason."""
        if self.capture is not None:
            self.capture.append((rule, level, record_id, reason, record))
        self.quarantine_text(rule, level, record_id, reason, _RECORD_JSON.encode(record))

    def quarantine_text(self, rule: str, level: str, record_id: str | None, reason: str, text: str) -> None:
        self.quarantine_rows.append((SOURCE, self.partition_key, level, record_id, reason, text, self.raw_file))
        self.problems[rule].add(f"{self.slot:%Y-%m-%d %H:%M} {record_id or level}: {reason}")

    def failed_poll(self, city: str, poll_time: datetime | None, reason: str) -> None:
        """A city whose poll could not be used: a poll log row saying why."""
        self.poll_log.append((self.slot, city, poll_time, False, reason, 0, 0, 0, self.raw_file))
        self.problems["poll"].add(f"{self.slot:%Y-%m-%d %H:%M} {city}: {reason}")

    def flatten_and_learn(self, city: str, poll_time: datetime, data: list, data_raw: bytes) -> None:
        """Flatten a city's stations on the full path, and keep its shape when the polls after can reuse it."""
        mark = (len(self.stations), len(self.charging_points), len(self.connectors),
                len(self.status_chargingpoints), len(self.status_connectors))
        self.capture = []
        try:
            for station in data:
                _flatten_station(self, city, poll_time, station)
            captured = self.capture
        finally:
            self.capture = None
        shape = _CityShape.learn(self, city, data, data_raw, mark, captured)
        if shape is not None:
            self.shapes.add(city, shape)
            self.seen[shape] = [None, None]  # its master rows are in this poll's already

    def frames(self) -> FlatPoll:
        self.compact()
        self.flush_status_rows()
        for shape, (first, last) in self.seen.items():  # the polls that reused a shape widen its versions' seen
            if first is not None:
                shape.fold_seen(self._versions, first, last)
        return FlatPoll(
            stations=_frame("chargingstations", list(self._versions["stations"].values())),
            charging_points=_frame("chargingpoints", list(self._versions["charging_points"].values())),
            connectors=_frame("connectors", list(self._versions["connectors"].values())),
            poll_log=_frame("chargecloud_poll_log", self.poll_log),
            quarantine=tables.frame("quarantine", self.quarantine_rows),
            facts=self.facts,
            problems=dict(self.problems),
        )


_FACTS = ("status_chargingpoints", "status_connectors")
_NAT = np.iinfo(np.int64).min  # NaT as datetime64[ns]
_SHAPES_PER_CITY = 4  # a city flipping between a few master-data states keeps each


def _frame(name: str, rows: list[tuple]) -> pd.DataFrame:
    """`tables.frame(name, rows)` for rows whose times are UTC datetimes or None, with the times converted here:
    `pd.to_datetime` turns datetimes into Timestamps one by one to decide whether to cache them."""
    times = {i: col for i, (col, typ) in enumerate(tables.TABLES[name]) if typ == "TIMESTAMPTZ"}
    if not rows or not times:
        return tables.frame(name, rows)
    frame = tables.frame(name, [tuple(None if i in times else value for i, value in enumerate(row)) for row in rows])
    for i, col in times.items():
        ns = np.fromiter((_NAT if row[i] is None else _ns(row[i]) for row in rows), np.int64, len(rows))
        frame[col] = pd.DatetimeIndex(ns.view("M8[ns]")).tz_localize("UTC")
    return frame


def _ns(t: datetime) -> int:
    """A UTC datetime as nanoseconds since the epoch (exact: datetimes hold microseconds)."""
    return (t - _EPOCH) // _MICROSECOND * 1000


_MICROSECOND = timedelta(microseconds=1)


class _Strings(dict):
    """Text -> its code (None is 0), for the status facts: each id or status is one object, however many rows."""

    def __init__(self):
        super().__init__({None: 0})
        self.texts: list[str | None] = [None]
        self.of_bytes = _BytesCodes(self)  # a raw status value -> the code of its text

    def __missing__(self, text: str) -> int:
        self[text] = code = len(self.texts)
        self.texts.append(text)
        return code


class _BytesCodes(dict):
    """A raw status value (ASCII letters, see `_STATUS_VALUE`) -> the `_Strings` code of its text."""

    def __init__(self, strings: _Strings):
        super().__init__()
        self.strings = strings

    def __missing__(self, raw: bytes) -> int:
        self[raw] = code = self.strings[raw.decode("ascii")]
        return code


class _Facts:
    """One status table as blocks of rows, in order, kept by column: a city shape's block gives poll_slot, poll_time
    and city_slug as one value each (`_SCALARS`) and the other columns as arrays; the full path's blocks give arrays
    only. Times are ns since the epoch, text `_Strings` codes."""

    def __init__(self, name: str, strings: _Strings):
        self.name = name
        self.strings = strings
        self.counts: list[int] = []
        self.columns: list[list] = [[] for _ in tables.TABLES[name]]
        self.array_blocks: list[int] = []  # blocks that give every column as an array
        self._built: list[np.ndarray] | None = None

    def add(self, n: int, columns: list, arrays: bool = False) -> None:
        if not n:
            return
        self._built = None
        if arrays:
            self.array_blocks.append(len(self.counts))
        self.counts.append(n)
        for column, part in zip(self.columns, columns):
            column.append(part)

    def add_rows(self, rows: list[tuple]) -> None:
        """Rows as tuples in `lib.tables` column order (datetimes, text or None)."""
        code = self.strings.__getitem__
        columns = [
            np.fromiter(map(_ns if typ == "TIMESTAMPTZ" else code, values), np.int64 if typ == "TIMESTAMPTZ" else np.int32, len(rows))
            for (_, typ), values in zip(tables.TABLES[self.name], zip(*rows))
        ]
        self.add(len(rows), columns, arrays=True)

    def _columns(self) -> list[np.ndarray]:
        """Each column as one array: ns since the epoch, or text codes."""
        if self._built is None:
            self._built = self._build()
        return self._built

    def _build(self) -> list[np.ndarray]:
        counts = np.array(self.counts, dtype=np.int64)
        starts = np.cumsum(counts) - counts
        columns = []
        for i, ((_, typ), parts) in enumerate(zip(tables.TABLES[self.name], self.columns)):
            dtype = np.int64 if typ == "TIMESTAMPTZ" else np.int32
            if not parts:
                values = np.empty(0, dtype)
            elif i < _SCALARS and len(self.array_blocks) < len(parts):  # one value per shape block, repeated
                scalars = list(parts)
                for k in self.array_blocks:
                    scalars[k] = 0
                values = np.repeat(np.array(scalars, dtype), counts)
                for k in self.array_blocks:
                    values[starts[k]:starts[k] + counts[k]] = parts[k]
            else:
                values = np.concatenate(parts)
            columns.append(values)
        return columns

    def frame(self) -> pd.DataFrame:
        """The table, typed exactly as `tables.frame` types its rows (object columns of str and None)."""
        texts = np.array(self.strings.texts, dtype=object)
        data = {
            col: pd.DatetimeIndex(values.view("M8[ns]")).tz_localize("UTC") if typ == "TIMESTAMPTZ" else texts[values]
            for (col, typ), values in zip(tables.TABLES[self.name], self._columns())
        }
        return pd.DataFrame(data, columns=tables.columns(self.name), copy=False)

    def arrow_frame(self) -> pd.DataFrame:
        """The table with the same values as `frame`, its text as Arrow dictionary arrays (no object per row)."""
        dictionary = pa.array(["" if text is None else text for text in self.strings.texts], pa.string())
        data = {}
        for (col, typ), values in zip(tables.TABLES[self.name], self._columns()):
            if typ == "TIMESTAMPTZ":
                array = pa.array(values, pa.timestamp("ns", tz="UTC"))
            else:  # code 0 is NULL
                array = pa.DictionaryArray.from_arrays(pa.array(values, mask=values == 0), dictionary)
            data[col] = pd.arrays.ArrowExtensionArray(array)
        return pd.DataFrame(data, columns=tables.columns(self.name), copy=False)


_SCALARS = 3  # poll_slot, poll_time, city_slug: the first columns of both status tables


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


def _flatten_city(rows: _Rows, city: str, response: Any, data_raw: Any = None) -> None:
    """One city's answer. With `data_raw` (the raw JSON of its `data`), what it gives is kept as the city's
    shape for the polls that follow."""
    poll_time = parse_time(response.get("timestamp")) if isinstance(response, dict) else None
    problem = _response_problem(response) or _time_problem(poll_time, rows.slot)
    if problem:  # a poll log row and the response in quarantine: one broken contract
        rows.poll_log.append((rows.slot, city, poll_time, False, problem, 0, 0, 0, rows.raw_file))
        rows.quarantine("poll", "response", city, problem, response)
        return
    note, poll_time = _city_note(rows, city, response, poll_time)
    before = (len(rows.stations), len(rows.charging_points), len(rows.connectors))
    if data_raw is None:
        for station in response["data"]:
            _flatten_station(rows, city, poll_time, station)
    else:
        rows.flatten_and_learn(city, poll_time, response["data"], data_raw)
    counts = (len(rows.stations) - before[0], len(rows.charging_points) - before[1], len(rows.connectors) - before[2])
    rows.poll_log.append((rows.slot, city, poll_time, True, note, *counts, rows.raw_file))


def _city_note(rows: _Rows, city: str, response: dict, poll_time: datetime | None) -> tuple[str | None, datetime]:
    """(the poll log's note on a usable answer, its poll time): an error message beside a success code (which
    also breaks the poll contract), a missing timestamp, an attempt loaded instead of earlier failed ones."""
    note = _message_problem(response)
    if note:
        rows.problems["poll"].add(f"{rows.slot:%Y-%m-%d %H:%M} {city}: {note}")
    if poll_time is None:
        note = f"no valid timestamp ({response.get('timestamp')!r}): poll_time set to the poll slot"
        poll_time = rows.slot
    if rows.superseded:
        note = "; ".join(filter(None, [note, rows.superseded]))
    return note, poll_time


def _flatten_city_bytes(rows: _Rows, city: str, answer: Any) -> None:
    """`_flatten_city(rows, city, json.loads(answer))` for an answer as raw JSON (or its fields' raw JSON). A
    clean answer whose `data` has a shape the city had before (see `_CityShape`) only fills in its statuses."""
    if not isinstance(answer, dict):
        try:
            answer = _RAW_OBJECT.decode(answer)
        except msgspec.DecodeError:  # not an object: the full path says why
            _flatten_city(rows, city, json.loads(bytes(answer)))
            return
    data_raw = answer.get("data")
    head = {key: _json_value(value) for key, value in answer.items() if key != "data"}
    poll_time = parse_time(head.get("timestamp"))
    usable = (
        data_raw is not None and poll_time is not None and str(head.get("status_code")) == str(OK_STATUS_CODE)
        and _time_problem(poll_time, rows.slot) is None
    )
    if usable:
        shape = _reusable_shape(rows, city, data_raw)
        if shape is not None:
            values = rows.shapes.last[city][2]
            note, poll_time = _city_note(rows, city, head, poll_time)
            shape.apply(rows, city, poll_time, values)
            rows.poll_log.append((rows.slot, city, poll_time, True, note, *shape.counts, rows.raw_file))
            return
    response = {key: json.loads(bytes(value)) if key == "data" else head[key] for key, value in answer.items()}
    _flatten_city(rows, city, response, bytes(data_raw) if usable else None)


def _reusable_shape(rows: _Rows, city: str, data_raw: Any) -> "_CityShape | None":
    """The shape of the city that this `data` has (the status values aside) and can reuse in this poll; its status
    values are then `rows.shapes.last[city][2]`."""
    last = rows.shapes.last.get(city)
    if last is not None and last[0] == data_raw:  # the very answer of its last poll: nothing to split
        return last[1] if last[1].ready(rows, last[2]) else None
    parts = _STATUS_VALUE.split(data_raw)
    segments, values = parts[0::2], parts[1::2]
    for shape in rows.shapes.by_city.get(city, ()):
        if shape.matches(segments) and shape.ready(rows, values):
            rows.shapes.last[city] = (data_raw, shape, values)
            return shape
    return None


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


# ---------------------------------------------------------------------------------------------------------
# City shapes: a city's answer is its previous answer with other status values, most of the time
# ---------------------------------------------------------------------------------------------------------
# A status value as a stored poll spells it (json.dumps writes `": "`). A quote inside a JSON string is escaped,
# so in valid JSON every match is a key ending in "status" with a plain string value, and nothing else.
_STATUS_VALUE = re.compile(rb'status": ?"([A-Za-z_]*)"')
_STATUS_WORD = re.compile(r"[A-Za-z_]*")
_STATUS_OF = {status.encode(): status for status in STATUSES}  # a raw value that `_status` keeps as it is
_STATUS_SET = frozenset(_STATUS_OF)
_TEXT_OF: dict[bytes, str] = {}  # decoded status values, shared
# A stored poll as {key: raw JSON} or {key: {field: raw JSON}} (msgspec checks the syntax, parses nothing).
_RAW_OBJECT = msgspec.json.Decoder(dict[str, msgspec.Raw]) if msgspec else None
_RAW_ENVELOPE = msgspec.json.Decoder(dict[str, dict[str, msgspec.Raw]]) if msgspec else None
_ANY = msgspec.json.Decoder() if msgspec else None


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    """json's object hook that refuses duplicate keys (json keeps the last, which reorders what a scan sees)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _DuplicateKey
    return obj


def _status_fields(value: Any, path: tuple, found: list) -> None:
    """(path, value) of every key ending in "status" whose value is a plain word, in document order: what
    `_STATUS_VALUE` finds in the raw JSON of `value` when nothing in it is spelled with escapes."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str):
                if key.endswith("status") and _STATUS_WORD.fullmatch(item):
                    found.append(((*path, key), item))
            elif isinstance(item, (dict, list)):
                _status_fields(item, (*path, key), found)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _status_fields(item, (*path, i), found)


def _picker(indices: list[int]) -> Callable[[list], tuple]:
    """A function giving the items at `indices` as a tuple (itemgetter, also for none or one index)."""
    if not indices:
        return lambda values: ()
    if len(indices) == 1:
        index = indices[0]
        return lambda values: (values[index],)
    return itemgetter(*indices)


def _text_of(value: bytes) -> str:
    text = _TEXT_OF.get(value)
    if text is None:
        text = _TEXT_OF[value] = value.decode("ascii")
    return text


class _CityShape:
    """What one city's clean answer flattened to, as a function of its status values.

    `segments` are the bytes of the answer's `data` between its status values (`_STATUS_VALUE.split`). An answer
    with the same segments differs only in those values; `learn` made sure each of them is the status of a
    charging point or connector (or a parking sensor's) and flows nowhere else but into a status row or the text
    of a quarantined connector. So its tables are the learnt ones with the new values filled in: no station,
    charging point or connector changed, and the master-data versions are the same.
    """

    @classmethod
    def learn(cls, rows: _Rows, city: str, data: list, data_raw: bytes, mark: tuple, captured: list) -> "_CityShape | None":
        """The shape of the city's stations just flattened (rows since `mark`), or None when the polls after cannot
        reuse it safely: records without ids or with a bad or repeated status (they depend on the statuses),
        duplicate keys, or a status value anywhere but in a status field."""
        if any(rule not in ("coordinates", "ratings") for rule, *_ in captured):
            return None
        parts = _STATUS_VALUE.split(data_raw)
        values = parts[1::2]
        try:
            json.loads(data_raw, object_pairs_hook=_unique_keys)
            found: list = []
            _status_fields(data, (), found)
        except (_DuplicateKey, RecursionError):
            return None
        if [value.encode() for _, value in found] != values:
            return None  # something spelled with escapes or odd spacing: the scan would not see the same values

        # every charging point and connector has its status row (nothing was quarantined for ids or statuses)
        cp_rows = rows.status_chargingpoints[mark[3]:]
        conn_rows = rows.status_connectors[mark[4]:]
        evse_row, conn_row, conn_of = {}, {}, {}
        for i, station in enumerate(data):
            for j, evse in enumerate(station.get("evses") or ()):
                r = len(evse_row)
                if r >= len(cp_rows) or cp_rows[r][4] != _id(evse.get("id")):
                    return None
                evse_row[i, j] = r
                for k, conn in enumerate(evse.get("connectors") or ()):
                    c = len(conn_row)
                    if c >= len(conn_rows) or conn_rows[c][4:6] != (cp_rows[r][4], _id(conn.get("id"))):
                        return None
                    conn_row[i, j, k] = c
                    conn_of[id(conn)] = (i, j, k)
        if len(evse_row) != len(cp_rows) or len(conn_row) != len(conn_rows):
            return None

        shape = cls()
        shape.segments = parts[0::2]
        shape.counts = (len(rows.stations) - mark[0], len(rows.charging_points) - mark[1], len(rows.connectors) - mark[2])
        codes = rows.strings
        shape.city = codes[city]
        shape.cp_station, shape.cp_ids, shape.cp_uids, shape.cp_status, shape.cp_park = (
            np.fromiter((codes[row[i]] for row in cp_rows), np.int32, len(cp_rows)) for i in (3, 4, 5, 6, 7)
        )
        shape.conn_station, shape.conn_cp, shape.conn_ids, shape.conn_status = (
            np.fromiter((codes[row[i]] for row in conn_rows), np.int32, len(conn_rows)) for i in (3, 4, 5, 6)
        )
        cp_status, park, conn_status, conn_value = {}, {}, {}, {}
        for m, (path, _) in enumerate(found):
            if len(path) == 4 and path[1] == "evses" and path[3] in ("status", "parkingsensor_status"):
                (cp_status if path[3] == "status" else park)[evse_row[path[0], path[2]]] = m
            elif len(path) == 6 and path[1] == "evses" and path[3] == "connectors" and path[5] == "status":
                conn_status[conn_row[path[0], path[2], path[4]]] = conn_value[path[0], path[2], path[4]] = m
            else:
                return None  # e.g. a station's or operator's status: it may flow into master data
        shape.cp_status_rows, shape.park_rows, shape.conn_status_rows = (
            np.array(list(rows_of), dtype=np.intp) for rows_of in (cp_status, park, conn_status)
        )
        shape.pick_cp, shape.pick_park, shape.pick_conn = (
            _picker(list(p.values())) for p in (cp_status, park, conn_status)
        )
        shape.pick_statuses = _picker([*cp_status.values(), *conn_status.values()])

        shape.quarantined = []
        for rule, level, record_id, reason, record in captured:
            index = None
            if rule == "ratings":  # the connector as it came: its text holds its status
                if id(record) not in conn_of:
                    return None
                index = conn_value.get(conn_of[id(record)])
            text = _RECORD_JSON.encode(record)
            shape.quarantined.append((rule, level, record_id, reason, text, record, index, values[index] if index is not None else None))

        shape.reported = dict.fromkeys((row[4] for row in cp_rows), city)
        shape.reported_connectors = dict.fromkeys((repr(row[4:6]) for row in conn_rows), city)
        shape.master, shape.versions = {}, {}
        for n, (name, keys) in enumerate(MASTER_KEYS.items()):
            cols = tables.columns(TABLE_OF[name])
            positions = [cols.index(k) for k in keys]
            shape.master[name] = [row[:-2] for row in getattr(rows, name)[mark[n]:]]  # without first/last seen
            shape.versions[name] = [tuple(row[p] for p in positions) for row in shape.master[name]]
        return shape

    def matches(self, segments: list[bytes]) -> bool:
        return segments == self.segments

    def ready(self, rows: _Rows, values: list[bytes]) -> bool:
        """Whether an answer with these status values gives the learnt tables: every status is one of the
        vocabulary as `_status` returns it, and no charging point or connector of the city was reported by
        another city in this poll (else the full path quarantines it)."""
        return (
            (_STATUS_SET.issuperset(values) or _STATUS_SET.issuperset(self.pick_statuses(values)))
            and rows.reported.keys().isdisjoint(self.reported.keys())  # (iterates the smaller)
            and rows.reported_connectors.keys().isdisjoint(self.reported_connectors.keys())
        )

    def apply(self, rows: _Rows, city: str, poll_time: datetime, values: list[bytes]) -> None:
        """The city's rows of this poll: the learnt ones with these status values."""
        rows.flush_status_rows()
        time_ns = _ns(poll_time)
        code = rows.strings.of_bytes.__getitem__
        rows.facts["status_chargingpoints"].add(len(self.cp_ids), [
            rows.slot_ns, time_ns, self.city, self.cp_station, self.cp_ids, self.cp_uids,
            self._filled(self.cp_status, self.cp_status_rows, map(code, self.pick_cp(values))),
            self._filled(self.cp_park, self.park_rows, map(code, self.pick_park(values))),
        ])
        rows.facts["status_connectors"].add(len(self.conn_ids), [
            rows.slot_ns, time_ns, self.city, self.conn_station, self.conn_cp, self.conn_ids,
            self._filled(self.conn_status, self.conn_status_rows, map(code, self.pick_conn(values))),
        ])
        rows.reported.update(self.reported)
        rows.reported_connectors.update(self.reported_connectors)
        for rule, level, record_id, reason, text, record, index, learnt in self.quarantined:
            if index is not None and values[index] != learnt:
                text = _RECORD_JSON.encode({**record, "status": _text_of(values[index])})
            rows.quarantine_text(rule, level, record_id, reason, text)
        seen = rows.seen.get(self)
        if seen is None:  # learnt by an earlier call: its versions join as the full path would add them
            for name, master in self.master.items():
                getattr(rows, name).extend((*row, poll_time, poll_time) for row in master)
            rows.seen[self] = [None, None]
        elif seen[0] is None:
            seen[0] = seen[1] = poll_time
        else:
            seen[0], seen[1] = min(seen[0], poll_time), max(seen[1], poll_time)

    @staticmethod
    def _filled(learnt: np.ndarray, rows: np.ndarray, codes: Iterable[int]) -> np.ndarray:
        """The column `learnt` with these codes put in at `rows` (all of it, most of the time)."""
        if not len(rows):
            return learnt
        codes = np.fromiter(codes, np.int32, len(rows))
        if len(rows) == len(learnt):
            return codes
        column = learnt.copy()
        column[rows] = codes
        return column

    def fold_seen(self, versions: dict[str, dict[tuple, tuple]], first: datetime, last: datetime) -> None:
        """Widen first/last seen of this shape's master-data versions by the polls that reused it."""
        for name, keys in self.versions.items():
            table = versions[name]
            for key in keys:
                old = table[key]
                table[key] = (*old[:-2], min(old[-2], first), max(old[-1], last))


# --- value helpers: the API sends strings for numbers, and newer versions may change types --------------
# json.dumps(value, **these) builds an encoder per call: built once, they write the same text.
_RECORD_JSON = json.JSONEncoder(ensure_ascii=False, default=str)  # quarantined records, attribute hashes
_STABLE_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))  # sorted keys


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
    return _STABLE_JSON.encode(value)


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
    return hashlib.sha1(_RECORD_JSON.encode(attrs).encode("utf-8")).hexdigest()


def _without(record: dict, key: str) -> dict:
    """The record without its children: they are loaded (or quarantined) on their own."""
    return {k: v for k, v in record.items() if k != key}
