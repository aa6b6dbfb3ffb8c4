"""The schedules an operator turns on: they fire at their times, and a job that reads the warehouse is skipped
with the reason on a platform that has none yet."""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg
import pytest


@pytest.mark.parametrize("name", ["ml_weekly", "monitoring_daily"])
def test_a_schedule_needing_the_warehouse_skips_with_the_reason_until_there_is_one(defs, name):
    schedule = defs.get_repository_def().get_schedule_def(name)
    when = datetime(2022, 1, 17, 2, tzinfo=timezone.utc)
    # contexts used as context managers: the instance a context opens (context.instance) is closed with it, and
    # no later test finds a closed instance as the current one
    with dg.instance_for_test() as instance, dg.build_schedule_context(
            instance=instance, scheduled_execution_time=when) as context:
        skipped = schedule.evaluate_tick(context)
        assert not skipped.run_requests
        assert skipped.skip_message.startswith("no warehouse_job run has succeeded yet")
        run = instance.create_run_for_job(dg.GraphDefinition("warehouse_job").to_job(), run_id=None)
        instance.handle_run_event(run.run_id, dg.DagsterEvent("PIPELINE_SUCCESS", "warehouse_job"))
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.SUCCESS
        assert len(schedule.evaluate_tick(context).run_requests) == 1


def test_every_schedule_starts_stopped_at_its_documented_time(defs):
    schedules = {s.name: s for s in defs.get_repository_def().schedule_defs}
    assert {name: s.cron_schedule for name, s in schedules.items()} == {
        "chargecloud_every_10_minutes": "*/10 * * * *", "ingest_daily": "15 0 * * *", "warehouse_daily": "45 0 * * *",
        "monitoring_daily": "15 1 * * *", "ml_weekly": "0 2 * * 1"}
    assert all(s.default_status == dg.DefaultScheduleStatus.STOPPED for s in schedules.values())
