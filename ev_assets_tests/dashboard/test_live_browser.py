"""The live dashboard as a user sees it: `python -m ev_assets.dashboard` on a free port against a data root whose
live store the test fills (the hand-made snapshot of `fixtures.dashboard`, the first live state of
`fixtures.live_feed`),
Network now and Station opened in headless Chromium, then more status changes and meter events landed while the
pages stay open: each page shows them by itself (its fragment redraws every EV_DASHBOARD_REFRESH_S seconds), with
no reload. Screenshots before and after go to `<data root>/screenshots/`."""

from __future__ import annotations

import sys
import time

import pytest

from ev_assets.lib import snapshot
from ev_assets.lib.settings import Settings
from ev_assets_tests import browser
from ev_assets_tests.browser import ERRORS, DevTools
from ev_assets_tests.fixtures.dashboard import build_warehouse
from ev_assets_tests.fixtures.live_feed import AS_OF, event, first_state, poll

REFRESH_S = 2
SPEED = 120
SEEN_WITHIN_S = 15  # a change must show within this (the refresh, a redraw, a slow machine)


@pytest.fixture(scope="module")
def served_live(tmp_path_factory):
    browser.chromium()  # skips without Chromium
    data_dir = tmp_path_factory.mktemp("dashboard_live_browser") / "data"
    data_dir.mkdir()
    settings = Settings(data_dir=data_dir)
    snapshot.publish(build_warehouse(data_dir.parent / "warehouse.duckdb"), settings.snapshot_dir)
    # 120x: the live data turns stale (2 polls, 20 simulated minutes, old) ~10 s after this, while Network now is open
    feed = first_state(settings.live_dir, speed=SPEED)
    port = browser.free_port()
    env = {"EV_DATA_DIR": str(data_dir), "EV_DASHBOARD_PORT": str(port), "EV_SERVE_HOST": "127.0.0.1",
           "EV_DASHBOARD_REFRESH_S": str(REFRESH_S)}
    try:
        with browser.server([sys.executable, "-m", "ev_assets.dashboard"],
                            f"http://127.0.0.1:{port}/_stcore/health", env=env):
            yield f"http://127.0.0.1:{port}", data_dir, feed
    finally:
        feed.close()


def wait_for(tab: DevTools, expected: list[str], timeout_s: float) -> tuple[str, float]:
    """Wait, without reloading, until every `expected` text shows: (the page's text, seconds it took)."""
    started = time.monotonic()
    while True:
        text = tab.text()
        if all(t in text for t in expected):
            return text, time.monotonic() - started
        assert time.monotonic() - started < timeout_s, \
            f"{[t for t in expected if t not in text]} not shown within {timeout_s} s; the page shows: {text[:3000]}"
        time.sleep(0.25)


def evaluate(tab: DevTools, expression: str):
    return tab.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")


def click(tab: DevTools, element: str) -> None:
    """A mouse click in the middle of the element that the JavaScript expression `element` finds."""
    xy = evaluate(tab, f"(() => {{ const e = {element}; if (!e) return null; const b = e.getBoundingClientRect(); "
                       "return [b.x + b.width / 2, b.y + b.height / 2]; })()")
    assert xy, f"nothing on the page is {element}"
    for kind in ("mousePressed", "mouseReleased"):
        tab.call("Input.dispatchMouseEvent", type=kind, x=xy[0], y=xy[1], button="left", clickCount=1)


def choose_city(tab: DevTools, city: str) -> None:
    """Pick a city in the sidebar's City box as a user does (open it, click the option)."""
    box = "document.querySelector('[data-testid=\"stSidebar\"] input[aria-label=\"City\"]')"
    click(tab, box)
    deadline = time.monotonic() + 10
    option = f"Array.from(document.querySelectorAll('[role=option]')).find(e => e.textContent.trim() === '{city}')"
    while not evaluate(tab, f"!!({option})"):
        assert time.monotonic() < deadline, "the City box did not open"
        time.sleep(0.2)
    click(tab, option)


def city_chosen(tab: DevTools) -> str:
    return evaluate(tab, "document.querySelector('[data-testid=\"stSidebar\"] input[aria-label=\"City\"]').value")


def same_page(tab: DevTools) -> bool:
    """The marker set on the page before the change is still there: the page was not reloaded."""
    return tab.call("Runtime.evaluate", expression="window.__not_reloaded === true",
                    returnByValue=True)["result"].get("value") is True


