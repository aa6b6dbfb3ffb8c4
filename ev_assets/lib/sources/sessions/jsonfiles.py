"""The JSON session formats, small enough per file to check item by item in plain Python: Caltech ACN-Data
sessions and charging-event logs (JSON Lines)."""

from __future__ import annotations

import gzip
import json
import zlib
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

from ev_assets.lib import tables
from ev_assets.lib.values import record_json
from ev_assets.lib.sources.sessions.records import Parsed, RowError, _number, _required_text, _text, quarantine_row

EVENT_TYPES = {"started": "start", "updated": "progress", "ended": "complete"}


# --- ACN-Data sessions ---------------------------------------------------------------------------------------


def _rfc1123(value: Any, key: str) -> datetime | None:
    """An RFC-1123 time string (`Sat, 01 May 2021 20:42:47 GMT`) as an aware UTC datetime."""
    if value is None:
        return None
    try:
        parsed = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        raise RowError(f"unparsable {key} {value!r}") from None
    if parsed is None:  # older Pythons return None instead of raising
        raise RowError(f"unparsable {key} {value!r}")
    if parsed.tzinfo is None:  # "-0000": UTC without a claim about the local zone
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _acn_items(name: str, data: bytes) -> list[Any]:
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{name}: not a valid JSON document of ACN sessions: {exc}") from None
    if isinstance(document, dict) and isinstance(document.get("_items"), list):
        return document["_items"]
    if isinstance(document, list):
        return document
    found = type(document).__name__
    raise ValueError(f'{name}: expected a JSON list of ACN sessions or {{"_items": [...]}}, found a {found}')


def _acn_row(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise RowError(f"session is not a JSON object but {type(item).__name__}")
    session_id = _required_text(item, "sessionID")
    if item.get("connectionTime") is None:
        raise RowError("missing connectionTime")
    connection = _rfc1123(item.get("connectionTime"), "connectionTime")
    disconnect = _rfc1123(item.get("disconnectTime"), "disconnectTime")
    if disconnect is not None and disconnect < connection:
        raise RowError("disconnectTime before connectionTime")
    inputs = item.get("userInputs")
    if inputs is not None and not isinstance(inputs, list):
        raise RowError(f"userInputs is not a list: {inputs!r}")
    first, last = (inputs[0], inputs[-1]) if inputs else ({}, {})
    for which, value in (("first", first), ("last", last)):
        if not isinstance(value, dict):
            raise RowError(f"{which} of userInputs is not an object: {value!r}")
    return {
        "session_id": session_id,
        "site_id": _text(item.get("siteID")),
        "cluster_id": _text(item.get("clusterID")),
        "station_id": _text(item.get("stationID")),
        "space_id": _text(item.get("spaceID")),
        "user_id": _text(item.get("userID")),
        "connection_time": connection,
        "disconnect_time": disconnect,
        "done_charging_time": _rfc1123(item.get("doneChargingTime"), "doneChargingTime"),
        "kwh_delivered": _number(item.get("kWhDelivered"), "kWhDelivered"),
        "kwh_requested": _number(last.get("kWhRequested"), "kWhRequested"),
        "minutes_available": _number(last.get("minutesAvailable"), "minutesAvailable"),
        "first_kwh_requested": _number(first.get("kWhRequested"), "kWhRequested"),
        "first_minutes_available": _number(first.get("minutesAvailable"), "minutesAvailable"),
        "first_input_at": _rfc1123(first.get("modifiedAt"), "userInputs[0].modifiedAt"),
        "timezone": _text(item.get("timezone")),
    }


def parse_acn_sessions(source: str, name: str, data: bytes, raw_file: str) -> Parsed:
    rows, quarantine = [], []
    for n, item in enumerate(_acn_items(name, data), start=1):
        try:
            rows.append({**_acn_row(item), "raw_file": raw_file})
        except RowError as exc:
            record_id = _text(item.get("sessionID")) if isinstance(item, dict) else None
            quarantine.append(quarantine_row(source, record_id or f"item {n}", str(exc), record_json(item), raw_file))
    return Parsed(tables.frame("acn_sessions", rows), tables.frame("quarantine", quarantine))


# --- charging-event logs (JSON Lines) ------------------------------------------------------------------------------


def event_lines(name: str, data: bytes) -> list[bytes]:
    """The lines of an event log, gunzipped first when it is gzip (by its magic bytes, not its name)."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{name}: corrupt gzip event log: {exc}") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.split(b"\n")


def _iso_time(value: Any) -> datetime:
    if value is None:
        raise RowError("missing timestamp")
    try:
        parsed = datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise RowError(f"unparsable timestamp {value!r}") from None
    if parsed.tzinfo is None:
        raise RowError(f"timestamp {value!r} has no UTC offset")
    return parsed.astimezone(timezone.utc)


def _object(item: dict, key: str) -> dict:
    value = item.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RowError(f"{key} is not an object: {value!r}")
    return value


def event_row(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise RowError(f"event is not a JSON object but {type(item).__name__}")
    ids = {key: _required_text(item, key) for key in ("eventId", "transactionId", "stationId")}
    kind = _required_text(item, "eventType")
    if kind.lower() not in EVENT_TYPES:
        raise RowError(f"unknown eventType {kind!r} (expected Started, Updated or Ended)")
    meter, cost = _object(item, "meterValue"), _object(item, "cost")
    energy_wh = _number(meter.get("energyWh"), "meterValue.energyWh")
    power_w = _number(meter.get("powerW"), "meterValue.powerW")
    return {
        "event_id": ids["eventId"],
        "transaction_id": ids["transactionId"],
        "station_id": ids["stationId"],
        "connector_id": _text(item.get("connectorId")),
        "event_type": EVENT_TYPES[kind.lower()],
        "event_time": _iso_time(item.get("timestamp")),
        "meter_kwh": None if energy_wh is None else energy_wh / 1000.0,
        "power_kw": None if power_w is None else power_w / 1000.0,
        "cost": _number(cost.get("total"), "cost.total"),
        "currency": _text(cost.get("currency")),
    }


def parse_charging_events(source: str, name: str, data: bytes, raw_file: str) -> Parsed:
    rows, quarantine = [], []
    for n, raw in enumerate(event_lines(name, data), start=1):
        line = raw.decode("utf-8", errors="replace").rstrip("\r")
        if not line.strip():
            continue
        try:
            try:
                item = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise RowError(f"malformed JSON on line {n}: {getattr(exc, 'msg', exc)}") from None
            rows.append({**event_row(item), "raw_file": raw_file})
        except RowError as exc:
            quarantine.append(quarantine_row(source, f"line {n}", str(exc), line, raw_file))
    return Parsed(tables.frame("charging_events", rows), tables.frame("quarantine", quarantine))
