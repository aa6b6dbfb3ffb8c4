"""The dbt project on Spark local[2] beside DuckDB: 7 and 30 simulated days, the same rows on both engines.

    .venv/bin/python benchmarks/spark_benchmark.py                       # 7 and 30 days, the demo's fleet
    .venv/bin/python benchmarks/spark_benchmark.py --days 7 --results-json out.json

Per span of days (a fresh data root each): the simulated feed is ingested by the demo's jobs in-process (not
timed as part of the warehouse), the raw tables are exported to Parquet for Spark (timed: `export`), then
`dbt run` of the whole project over the span (one window, as the demo's single-run backfill does) on DuckDB and
on Spark (`--target spark`: dbt-spark's session method, a local Spark with EV_SPARK_MASTER, default local[2]),
one after the other, wall time of each dbt process (Spark's includes starting its JVM, reported apart from
the first model's start in the dbt log). Then every table of the `marts` schema is compared row for row
(`ev_assets.lib.spark.compare_marts`, floats within 1e-9). There is no speed target: correctness is the bar.

Nothing is written to the repository: data roots live in --data-dir (default fresh temporary folders, removed
afterwards unless --keep). Needs `make spark` (Java 17 and the spark extra).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import datadir  # noqa: E402 (benchmarks/, beside this script)


def ingest(data_dir: Path, start: date, days: int, cities: str, stations_per_city: int) -> float:
    """The simulated feed of `days` days from `start` through the demo's ingestion jobs; seconds taken."""
    os.environ.update({"EV_DATA_DIR": str(data_dir), "EV_SOURCE": "simulated", "EV_SIM_START": start.isoformat(),
                       "EV_SIM_DAYS": str(days), "EV_SIM_CITIES": cities,
                       "EV_SIM_STATIONS_PER_CITY": str(stations_per_city)})
    import dagster as dg

    from ev_assets.cli import RANGE_END_TAG, RANGE_START_TAG
    from ev_assets.definitions import defs

    last = (start + timedelta(days=days - 1)).isoformat()
    started = time.perf_counter()
    for job, first, final in (("chargecloud_poll_job", f"{start}-00:00", f"{last}-23:50"),
                              ("ingest_job", start.isoformat(), last)):
        result = defs.resolve_job_def(job).execute_in_process(
            instance=dg.DagsterInstance.ephemeral(), tags={RANGE_START_TAG: first, RANGE_END_TAG: final},
            raise_on_error=False)
        if not result.success:
            sys.exit(f"{job} failed for {data_dir}")
    return time.perf_counter() - started


def dbt_run(settings, window: tuple[str, str], logs: Path) -> dict:
    """`dbt run` of the project on the engine of `settings`: wall seconds, seconds until the first model started
    (Spark: its JVM and the raw views), models run, the exit code."""
    from ev_assets.lib import spark

    command = spark.dbt_command(settings, "run", window=window) + [
        "--target-path", str(logs / "target"), "--log-path", str(logs / "logs")]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=spark.DBT_PROJECT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    results = json.loads((logs / "target" / "run_results.json").read_text()) if done.returncode == 0 else {}
    nodes = [r for r in results.get("results", []) if r["unique_id"].startswith("model.")]
    model_seconds = sum(r["execution_time"] for r in nodes)
    if done.returncode != 0:
        print(done.stdout[-4000:], file=sys.stderr)
    return {"seconds": round(seconds, 1), "model_seconds": round(model_seconds, 1),
            "overhead_seconds": round(seconds - model_seconds, 1), "models": len(nodes), "ok": done.returncode == 0,
            "slowest": sorted(((r["unique_id"].split(".")[-1], round(r["execution_time"], 1)) for r in nodes),
                              key=lambda item: -item[1])[:3]}


