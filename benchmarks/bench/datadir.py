"""The data folder of a benchmark: a fresh temporary one, or a given one that is empty or was made by the same
benchmark (a marker file says so). Never the repository's data/."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

REPO_DATA = (Path(__file__).resolve().parents[1] / "data").resolve()


def prepare(arg: Path | None, name: str, reset: tuple[str, ...] = ()) -> tuple[Path, bool]:
    """(folder, whether it is a temporary one to remove at the end). `name` is the benchmark's (the marker is
    `.<name>`); `reset` names what a previous run of it left in a given folder and is removed first."""
    marker = f".{name}"
    if arg is None:
        path = Path(tempfile.mkdtemp(prefix=f"ev_{name}_"))
        (path / marker).touch()
        return path, True
    path = arg.resolve()
    if path == REPO_DATA or REPO_DATA in path.parents:
        sys.exit(f"refusing to use {path}: the benchmark never writes into the repository's data/")
    if path.exists() and any(path.iterdir()) and not (path / marker).exists():
        sys.exit(f"{path} is not empty and was not made by this benchmark: give an empty or new folder")
    for item in reset:  # a previous run of this benchmark: start afresh
        target = path / item
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    path.mkdir(parents=True, exist_ok=True)
    (path / marker).touch()
    return path, False
