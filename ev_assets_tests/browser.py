"""Look at our web UIs as a user does: start the server, open the page in headless Chromium (Debian's, which
`make test` installs), and read what the page shows after its JavaScript ran; or drive one tab over the DevTools
protocol (`DevTools`), waiting in real time for what a page must show."""

from __future__ import annotations

import base64
import contextlib
import html
import json
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


# texts a page shows when it failed
ERRORS = ("Traceback", "Error:", "Exception")


class DevTools:
    """One headless Chromium tab, driven over the Chrome DevTools Protocol."""

    def __init__(self, width: int = 1400, height: int = 2200):
        from websockets.sync.client import connect

        self.profile = tempfile.TemporaryDirectory()
        self.process = subprocess.Popen(
            [chromium(), *CHROMIUM_FLAGS, f"--window-size={width},{height}",
             f"--user-data-dir={self.profile.name}", "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        active = Path(self.profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (active.exists() and active.read_text().strip()):
            assert time.monotonic() < deadline and self.process.poll() is None, "Chromium did not start"
            time.sleep(0.2)
        port = int(active.read_text().splitlines()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            page = next(t for t in json.load(response) if t["type"] == "page")
        self.socket = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=30)
        self._id = 0
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False)

    def call(self, method: str, **params) -> dict:
        self._id += 1
        self.socket.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:  # events of the page arrive in between: skip them
            message = json.loads(self.socket.recv(timeout=120))
            if message.get("id") == self._id:
                assert "error" not in message, f"{method}: {message['error']}"
                return message.get("result", {})

    def text(self) -> str:
        """The page's visible text, and the cells of its tables (Streamlit draws dataframes on a canvas; the
        cells are in a hidden table for screen readers)."""
        script = ("document.body ? document.body.innerText + ' ' + Array.from(document.querySelectorAll('td, th'))"
                  ".map(cell => cell.textContent).join(' ') : ''")
        found = self.call("Runtime.evaluate", expression=script, returnByValue=True)
        return " ".join(str(found["result"].get("value", "")).split())

    def open(self, url: str, expected: list[str], timeout_s: float = 180) -> str:
        """Load `url` (a new Streamlit session) and wait until every `expected` text shows; its visible text."""
        return self.timed_open(url, expected, timeout_s)[0]

    def timed_open(self, url: str, expected: list[str], timeout_s: float = 180) -> tuple[str, float]:
        """`open`, and the seconds from the navigation until every `expected` text showed (polled every 0.1 s)."""
        started = time.monotonic()
        self.call("Page.navigate", url=url)
        deadline = started + timeout_s
        while True:
            text = self.text()
            missing = [t for t in expected if t not in text]
            if not missing:
                seconds = time.monotonic() - started
                time.sleep(2)  # let the charts finish drawing
                return self.text(), seconds
            assert time.monotonic() < deadline, f"{url}: {missing} not on the page; it shows: {text[:3000]}"
            time.sleep(0.1)

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))
        return path

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.socket.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.profile.cleanup()
