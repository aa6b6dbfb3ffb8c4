"""The consumer: fetch a batch, land it (`landing.land`, one transaction), then acknowledge it.

Acknowledging only after the batch is committed is what makes landing exactly-once in effect: a consumer killed
between the two gets the batch again, and the store skips what it already holds. One thread per stream, each with
its own SQLite connection (SQLite serialises the two writers). Batches are bounded (`batch_size`), so a consumer
far behind catches up in bounded memory. Errors from the broker (a restart, a network blip) are logged and retried
with a growing pause; the client reconnects by itself.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ev_assets.lib.live import landing
from ev_assets.lib.live.bus import EVENTS_STREAM, STATUS_STREAM, Bus

DURABLE = "lander"
Log = Callable[[str], None]


@dataclass
class ConsumerStats:
    landed: landing.Landed = field(default_factory=landing.Landed)
    batches: int = 0
    errors: int = 0
    last_error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, landed: landing.Landed) -> None:
        with self.lock:
            self.landed.add(landed)
            self.batches += 1


class Consumer:
    def __init__(self, bus: Bus, live_dir: Path, streams: tuple[str, ...] = (STATUS_STREAM, EVENTS_STREAM),
                 durable: str = DURABLE, batch_size: int = 2000, fetch_timeout_s: float = 0.5,
                 log: Log | None = None, on_landed: Callable[[str, landing.Landed], None] | None = None):
        self.bus, self.live_dir, self.streams, self.durable = bus, Path(live_dir), streams, durable
        self.batch_size, self.fetch_timeout_s = batch_size, fetch_timeout_s
        self.log = log or (lambda message: None)
        self.on_landed = on_landed
        self.stats = ConsumerStats()
        self.stop_event = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> "Consumer":
        landing.connect_writer(self.live_dir).close()  # create the schema once, before the threads race for it
        for stream in self.streams:
            thread = threading.Thread(target=self._run, args=(stream,), name=f"consume-{stream}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self.stop_event.set()
        for thread in self._threads:
            thread.join(timeout_s)

    def _run(self, stream: str) -> None:
        con = landing.connect_writer(self.live_dir)
        subscription, pause = None, 0.2
        while not self.stop_event.is_set():
            try:
                if subscription is None:
                    subscription = self.bus.subscribe(stream, self.durable)
                batch = subscription.fetch(self.batch_size, self.fetch_timeout_s)
                if not batch:
                    continue
                landed = landing.land(con, batch)
                subscription.ack(batch)  # only after the commit
                self.stats.add(landed)
                if self.on_landed:
                    self.on_landed(stream, landed)
                pause = 0.2
            except Exception as exc:  # noqa: BLE001 - a consumer keeps going; the error is logged and counted
                with self.stats.lock:
                    self.stats.errors += 1
                    self.stats.last_error = f"{type(exc).__name__}: {exc}"
                self.log(f"{stream}: {type(exc).__name__}: {exc} (retrying in {pause:.1f} s)")
                self.stop_event.wait(pause)
                pause = min(pause * 2, 5.0)
        con.close()


def consume_until_idle(bus: Bus, live_dir: Path, idle_s: float = 1.0, timeout_s: float = 120.0, **kwargs) -> ConsumerStats:
    """Consume until no message has landed for `idle_s` (tests, benchmarks, catch-up runs)."""
    consumer = Consumer(bus, live_dir, **kwargs).start()
    deadline = time.monotonic() + timeout_s
    last, quiet_since = -1, time.monotonic()
    try:
        while time.monotonic() < deadline:
            time.sleep(0.1)
            seen = consumer.stats.landed.messages + consumer.stats.landed.duplicates
            if seen != last:
                last, quiet_since = seen, time.monotonic()
            elif time.monotonic() - quiet_since >= idle_s:
                break
    finally:
        consumer.stop()
    return consumer.stats
