"""Open Charge Map: the raw registry pull and the station tables parsed from it."""

from datetime import datetime, timezone

import dagster as dg

from ev_assets.defs.resources import EvConfig
from ev_assets.defs.tables import table_metadata, table_spec
from ev_assets.lib import rawstore, replayfiles
from ev_assets.lib.lake import WHOLE
from ev_assets.lib.sources import openchargemap

RAW_SOURCE = "openchargemap"


@dg.asset(
    group_name="raw",
    kinds={"json"},
    check_specs=[
        dg.AssetCheckSpec(replayfiles.CHECK, asset="openchargemap_pull", description=replayfiles.CHECK_DESCRIPTION)
    ],
)
def openchargemap_pull(context: dg.AssetExecutionContext, ev_config: EvConfig):
    """Raw Open Charge Map `/v3/poi` response for the configured country, with the reference data to decode it.

    Stored once per distinct content under `raw/openchargemap/`; the API key (OPENCHARGEMAP_API_KEY) is sent as a
    header and never logged or stored. In replay mode a recorded file that cannot be read is left out (and
    quarantined by `ocm_tables`), fails the check `all_replay_files_read`, and the good files still load.
    """
    settings = ev_config.settings()
    report = replayfiles.FileReport()
    pull = openchargemap.fetch_ocm(settings, log=context.log.warning, report=report)
    raw = rawstore.from_settings(settings).write_pull(RAW_SOURCE, pull, prefix="ocm")
    for line in report.warnings(RAW_SOURCE):
        context.log.warning(line)
    yield dg.Output(
        str(raw.path),
        metadata={
            "pois": len(pull.get("poi", [])),
            "path": dg.MetadataValue.path(str(raw.path)),
            "sha256": raw.sha256,
            "bytes": raw.size_bytes,
            "newly_written": raw.written,
            "source_mode": settings.mode("openchargemap"),
            **report.metadata(),
        },
    )
    yield dg.AssetCheckResult(check_name=replayfiles.CHECK, passed=report.ok, metadata=report.check_metadata())


@dg.multi_asset(
    specs=[
        table_spec("ocm_stations", "Open Charge Map stations with decoded operator, usage and status names: every version over the stored pulls.", deps=["openchargemap_pull"]),
        table_spec("ocm_connections", "Open Charge Map connections (plugs) per station.", deps=["openchargemap_pull"]),
    ],
)
def ocm_tables(context: dg.AssetExecutionContext, ev_config: EvConfig, openchargemap_pull: str):
    """`ocm_stations` holds every version of every station over all stored pulls (a new row when a later pull
    gives a station other values, with `first_pulled_at`; dbt builds the type-2 `dim_ocm_station_history` and the
    current `stg_ocm__stations` from it); `ocm_connections` and the quarantine are those of the latest pull. Unknown
    reference IDs stay as IDs; POIs without ID or coordinates, and recorded files the pull could not read (level
    `file`), are quarantined with the reason."""
    store = rawstore.from_settings(ev_config.settings())
    latest = str(openchargemap_pull)
    parsed = openchargemap.parse_ocm(store.read(latest), raw_file=latest)
    pulls = [(str(p.path), datetime.fromtimestamp(p.modified, timezone.utc)) for p in store.pulls(RAW_SOURCE)]
    if pulls and pulls[-1][0] != latest:  # the registry came back to an earlier content (stored once): now again
        pulls.append((latest, datetime.now(timezone.utc)))
    versions = openchargemap.station_versions(
        [(parsed if path == latest else openchargemap.parse_ocm(store.read(path), raw_file=path), at)
         for path, at in pulls])
    lake = ev_config.lake()
    n_st = lake.write("ocm_stations", versions, RAW_SOURCE, WHOLE)
    n_co = lake.write("ocm_connections", parsed.connections, RAW_SOURCE, WHOLE)
    n_q = lake.write("quarantine", parsed.quarantine, RAW_SOURCE, WHOLE)
    with ev_config.lake_connect() as con:
        if n_q:
            context.log.warning(f"{n_q} Open Charge Map record(s) quarantined: see raw.quarantine (source 'openchargemap')")
        station_meta = {**table_metadata(con, "ocm_stations", n_st), "quarantined_records": n_q, "stored_pulls": len(pulls),
                        "stations": int(versions["ocm_id"].nunique()) if n_st else 0}
        yield dg.MaterializeResult(asset_key=["raw", "ocm_stations"], metadata=station_meta)
        yield dg.MaterializeResult(asset_key=["raw", "ocm_connections"], metadata=table_metadata(con, "ocm_connections", n_co))
