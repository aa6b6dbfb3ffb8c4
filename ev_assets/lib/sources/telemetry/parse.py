"""Recorded telemetry files (CSV or Parquet) -> rows of `raw.vehicle_telemetry`, and the rows that cannot be loaded.

A file is read as a whole or not at all (`TelemetryFileError`: corrupt compression, not a Parquet file, not
UTF-8 text, no header, none of the columns of a vehicle id, time, state of charge or plug flag). A file that
is read never loses a row silently: a row with a value that cannot be parsed goes to the quarantine with the
reason, and the rows beside it load. Duplicates and order are the pull's business (`combine`), since a
reading can be repeated in another file.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ev_assets.lib import tables
from ev_assets.lib.values import record_json

SOURCE = TABLE = "vehicle_telemetry"
MISSING = {"", "na", "nan", "null", "none", "n/a"}
TRUE = {"true", "t", "yes", "y", "1", "1.0", "on", "plugged", "connected"}
FALSE = {"false", "f", "no", "n", "0", "0.0", "off", "unplugged", "disconnected"}
# header names (lower case, spaces and dashes as underscores) of each required column, in order of preference
ALIASES: dict[str, tuple[str, ...]] = {
    "vehicle_id": ("vehicle_id", "vehicleid", "vehicle", "vin", "car_id", "vehicle_uid"),
    "reading_at": ("reading_at", "timestamp", "time", "ts", "datetime", "recorded_at", "timestamp_utc", "time_utc"),
    "soc_pct": ("soc_pct", "soc", "soc_percent", "state_of_charge", "state_of_charge_pct", "battery_level",
                "battery_soc"),
    "plugged_in": ("plugged_in", "plugged", "is_plugged_in", "plugged_in_flag", "charger_connected",
                   "cable_connected", "plug_state"),
}
_OFFSET = re.compile(r"(Z|[+-]\d{2}(:?\d{2})?)$", re.IGNORECASE)


class TelemetryFileError(ValueError):
    """A file that cannot be read as a whole; the message says why (without the file name, shown beside it)."""


class MissingColumns(TelemetryFileError):
    """A readable table without the telemetry columns: in a shared replay root, likely another source's file."""


@dataclass
class Parsed:
    table: pd.DataFrame  # the columns of TABLES["vehicle_telemetry"], in file order
    quarantine: pd.DataFrame  # the columns of TABLES["quarantine"]
    unsorted: bool = False  # some vehicle's readings were not in time order in the file
    extra_columns: list[str] = field(default_factory=list)


def quarantine_row(record_id: str, reason: str, record: str, raw_file: str, level: str = "row") -> dict[str, str]:
    """A vehicle_telemetry row in raw.quarantine."""
    return tables.quarantine_row(SOURCE, record_id, reason, record, raw_file, level=level)


def is_parquet(name: str) -> bool:
    return _plain_name(name).endswith((".parquet", ".pq"))


def is_csv(name: str) -> bool:
    return _plain_name(name).endswith(".csv")


def _plain_name(name: str) -> str:
    name = name.lower()
    return name[:-3] if name.endswith(".gz") else name


# --- whole files -------------------------------------------------------------------------------------------------
def parse(name: str, data: bytes, raw_file: str = "") -> Parsed:
    """One recorded file (`name` says the format: `.csv`, `.parquet`, optionally `.gz`); raises
    TelemetryFileError when it cannot be read as a whole."""
    raw_file = raw_file or name
    frame, kind = read_frame(name, data)
    return parse_frame(frame, kind, raw_file)


def parse_or_quarantine(name: str, data: bytes, raw_file: str = "") -> Parsed:
    """Like `parse`, but a file that cannot be read becomes one quarantine row (level `file`), so the good files
    of a pull still load beside it."""
    try:
        return parse(name, data, raw_file)
    except TelemetryFileError as exc:
        row = quarantine_row(name, str(exc), "", raw_file or name, level="file")
    return Parsed(tables.frame(TABLE), tables.frame("quarantine", [row]))


