"""The publishers of the live path.

- `PollPublisher`: after a chargecloud poll is stored in the raw store, publishes its status changes and one
  poll-complete marker per city (`changes.StatusTracker`). `poll(slot)` also fetches and stores the poll (in the
  source's mode: simulated, replay or live chargecloud), for the live runner; the batch asset `chargecloud_polls`
  stores its own polls and calls `publish_stored` when a broker is configured.
- `EventFeed`: charging events released when their time comes on the live clock: the simulator's events of the
  clock's days, or replayed JSON Lines files.
"""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterable

from ev_assets.lib import rawstore
from ev_assets.lib.sources import chargecloud
from ev_assets.lib.live import messages
from ev_assets.lib.live.bus import Bus, Published
from ev_assets.lib.live.changes import StatusTracker
from ev_assets.lib.settings import Settings

Log = Callable[[str], None]


class PollPublisher:
    def __init__(self, settings: Settings, bus: Bus, log: Log | None = None):
        self.settings, self.bus = settings, bus
        self.log = log or (lambda message: None)
        self.tracker: StatusTracker | None = None
        self.shapes = chargecloud.CityShapes()  # what each city's answers look like: later polls take the fast path

    def _tracker(self, slot: datetime) -> StatusTracker:
        """Seeded from the newest poll stored in the day before `slot`, so a restart publishes only changes."""
        if self.tracker is None:
            self.tracker = StatusTracker()
            earlier = rawstore.from_settings(self.settings).slots(chargecloud.SOURCE, slot - timedelta(days=1), slot)
            if earlier:
                previous_slot, raw = earlier[-1]
                self.tracker.seed(self._flatten(previous_slot, raw))
        return self.tracker

    def publish_stored(self, slot: datetime, raw: rawstore.RawFile) -> Published:
        tracker = self._tracker(slot)
        before = {table: dict(last) for table, last in tracker.last.items()}
        try:
            return self.bus.publish(tracker.changes(self._flatten(slot, raw)))
        except Exception:
            tracker.last = before  # not published: the next poll's changes are taken against what was
            raise

    def _flatten(self, slot: datetime, raw: rawstore.RawFile) -> chargecloud.FlatPoll:
        return chargecloud.flatten_polls([(raw.read_bytes(), slot, str(raw.path))], self.shapes)

    def poll(self, slot: datetime) -> tuple[rawstore.RawFile | None, Published]:
        """Fetch the slot's poll in the source's mode, store it, publish its changes."""
        slot = chargecloud.floor_slot(slot, self.settings.poll_interval_minutes)
        envelope = chargecloud.fetch_poll(self.settings, slot, log=self.log)
        if not envelope:
            return None, Published()
        raw = rawstore.from_settings(self.settings).write(chargecloud.SOURCE, rawstore.slot_key(slot), envelope, new_attempt=True)
        return raw, self.publish_stored(slot, raw)


class EventFeed:
    """Events in time order; `due(until)` returns those not yet released whose time is at or before `until`."""

    def __init__(self, events: Iterable[dict]):
        self.events = sorted(events, key=_event_time)
        self.position = 0

    def due(self, until: datetime) -> list[dict]:
        """The events not yet released whose time is at or before `until` (released by `publish_due`)."""
        end = self.position
        while end < len(self.events) and _event_time(self.events[end]) <= until:
            end += 1
        return self.events[self.position:end]

    def publish_due(self, bus: Bus, until: datetime) -> Published:
        """Publish the due events; they count as released only once the broker has stored them, so a failed
        publish sends them again on the next call."""
        due = self.due(until)
        if not due:
            return Published()
        published = bus.publish(messages.charging_event(e) for e in due)
        self.position += len(due)
        return published

    @property
    def remaining(self) -> int:
        return len(self.events) - self.position


_NO_TIME = datetime.min.replace(tzinfo=timezone.utc)


def _event_time(event: dict) -> datetime:
    """An event's time (UTC); one without a readable time comes first (it is quarantined by the consumer)."""
    try:
        parsed = datetime.fromisoformat(str(event.get("timestamp")).replace("Z", "+00:00"))
    except ValueError:
        return _NO_TIME
    return parsed.astimezone(timezone.utc) if parsed.tzinfo else _NO_TIME


def simulated_feed(settings: Settings, first_day: date, days: int) -> EventFeed:
    """The simulator's charging events for `days` days from `first_day` (the stations of the simulated polls)."""
    from ev_assets.lib.sources.sessions.simulate import simulated_events  # noqa: PLC0415 - the simulator is optional

    sim = settings.simulation
    events = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        events += simulated_events(type(sim)(**{**sim.__dict__, "start": day, "days": 1}))  # ids unique per day
    return EventFeed(events)


def replay_feed(paths: Iterable[Path]) -> EventFeed:
    """Events of JSON Lines files (gzip allowed). A line that is not JSON is still published, as text, so that the
    consumer quarantines it with its reason like the batch parser does."""
    from ev_assets.lib.sources.sessions.jsonfiles import event_lines  # noqa: PLC0415

    events = []
    for path in paths:
        for n, line in enumerate(event_lines(str(path), Path(path).read_bytes()), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                item = {"eventId": f"{Path(path).name}:line{n}", "_malformed": line.decode("utf-8", "replace")}
            events.append(item if isinstance(item, dict) else {"_malformed": item})
    return EventFeed(events)


def event_feed(settings: Settings, first_day: date) -> EventFeed | None:
    """The event feed of the `sessions` source's mode: the simulator's events, the JSON Lines files of its replay
    folder, or none in live mode (a station back end publishes its events to the broker itself)."""
    mode = settings.mode("sessions")
    if mode == "simulated":
        return simulated_feed(settings, first_day, days=1)
    if mode == "replay":
        return replay_feed(sorted(settings.replay_folder("sessions").glob("*.jsonl*")))
    return None


def run_feed(settings: Settings, bus: Bus, clock, stop, log: Log, on_poll: Callable[[datetime, Published], None] | None = None) -> None:
    """Poll every slot as it starts on `clock` and release the events that are due, until `stop` (a
    threading.Event) is set. In simulated mode the event feed grows by a day whenever the clock reaches its end."""
    interval = timedelta(minutes=settings.poll_interval_minutes)
    publisher = PollPublisher(settings, bus, log)
    next_slot = chargecloud.floor_slot(clock.now(), settings.poll_interval_minutes)
    feed_day = next_slot.date()
    feed = event_feed(settings, feed_day)
    while not stop.is_set():
        now = clock.now()
        while next_slot <= now and not stop.is_set():
            try:
                _, published = publisher.poll(next_slot)
                if on_poll:
                    on_poll(next_slot, published)
            except Exception as exc:  # noqa: BLE001 - one failed poll is logged; the next slot is polled anyway
                log(f"poll {next_slot:%Y-%m-%d %H:%M}: {type(exc).__name__}: {exc}")
            next_slot += interval
        if feed is not None:
            try:
                feed.publish_due(bus, now)
            except Exception as exc:  # noqa: BLE001 - the events stay due and go out on the next turn
                log(f"events: {type(exc).__name__}: {exc}")
            if settings.mode("sessions") == "simulated" and now.date() > feed_day and feed.remaining == 0:
                feed_day = now.date()
                feed = simulated_feed(settings, feed_day, days=1)
        stop.wait(min(0.25, max(0.01, clock.wall_at(next_slot) - time.time())))
