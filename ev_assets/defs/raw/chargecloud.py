"""chargecloud: raw polls of live charging-point status, and the tables flattened from them."""


from collections import Counter
from datetime import timedelta

import dagster as dg

from ev_assets.defs.partitions import daily_partitions, poll_partitions
from ev_assets.defs.resources import DUCKDB_POOL, EvConfig
from ev_assets.defs.tables import table_metadata, table_spec
from ev_assets.lib import chargecloud, rawstore, warehouse

RAW_SOURCE = "chargecloud"
PROGRESS_EVERY = 144  # log progress once per simulated day of polls

# Status facts are replaced per poll window; master data is merged as versions (first/last seen).
FACT_TABLES = {
    "status_chargingpoints": "One row per charging point (EVSE) per poll: its status, and the parking sensor's where given.",
    "status_connectors": "One row per connector per poll: its status.",
    "chargecloud_poll_log": "One row per city per poll: whether it answered, the error if not, and what it held.",
}
MASTER_TABLES = {
    "chargingstations": "Charging stations (master data), one row per version with first/last seen.",
    "chargingpoints": "Charging points / EVSEs (master data), one row per version.",
    "connectors": "Connectors (master data), one row per version.",
}
@dg.asset(
    group_name="raw",
    partitions_def=poll_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"json"},
    check_specs=[
        dg.AssetCheckSpec(
            "all_cities_polled",
            asset="chargecloud_polls",
            description="Every configured city answered every poll of the window.",
        )
    ],
)
def chargecloud_polls(context: dg.AssetExecutionContext, ev_config: EvConfig):
    """Raw polls of the chargecloud POI API (`GET new-poi.chargecloud.de/<city>`), one file per poll.

    Each poll is stored once under `raw/chargecloud/` as gzip JSON `{city_slug: response}` (the format of the
    recordings that replay mode reads), named by its SHA-256. A poll already stored is never fetched or written
    again, so re-running a partition rebuilds from exactly the same data. Cities that failed are listed in the
    file under `_failed` and make the `all_cities_polled` check fail; the other cities are kept.
    """
    settings = ev_config.settings()
    window = context.partition_time_window
    slots = chargecloud.poll_slots(settings, window.start, window.end)
    context.log.info(f"{len(slots)} poll(s) of {settings.mode('chargecloud')} chargecloud data in {window.start} .. {window.end}")

    files, written, failed, times = [], 0, {}, []
    for i, slot in enumerate(slots, start=1):
        key = rawstore.slot_key(slot)
        raw = rawstore.find_raw(settings.raw_dir, RAW_SOURCE, key)
        if raw is None:
            envelope = chargecloud.fetch_poll(settings, slot, log=context.log.warning)
            if not envelope:
                context.log.info(f"no poll recorded for {slot:%Y-%m-%d %H:%M}")
                continue
            raw = rawstore.write_raw(settings.raw_dir, RAW_SOURCE, key, envelope)
            written += 1
        else:
            envelope = raw.load()
        failed.update({f"{slot:%Y-%m-%d %H:%M} {city}": reason for city, reason in envelope.get("_failed", {}).items()})
        files.append(raw)
        times.append(chargecloud.poll_time(envelope))
        if i % PROGRESS_EVERY == 0:
            context.log.info(f"polled {i}/{len(slots)} slots")

    unplaced = chargecloud.replay_unplaced(settings) if settings.mode("chargecloud") == "replay" else {}
    for path, reason in list(unplaced.items())[:20]:  # without a poll time a recording has no slot, so no table
        context.log.warning(f"recording left out: {path}: {reason}")

    metadata = {
        "recordings_without_poll_time": len(unplaced),
        "polls": len(files),
        "polls_written": written,
        "polls_already_stored": len(files) - written,
        "source_mode": settings.mode("chargecloud"),
        "failed_cities": len(failed),
    }
    if files:  # the latest poll of the window (the only one for a scheduled run)
        metadata["path"] = dg.MetadataValue.path(str(files[-1].path))
        metadata["sha256"] = files[-1].sha256
        metadata["bytes"] = sum(f.size_bytes for f in files)
        if times[-1] is not None:
            metadata["poll_time"] = dg.MetadataValue.timestamp(times[-1])
        if len(files) > 1 and times[0] is not None:
            metadata["first_poll_time"] = dg.MetadataValue.timestamp(times[0])
    yield dg.MaterializeResult(metadata=metadata)
    yield dg.AssetCheckResult(
        check_name="all_cities_polled",
        passed=not failed,
        metadata={"failed": dg.MetadataValue.json(dict(list(failed.items())[:50])), "failed_count": len(failed)},
    )


@dg.multi_asset(
    specs=[
        *(table_spec(name, desc, deps=["chargecloud_polls"], partitions_def=daily_partitions) for name, desc in FACT_TABLES.items()),
        *(table_spec(name, desc, deps=["chargecloud_polls"], partitions_def=daily_partitions) for name, desc in MASTER_TABLES.items()),
    ],
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=DUCKDB_POOL,
)
def chargecloud_tables(context: dg.AssetExecutionContext, ev_config: EvConfig):
    """Flattens the stored polls of each UTC day into status facts and master-data versions (schema `raw`).

    Daily, like the warehouse: materializing today's partition again picks up the polls stored since. Facts are
    deleted and re-inserted per day, so re-running never duplicates rows. Records that cannot be loaded as they
    are go to `raw.quarantine` with the reason.
    """
    settings = ev_config.settings()
    window = context.partition_time_window
    written: Counter = Counter()
    quarantined = 0
    day = window.start
    with ev_config.connect() as con:
        # One day at a time keeps memory flat for long backfills.
        while day < window.end:
            day_end = min(day + timedelta(days=1), window.end)
            stored = rawstore.stored_slots(settings.raw_dir, RAW_SOURCE, day, day_end)
            flat = chargecloud.flatten_polls((raw.load(), slot, str(raw.path)) for slot, raw in stored).tables()
            params = (day, day_end)
            for name in FACT_TABLES:
                written[name] += warehouse.replace_rows(con, name, flat[name], "poll_slot >= ? AND poll_slot < ?", params)
            for name in MASTER_TABLES:
                written[name] += warehouse.upsert_versions(con, name, flat[name], chargecloud.item_key(name))  # new versions
            quarantined += warehouse.replace_rows(
                con, "quarantine", flat["quarantine"],
                "source = 'chargecloud' AND partition_key >= ? AND partition_key < ?",
                (day.isoformat(), day_end.isoformat()),
            )
            context.log.info(f"{day:%Y-%m-%d}: {len(stored)} polls, {len(flat['status_chargingpoints'])} charging-point statuses")
            day = day_end

        if quarantined:
            context.log.warning(f"{quarantined} chargecloud record(s) quarantined: see raw.quarantine (source 'chargecloud')")
        for name in FACT_TABLES:
            meta = table_metadata(con, name, written[name], "poll_slot >= ? AND poll_slot < ?", (window.start, window.end))
            if name == "status_chargingpoints":
                meta["quarantined_records"] = quarantined
            yield dg.MaterializeResult(asset_key=["raw", name], metadata=meta)
        for name in MASTER_TABLES:
            meta = table_metadata(con, name, written[name])
            yield dg.MaterializeResult(asset_key=["raw", name], metadata=meta)