def read_frame(name: str, data: bytes) -> tuple[pd.DataFrame, str]:
    """The file's cells: (frame, "csv") with every cell as text and a `__line__` column, or (frame, "parquet")."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise TelemetryFileError(f"corrupt gzip ({type(exc).__name__}: {exc})") from None
    if not data.strip():
        raise TelemetryFileError("empty file")
    if data[:4] == b"PAR1":
        try:
            return pd.read_parquet(io.BytesIO(data)), "parquet"
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise TelemetryFileError(f"not a readable Parquet file ({type(exc).__name__}: {exc})") from None
    if is_parquet(name):
        raise TelemetryFileError("not a Parquet file (no PAR1 magic bytes at its start)")
    return _read_csv(data), "csv"


def _read_csv(data: bytes) -> pd.DataFrame:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TelemetryFileError(f"not UTF-8 text ({exc})") from None
    if "\x00" in text:
        raise TelemetryFileError("binary data, not a CSV file")
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, None)
    if not header or not any(h.strip() for h in header):
        raise TelemetryFileError("no header line")
    rows, lines, bad = [], [], []
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                bad.append((reader.line_num, row))
                continue
            rows.append(row)
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise TelemetryFileError(f"not a readable CSV file ({exc})") from None
    frame = pd.DataFrame(rows, columns=[h.strip() for h in header], dtype=object)
    frame["__line__"] = lines
    frame.attrs["bad_lines"] = [(n, row, len(header)) for n, row in bad]
    frame.attrs["delimiter"] = delimiter
    return frame


def columns_of(frame: pd.DataFrame) -> dict[str, str]:
    """Required column -> the file's column that holds it; TelemetryFileError naming what is missing."""
    normal = {}
    for col in frame.columns:
        if col == "__line__":
            continue
        normal.setdefault(re.sub(r"[\s\-]+", "_", str(col).strip().lower()), col)
    found, missing = {}, []
    for column, aliases in ALIASES.items():
        match = next((normal[a] for a in aliases if a in normal), None)
        if match is None:
            missing.append(f"{column} (one of {', '.join(aliases)})")
        else:
            found[column] = match
    if missing:
        shown = ", ".join(str(c) for c in frame.columns if c != "__line__")
        raise MissingColumns(f"no column for {'; '.join(missing)}; the file has: {shown or 'no columns'}")
    return found


# --- rows --------------------------------------------------------------------------------------------------------
def parse_frame(frame: pd.DataFrame, kind: str, raw_file: str) -> Parsed:
    found = columns_of(frame)
    extra_cols = [c for c in frame.columns if c not in found.values() and c != "__line__"]
    if kind == "csv":
        record_ids = [f"line {n}" for n in frame["__line__"]]
    else:
        record_ids = [f"row {i + 1}" for i in range(len(frame))]
    vehicle = _vehicle_ids(frame[found["vehicle_id"]])
    when, when_problem = _times(frame[found["reading_at"]])
    soc, soc_problem = _soc(frame[found["soc_pct"]])
    plugged, plugged_problem = _flags(frame[found["plugged_in"]])
    problems = [
        pd.Series(np.where(vehicle.isna(), "no vehicle id", None), index=frame.index, dtype=object),
        when_problem, soc_problem, plugged_problem,
    ]
    reason = pd.Series([
        "; ".join(p for p in parts if p) or None for parts in zip(*(p.tolist() for p in problems))
    ], index=frame.index, dtype=object)
    bad = reason.notna().to_numpy()

    records = frame.drop(columns=["__line__"], errors="ignore").to_dict("records")
    quarantined = [
        quarantine_row(record_ids[i], reason.iat[i], record_json({k: _plain(v) for k, v in records[i].items()}), raw_file)
        for i in np.flatnonzero(bad)
    ]
    for line, row, expected in frame.attrs.get("bad_lines", []):
        delimiter = frame.attrs.get("delimiter", ",")
        quarantined.append(quarantine_row(f"line {line}", f"{len(row)} fields where the header has {expected}",
                                          delimiter.join(row), raw_file))
    good = ~bad
    extra = [
        record_json(values) if (values := {c: _plain(records[i][c]) for c in extra_cols if not _missing(records[i][c])})
        else None
        for i in np.flatnonzero(good)
    ]
    table = tables.frame(TABLE, pd.DataFrame({
        "vehicle_id": vehicle[good].to_numpy(),
        "reading_at": when[good].to_numpy(),
        "soc_pct": soc[good].to_numpy(),
        "plugged_in": plugged[good].astype(bool).to_numpy(),
        "extra": extra,
        "raw_file": raw_file,
    }))
    unsorted = bool((table.groupby("vehicle_id", sort=False)["reading_at"].diff() < pd.Timedelta(0)).any())
    quarantine = tables.frame("quarantine", sorted(quarantined, key=_line_order))
    return Parsed(table, quarantine, unsorted, extra_cols)


def _line_order(row: dict) -> tuple[int, str]:
    number = row["record_id"].rsplit(" ", 1)[-1]
    return (int(number) if number.isdigit() else 0, row["record_id"])


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if value is pd.NaT or value is pd.NA:
        return True
    return isinstance(value, str) and value.strip().lower() in MISSING


def _plain(value: Any) -> Any:
    """A cell as a JSON value: numbers and booleans as they are, times as ISO text, NaN as null."""
    if _missing(value):
        return None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (pd.Timestamp,)):
        return value.isoformat()
    return value


# A whole column at once (stripped, None for missing), not one value as the helpers of `lib.values`.
def _text(series: pd.Series) -> pd.Series:
    return series.map(lambda v: None if _missing(v) else str(v).strip()).astype(object)


def _vehicle_ids(series: pd.Series) -> pd.Series:
    return _text(series)


