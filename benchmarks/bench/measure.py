"""Wall time and peak memory of a command's process tree (/proc polled every 0.2 s, and the kernel's high-water
mark from wait4 in a small launcher process)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ev_assets.soak.audit import tree_rss


@dataclass
class Measured:
    seconds: float
    peak_rss: int  # bytes: max of the polled tree RSS and the kernel's high-water mark of the command
    returncode: int
    stdout: str
    stderr: str


# Starts the measured command from a small interpreter and reports the command's own high-water mark (wait4's
# ru_maxrss). Measured straight from this process, a child's ru_maxrss counts this process's pages at the
# (v)fork, which are over a GiB once a year of polls has been loaded.
LAUNCHER = ("import os, subprocess, sys; p = subprocess.Popen(sys.argv[2:]); _, s, u = os.wait4(p.pid, 0); "
            "open(sys.argv[1], 'w').write(str(u.ru_maxrss * 1024)); sys.exit(os.waitstatus_to_exitcode(s))")


def run_measured(command: list[str], env: dict | None = None, cwd: Path | None = None) -> Measured:
    """Run `command`, polling the RSS of its process tree every 0.2 s; peak also from the command's own
    high-water mark (wait4's ru_maxrss, taken by a small launcher process)."""
    out = tempfile.TemporaryFile(mode="w+")
    err = tempfile.TemporaryFile(mode="w+")
    hwm = tempfile.NamedTemporaryFile(suffix=".maxrss", delete=False)
    hwm.close()
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, hwm.name, *command], env=env, cwd=cwd, stdout=out,
                            stderr=err, text=True)
    peak = [0]
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss(proc.pid))
            done.wait(0.2)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    _, status, _ = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    done.set()
    poller.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    err.seek(0)
    high_water = Path(hwm.name)
    own_peak = int(high_water.read_text() or 0) if high_water.exists() else 0
    high_water.unlink(missing_ok=True)
    return Measured(seconds, max(peak[0], own_peak), proc.returncode, out.read(), err.read())


def self_peak_rss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


