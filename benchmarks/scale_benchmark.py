"""Scale-out benchmark: 7 days of full-fleet chargecloud polls ingested in one process and on 2 Celery workers, and
the lake against the DuckDB raw tables of before; the figures of the README's capacity plan.

    .venv/bin/python benchmarks/scale_benchmark.py --results-json scale.json        # 7 days (~10 min on 2 busy cores)
    .venv/bin/python benchmarks/scale_benchmark.py --days 2 --no-celery             # the lake vs DuckDB only

Steps (see benchmarks/README.md, "Scale-out"):

1. store   - the simulated 38-city fleet (1,174 stations, 2,409 charging points) polled every 10 minutes for --days
             days, stored as `chargecloud_polls` stores them (ingest_benchmark.store_polls; not timed).
2. layouts - the day-by-day core of ingestion without Dagster, in a fresh child each: the stored polls flattened
             (`chargecloud.flatten_polls`) and written either as lake partitions (`lake.Lake.write`, today's path)
             or into the DuckDB file's raw tables (`warehouse.replace_rows` / `upsert_versions`, the path before the
             lake). Same polls, same rows: ms per poll of each, and the bytes each layout holds.
3. process - the real asset `chargecloud_tables` over the days as one single-run backfill in one process
             (ingest_benchmark.run_child): wall, CPU seconds (the child's user + system time), peak RSS.
4. celery  - the same days as one run per day of `chargecloud_ingest_job` (7 runs launched at once, each its own
             coordinator process), their steps on 2 Celery workers (Redis broker), the instance in PostgreSQL:
             wall from the first launch to the last run's end. Needs Debian's redis-server and postgresql
             (`make servers`); skipped with --no-celery.

Everything goes to --data-dir (default a fresh temporary folder, removed at the end unless --keep).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

import datadir  # noqa: E402
import ingest_benchmark as ingest  # noqa: E402

FACTS = ("status_chargingpoints", "status_connectors", "chargecloud_poll_log")
MASTER = ("chargingstations", "chargingpoints", "connectors")


# --- 2. the two layouts, without Dagster (child process) ---------------------------------------------------------
def layout_child(spec: dict) -> dict:
    from ev_assets.lib import lake as lakes
    from ev_assets.lib import warehouse
    from ev_assets.lib.settings import Settings
    from ev_assets.lib.sources import chargecloud
    from ev_assets.defs.raw.chargecloud import _StoredPolls

    data_dir, layout = Path(spec["data_dir"]), spec["layout"]
    settings = Settings(data_dir=data_dir)
    start = datetime.fromisoformat(spec["start"]).replace(tzinfo=timezone.utc)
    target = data_dir / f"layout_{layout}"
    shutil.rmtree(target, ignore_errors=True)
    lake = lakes.Lake(str(target))
    shapes = chargecloud.CityShapes()
    polls, cpu0, started = 0, time.process_time(), time.perf_counter()
    for d in range(spec["days"]):
        day, day_end = start + timedelta(days=d), start + timedelta(days=d + 1)
        stored = _StoredPolls(settings, day, day_end)
        polls += len(stored)
        frames = chargecloud.flatten_polls(stored, shapes).tables(arrow=True)
        if layout == "lake":
            for name in (*FACTS, *MASTER, "quarantine"):
                lake.write(name, frames[name], "chargecloud", f"{day:%Y-%m-%d}")
        else:  # the raw tables inside the DuckDB file, as ingestion wrote them before the lake (a connection per day)
            with warehouse.connect(target / "warehouse.duckdb") as con:
                for name in FACTS:
                    warehouse.replace_rows(con, name, frames[name], "poll_slot >= ? AND poll_slot < ?", (day, day_end))
                for name in MASTER:
                    warehouse.upsert_versions(con, name, frames[name], chargecloud.item_key(name))
                warehouse.replace_rows(con, "quarantine", frames["quarantine"],
                                       "source = 'chargecloud' AND partition_key >= ? AND partition_key < ?",
                                       (day.isoformat(), day_end.isoformat()))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu0
    if layout == "lake":
        with warehouse.lake_connection(lake) as con:
            rows = {n: con.execute(f"SELECT count(*) FROM raw.{n}").fetchone()[0] for n in (*FACTS, *MASTER)}
    else:
        with warehouse.connect(target / "warehouse.duckdb", read_only=True) as con:
            rows = {n: con.execute(f"SELECT count(*) FROM raw.{n}").fetchone()[0] for n in (*FACTS, *MASTER)}
    return {"layout": layout, "polls": polls, "wall_s": wall, "cpu_s": cpu, "rows": rows, "bytes": _size(target)}


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def run_json_child(kind: str, spec: dict, env: dict | None = None) -> dict:
    command = [sys.executable, __file__, f"--_{kind}", json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})})
    line = next((line for line in done.stdout.splitlines() if line.startswith("RESULT ")), None)
    if done.returncode or line is None:
        sys.exit(f"{kind} child failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
    return json.loads(line.removeprefix("RESULT "))


# --- 4. one day's run on the Celery workers (a coordinator process each) -----------------------------------------
def coordinator_child(spec: dict) -> dict:
    import dagster as dg

    from ev_assets.cli import RANGE_END_TAG, RANGE_START_TAG, Launcher

    started = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        report = Launcher(instance, Path(spec["log_dir"])).run(
            "chargecloud_ingest_job", {RANGE_START_TAG: spec["day"], RANGE_END_TAG: spec["day"]})
        events = [e for e in instance.all_logs(report.run_id) if e.dagster_event]
        starts = {e.step_key: e.timestamp for e in events if e.dagster_event.event_type_value == "STEP_START"}
        ends = {e.step_key: e.timestamp for e in events if e.dagster_event.event_type_value == "STEP_SUCCESS"}
        pids = {e.dagster_event.pid for e in events if e.dagster_event.event_type_value == "STEP_START"}
    return {"day": spec["day"], "success": report.success, "wall_s": time.perf_counter() - started,
            "step_s": sum(ends[k] - starts[k] for k in ends if k in starts),
            "step_window": [min(starts.values(), default=0), max(ends.values(), default=0)],
            "step_pids": sorted(pids), "coordinator_pid": os.getpid()}


def celery_run(data_dir: Path, start: date, days: int, workers: int) -> dict:
    from ev_assets.lib import servers

    home = data_dir / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(REPO_ROOT / "ev_assets" / "deploy" / "dagster-postgres.yaml", home / "dagster.yaml")
    with servers.postgres_server(data_dir / "postgres") as urls, servers.redis_server(data_dir / "redis") as broker:
        env = {"EV_DATA_DIR": str(data_dir), "EV_SOURCE": "simulated", "EV_EXECUTOR": "celery",
               "EV_CELERY_BROKER_URL": broker, "EV_DAGSTER_PG_URL": urls["dagster"], "DAGSTER_HOME": str(home)}
        with servers.celery_workers(data_dir / "celery", broker, count=workers, env=env):
            time.sleep(20)  # the workers import the code location before the clock starts
            started = time.perf_counter()
            coordinators = [
                subprocess.Popen([sys.executable, __file__, "--_coordinator",
                                  json.dumps({"day": f"{start + timedelta(days=d)}", "log_dir": str(data_dir / "logs")})],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env})
                for d in range(days)
            ]
            results = []
            for proc in coordinators:
                out, err = proc.communicate()
                line = next((line for line in out.splitlines() if line.startswith("RESULT ")), None)
                if proc.returncode or line is None:
                    sys.exit(f"coordinator failed:\n{out[-3000:]}\n{err[-5000:]}")
                results.append(json.loads(line.removeprefix("RESULT ")))
            wall = time.perf_counter() - started
    window = (min(r["step_window"][0] for r in results), max(r["step_window"][1] for r in results))
    return {"wall_s": wall, "runs": results, "workers": workers, "steps_wall_s": window[1] - window[0],
            "step_s_sum": sum(r["step_s"] for r in results),
            "all_succeeded": all(r["success"] for r in results),
            "worker_processes_used": len({pid for r in results for pid in r["step_pids"]})}


def lake_rows(data_dir: Path) -> dict:
    from ev_assets.lib import lake as lakes
    from ev_assets.lib import warehouse

    with warehouse.lake_connection(lakes.Lake(str(data_dir / "lake"))) as con:
        return {n: con.execute(f"SELECT count(*) FROM raw.{n}").fetchone()[0] for n in (*FACTS, *MASTER)}


# --- main --------------------------------------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--start", type=date.fromisoformat, default=date(2022, 1, 3))
    p.add_argument("--stations-per-city", type=int, default=30)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--workers", type=int, default=2, help="Celery worker processes (default 2)")
    p.add_argument("--no-celery", dest="celery", action="store_false", help="skip step 4")
    p.add_argument("--celery-only", action="store_true",
                   help="only step 4, on a --data-dir a run of this benchmark kept (its polls and in-process lake)")
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--results-json", type=Path, default=None)
    for hidden in ("_layout", "_coordinator"):
        p.add_argument(f"--{hidden}", dest=hidden, default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args._layout:
        print("RESULT " + json.dumps(layout_child(json.loads(args._layout))))
        return 0
    if args._coordinator:
        print("RESULT " + json.dumps(coordinator_child(json.loads(args._coordinator))))
        return 0

    data_dir, temporary = datadir.prepare(args.data_dir, "scale_benchmark")
    try:
        print(ingest.machine_line())
        sim = ingest._simulation(args.seed, args.stations_per_city, args.start, args.days)
        written, store_s = ingest.store_polls(data_dir / "raw", sim, args.start, args.days, 2)
        raw_bytes = _size(data_dir / "raw" / "chargecloud")
        print(f"   store: {ingest.SLOTS_PER_DAY * args.days} polls ({written} written now, {store_s:.0f} s), "
              f"{raw_bytes / 2**20:,.0f} MiB of gzip JSON")

        spec = {"data_dir": str(data_dir), "start": f"{args.start}", "days": args.days}
        if args.celery_only:
            rows_process = lake_rows(data_dir)
            celery = celery_run(data_dir, args.start, args.days, args.workers)
            celery["same_rows_as_in_process"] = lake_rows(data_dir) == rows_process
            print(f" celery: {celery['wall_s']:.1f} s for {args.days} daily runs on {args.workers} workers, steps "
                  f"{celery['steps_wall_s']:.1f} s from the first start to the last end ({celery['step_s_sum']:.1f} s "
                  f"of steps in all); same rows as in one process: {celery['same_rows_as_in_process']}")
            if args.results_json:
                args.results_json.write_text(json.dumps({"celery": celery, "load_average": os.getloadavg()}, indent=2) + "\n")
            return 0
        layouts = {layout: run_json_child("layout", {**spec, "layout": layout}) for layout in ("lake", "duckdb")}
        for layout, r in layouts.items():
            print(f"  {layout:>7}: {1000 * r['wall_s'] / r['polls']:6.1f} ms/poll ({r['wall_s']:.1f} s wall, "
                  f"{r['cpu_s']:.1f} CPU-s for {r['polls']} polls), {r['bytes'] / 2**20:,.0f} MiB stored")
        same_rows = layouts["lake"]["rows"] == layouts["duckdb"]["rows"]
        print(f"   rows: {layouts['lake']['rows']} (the same in both layouts: {same_rows})")

        process = ingest.run_child({**spec, "profile": None})
        process_cpu = process.get("cpu_s")
        print(f"process: {process['ingest_wall_s']:.1f} s for {process['polls']} polls "
              f"({1000 * process['ingest_wall_s'] / process['polls']:.1f} ms/poll), peak RSS "
              f"{ingest.mib(process['peak_rss_bytes'])}, CPU {process_cpu:.1f} s")
        rows_process = lake_rows(data_dir)

        celery = None
        if args.celery:
            celery = celery_run(data_dir, args.start, args.days, args.workers)
            print(f" celery: {celery['wall_s']:.1f} s for {args.days} daily runs on {args.workers} workers "
                  f"(all succeeded: {celery['all_succeeded']}, worker processes used: {celery['worker_processes_used']}), "
                  f"steps {celery['steps_wall_s']:.1f} s from the first start to the last end")
            celery["same_rows_as_in_process"] = lake_rows(data_dir) == rows_process
            print(f"         the same rows as in one process: {celery['same_rows_as_in_process']}")

        results = {
            "days": args.days, "polls": process["polls"], "raw_gzip_bytes": raw_bytes,
            "rows": rows_process, "lake_bytes": layouts["lake"]["bytes"], "duckdb_bytes": layouts["duckdb"]["bytes"],
            "layouts": {k: {**v, "ms_per_poll": round(1000 * v["wall_s"] / v["polls"], 2)} for k, v in layouts.items()},
            "layouts_same_rows": same_rows,
            "in_process": {"wall_s": round(process["ingest_wall_s"], 2), "cpu_s": process_cpu,
                           "ms_per_poll": round(1000 * process["ingest_wall_s"] / process["polls"], 2),
                           "peak_rss_bytes": process["peak_rss_bytes"]},
            "celery": celery,
            "load_average": os.getloadavg(),
            "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        if args.results_json:
            args.results_json.write_text(json.dumps(results, indent=2) + "\n")
            print(f"results written to {args.results_json}")
    finally:
        if temporary and not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            print(f"data kept in {data_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
