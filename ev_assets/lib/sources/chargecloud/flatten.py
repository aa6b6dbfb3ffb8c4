"""chargecloud flattening: poll envelopes into DataFrames matching `lib.tables.TABLES` exactly.

Bad input is never dropped silently and good records always survive: what cannot be loaded as it is goes to
`quarantine` with the reason, and every city gets one `chargecloud_poll_log` row.

Stored polls are flattened from their bytes (`flatten_polls`): a city's answer is, most of the time, its answer
of ten minutes before with other status values, so once one answer of a city went the full way (`_flatten_*`),
the next ones only have their status values read out of the raw JSON (`shapes.py`). The tables are those of the
full way, always; whatever the shortcut cannot vouch for takes the full way.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Iterable

try:  # splits a stored poll into its cities' raw JSON fast; without it, stored polls are parsed whole
    import msgspec
except ImportError:  # pragma: no cover
    msgspec = None

from ev_assets.lib.sources.chargecloud.contracts import (
    CONNECTOR_RANGES, FAILED_KEY, OK_STATUS_CODE, SUPERSEDED_KEY, _coordinates, _message_problem, _response_problem,
    _status, _time_problem,
)
from ev_assets.lib.sources.chargecloud.rows import FlatPoll, _Rows
from ev_assets.lib.sources.chargecloud.shapes import CityShapes, _CityShape, reusable_shape
from ev_assets.lib.sources.chargecloud.slots import _EPOCH, parse_time, to_utc
from ev_assets.lib.values import boolean, identifier, joined, json_text, number, record_json, text

# A stored poll as {key: raw JSON} or {key: {field: raw JSON}} (msgspec checks the syntax, parses nothing).
_RAW_OBJECT = msgspec.json.Decoder(dict[str, msgspec.Raw]) if msgspec else None
_RAW_ENVELOPE = msgspec.json.Decoder(dict[str, dict[str, msgspec.Raw]]) if msgspec else None
_ANY = msgspec.json.Decoder() if msgspec else None


def flatten_poll(envelope: dict | bytes, slot_start: datetime, raw_file: str = "") -> FlatPoll:
    """The tables of one poll envelope (see the module docstring for what goes where)."""
    return flatten_polls([(envelope, slot_start, raw_file)])


def flatten_polls(polls: Iterable[tuple[dict | bytes, datetime, str]], shapes: CityShapes | None = None) -> FlatPoll:
    """The tables of many `(envelope, slot_start, raw_file)` polls at once.

    An envelope is the parsed poll, or the JSON text of a stored poll as bytes (`rawstore.RawFile.read_bytes`): the
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


def _flatten_envelope(rows: _Rows, envelope: Any) -> None:
    if not isinstance(envelope, dict):
        rows.quarantine("poll", "response", None, "poll envelope is not a JSON object", envelope)
        return
    superseded = envelope.get(SUPERSEDED_KEY)
    rows.superseded = f"loaded from a later attempt: {superseded}" if superseded else None
    for key, response in envelope.items():
        if not str(key).startswith("_"):
            _flatten_city(rows, str(key), response)
    _flatten_failed(rows, envelope, envelope.get(FAILED_KEY, {}))


def _flatten_failed(rows: _Rows, envelope: dict, failed: Any) -> None:
    if not isinstance(failed, dict):
        rows.quarantine("poll", "response", FAILED_KEY, "'_failed' is not a JSON object", failed)
        failed = {}
    for city, reason in failed.items():
        if city not in envelope:  # a city that answered after all has its own log row
            rows.failed_poll(str(city), None, str(reason))


def _flatten_envelope_bytes(rows: _Rows, blob: bytes) -> None:
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
        _flatten_and_learn(rows, city, poll_time, response["data"], data_raw)
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
        reusable = reusable_shape(rows, city, data_raw)
        if reusable is not None:
            shape, values = reusable
            note, poll_time = _city_note(rows, city, head, poll_time)
            shape.apply(rows, city, poll_time, values)
            rows.poll_log.append((rows.slot, city, poll_time, True, note, *shape.counts, rows.raw_file))
            return
    response = {key: json.loads(bytes(value)) if key == "data" else head[key] for key, value in answer.items()}
    _flatten_city(rows, city, response, bytes(data_raw) if usable else None)


