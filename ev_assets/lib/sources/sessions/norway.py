"""The Norway CSVs of Sørensen et al. (2021): session reports and hourly loads, parsed column-wise with pandas
(Dataset 1 has ~6,900 rows and the full Dataset 2 far more)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from ev_assets.lib import tables
from ev_assets.lib.sources.sessions.records import Parsed, quarantine_row

NA_TOKENS = ("", "NA")
OSLO = "Europe/Oslo"
NORWAY_TIME_FORMATS = ("%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S")


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
