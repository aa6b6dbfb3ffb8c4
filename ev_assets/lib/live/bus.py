"""Publishing and consuming, behind an interface small enough for another broker's client to implement.

`Bus.publish(items)` sends `(subject, payload, message id)` triples and returns once the broker has stored them
(a message id seen before is stored once: the broker's de-duplication). `Bus.subscribe(stream, durable)` gives a
`Subscription` whose `fetch` returns up to n `Message`s that were stored but not yet acknowledged by that durable
consumer, and whose `ack` acknowledges them. A message that is fetched and not acknowledged in time is delivered
again, so a consumer that lands before it acknowledges loses nothing when it dies.

`NatsBus` implements it on NATS JetStream (nats-py). nats-py is asyncio-only; the bus runs one event loop in a
background thread so that the rest of the code stays synchronous. A Kafka implementation would map streams to
topics, the stream sequence to the partition offset, and `ack` to committing offsets.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any, Iterable, Protocol

STATUS_STREAM = "EV_STATUS"
EVENTS_STREAM = "EV_EVENTS"
STREAMS = {STATUS_STREAM: "ev.status.>", EVENTS_STREAM: "ev.events.>"}
DEDUP_WINDOW_S = 3600.0  # a message id published again within an hour is stored once
ACK_WAIT_S = 30.0  # a fetched message not acknowledged within this is delivered again
MSG_ID_HEADER = "Nats-Msg-Id"


@dataclass
class Message:
    stream: str
    seq: int  # the stream sequence: increasing, unique within the stream
    subject: str
    data: bytes
    msg_id: str | None
    delivered: int = 1  # how often the broker has delivered it (>1: a redelivery)
    handle: Any = field(default=None, repr=False, compare=False)


@dataclass
class Published:
    stored: int = 0
    duplicates: int = 0  # message ids the broker had already stored


class Subscription(Protocol):
    def fetch(self, max_messages: int, timeout_s: float) -> list[Message]: ...

    def ack(self, messages: list[Message]) -> None: ...

    def pending(self) -> int: ...


class Bus(Protocol):
    def publish(self, items: Iterable[tuple[str, bytes, str]]) -> Published: ...

    def subscribe(self, stream: str, durable: str) -> Subscription: ...

    def close(self) -> None: ...


class BusError(RuntimeError):
    """The broker could not be reached or refused a request; the message says what and where."""


class NatsBus:
    """A `Bus` on NATS JetStream. `in_flight` bounds the publishes awaiting their acknowledgement."""

    def __init__(self, url: str, name: str = "ev-assets", in_flight: int = 2000, connect_timeout_s: float = 5.0):
        import nats  # imported here: only the live path needs it

        self.url = url
        self.in_flight = in_flight
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"nats-{name}", daemon=True)
        self._thread.start()
        try:
            self._nc = self._run(nats.connect(
                url, name=name, connect_timeout=connect_timeout_s, allow_reconnect=True,
                max_reconnect_attempts=-1, reconnect_time_wait=0.25,
            ), timeout_s=connect_timeout_s + 5)
        except Exception as exc:
            self._stop_loop()
            raise BusError(f"cannot connect to the broker at {url}: {exc or type(exc).__name__}") from exc
        self._js = self._nc.jetstream(publish_async_max_pending=in_flight)
        self._streams_lock = threading.Lock()  # a consumer's thread and a publisher may both come first
        self._streams_ready = False

    def _run(self, coroutine, timeout_s: float | None = 60.0):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout_s)

    # --- streams ---------------------------------------------------------------------------------------------
    def ensure_streams(self) -> None:
        """Create the project's streams where missing (file storage, de-duplication window of an hour).

        The streams count as ready only once all of them exist: a publish that came while another thread had
        created the status stream but not yet the events stream had no stream to answer it (NATS's "no response
        from stream")."""
        from nats.js.api import StorageType, StreamConfig

        async def ensure():
            for name, subjects in STREAMS.items():
                config = StreamConfig(name=name, subjects=[subjects], storage=StorageType.FILE,
                                      duplicate_window=DEDUP_WINDOW_S)
                try:
                    await self._js.stream_info(name)
                except Exception:
                    await self._js.add_stream(config)

        with self._streams_lock:
            self._run(ensure())
            self._streams_ready = True

    def _ensure_streams_once(self) -> None:
        if not self._streams_ready:
            self.ensure_streams()

    def stream_last_seq(self, stream: str) -> int:
        async def last():
            return (await self._js.stream_info(stream)).state.last_seq

        return self._run(last())

    # --- publishing ------------------------------------------------------------------------------------------
    def publish(self, items: Iterable[tuple[str, bytes, str]]) -> Published:
        self._ensure_streams_once()
        result = Published()

        async def send():
            futures = []
            for subject, payload, msg_id in items:
                futures.append(await self._js.publish_async(subject, payload, headers={MSG_ID_HEADER: msg_id}))
                if len(futures) >= self.in_flight:
                    await _settle(futures, result)
                    futures = []
            await _settle(futures, result)

        try:
            self._run(send(), timeout_s=None)
        except Exception as exc:
            raise BusError(f"publishing to {self.url} failed after {result.stored} message(s): {exc or type(exc).__name__}") from exc
        return result

    # --- consuming -------------------------------------------------------------------------------------------
    def subscribe(self, stream: str, durable: str, max_ack_pending: int = 100_000) -> "NatsSubscription":
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        self._ensure_streams_once()
        config = ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT, ack_wait=ACK_WAIT_S,
                                deliver_policy=DeliverPolicy.ALL, max_ack_pending=max_ack_pending)
        subject = STREAMS[stream]
        sub = self._run(self._js.pull_subscribe(subject, durable=durable, stream=stream, config=config))
        return NatsSubscription(self, stream, durable, sub)

    def close(self) -> None:
        try:
            self._run(self._nc.close(), timeout_s=10)
        except Exception:
            pass
        self._stop_loop()

    def _stop_loop(self) -> None:
        async def cancel_rest():
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        try:
            self._run(cancel_rest(), timeout_s=5)
        except Exception:
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> "NatsBus":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


async def _settle(futures: list, result: Published) -> None:
    for ack in await asyncio.gather(*futures):
        if getattr(ack, "duplicate", False):
            result.duplicates += 1
        else:
            result.stored += 1


class NatsSubscription:
    def __init__(self, bus: NatsBus, stream: str, durable: str, sub):
        self.bus, self.stream, self.durable, self._sub = bus, stream, durable, sub

    def fetch(self, max_messages: int, timeout_s: float = 1.0) -> list[Message]:
        import nats.errors

        async def fetch():
            try:
                return await self._sub.fetch(max_messages, timeout=timeout_s)
            except (nats.errors.TimeoutError, asyncio.TimeoutError):
                return []

        messages = []
        for msg in self.bus._run(fetch(), timeout_s=timeout_s + 30):
            meta = msg.metadata
            messages.append(Message(stream=meta.stream, seq=meta.sequence.stream, subject=msg.subject,
                                    data=msg.data, msg_id=(msg.headers or {}).get(MSG_ID_HEADER),
                                    delivered=meta.num_delivered, handle=msg))
        return messages

    def ack(self, messages: list[Message]) -> None:
        async def ack():
            await asyncio.gather(*(m.handle.ack() for m in messages))
            await self.bus._nc.flush()

        self.bus._run(ack())

    def pending(self) -> int:
        """Messages of the stream this durable consumer has not yet been delivered (the backlog)."""
        async def info():
            return (await self._sub.consumer_info()).num_pending

        return self.bus._run(info())
