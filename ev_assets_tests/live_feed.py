"""Fill a live landing store as the consumer does (`store.land` of broker messages), without a broker: status polls
go through the publisher's `StatusTracker` (only what changed, then a poll-complete marker per city) and charging
events through `messages.charging_event`, each message with the next stream sequence."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from ev_assets.lib.sources import chargecloud
from ev_assets.lib.live import bus, changes, messages, store
from ev_assets.lib.live.clock import LiveClock


class LiveFeed:
    def __init__(self, live_dir: Path, clock: LiveClock | None = None):
        self.con = store.connect_writer(live_dir)
        self.tracker = changes.StatusTracker()
        self.seq = {bus.STATUS_STREAM: itertools.count(1), bus.EVENTS_STREAM: itertools.count(1)}
        if clock is not None:
            store.save_clock(self.con, clock)

    def land(self, stream: str, outgoing: list[messages.Outgoing]) -> store.Landed:
        return store.land(self.con, [bus.Message(stream, next(self.seq[stream]), subject, data, msg_id)
                                     for subject, data, msg_id in outgoing])

    def poll(self, slot: datetime, points: dict[str, tuple[str, str, str]], poll_time: datetime | None = None):
        """One poll of charging points `{id: (city, station, status)}` (the status table's rows, as the batch
        flattener gives them), at `slot` and polled at `poll_time` (slot + 1 s)."""
        poll_time = poll_time or slot + timedelta(seconds=1)
        rows = [{"poll_slot": slot, "poll_time": poll_time, "city_slug": city, "station_id": station,
                 "charging_point_id": cp, "connector_id": None, "status": status}
                for cp, (city, station, status) in points.items()]
        cities = sorted({city for city, _, _ in points.values()})
        flat = SimpleNamespace(
            status_chargingpoints=pd.DataFrame(rows), status_connectors=pd.DataFrame(),
            poll_log=pd.DataFrame({"city_slug": cities, "poll_slot": slot, "poll_time": poll_time, "ok": True}))
        return self.land(bus.STATUS_STREAM, self.tracker.changes(flat))

    def envelope(self, envelope: dict, slot: datetime):
        """A stored chargecloud poll (e.g. the simulator's), flattened by the batch code."""
        return self.land(bus.STATUS_STREAM, self.tracker.changes(chargecloud.flatten_poll(envelope, slot)))

    def events(self, events: list[dict]):
        return self.land(bus.EVENTS_STREAM, [messages.charging_event(e) for e in events])

    def now(self) -> datetime:
        """Now on the live clock stored with the store (real time without one)."""
        return store.load_clock(self.con).now()

    def close(self) -> None:
        self.con.close()


def event(kind: str, transaction: str, station: str, connector: int, at: datetime, energy_wh: float,
          power_w: float = 11000.0, cost: float | None = None, seq: int = 0) -> dict:
    """One OCPP-like event of the JSON Lines logs (`kind`: Started, Updated or Ended)."""
    out = {"eventId": str(uuid.uuid4()), "transactionId": transaction, "stationId": station,
           "connectorId": connector, "eventType": kind, "timestamp": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
           "seqNo": seq, "meterValue": {"energyWh": energy_wh, "powerW": power_w}}
    if cost is not None:
        out["cost"] = {"total": cost, "currency": "EUR"}
    return out