def one_span(days: int, args, root: Path) -> dict:
    from ev_assets.lib import spark
    from ev_assets.lib.settings import Settings

    data_dir = root / f"days_{days}"
    if args.reuse_ingested and (data_dir / "warehouse.duckdb").exists():
        print(f"\n{days} days: reusing the feed ingested before in {data_dir}", flush=True)
        ingest_s = None
        os.environ["EV_DATA_DIR"] = str(data_dir)
        for name in ("spark", "dbt_duckdb", "dbt_spark"):  # everything but the raw tables, afresh
            shutil.rmtree(data_dir / name, ignore_errors=True)
        import duckdb

        with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
            for schema in ("staging", "intermediate", "marts"):
                con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    else:
        print(f"\n{days} days: ingesting the simulated feed into {data_dir}", flush=True)
        ingest_s = round(ingest(data_dir, args.start, days, args.cities, args.stations_per_city), 1)
    settings = Settings.from_env()
    duck, on_spark = settings.with_(warehouse_engine="duckdb"), settings.with_(warehouse_engine="spark")
    started = time.perf_counter()
    exported = spark.export_raw_tables(on_spark)
    export_s = time.perf_counter() - started
    window = (args.start.isoformat(), (args.start + timedelta(days=days)).isoformat())
    print(f"  {'ingested in %s s' % ingest_s if ingest_s is not None else 'raw tables reused'}; {exported['status_chargingpoints']:,} charging-point and "
          f"{exported['status_connectors']:,} connector status rows exported for Spark in {export_s:.1f} s", flush=True)
    runs = {}
    for engine in (duck, on_spark):
        runs[engine.warehouse_engine] = run = dbt_run(engine, window, data_dir / f"dbt_{engine.warehouse_engine}")
        print(f"  dbt run on {engine.warehouse_engine:6}: {run['seconds']:7.1f} s wall, {run['model_seconds']:.1f} s "
              f"in {run['models']} models, slowest {run['slowest']}{'' if run['ok'] else '  FAILED'}", flush=True)
    compared, problems = spark.compare_marts(duck, on_spark) if all(r["ok"] for r in runs.values()) else ({}, ["a dbt run failed"])
    print(f"  marts compared: {len(compared)} tables, {sum(compared.values()):,} rows: "
          f"{'the same on both engines' if not problems else 'DIFFERENCES'}", flush=True)
    for problem in problems:
        print(f"    {problem}", flush=True)
    return {"days": days, "status_rows": exported["status_chargingpoints"] + exported["status_connectors"],
            "raw_rows": sum(exported.values()), "ingest_seconds": ingest_s, "export_seconds": round(export_s, 1),
            "dbt": runs, "marts": compared, "same_rows": not problems, "differences": problems}


def machine() -> dict:
    import importlib.metadata as meta

    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "java": java[0] if java else None,
            **{name: meta.version(name) for name in ("dbt-core", "dbt-duckdb", "dbt-spark", "pyspark", "duckdb")},
            "spark_master": os.environ.get("EV_SPARK_MASTER", "local[2]")}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--days", type=int, nargs="+", default=[7, 30], help="spans of simulated days (default 7 30)")
    p.add_argument("--start", type=date.fromisoformat, default=date(2022, 1, 10))
    p.add_argument("--cities", default="koeln,bonn,bayreuth", help="simulated cities (default: the demo's three)")
    p.add_argument("--stations-per-city", type=int, default=12, help="default: the demo's 12")
    p.add_argument("--data-dir", type=Path, default=None, help="keep the data roots here (default: a temporary folder)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    p.add_argument("--reuse-ingested", action="store_true",
                   help="in --data-dir, reuse the raw tables a previous run ingested (the dbt builds start afresh)")
    p.add_argument("--results-json", type=Path, default=None, help="also write the figures as JSON here")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    reset = () if args.reuse_ingested else tuple(f"days_{d}" for d in args.days)
    root, temporary = datadir.prepare(args.data_dir, "spark_benchmark", reset=reset)
    started = time.perf_counter()
    try:
        spans = [one_span(days, args, root) for days in args.days]
    finally:
        if temporary and not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    load = os.getloadavg()[0]
    print(f"\nload average at the end {load:.2f} (other processes share the cores); benchmark wall "
          f"{time.perf_counter() - started:.0f} s")
    if args.results_json:
        args.results_json.parent.mkdir(parents=True, exist_ok=True)
        args.results_json.write_text(json.dumps({"machine": machine(), "load_average_end": round(load, 2),
                                                 "fleet": {"cities": args.cities, "stations_per_city": args.stations_per_city},
                                                 "spans": spans}, indent=2, default=str))
    return 0 if all(span["same_rows"] for span in spans) else 1


if __name__ == "__main__":
    sys.exit(main())
