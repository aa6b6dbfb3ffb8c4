"""`python -m ev_assets.live run` (what `make live` runs): it starts the broker, the feed and the consumer, lands
polls as the clock passes their slots, and Ctrl-C stops everything it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from ev_assets.lib.live import store
from ev_assets_tests.fixtures.live_feed import landed


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def test_live_run_lands_polls_and_ctrl_c_stops_everything(data_dir, tmp_path):
    env = {**os.environ, "EV_DATA_DIR": str(data_dir), "EV_LIVE_SPEED": "600"}  # a 10-minute slot per second
    env.pop("EV_NATS_URL", None)
    process = subprocess.Popen([sys.executable, "-m", "ev_assets.live", "run", "--no-ui"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert store.wait_until(lambda: landed(data_dir)["messages"] > 0 and _marks(data_dir) >= 9, 60, every_s=0.2)
        children = _children_of(process.pid)
        assert len(children) == 3  # nats-server, the feed, the consumer
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "live path running (simulated clock at 600x" in output and output.rstrip().endswith("stopped")
    time.sleep(0.5)
    assert not [pid for pid in children if os.path.exists(f"/proc/{pid}") and "Z" not in _state(pid)]
    con = store.connect_reader(data_dir / "live")
    assert len(store.status_now(con, "status_chargingpoints")) == 81  # every charging point of the simulated fleet
    assert len(store.status_now(con, "status_connectors")) == 95
    assert set(store.city_polls(con)["city_slug"]) == {"koeln", "bonn", "bayreuth"}
    assert len(list((data_dir / "raw" / "chargecloud").rglob("*.json.gz"))) >= 3  # each poll stored before publishing


def _marks(data_dir) -> int:
    return landed(data_dir).get("poll_marks", 0)


def _state(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"
