"""Session sources: charging-session reports and hourly loads (Norwegian dataset format), Caltech ACN-Data
sessions, and charging-event logs (OCPP-like). Each has a raw pull asset and a table asset."""


import re
from pathlib import Path

import dagster as dg

from ev_assets.defs.raw.pulls import store_pulled_files
from ev_assets.defs.resources import EvConfig
from ev_assets.defs.tables import table_metadata, table_spec
from ev_assets.lib import rawstore, replayfiles
from ev_assets.lib.lake import WHOLE
from ev_assets.lib.sources import sessions

DESCRIPTIONS = {
    "session_reports": "Charging-session reports (plug-in, plug-out, kWh) per user and garage; local times.",
    "hourly_loads": "Hourly charging loads per user and session; an idle hour is one row without a session.",
    "acn_sessions": "Caltech ACN-Data charging sessions (connection, disconnection, kWh delivered and requested).",
    "charging_events": "Charging-event logs: start, progress and complete events with meter energy and cost.",
}


def _stored_name(name: str) -> tuple[str, str]:
    """A file name as a raw key prefix and suffix: `Dataset 1_EV charging reports.csv` -> (`Dataset_1_EV_charging_reports`, `.csv`)."""
    path = Path(name[:-3] if name.endswith(".gz") else name)
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem), path.suffix or ".dat"


def build_session_assets(source: str) -> list[dg.AssetsDefinition]:
    pull_name = f"{source}_pull"

    @dg.asset(
        name=pull_name,
        group_name="raw",
        kinds={"file"},
        description=f"Raw files of {source}: {DESCRIPTIONS[source]} Kept as they came, gzipped, one per distinct "
        "content. A file that cannot be read as a whole is kept too (its table quarantines it) and fails the check "
        "all_replay_files_read; files no session source recognises are listed in the metadata.",
        check_specs=[dg.AssetCheckSpec(replayfiles.CHECK, asset=pull_name, description=replayfiles.CHECK_DESCRIPTION)],
    )
    def pull(context: dg.AssetExecutionContext, ev_config: EvConfig):
        settings = ev_config.settings()
        report = replayfiles.FileReport()
        files = sessions.pull_files(settings, source, report)
        yield from store_pulled_files(context, settings, source, f"sessions/{source}", files, _stored_name, report,
                                      sessions.files_folder(settings), settings.mode("sessions"))

    @dg.multi_asset(
        name=f"{source}_table",
        specs=[table_spec(source, DESCRIPTIONS[source], deps=[pull_name])],
    )
    def table(context: dg.AssetExecutionContext, ev_config: EvConfig):
        """Everything ever pulled (the raw store, not only this pull), one row per record by its natural key
        (`sessions.NATURAL_KEYS`): a file pulled again changes nothing, an overlapping export adds only what is new,
        and a record that came back changed is taken in its latest version. So a landing folder may be emptied
        after a pull, and this table is always the rebuild of the raw store. Rows that cannot be loaded, and files
        that cannot be read as a whole (level `file`), go to raw.quarantine with the reason."""
        settings = ev_config.settings()
        stored = rawstore.from_settings(settings).pulls(f"sessions/{source}")
        parsed = [sessions.parse_or_quarantine(source, p.name, p.read_bytes(), raw_file=str(p.path))
                  for p in stored]
        merged = sessions.accumulate(source, parsed)
        lake = ev_config.lake()
        with ev_config.lake_connect() as con:
            before = con.execute(f"SELECT count(*) FROM raw.{source}").fetchone()[0]
        written = lake.write(source, merged.table, source, WHOLE)
        quarantined = lake.write("quarantine", merged.quarantine, source, WHOLE)
        with ev_config.lake_connect() as con:
            meta = table_metadata(con, source, written)
        context.log.info(f"{source}: {written:,} record(s) from {len(stored)} stored file(s), {written - before:+,} "
                         "since the last run")
        if quarantined:
            context.log.warning(
                f"{quarantined} {source} row(s) or file(s) quarantined: see raw.quarantine (source '{source}')"
            )
        meta.update({"quarantined_records": quarantined, "stored_files": len(stored), "new_records": written - before})
        yield dg.MaterializeResult(asset_key=["raw", source], metadata=meta)

    return [pull, table]


session_assets = [a for source in sessions.SOURCES for a in build_session_assets(source)]
