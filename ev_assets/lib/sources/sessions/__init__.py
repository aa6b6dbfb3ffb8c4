"""Charging-session sources: session reports, hourly loads, ACN sessions and charging-event logs.

Every source has the three modes of `settings.mode("sessions")`, and every mode hands over the same thing: the
files of the recorded format as `(name, raw bytes)`. One parser per source then turns those bytes into the
`raw.<source>` table of `lib/tables.py`, so replayed, live and simulated data go through the same code.

- `simulated`: generated deterministically from `settings.simulation` (see `simulate.py`).
- `replay`: files under `settings.replay_folder("sessions")`, searched recursively by name (`PATTERNS`).
- `live`: the same patterns in `settings.sessions_inbox` (EV_SESSIONS_INBOX), a landing folder an exporter
  drops files into. The folder is only read, never changed: keeping pulls idempotent is the raw store's job.

File names are paths relative to the searched folder (e.g. `norway/Dataset 1_EV charging reports.csv`), so two
files of the same name in different subfolders stay apart.

## Recorded formats

`session_reports`: "Dataset 1_EV charging reports" of Sørensen et al. (2021). `;`-separated, CRLF, decimal
commas, `DD.MM.YYYY HH:MM` local Europe/Oslo wall time (kept naive, `timezone` = "Europe/Oslo"), `NA` for
missing. Columns are found by header name (extra columns such as `month_plugin` are ignored).

`hourly_loads`: "Dataset 2_Hourly EV loads - Per user", same conventions. An hour without an active session is
one row of `NA`s: it is kept, with NULL user and session.

`acn_sessions`: Caltech ACN-Data sessions, a JSON list or the API's `{"_items": [...]}` wrapper. Times are
RFC-1123 strings in GMT; `kwh_requested` / `minutes_available` come from the last of `userInputs` (NULL when
there is none), `first_kwh_requested` / `first_minutes_available` / `first_input_at` (its `modifiedAt`) from the
first: what the driver said at plug-in, before any later change.

`charging_events`: JSON Lines (optionally gzip-compressed, `.jsonl.gz`), one OCPP-TransactionEvent-like event
per line:

    {"eventId": "9f1c...", "transactionId": "5b2e...", "stationId": "SIM-KOELN-001", "connectorId": 1,
     "eventType": "Started", "timestamp": "2022-01-10T08:00:00Z", "seqNo": 0,
     "meterValue": {"energyWh": 0, "powerW": 11000}}
    {..., "eventType": "Updated", "timestamp": "2022-01-10T08:15:00Z", "meterValue": {"energyWh": 2750, ...}}
    {..., "eventType": "Ended", "timestamp": "2022-01-10T09:30:00Z",
     "meterValue": {"energyWh": 16500, "powerW": 0}, "cost": {"total": 6.44, "currency": "EUR"}}

Required: `eventId`, `transactionId`, `stationId`, `eventType` (Started | Updated | Ended, mapped to start |
progress | complete) and `timestamp` (ISO 8601 *with* a UTC offset or `Z`; a naive time is ambiguous and is
quarantined). `meterValue.energyWh` is the energy delivered since the transaction started; `meterValue`,
`cost` and `connectorId` are optional. Unknown keys (e.g. OCPP's `seqNo`, `triggerReason`) are ignored.

## Bad input

A bad row never fails the pull and is never dropped silently: it goes to the quarantine table with the reason and
the raw line (CSV, JSON Lines) or the JSON item as `record`; `record_id` is `line <n>` (1-based line of the file)
for line formats and the session id (or `item <n>`) for ACN. A file that cannot be read as a whole (malformed
JSON document, missing CSV header columns, corrupt gzip) makes `parse` raise a ValueError naming the file;
`parse_or_quarantine` turns it into one quarantine row (level `file`) instead, so one bad file never keeps the
good ones beside it out.

`pull_files` can fill a `FileReport` with the files of the folder read (replay folder or inbox) that a pull cannot
use: its own files that do not parse as a whole (unreadable), and files no session source recognises (ignored).
"""

