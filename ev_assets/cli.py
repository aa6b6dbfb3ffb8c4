"""Command line of ev-assets: run the main jobs in-process, recorded in the Dagster instance the UI shows.

    python -m ev_assets.cli demo      # the whole graph: polls, ingestion, warehouse (the README's `make demo`)
    python -m ev_assets.cli ingest    # polls and ingestion only (`make ingest`), honouring EV_SOURCE / EV_REPLAY_DIR

The poll window comes from the source mode: the simulated range (EV_SIM_START, EV_SIM_DAYS), the recorded
polls (replay), or the latest complete 10-minute window (live).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta, timezone

import dagster as dg

from ev_assets.lib import chargecloud, warehouse
from ev_assets.lib.chargecloud import floor_slot
from ev_assets.lib.settings import Settings

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
POLL_KEY_FORMAT = "%Y-%m-%d-%H:%M"
GRID = timedelta(minutes=10)


def poll_window(settings: Settings, now: datetime | None = None) -> tuple[datetime, datetime]:
    """[start, end) of the poll partitions a demo or ingest run covers."""
    mode = settings.mode("chargecloud")
    if mode == "simulated":
        start = datetime.combine(settings.simulation.start, datetime.min.time(), timezone.utc)
        return start, start + timedelta(days=settings.simulation.days)
    if mode == "replay":
        slots = sorted(chargecloud.replay_index(settings))
        if not slots:
            raise SystemExit(f"no recorded chargecloud polls found in {settings.replay_folder('chargecloud')}")
        return floor_slot(slots[0], 10), floor_slot(slots[-1], 10) + GRID
    end = floor_slot(now or datetime.now(timezone.utc), 10)
    return end - GRID, end


def _run(defs: dg.Definitions, instance: dg.DagsterInstance, job: str, tags: dict | None = None) -> bool:
    print(f"\n== {job} {tags or ''}", flush=True)
    result = defs.resolve_job_def(job).execute_in_process(instance=instance, tags=tags or {}, raise_on_error=False)
    failed_checks = [
        f"{e.asset_check_evaluation_data.asset_key.to_user_string()}:{e.asset_check_evaluation_data.check_name}"
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION" and not e.asset_check_evaluation_data.passed
    ]
    status = "succeeded" if result.success else "FAILED"
    print(f"== {job} {status} (run {result.run_id})" + (f"; failed checks: {', '.join(failed_checks)}" if failed_checks else ""))
    if not result.success:
        for event in result.all_events:
            if event.is_step_failure:
                print(f"   step {event.step_key}: {event.step_failure_data.error.message.strip()}")
    return result.success


def _summary(settings: Settings) -> None:
    with warehouse.connect(settings.warehouse_path, read_only=True) as con:
        rows = con.execute(
            """SELECT schema_name, table_name, estimated_size FROM duckdb_tables()
               ORDER BY schema_name, table_name"""
        ).fetchall()
    print(f"\nWarehouse {settings.warehouse_path}:")
    for schema, name, size in rows:
        print(f"  {schema + '.' + name:<50} {size:>12,} rows")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ev_assets.cli", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["demo", "ingest"])
    args = parser.parse_args(argv)

    from ev_assets.definitions import defs

    settings = Settings.from_env()
    try:
        instance = dg.DagsterInstance.get()
    except Exception:  # DAGSTER_HOME unset: runs still work, but the UI will not show them
        print("DAGSTER_HOME is not set: using a temporary Dagster instance (the UI will not show these runs)")
        instance = dg.DagsterInstance.ephemeral()

    start, end = poll_window(settings)
    print(f"data root {settings.data_dir}; chargecloud mode {settings.mode('chargecloud')}; polls {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC")
    days = {RANGE_START_TAG: f"{start.date()}", RANGE_END_TAG: f"{(end - timedelta(seconds=1)).date()}"}
    ok = _run(defs, instance, "chargecloud_poll_job", {RANGE_START_TAG: f"{start:{POLL_KEY_FORMAT}}", RANGE_END_TAG: f"{end - GRID:{POLL_KEY_FORMAT}}"})
    ok = ok and _run(defs, instance, "ingest_job", days)
    if args.command == "demo" and ok:
        ok = _run(defs, instance, "warehouse_job", days)
    _summary(settings)
    docs = settings.data_dir / "docs" / "index.html"
    if docs.exists():
        print(f"\ndbt docs site (opens offline): {docs}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
