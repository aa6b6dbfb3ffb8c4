"""Vehicle telemetry: state of charge and plug flag of each vehicle over time, irregularly sampled.

Like every source it has the three modes of `settings.mode("vehicle_telemetry")`, and every mode hands over the
same thing, recorded files as `(name, raw bytes)`, which one parser (`parse.py`) turns into `raw.vehicle_telemetry`:

- `simulated` (default): a seeded fleet of six cars with different habits (`simulate.py`), as one CSV.
- `replay`: CSV (`*.csv`, `*.csv.gz`) and Parquet (`*.parquet`, `*.pq`) files below
  `settings.replay_folder("vehicle_telemetry")` (`EV_REPLAY_DIR/vehicle_telemetry/`, else `EV_REPLAY_DIR`).
- `live`: there is no public vehicle telemetry API, so live mode reads the same files from a landing folder an
  exporter (a fleet back end, an OEM data export) drops them into: `EV_TELEMETRY_INBOX`. Without it, a
  SettingsError says what to set. The folder is only read; the raw store keeps pulls idempotent.

## Recorded format

One row per reading with (header names matched case-insensitively, aliases in `parse.ALIASES`):
`vehicle_id` (or vin, vehicle, ...), `timestamp` (ISO 8601 *with* a UTC offset or Z; Parquet: a timestamp with a
time zone), `soc_pct` (state of charge 0..100 %, or soc, state_of_charge, ...), `plugged_in` (true/false, 1/0,
yes/no). Every other column is kept, per row, as JSON text in the table's `extra` column. CSV may be separated by
commas, semicolons or tabs.

## Bad input

A file that cannot be read as a whole (corrupt gzip or Parquet, not UTF-8, no header, a required column missing)
is kept in the raw store, becomes one quarantine row (level `file`) and fails the pull's `all_replay_files_read`
check; the files beside it still load. A row with a value that cannot be parsed (no vehicle id, a time without
offset, a state of charge outside 0..100 %, a plug flag that is no yes/no) goes to raw.quarantine with the reason.
A reading repeated for the same vehicle and time counts once; a repeat with different values is quarantined.
Files out of time order are sorted (and counted in the metadata).

In a replay root shared with the other sources, their sub-folders and files (session files, JSON recordings,
OSM extracts) are left to them, and a CSV or Parquet file without the telemetry columns is listed as ignored
rather than unreadable (it may well be someone else's).
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

from ev_assets.lib import replayfiles
from ev_assets.lib.replayfiles import FileReport, is_shared_root, walk_files
from ev_assets.lib.settings import Settings
from ev_assets.lib.sources.telemetry.parse import (
    Combined,
    MissingColumns,
    Parsed,
    TelemetryFileError,
    combine,
    columns_of,
    parse,
    parse_or_quarantine,
    read_frame,
)
from ev_assets.lib.sources.telemetry.simulate import simulated_files

SOURCE = "vehicle_telemetry"
PATTERNS = ("*.csv", "*.csv.gz", "*.parquet", "*.parquet.gz", "*.pq")

__all__ = ["SOURCE", "PATTERNS", "Combined", "Parsed", "TelemetryFileError", "combine", "files_folder", "parse",
           "parse_or_quarantine", "pull_files", "simulated_files"]


def _claims(rel: str) -> str | None:
    """What vehicle telemetry claims of a shared replay root: its sub-folder only. CSV and Parquet files are anyone's
    format, so in a shared root it reads them and passes over those without its columns (see `pull_files`)."""
    return replayfiles.MINE if replayfiles.in_folder(rel, SOURCE) else None


replayfiles.register(SOURCE, _claims)


def files_folder(settings: Settings) -> Path | None:
    """Where the files are read: the replay folder (replay), the inbox (live), None (simulated)."""
    mode = settings.mode(SOURCE)
    if mode == "simulated":
        return None
    if mode == "replay":
        return settings.replay_folder(SOURCE)
    if mode == "live":
        return inbox_folder(settings)
    raise ValueError(f"unknown mode {mode!r} for {SOURCE}")


def inbox_folder(settings: Settings) -> Path:
    return replayfiles.inbox_folder(
        settings.telemetry_inbox, "EV_TELEMETRY_INBOX",
        "vehicle_telemetry is in live mode, but there is no public vehicle telemetry API to call: set "
        "EV_TELEMETRY_INBOX to the folder an exporter drops telemetry CSV / Parquet files into, or run the "
        "source in replay (EV_SOURCE_VEHICLE_TELEMETRY=replay with EV_REPLAY_DIR) or simulated mode",
    )


def matches(name: str) -> bool:
    name = name.lower()
    return not name.startswith(".") and any(fnmatch.fnmatchcase(name, p) for p in PATTERNS)


def pull_files(settings: Settings, report: FileReport | None = None) -> list[tuple[str, bytes]]:
    """The files (name relative to the folder read, raw bytes) one pull brings, in the source's mode.

    Every telemetry file found is returned, readable or not (the raw store keeps what came); with a `report`,
    the ones that cannot be read as a whole are added to it as unreadable, other files as ignored.
    """
    folder = files_folder(settings)
    if folder is None:
        return simulated_files(settings.simulation)
    shared = settings.mode(SOURCE) == "replay" and is_shared_root(settings, SOURCE)
    files = []
    for rel, path in walk_files(folder):
        if shared and replayfiles.claimed_by_other(SOURCE, rel):
            continue
        if not matches(path.name):
            if report is not None and not shared:  # in a shared root, other formats are other sources' business
                report.ignored[rel] = f"not a telemetry file ({', '.join(PATTERNS)})"
            continue
        data = path.read_bytes()
        try:
            file_check(rel, data)
        except MissingColumns as exc:
            if shared:  # a CSV of some other kind beside the recordings of the other sources
                if report is not None:
                    report.ignored[rel] = f"not vehicle telemetry: {exc}"
                continue
            if report is not None:
                report.unreadable[rel] = str(exc)
        except TelemetryFileError as exc:
            if report is not None:
                report.unreadable[rel] = str(exc)
        files.append((rel, data))
    return files


def file_check(name: str, data: bytes) -> None:
    """Raises TelemetryFileError when a file cannot be read as a whole (it would load no row)."""
    frame, _ = read_frame(name, data)
    columns_of(frame)
