"""What the soak checks after each day, as a user relies on it.

- No record lost: each raw table holds exactly the distinct records pulled up to that day. The expected records
  are counted here from what the simulated feed gave on each day (the session and telemetry files by their
  natural keys, the fleet's charging points and connectors per poll), not read back from the raw store.
- The marts equal a one-shot build: dbt over the same raw tables, every model built from scratch over days 1..k
  in a copy of the warehouse, compared row for row with the marts the daily runs built.
- Disk, warehouse and memory per day.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from ev_assets.lib import dbt_inprocess, warehouse
from ev_assets.lib.settings import Settings
from ev_assets.lib.simulator.fleet import build_fleet
from ev_assets.lib.sources import sessions, telemetry

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT = REPO_ROOT / "dbt_project"
POLLS_PER_DAY = 144
TELEMETRY_KEY = ["vehicle_id", "reading_at"]
BUILT_SCHEMAS_SKIPPED = ("raw", "information_schema", "pg_catalog")
FLOAT_DIGITS = 9  # doubles compared to 1e-9


class Ledger:
    """The distinct records the simulated feed gave up to a day, per raw table."""

    def __init__(self) -> None:
        self.keys: dict[str, set] = {source: set() for source in (*sessions.SOURCES, "vehicle_telemetry")}
        self.status_rows: dict[date, dict[str, int]] = {}  # day -> expected rows of that day's polls

    def add_day(self, settings: Settings, day: date, polls: int = POLLS_PER_DAY) -> None:
        for source in sessions.SOURCES:
            for name, data in sessions.pull_files(settings, source):
                table = sessions.parse(source, name, data).table
                self.keys[source].update(_keys(table, sessions.NATURAL_KEYS[source]))
        for name, data in telemetry.pull_files(settings):
            self.keys["vehicle_telemetry"].update(_keys(telemetry.parse(name, data).table, TELEMETRY_KEY))
        fleet = build_fleet(settings.simulation)
        self.status_rows[day] = {"status_chargingpoints": polls * len(fleet.charging_points),
                                 "status_connectors": polls * len(fleet.connectors),
                                 "chargecloud_poll_log": polls * len(settings.simulation.cities)}

    def expected(self) -> dict[str, int]:
        totals = {name: len(keys) for name, keys in self.keys.items()}
        for name in ("status_chargingpoints", "status_connectors", "chargecloud_poll_log"):
            totals[name] = sum(rows[name] for rows in self.status_rows.values())
        return totals


def _keys(table, columns: list[str]) -> set[tuple]:
    return set(map(tuple, table[columns].astype(str).itertuples(index=False, name=None)))


def raw_counts(settings: Settings, tables: list[str]) -> dict[str, int]:
    with warehouse.connect(settings.warehouse_path, read_only=True) as con:
        return {name: con.execute(f'SELECT count(*) FROM raw."{name}"').fetchone()[0] for name in tables}


def station_ids(settings: Settings) -> list[str]:
    with warehouse.connect(settings.warehouse_path, read_only=True) as con:
        try:
            return [row[0] for row in con.execute("SELECT DISTINCT station_id FROM raw.status_chargingpoints "
                                                  "ORDER BY 1").fetchall()]
        except Exception:  # noqa: BLE001 - no table yet: no station to ask about
            return []


# --- the marts against a one-shot build ------------------------------------------------------------------------
def one_shot_differences(settings: Settings, first: date, last: date) -> tuple[list[str], float, int]:
    """(the built relations that differ from a one-shot build over [first, last], seconds, relations compared).

    The warehouse is copied; in the copy dbt builds every model from scratch (`--full-refresh`) over the whole
    range, as a first run over days 1..k would; then each table of the built schemas is compared with the
    original in both directions (EXCEPT ALL), doubles to 1e-9."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="soak_oneshot_") as tmp:
        root = Path(tmp)
        shutil.copyfile(settings.warehouse_path, root / "warehouse.duckdb")
        window = {"ev_data_dir": str(root), "poll_interval_minutes": settings.poll_interval_minutes,
                  "min_date": f"{first:%Y-%m-%d}", "max_date": f"{last + timedelta(days=1):%Y-%m-%d}"}
        done = dbt_inprocess.run(
            ["dbt", "run", "--full-refresh", "--quiet", "--vars", json.dumps(window), "--project-dir", str(DBT_PROJECT),
             "--profiles-dir", str(DBT_PROJECT), "--target-path", str(root / "target"), "--log-path", str(root / "logs")],
            {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}, DBT_PROJECT)
        if done.returncode != 0:
            return [f"one-shot dbt build failed: {done.stdout.getvalue().decode()[-500:]}"], time.monotonic() - started, 0
        differing, compared = compare_built(settings.warehouse_path, root / "warehouse.duckdb")
    return differing, round(time.monotonic() - started, 1), compared


def compare_built(daily: Path, one_shot: Path) -> tuple[list[str], int]:
    import duckdb

    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{daily}' AS daily (READ_ONLY)")
        con.execute(f"ATTACH '{one_shot}' AS once (READ_ONLY)")
        # the built tables (facts, dimensions, marts, intermediate runs); not the views: a staging view is defined
        # over the window of the run that made it (its dedup would otherwise scan all history), so a daily run's
        # view shows its day and the one-shot's shows days 1..k, by design
        relations = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'once' ORDER BY 1, 2").fetchall()
        differing = []
        built = [(s, t) for s, t in relations if s not in BUILT_SCHEMAS_SKIPPED]
        for schema, name in built:
            columns = con.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_catalog = 'once' "
                "AND table_schema = ? AND table_name = ? ORDER BY ordinal_position", [schema, name]).fetchall()
            # sums of doubles differ in their last bits with the order rows are added in
            select = ", ".join(f'round("{c}", {FLOAT_DIGITS})' if t in ("DOUBLE", "FLOAT") else f'"{c}"' for c, t in columns)
            a, b = f'SELECT {select} FROM daily."{schema}"."{name}"', f'SELECT {select} FROM once."{schema}"."{name}"'
            try:
                extra = con.execute(f"SELECT count(*) FROM ({a} EXCEPT ALL {b})").fetchone()[0]
                missing = con.execute(f"SELECT count(*) FROM ({b} EXCEPT ALL {a})").fetchone()[0]
            except duckdb.Error as error:
                differing.append(f"{schema}.{name}: {str(error).splitlines()[0]}")
                continue
            if extra or missing:
                differing.append(f"{schema}.{name}: {extra} row(s) only in the daily build, {missing} only in the one-shot")
        return differing, len(built)
    finally:
        con.close()


# --- disk and memory ---------------------------------------------------------------------------------------------
def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


@dataclass
class MemoryPeak:
    """The peak resident memory of this process and its children (dbt, the service), sampled every 0.5 s."""

    peak_bytes: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        threading.Thread(target=self._sample, daemon=True).start()

    def take(self) -> int:
        """The peak since the last call."""
        peak, self.peak_bytes = self.peak_bytes, 0
        return peak

    def stop(self) -> None:
        self._stop.set()

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            self.peak_bytes = max(self.peak_bytes, tree_rss(os.getpid()))


def tree_rss(root_pid: int) -> int:
    """Resident bytes of a process and all its descendants (from /proc: each thread's `children`, then each
    process's `statm`; 0 for a process gone meanwhile). Reads only the tree, not every process of the machine."""
    total, todo, seen = 0, [root_pid], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    todo += [int(child) for child in f.read().split()]
        except (OSError, ValueError, IndexError):
            continue
    return total
