"""chargecloud poll slots: the 10-minute grid polls are partitioned on, the poll times the endpoint gives, and which
of them are plausible."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from ev_assets.lib.settings import Settings

SOURCE = "chargecloud"
# Polls are partitioned from this day on (the earliest recordings); an earlier poll time is a broken clock.
PARTITIONS_START = datetime(2021, 9, 1, tzinfo=timezone.utc)
# A poll time this far after now (or a city's time this far from its poll slot) is not a real poll time.
POLL_TIME_TOLERANCE = timedelta(hours=1)
# The endpoint answers in German local time (+01:00 / +02:00); the real scraper named its files in it too.
SOURCE_TZ = ZoneInfo("Europe/Berlin")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def to_utc(t: datetime) -> datetime:
    """`t` in UTC; a naive datetime is taken to be UTC already (Dagster partition bounds are UTC)."""
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def floor_slot(t: datetime, interval_minutes: int) -> datetime:
    """The start of the poll slot holding `t`: slots are aligned to the UTC epoch, so 10-minute slots start at
    :00, :10, ... of every hour whatever the time zone."""
    step = timedelta(minutes=interval_minutes)
    return _EPOCH + ((to_utc(t) - _EPOCH) // step) * step


def poll_slots(settings: Settings, start: datetime, end: datetime) -> list[datetime]:
    """The poll slots starting in [start, end).

    Live and simulated polls can happen in every slot; replay only has the slots that were recorded.
    """
    start, end = to_utc(start), to_utc(end)
    if settings.mode(SOURCE) == "replay":
        from ev_assets.lib.sources.chargecloud.replay import replay_index  # replay places its files on the slots

        return [slot for slot in replay_index(settings) if start <= slot < end]
    step = timedelta(minutes=settings.poll_interval_minutes)
    slot = floor_slot(start, settings.poll_interval_minutes)
    if slot < start:
        slot += step
    slots = []
    while slot < end:
        slots.append(slot)
        slot += step
    return slots


def implausible_poll_time(when: datetime, now: datetime | None = None) -> str | None:
    """Why `when` cannot be a poll time (in the future, or before the partitions start), or None."""
    now = to_utc(now or datetime.now(timezone.utc))
    if when > now + POLL_TIME_TOLERANCE:
        return f"poll time {when:%Y-%m-%d %H:%M} UTC is in the future (now {now:%Y-%m-%d %H:%M} UTC)"
    if when < PARTITIONS_START:
        return f"poll time {when:%Y-%m-%d %H:%M} UTC is before the poll partitions start ({PARTITIONS_START:%Y-%m-%d})"
    return None


def poll_time(envelope: Any) -> datetime | None:
    """When a stored poll was taken: the earliest response `timestamp` in it (UTC), None if it has none."""
    if not isinstance(envelope, dict):
        return None
    times = [
        parse_time(response.get("timestamp"))
        for key, response in envelope.items()
        if not str(key).startswith("_") and isinstance(response, dict)
    ]
    return min((t for t in times if t is not None), default=None)


def parse_time(value: Any) -> datetime | None:
    """An ISO timestamp as UTC; without an offset it is German local time like all the endpoint's times."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        t = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return (t.replace(tzinfo=SOURCE_TZ) if t.tzinfo is None else t).astimezone(timezone.utc)
