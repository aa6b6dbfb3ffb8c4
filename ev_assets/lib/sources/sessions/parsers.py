"""Parsers from recorded session files to the `raw.*` tables (formats: see the package docstring).

Each parser returns the good rows and the quarantined ones; a bad row never takes its file down with it.
The Norway CSVs are parsed column-wise with pandas (Dataset 1 has ~6,900 rows and the full Dataset 2 far
more); the JSON formats are small enough per file to check item by item in plain Python.
"""

from __future__ import annotations

import csv
import gzip
import json
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Callable

import numpy as np
import pandas as pd

from ev_assets.lib import tables

NA_TOKENS = ("", "NA")
OSLO = "Europe/Oslo"
NORWAY_TIME_FORMATS = ("%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S")
EVENT_TYPES = {"started": "start", "updated": "progress", "ended": "complete"}


@dataclass
class Parsed:
    table: pd.DataFrame  # the columns of TABLES[source], in order
    quarantine: pd.DataFrame  # the columns of TABLES["quarantine"]


def parse(source: str, name: str, data: bytes, raw_file: str = "") -> Parsed:
    """Parse one recorded file of `source`; `raw_file` (default: `name`) fills the tables' raw_file column."""
    if source not in PARSERS:
        raise ValueError(f"unknown session source {source!r}; expected one of {', '.join(PARSERS)}")
    return PARSERS[source](source, name, data, raw_file or name)


def parse_or_quarantine(source: str, name: str, data: bytes, raw_file: str = "") -> Parsed:
    """Like `parse`, but a file that cannot be read as a whole becomes one quarantine row (level `file`, the
    file name as record_id) instead of an error, so the good files of a pull still load beside it."""
    if source not in PARSERS:
        raise ValueError(f"unknown session source {source!r}; expected one of {', '.join(PARSERS)}")
    try:
        return parse(source, name, data, raw_file)
    except ValueError as exc:
        reason = file_error(name, exc)
    row = {**quarantine_row(source, name, reason, "", raw_file or name), "level": "file"}
    return Parsed(tables.frame(source), tables.frame("quarantine", [row]))


def file_error(name: str, exc: ValueError) -> str:
    """The reason a whole file failed, without the file name the parsers put in front (it is shown beside)."""
    return str(exc).removeprefix(f"{name}: ")


# --- typed frames ------------------------------------------------------------------------------------------


def quarantine_row(source: str, record_id: str, reason: str, record: str, raw_file: str) -> dict[str, str]:
    return {"source": source, "partition_key": "", "level": "row", "record_id": record_id, "reason": reason,
            "record": record, "raw_file": raw_file}


def _json_text(item: Any) -> str:
    return json.dumps(item, ensure_ascii=False, default=str)


# --- Norway CSVs (session reports, hourly loads) -------------------------------------------------------------


@dataclass(frozen=True)
class CsvSpec:
    """How one Norway CSV maps to its table: header name of each column and which columns need checks."""

    table: str
    header: dict[str, str]  # table column -> header name in the file
    times: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    order: tuple[str, str, str] | None = None  # (start, end, reason): end must not be before start
    constants: tuple[tuple[str, str], ...] = ()


REPORTS = CsvSpec(
    table="session_reports",
    header={"session_id": "session_ID", "garage_id": "Garage_ID", "user_id": "User_ID", "user_type": "User_type",
            "shared_id": "Shared_ID", "plugin_at": "Start_plugin", "plugout_at": "End_plugout",
            "energy_kwh": "El_kWh", "duration_hours": "Duration_hours"},
    times=("plugin_at", "plugout_at"),
    numbers=("energy_kwh", "duration_hours"),
    required=("session_id", "plugin_at"),
    order=("plugin_at", "plugout_at", "plug-out before plug-in"),
    constants=(("timezone", OSLO),),
)

HOURLY = CsvSpec(
    table="hourly_loads",
    header={"date_from": "date_from", "date_to": "date_to", "user_id": "User_ID", "session_id": "session_ID",
            "synthetic_3_6kw": "Synthetic_3_6kW", "synthetic_7_2kw": "Synthetic_7_2kW",
            "flex_3_6kw": "Flex_3_6kW", "flex_7_2kw": "Flex_7_2kW"},
    times=("date_from", "date_to"),
    numbers=("synthetic_3_6kw", "synthetic_7_2kw", "flex_3_6kw", "flex_7_2kw"),
    required=("date_from", "date_to"),
    order=("date_from", "date_to", "date_to before date_from"),
)


