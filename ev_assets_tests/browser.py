"""Look at our web UIs as a user does: start the server, open the page in headless Chromium (Debian's, which
`make test` installs), and read what the page shows after its JavaScript ran."""

from __future__ import annotations

import contextlib
import html
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

CHROMIUM_FLAGS = (
    # without the background-networking flags Chromium keeps dialling Google's hosts on this closed network
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1400,900",
)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip("Chromium is not installed (`make test` installs Debian's chromium)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(command: list[str], ready_url: str, env: dict | None = None, timeout_s: float = 120,
           cwd: Path | None = None) -> Iterator[None]:
    """Run `command` (in `cwd`) in its own process group until the block ends; ready when `ready_url` answers 200."""
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                               start_new_session=True, cwd=cwd)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise AssertionError(f"{command[0]} exited with {process.returncode}:\n{Path(log.name).read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(ready_url, timeout=2) as response:
                    if response.status == 200:
                        break
            if time.monotonic() > deadline:
                raise AssertionError(f"{ready_url} did not answer in {timeout_s} s:\n{Path(log.name).read_text()[-3000:]}")
            time.sleep(0.3)
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
        os.unlink(log.name)


def _chromium(url: str, *args: str, budget_ms: int) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                               f"--virtual-time-budget={budget_ms}", *args, url],
                              capture_output=True, text=True, timeout=120)


def visible_text(url: str, until: str | None = None, budget_ms: int = 15000, tries: int = 4) -> str:
    """The page's text as rendered (scripts and styles removed, whitespace collapsed). With `until`, the page is
    opened again (up to `tries` times) until that text shows: a busy machine can leave a page's data unloaded."""
    for _ in range(tries):
        dom = _chromium(url, "--dump-dom", budget_ms=budget_ms).stdout
        dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S | re.I)
        text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom))).strip()
        if until is None or until in text:
            break
    return text


def screenshot(url: str, path: Path, budget_ms: int = 15000) -> Path:
    """A PNG of the page as a user sees it (kept for review)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _chromium(url, f"--screenshot={path}", budget_ms=budget_ms)
    assert path.exists() and path.stat().st_size > 10_000, f"no screenshot of {url}"
    return path
