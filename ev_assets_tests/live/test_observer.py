"""Dagster sees the live path: the sensor reports what was landed as materializations of the live assets, and the
freshness checks fail when a live asset was not updated for two poll intervals."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import dagster as dg

from ev_assets.defs import live as live_defs
from ev_assets.lib.sources import chargecloud
from ev_assets.lib.live import changes, landing, messages, store
from ev_assets.lib.live.clock import LiveClock
from ev_assets.lib.settings import Settings
from ev_assets.lib.live.bus import EVENTS_STREAM, STATUS_STREAM, Message
from ev_assets.lib.settings import SimulationSettings
from ev_assets.lib.simulator import chargecloud_poll
from ev_assets_tests.fixtures.live_feed import events

SLOT = datetime(2022, 1, 10, 8, tzinfo=timezone.utc)


def _land_poll_and_events(live_dir, first_seq: int = 1) -> None:
    tracker = changes.StatusTracker()
    outgoing = tracker.changes(chargecloud.flatten_poll(chargecloud_poll(SimulationSettings(), SLOT), SLOT))
    outgoing += [messages.charging_event(e) for e in events(25)]
    batch = [Message(STATUS_STREAM if subject.startswith("ev.status") else EVENTS_STREAM, first_seq + i, subject,
                     data, msg_id) for i, (subject, data, msg_id) in enumerate(outgoing)]
    landing.land(landing.connect_writer(live_dir), batch)


def test_the_observer_reports_landed_data_once_with_its_age(ev_env, data_dir):
    instance = dg.DagsterInstance.ephemeral()
    context = dg.build_sensor_context(instance=instance)
    assert isinstance(live_defs.live_observer(context), dg.SkipReason)  # no live store yet

    _land_poll_and_events(data_dir / "live")
    result = live_defs.live_observer(dg.build_sensor_context(instance=instance))
    keys = {e.asset_key.to_user_string(): e for e in result.asset_events if isinstance(e, dg.AssetMaterialization)}
    assert set(keys) == {"live/status_changes", "live/status_now", "live/charging_events", "live/open_sessions",
                         "live/station_energy_today"}
    status_now = keys["live/status_now"].metadata
    assert status_now["dagster/row_count"].value == 81 + 95  # every charging point and connector of the fleet
    assert status_now["newest_poll_time"].value.startswith("2022-01-10T08:00")
    # 25 events = transactions of 10: two stopped, the third (5 events) still open
    assert keys["live/open_sessions"].metadata["dagster/row_count"].value == 1
    assert keys["live/status_changes"].metadata["age_s"].value > 3600  # a 2022 poll is old on the real clock
    cursor = json.loads(result.cursor)
    assert cursor["seq"][STATUS_STREAM] > 0 and cursor["seq"][EVENTS_STREAM] > 0

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


def test_the_freshness_check_fails_when_the_live_data_is_older_than_two_poll_intervals(ev_env, data_dir):
    _land_poll_and_events(data_dir / "live")  # the newest data: the events of 2022-01-10 ~10:15 UTC
    con = landing.connect_writer(data_dir / "live")
    newest = store.parse_iso(store.freshness(con).data_as_of())
    landing.save_clock(con, LiveClock.starting_at(newest + timedelta(minutes=5), 1.0))
    events, cursor = live_defs.observe(Settings.from_env(), {})
    verdicts = {e.asset_key.to_user_string(): e for e in events if isinstance(e, dg.AssetCheckEvaluation)}
    assert set(verdicts) == {"live/status_now", "live/open_sessions", "live/station_energy_today"}
    assert all(v.passed and v.check_name == "freshness_check" for v in verdicts.values())

    again, cursor = live_defs.observe(Settings.from_env(), cursor)
    assert again == []  # nothing new landed, the verdict unchanged: nothing to record

    landing.save_clock(con, LiveClock.starting_at(newest + timedelta(minutes=21), 1.0))  # the feed stopped
    events, cursor = live_defs.observe(Settings.from_env(), cursor)
    stale = [e for e in events if isinstance(e, dg.AssetCheckEvaluation)]
    assert len(stale) == 3 and not any(e.passed for e in stale)
    assert stale[0].metadata["age_s"].value > 20 * 60 and stale[0].severity == dg.AssetCheckSeverity.ERROR

    # Dagster takes the verdict for the declared checks
    instance = dg.DagsterInstance.ephemeral()
    for event in stale:
        instance.report_runless_asset_event(event)
    record = instance.get_latest_asset_check_evaluation_record(
        dg.AssetCheckKey(dg.AssetKey(["live", "status_now"]), "freshness_check"))
    assert record is not None and record.evaluation is not None and not record.evaluation.passed
