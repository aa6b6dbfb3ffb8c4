"""A NATS JetStream server per test, started by the test on a free port of 127.0.0.1 (store under tmp_path) and
stopped afterwards; helpers to run the consumer as a process of its own and to count what it landed."""

from __future__ import annotations


import pytest

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


