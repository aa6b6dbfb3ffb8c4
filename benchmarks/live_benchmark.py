"""The live path's figures: status latency, event throughput and latency, and what it costs in CPU.

    .venv/bin/python benchmarks/live_benchmark.py [--fleets 1 60] [--polls 8] [--events 100000]
                                                  [--cost-seconds 60] [--results-json out.json]

Each part starts its own NATS JetStream server on a free port (store in a temporary folder) and the consumer as
a process of its own (`python -m ev_assets.live consume`), as `make live` runs it.

- **Status latency** per fleet size (1 = the 38 cities at 2,409 charging points; 60 = ~145k, about the size of Germany):
  simulated polls of consecutive slots, each generated and stored first (untimed: the simulator is not the
  product), then timed from "stored in the raw store" to "its poll-complete markers readable in the landing store
  for every city" (the changes of a city are published, and land, before its marker), and on to "every city's
  newest poll slot on the service's `GET /kpi/status/now`" (the service started as `make serve` runs it).
  `/predict/availability` and the dashboard read the same landing store. The first poll publishes
  every item (the consumer's starting picture) and is reported on its own as the cold start.
- **Event throughput**: `--events` OCPP-like events published as fast as the client goes, timed from the first
  publish to the last one landed and acknowledged. During the load a probe publishes a new transaction's start
  every 50 ms and times it until it is readable as an open session: publish-to-visible latency under load.
- **Cost**: `python -m ev_assets.live run --no-ui` over today's fleet, CPU seconds of its process tree (runner,
  broker, feed, consumer) over `--cost-seconds` of wall time, idle (real-time clock, no poll falls due) and at
  60x speed (a poll every 10 s); the share at today's real rate is the idle share plus the per-poll cost spread
  over the 600 s between polls.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ev_assets.lib import rawstore  # noqa: E402
from ev_assets.lib.live import landing, messages, store  # noqa: E402
from ev_assets.lib.live.broker import NatsServer  # noqa: E402
from ev_assets.lib.live.bus import NatsBus  # noqa: E402
from ev_assets.lib.live.feeds import PollPublisher  # noqa: E402
from ev_assets.lib.settings import CHARGECLOUD_CITIES, Settings, SimulationSettings  # noqa: E402

STATIONS_PER_CITY_1X = 30  # 38 cities x 30 stations: 2,409 charging points, as in the warehouse benchmark
FIRST_SLOT = datetime(2022, 1, 10, 8, tzinfo=timezone.utc)


def _pct(values, q) -> float:
    return round(float(np.percentile(values, q)), 3) if len(values) else float("nan")


def _consumer(url: str, data_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "EV_NATS_URL": url, "EV_DATA_DIR": str(data_dir)}
    return subprocess.Popen([sys.executable, "-m", "ev_assets.live", "consume"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()


def _service(data_dir: Path) -> tuple[subprocess.Popen, str]:
    from ev_assets.lib.live.broker import free_port

    port = free_port()
    env = {**os.environ, "EV_DATA_DIR": str(data_dir), "EV_SERVE_PORT": str(port)}
    process = subprocess.Popen([sys.executable, "-m", "ev_assets.api"], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base}/health", timeout=2).read()
            return process, base
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the service did not start")


def _api_shows(base: str, slot_text: str, cities: int) -> bool:
    try:
        body = json.loads(urllib.request.urlopen(f"{base}/kpi/status/now", timeout=5).read())
    except OSError:
        return False
    slots = [c.get("poll_slot") or "" for c in body.get("cities", [])]
    return len(slots) == cities and all(s[:16] == slot_text[:16] for s in slots)


def status_latency(factor: int, polls: int, work: Path) -> dict:
    from ev_assets.lib.simulator import chargecloud_poll

    data_dir = work / f"status_{factor}x"
    sim = SimulationSettings(cities=CHARGECLOUD_CITIES, stations_per_city=STATIONS_PER_CITY_1X * factor)
    settings = Settings(data_dir=data_dir, simulation=sim)
    print(f"[status {factor}x] building the simulated fleet ...", flush=True)
    started = time.perf_counter()
    chargecloud_poll(sim, FIRST_SLOT)  # the fleet is built once, outside the timing
    print(f"[status {factor}x] fleet ready in {time.perf_counter() - started:.0f} s", flush=True)
    latencies, api_latencies, cold, items, changes = [], [], None, 0, []
    with NatsServer(work / f"nats_{factor}x") as server, NatsBus(server.url) as bus:
        bus.ensure_streams()
        landing.connect_writer(settings.live_dir).close()
        consumer = _consumer(server.url, data_dir)
        service, base = _service(data_dir)
        publisher = PollPublisher(settings, bus)
        reader = None
        try:
            for i in range(polls):
                slot = FIRST_SLOT + timedelta(minutes=10 * i)
                envelope = chargecloud_poll(sim, slot)
                raw = rawstore.write_raw(settings.raw_dir, "chargecloud", rawstore.slot_key(slot), envelope)
                t0 = time.perf_counter()  # the poll is stored
                published = publisher.publish_stored(slot, raw)
                t_published = time.perf_counter() - t0
                target = messages.iso(slot)
                while True:
                    if reader is None:
                        try:
                            reader = store.connect_reader(settings.live_dir)
                        except store.NoLiveData:
                            time.sleep(0.01)
                            continue
                    row = reader.execute("SELECT count(*) FROM city_polls WHERE poll_slot = ?", (target,)).fetchone()
                    if row[0] == len(CHARGECLOUD_CITIES):
                        break
                    time.sleep(0.01)
                latency = time.perf_counter() - t0
                while not _api_shows(base, target, len(CHARGECLOUD_CITIES)):
                    time.sleep(0.01)
                api_latency = time.perf_counter() - t0
                n_changes = published.stored - len(CHARGECLOUD_CITIES)
                print(f"[status {factor}x] poll {i + 1}/{polls}: {n_changes:,} changes, published in "
                      f"{t_published:.2f} s, landed after {latency:.2f} s, on /kpi/status/now after "
                      f"{api_latency:.2f} s", flush=True)
                if i == 0:
                    cold, items = api_latency, n_changes
                else:
                    latencies.append(latency)
                    api_latencies.append(api_latency)
                    changes.append(n_changes)
        finally:
            _stop(consumer)
            _stop(service)
    return {"fleet_factor": factor, "charging_points_and_connectors": items, "polls_timed": len(latencies),
            "changes_per_poll_median": int(np.median(changes)) if changes else 0,
            "cold_start_s": round(cold, 3) if cold else None, "landed_p50_s": _pct(latencies, 50),
            "landed_p99_s": _pct(latencies, 99), "api_p50_s": _pct(api_latencies, 50), "api_p99_s": _pct(api_latencies, 99),
            "api_max_s": round(max(api_latencies), 3) if api_latencies else None}


def _events(n: int, prefix: str) -> list[dict]:
    start = FIRST_SLOT
    out = []
    for i in range(n):
        tx, step = divmod(i, 10)
        kind = "Started" if step == 0 else "Ended" if step == 9 else "Updated"
        out.append({"eventId": f"{prefix}-{i}", "transactionId": f"{prefix}-tx{tx}", "stationId": f"S{tx % 5000}",
                    "connectorId": 1, "eventType": kind,
                    "timestamp": (start + timedelta(minutes=15 * step, seconds=tx % 3600)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "meterValue": {"energyWh": step * 2500, "powerW": 11000},
                    **({"cost": {"total": 8.78, "currency": "EUR"}} if kind == "Ended" else {})})
    return out


def event_throughput(n: int, work: Path) -> dict:
    data_dir = work / "events"
    live_dir = data_dir / "live"
    load = _events(n, "load")
    probe_latencies: list[float] = []
    with NatsServer(work / "nats_events") as server, NatsBus(server.url) as bus, \
            NatsBus(server.url, name="probe") as probe_bus:
        bus.ensure_streams()
        consumer = _consumer(server.url, data_dir)
        landing.connect_writer(live_dir).close()
        time.sleep(1.0)  # the consumer is connected and subscribed
        done = threading.Event()

        def probe() -> None:
            reader = store.connect_reader(live_dir)
            k = 0
            while not done.is_set():
                k += 1
                event = {"eventId": f"probe-{k}", "transactionId": f"probe-tx{k}", "stationId": "PROBE",
                         "connectorId": 1, "eventType": "Started", "timestamp": "2022-01-10T09:00:00Z",
                         "meterValue": {"energyWh": 0, "powerW": 11000}}
                t0 = time.perf_counter()
                probe_bus.publish([messages.charging_event(event)])
                while reader.execute("SELECT 1 FROM transactions WHERE transaction_id = ? AND stopped_at IS NULL",
                                     (f"probe-tx{k}",)).fetchone() is None:
                    time.sleep(0.005)
                probe_latencies.append(time.perf_counter() - t0)
                time.sleep(0.05)

        prober = threading.Thread(target=probe, daemon=True)
        t0 = time.perf_counter()
        prober.start()
        published = bus.publish(messages.charging_event(e) for e in load)
        t_published = time.perf_counter() - t0
        reader = store.connect_reader(live_dir)
        while reader.execute("SELECT count(*) FROM charging_events WHERE event_id LIKE 'load-%'").fetchone()[0] < n:
            time.sleep(0.05)
        elapsed = time.perf_counter() - t0
        done.set()
        prober.join(30)
        _stop(consumer)
        landed = reader.execute("SELECT count(*) FROM charging_events WHERE event_id LIKE 'load-%'").fetchone()[0]
    print(f"[events] {n:,} events: published in {t_published:.1f} s, all landed after {elapsed:.1f} s "
          f"({n / elapsed:,.0f}/s); probe p50 {_pct(probe_latencies, 50)} s, p99 {_pct(probe_latencies, 99)} s "
          f"({len(probe_latencies)} probes)", flush=True)
    return {"events": n, "stored_by_broker": published.stored, "landed": landed, "publish_s": round(t_published, 2),
            "publish_per_s": round(n / t_published), "end_to_end_s": round(elapsed, 2),
            "landed_per_s": round(n / elapsed), "probe_count": len(probe_latencies),
            "probe_p50_s": _pct(probe_latencies, 50), "probe_p99_s": _pct(probe_latencies, 99)}


def _tree_cpu_s(pid: int) -> float:
    """utime + stime of a process and all its descendants (seconds)."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks
    tree, frontier = {pid}, [pid]
    while frontier:
        current = frontier.pop()
        for child, parent in parents.items():
            if parent == current and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(cpu.get(p, 0.0) for p in tree)


