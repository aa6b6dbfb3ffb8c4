"""`python -m ev_assets.live COMMAND`: the live path's processes (the logic is in `ev_assets.lib.live`).

    run       (`make live`) everything: the broker (unless EV_NATS_URL names one), the feed, the consumer, the
              Dagster daemon with the live sensors, the service and the dashboard; Ctrl-C stops all it started
    broker    a NATS JetStream server on a free port of 127.0.0.1, its store under <data root>/live/nats
    feed      the publishers: a chargecloud poll each slot of the live clock, and the charging events as they fall due
    consume   the consumer: fetch, land in <data root>/live/landed.sqlite, acknowledge

`feed` and `consume` need EV_NATS_URL. In simulated mode the feed runs on a clock EV_LIVE_SPEED times faster than
the wall clock (default 60: a 10-minute poll every 10 s), starting at the current slot; in live mode (the real
chargecloud endpoint, EV_SOURCE_CHARGECLOUD=live) the clock is real time.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ev_assets.lib.settings import Settings, SettingsError

STATUS_EVERY_S = 10.0


def _say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        sys.exit(f"ev-assets live: {exc}")


def _need_url(settings: Settings) -> str:
    if not settings.nats_url:
        sys.exit("ev-assets live: EV_NATS_URL is not set (`python -m ev_assets.live run` starts a broker and sets it)")
    return settings.nats_url


def _clock(settings: Settings):
    from ev_assets.lib.sources import chargecloud
    from ev_assets.lib.live import landing
    from ev_assets.lib.live.clock import LiveClock

    con = landing.connect_writer(settings.live_dir)
    try:
        if settings.mode("chargecloud") == "live":
            clock = LiveClock.real()
        else:
            start = chargecloud.floor_slot(LiveClock.real().now(), settings.poll_interval_minutes)
            clock = LiveClock.starting_at(start, settings.live_speed)
        landing.save_clock(con, clock)
    finally:
        con.close()
    return clock


def _until_interrupted(stop: threading.Event) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())


def cmd_broker(settings: Settings) -> None:
    from ev_assets.lib.live.broker import NatsServer

    stop = threading.Event()
    _until_interrupted(stop)
    with NatsServer(settings.live_dir / "nats") as server:
        _say(f"NATS JetStream on {server.url} (store {server.store_dir}); Ctrl-C stops it")
        stop.wait()


def cmd_feed(settings: Settings) -> None:
    from ev_assets.lib.live import feeds, landing, store
    from ev_assets.lib.live.bus import NatsBus

    stop = threading.Event()
    _until_interrupted(stop)
    con = landing.connect_writer(settings.live_dir)
    clock = store.load_clock(con)
    con.close()
    with NatsBus(_need_url(settings), name="ev-feed") as bus:
        bus.ensure_streams()

        def on_poll(slot, published):
            _say(f"poll {slot:%Y-%m-%d %H:%M} stored, {published.stored} status message(s) published")

        feeds.run_feed(settings, bus, clock, stop, _say, on_poll=on_poll)


def cmd_consume(settings: Settings) -> None:
    from ev_assets.lib.live.bus import NatsBus
    from ev_assets.lib.live.consumer import Consumer

    stop = threading.Event()
    _until_interrupted(stop)
    with NatsBus(_need_url(settings), name="ev-consumer") as bus:
        consumer = Consumer(bus, settings.live_dir, log=_say).start()
        _say(f"consuming into {settings.live_dir / 'landed.sqlite'}")
        while not stop.wait(STATUS_EVERY_S):
            landed = consumer.stats.landed
            _say(f"landed {landed.messages:,} message(s) ({landed.status_changes:,} status changes, "
                 f"{landed.events:,} events, {landed.quarantined} quarantined, {landed.duplicates} duplicates skipped)")
        consumer.stop()


def _child(name: str, args: list[str], env: dict[str, str], log_dir: Path) -> subprocess.Popen:
    log_dir.mkdir(parents=True, exist_ok=True)
    out = open(log_dir / f"{name}.log", "ab")
    return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)


def _start_sensors(python: str, env: dict[str, str], log_dir: Path) -> None:
    """Turn the live sensors on in the Dagster instance (they start stopped, for a demo without a live path)."""
    from ev_assets.defs.live import LIVE_SENSORS

    dagster = str(Path(python).with_name("dagster"))
    for name in LIVE_SENSORS:
        done = subprocess.run([dagster, "sensor", "start", "-w", "workspace.yaml", name], env=env,
                              capture_output=True, text=True)
        with open(log_dir / "dagster-daemon.log", "a", encoding="utf-8") as log:
            log.write(done.stdout + done.stderr)
        if done.returncode != 0 and "already running" not in (done.stdout + done.stderr):
            _say(f"could not start the sensor {name}: see {log_dir / 'dagster-daemon.log'}")


def _stop_children(children: dict[str, subprocess.Popen]) -> None:
    for sig, wait_s in ((signal.SIGINT, 10), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        alive = [p for p in children.values() if p.poll() is None]
        for process in alive:
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait_s
        while any(p.poll() is None for p in alive) and time.monotonic() < deadline:
            time.sleep(0.1)


def _status_line(settings: Settings) -> str:
    from ev_assets.lib.live import store

    con = store.connect_reader(settings.live_dir)
    try:
        fresh, counts, sessions = store.freshness(con), store.counts(con), len(store.open_sessions(con))
    finally:
        con.close()
    age = fresh.age_s()
    if age is None:
        return "waiting for data"
    return (f"landed {counts['messages']:,} messages; {counts['status_now']:,} items live, {sessions:,} open "
            f"sessions; data as of {(fresh.data_as_of() or '-')[:19]} ({age:.0f} s ago)")


def cmd_run(settings: Settings, with_ui: bool = True) -> None:
    from ev_assets.lib.live import store
    from ev_assets.lib.live.broker import NatsServer

    stop = threading.Event()
    _until_interrupted(stop)
    server = None
    url = settings.nats_url
    if not url:
        server = NatsServer(settings.live_dir / "nats").start()
        url = server.url
    clock = _clock(settings)
    env = {**os.environ, "EV_NATS_URL": url, "EV_DATA_DIR": str(settings.data_dir)}
    python = sys.executable
    log_dir = settings.live_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    children = {
        "consumer": _child("consumer", [python, "-m", "ev_assets.live", "consume"], env, log_dir),
        "feed": _child("feed", [python, "-m", "ev_assets.live", "feed"], env, log_dir),
    }
    if with_ui:
        # loading the code location twice takes a while: the rest starts meanwhile
        threading.Thread(target=_start_sensors, args=(python, env, log_dir), daemon=True).start()
        daemon = str(Path(python).with_name("dagster-daemon"))
        children["dagster-daemon"] = _child("dagster-daemon", [daemon, "run", "-w", "workspace.yaml"], env, log_dir)
        children["service"] = _child("service", [python, "-m", "ev_assets.api"], env, log_dir)
        children["dashboard"] = _child("dashboard", [python, "-m", "ev_assets.dashboard"], env, log_dir)
    clock_text = f"simulated clock at {clock.speed:g}x from {clock.origin_sim:%Y-%m-%d %H:%M} UTC" if clock.simulated \
        else "real time"
    _say(f"live path running ({clock_text}); broker {url}; logs in {log_dir}")
    if with_ui:
        _say(f"service   {settings.service_url}/health")
        _say(f"dashboard {settings.dashboard_url}")
        _say("Dagster daemon with the live sensors (see the runs and assets with `make ui`)")
    _say("Ctrl-C stops everything it started")
    try:
        while not stop.wait(STATUS_EVERY_S):
            for name, process in children.items():
                if process.poll() is not None:
                    _say(f"{name} exited with code {process.returncode}: see {log_dir / (name + '.log')}")
                    stop.set()
            try:
                _say(_status_line(settings))
            except store.NoLiveData:
                _say("waiting for the first landed message")
    finally:
        _say("stopping ...")
        _stop_children(children)
        if server:
            server.stop()
        _say("stopped")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ev_assets.live", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("run", "broker", "feed", "consume"))
    parser.add_argument("--no-ui", action="store_true", help="run: only the broker, the feed and the consumer")
    args = parser.parse_args(argv)
    settings = _settings()
    if args.command == "run":
        cmd_run(settings, with_ui=not args.no_ui)
    else:
        {"broker": cmd_broker, "feed": cmd_feed, "consume": cmd_consume}[args.command](settings)


if __name__ == "__main__":
    main()