def _decode(data: bytes) -> str:
    """UTF-8 (with or without BOM); Windows exports in cp1252 are read as such rather than rejected."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _split_fields(line: str) -> list[str]:
    """`;`-separated fields. The format has no quoting; a quoted field is unquoted, not split inside."""
    if '"' not in line:
        return line.split(";")
    return next(csv.reader([line], delimiter=";"))


def _parse_times(raw: pd.Series) -> pd.Series:
    parsed = pd.to_datetime(raw, format=NORWAY_TIME_FORMATS[0], errors="coerce")
    for fmt in NORWAY_TIME_FORMATS[1:]:
        missing = parsed.isna() & raw.notna()
        if missing.any():
            parsed[missing] = pd.to_datetime(raw[missing], format=fmt, errors="coerce")
    return parsed


def _parse_numbers(raw: pd.Series) -> pd.Series:
    """Decimal commas (`0,3`); a decimal point is accepted too."""
    return pd.to_numeric(raw.str.replace(",", ".", regex=False), errors="coerce").astype("float64")


def parse_norway_csv(spec: CsvSpec, source: str, name: str, data: bytes, raw_file: str) -> Parsed:
    """Parse a Norway CSV column-wise; rows failing any check go to quarantine with all their reasons."""
    lines = [line.rstrip("\r") for line in _decode(data).split("\n")]
    header_at = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_at is None:  # an empty file: nothing to load
        return Parsed(tables.frame(spec.table, []), tables.frame("quarantine", []))

    def quarantined(i: int, reason: str) -> dict[str, str]:
        return quarantine_row(source, f"line {i + 1}", reason, lines[i], raw_file)

    kept, cells, quarantine = _split_rows(spec, name, lines, header_at, quarantined)
    values, reasons = _check_cells(spec, cells)
    bad = np.array([bool(r) for r in reasons], dtype=bool)
    quarantine += [quarantined(kept[pos], "; ".join(reasons[pos])) for pos in np.flatnonzero(bad)]
    quarantine.sort(key=lambda q: int(q["record_id"].split()[1]))

    good = values.loc[~bad].reset_index(drop=True)
    for col, value in spec.constants:
        good[col] = value
    good["raw_file"] = raw_file
    return Parsed(tables.frame(spec.table, good), tables.frame("quarantine", quarantine))


def _split_rows(spec: CsvSpec, name: str, lines: list[str], header_at: int,
                quarantined: Callable[[int, str], dict[str, str]]) -> tuple[list[int], pd.DataFrame, list[dict]]:
    """(line index of each kept row, its cells as stripped text with None for NA, quarantined rows).

    Rows whose field count differs from the header's cannot be mapped to columns and are quarantined here.
    """
    header = _split_fields(lines[header_at])
    index = _header_index(spec, name, header)
    kept: list[int] = []
    rows: list[list[str]] = []
    quarantine: list[dict[str, str]] = []
    for i in range(header_at + 1, len(lines)):
        if not lines[i].strip():
            continue
        try:
            fields = _split_fields(lines[i])
        except csv.Error as exc:
            quarantine.append(quarantined(i, f"unreadable CSV row: {exc}"))
            continue
        if len(fields) != len(header):
            quarantine.append(quarantined(i, f"expected {len(header)} fields, found {len(fields)}"))
            continue
        kept.append(i)
        rows.append([fields[j] for j in index])
    cells = pd.DataFrame(rows, columns=list(spec.header), dtype=object)
    for col in cells.columns:
        cells[col] = cells[col].str.strip()
        cells[col] = cells[col].where(~cells[col].isin(NA_TOKENS), None)
    return kept, cells, quarantine


def _header_index(spec: CsvSpec, name: str, header: list[str]) -> list[int]:
    """Positions of the spec's columns in the header (by name, case-insensitively)."""
    position = {h.strip().lower(): j for j, h in enumerate(header)}
    missing = [h for h in spec.header.values() if h.lower() not in position]
    if missing:
        raise ValueError(
            f"{name}: not a {spec.table} file: header lacks {', '.join(missing)} (found {';'.join(header)})"
        )
    return [position[h.lower()] for h in spec.header.values()]


