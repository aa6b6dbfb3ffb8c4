"""chargecloud: raw polls of live charging-point status, and the tables flattened from them."""


from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Iterator

import dagster as dg

from ev_assets.defs.partitions import POLL_KEY_FORMAT, daily_partitions, poll_partitions
from ev_assets.defs.resources import EvConfig
from ev_assets.defs.tables import table_metadata, table_spec
from ev_assets.lib import lake as lakes
from ev_assets.lib import rawstore
from ev_assets.lib.sources import chargecloud
from ev_assets.lib.settings import Settings

RAW_SOURCE = "chargecloud"
PROGRESS_EVERY = 144  # log progress once per simulated day of polls
DAY_FORMAT = "%Y-%m-%d"

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
IN_WINDOW = "poll_slot >= ? AND poll_slot < ?"
# a master-data version belongs to the days between its first and last poll
SEEN_IN_WINDOW = "first_seen_at < ? AND last_seen_at >= ?"


@dg.asset(
    group_name="raw",
    partitions_def=poll_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"json"},
    check_specs=[
        dg.AssetCheckSpec(
            "all_cities_polled",
            asset="chargecloud_polls",
            description="Every configured city answered every poll of the window with usable data (status_code 1000 "
            "and no error message, stations in data), and every recording of a replay folder could be placed.",
        )
    ],
)
def chargecloud_polls(context: dg.AssetExecutionContext, ev_config: EvConfig):
    """Raw polls of the chargecloud POI API (`GET new-poi.chargecloud.de/<city>`), one file per poll.

    Each poll is stored once under `raw/chargecloud/` as gzip JSON `{city_slug: response}` (the format of the
    recordings that replay mode reads), named by its SHA-256. A poll already stored is not fetched again unless
    it failed: then it is tried again and a better attempt is stored beside it (the failed one stays as evidence,
    the better one is loaded). Cities that failed make the `all_cities_polled` check fail; the others are kept.
    """
    settings = ev_config.settings()
    window = context.partition_time_window
    slots = chargecloud.poll_slots(settings, window.start, window.end)
    keys = set(context.partition_keys)
    context.log.info(f"{len(slots)} poll(s) of {settings.mode('chargecloud')} chargecloud data in {window.start} .. {window.end}")

    stored, written, failed = 0, 0, {}
    live = _live_publisher(context, settings)
    for i, slot in enumerate(slots, start=1):
        raw, envelope, new = _poll(context, settings, slot)
        if raw is None:
            context.log.info(f"no poll recorded for {slot:%Y-%m-%d %H:%M}")
            continue
        stored, written = stored + 1, written + new
        if live is not None:
            live.publish_stored(slot, raw)
        failed.update({f"{slot:%Y-%m-%d %H:%M} {city}": reason for city, reason in chargecloud.poll_failures(envelope, slot).items()})
        if f"{slot:{POLL_KEY_FORMAT}}" in keys:
            context.add_asset_metadata(_poll_metadata(raw, envelope, new), partition_key=f"{slot:{POLL_KEY_FORMAT}}")
        if i % PROGRESS_EVERY == 0:
            context.log.info(f"polled {i}/{len(slots)} slots")

    unplaced = chargecloud.replay_unplaced(settings) if settings.mode("chargecloud") == "replay" else {}
    for path, reason in list(unplaced.items())[:20]:
        context.log.warning(f"recording left out: {path}: {reason}")
    failed.update({f"recording {path}": reason for path, reason in unplaced.items()})

    if live is not None:
        live.bus.close()
    yield dg.MaterializeResult(
        metadata={"source_mode": settings.mode("chargecloud"), "polls_in_run": stored, "polls_written_in_run": written,
                  "published_to_broker": live is not None}
    )
    yield dg.AssetCheckResult(
        check_name="all_cities_polled",
        passed=not failed,
        metadata={
            "failed": dg.MetadataValue.json(dict(list(failed.items())[:50])),
            "failed_count": len(failed),
            "recordings_without_usable_poll_time": len(unplaced),
        },
    )


def _live_publisher(context, settings: Settings):
    """With a broker configured (EV_NATS_URL), each stored poll's status changes are published to the live path."""
    if not settings.nats_url:
        return None
    from ev_assets.lib.live.bus import NatsBus
    from ev_assets.lib.live.feeds import PollPublisher

    context.log.info(f"publishing each stored poll's status changes to {settings.nats_url}")
    return PollPublisher(settings, NatsBus(settings.nats_url, name="chargecloud_polls"), log=context.log.warning)


