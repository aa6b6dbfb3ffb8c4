"""Finding the recorded files of each session source in a folder (replay folder or live inbox).

Files are recognised by name, case-insensitively, anywhere below the folder, so EV_REPLAY_DIR can point at a
folder with a `sessions` link, at `shared/data` itself, or at a folder with subfolders `norway/`, `acn/` ...

A file no session source recognises is reported by `unrecognised_files`, never skipped silently; in a replay
root shared with the other sources, their sub-folders and formats are theirs and are not reported.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

from ev_assets.lib import replayfiles
from ev_assets.lib.replayfiles import walk_files
from ev_assets.lib.settings import Settings

# source -> file-name patterns (matched case-insensitively against the file name only)
SOURCE = "sessions"  # the name of the session sources in the settings (`EV_SOURCE_SESSIONS`, `sessions/`)
PATTERNS: dict[str, tuple[str, ...]] = {
    "session_reports": ("*charging reports*.csv", "*session*report*.csv"),
    "hourly_loads": ("*hourly*loads*.csv",),
    "acn_sessions": ("*acn*.json",),
    "charging_events": ("*.jsonl", "*.jsonl.gz"),
}


def matches(source: str, name: str) -> bool:
    """Whether a file name belongs to `source`. Hidden files (an exporter's partial writes) never do."""
    name = name.lower()
    return not name.startswith(".") and any(fnmatch.fnmatchcase(name, p.lower()) for p in PATTERNS[source])


def matches_any(name: str) -> bool:
    """Whether a file name belongs to one of the session sources."""
    return any(matches(source, name) for source in PATTERNS)


def _claims(rel: str) -> str | None:
    """What the session sources read of a shared replay root: their sub-folder, and their files by name anywhere."""
    return replayfiles.MINE if replayfiles.in_folder(rel, SOURCE) or matches_any(rel.rsplit("/", 1)[-1]) else None


replayfiles.register(SOURCE, _claims)


def find_files(folder: Path, source: str) -> list[tuple[str, bytes]]:
    """(path relative to `folder`, bytes) of every file of `source` below `folder`, sorted by path.

    Symbolic links to folders are followed (each real folder once, so a link loop cannot hang the pull).
    """
    if source not in PATTERNS:
        raise ValueError(f"unknown session source {source!r}; expected one of {', '.join(PATTERNS)}")
    found = [(rel, p) for rel, p in _walk(folder) if matches(source, p.name)]
    return [(rel, p.read_bytes()) for rel, p in found]


def unrecognised_files(folder: Path, shared: bool = False) -> dict[str, str]:
    """Files below `folder` that no session source recognises (path relative to `folder` -> reason).

    Hidden files are an exporter's partial writes, not data. In a replay root shared with the other sources
    (`shared`), the files `replayfiles` says are theirs (their sub-folders `chargecloud/`, `osm/`, ..., JSON
    recordings, which chargecloud reads from the whole root, OSM extracts at the top) are not reported here.
    """
    patterns = ", ".join(p for ps in PATTERNS.values() for p in ps)
    return {
        rel: f"matches none of the session file patterns ({patterns})"
        for rel, path in _walk(folder)
        if not (path.name.startswith(".") or matches_any(path.name) or (shared and replayfiles.claimed_by_other(SOURCE, rel)))
    }


def _walk(folder: Path) -> list[tuple[str, Path]]:
    """Every file below `folder` (see `replayfiles.walk_files`); a missing folder is an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"session files folder {folder} does not exist")
    return walk_files(folder, hidden_files=True)


def inbox_folder(settings: Settings) -> Path:
    """The live landing folder of exported session files, or a clear error when it is not configured."""
    return replayfiles.inbox_folder(
        settings.sessions_inbox, "EV_SESSIONS_INBOX",
        "the session sources are in live mode but EV_SESSIONS_INBOX is not set: point it at the folder "
        "an exporter drops session reports, hourly loads, ACN sessions and event logs into",
    )