def _check_cells(spec: CsvSpec, cells: pd.DataFrame) -> tuple[pd.DataFrame, list[list[str]]]:
    """Typed values and, per row, the list of reasons it cannot be loaded (empty: fine)."""
    values = cells.copy()
    reasons: list[list[str]] = [[] for _ in range(len(cells))]

    def flag(mask: pd.Series, message: Callable[[int], str]) -> None:
        for pos in np.flatnonzero(mask.to_numpy()):
            reasons[pos].append(message(pos))

    for col in spec.required:
        flag(cells[col].isna(), lambda pos, col=col: f"missing {spec.header[col]}")
    for col in spec.times:
        values[col] = _parse_times(cells[col])
        flag(values[col].isna() & cells[col].notna(),
             lambda pos, col=col: f"unparsable {spec.header[col]} {cells[col].iat[pos]!r} (expected DD.MM.YYYY HH:MM)")
    for col in spec.numbers:
        values[col] = _parse_numbers(cells[col])
        flag(values[col].isna() & cells[col].notna(),
             lambda pos, col=col: f"unparsable {spec.header[col]} {cells[col].iat[pos]!r} (expected a number)")
    if spec.order:
        start, end, message = spec.order
        flag(values[end] < values[start], lambda pos: message)
    if "energy_kwh" in spec.numbers:
        flag(values["energy_kwh"] < 0, lambda pos: "negative El_kWh")
    return values, reasons


def parse_session_reports(source: str, name: str, data: bytes, raw_file: str) -> Parsed:
    return parse_norway_csv(REPORTS, source, name, data, raw_file)


def parse_hourly_loads(source: str, name: str, data: bytes, raw_file: str) -> Parsed:
    return parse_norway_csv(HOURLY, source, name, data, raw_file)


# --- shared JSON helpers ---------------------------------------------------------------------------------------


class RowError(ValueError):
    """One record cannot be loaded; the message is the quarantine reason."""


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _required_text(item: dict, key: str) -> str:
    value = _text(item.get(key))
    if value is None:
        raise RowError(f"missing {key}")
    return value


def _number(value: Any, what: str) -> float | None:
    """A JSON number (or numeric string) as float; None stays None; anything else is a row error."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise RowError(f"{what} is not a number: {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise RowError(f"{what} is not a number: {value!r}") from None


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
    last = inputs[-1] if inputs else {}
    if not isinstance(last, dict):
        raise RowError(f"last of userInputs is not an object: {last!r}")
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
        "timezone": _text(item.get("timezone")),
    }


def parse_acn_sessions(source: str, name: str, data: bytes, raw_file: str) -> Parsed:
    rows, quarantine = [], []
    for n, item in enumerate(_acn_items(name, data), start=1):
        try:
            rows.append({**_acn_row(item), "raw_file": raw_file})
        except RowError as exc:
            record_id = _text(item.get("sessionID")) if isinstance(item, dict) else None
            quarantine.append(quarantine_row(source, record_id or f"item {n}", str(exc), _json_text(item), raw_file))
    return Parsed(tables.frame("acn_sessions", rows), tables.frame("quarantine", quarantine))


# --- charging-event logs (JSON Lines) ------------------------------------------------------------------------------


def _event_lines(name: str, data: bytes) -> list[bytes]:
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


def _event_row(item: Any) -> dict[str, Any]:
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
    for n, raw in enumerate(_event_lines(name, data), start=1):
        line = raw.decode("utf-8", errors="replace").rstrip("\r")
        if not line.strip():
            continue
        try:
            try:
                item = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise RowError(f"malformed JSON on line {n}: {getattr(exc, 'msg', exc)}") from None
            rows.append({**_event_row(item), "raw_file": raw_file})
        except RowError as exc:
            quarantine.append(quarantine_row(source, f"line {n}", str(exc), line, raw_file))
    return Parsed(tables.frame("charging_events", rows), tables.frame("quarantine", quarantine))


PARSERS: dict[str, Callable[[str, str, bytes, str], Parsed]] = {
    "session_reports": parse_session_reports,
    "hourly_loads": parse_hourly_loads,
    "acn_sessions": parse_acn_sessions,
    "charging_events": parse_charging_events,
}