def cost(seconds: float, work: Path) -> dict:
    results = {}
    for label, speed in (("idle", "1"), ("at_60x", "60")):
        data_dir = work / f"cost_{label}"
        env = {**os.environ, "EV_DATA_DIR": str(data_dir), "EV_LIVE_SPEED": speed,
               "EV_SIM_CITIES": ",".join(CHARGECLOUD_CITIES), "EV_SIM_STATIONS_PER_CITY": str(STATIONS_PER_CITY_1X)}
        env.pop("EV_NATS_URL", None)
        process = subprocess.Popen([sys.executable, "-m", "ev_assets.live", "run", "--no-ui"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        time.sleep(20)  # start-up (imports, the fleet, the first poll: every item) is not the steady state
        before, t0 = _tree_cpu_s(process.pid), time.perf_counter()
        time.sleep(seconds)
        used, wall = _tree_cpu_s(process.pid) - before, time.perf_counter() - t0
        _stop(process)
        results[label] = {"cpu_s": round(used, 2), "wall_s": round(wall, 1), "cpu_share_of_one_core": round(used / wall, 4)}
        print(f"[cost] {label}: {used:.2f} CPU s over {wall:.0f} s ({100 * used / wall:.2f}% of one core)", flush=True)
    idle = results["idle"]["cpu_share_of_one_core"]
    polls = results["at_60x"]["wall_s"] / 10.0  # at 60x a 10-minute slot passes every 10 s
    per_poll = max(results["at_60x"]["cpu_s"] - idle * results["at_60x"]["wall_s"], 0.0) / polls
    results["cpu_s_per_poll_1x"] = round(per_poll, 3)
    results["share_at_real_rate"] = round(idle + per_poll / 600.0, 4)
    print(f"[cost] per poll of today's fleet (with its events): {per_poll:.2f} CPU s; at the real rate "
          f"{100 * results['share_at_real_rate']:.2f}% of one core", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fleets", type=int, nargs="*", default=[1, 60])
    parser.add_argument("--polls", type=int, default=8)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--cost-seconds", type=float, default=60.0)
    parser.add_argument("--skip", nargs="*", default=[], choices=("status", "events", "cost"))
    parser.add_argument("--results-json", type=Path)
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, load average "
          f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}", flush=True)
    results: dict = {"machine": {"cores": os.cpu_count(), "load_average_1m": round(load[0], 2)}}
    with tempfile.TemporaryDirectory(prefix="ev_live_benchmark_") as tmp:
        work = Path(tmp)
        if "status" not in args.skip:
            results["status_latency"] = [status_latency(f, args.polls, work) for f in args.fleets]
        if "events" not in args.skip:
            results["events"] = event_throughput(args.events, work)
        if "cost" not in args.skip:
            results["cost"] = cost(args.cost_seconds, work)
    print(json.dumps(results, indent=2))
    if args.results_json:
        args.results_json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
