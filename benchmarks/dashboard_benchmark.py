"""How long each dashboard page takes, on the demo data and on a year of a full-size fleet.

Each page is run through Streamlit's own harness (`AppTest`, in this process): a new session per visit, timed from
the start of the script run to its end (what the server does before the browser can draw; the browser's own
drawing is not included). Per page: the first visit in a fresh process (cold: imports, first queries, the models
loading in the background) and the median of `--runs` later visits (warm: what every further user sees; a new
snapshot is a new cache key, so its first visit is again a cold one for the marts but not for the imports).

1. The demo data root (`--data-dir`, default `./data`, never written to): its snapshot is copied to a temporary
   root (beside links to its `mlflow/`, `ml/` and `monitoring/`). A snapshot from before `marts.dim_operator`
   gets one (operator_key from a simple normalisation), because the KPI code now needs it.
2. A year of a full fleet (unless `--skip-year`): a synthetic marts snapshot generated with DuckDB `range()`
   (`--points` charging points, 3 per station, over `--days` days of 10-minute polls: 126 million status facts for
   2,400 points and 365 days; hourly and daily utilization marts, sessions, reliability, POIs) with the marts'
   column names. Built once under `--workdir` and reused.

3. In a browser (`--browser`): `python -m ev_assets.dashboard` served on the demo root and each page's first visit
   after the start opened in headless Chromium (the test's DevTools tab), timed from the navigation until the
   page's answers show (polled every 0.1 s): what a user waits for, the JavaScript bundle, the websocket and the
   server's first runs included. `--checkout PATH` serves the dashboard of another checkout (its `.venv`), e.g. the
   main branch, to compare before and after on the same data in one run.

    .venv/bin/python benchmarks/dashboard_benchmark.py [--data-dir data] [--runs 5] [--skip-year]
        [--points 2400] [--days 365] [--workdir /tmp/ev_dashboard_benchmark] [--results-json out.json]
        [--browser [--checkout PATH ...] [--browser-runs 3]]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

APP = ROOT / "ev_assets" / "dashboard" / "app.py"
PAGES = {"network": None, "station": "views/station.py", "reliability": "views/reliability.py",
         "energy": "views/energy.py", "models": "views/models.py"}


# --- timing ------------------------------------------------------------------------------------------------------
def visit(page: str, station: str | None, period: str = "Last 7 days") -> tuple[float, list[str]]:
    """Seconds of one script run of `page` in a new session with the sidebar's `period`, and the exceptions it
    showed."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=600)
    at.session_state["period_preset"] = period
    if station:
        at.query_params["station"] = station
    if PAGES[page]:
        at.switch_page(PAGES[page])  # (the url_path of these pages is their file name)
    started = time.perf_counter()
    at.run()
    return time.perf_counter() - started, [str(e.value)[:300] for e in at.exception]


def time_pages(data_dir: Path, station: str, runs: int, period: str = "Last 7 days") -> dict[str, dict]:
    os.environ["EV_DATA_DIR"] = str(data_dir)
    results = {}
    for page in PAGES:
        cold, errors = visit(page, station if page == "station" else None, period)
        # The first visit starts loading the models in a background thread, which slows whatever runs beside it
        # (the GIL): the warm figures are taken once it has finished.
        from ev_assets.dashboard import ml
        from ev_assets.lib.settings import Settings

        ml.models(Settings.from_env()).wait()
        warm = [visit(page, station if page == "station" else None, period)[0] for _ in range(runs)]
        results[page] = {"cold_s": round(cold, 3), "warm_median_s": round(statistics.median(warm), 3),
                         "warm_max_s": round(max(warm), 3), "errors": errors}
        print(f"  {page:<12} cold {cold:6.2f} s   warm median {statistics.median(warm):5.2f} s "
              f"(max {max(warm):5.2f} s){'   ERRORS: ' + '; '.join(errors) if errors else ''}", flush=True)
    return results


# --- first visits in a browser -----------------------------------------------------------------------------------
# page -> (path, texts that show once the page has drawn its answers, whatever the data)
BROWSER_PAGES = {
    "network": ("/network", ["Network now", "Stations by status now", "Trend over the period"]),
    "station": ("/station?station={station}", ["Will it be free soon?", "free in 10 min", "free in 60 min",
                                                "Status timeline"]),
    "reliability": ("/reliability", ["Worst availability", "Operators, worst first"]),
    "energy": ("/energy", ["Energy", "total", "peak day"]),
    "models": ("/models", ["Models", "Champion = the version holding"]),
}