from __future__ import annotations

from pathlib import Path

from ev_assets.lib.replayfiles import FileReport, is_shared_root
from ev_assets.lib.sources.sessions.files import PATTERNS, find_files, inbox_folder, unrecognised_files
from ev_assets.lib.sources.sessions.parsers import Parsed, file_error, parse, parse_or_quarantine
from ev_assets.lib.sources.sessions.simulate import simulated_files
from ev_assets.lib.settings import Settings

SOURCES = ("session_reports", "hourly_loads", "acn_sessions", "charging_events")
# What names one record of each table: an export that repeats it (overlapping files, the same month exported again)
# adds nothing; a later pull with other values for it replaces the earlier version. Idle hours of the hourly loads
# have no user or session: identical rows of them count once.
NATURAL_KEYS = {
    "session_reports": ["session_id"],
    "hourly_loads": ["user_id", "session_id", "date_from"],
    "acn_sessions": ["session_id"],
    "charging_events": ["event_id"],
}

__all__ = ["NATURAL_KEYS", "PATTERNS", "SOURCES", "Parsed", "accumulate", "files_folder", "parse",
           "parse_or_quarantine", "pull_files"]


def pull_files(settings: Settings, source: str, report: FileReport | None = None) -> list[tuple[str, bytes]]:
    """The files (name, raw bytes) that one pull of `source` brings, in the mode of the session sources.

    Every file of `source` is returned, readable or not (the raw store keeps what came); with a `report`, the
    ones that do not parse as a whole, and the folder's files that no session source recognises, are added to it.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown session source {source!r}; expected one of {', '.join(SOURCES)}")
    folder = files_folder(settings)
    if folder is None:
        return simulated_files(settings.simulation, source)
    files = find_files(folder, source)
    if report is not None:
        shared = settings.mode("sessions") == "replay" and is_shared_root(settings, "sessions")
        report.ignored.update(unrecognised_files(folder, shared))
        report.unreadable.update(unreadable_files(source, files))
    return files


def files_folder(settings: Settings) -> Path | None:
    """The folder the session files are read from: the replay folder (replay), the inbox (live), None (simulated)."""
    mode = settings.mode("sessions")
    if mode == "simulated":
        return None
    if mode == "replay":
        return settings.replay_folder("sessions")
    if mode == "live":
        return inbox_folder(settings)
    raise ValueError(f"unknown mode {mode!r} for the session sources")


def unreadable_files(source: str, files: list[tuple[str, bytes]]) -> dict[str, str]:
    """name -> reason of the files that do not parse as a whole (a bad row is not that: it is quarantined).

    Parsing once more here is cheap (well under a second for the real files) and tells the pull which files
    its table will not load."""
    found = {}
    for name, data in files:
        try:
            parse(source, name, data)
        except ValueError as exc:
            found[name] = file_error(name, exc)
    return found


def accumulate(source: str, parsed: list[Parsed]) -> Parsed:
    """One table of every pull of `source`, `parsed` oldest pull first: each record once by its natural key
    (`NATURAL_KEYS`). A record repeated with the same values keeps its first file; one that came back with other
    values is taken in its latest version. The quarantine holds what every pull quarantined, once."""
    import pandas as pd  # noqa: PLC0415 - only the table assets need it

    from ev_assets.lib import tables  # noqa: PLC0415

    if not parsed:
        return Parsed(tables.frame(source), tables.frame("quarantine"))
    rows = pd.concat([p.table for p in parsed], ignore_index=True)
    values = [c for c in rows.columns if c != "raw_file"]
    rows = rows.drop_duplicates(subset=values, keep="first")
    rows = rows.drop_duplicates(subset=NATURAL_KEYS[source], keep="last").reset_index(drop=True)
    bad = pd.concat([p.quarantine for p in parsed], ignore_index=True).drop_duplicates(ignore_index=True)
    return Parsed(rows, bad)