def _poll(context, settings: Settings, slot: datetime) -> tuple[rawstore.RawFile | None, dict, bool]:
    """(stored file, envelope, newly written) of one slot: the stored poll, or a new attempt when there is none or
    every stored attempt failed somewhere (the failed attempts stay as evidence; the best one is loaded)."""
    key, store = rawstore.slot_key(slot), rawstore.from_settings(settings)
    attempts = [(raw.load(), raw) for raw in store.attempts(RAW_SOURCE, key)]
    if attempts:
        best, envelope = _pick(attempts)
        if not chargecloud.poll_failures(envelope, slot):
            return attempts[best][1], envelope, False
    try:
        fresh = chargecloud.fetch_poll(settings, slot, log=context.log.warning)
    except chargecloud.ChargecloudError:
        if not attempts:
            raise
        fresh = {}  # live mode cannot ask the past again: the stored attempt stays
    if fresh:
        raw = store.write(RAW_SOURCE, key, fresh, new_attempt=True)
        if raw.written:
            attempts.append((fresh, raw))
    if not attempts:
        return None, {}, False
    best, envelope = _pick(attempts)
    raw = attempts[best][1]
    if raw.written and len(attempts) > 1:
        context.log.warning(f"poll {slot:%Y-%m-%d %H:%M}: a new attempt is loaded instead of the failed one(s) stored before")
    return raw, envelope, raw.written


def _pick(attempts: list[tuple[dict, rawstore.RawFile]]) -> tuple[int, dict]:
    return chargecloud.pick_attempt([(envelope, str(raw.path)) for envelope, raw in attempts])


def _poll_metadata(raw: rawstore.RawFile, envelope: dict, new: bool) -> dict:
    meta = {
        "path": dg.MetadataValue.path(str(raw.path)),
        "bytes": raw.size_bytes,
        "newly_written": new,
        "cities": sum(1 for key in envelope if not str(key).startswith("_")),
    }
    poll_time = chargecloud.poll_time(envelope)
    if poll_time is not None:
        meta["poll_time"] = dg.MetadataValue.timestamp(poll_time)
    return meta


CONTRACT_CHECKS = [
    dg.AssetCheckSpec(name, asset=["raw", table], description=description)
    for table, name, description in chargecloud.CONTRACTS.values()
]


