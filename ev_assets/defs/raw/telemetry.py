"""Vehicle telemetry (state of charge and plug flag over time): the raw pull and the `raw.vehicle_telemetry` table."""

import re
from pathlib import Path

import dagster as dg

from ev_assets.defs.raw.pulls import store_pulled_files
from ev_assets.defs.resources import EvConfig
from ev_assets.defs.tables import table_metadata, table_spec
from ev_assets.lib import rawstore, replayfiles
from ev_assets.lib.lake import WHOLE
from ev_assets.lib.sources import telemetry

SOURCE = telemetry.SOURCE
DESCRIPTION = (
    "Vehicle telemetry: one row per vehicle and reading time with state of charge (%), plug flag and the file's "
    "other columns as JSON (`extra`); irregularly sampled, sorted, one row per (vehicle, time)."
)


def _stored_name(name: str) -> tuple[str, str]:
    """A file name as a raw key prefix and suffix: `fleet/week 1.csv.gz` -> (`fleet_week_1`, `.csv`)."""
    path = Path(name[:-3] if name.lower().endswith(".gz") else name)
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", path.with_suffix("").as_posix()), path.suffix.lower() or ".dat"


@dg.asset(
    name=f"{SOURCE}_pull",
    group_name="raw",
    kinds={"file"},
    description="Raw vehicle telemetry files (CSV or Parquet; simulated, replayed or from EV_TELEMETRY_INBOX), kept "
    "as they came, gzipped, one per distinct content. A file that cannot be read as a whole is kept too (its table "
    "quarantines it) and fails the check all_replay_files_read.",
    check_specs=[dg.AssetCheckSpec(replayfiles.CHECK, asset=f"{SOURCE}_pull", description=replayfiles.CHECK_DESCRIPTION)],
)
def vehicle_telemetry_pull(context: dg.AssetExecutionContext, ev_config: EvConfig):
    settings = ev_config.settings()
    report = replayfiles.FileReport()
    files = telemetry.pull_files(settings, report)
    yield from store_pulled_files(context, settings, SOURCE, SOURCE, files, _stored_name, report,
                                  telemetry.files_folder(settings), settings.mode(SOURCE))


@dg.multi_asset(
    name=f"{SOURCE}_table",
    specs=[table_spec(SOURCE, DESCRIPTION, deps=[f"{SOURCE}_pull"])],
)
def vehicle_telemetry_table(context: dg.AssetExecutionContext, ev_config: EvConfig):
    """Every file ever pulled (the raw store, oldest first), not only this pull's: one row per vehicle and reading
    time, so an export that overlaps an earlier one adds only the new readings and a landing folder may be emptied
    after a pull. Files out of time order are sorted; rows that cannot be loaded, conflicting repeats (the first
    reading stays) and files that cannot be read (level `file`) go to raw.quarantine with the reason."""
    settings = ev_config.settings()
    stored = rawstore.from_settings(settings).pulls(SOURCE)
    parsed = [telemetry.parse_or_quarantine(p.name, p.read_bytes(), raw_file=str(p.path)) for p in stored]
    combined = telemetry.combine(parsed)
    lake = ev_config.lake()
    written = lake.write(SOURCE, combined.table, SOURCE, WHOLE)
    quarantined = lake.write("quarantine", combined.quarantine, SOURCE, WHOLE)
    with ev_config.lake_connect() as con:
        meta = table_metadata(con, SOURCE, written)
    stats = combined.stats
    if quarantined:
        context.log.warning(f"{quarantined} {SOURCE} row(s) or file(s) quarantined: see raw.quarantine (source '{SOURCE}')")
    if stats["duplicate_readings"] or stats["conflicting_duplicates"] or stats["unsorted_files"]:
        context.log.info(
            f"{SOURCE}: {stats['duplicate_readings']} repeated reading(s) counted once, "
            f"{stats['conflicting_duplicates']} conflicting repeat(s) quarantined, {stats['unsorted_files']} file(s) "
            "out of time order sorted"
        )
    meta.update({
        "quarantined_records": quarantined,
        "vehicles": stats["vehicles"],
        "duplicate_readings": stats["duplicate_readings"],
        "conflicting_duplicates": stats["conflicting_duplicates"],
        "unsorted_files": stats["unsorted_files"],
    })
    yield dg.MaterializeResult(asset_key=["raw", SOURCE], metadata=meta)


telemetry_assets = [vehicle_telemetry_pull, vehicle_telemetry_table]