def browser_first_visits(data_dir: Path, station: str, checkout: Path) -> dict[str, float]:
    """Seconds until each page's answers show on its first visit after the dashboard of `checkout` started."""
    from ev_assets_tests import browser

    port = browser.free_port()
    base = f"http://127.0.0.1:{port}"
    python = checkout / ".venv" / "bin" / "python"
    env = {"EV_DATA_DIR": str(data_dir), "EV_DASHBOARD_PORT": str(port), "EV_SERVE_HOST": "127.0.0.1"}
    seconds = {}
    tab = browser.DevTools()
    try:
        with browser.server([str(python), "-m", "ev_assets.dashboard"], f"{base}/_stcore/health", env=env,
                            cwd=checkout):
            for page, (path, expected) in BROWSER_PAGES.items():
                _, seconds[page] = tab.timed_open(base + path.format(station=station), expected, timeout_s=120)
    finally:
        tab.close()
    return seconds


def time_browser(data_dir: Path, station: str, checkouts: list[Path], runs: int) -> dict[str, dict]:
    """Per checkout and page: the first visits of `runs` fresh starts (each a new server and a new tab)."""
    results = {}
    for checkout in checkouts:
        visits = [browser_first_visits(data_dir, station, checkout) for _ in range(runs)]
        load = os.getloadavg()[0]
        per_page = {page: [v[page] for v in visits] for page in BROWSER_PAGES}
        results[str(checkout)] = {page: {"median_s": round(statistics.median(t), 2), "max_s": round(max(t), 2)}
                                  for page, t in per_page.items()}
        print(f"  {checkout} (load average {load:.1f}):", flush=True)
        for page, t in per_page.items():
            print(f"    {page:<12} first visit median {statistics.median(t):5.2f} s   max {max(t):5.2f} s   "
                  f"({', '.join(f'{x:.2f}' for x in t)})", flush=True)
    return results


# --- the demo root -----------------------------------------------------------------------------------------------
def demo_root(source: Path, target: Path) -> tuple[Path, str]:
    """A data root reading the demo's snapshot (copied) and its registry and features (linked); the station with
    the most sessions."""
    import duckdb

    from ev_assets.lib import snapshot

    current = snapshot.current(source / "serving" / "snapshots")
    if current is None:
        raise SystemExit(f"no marts snapshot under {source}: run `make demo` first")
    snapshots = target / "serving" / "snapshots"
    snapshots.mkdir(parents=True)
    shutil.copy2(current, snapshots / current.name)
    (snapshots / "CURRENT").write_text(current.name + "\n")
    for name in ("mlflow", "ml", "monitoring"):
        if (source / name).exists():
            os.symlink((source / name).resolve(), target / name)
    con = duckdb.connect(str(snapshots / current.name))
    try:
        if not con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'marts' "
                           "AND table_name = 'dim_operator'").fetchone()[0]:
            add_operator_dimension(con)
            print("  (the demo snapshot predates marts.dim_operator: one was added to the copy)")
        station = con.execute("SELECT station_id FROM marts.fct_charging_sessions GROUP BY 1 "
                              "ORDER BY count(*) DESC, 1 LIMIT 1").fetchone()[0]
    finally:
        con.close()
    return target, station


def add_operator_dimension(con) -> None:
    """dim_operator and operator_key as the new marts have them, from a plain normalisation of the names (lower
    case, letters and digits, a legal form at the end dropped): close enough to time the pages."""
    key = ("regexp_replace(regexp_replace(lower(coalesce(operator_name, '(unknown)')), "
           "'\\s+(ag|gmbh|gmbh & co\\. kg|kg|e\\.v\\.)$', ''), '[^a-z0-9()]', '', 'g')")
    for table in ("dim_station", "mart_utilization_station_daily", "mart_reliability_daily",
                  "fct_out_of_order_intervals"):
        con.execute(f"ALTER TABLE marts.{table} ADD COLUMN IF NOT EXISTS operator_key VARCHAR")
        con.execute(f"UPDATE marts.{table} SET operator_key = {key}")
    con.execute("""
        CREATE TABLE marts.dim_operator AS
        SELECT operator_key, arg_max(operator_name, n) AS operator_name, list(operator_name ORDER BY operator_name)
               AS spellings, CAST(count(*) AS INTEGER) AS n_spellings, [operator_key] AS normalized_names,
               CAST(sum(n) AS INTEGER) AS n_stations
        FROM (SELECT operator_key, operator_name, count(*) AS n FROM marts.dim_station WHERE is_current GROUP BY 1, 2)
        GROUP BY operator_key
    """)
    con.execute("""
        UPDATE marts.mart_reliability_daily AS r SET operator_name = o.operator_name
        FROM marts.dim_operator AS o WHERE o.operator_key = r.operator_key
    """)
    con.execute("CHECKPOINT")