def _times(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """UTC instants and, per row, why there is none. A time must carry its UTC offset (or Z): a wall time
    without one is ambiguous (whose clock, which DST?), so it is quarantined rather than guessed."""
    index = series.index
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        if getattr(series.dt, "tz", None) is None:
            problem = np.where(series.isna(), "no time", "time without a UTC offset (a naive Parquet timestamp) is "
                               "ambiguous: store it as a timestamp with a time zone")
            none = pd.Series(pd.NaT, index=index, dtype="datetime64[ns, UTC]")
            return none, pd.Series(problem, index=index, dtype=object)
        when = series.dt.tz_convert("UTC")
        return when, pd.Series(np.where(when.isna(), "no time", None), index=index, dtype=object)
    text = _text(series)
    when = pd.to_datetime(text.where(text.map(lambda v: v is not None and bool(_OFFSET.search(v)))),
                          utc=True, format="ISO8601", errors="coerce")
    parsed_naive = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    problem = []
    for raw, aware, naive in zip(text, when, parsed_naive):
        if raw is None:
            problem.append("no time")
        elif not pd.isna(aware):
            problem.append(None)
        elif not pd.isna(naive):
            problem.append(f"time {raw!r} has no UTC offset (Z or +01:00), so it is ambiguous")
        else:
            problem.append(f"time {raw!r} is not an ISO 8601 time")
    return when, pd.Series(problem, index=index, dtype=object)


def _soc(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        value = series.astype(float)
        raw = series.astype(object)
    else:
        raw = _text(series)
        value = pd.to_numeric(raw.map(lambda v: v.replace(",", ".") if isinstance(v, str) and "." not in v else v),
                              errors="coerce").astype(float)
    problem = []
    for r, v in zip(raw, value):
        if _missing(r):
            problem.append("no soc_pct")
        elif not np.isfinite(v):
            problem.append(f"soc_pct {r!r} is not a number")
        elif not 0 <= v <= 100:
            problem.append(f"soc_pct {v:g} outside 0..100 %")
        else:
            problem.append(None)
    return value, pd.Series(problem, index=series.index, dtype=object)


def _flags(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    flags, problem = [], []
    for v in series:
        if isinstance(v, (bool, np.bool_)):
            flags.append(bool(v))
            problem.append(None)
            continue
        if _missing(v):
            flags.append(False)
            problem.append("no plugged_in flag")
            continue
        word = str(v).strip().lower()
        if word in TRUE:
            flags.append(True)
            problem.append(None)
        elif word in FALSE:
            flags.append(False)
            problem.append(None)
        else:
            flags.append(False)
            problem.append(f"plugged_in {str(v)!r} is not a yes/no flag (true/false, 1/0, yes/no)")
    return pd.Series(flags, index=series.index, dtype=bool), pd.Series(problem, index=series.index, dtype=object)


# --- a pull of several files ----------------------------------------------------------------------------------
@dataclass
class Combined:
    table: pd.DataFrame  # one row per (vehicle_id, reading_at), sorted by vehicle and time
    quarantine: pd.DataFrame
    stats: dict[str, int]


def combine(parsed: list[Parsed]) -> Combined:
    """The rows of all files of a pull: one per (vehicle_id, reading_at), sorted by vehicle and time.

    A reading repeated with the same state of charge and plug flag (the same export twice, an overlap between
    files) counts once (`duplicate_readings`). A repeat with different values cannot both be true: the first (in
    file order) is kept, the other quarantined with both values (`conflicting_duplicates`). Files whose rows were
    out of time order are counted (`unsorted_files`); the table is sorted either way.
    """
    rows = pd.concat([p.table for p in parsed], ignore_index=True) if parsed else tables.frame(TABLE)
    bad = [p.quarantine for p in parsed if len(p.quarantine)]
    repeated = rows.duplicated(["vehicle_id", "reading_at"], keep="first")
    kept = rows[~repeated]
    conflicts = []
    if repeated.any():
        first = kept.set_index(["vehicle_id", "reading_at"])
        for row in rows[repeated].itertuples(index=False):
            keep = first.loc[(row.vehicle_id, row.reading_at)]
            if abs(keep.soc_pct - row.soc_pct) < 1e-9 and bool(keep.plugged_in) == bool(row.plugged_in):
                continue
            when = row.reading_at.isoformat()
            reason = (f"another reading of {row.vehicle_id} at {when} was kept (soc_pct {keep.soc_pct:g}, plugged_in "
                      f"{bool(keep.plugged_in)}, from {keep.raw_file}); this one differs")
            record = record_json({"vehicle_id": row.vehicle_id, "reading_at": when, "soc_pct": row.soc_pct,
                            "plugged_in": bool(row.plugged_in), "extra": row.extra})
            conflicts.append(quarantine_row(f"{row.vehicle_id} {when}", reason, record, row.raw_file))
    if conflicts:
        bad.append(tables.frame("quarantine", conflicts))
    table = kept.sort_values(["vehicle_id", "reading_at"], kind="stable").reset_index(drop=True)
    quarantine = pd.concat(bad, ignore_index=True) if bad else tables.frame("quarantine")
    stats = {
        "files": len(parsed),
        "readings": len(table),
        "vehicles": int(table["vehicle_id"].nunique()),
        "duplicate_readings": int(repeated.sum()) - len(conflicts),
        "conflicting_duplicates": len(conflicts),
        "unsorted_files": sum(p.unsorted for p in parsed),
        "quarantined_rows": int((quarantine["level"] == "row").sum()) - len(conflicts),
        "unreadable_files": int((quarantine["level"] == "file").sum()),
    }
    return Combined(table, quarantine, stats)
