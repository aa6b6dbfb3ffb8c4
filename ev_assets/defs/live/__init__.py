"""The live path in Dagster: what the long-running consumer lands, as external assets with lineage and freshness.

Why a consumer observed by Dagster rather than a run per batch: the consumer lands each batch and acknowledges
it within milliseconds, and the live state must follow each 10-minute poll (or each meter event) within seconds. A
Dagster run per batch costs seconds of launch on its own and would tie the broker's acknowledgements to run
scheduling. So the consumer (`python -m ev_assets.live`, started by `make live`) does the landing, and the sensor
`live_observer` reports to Dagster what it landed: each tick (every 10 s) that finds new stream sequences records
a materialization of each live asset with the landed counts, the stream sequences, the data's own time and its age
(its cursor is the stream sequences it has reported). It also records the verdict of the live assets' freshness
checks: they fail when the newest live data is older than two poll intervals on the live clock.
"""

from __future__ import annotations

import json
import time
import warnings
from datetime import timedelta

import dagster as dg

from ev_assets.lib.live import store
from ev_assets.lib.settings import Settings

STALE_AFTER = timedelta(seconds=Settings().live_stale_after_s)  # two poll intervals (EV_LIVE_STALE_POLLS)
FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=STALE_AFTER)

STATUS_CHANGES = dg.AssetKey(["live", "status_changes"])
CHARGING_EVENTS = dg.AssetKey(["live", "charging_events"])
STATUS_NOW = dg.AssetKey(["live", "status_now"])
OPEN_SESSIONS = dg.AssetKey(["live", "open_sessions"])
STATION_ENERGY_TODAY = dg.AssetKey(["live", "station_energy_today"])


def _spec(key: dg.AssetKey, description: str, deps: list) -> dg.AssetSpec:
    return dg.AssetSpec(key, description=description, deps=deps, group_name="live", kinds={"sqlite", "nats"},
                        freshness_policy=FRESHNESS)


live_assets = [
    _spec(STATUS_CHANGES, "Status changes of charging points and connectors landed from the broker (stream "
          "EV_STATUS): only what changed since the previous poll of a city, plus one poll-complete marker per city "
          "and poll. Published after each chargecloud poll is stored.", ["chargecloud_polls"]),
    _spec(CHARGING_EVENTS, "Charging events (start, meter, stop; OCPP-like) landed from the broker (stream "
          "EV_EVENTS), once each by event id and stream sequence.", []),
    _spec(STATUS_NOW, "The latest status of every charging point and connector, and the newest poll per city.",
          [STATUS_CHANGES]),
    _spec(OPEN_SESSIONS, "Charging transactions started and not yet stopped, with their energy so far.",
          [CHARGING_EVENTS]),
    _spec(STATION_ENERGY_TODAY, "Today's energy and revenue per station (UTC day of each transaction's latest "
          "event).", [CHARGING_EVENTS]),
]


FRESHNESS_CHECKED = (STATUS_NOW, OPEN_SESSIONS, STATION_ENERGY_TODAY)
FRESHNESS_CHECK = "freshness_check"  # the name `build_last_update_freshness_checks` gives its checks
RECHECK_S = 600  # an unchanged freshness verdict is recorded again this often


