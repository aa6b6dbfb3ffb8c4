"""The files of a replay folder (or inbox) that a source could not use, with the reason, so none is skipped silently.

Two kinds, because they call for different reactions:
- `unreadable`: a file in the source's own format that could not be read (corrupt compression, invalid JSON,
  JSON of the wrong shape, two extracts for one area, ...). The good files beside it still load; the source's
  `all_replay_files_read` check fails and names it.
- `ignored`: a file in no format the source knows (notes, a GeoJSON in the OSM folder, ...). It is reported in
  the log and the pull's metadata, but does not fail the check: a data folder may well hold such files.

When the replay root is shared (a source without its own `EV_REPLAY_DIR/<source>/` reads the root itself),
files that clearly belong to another source (its sub-folder, a format only another source reads) are neither:
each source reports only what it could have used. Which files those are, the sources say through one registry
(`register`): each names the files it claims, and asks `claimed_by_other` / `recognised_by_other` about a file,
so no source reads another's formats.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ev_assets.lib.settings import Settings, SettingsError

SHOWN = 20  # files named in logs and metadata; the counts are always complete
# The asset check of every pull that reads replay files, and what it means.
CHECK = "all_replay_files_read"
CHECK_DESCRIPTION = (
    "Every file of this source in its replay folder (or inbox) could be read. Fails naming each unreadable file and "
    "why (the good files beside it are loaded); files in no format of the source are listed but do not fail it."
)
JSON_RECORDINGS = (".json", ".json.gz")  # the format of chargecloud polls and Open Charge Map answers alike

# --- which source a file of a shared replay root belongs to -----------------------------------------------
# What a source's matcher says of a file, by its path relative to the replay root:
MINE = "mine"  # only this source reads such a file: its sub-folder, a name pattern of its own
FORMAT = "format"  # a format this source reads that others may read too: the file's content decides
Matcher = Callable[[str], str | None]  # relative path -> MINE, FORMAT or None


@dataclass(frozen=True)
class Claim:
    match: Matcher
    recognise: Callable[[Path], bool] | None = None  # a FORMAT file: whether it is this source's (may read it)


_CLAIMS: dict[str, Claim] = {}
# The modules that register the claims of the sources (`settings.SOURCES`), imported when first asked.
_CLAIMING_MODULES = (
    "ev_assets.lib.sources.chargecloud", "ev_assets.lib.sources.openchargemap", "ev_assets.lib.sources.osm",
    "ev_assets.lib.sources.sessions", "ev_assets.lib.sources.telemetry",
)


def register(source: str, match: Matcher, recognise: Callable[[Path], bool] | None = None) -> None:
    """`source` claims the files `match` says MINE or FORMAT of; `recognise` tells its FORMAT files by content."""
    _CLAIMS[source] = Claim(match, recognise)


def in_folder(rel: str, source: str) -> bool:
    """Whether a path relative to the replay root lies in the sub-folder named after `source`."""
    return rel.split("/", 1)[0] == source


def claimed_by_other(source: str, rel: str) -> str | None:
    """The other source a file of a shared replay root belongs to by its path alone, or None: one that claims it
    as MINE, or claims its FORMAT when `source` does not read that format."""
    own = _claims().get(source)
    reads = own is not None and own.match(rel) is not None
    for other, claim in _claims().items():
        if other == source:
            continue
        found = claim.match(rel)
        if found == MINE or (found == FORMAT and not reads):
            return other
    return None


def recognised_by_other(source: str, rel: str, path: Path) -> str | None:
    """The other source that reads this file's format and recognises it as its own (e.g. a chargecloud poll, even
    a broken one, beside Open Charge Map answers), or None. For a file of a format `source` reads too, once
    `source` found it no good: it is then the other source's to read and report."""
    for other, claim in _claims().items():
        if other != source and claim.recognise is not None and claim.match(rel) and claim.recognise(path):
            return other
    return None


def _claims() -> dict[str, Claim]:
    for module in _CLAIMING_MODULES:  # each registers on import; imported here, so no source imports another
        importlib.import_module(module)
    return _CLAIMS


def walk_files(folder: Path, hidden_files: bool = False) -> list[tuple[str, Path]]:
    """(path relative to `folder`, path) of every file below it, sorted by relative path; hidden folders are
    skipped (and hidden files unless `hidden_files`), links to folders followed, each real folder once so a loop
    cannot hang."""
    found: list[Path] = []
    seen: set[str] = set()
    for root, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(root) / n for n in names if hidden_files or not n.startswith("."))
    return sorted(((p.relative_to(folder).as_posix(), p) for p in found if p.is_file()), key=lambda item: item[0])


def inbox_folder(inbox: Path | None, variable: str, unset: str) -> Path:
    """A live landing folder (inbox) from the settings: the folder, or a SettingsError saying what to set (`unset`
    when `variable` is not set)."""
    if inbox is None:
        raise SettingsError(unset)
    if not Path(inbox).is_dir():
        raise SettingsError(f"{variable}={inbox} is not a folder")
    return Path(inbox)


def is_shared_root(settings: Settings, source: str) -> bool:
    """Whether `source` replays from EV_REPLAY_DIR itself (no `<source>/` sub-folder), which others read too."""
    return settings.replay_folder(source) == settings.replay_dir


@dataclass
class FileReport:
    """File name (relative to the folder read) -> reason, for the two kinds in the module docstring."""

    unreadable: dict[str, str] = field(default_factory=dict)
    ignored: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No file of the source's own format failed to read (ignored files do not count)."""
        return not self.unreadable

    def merge(self, other: "FileReport") -> None:
        self.unreadable.update(other.unreadable)
        self.ignored.update(other.ignored)

    def warnings(self, source: str) -> list[str]:
        """Log lines naming each file (the first SHOWN) and why, unreadable files first."""
        lines = [f"{source}: cannot read {name}: {reason}" for name, reason in self.unreadable.items()]
        lines += [f"{source}: ignoring {name}: {reason}" for name, reason in self.ignored.items()]
        if len(lines) > SHOWN:
            lines = lines[:SHOWN] + [f"{source}: ... and {len(lines) - SHOWN} more unusable file(s), see the metadata"]
        return lines

    def metadata(self) -> dict[str, Any]:
        """Plain values for the pull asset's metadata: how many files were not used, and the first SHOWN of them."""
        listed = [{"file": n, "kind": "unreadable", "reason": r} for n, r in self.unreadable.items()]
        listed += [{"file": n, "kind": "ignored", "reason": r} for n, r in self.ignored.items()]
        return {
            "unusable_files": len(self.unreadable) + len(self.ignored),
            "unreadable_files": len(self.unreadable),
            "unusable_file_list": listed[:SHOWN],
        }

    def check_metadata(self) -> dict[str, Any]:
        """Plain values for the `all_replay_files_read` check: the files that failed it, and the ignored count."""
        return {
            "unreadable_files": len(self.unreadable),
            "unreadable_file_list": [{"file": n, "reason": r} for n, r in list(self.unreadable.items())[:SHOWN]],
            "ignored_files": len(self.ignored),
        }