# --- a year of a full fleet ----------------------------------------------------------------------------------------
def build_year(path: Path, points: int, days: int) -> None:
    """The marts the dashboard reads, for `points` charging points (3 per station, ~20 stations per city) over
    `days` days of 10-minute polls, in time order as the incremental marts are written."""
    import duckdb

    start = date(2024, 1, 1)
    stations = points // 3
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = true")
    con.execute("CREATE SCHEMA marts")
    p = {"stations": stations, "points": points, "days": days, "start": start}
    run = lambda sql: con.execute(sql, {k: v for k, v in p.items() if f"${k}" in sql})  # noqa: E731
    t0 = time.perf_counter()
    run("""CREATE TABLE marts.dim_operator AS
           SELECT 'op' || i AS operator_key, 'Operator ' || i || ' GmbH' AS operator_name,
                  ['Operator ' || i || ' GmbH'] AS spellings, 1 AS n_spellings, ['op' || i] AS normalized_names,
                  CAST($stations / 40 AS INTEGER) AS n_stations
           FROM range(40) t(i)""")
    run("""CREATE TABLE marts.dim_station AS
           SELECT md5('s' || i) AS station_key, CAST(100000 + i AS VARCHAR) AS station_id,
                  'city' || (i // 20) AS city_slug, 'Station ' || i AS station_name, 'Street ' || i AS address,
                  'City ' || (i // 20) AS city, '5' || lpad(CAST(i % 10000 AS VARCHAR), 4, '0') AS postal_code,
                  'DE' AS country, 47.5 + (i // 20) * 0.19 + (i % 20) * 0.003 AS latitude,
                  6.0 + (i // 20) % 9 + (i % 7) * 0.004 AS longitude,
                  'Operator ' || (i % 40) || ' GmbH' AS operator_name,
                  '+49 800 ' || i AS operator_hotline, NULL AS owner, i % 2 = 0 AS is_roaming,
                  i % 3 > 0 AS is_open_24_7,
                  '{"twentyfourseven":true}' AS opening_times_json, md5('a' || i) AS attr_hash,
                  TIMESTAMPTZ '2024-01-01 00:00:00+00' AS valid_from, CAST(NULL AS TIMESTAMPTZ) AS valid_to,
                  TRUE AS is_current, 'op' || (i % 40) AS operator_key
           FROM range($stations) t(i)""")
    run("""CREATE TABLE marts.dim_charging_point AS
           SELECT md5('p' || j) AS charging_point_key,
                  'DE*X*E' || (100000 + j // 3) || '*' || (j % 3) AS charging_point_id,
                  'E' || j AS evse_uid, CAST(100000 + j // 3 AS VARCHAR) AS station_id, NULL AS physical_reference,
                  NULL AS floor_level, NULL AS vehicle_type, NULL AS capabilities, NULL AS charge_point_position,
                  NULL AS charging_station_position, NULL AS parking_space_numbers, NULL AS public_comment,
                  FALSE AS is_roaming, md5('h' || j) AS attr_hash, TIMESTAMPTZ '2024-01-01 00:00:00+00' AS valid_from,
                  CAST(NULL AS TIMESTAMPTZ) AS valid_to, TRUE AS is_current
           FROM range($points) t(j)""")
    run("""CREATE TABLE marts.dim_connector AS
           SELECT md5('c' || j) AS connector_key, 'C' || j AS connector_id,
                  'DE*X*E' || (100000 + j // 3) || '*' || (j % 3) AS charging_point_id,
                  CAST(100000 + j // 3 AS VARCHAR) AS station_id,
                  CASE WHEN j % 5 = 0 THEN 'IEC_62196_T2_COMBO' ELSE 'IEC_62196_T2' END AS standard, 'SOCKET' AS format,
                  CASE WHEN j % 5 = 0 THEN 'DC' ELSE 'AC_3_PHASE' END AS power_type, 32.0 AS ampere, 400.0 AS voltage,
                  CASE WHEN j % 5 = 0 THEN 150.0 ELSE 22.0 END AS max_power_kw,
                  CASE WHEN j % 5 = 0 THEN 150.0 ELSE 22.0 END AS rated_power_kw, NULL AS tariff_id,
                  md5('ch' || j) AS attr_hash, TIMESTAMPTZ '2024-01-01 00:00:00+00' AS valid_from,
                  CAST(NULL AS TIMESTAMPTZ) AS valid_to, TRUE AS is_current
           FROM range($points) t(j)""")
    run("""CREATE TABLE marts.dim_poi AS
           SELECT 'node/' || i AS poi_id, 'POI ' || i AS poi_name, ['cafe', 'supermarket', 'parking'][1 + i % 3]
                  AS category, 'amenity' AS tag_key, 'cafe' AS tag_value, 'city' || (i // 100) AS area,
                  7.0 AS longitude, 50.0 AS latitude, 'POINT (7 50)' AS geometry_wkt
           FROM range($stations * 5) t(i)""")
    run("""CREATE TABLE marts.dim_poi_station AS
           SELECT md5('ps' || i) AS poi_station_id, CAST(100000 + i // 5 AS VARCHAR) AS station_id,
                  'node/' || i AS poi_id, ['cafe', 'supermarket', 'parking'][1 + i % 3] AS category,
                  20.0 + (i * 37) % 480 AS distance_m, 500.0 AS radius_m
           FROM range($stations * 5) t(i)""")
    # a status per point and poll: charging in daytime blocks, a few outages, rare unknowns (status_id left NULL:
    # a unique text per row would only make the file bigger; the dashboard never reads it)
    run("""CREATE TABLE marts.fct_charging_point_status AS
           WITH polls AS (
               SELECT s AS slot, CAST($start AS TIMESTAMPTZ) + to_minutes(CAST(s * 10 AS BIGINT)) AS slot_at
               FROM range($days * 144) t(s)
           )
           SELECT CAST(NULL AS VARCHAR) AS status_id,
                  'DE*X*E' || (100000 + j // 3) || '*' || (j % 3) AS charging_point_id,
                  md5('p' || j) AS charging_point_key, CAST(100000 + j // 3 AS VARCHAR) AS station_id,
                  md5('s' || (j // 3)) AS station_key, 'city' || (j // 60) AS city_slug,
                  slot_at + to_seconds(CAST(j % 7 AS BIGINT)) AS polled_at, date_trunc('hour', slot_at) AS hour_start,
                  CAST(slot_at AS DATE) AS poll_date,
                  CASE WHEN hash(j, slot // 144) % 97 = 0 THEN 'OUTOFORDER'
                       WHEN hash(j, slot // 6) % 50 = 0 THEN 'UNKNOWN'
                       WHEN (slot % 144) BETWEEN 48 AND 120 AND hash(j, slot // 9) % 3 = 0 THEN 'CHARGING'
                       ELSE 'AVAILABLE' END AS status,
                  CAST(NULL AS VARCHAR) AS parking_sensor_status
           FROM polls, range($points) t(j)
           ORDER BY slot""")
    print(f"    status facts: {time.perf_counter() - t0:.0f} s", flush=True)
    run("""CREATE TABLE marts.mart_utilization_station_hourly AS
           SELECT station_id, any_value(city_slug) AS city_slug, hour_start, CAST(hour_start AS DATE) AS day,
                  CAST(count(DISTINCT charging_point_id) AS INTEGER) AS n_charging_points,
                  CAST(count(*) AS INTEGER) AS n_polls,
                  CAST(count(*) FILTER (status = 'CHARGING') AS INTEGER) AS n_polls_charging,
                  CAST(count(*) FILTER (status = 'CHARGING') AS INTEGER) AS n_polls_occupied,
                  CAST(count(*) FILTER (status = 'AVAILABLE') AS INTEGER) AS n_polls_available,
                  CAST(count(*) FILTER (status = 'OUTOFORDER') AS INTEGER) AS n_polls_out_of_order,
                  CAST(count(*) FILTER (status = 'UNKNOWN') AS INTEGER) AS n_polls_unknown,
                  count(*) / 6.0 AS observed_hours,
                  count(*) FILTER (status = 'CHARGING') / count(*) AS share_charging,
                  count(*) FILTER (status = 'CHARGING') / count(*) AS share_occupied,
                  count(*) FILTER (status = 'AVAILABLE') / count(*) AS share_available,
                  count(*) FILTER (status = 'OUTOFORDER') / count(*) AS share_out_of_order,
                  count(*) FILTER (status = 'UNKNOWN') / count(*) AS share_unknown, 0 AS sessions_started
           FROM marts.fct_charging_point_status GROUP BY station_id, hour_start ORDER BY hour_start, station_id""")
    run("""CREATE TABLE marts.mart_utilization_station_daily AS
           SELECT day, h.station_id, any_value(h.city_slug) AS city_slug, any_value(s.operator_name) AS operator_name,
                  CAST(max(n_charging_points) AS INTEGER) AS n_charging_points, sum(n_polls) AS n_polls,
                  sum(n_polls_charging) AS n_polls_charging, sum(n_polls_occupied) AS n_polls_occupied,
                  sum(n_polls_available) AS n_polls_available, sum(n_polls_out_of_order) AS n_polls_out_of_order,
                  sum(n_polls_unknown) AS n_polls_unknown, sum(observed_hours) AS observed_hours,
                  sum(n_polls_charging) / sum(n_polls) AS share_charging,
                  sum(n_polls_occupied) / sum(n_polls) AS share_occupied,
                  sum(n_polls_available) / sum(n_polls) AS share_available,
                  sum(n_polls_out_of_order) / sum(n_polls) AS share_out_of_order,
                  sum(n_polls_unknown) / sum(n_polls) AS share_unknown, 3 AS sessions, 360.0 AS session_minutes,
                  120.0 AS mean_session_minutes, 30.0 AS energy_kwh_lower, 60.0 AS energy_kwh_upper,
                  any_value(s.operator_key) AS operator_key
           FROM marts.mart_utilization_station_hourly AS h JOIN marts.dim_station AS s USING (station_id)
           GROUP BY day, h.station_id ORDER BY day, h.station_id""")
    run("""CREATE TABLE marts.fct_out_of_order_intervals AS
           SELECT md5(charging_point_id || poll_date) AS interval_id, 'charging_point' AS level,
                  charging_point_id AS item_id, charging_point_id, f.station_id, f.city_slug, s.operator_name,
                  'OUTOFORDER' AS status, min(polled_at) AS interval_start, max(polled_at) AS interval_end,
                  poll_date AS interval_date, 1440.0 AS duration_minutes, CAST(count(*) AS INTEGER) AS n_polls,
                  FALSE AS is_open, TRUE AS is_failure_start, s.operator_key
           FROM marts.fct_charging_point_status AS f JOIN marts.dim_station AS s USING (station_id)
           WHERE status = 'OUTOFORDER' GROUP BY ALL ORDER BY interval_date""")
    run("""CREATE TABLE marts.mart_reliability_daily AS
           SELECT d.day, d.city_slug, any_value(o.operator_name) AS operator_name,
                  CAST(count(*) AS INTEGER) AS n_stations,
                  CAST(sum(n_charging_points) AS INTEGER) AS n_charging_points, sum(observed_hours) AS observed_hours,
                  sum((n_polls - n_polls_unknown) / 6.0) AS known_status_hours,
                  sum(n_polls_out_of_order / 6.0) AS out_of_order_hours,
                  sum((n_polls - n_polls_unknown - n_polls_out_of_order) / 6.0) AS in_service_hours,
                  100.0 * sum(n_polls - n_polls_unknown - n_polls_out_of_order) / sum(n_polls - n_polls_unknown)
                      AS availability_pct, 0 AS failures, CAST(NULL AS DOUBLE) AS mtbf_hours, d.operator_key
           FROM marts.mart_utilization_station_daily AS d JOIN marts.dim_operator AS o USING (operator_key)
           GROUP BY d.day, d.city_slug, d.operator_key ORDER BY d.day""")
    run("""CREATE TABLE marts.fct_charging_sessions AS
           SELECT md5(j || '-' || d || '-' || k) AS session_id, 'DE*X*E' || (100000 + j // 3) || '*' || (j % 3)
                  AS charging_point_id, md5('p' || j) AS charging_point_key,
                  CAST(100000 + j // 3 AS VARCHAR) AS station_id,
                  'city' || (j // 60) AS city_slug,
                  CAST($start AS TIMESTAMPTZ) + to_days(CAST(d AS INTEGER)) + to_hours(CAST(8 + 4 * k AS BIGINT))
                      AS session_start,
                  CAST($start AS TIMESTAMPTZ) + to_days(CAST(d AS INTEGER)) + to_hours(CAST(10 + 4 * k AS BIGINT))
                      AS session_end,
                  CAST($start AS DATE) + CAST(d AS INTEGER) AS session_date,
                  CAST($start AS TIMESTAMPTZ) + to_days(CAST(d AS INTEGER)) + to_hours(CAST(8 + 4 * k AS BIGINT))
                      AS start_hour,
                  120.0 AS duration_minutes, 12 AS n_polls, FALSE AS is_open, 22.0 AS rated_power_kw,
                  'AC' AS current_type,
                  22.0 AS energy_kwh_lower, 44.0 AS energy_kwh_upper
           FROM range($days) a(d), range($points) b(j), range(3) c(k) ORDER BY d""")
    run("""CREATE TABLE marts.mart_energy_daily AS
           SELECT 'norway' AS source_name, 'user' AS entity_type, 'U' || u AS entity_id,
                  CAST($start AS DATE) + CAST(d AS INTEGER) AS day, 1 AS sessions_started, 10.0 + u % 7 AS energy_kwh,
                  CAST(NULL AS DOUBLE) AS energy_kwh_cumulative, CAST(NULL AS DOUBLE) AS energy_kwh_rolling_7d_avg,
                  CAST($start AS TIMESTAMPTZ) + to_days(CAST(d AS INTEGER)) + to_hours(18) AS peak_hour_start,
                  3.0 AS peak_hour_kwh, 4 AS active_charging_hours
           FROM range($days) a(d), range(100) b(u)""")
    run("""CREATE TABLE marts.mart_energy_summary AS
           SELECT source_name, entity_type, entity_id, min(day) AS first_day, max(day) AS last_day
           FROM marts.mart_energy_daily GROUP BY ALL""")
    con.execute("CHECKPOINT")
    con.close()
    os.replace(tmp, path)
    print(f"    built in {time.perf_counter() - t0:.0f} s, {path.stat().st_size / 2**30:.2f} GiB", flush=True)


