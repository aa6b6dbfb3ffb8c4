"""Warehouse benchmark: the full 38-city simulated fleet through the dbt project, beside plain pandas.

    .venv/bin/python benchmarks/warehouse_benchmark.py                      # 7 days, one dbt build per day
    .venv/bin/python benchmarks/warehouse_benchmark.py --days 30 --mode full
    .venv/bin/python benchmarks/warehouse_benchmark.py --days 365 --mode full --skip-pandas

Steps (each timed on its own; see benchmarks/README.md):

1. load   - raw tables written straight from the simulator (`day_status` for charging points and connectors,
            master data from one flattened poll with first/last seen over the range). Stands in for ingestion;
            it is *not* part of the warehouse figures.
2. dbt    - `dbt build` of the whole project (or `dbt run` + `dbt test`, --dbt-steps run+test), once per UTC day
            (--mode daily, as Dagster's daily partitions do; day d is loaded, then built) or once over the range
            (--mode full). Wall time and peak RSS of the dbt process tree (/proc polled every 0.2 s and the
            kernel's high-water mark from wait4), per-model times from run_results.json grouped into facts,
            intervals, sessions, marts.
3. pandas - the session logic of int_status_intervals / int_charging_sessions_inferred (runs of equal status per
            charging point from consecutive polls, a gap > gap_multiple poll intervals ends a run, sessions =
            CHARGING runs) in plain pandas, reading the same DuckDB file, in a child process (peak RSS from
            wait4), streaming --pandas-chunk-days days at a time with the open runs carried over. Its session
            count and totals are checked against dbt's int_charging_sessions_inferred / fct_charging_sessions.

Nothing is written to the repository: the warehouse, dbt's target/ and logs/ live in --data-dir (default a
fresh temporary folder, removed afterwards unless --keep).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import duckdb  # noqa: E402

from bench import datadir  # noqa: E402 (benchmarks/bench/, beside this script)
from bench.config import DBT_PROJECT, SESSION_LOGIC  # noqa: E402
from bench.machine import machine_line as _machine_line  # noqa: E402
from bench.measure import run_measured, self_peak_rss  # noqa: E402
from bench.report import gib  # noqa: E402
from bench.warehouse_dbt import DbtRun, run_dbt, write_patched_profile  # noqa: E402
from bench.warehouse_load import Loader  # noqa: E402
from bench.warehouse_pandas import pandas_sessions  # noqa: E402
from bench.warehouse_report import report, report_tail  # noqa: E402

MEASURED_PACKAGES = ("duckdb", "dbt-core", "dbt-duckdb", "pandas", "numpy")


def machine_line() -> str:
    return _machine_line("dbt_project", MEASURED_PACKAGES)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--days", type=int, default=7, help="UTC days to simulate (default 7; 365 for the year)")
    p.add_argument("--start", type=date.fromisoformat, default=date(2022, 1, 3), help="first UTC day (2022-01-03)")
    p.add_argument("--stations-per-city", type=int, default=30,
                   help="fleet size: 30 gives 1,174 stations, 2,409 charging points, 2,851 connectors in the "
                        "38 cities (~757k status rows a day)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--data-dir", type=Path, default=None,
                   help="where the warehouse, dbt target/ and logs go (default: a fresh temporary folder)")
    p.add_argument("--keep", action="store_true", help="keep the data dir (a temporary one is removed otherwise)")
    p.add_argument("--memory-limit", default="1GB", help="DuckDB memory_limit for dbt (EV_DUCKDB_MEMORY_LIMIT)")
    p.add_argument("--mode", choices=("daily", "full"), default="daily",
                   help="daily: load day d then one dbt run for day d, as Dagster's daily partitions; "
                        "full: load everything, then one dbt run over the range")
    p.add_argument("--no-split", dest="split", action="store_false",
                   help="one dbt invocation for the whole project instead of the three Dagster's split makes "
                        "(the models the daily ones read, the incremental models for the window, the rest)")
    p.add_argument("--dbt-steps", choices=("build", "run+test"), default="build",
                   help="one `dbt build` (as Dagster runs it) or `dbt run` then `dbt test`")
    p.add_argument("--patched-profile", action="store_true",
                   help="run dbt with a copy of dbt_project/profiles.yml (in the data dir) that sets DuckDB's "
                        "temp_directory once per connection (config_options) instead of on every cursor. Only "
                        "matters for project revisions before 7739d85, whose profile failed the build as soon as "
                        "DuckDB spilled (see README); a no-op since")
    p.add_argument("--skip-pandas", action="store_true")
    p.add_argument("--pandas-chunk-days", type=int, default=7,
                   help="days of polls the pandas path holds at once (runs carried over between chunks)")
    p.add_argument("--pandas-levels", choices=("charging_point", "both"), default="charging_point",
                   help="charging_point: the runs sessions need; both: also the connector runs, the same work "
                        "as dbt's int_status_intervals")
    p.add_argument("--then-daily", type=int, default=0, metavar="N",
                   help="with --mode full: then load N more days and build each as a daily run on top of the range "
                        "(a daily run after a year of history, against day 7 of a --mode daily run)")
    p.add_argument("--ingest-days", type=int, default=1, metavar="N",
                   help="also run benchmarks/ingest_benchmark.py over N days of stored polls (the real ingestion "
                        "asset) and report its figures beside the warehouse's; 0 skips it (default 1)")
    p.add_argument("--results-json", type=Path, default=None, help="also write the figures as JSON here")
    p.add_argument("--_pandas-worker", dest="pandas_worker", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.pandas_worker:  # child process of the pandas path
        spec = json.loads(args.pandas_worker)
        result = pandas_sessions(Path(spec["warehouse"]), date.fromisoformat(spec["start"]),
                                 date.fromisoformat(spec["end"]), int(spec["chunk_days"]), spec["levels"])
        print("PANDAS_RESULT " + json.dumps(result))
        return 0

    from ev_assets.lib.settings import CHARGECLOUD_CITIES, SimulationSettings

    data_dir, temporary = datadir.prepare(args.data_dir, "warehouse_benchmark", reset=(
        "warehouse.duckdb", "warehouse.duckdb.wal", "duckdb_tmp", "dbt_target", "dbt_logs"))
    warehouse = data_dir / "warehouse.duckdb"
    if args.then_daily and args.mode != "full":
        sys.exit("--then-daily goes with --mode full")
    days = [args.start + timedelta(days=i) for i in range(args.days)]
    tail_days = [days[-1] + timedelta(days=i + 1) for i in range(args.then_daily)]
    steps = ["build"] if args.dbt_steps == "build" else ["run", "test"]
    sim = SimulationSettings(seed=args.seed, cities=CHARGECLOUD_CITIES, stations_per_city=args.stations_per_city,
                             start=args.start, days=args.days + args.then_daily)
    profiles_dir = write_patched_profile(data_dir) if args.patched_profile else DBT_PROJECT

    started = time.perf_counter()
    print(machine_line())
    t = time.perf_counter()
    loader = Loader(sim, days + tail_days)
    fleet_s = time.perf_counter() - t
    print(f"fleet: {len(loader.cities)} cities, {loader.n_stations:,} stations, {len(loader.points):,} charging "
          f"points, {len(loader.connectors):,} connectors ({fleet_s:.1f} s to build)")
    print(f"range: {days[0]} .. {days[-1]} ({args.days} days), mode {args.mode}, dbt {args.dbt_steps}, "
          f"DuckDB memory_limit {args.memory_limit}, profile "
          + ("PATCHED copy (temp_directory in config_options)" if profiles_dir != DBT_PROJECT
             else "dbt_project/profiles.yml")
          + f", data dir {data_dir}")
    print(flush=True)

    load_s: list[float] = []
    day_rows: list[int] = []
    runs: list[DbtRun] = []
    built: list[date] = []  # days dbt built without errors
    tail_runs: list[DbtRun] = []  # --then-daily
    con = loader.connect(warehouse, args.memory_limit)
    t = time.perf_counter()
    loader.write_master(con)
    master_s = time.perf_counter() - t
    try:
        for i, day in enumerate(days):
            if con is None:
                con = loader.connect(warehouse, args.memory_limit)
            t = time.perf_counter()
            n_cp, n_cn = loader.write_day(con, day)
            load_s.append(time.perf_counter() - t)
            day_rows.append(n_cp + n_cn)
            if args.mode == "daily":
                con.close()
                con = None
                runs.append(run_day(data_dir, day, n_cp + n_cn, steps, args.memory_limit, profiles_dir, args.split,
                                    f"  {day}: load {load_s[-1]:4.1f} s ({n_cp + n_cn:,} rows)"))
                run = runs[-1]
                if not run.ok:
                    print("  stopping: the next days would build on a failed one")
                    break
                built.append(day)
            elif (i + 1) % 10 == 0 or i == len(days) - 1:
                print(f"  loaded {i + 1} days ({sum(day_rows):,} rows, {sum(load_s):.0f} s)", flush=True)
        if con is not None:
            con.execute("CHECKPOINT")
            con.close()
            con = None
        if args.mode == "full":
            print(f"  dbt {args.dbt_steps} over the range ...", flush=True)
            run = run_dbt(data_dir, f"{days[0]}", f"{days[-1] + timedelta(days=1)}", steps, args.memory_limit,
                          "range", profiles_dir, args.split)
            run.rows = sum(day_rows)
            runs.append(run)
            print(f"  range: dbt {run.seconds:.1f} s, peak RSS {gib(run.peak_rss)}"
                  + ("" if run.ok else "  FAILED: " + run.failures[0][:160]), flush=True)
            if run.ok:
                built = list(days)
    finally:
        if con is not None:
            con.close()
    loader_peak = self_peak_rss()

    # --- what dbt built ----------------------------------------------------------------------------------
    with duckdb.connect(str(warehouse), read_only=True) as wh:
        def q(sql: str):
            try:
                return wh.execute(sql).fetchone()
            except duckdb.Error:
                return None

        # dbt's figures over the days it built (a failed daily run may leave the intervals of its day behind)
        upto = f"timestamptz '{built[-1] + timedelta(days=1)} 00:00:00+00'" if built else "timestamptz '1970-01-01'"
        counts = {
            "raw status rows": q("select (select count(*) from raw.status_chargingpoints)"
                                 " + (select count(*) from raw.status_connectors)"),
            "fct_charging_point_status": q("select count(*) from marts.fct_charging_point_status"),
            "fct_connector_status": q("select count(*) from marts.fct_connector_status"),
            "int_status_intervals": q("select count(*), count(*) filter (where level = 'charging_point'),"
                                      " count(*) filter (where level = 'connector')"
                                      f" from intermediate.int_status_intervals where interval_start < {upto}"),
            "int_charging_sessions_inferred": q("select count(*), sum(duration_minutes), sum(n_polls),"
                                                " count(*) filter (where is_open)"
                                                " from intermediate.int_charging_sessions_inferred"
                                                f" where session_start < {upto}"),
            "fct_charging_sessions": q(f"select count(*) from marts.fct_charging_sessions where session_start < {upto}"),
            "mart_utilization_station_hourly": q("select count(*) from marts.mart_utilization_station_hourly"),
            "mart_utilization_station_daily": q("select count(*) from marts.mart_utilization_station_daily"),
        }
    warehouse_bytes = warehouse.stat().st_size

    # --- pandas: over the days dbt built (all loaded days when it built none) -----------------------------
    pandas_result = None
    if not args.skip_pandas:
        p_days = built or days[:len(day_rows)]
        spec = json.dumps({"warehouse": str(warehouse), "start": f"{p_days[0]}",
                           "end": f"{p_days[-1] + timedelta(days=1)}", "chunk_days": args.pandas_chunk_days,
                           "levels": args.pandas_levels})
        print(f"  pandas over {p_days[0]} .. {p_days[-1]} ...", flush=True)
        m = run_measured([sys.executable, str(Path(__file__).resolve()), "--_pandas-worker", spec])
        line = next((ln for ln in m.stdout.splitlines() if ln.startswith("PANDAS_RESULT ")), None)
        if m.returncode != 0 or line is None:
            print(f"pandas path failed:\n{m.stdout[-3000:]}\n{m.stderr[-3000:]}")
        else:
            pandas_result = json.loads(line.split(" ", 1)[1])
            pandas_result.update(process_seconds=m.seconds, peak_rss=m.peak_rss, days=len(p_days),
                                 checked=bool(built))

    # --- then daily (after the range's figures and the pandas check, which cover the range only) ------------
    for day in tail_days if built == days else []:
        with loader.connect(warehouse, args.memory_limit) as con:
            n_cp, n_cn = loader.write_day(con, day)
        tail_runs.append(run_day(data_dir, day, n_cp + n_cn, steps, args.memory_limit, profiles_dir, args.split,
                                 f"  then daily {day} (day {(day - days[0]).days + 1}):"))
        if not tail_runs[-1].ok:
            break

    figures = report(args, days, day_rows, load_s, master_s, runs, built, counts, warehouse_bytes, pandas_result,
                     loader_peak)
    if tail_runs:
        report_tail(tail_runs, days)
    ingest = run_ingest_benchmark(data_dir / "ingest", args) if args.ingest_days > 0 else None
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}; benchmark wall {time.perf_counter() - started:.0f} s")

    if args.results_json:
        args.results_json.parent.mkdir(parents=True, exist_ok=True)
        ok = [r for r in runs if r.ok]
        args.results_json.write_text(json.dumps({
            "days": args.days,
            "mode": args.mode,
            "status_rows": sum(day_rows[:len(days)]),
            "dbt_wall_s": round(sum(r.seconds for r in ok), 2),
            "dbt_peak_rss_bytes": max((r.peak_rss for r in runs), default=0),
            "dbt_built_all_days": len(built) == len(days),
            "session_models_s": round(sum(r.by_node.get(k, 0.0) for r in ok for k in SESSION_LOGIC), 2),
            "session_models": list(SESSION_LOGIC),
            "pandas_sessions_s": round(pandas_result["seconds"], 2) if pandas_result else None,
            "sessions_equal": figures.get("sessions_equal"),
            "polls": ingest and ingest["polls"],
            "ingest_wall_s": ingest and ingest["ingest_wall_s"],
            "ingest_ms_per_poll": ingest and ingest["ingest_ms_per_poll"],
            "ingest": ingest,
            "daily_after_range": [{"day": r.label, "day_number": (date.fromisoformat(r.label) - days[0]).days + 1,
                                   "dbt_wall_s": round(r.seconds, 2), "peak_rss_bytes": r.peak_rss, "ok": r.ok,
                                   "by_group": r.by_group} for r in tail_runs],
            "args": {k: str(v) for k, v in vars(args).items() if k != "pandas_worker"},
            "machine": machine_line(), "load_seconds": load_s, "rows": day_rows, "built_days": len(built),
            "dbt": [r.__dict__ for r in runs], "counts": counts, "pandas": pandas_result,
            "warehouse_bytes": warehouse_bytes,
        }, indent=2, default=str))
    if temporary and not args.keep:
        shutil.rmtree(data_dir, ignore_errors=True)
    else:
        print(f"\ndata kept in {data_dir}")
    return 0 if runs and all(r.ok for r in runs + tail_runs) else 1


def run_day(data_dir: Path, day: date, rows: int, steps: list[str], memory_limit: str, profiles_dir: Path, split: bool,
            label: str) -> DbtRun:
    """One daily dbt run over [day, day + 1), printed on one line after `label`."""
    run = run_dbt(data_dir, f"{day}", f"{day + timedelta(days=1)}", steps, memory_limit, f"{day}", profiles_dir, split)
    run.rows = rows
    print(f"{label}  dbt {run.seconds:6.1f} s  peak RSS {gib(run.peak_rss)}"
          + ("" if run.ok else "  FAILED: " + run.failures[0][:160]), flush=True)
    return run


def run_ingest_benchmark(data_dir: Path, args) -> dict | None:
    """The ingestion figures: benchmarks/ingest_benchmark.py (stored gzip polls through the real asset) over
    --ingest-days days, one run, in its own folder of the data dir."""
    out = data_dir / "ingest.json"
    command = [sys.executable, str(Path(__file__).with_name("ingest_benchmark.py")), "--days", str(args.ingest_days),
               "--repeat", "1", "--no-flat-check", "--data-dir", str(data_dir), "--results-json", str(out),
               "--start", f"{args.start}", "--stations-per-city", str(args.stations_per_city), "--seed", str(args.seed)]
    print(f"\n=== ingestion ({args.ingest_days} day(s) of stored 38-city polls through the chargecloud_tables asset)",
          flush=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(command, capture_output=True, text=True)
    print("\n".join(line for line in done.stdout.splitlines() if line.strip().startswith(("ingest", "1 day", "target",
                                                                                              "  target", "rows"))
                    or "ms/poll" in line or "ms per poll" in line))
    if done.returncode != 0 or not out.exists():
        print(f"ingestion benchmark failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        return None
    return json.loads(out.read_text())


if __name__ == "__main__":
    sys.exit(main())
