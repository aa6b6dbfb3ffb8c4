"""Faults of the live path, each counting messages end to end: what was published is landed exactly once."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time

from ev_assets.lib.live import messages, store
from ev_assets.lib.live.bus import EVENTS_STREAM, STATUS_STREAM, NatsBus
from ev_assets.lib.live.consumer import Consumer
from ev_assets.lib.live.broker import NatsServer
from ev_assets_tests.fixtures.live_feed import consumer_process, events, landed


def _publish(bus, items) -> int:
    return bus.publish(messages.charging_event(e) for e in items).stored


def _wait_for(data_dir, n: int, timeout_s: float) -> dict:
    store.wait_until(lambda: landed(data_dir)["charging_events"] >= n, timeout_s, every_s=0.1)
    return landed(data_dir)


def test_a_consumer_killed_mid_batch_loses_nothing_and_lands_nothing_twice(bus, broker, data_dir, tmp_path):
    n = 12_000
    assert _publish(bus, events(n)) == n
    first = consumer_process(broker.url, data_dir, tmp_path / "consumer1.log")
    try:
        assert store.wait_until(lambda: landed(data_dir)["charging_events"] >= 1_000, 60, every_s=0.02)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    at_kill = landed(data_dir)["charging_events"]
    assert 0 < at_kill < n, f"the kill should come mid-way, landed {at_kill} of {n}"

    second = consumer_process(broker.url, data_dir, tmp_path / "consumer2.log")
    try:
        counts = _wait_for(data_dir, n, 120)
    finally:
        second.send_signal(signal.SIGINT)
        second.wait(20)
    assert counts["charging_events"] == n
    assert counts["messages"] == n  # one landed message per published event: none twice, none lost
    assert counts["quarantine"] == 0


def test_a_broker_restart_loses_nothing(tmp_path, data_dir):
    server = NatsServer(tmp_path / "nats").start()
    port = server.port
    bus = NatsBus(server.url)
    consumer = Consumer(bus, data_dir / "live", batch_size=500).start()
    try:
        assert _publish(bus, events(6_000, "before")) == 6_000
        assert store.wait_until(lambda: landed(data_dir)["charging_events"] >= 1_000, 60, every_s=0.02)
        server.stop()  # mid-consumption
        server = NatsServer(tmp_path / "nats", port=port).start()
        published = 0
        for attempt in range(50):  # the client reconnects by itself; publishing waits for it
            try:
                published = _publish(bus, events(6_000, "after"))
                break
            except Exception:  # noqa: BLE001
                time.sleep(0.2)
        assert published == 6_000
        counts = _wait_for(data_dir, 12_000, 120)
    finally:
        consumer.stop()
        bus.close()
        server.stop()
    assert counts["charging_events"] == 12_000
    assert counts["messages"] == 12_000


def test_a_publish_while_a_consumer_creates_the_streams_waits_for_all_of_them(broker):
    with NatsBus(broker.url) as bus:
        add_stream, status_created = bus._js.add_stream, threading.Event()

        async def slow_add_stream(config):  # the events stream comes a second after the status stream
            if config.name == EVENTS_STREAM:
                status_created.set()
                await asyncio.sleep(1.0)
            return await add_stream(config)

        bus._js.add_stream = slow_add_stream
        subscribing = threading.Thread(target=bus.subscribe, args=(STATUS_STREAM, "early"))
        subscribing.start()
        assert status_created.wait(10)
        assert _publish(bus, events(3, "early")) == 3  # was "nats: no response from stream"
        subscribing.join(10)
        assert bus.stream_last_seq(EVENTS_STREAM) == 3


def test_a_malformed_message_is_quarantined_with_its_sequence_and_the_stream_goes_on(bus, data_dir):
    good = events(4, "ok")
    bus.publish([messages.charging_event(good[0]), messages.charging_event(good[1])])
    bus.publish([("ev.events.stop", b"{not json", "broken-1")])
    bus.publish([messages.charging_event({**good[2], "eventType": "Paused"})])
    bus.publish([("ev.status.change", json.dumps({"type": "status_change", "table": "status_chargingpoints",
                                                  "status": "ON_FIRE"}).encode(), "broken-2")])
    bus.publish([messages.charging_event(good[3])])
    consumer = Consumer(bus, data_dir / "live").start()
    try:
        assert store.wait_until(lambda: landed(data_dir)["messages"] >= 6, 30)
    finally:
        consumer.stop()
    con = store.connect_reader(data_dir / "live")
    quarantined = con.execute("SELECT stream, seq, reason FROM quarantine ORDER BY stream, seq").fetchall()
    assert landed(data_dir)["charging_events"] == 3
    assert quarantined == [
        ("EV_EVENTS", 3, "malformed JSON: Expecting property name enclosed in double quotes"),
        ("EV_EVENTS", 4, "unknown eventType 'Paused' (expected Started, Updated or Ended)"),
        ("EV_STATUS", 1, "unknown status 'ON_FIRE'"),
    ]


def test_two_consumers_started_by_mistake_land_each_message_once(bus, broker, data_dir, tmp_path):
    n = 6_000
    one = consumer_process(broker.url, data_dir, tmp_path / "one.log")
    two = consumer_process(broker.url, data_dir, tmp_path / "two.log")
    try:
        assert _publish(bus, events(n, "twice")) == n
        counts = _wait_for(data_dir, n, 120)
        time.sleep(1.0)  # anything either still had in hand would land now
        counts = landed(data_dir)
    finally:
        for process in (one, two):
            process.send_signal(signal.SIGINT)
        for process in (one, two):
            process.wait(20)
    assert counts["charging_events"] == n
    assert counts["messages"] == n


def test_a_consumer_far_behind_catches_up_in_bounded_memory(bus, broker, data_dir, tmp_path):
    n = 40_000  # an hour of events at well above today's fleet's rate
    assert _publish(bus, events(n, "backlog")) == n
    process = consumer_process(broker.url, data_dir, tmp_path / "catchup.log")
    peak_kb = 0
    try:
        deadline = time.monotonic() + 180
        while landed(data_dir)["charging_events"] < n and time.monotonic() < deadline:
            status = open(f"/proc/{process.pid}/status").read()
            peak_kb = max(peak_kb, int(status.split("VmHWM:")[1].split()[0]))
            time.sleep(0.2)
        status = open(f"/proc/{process.pid}/status").read()
        peak_kb = max(peak_kb, int(status.split("VmHWM:")[1].split()[0]))
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(20)
    assert landed(data_dir)["charging_events"] == n
    # the consumer holds one batch (2,000 messages) at a time: its peak stays far below the backlog's size
    assert peak_kb < 400_000, f"consumer peak RSS {peak_kb / 1024:.0f} MiB"
