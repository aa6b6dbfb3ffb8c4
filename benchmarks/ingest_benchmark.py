"""Ingestion benchmark: stored full-fleet chargecloud polls in, raw tables out, through the real asset.

    .venv/bin/python benchmarks/ingest_benchmark.py                     # one day of polls (144 x 38 cities), 3 runs
    .venv/bin/python benchmarks/ingest_benchmark.py --flat-days 7 --results-json ingest.json
    .venv/bin/python benchmarks/ingest_benchmark.py --repeat 1 --no-flat-check --profile ingest.prof

Steps (see benchmarks/README.md, "Ingestion"):

1. store  - the simulated 38-city fleet (`--stations-per-city 30`: 1,174 stations, 2,409 charging points, 2,851
            connectors, like the real 2,423 charging points) is polled every 10 minutes and each poll is stored as
            `chargecloud_polls` stores it (`rawstore.write_raw`: gzip JSON under raw/chargecloud/). Not timed; the
            files are kept in the data dir and reused by later runs on it.
2. ingest - the `chargecloud_tables` asset (the real Dagster asset of `ingest_job`) materialized for the days in
            one run, as a single-run backfill, in a child process: stored gzip files in, every raw chargecloud
            table, the quarantine and the contract checks out. `ingest_wall_s` is the wall time of that
            materialization (Dagster's run included, Python's start-up and imports not); peak memory is the child's
            high-water mark (wait4 `ru_maxrss`). A run over a day without polls goes first, in the same process:
            Dagster imports much of itself on a process's first run (~2.5 s), which is not ingestion. --repeat
            runs (default 3, each a fresh process and lake) give the median: the cores are shared.
3. flat   - the same ingest of 1 day and of --flat-days days (default 2), each in a fresh child and lake, to
            show that peak memory does not grow with the number of days (skipped with --no-flat-check).

Nothing is written to the repository: everything goes to --data-dir (default a fresh temporary folder, removed at
the end unless --keep).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench import datadir  # noqa: E402 (benchmarks/bench/, beside this script)
from bench.machine import machine_line as shared_machine_line  # noqa: E402

TARGET_MS_PER_POLL = 20.0
SLOTS_PER_DAY = 144
TABLES = ("status_chargingpoints", "status_connectors", "chargingstations", "chargingpoints", "connectors",
          "chargecloud_poll_log", "quarantine")


# ------------------------------------------------------------------------------------------------------------
# 1. stored polls
# ------------------------------------------------------------------------------------------------------------
def _simulation(args_seed: int, stations_per_city: int, start: date, days: int):
    from ev_assets.lib.settings import CHARGECLOUD_CITIES, SimulationSettings

    return SimulationSettings(seed=args_seed, cities=CHARGECLOUD_CITIES, stations_per_city=stations_per_city,
                              start=start, days=days)


def _store_slots(job: tuple) -> int:
    """Store the simulated polls of the given slots (one worker of the pool); returns how many it wrote."""
    from ev_assets.lib import rawstore
    from ev_assets.lib.simulator import chargecloud_poll

    raw_dir, sim, slots = job
    written = 0
    for slot in slots:
        key = rawstore.slot_key(slot)
        if rawstore.find_attempts(raw_dir, "chargecloud", key):
            continue
        written += rawstore.write_raw(raw_dir, "chargecloud", key, chargecloud_poll(sim, slot)).written
    return written


def store_polls(raw_dir: Path, sim, start: date, days: int, workers: int) -> tuple[int, float]:
    """Every 10-minute poll of `days` days from `start` stored under raw_dir (what is there already is kept)."""
    first = datetime(start.year, start.month, start.day, tzinfo=timezone.utc)
    slots = [first + timedelta(minutes=10 * k) for k in range(SLOTS_PER_DAY * days)]
    started = time.perf_counter()
    chunks = [slots[i::workers] for i in range(workers)]
    with ProcessPoolExecutor(workers) as pool:
        written = sum(pool.map(_store_slots, [(raw_dir, sim, chunk) for chunk in chunks]))
    return written, time.perf_counter() - started


# ------------------------------------------------------------------------------------------------------------
# 2. the ingest run (child process)
# ------------------------------------------------------------------------------------------------------------
def ingest_child(spec: dict) -> dict:
    """Materialize `chargecloud_tables` over [start, start + days) and describe what it wrote."""
    import dagster as dg

    from ev_assets.cli import RANGE_END_TAG, RANGE_START_TAG
    from ev_assets.lib import lake, warehouse
    from ev_assets.defs.raw.chargecloud import chargecloud_tables
    from ev_assets.defs.resources import EvConfig

    data_dir = Path(spec["data_dir"])
    start = date.fromisoformat(spec["start"])
    last = start + timedelta(days=spec["days"] - 1)

    def materialize(first: date, last: date):
        return dg.materialize(
            [chargecloud_tables],
            resources={"ev_config": EvConfig(data_dir=str(data_dir), source="simulated")},
            instance=dg.DagsterInstance.ephemeral(),
            tags={RANGE_START_TAG: f"{first}", RANGE_END_TAG: f"{last}"},
            raise_on_error=True,
        )

    # Dagster imports much of itself on a process's first run: a run over a day without polls pays for that, as a
    # code server that has run before would have, so the figure is the run's own time.
    started = time.perf_counter()
    materialize(start - timedelta(days=1), start - timedelta(days=1))
    first_run = time.perf_counter() - started
    profiler = None
    if spec.get("profile"):
        import cProfile

        profiler = cProfile.Profile()
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    result = materialize(start, last)
    if profiler:
        profiler.disable()
    wall = time.perf_counter() - started
    if profiler:
        profiler.dump_stats(spec["profile"])
    checks = {
        e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data.passed
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    with warehouse.lake_connection(lake.Lake(str(data_dir / "lake"))) as con:  # the raw tables are in the lake
        rows = {name: con.execute(f"SELECT count(*) FROM raw.{name}").fetchone()[0] for name in TABLES}
        polls = con.execute("SELECT count(DISTINCT poll_slot) FROM raw.chargecloud_poll_log").fetchone()[0]
    lake_bytes = sum(p.stat().st_size for p in (data_dir / "lake").rglob("*") if p.is_file())
    return {"lake_bytes": lake_bytes, "ingest_wall_s": wall, "empty_run_s": first_run, "polls": polls, "rows": rows, "checks": checks}


def run_child(spec: dict) -> dict:
    """Run `ingest_child` in a fresh process on a fresh warehouse; adds its peak RSS and whole wall time."""
    data_dir = Path(spec["data_dir"])
    shutil.rmtree(data_dir / "lake", ignore_errors=True)  # a fresh lake (the raw tables) per run
    command = [sys.executable, __file__, "--_child", json.dumps(spec)]
    out = tempfile.TemporaryFile(mode="w+")
    err = tempfile.TemporaryFile(mode="w+")
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=out, stderr=err, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    process_wall = time.perf_counter() - started
    out.seek(0)
    err.seek(0)
    stdout, stderr = out.read(), err.read()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"ingest child failed:\n{stderr[-5000:]}")
    line = next(line for line in stdout.splitlines() if line.startswith("INGEST_RESULT "))
    result = json.loads(line.removeprefix("INGEST_RESULT "))
    result.update(days=spec["days"], peak_rss_bytes=usage.ru_maxrss * 1024, process_wall_s=process_wall,
                  cpu_s=round(usage.ru_utime + usage.ru_stime, 2),
                  load_average=os.getloadavg())
    return result


# ------------------------------------------------------------------------------------------------------------
# reporting
# ------------------------------------------------------------------------------------------------------------
def mib(b: float) -> str:
    return f"{b / 1024**2:,.0f} MiB"


def machine_line() -> str:
    return shared_machine_line("ev_assets", ("duckdb", "pandas", "msgspec", "dagster"))


def report_run(label: str, run: dict) -> str:
    per_poll = 1000 * run["ingest_wall_s"] / max(run["polls"], 1)
    return (f"{label:>8}: {run['polls']:>5} polls  ingest {run['ingest_wall_s']:7.2f} s  {per_poll:6.1f} ms/poll  "
            f"peak RSS {mib(run['peak_rss_bytes'])}  (process {run['process_wall_s']:.1f} s, its first run over no "
            f"polls {run['empty_run_s']:.1f} s; load {run['load_average'][0]:.2f})")


# ------------------------------------------------------------------------------------------------------------
# main
# ------------------------------------------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--days", type=int, default=1, help="UTC days of polls to ingest in one run (default 1)")
    p.add_argument("--start", type=date.fromisoformat, default=date(2022, 1, 3), help="first UTC day (2022-01-03)")
    p.add_argument("--stations-per-city", type=int, default=30,
                   help="fleet size: 30 gives 1,174 stations, 2,409 charging points, 2,851 connectors in 38 cities")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--data-dir", type=Path, default=None,
                   help="where the stored polls and the warehouse go (default: a fresh temporary folder); a folder "
                        "this benchmark made before keeps its stored polls, so later runs skip step 1")
    p.add_argument("--keep", action="store_true", help="keep the data dir (a temporary one is removed otherwise)")
    p.add_argument("--repeat", type=int, default=3,
                   help="ingest runs of --days (each a fresh process and lake); the median is reported "
                        "(default 3: the cores are shared, single runs vary by +-20%%)")
    p.add_argument("--workers", type=int, default=2, help="processes that simulate and store the polls (step 1)")
    p.add_argument("--no-flat-check", dest="flat_check", action="store_false",
                   help="skip step 3 (the peak memory of 1 day against --flat-days days)")
    p.add_argument("--flat-days", type=int, default=2, help="the longer run of step 3 (default 2)")
    p.add_argument("--profile", type=Path, default=None,
                   help="write a cProfile of the main ingest run here and print its top functions")
    p.add_argument("--results-json", type=Path, default=None, help="also write the figures as JSON here")
    p.add_argument("--_child", dest="child", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def print_profile(path: Path, limit: int = 25) -> None:
    import pstats

    stats = pstats.Stats(str(path))
    stats.sort_stats("cumulative").print_stats(limit)
    stats.sort_stats("tottime").print_stats(limit)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        print("INGEST_RESULT " + json.dumps(ingest_child(json.loads(args.child))))
        return 0
    if args.days < 1 or args.repeat < 1 or args.flat_days < 2:
        sys.exit("--days and --repeat must be at least 1, --flat-days at least 2")

    data_dir, temporary = datadir.prepare(args.data_dir, "ingest_benchmark")
    try:
        print(machine_line())
        stored_days = max(args.days, args.flat_days if args.flat_check else 1)
        sim = _simulation(args.seed, args.stations_per_city, args.start, stored_days)
        written, store_s = store_polls(data_dir / "raw", sim, args.start, stored_days, args.workers)
        print(f"   store: {SLOTS_PER_DAY * stored_days} polls of 38 cities under {data_dir / 'raw'} "
              f"({written} written now, {store_s:.1f} s; not part of the figures)")

        spec = {"data_dir": str(data_dir), "start": f"{args.start}"}
        label = f"{args.days} day" + ("s" if args.days > 1 else "")
        repeats = []
        for i in range(args.repeat):
            profile = str(args.profile) if args.profile and i == 0 else None
            repeats.append(run_child({**spec, "days": args.days, "profile": profile}))
            print(report_run(label, repeats[-1]))
        main_run = sorted(repeats, key=lambda run: run["ingest_wall_s"])[len(repeats) // 2]  # the median run
        if len(repeats) > 1:
            print(f"  median of {len(repeats)} runs: {1000 * main_run['ingest_wall_s'] / max(main_run['polls'], 1):.1f} ms/poll")
        print(f"          rows: {main_run['rows']}")
        print(f"          checks: {main_run['checks']}")
        runs = {args.days: main_run}
        if args.flat_check:
            print(f"    flat: peak memory of 1 day against {args.flat_days} days")
            for days in (1, args.flat_days):
                if days not in runs:
                    runs[days] = run_child({**spec, "days": days})
                print(report_run(f"{days} day" + ("s" if days > 1 else ""), runs[days]))
            growth = runs[args.flat_days]["peak_rss_bytes"] - runs[1]["peak_rss_bytes"]
            print(f"    flat: peak RSS {args.flat_days} days vs 1 day {growth / runs[1]['peak_rss_bytes']:+.1%} "
                  f"({growth / 1024**2:+,.0f} MiB; the lake grew by "
                  f"{(runs[args.flat_days]['lake_bytes'] - runs[1]['lake_bytes']) / 1024**2:,.0f} MiB)")

        per_poll = 1000 * main_run["ingest_wall_s"] / max(main_run["polls"], 1)
        year_polls = 365 * SLOTS_PER_DAY
        print(f"  target: <= {TARGET_MS_PER_POLL:.0f} ms per poll: {per_poll:.1f} ms "
              f"({'MET' if per_poll <= TARGET_MS_PER_POLL else 'NOT MET'}); a year of {year_polls:,} polls at this "
              f"rate: {per_poll * year_polls / 60000:.1f} min")
        if args.profile:
            print_profile(args.profile)

        if args.results_json:
            results = {
                "days": args.days,
                "polls": main_run["polls"],
                "ingest_wall_s": round(main_run["ingest_wall_s"], 3),
                "ingest_ms_per_poll": round(per_poll, 2),
                "ingest_peak_rss_bytes": main_run["peak_rss_bytes"],
                "ingest_ms_per_poll_runs": [round(1000 * r["ingest_wall_s"] / max(r["polls"], 1), 2) for r in repeats],
                "process_wall_s": round(main_run["process_wall_s"], 3),
                "empty_run_s": round(main_run["empty_run_s"], 3),
                "rows": main_run["rows"],
                "checks": main_run["checks"],
                "target_ms_per_poll": TARGET_MS_PER_POLL,
                "target_met": per_poll <= TARGET_MS_PER_POLL,
                "load_average": main_run["load_average"],
                "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            if args.flat_check:
                flat_days = (1, args.flat_days)
                results["peak_rss_bytes_by_days"] = {str(d): runs[d]["peak_rss_bytes"] for d in flat_days}
                results["lake_bytes_by_days"] = {str(d): runs[d]["lake_bytes"] for d in flat_days}
                results["ingest_ms_per_poll_by_days"] = {
                    str(d): round(1000 * runs[d]["ingest_wall_s"] / max(runs[d]["polls"], 1), 2) for d in flat_days
                }
            args.results_json.write_text(json.dumps(results, indent=2) + "\n")
            print(f"results written to {args.results_json}")
    finally:
        if temporary and not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
        elif args.keep or not temporary:
            print(f"data kept in {data_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
