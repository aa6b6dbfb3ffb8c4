"""The machine line every benchmark prints first: the project revision measured (and whether the folders it
measures had uncommitted changes), the cores, memory, versions, and the load average at the start."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def revision(folder: str) -> str:
    """`project at <commit>`, and whether `folder` (e.g. dbt_project) had uncommitted changes."""
    try:
        head = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip() or "?"
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", folder],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return f"project at {head}" + (f" with uncommitted {folder}/ changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "project revision unknown"


def load_average() -> float:
    return os.getloadavg()[0]


def machine_line(folder: str, packages: tuple[str, ...]) -> str:
    """Two lines: the revision (with `folder`'s uncommitted changes), then the machine and the `packages`'
    versions, and the load average now."""
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = ", ".join(f"{name} {version(name)}" for name in packages)
    return (f"{revision(folder)}\n"
            f"machine: {os.cpu_count()} cores ({cpu}), {ram / 1024**3:.1f} GiB RAM, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}; {versions}; "
            f"load average {load_average():.2f} (other processes share the cores)")
