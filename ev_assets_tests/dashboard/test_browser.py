"""The dashboard as a user sees it: `python -m ev_assets.dashboard` on a free port, each page opened in headless
Chromium (Debian's), its rendered text checked, and a screenshot of it kept under `<data root>/screenshots/`.

Streamlit draws a page from a websocket after its JavaScript has loaded. `--dump-dom` with a virtual-time budget
(`browser.visible_text`) does return drawn pages, but virtual time runs ahead while a page only waits on its
websocket, so on a busy machine it dumps (and `--screenshot` shoots) a skeleton whenever the server takes more than
a second or two. So this test drives the same Chromium over its DevTools protocol (`DevTools`, through the
`websockets` client the environment already has): it waits in real time until the expected text is on the page,
then takes the screenshot of exactly that page.

The data root is the hand-made snapshot of `test_dashboard` (its values are explained there).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from ev_assets.lib import snapshot
from ev_assets.lib.settings import Settings
from ev_assets_tests import browser
from ev_assets_tests.test_dashboard import A_B, build_warehouse

# page -> (path, texts that must show once its data has loaded)
PAGES = {
    "network": ("/", ["Network now", "charging points", "40.0 %", "Stations by status now", "By operator",
                      "Trend over the period"]),
    "station": ("/station?station=S1", ["Aachener Straße 1", "Will it be free soon?", "free now", "1 of 2",
                                         "Usually busiest: Monday 18:00–19:00", "Status timeline",
                                         "Café Rhein", "Charging points and connectors"]),
    "reliability": ("/reliability", [f"Worst availability, 10 Jan 2022 – 11 Jan 2022: {A_B}", "75.0 % available",
                                     "Operators, worst first", "Cities, worst first", "Stations of"]),
    "energy": ("/energy", ["Energy", "total", "20.0 kWh", "peak day", "10 Jan 2022"]),
    "models": ("/models", ["Models", "No model registry yet", "run make demo"]),
}
ERRORS = ("Traceback", "Error:", "Exception")


class DevTools:
    """One headless Chromium tab, driven over the Chrome DevTools Protocol."""

    def __init__(self, width: int = 1400, height: int = 2200):
        from websockets.sync.client import connect

        self.profile = tempfile.TemporaryDirectory()
        self.process = subprocess.Popen(
            [browser.chromium(), *browser.CHROMIUM_FLAGS, f"--window-size={width},{height}",
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
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout_s
        while True:
            text = self.text()
            missing = [t for t in expected if t not in text]
            if not missing:
                time.sleep(2)  # let the charts finish drawing
                return self.text()
            assert time.monotonic() < deadline, f"{url}: {missing} not on the page; it shows: {text[:3000]}"
            time.sleep(0.5)

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


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    browser.chromium()  # skips without Chromium
    data_dir = tmp_path_factory.mktemp("dashboard_browser") / "data"
    data_dir.mkdir()
    snapshot.publish(build_warehouse(data_dir.parent / "warehouse.duckdb"), Settings(data_dir=data_dir).snapshot_dir)
    port = browser.free_port()
    env = {"EV_DATA_DIR": str(data_dir), "EV_DASHBOARD_PORT": str(port), "EV_SERVE_HOST": "127.0.0.1"}
    with browser.server([sys.executable, "-m", "ev_assets.dashboard"], f"http://127.0.0.1:{port}/_stcore/health",
                        env=env):
        yield f"http://127.0.0.1:{port}", data_dir


@pytest.fixture(scope="module")
def tab():
    browser.chromium()
    devtools = DevTools()
    yield devtools
    devtools.close()


@pytest.mark.parametrize("page", list(PAGES))
def test_each_page_shows_its_answers_in_a_browser(served, tab, page):
    base, data_dir = served
    path, expected = PAGES[page]
    text = tab.open(base + path, expected)
    for error in ERRORS:
        assert error not in text, f"{page} shows an error: {text[:3000]}"
    shot = tab.screenshot(data_dir / "screenshots" / f"dashboard_{page}.png")
    assert shot.stat().st_size > 20_000
    print(f"screenshot: {shot}")


def test_the_sidebar_filters_and_navigation_are_on_every_page(served, tab):
    base, _ = served
    tab.open(base + "/energy", ["Network now", "Station", "Reliability", "Energy", "Models", "Period", "City",
                                "Operator", "Period: 10 Jan 2022 – 11 Jan 2022", "total"])


def test_dump_dom_also_renders_a_page(served):
    """The helper every web UI test uses (`--dump-dom` with virtual time) sees the Streamlit page too, once the
    server's caches are warm (the tests above warmed them)."""
    base, _ = served
    text = browser.visible_text(base + "/reliability", until="Worst availability", budget_ms=60_000, tries=10)
    assert "Worst availability" in text