@dg.multi_asset(
    specs=[
        *(table_spec(name, desc, deps=["chargecloud_polls"], partitions_def=daily_partitions) for name, desc in FACT_TABLES.items()),
        *(table_spec(name, desc, deps=["chargecloud_polls"], partitions_def=daily_partitions) for name, desc in MASTER_TABLES.items()),
    ],
    check_specs=CONTRACT_CHECKS,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def chargecloud_tables(context: dg.AssetExecutionContext, ev_config: EvConfig):
    """Flattens the stored polls of each UTC day into status facts and master-data versions (schema `raw`).

    Daily, like the warehouse: materializing today's partition again picks up the polls stored since. Each day is
    one partition of the lake per table (`source=chargecloud/day=<day>`), replaced whole, so re-running never
    duplicates rows and days can be written at the same time. Master-data versions are kept per day and merged
    (first/last seen) by the raw views. Records that break a data contract (see the checks) go to `raw.quarantine`
    with the reason, and the good records beside them load.
    """
    settings = ev_config.settings()
    window = context.partition_time_window
    written: Counter = Counter()
    problems: dict[str, chargecloud.Problems] = defaultdict(chargecloud.Problems)
    quarantined = 0
    day = window.start
    shapes = chargecloud.CityShapes()  # what each city's answers look like, learnt once for all days
    lake = ev_config.lake()
    # One day at a time keeps memory flat for long backfills: a day's tables are gone before the next day's.
    while day < window.end:
        day_end = min(day + timedelta(days=1), window.end)
        day_written, day_quarantined = _ingest_day(context, ev_config, lake, settings, shapes, day, day_end, problems)
        written.update(day_written)
        quarantined += day_quarantined
        day = day_end

    if settings.mode("chargecloud") == "replay":  # recordings that belong to no day are quarantined too
        unplaced = chargecloud.unplaced_quarantine(chargecloud.replay_unplaced(settings))
        lake.write("quarantine", unplaced, RAW_SOURCE, chargecloud.UNPLACED_PARTITION)
        for reason in unplaced["reason"]:
            problems["poll"].add(f"recording without a usable poll time: {reason}")
        quarantined += len(unplaced)

    if quarantined:
        context.log.warning(f"{quarantined} chargecloud record(s) quarantined: see raw.quarantine (source 'chargecloud')")
    for name in (*FACT_TABLES, *MASTER_TABLES):
        yield dg.MaterializeResult(asset_key=["raw", name], metadata={"rows_written_in_run": written[name]})
    for rule, (table, check_name, _) in chargecloud.CONTRACTS.items():
        found = problems.get(rule, chargecloud.Problems())
        yield dg.AssetCheckResult(
            asset_key=["raw", table],
            check_name=check_name,
            passed=found.count == 0,
            metadata={"records": found.count, "examples": dg.MetadataValue.json(found.examples)},
        )


def _ingest_day(context, ev_config: EvConfig, lake: lakes.Lake, settings: Settings, shapes: chargecloud.CityShapes,
                day: datetime, day_end: datetime, problems: dict[str, chargecloud.Problems]) -> tuple[dict[str, int], int]:
    """Flatten the stored polls of [day, day_end) and write them as the day's lake partitions: (rows written per
    table, records quarantined)."""
    polls = _StoredPolls(settings, day, day_end)
    flat = chargecloud.flatten_polls(polls, shapes)  # reads the day's polls one at a time
    for rule, found in flat.problems.items():
        problems[rule].merge(found)
    tables = flat.tables(arrow=True)  # the status facts as Arrow: the same values, written faster
    key = f"{day:{DAY_FORMAT}}"
    day_written = {name: lake.write(name, tables[name], RAW_SOURCE, key) for name in (*FACT_TABLES, *MASTER_TABLES)}
    quarantined = lake.write("quarantine", tables["quarantine"], RAW_SOURCE, key)
    _describe_day(context, ev_config, day, day_end, day_written)
    context.log.info(f"{day:%Y-%m-%d}: {len(polls)} polls, {len(tables['status_chargingpoints'])} charging-point statuses")
    return day_written, quarantined


class _StoredPolls:
    """(poll, slot, raw file) of every stored poll in [start, end), oldest first, read as it is iterated (one file
    held at a time): the stored JSON as bytes (`flatten_polls` reads those fast), or, where a slot holds several
    attempts, the envelope `pick_attempt` chose."""

    def __init__(self, settings: Settings, start: datetime, end: datetime):
        by_slot: dict[datetime, list] = defaultdict(list)
        for slot, raw in rawstore.from_settings(settings).slots(RAW_SOURCE, start, end):
            by_slot[slot].append(raw)
        self._slots = sorted(by_slot.items())

    def __len__(self) -> int:
        return len(self._slots)

    def __iter__(self) -> Iterator[tuple[dict | bytes, datetime, str]]:
        # (Reading ahead in a thread was slower: zlib gives the GIL back between output blocks, and waiting for it
        # again costs more than the unzipping.)
        for slot, stored in self._slots:
            if len(stored) == 1:
                yield stored[0].read_bytes(), slot, str(stored[0].path)
                continue
            attempts = [(raw.load(), raw) for raw in sorted(stored, key=lambda r: (r.modified, r.name))]
            best, envelope = _pick(attempts)
            yield envelope, slot, str(attempts[best][1].path)


def _describe_day(context, ev_config: EvConfig, day: datetime, day_end: datetime, day_written: dict) -> None:
    """Each daily partition's materialization describes that day: its rows and a preview of them."""
    key = f"{day:{DAY_FORMAT}}"
    if key not in set(context.partition_keys):
        return
    with ev_config.lake_connect(partition=(RAW_SOURCE, key)) as con:  # that day's files only
        _describe_tables(context, con, key, day, day_end, day_written)


def _describe_tables(context, con, key: str, day: datetime, day_end: datetime, day_written: dict) -> None:
    for name in FACT_TABLES:
        meta = table_metadata(con, name, day_written[name], IN_WINDOW, (day, day_end))
        context.add_asset_metadata(meta, asset_key=["raw", name], partition_key=key)
    for name in MASTER_TABLES:
        meta = table_metadata(con, name, day_written[name], SEEN_IN_WINDOW, (day_end, day))
        context.add_asset_metadata(meta, asset_key=["raw", name], partition_key=key)
