"""Beyond one process: a week of ingestion as one backfill run whose steps execute on 2 Celery workers (Redis as the
broker), with the Dagster instance in PostgreSQL, gives the same raw tables as the run in one process. The servers
are Debian's redis-server and postgresql, started here on free ports of 127.0.0.1 and stopped afterwards."""

from __future__ import annotations

import os
import shutil

import dagster as dg
import pandas as pd
import pytest

from ev_assets.cli import RANGE_END_TAG, RANGE_START_TAG, Launcher
from ev_assets.lib import servers, tables
from ev_assets_tests.fixtures.jobs import raw_tables, run_job
from ev_assets_tests.fixtures.paths import REPO_ROOT

pytestmark = pytest.mark.slow

FIRST, LAST = "2022-01-10", "2022-01-16"  # a week
# one city of 2 stations polled hourly: a week is 168 polls
SMALL_FLEET = {"EV_SOURCE": "simulated", "EV_CITIES": "koeln", "EV_SIM_CITIES": "koeln", "EV_SIM_STATIONS_PER_CITY": "2",
               "EV_SIM_DAYS": "7", "EV_POLL_INTERVAL_MINUTES": "60"}


@pytest.fixture
def servers_installed():
    for name, package in (("redis-server", "redis-server"), ("initdb", "postgresql")):
        try:
            servers._binary(name, package)
        except servers.ServerError as error:
            pytest.skip(str(error))


def _table(data_dir, name: str) -> pd.DataFrame:
    """A raw table, sorted, with the raw files named relative to the data root (the two runs have their own)."""
    with raw_tables(data_dir) as con:
        table = con.execute(f"SELECT * FROM raw.{name} ORDER BY ALL").df()
    if "raw_file" in table:
        table["raw_file"] = table["raw_file"].str.replace(str(data_dir), "<data root>", regex=False)
    return table


def test_a_week_of_ingestion_on_two_celery_workers_against_postgres_equals_the_in_process_run(
    tmp_path, ev_env, dbt_manifest, servers_installed
):
    from ev_assets.definitions import defs

    local, distributed = tmp_path / "data", tmp_path / "distributed"  # `data` is the data root ev_env set
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "ev_assets" / "deploy" / "dagster-postgres.yaml", home / "dagster.yaml")
    for name, value in SMALL_FLEET.items():
        ev_env.setenv(name, value)

    with servers.postgres_server(tmp_path / "postgres") as urls, servers.redis_server(tmp_path / "redis") as broker:
        settings = {**SMALL_FLEET, "EV_DATA_DIR": str(distributed), "EV_EXECUTOR": "celery",
                    "EV_CELERY_BROKER_URL": broker, "EV_DAGSTER_PG_URL": urls["dagster"], "DAGSTER_HOME": str(home)}
        # the workers start (and import the code location) while the reference runs in this process
        with servers.celery_workers(tmp_path / "celery", broker, count=2, env=settings):
            run_job(defs, "chargecloud_poll_job", f"{FIRST}-00:00", f"{LAST}-23:50")
            run_job(defs, "ingest_job", FIRST, LAST)  # in one process: the reference
            shutil.copytree(local / "raw", distributed / "raw")  # the same raw pulls

            for name, value in settings.items():
                ev_env.setenv(name, value)
            with dg.DagsterInstance.from_config(str(home)) as instance:
                assert type(instance.run_storage).__name__ == "PostgresRunStorage"
                report = Launcher(instance, tmp_path / "logs").run(
                    "ingest_job", {RANGE_START_TAG: FIRST, RANGE_END_TAG: LAST}
                )
                logs = "\n".join(p.read_text()[-2000:] for p in sorted((tmp_path / "celery").glob("worker-*.log")))
                assert report.success, f"{report.failures}\n{logs}"
                starts = [e.dagster_event for e in instance.all_logs(report.run_id)
                          if e.dagster_event and e.dagster_event.event_type_value == "STEP_START"]
    assert len(starts) == 15  # every step of ingest_job ...
    step_pids = {event.pid for event in starts}
    assert os.getpid() not in step_pids and len(step_pids) == 2, f"steps ran in {step_pids}"  # ... on both workers

    for name in tables.TABLES:
        if name == "poi_station_map":  # a warehouse asset, not part of ingestion
            continue
        pd.testing.assert_frame_equal(_table(distributed, name), _table(local, name), obj=f"raw.{name}")
    assert _table(local, "status_chargingpoints")["poll_slot"].nunique() == 7 * 24


def test_mlflow_keeps_its_runs_and_registered_models_in_postgres(tmp_path, servers_installed):
    from ev_assets.lib.ml.registry import Registry
    from ev_assets.lib.ml.registry_db import RegistryDB

    with servers.postgres_server(tmp_path / "postgres", databases=("mlflow",)) as urls:
        registry = Registry(tmp_path / "mlflow", store_uri=urls["mlflow"])
        registry.ensure(["station_availability"])
        client = registry.client
        run = client.create_run(registry.experiment_id("station_availability"))
        client.log_metric(run.info.run_id, "brier", 0.125)
        client.create_registered_model("station_availability")
        client.create_model_version("station_availability", f"runs:/{run.info.run_id}/model", run.info.run_id)
        client.set_registered_model_alias("station_availability", "champion", "1")

        again = Registry(tmp_path / "elsewhere", store_uri=urls["mlflow"])  # another process's view: the same store
        assert again.exists() and not (tmp_path / "mlflow" / "mlflow.db").exists()
        assert again.client.get_run(run.info.run_id).data.metrics == {"brier": 0.125}
        assert str(again.client.get_model_version_by_alias("station_availability", "champion").version) == "1"

        # the service's and the dashboard's reader (no MLflow import) finds the same champion and run
        db = RegistryDB(tmp_path / "elsewhere", store_uri=urls["mlflow"])
        assert db.exists() and db.champion("station_availability").version == "1"
        assert db.run(run.info.run_id).metrics == {"brier": 0.125}
        before = db.stamp()
        client.create_model_version("station_availability", f"runs:/{run.info.run_id}/model", run.info.run_id)
        assert [v.version for v in db.versions("station_availability")] == ["1", "2"] and db.stamp() != before
