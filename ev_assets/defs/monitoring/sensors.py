"""The retraining sensor: it reads the latest result of each drift and live-error check and requests `retrain_job`
when one has newly failed. Ticks are cheap (a few reads of check records); the assets do the work.

A plain `@dg.sensor` rather than an asset sensor: a failed non-blocking check neither fails its run nor makes a
materialization, so run-status and asset sensors never see it (see ../shared/ML-STACK.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import dagster as dg

from ev_assets.defs.monitoring.assets import LIVE_ERROR, LIVE_LIMIT, MONITORED, NO_DRIFT, drift_key
from ev_assets.lib.live import store
from ev_assets.lib.settings import Settings

WATCHED = (*(dg.AssetCheckKey(drift_key(m), NO_DRIFT) for m in MONITORED), dg.AssetCheckKey(LIVE_ERROR, LIVE_LIMIT))
REASON_TAG = "ev_assets/retrain_reason"


def latest_check_record(instance: dg.DagsterInstance, key: dg.AssetCheckKey):
    """The latest evaluation record of a check (None: never ran). The one call of a non-public instance method
    (`get_latest_asset_check_evaluation_record`, Dagster 1.13): check it when upgrading."""
    return instance.get_latest_asset_check_evaluation_record(key)


@dataclass
class Cursor:
    """What the sensor remembers between ticks: per check, the id of the latest record it has handled and the
    model version a retraining was requested for while it fails (the breach), and when it last requested one."""

    handled: dict[str, int] = field(default_factory=dict)
    last_request_at: str | None = None
    requested_for: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, text: str | None) -> "Cursor":
        if not text:
            return cls()
        data = json.loads(text)
        return cls(handled={k: int(v) for k, v in data.get("handled", {}).items()},
                   last_request_at=data.get("last_request_at"), requested_for=dict(data.get("requested_for", {})))

    def dump(self) -> str:
        return json.dumps({"handled": self.handled, "last_request_at": self.last_request_at,
                           "requested_for": self.requested_for}, sort_keys=True)


def reference_version(record) -> str | None:
    """The model version a check's record judged (`reference_version` of the drift checks), or None."""
    evaluation = getattr(record, "evaluation", None)
    value = (evaluation.metadata or {}).get("reference_version") if evaluation is not None else None
    return None if value is None else str(getattr(value, "value", value))


def evaluate(instance: dg.DagsterInstance, cursor: Cursor, cooldown: timedelta, now: datetime):
    """(run request or None, the reason when none, the new cursor): one request per tick at most, covering every
    check whose latest record newly failed; none inside the cool-down (those failures are then marked handled: the
    next monitoring run after the cool-down reports again if the breach persists).

    One request per breach: a check that keeps failing against the same model version after a retraining was
    requested for it is the same breach (the retraining ran and the gate kept that version, or it has not run
    yet): nothing more is requested until the check passes or another version is judged."""
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus as Status

    failed, same_breach = [], []
    for key in WATCHED:
        record = latest_check_record(instance, key)
        name = key.to_user_string()
        if record is None or record.status == Status.PLANNED:  # a PLANNED row is updated in place, same id
            continue
        if cursor.handled.get(name) == record.id:
            continue
        cursor.handled[name] = record.id
        version = reference_version(record)
        if record.status != Status.FAILED:
            cursor.requested_for.pop(name, None)  # the breach is over
        elif version is not None and cursor.requested_for.get(name) == version:
            same_breach.append(f"{name} (v{version})")
        else:
            failed.append((name, record))
    if not failed:
        if same_breach:
            return None, (f"{', '.join(same_breach)} still failing against the version a retraining was already "
                          "requested for: one request per breach (a new one when the check has passed, or another "
                          "version fails)"), cursor
        return None, f"no newly failed check among {len(WATCHED)} watched", cursor
    names = ", ".join(f"{name} (record {record.id}, run {record.run_id[:8]})" for name, record in failed)
    if cursor.last_request_at:
        last = datetime.fromisoformat(cursor.last_request_at)
        if now - last < cooldown:
            return None, (f"{names} failed, but a retraining was requested at {last:%Y-%m-%d %H:%M:%S} UTC: inside "
                          f"the cool-down of {cooldown} (until {last + cooldown:%Y-%m-%d %H:%M:%S} UTC, "
                          f"EV_RETRAIN_COOLDOWN_MINUTES), nothing requested"), cursor
    cursor.last_request_at = now.isoformat()
    for name, record in failed:
        version = reference_version(record)
        if version is not None:
            cursor.requested_for[name] = version
    run_key = "retrain:" + "+".join(f"{name}#{record.id}" for name, record in failed)
    request = dg.RunRequest(run_key=run_key, tags={REASON_TAG: names[:1000]})
    return request, None, cursor


def build_retrain_sensor(job) -> dg.SensorDefinition:
    @dg.sensor(
        name="retrain_on_drift",
        job=job,
        minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=(
            "Requests `retrain_job` (rebuild the station-time features, retrain the availability models; the champion "
            "gate decides) when a `no_drift` or `live_error_within_limit` check newly fails: one run per breach "
            "(record ids in the cursor), none inside the cool-down of EV_RETRAIN_COOLDOWN_MINUTES (360) after the "
            "last request. Reads check results only. Starts STOPPED: turn it on in the UI (Automation) with the "
            "daemon running (`make ui`)."),
    )
    def retrain_on_drift(context: dg.SensorEvaluationContext):
        settings = Settings.from_env()
        cooldown = timedelta(minutes=settings.retrain_cooldown_minutes)
        now = store.platform_now(settings.live_dir)  # real time, or the simulated clock of `make soak`
        request, reason, cursor = evaluate(context.instance, Cursor.load(context.cursor), cooldown, now)
        if request is None:
            return dg.SensorResult(skip_reason=dg.SkipReason(reason), cursor=cursor.dump())
        context.log.info(f"requesting retrain_job: {request.tags[REASON_TAG]}")
        return dg.SensorResult(run_requests=[request], cursor=cursor.dump())

    return retrain_on_drift