def year_root(workdir: Path, points: int, days: int) -> tuple[Path, str]:
    root = workdir / f"year_{points}x{days}"
    snapshots = root / "serving" / "snapshots"
    name = f"marts-20250101T000000{points:06d}Z.duckdb"  # a name the snapshot reader accepts
    if not (snapshots / name).exists():
        shutil.rmtree(root, ignore_errors=True)
        snapshots.mkdir(parents=True)
        print(f"  building a synthetic snapshot of {points:,} charging points x {days} days under {root} ...",
              flush=True)
        build_year(snapshots / name, points, days)
    (snapshots / "CURRENT").write_text(name + "\n")
    return root, "100000"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-year", action="store_true")
    parser.add_argument("--points", type=int, default=2400)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "ev_dashboard_benchmark")
    parser.add_argument("--results-json", type=Path)
    parser.add_argument("--browser", action="store_true", help="time each page's first visit in headless Chromium")
    parser.add_argument("--checkout", type=Path, action="append",
                        help="serve the dashboard of this checkout (repeatable; default: this one)")
    parser.add_argument("--browser-runs", type=int, default=3)
    args = parser.parse_args()

    os.environ.setdefault("EV_MODEL_RELOAD_S", "3600")  # one registry look-up per run, not one per 10 s
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root, station = demo_root(args.data_dir.resolve(), Path(tmp) / "data")
        if args.browser:
            print(f"first visits in Chromium, demo data ({args.data_dir}, station {station}):", flush=True)
            results["browser"] = time_browser(root, station, [c.resolve() for c in args.checkout or [ROOT]],
                                              args.browser_runs)
        if args.runs > 0:  # (--runs 0: the browser figures only)
            print(f"demo data ({args.data_dir}, station {station}):", flush=True)
            results["demo"] = time_pages(root, station, args.runs)
        if not args.skip_year and args.runs > 0:
            args.workdir.mkdir(parents=True, exist_ok=True)
            root, station = year_root(args.workdir, args.points, args.days)
            for period in ("Last 7 days", "Last 365 days"):
                print(f"a year of {args.points:,} charging points, period {period!r} (station {station}; no "
                      "registry):", flush=True)
                results[f"year, {period}"] = time_pages(root, station, args.runs, period)
    if args.results_json:
        args.results_json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
