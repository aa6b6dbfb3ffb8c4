"""The dashboard as a user sees it: `python -m ev_assets.dashboard` on a free port, each page opened in headless
Chromium (Debian's), its rendered text checked, and a screenshot of it kept under `<data root>/screenshots/`.

Streamlit draws a page from a websocket after its JavaScript has loaded. `--dump-dom` with a virtual-time budget
(`browser.visible_text`) does return drawn pages, but virtual time runs ahead while a page only waits on its
websocket, so on a busy machine it dumps (and `--screenshot` shoots) a skeleton whenever the server takes more than
a second or two. So this test drives the same Chromium over its DevTools protocol (`browser.DevTools`, through the
`websockets` client the environment already has): it waits in real time until the expected text is on the page,
then takes the screenshot of exactly that page.

The data root is the hand-made snapshot of `fixtures.dashboard` (`dashboard_root`; its values are explained in
test_pages.py).
"""

from __future__ import annotations

import sys

import pytest

from ev_assets_tests import browser
from ev_assets_tests.browser import ERRORS
from ev_assets_tests.fixtures.dashboard import A_B

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
@pytest.fixture(scope="module")
def served(dashboard_root):
    browser.chromium()  # skips without Chromium
    data_dir = dashboard_root
    port = browser.free_port()
    env = {"EV_DATA_DIR": str(data_dir), "EV_DASHBOARD_PORT": str(port), "EV_SERVE_HOST": "127.0.0.1"}
    with browser.server([sys.executable, "-m", "ev_assets.dashboard"], f"http://127.0.0.1:{port}/_stcore/health",
                        env=env):
        yield f"http://127.0.0.1:{port}", data_dir


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