def test_network_now_and_station_follow_the_live_path_by_themselves(served_live, tab):
    base, data_dir, feed = served_live
    shots = data_dir / "screenshots"

    # the root address draws Network now in place (no switch to /network: one script run less on a first visit)
    tab.open(base + "/", ["Network now", "charging points", "Trend over the period"], timeout_s=90)
    assert evaluate(tab, "location.pathname") == "/"
    # Network now opened by its address; S4*1 is never reported live: unknown
    text = tab.open(base + "/network", ["Network now", "charging points", f"simulated clock, {SPEED}x",
                                        "2 available · 1 charging · 0 blocked / reserved · 1 out of order · 1 unknown",
                                        "Stations by status now", "By operator", "Trend over the period"],
                    timeout_s=90)
    for unwanted in ("Page not found", *ERRORS):
        assert unwanted not in text, text[:3000]
    assert AS_OF.search(text).group(1) == "09:00" and "40.0 %" in text
    assert evaluate(tab, "location.pathname") == "/network"

    # the user narrows it to koeln (S1*1 and S2*1 available, S1*2 charging)
    choose_city(tab, "koeln")
    text, _ = wait_for(tab, ["2 available · 1 charging · 0 blocked / reserved · 0 out of order · 0 unknown"], 30)
    assert "66.7 %" in text and city_chosen(tab) == "koeln"
    tab.call("Runtime.evaluate", expression="window.__not_reloaded = true")
    # while it redraws itself, nothing blinks out: the figures and the rest of the page are always there, also
    # when the data turns stale (no new poll for 2 poll intervals on the live clock) and a warning comes up
    stale_since = None
    deadline = time.monotonic() + 30
    while stale_since is None or time.monotonic() < stale_since + 2 * REFRESH_S + 1:
        text = tab.text()
        for always in ("charging points", "2 available · 1 charging", "as of 09:00 UTC", "Stations by status now",
                       "By city", "By operator", "Trend over the period"):
            assert always in text, f"{always!r} vanished during a refresh: {text[:2000]}"
        if stale_since is None and "The live data is stale" in text:
            stale_since = time.monotonic()
        assert time.monotonic() < deadline, f"the live data did not turn stale: {text[:2000]}"
        time.sleep(0.1)
    tab.screenshot(shots / "live_network_stale.png")

    # S2*1 goes from AVAILABLE to CHARGING at the poll of now (on the live clock)
    now = feed.now()
    slot = now.replace(minute=now.minute // 10 * 10, second=0, microsecond=0)
    poll(feed, slot, S1_2="CHARGING", S2_1="CHARGING", S3_1="OUTOFORDER")
    text, took = wait_for(tab, ["1 available · 2 charging · 0 blocked / reserved · 0 out of order · 0 unknown"],
                          SEEN_WITHIN_S)
    print(f"Network now showed the status change {took:.1f} s after it landed")
    assert AS_OF.search(text).group(1) == f"{slot:%H:%M}" and "33.3 %" in text and "66.7 %" in text
    assert same_page(tab) and city_chosen(tab) == "koeln" and "Trend over the period" in text
    assert "The live data is stale" not in text  # the new poll is fresh
    time.sleep(1)
    tab.screenshot(shots / "live_network_after.png")

    # Station S1: its open session (connector 2) and today's energy
    text = tab.open(base + "/station?station=S1", ["Aachener Straße 1", "charging now", "1 session", "t1",
                                                    "energy today", "13.5 kWh", "4.29 EUR", "free now", "1 of 2"],
                    timeout_s=60)
    for error in ERRORS:
        assert error not in text, text[:3000]
    assert "18.5 kWh" not in text
    tab.call("Runtime.evaluate", expression="window.__not_reloaded = true")
    tab.screenshot(shots / "live_station_before.png")

    # a meter value of the open session: 2.5 -> 7.5 kWh
    meter_at = feed.now().replace(second=0, microsecond=0)
    feed.events([event("Updated", "t1", "S1", 2, meter_at, 7500, 21000)])
    text, took = wait_for(tab, ["18.5 kWh"], SEEN_WITHIN_S)
    print(f"Station showed the grown session {took:.1f} s after its meter value landed")
    assert "13.5 kWh" not in text and same_page(tab) and AS_OF.search(text).group(1) == f"{meter_at:%H:%M}"
    time.sleep(1)
    tab.screenshot(shots / "live_station_after.png")
    print(f"screenshots: {shots}")
