"""Finding the recorded files of each session source in a folder (replay folder or live inbox).

Files are recognised by name, case-insensitively, anywhere below the folder, so EV_REPLAY_DIR can point at a
folder with a `sessions` link, at `shared/data` itself, or at a folder with subfolders `norway/`, `acn/` ...
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from ev_assets.lib.settings import Settings, SettingsError

# source -> file-name patterns (matched case-insensitively against the file name only)
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


def find_files(folder: Path, source: str) -> list[tuple[str, bytes]]:
    """(path relative to `folder`, bytes) of every file of `source` below `folder`, sorted by path.

    Symbolic links to folders are followed (each real folder once, so a link loop cannot hang the pull).
    """
    if source not in PATTERNS:
        raise ValueError(f"unknown session source {source!r}; expected one of {', '.join(PATTERNS)}")
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"session files folder {folder} does not exist")
    found: list[Path] = []
    seen: set[str] = set()
    for root, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(root) / n for n in names if matches(source, n))
    found = sorted((p for p in found if p.is_file()), key=lambda p: p.relative_to(folder).as_posix())
    return [(p.relative_to(folder).as_posix(), p.read_bytes()) for p in found]


def inbox_folder(settings: Settings) -> Path:
    """The live landing folder of exported session files, or a clear error when it is not configured."""
    inbox = settings.sessions_inbox
    if inbox is None:
        raise SettingsError(
            "the session sources are in live mode but EV_SESSIONS_INBOX is not set: point it at the folder "
            "an exporter drops session reports, hourly loads, ACN sessions and event logs into"
        )
    if not Path(inbox).is_dir():
        raise SettingsError(f"EV_SESSIONS_INBOX={inbox} is not a folder")
    return Path(inbox)
