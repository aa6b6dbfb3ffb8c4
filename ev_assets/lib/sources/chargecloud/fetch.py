"""chargecloud fetching: the poll envelope of one slot in the source's mode.

- `live`: real HTTP through `lib.http.get_json`, one city at a time; a failing city does not fail the rest.
- `replay`: the recorded polls of the slot (see `replay.py`).
- `simulated`: `lib.simulator.chargecloud_poll` (real schema, offline).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import requests

from ev_assets.lib.http import MalformedResponseError, RetryPolicy, SourceHTTPError, get_json
from ev_assets.lib.settings import Settings
from ev_assets.lib.sources.chargecloud.contracts import FAILED_KEY
from ev_assets.lib.sources.chargecloud.replay import Log, fetch_replay
from ev_assets.lib.sources.chargecloud.slots import SOURCE, floor_slot, to_utc


class ChargecloudError(ValueError):
    """A chargecloud poll was asked for in a way its mode cannot serve (e.g. a live backfill)."""


def fetch_poll(
    settings: Settings,
    slot_start: datetime,
    log: Log = None,
    *,
    now: datetime | None = None,
    sleep: Callable[[float], None] | None = None,
) -> dict:
    """The poll envelope of the slot starting at `slot_start`, in the source's mode.

    `now` and `sleep` exist for tests (the live backfill guard and HTTP retry waits).
    """
    slot = floor_slot(slot_start, settings.poll_interval_minutes)
    mode = settings.mode(SOURCE)
    if mode == "live":
        return _fetch_live(settings, slot, log, now=now, sleep=sleep)
    if mode == "replay":
        return fetch_replay(settings, slot, log)
    return _fetch_simulated(settings, slot)


def _fetch_live(settings: Settings, slot: datetime, log: Log, now: datetime | None, sleep) -> dict:
    """Ask every city for its current state. The endpoint has no history, so only a current slot makes sense."""
    now = to_utc(now or datetime.now(timezone.utc))
    max_age = timedelta(minutes=2 * settings.poll_interval_minutes)
    if now - slot > max_age:
        raise ChargecloudError(
            f"chargecloud live mode cannot backfill the past: slot {slot.isoformat()} is {now - slot} old "
            f"(more than 2 poll intervals) and the endpoint only returns the current state. "
            f"Use replay mode (EV_SOURCE_CHARGECLOUD=replay, EV_REPLAY_DIR=<recorded polls>) for past slots."
        )
    policy = RetryPolicy(settings.http_timeout_s, settings.http_retries, settings.http_backoff_s)
    extra = {"sleep": sleep} if sleep is not None else {}
    envelope: dict[str, Any] = {}
    failed: dict[str, str] = {}
    base = settings.chargecloud_url.rstrip("/")
    with requests.Session() as session:  # one connection pool for all cities of the poll
        for city in settings.cities:
            try:
                envelope[city] = get_json(f"{base}/{city}", policy=policy, session=session, log=log, **extra)
            except (SourceHTTPError, MalformedResponseError) as exc:
                failed[city] = str(exc)
            except requests.RequestException as exc:  # anything else requests raises (bad URL, ...)
                failed[city] = f"GET {base}/{city} failed: {type(exc).__name__}"
            if city in failed and log:
                log(f"chargecloud {city}: {failed[city]}")
    if failed:
        envelope[FAILED_KEY] = failed
    return envelope


def _fetch_simulated(settings: Settings, slot: datetime) -> dict:
    # Imported here so this module works (and its tests run) independently of the simulator.
    from ev_assets.lib import simulator

    return simulator.chargecloud_poll(settings.simulation, slot)
