"""The publishers lose nothing when the broker refuses a publish: what was not stored goes out the next time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from ev_assets.lib import rawstore
from ev_assets.lib.live.bus import BusError, Published
from ev_assets.lib.live.feeds import EventFeed, PollPublisher
from ev_assets.lib.settings import Settings, SimulationSettings
from ev_assets.lib.simulator import chargecloud_poll
from ev_assets_tests.fixtures.live_feed import events

SLOT = datetime(2022, 1, 10, 8, tzinfo=timezone.utc)


class FlakyBus:
    """A bus whose next publish fails when `down` is set; it keeps what it stored."""

    def __init__(self):
        self.down = False
        self.stored: list[tuple[str, bytes, str]] = []

    def publish(self, items) -> Published:
        items = list(items)
        if self.down:
            raise BusError("broker unreachable")
        self.stored += items
        return Published(stored=len(items))


def test_events_not_stored_by_the_broker_are_published_again():
    bus, feed = FlakyBus(), EventFeed(events(30))
    until = datetime(2022, 1, 10, 9, tzinfo=timezone.utc)
    bus.down = True
    with pytest.raises(BusError):
        feed.publish_due(bus, until)
    bus.down = False
    assert feed.publish_due(bus, until).stored == len(feed.events[:feed.position]) > 0
    assert feed.publish_due(bus, until).stored == 0  # released once
    assert len({msg_id for _, _, msg_id in bus.stored}) == len(bus.stored)


def test_status_changes_not_stored_by_the_broker_are_published_with_the_next_poll(data_dir):
    settings = Settings(data_dir=data_dir)
    sim = SimulationSettings()
    bus = FlakyBus()
    publisher = PollPublisher(settings, bus)
    raws = []
    for i in range(3):
        slot = SLOT + timedelta(minutes=10 * i)
        raws.append((slot, rawstore.write_raw(settings.raw_dir, "chargecloud", rawstore.slot_key(slot),
                                              chargecloud_poll(sim, slot))))
    publisher.publish_stored(*raws[0])
    bus.down = True
    with pytest.raises(BusError):
        publisher.publish_stored(*raws[1])
    bus.down = False
    publisher.publish_stored(*raws[2])
    # what the consumer gets is each item's status at the last published poll: as if the failed poll never was
    last = {}
    for subject, data, msg_id in bus.stored:
        if subject == "ev.status.change":
            table, item, connector, _ = msg_id.split("|")
            last[(table, item, connector)] = data
    reference = PollPublisher(Settings(data_dir=data_dir), FlakyBus())
    reference.publish_stored(*raws[0])
    reference.publish_stored(*raws[2])
    expected = {}
    for subject, data, msg_id in reference.bus.stored:
        if subject == "ev.status.change":
            table, item, connector, _ = msg_id.split("|")
            expected[(table, item, connector)] = data
    assert last == expected


def test_a_replayed_event_log_lands_like_the_batch_parser_reads_it(tmp_path, data_dir):
    import gzip
    import json

    from ev_assets.lib.live import landing
    from ev_assets.lib.live.bus import EVENTS_STREAM, Message
    from ev_assets.lib.live.feeds import replay_feed
    from ev_assets.lib.sources.sessions import parse

    lines = [json.dumps(e) for e in events(12, "replayed")]
    lines.insert(5, "{not json")
    plain, packed = tmp_path / "day1.jsonl", tmp_path / "day2.jsonl.gz"
    plain.write_text("\n".join(lines[:8]) + "\n")
    packed.write_bytes(gzip.compress(("\n".join(lines[8:]) + "\n").encode()))
    feed = replay_feed([plain, packed])
    bus = FlakyBus()
    feed.publish_due(bus, datetime(2100, 1, 1, tzinfo=timezone.utc))  # a replay: everything is due
    con = landing.connect_writer(data_dir / "live")
    landed = landing.land(con, [Message(EVENTS_STREAM, i + 1, subject, data, msg_id)
                              for i, (subject, data, msg_id) in enumerate(bus.stored)])
    assert landed.events == 12 and landed.quarantined == 1
    batch = pd.concat([parse("charging_events", p.name, p.read_bytes()).table for p in (plain, packed)])
    got = pd.read_sql("SELECT event_id, meter_kwh, event_type FROM charging_events ORDER BY event_id", con)
    expected = batch[["event_id", "meter_kwh", "event_type"]].sort_values("event_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
