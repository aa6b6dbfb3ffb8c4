"""A NATS JetStream server per test, started by the test on a free port of 127.0.0.1 (store under tmp_path) and
stopped afterwards; helpers to run the consumer as a process of its own and to count what it landed."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ev_assets.lib.live import store
from ev_assets.lib.live.broker import NatsServer
from ev_assets.lib.live.bus import NatsBus


@pytest.fixture
def broker(tmp_path):
    server = NatsServer(tmp_path / "nats").start()
    yield server
    server.stop()


@pytest.fixture
def bus(broker):
    with NatsBus(broker.url) as connected:
        connected.ensure_streams()
        yield connected


def events(n: int, prefix: str = "e", start: datetime = datetime(2022, 1, 10, 8, tzinfo=timezone.utc)) -> list[dict]:
    """n valid charging events in the event-log shape: transactions of a start, meter values and a stop."""
    out = []
    for i in range(n):
        tx, step = divmod(i, 10)
        kind = "Started" if step == 0 else "Ended" if step == 9 else "Updated"
        moment = start + timedelta(minutes=15 * step, seconds=tx)
        event = {"eventId": f"{prefix}-{i}", "transactionId": f"{prefix}-tx{tx}", "stationId": f"S{tx % 50}",
                 "connectorId": 1, "eventType": kind, "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "meterValue": {"energyWh": step * 2500, "powerW": 11000}}
        if kind == "Ended":
            event["cost"] = {"total": round(step * 2.5 * 0.39, 2), "currency": "EUR"}
        out.append(event)
    return out


def consumer_process(url: str, data_dir: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "EV_NATS_URL": url, "EV_DATA_DIR": str(data_dir)}
    return subprocess.Popen([sys.executable, "-m", "ev_assets.live", "consume"], env=env, stdout=open(log, "ab"),
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def landed(data_dir: Path) -> dict[str, int]:
    """Row counts of the landing store (zeros while it does not exist yet)."""
    try:
        con = store.connect_reader(data_dir / "live")
    except store.NoLiveData:
        return {"messages": 0, "charging_events": 0, "status_changes": 0, "quarantine": 0}
    try:
        return store.counts(con)
    except Exception:  # noqa: BLE001 - the schema is being created by the consumer
        return {"messages": 0, "charging_events": 0, "status_changes": 0, "quarantine": 0}
    finally:
        con.close()
