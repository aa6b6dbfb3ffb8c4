"""Parsers from recorded session files to the `raw.*` tables (formats: see the package docstring).

Each parser returns the good rows and the quarantined ones; a bad row never takes its file down with it.
The Norway CSVs are parsed column-wise with pandas (Dataset 1 has ~6,900 rows and the full Dataset 2 far
more); the JSON formats are small enough per file to check item by item in plain Python.

The parsers live in `norway.py` (the CSVs) and `jsonfiles.py` (ACN sessions, event logs); `records.py` holds what
they share.
"""

from __future__ import annotations

from typing import Callable

from ev_assets.lib import tables
from ev_assets.lib.sources.sessions.jsonfiles import parse_acn_sessions, parse_charging_events
from ev_assets.lib.sources.sessions.norway import parse_hourly_loads, parse_session_reports
from ev_assets.lib.sources.sessions.records import Parsed, quarantine_row

__all__ = ["PARSERS", "Parsed", "file_error", "parse", "parse_or_quarantine", "quarantine_row"]


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
    row = quarantine_row(source, name, reason, "", raw_file or name, level="file")
    return Parsed(tables.frame(source), tables.frame("quarantine", [row]))


def file_error(name: str, exc: ValueError) -> str:
    """The reason a whole file failed, without the file name the parsers put in front (it is shown beside)."""
    return str(exc).removeprefix(f"{name}: ")


PARSERS: dict[str, Callable[[str, str, bytes, str], Parsed]] = {
    "session_reports": parse_session_reports,
    "hourly_loads": parse_hourly_loads,
    "acn_sessions": parse_acn_sessions,
    "charging_events": parse_charging_events,
}
