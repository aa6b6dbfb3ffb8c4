"""Dagster sees the live path: the sensor reports what was landed as materializations of the live assets, and the
freshness checks fail when a live asset was not updated for two poll intervals."""

from __future__ import annotations

import json
from unittest import mock
from datetime import datetime, timedelta, timezone

import dagster as dg

from ev_assets.defs import live as live_defs
from ev_assets.lib.sources import chargecloud
from ev_assets.lib.live import changes, messages, store
from ev_assets.lib.live.bus import EVENTS_STREAM, STATUS_STREAM, Message
from ev_assets.lib.settings import SimulationSettings
from ev_assets.lib.simulator import chargecloud_poll
from ev_assets_tests.live.conftest import events

LAST_UPDATE = "dagster._core.definitions.asset_checks.asset_check_factories.freshness_checks.last_update"
SLOT = datetime(2022, 1, 10, 8, tzinfo=timezone.utc)


def _land_poll_and_events(live_dir, first_seq: int = 1) -> None:
    tracker = changes.StatusTracker()
    outgoing = tracker.changes(chargecloud.flatten_poll(chargecloud_poll(SimulationSettings(), SLOT), SLOT))
    outgoing += [messages.charging_event(e) for e in events(25)]
    batch = [Message(STATUS_STREAM if subject.startswith("ev.status") else EVENTS_STREAM, first_seq + i, subject,
                     data, msg_id) for i, (subject, data, msg_id) in enumerate(outgoing)]
    store.land(store.connect_writer(live_dir), batch)


def test_the_observer_reports_landed_data_once_with_its_age(ev_env, data_dir):
    instance = dg.DagsterInstance.ephemeral()
    context = dg.build_sensor_context(instance=instance)
    assert isinstance(live_defs.live_observer(context), dg.SkipReason)  # no live store yet

    _land_poll_and_events(data_dir / "live")
    result = live_defs.live_observer(dg.build_sensor_context(instance=instance))
    keys = {e.asset_key.to_user_string(): e for e in result.asset_events}
    assert set(keys) == {"live/status_changes", "live/status_now", "live/charging_events", "live/open_sessions",
                         "live/station_energy_today"}
    status_now = keys["live/status_now"].metadata
    assert status_now["dagster/row_count"].value == 81 + 95  # every charging point and connector of the fleet
    assert status_now["newest_poll_time"].value.startswith("2022-01-10T08:00")
    # 25 events = transactions of 10: two stopped, the third (5 events) still open
    assert keys["live/open_sessions"].metadata["dagster/row_count"].value == 1
    assert keys["live/status_changes"].metadata["age_s"].value > 3600  # a 2022 poll is old on the real clock
    cursor = json.loads(result.cursor)
    assert cursor[STATUS_STREAM] > 0 and cursor[EVENTS_STREAM] > 0

    again = live_defs.live_observer(dg.build_sensor_context(instance=instance, cursor=result.cursor))
    assert isinstance(again, dg.SkipReason)  # nothing new since


def test_live_assets_in_the_graph_with_lineage_and_freshness(defs):
    graph = defs.resolve_asset_graph()
    status_now = graph.get(dg.AssetKey(["live", "status_now"]))
    assert dg.AssetKey(["live", "status_changes"]) in status_now.parent_keys
    assert dg.AssetKey("chargecloud_polls") in graph.get(dg.AssetKey(["live", "status_changes"])).parent_keys
    checks = {key.name for key in defs.resolve_asset_graph().asset_check_keys if key.asset_key.path[0] == "live"}
    assert checks  # the freshness checks
    assert live_defs.STALE_AFTER == timedelta(minutes=20)


def test_the_freshness_check_fails_when_a_live_asset_was_not_updated_for_two_poll_intervals(ev_env, data_dir, defs):
    instance = dg.DagsterInstance.ephemeral()
    _land_poll_and_events(data_dir / "live")
    result = live_defs.live_observer(dg.build_sensor_context(instance=instance))
    for event in result.asset_events:
        instance.report_runless_asset_event(event)
    check_job = dg.Definitions(assets=live_defs.live_assets, asset_checks=live_defs.freshness_checks) \
        .resolve_implicit_global_asset_job_def()
    passed = _run_checks(check_job, instance)
    assert passed and all(passed.values())

    # 21 minutes later, nothing new landed (the check module's clock moved on; Dagster 1.13's module path)
    later = (datetime.now(timezone.utc) + timedelta(minutes=21)).timestamp()
    with mock.patch(f"{LAST_UPDATE}.get_current_timestamp", return_value=later):
        failed = _run_checks(check_job, instance)
    assert failed and not any(failed.values())


def _run_checks(job, instance) -> dict[str, bool]:
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    return {f"{e.asset_check_evaluation_data.asset_key.to_user_string()}:{e.asset_check_evaluation_data.check_name}":
            e.asset_check_evaluation_data.passed for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
