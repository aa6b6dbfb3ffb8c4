"""What travels on the broker, as JSON, each message with a stable id (the broker's de-duplication key and the
landing store's idempotency key).

Status stream (`EV_STATUS`), built from the batch flattener's rows (`live.changes`):
- `ev.status.change`: one charging point or connector whose status changed since the previous poll of its city
  (or that is new): `{"type": "status_change", "table", "poll_slot", "poll_time", "city_slug", "station_id",
  "charging_point_id", "connector_id", "status", "previous_status"}`; id `<table>|<charging point>|<connector>|<slot>`.
- `ev.status.poll`: one per city and stored poll, after its changes: `{"type": "poll_complete", "city_slug",
  "poll_slot", "poll_time", "ok", "items", "changes"}`; id `poll|<city>|<slot>`.

Events stream (`EV_EVENTS`): charging events in the OCPP-like shape of the JSON Lines event logs that the
`charging_events` source reads (`eventId`, `transactionId`, `stationId`, `connectorId`, `eventType`, `timestamp`,
`meterValue.energyWh`, `meterValue.powerW`, `cost.total`, `cost.currency`), parsed by the same function
(`sources.sessions.jsonfiles.event_row`). `eventType` Started / Updated / Ended carry the meaning of OCPP's
StartTransaction / MeterValues / StopTransaction; subjects `ev.events.start`, `ev.events.meter`, `ev.events.stop`;
id `eventId`.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pandas as pd

from ev_assets.lib.sources.chargecloud import STATUSES
from ev_assets.lib.sources.sessions.jsonfiles import event_row
from ev_assets.lib.sources.sessions.records import RowError

STATUS_TABLES = ("status_chargingpoints", "status_connectors")
EVENT_SUBJECTS = {"started": "ev.events.start", "updated": "ev.events.meter", "ended": "ev.events.stop"}
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

Outgoing = tuple[str, bytes, str]  # (subject, payload, message id)


class MessageError(ValueError):
    """A message that cannot be landed as it is: quarantined with this reason."""


def iso(t: datetime | pd.Timestamp | None) -> str | None:
    """UTC, microseconds, `Z`: one text form, so that stored times sort as text."""
    if t is None or t is pd.NaT:
        return None
    if isinstance(t, pd.Timestamp):
        t = t.to_pydatetime()
    if t.tzinfo is not None:
        t = t.astimezone(timezone.utc).replace(tzinfo=None)
    return t.isoformat(timespec="microseconds") + "Z"  # isoformat: several times faster than strftime


def status_change(table: str, row: dict[str, Any], previous: str | None) -> Outgoing:
    connector = row.get("connector_id") if table == "status_connectors" else None
    body = {
        "type": "status_change", "table": table, "poll_slot": iso(row["poll_slot"]), "poll_time": iso(row["poll_time"]),
        "city_slug": row["city_slug"], "station_id": row["station_id"], "charging_point_id": row["charging_point_id"],
        "connector_id": connector, "status": row["status"], "previous_status": previous,
    }
    msg_id = f"{table}|{row['charging_point_id']}|{connector or ''}|{body['poll_slot']}"
    return "ev.status.change", _ENCODE.encode(body).encode(), msg_id


def poll_complete(city: str, slot: datetime, poll_time: datetime | None, ok: bool, items: int, changes: int) -> Outgoing:
    body = {"type": "poll_complete", "city_slug": city, "poll_slot": iso(slot), "poll_time": iso(poll_time),
            "ok": bool(ok), "items": int(items), "changes": int(changes)}
    return "ev.status.poll", _ENCODE.encode(body).encode(), f"poll|{city}|{body['poll_slot']}"


def charging_event(event: dict[str, Any]) -> Outgoing:
    """An event object of the JSON Lines logs, published as it is."""
    kind = str(event.get("eventType", "")).lower()
    subject = EVENT_SUBJECTS.get(kind, "ev.events.other")  # an unknown type is still landed: quarantined there
    return subject, _ENCODE.encode(event).encode(), str(event.get("eventId") or "")


# --- parsing what was consumed -------------------------------------------------------------------------------------
def _object(data: bytes) -> dict[str, Any]:
    try:
        body = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MessageError(f"malformed JSON: {getattr(exc, 'msg', exc)}") from None
    if not isinstance(body, dict):
        raise MessageError(f"not a JSON object but {type(body).__name__}")
    return body


def _time(body: dict, key: str, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise MessageError(f"missing {key}")
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise MessageError(f"unparsable {key} {value!r}") from None
    if parsed.tzinfo is None:
        raise MessageError(f"{key} {value!r} has no UTC offset")
    return iso(parsed)


def _text(body: dict, key: str, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise MessageError(f"missing {key}")
        return None
    if not isinstance(value, (str, int)):
        raise MessageError(f"{key} is not text: {value!r}")
    return str(value)


def parse_status(data: bytes) -> tuple[str, dict[str, Any]]:
    """("status_change" | "poll_complete", row) of a status-stream message; MessageError when it is unusable."""
    body = _object(data)
    kind = body.get("type")
    if kind == "status_change":
        table = _text(body, "table")
        if table not in STATUS_TABLES:
            raise MessageError(f"unknown table {table!r}")
        status = _text(body, "status")
        if status not in STATUSES:
            raise MessageError(f"unknown status {status!r}")
        row = {"table_name": table, "poll_slot": _time(body, "poll_slot"), "poll_time": _time(body, "poll_time"),
               "city_slug": _text(body, "city_slug"), "station_id": _text(body, "station_id"),
               "charging_point_id": _text(body, "charging_point_id"),
               "connector_id": _text(body, "connector_id", required=table == "status_connectors") or "",
               "status": status, "previous_status": _text(body, "previous_status", required=False)}
        return kind, row
    if kind == "poll_complete":
        return kind, {"city_slug": _text(body, "city_slug"), "poll_slot": _time(body, "poll_slot"),
                      "poll_time": _time(body, "poll_time", required=False), "ok": bool(body.get("ok")),
                      "items": int(body.get("items") or 0), "changes": int(body.get("changes") or 0)}
    raise MessageError(f"unknown message type {kind!r}")


def parse_event(data: bytes) -> dict[str, Any]:
    """The `charging_events` row of an events-stream message (the batch parser's), times as `iso` text."""
    body = _object(data)
    try:
        row = event_row(body)
    except RowError as exc:
        raise MessageError(str(exc)) from None
    row["event_time"] = iso(row["event_time"])
    return row
