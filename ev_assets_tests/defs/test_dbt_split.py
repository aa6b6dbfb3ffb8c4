"""dbt runs as two assets: the incremental models per UTC day, everything else unpartitioned."""

import dagster as dg

from ev_assets.defs.partitions import daily_partitions
from ev_assets.defs.warehouse import dbt

INCREMENTAL = {"fct_charging_point_status", "fct_connector_status", "fct_charging_sessions",
               "int_charging_point_status_runs", "int_connector_status_runs", "int_charging_sessions_inferred",
               "mart_utilization_station_hourly"}


def test_the_incremental_models_are_partitioned_by_day_and_the_rest_not():
    daily = {key.path[-1] for key in dbt.warehouse_dbt_daily.keys}
    assert daily == INCREMENTAL
    assert dbt.warehouse_dbt_daily.partitions_def == daily_partitions
    assert dbt.warehouse_dbt_daily.backfill_policy == dg.BackfillPolicy.single_run()
    rest = {key.path[-1] for key in dbt.warehouse_dbt_models.keys}
    assert dbt.warehouse_dbt_models.partitions_def is None
    assert not rest & INCREMENTAL
    assert {"stg_chargecloud__charging_point_statuses", "dim_station", "mart_utilization_station_daily"} <= rest
    assert len(rest | daily) == 43


def test_the_warehouse_job_runs_both_with_every_dbt_test_as_a_check(defs):
    job = defs.resolve_job_def("warehouse_job")
    assert job.partitions_def == daily_partitions
    keys = {key.path[-1] for key in job.asset_layer.executable_asset_keys}
    assert INCREMENTAL <= keys and "dim_station" in keys and "marts_snapshot" in keys
    checks = job.asset_layer.asset_graph.asset_check_keys
    # the source tests (on the raw tables) belong to the unpartitioned asset, the facts' tests to the daily one
    assert any(c.asset_key == dg.AssetKey(["raw", "status_chargingpoints"]) for c in dbt.warehouse_dbt_models.check_keys)
    assert any(c.asset_key.path[-1] == "fct_charging_point_status" for c in dbt.warehouse_dbt_daily.check_keys)
    assert set(dbt.warehouse_dbt_models.check_keys) | set(dbt.warehouse_dbt_daily.check_keys) <= set(checks)


def test_full_refresh_is_a_run_config_of_the_daily_asset(tmp_path):
    from ev_assets.defs.resources import EvConfig

    config = EvConfig(data_dir=str(tmp_path))
    assert "--full-refresh" not in dbt.dbt_args(config)
    assert "--full-refresh" in dbt.dbt_args(config, dbt.DbtRunConfig(full_refresh=True))


def test_the_unpartitioned_models_take_the_days_of_the_run_they_are_in():
    """In a run of days the staging views and window-bound tests of the unpartitioned asset cover those days."""
    one = dbt.run_window({"dagster/partition": "2022-01-10"})
    assert (one.start.isoformat(), one.end.isoformat()) == ("2022-01-10T00:00:00+00:00", "2022-01-11T00:00:00+00:00")
    days = dbt.run_window({"dagster/asset_partition_range_start": "2022-01-10",
                           "dagster/asset_partition_range_end": "2022-01-12"})
    assert (days.start.date().isoformat(), days.end.date().isoformat()) == ("2022-01-10", "2022-01-13")
    assert dbt.run_window({}) is None  # a run of no days: the whole history
    assert dbt.run_window({"dagster/partition": "2022-01-10-00:10"}) is None  # a poll slot, not a day