def _flatten_and_learn(rows: _Rows, city: str, poll_time: datetime, data: list, data_raw: bytes) -> None:
    """Flatten a city's stations on the full path, and keep its shape when the polls after can reuse it."""
    mark = rows.mark()
    rows.capture = []
    try:
        for station in data:
            _flatten_station(rows, city, poll_time, station)
        captured = rows.capture
    finally:
        rows.capture = None
    shape = _CityShape.learn(rows, city, data, data_raw, mark, captured)
    if shape is not None:
        rows.shapes.add(city, shape)
        rows.learnt(shape)


def _flatten_station(rows: _Rows, city: str, poll_time: datetime, station: Any) -> None:
    if not isinstance(station, dict):
        rows.quarantine("ids", "station", None, f"station is not a JSON object (got {type(station).__name__})", station)
        return
    station_id = identifier(station.get("id"))
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
        station_id, text(station.get("name")), text(station.get("address")), text(station.get("city")),
        text(station.get("postal_code")), text(station.get("country")), lat, lon,
        text(operator.get("name")), text(operator.get("hotline")), text(station.get("owner")),
        boolean(station.get("roaming")),
        boolean(opening.get("twentyfourseven")) if isinstance(opening, dict) else None,
        json_text(opening), text(station.get("directions")),
    )
    # city_slug is where the station was found, not an attribute of it: kept out of the hash.
    rows.stations.append((attrs[0], city, *attrs[1:], _hash(attrs), poll_time, poll_time))
    for evse in _children(rows, station, "evses", "station", station_id):
        _flatten_evse(rows, city, poll_time, station_id, evse)


def _flatten_evse(rows: _Rows, city: str, poll_time: datetime, station_id: str, evse: Any) -> None:
    if not isinstance(evse, dict):
        rows.quarantine("ids", "charging_point", None, f"charging point is not a JSON object (station {station_id})", evse)
        return
    cp_id = identifier(evse.get("id"))
    if cp_id is None:
        reason = f"charging point without id (station {station_id}): skipped with its connectors"
        rows.quarantine("ids", "charging_point", None, reason, evse)
        return
    uid = identifier(evse.get("uid"))
    attrs = (
        cp_id, uid, station_id, text(evse.get("physical_reference")), text(evse.get("floor_level")),
        text(evse.get("vehicle_type")), joined(evse.get("capabilities")), text(evse.get("chargePointPosition")),
        text(evse.get("chargingStationPosition")), joined(evse.get("chargePointParkingSpaceNumbers")),
        text(evse.get("chargePointPublicComment")), boolean(evse.get("roaming")),
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
            (rows.slot, poll_time, city, station_id, cp_id, uid, status, text(evse.get("parkingsensor_status")))
        )
    for connector in _children(rows, evse, "connectors", "charging_point", cp_id):
        _flatten_connector(rows, city, poll_time, station_id, cp_id, connector)


def _flatten_connector(rows: _Rows, city: str, poll_time: datetime, station_id: str, cp_id: str, conn: Any) -> None:
    if not isinstance(conn, dict):
        rows.quarantine("ids", "connector", None, f"connector is not a JSON object (charging point {cp_id})", conn)
        return
    conn_id = identifier(conn.get("id"))
    if conn_id is None:
        rows.quarantine("ids", "connector", None, f"connector without id (charging point {cp_id}): skipped", conn)
        return
    numbers = {}
    for name, (low, high, unit) in CONNECTOR_RANGES.items():
        numbers[name], problem = number(conn.get(name))
        if numbers[name] is not None and not low <= numbers[name] <= high:
            numbers[name], problem = None, f"{conn.get(name)!r} is outside {low:g}..{high:g} {unit}"
        if problem:
            rows.quarantine("ratings", "connector", conn_id, f"{name} {problem}: loaded as NULL", conn)
    attrs = (
        conn_id, cp_id, station_id, text(conn.get("standard")), text(conn.get("format")),
        text(conn.get("power_type")), numbers["ampere"], numbers["voltage"], numbers["max_power"],
        text(conn.get("tariff_id")),
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


def _hash(attrs: tuple) -> str:
    return hashlib.sha1(record_json(attrs).encode("utf-8")).hexdigest()


def _without(record: dict, key: str) -> dict:
    """The record without its children: they are loaded (or quarantined) on their own."""
    return {k: v for k, v in record.items() if k != key}