def observe(settings: Settings, cursor: dict, now_s: float | None = None) -> tuple[list, dict]:
    """The asset events of one look at the landing store: a materialization of each live asset that got new data
    since `cursor` (its `seq` holds the last reported sequence per stream), and the freshness verdict of the live
    assets (data older than two poll intervals on the live clock fails) when it changed or every `RECHECK_S`."""
    now_s = time.time() if now_s is None else now_s
    try:
        con = store.connect_reader(settings.live_dir)
    except store.NoLiveData:
        return [], cursor
    try:
        fresh = store.freshness(con)
        seen = cursor.get("seq", {})
        new = {s: q for s, q in fresh.last_seq.items() if q > seen.get(s, 0)}
        counts = store.counts(con) if new else {}
        open_now = len(store.open_sessions(con)) if new else 0
        energy = store.station_energy_today(con) if new else None
    finally:
        con.close()
    age = fresh.age_s()
    common = {
        "data_as_of": fresh.data_as_of() or "",
        "age_s": round(age, 1) if age is not None else -1.0,
        "clock": f"simulated, {fresh.clock.speed:g}x" if fresh.clock.simulated else "real time",
        "landed_store": dg.MetadataValue.path(str(store.store_path(settings.live_dir))),
        "stream_sequences": dg.MetadataValue.json(fresh.last_seq),
    }
    events: list = []
    if "EV_STATUS" in new:
        events += [
            dg.AssetMaterialization(STATUS_CHANGES, metadata={**common, "dagster/row_count": counts["status_changes"],
                                                               "poll_marks": counts["poll_marks"],
                                                               "quarantined_messages": counts["quarantine"]}),
            dg.AssetMaterialization(STATUS_NOW, metadata={**common, "dagster/row_count": counts["status_now"],
                                                           "newest_poll_time": fresh.newest_poll_time or ""}),
        ]
    if "EV_EVENTS" in new:
        events += [
            dg.AssetMaterialization(CHARGING_EVENTS, metadata={**common, "dagster/row_count": counts["charging_events"],
                                                                "quarantined_messages": counts["quarantine"]}),
            dg.AssetMaterialization(OPEN_SESSIONS, metadata={**common, "dagster/row_count": open_now}),
            dg.AssetMaterialization(STATION_ENERGY_TODAY, metadata={
                **common, "dagster/row_count": len(energy),
                "energy_kwh": float(energy["energy_kwh"].sum()) if len(energy) else 0.0,
                "revenue": float(energy["revenue"].sum()) if len(energy) else 0.0}),
        ]
    passed = age is not None and age <= settings.live_stale_after_s
    if passed != cursor.get("fresh") or now_s - cursor.get("checked_at", 0.0) >= RECHECK_S:
        verdict = {**common, "stale_after_s": settings.live_stale_after_s}
        events += [dg.AssetCheckEvaluation(asset_key=key, check_name=FRESHNESS_CHECK, passed=passed,
                                           severity=dg.AssetCheckSeverity.ERROR, metadata=verdict)
                   for key in FRESHNESS_CHECKED]
        cursor = {**cursor, "fresh": passed, "checked_at": now_s}
    return events, {**cursor, "seq": {**seen, **new}}


# The sensor starts stopped (a demo's `make ui` has no live path to watch); `make live` turns it on.
LIVE_SENSORS = ("live_observer",)


@dg.sensor(name="live_observer", minimum_interval_seconds=10, default_status=dg.DefaultSensorStatus.STOPPED,
           description="Reports what the live consumer landed as materializations of the live assets, and their freshness "
           "checks (cursor: the stream sequences reported so far and the last freshness verdict).")
def live_observer(context: dg.SensorEvaluationContext):
    cursor = json.loads(context.cursor) if context.cursor else {}
    events, cursor = observe(Settings.from_env(), cursor)
    if not events:
        return dg.SkipReason("nothing new landed by the live consumer")
    return dg.SensorResult(asset_events=events, cursor=json.dumps(cursor, sort_keys=True))


# The checks are declared as Dagster's last-update freshness checks (a user can run them too); the observer records
# their verdict from the data's own age on each tick where it changes, so no run is launched to evaluate them (a
# run per evaluation costs a code server and tens of seconds of a 2-core machine).
with warnings.catch_warnings():
    warnings.simplefilter("ignore", category=dg.SupersessionWarning)
    freshness_checks = dg.build_last_update_freshness_checks(
        assets=list(FRESHNESS_CHECKED), lower_bound_delta=STALE_AFTER, severity=dg.AssetCheckSeverity.ERROR,
    )

defs = dg.Definitions(assets=live_assets, asset_checks=freshness_checks, sensors=[live_observer])
