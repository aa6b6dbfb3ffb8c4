"""The dbt project on two engines: a small simulated week built on DuckDB and on Spark gives the same marts.

Ingestion runs in-process (the demo's jobs) for one city with a few stations into the lake; DuckDB reads it as
views and Spark as the Parquet that `spark.export_raw_tables` writes from it. dbt builds the week on each engine, in
the test's process (DuckDB through the `duckdb` target in one window; Spark through `--target spark`, dbt-spark's
session method with a local Spark and Java 17, in two: six days, then the last one incrementally, on one JVM), and
every table of the `marts` schema (dimensions, facts, KPI marts) must be equal row for row, floats within 1e-9.
Needs the `spark` extra and Java: `make test` installs both (`make spark`).
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta

import pytest

from ev_assets.lib import dbt_inprocess, lake, spark, warehouse
from ev_assets.lib.settings import Settings
from ev_assets_tests.fixtures.jobs import run_job

pytestmark = pytest.mark.slow

# the demo week in small: one city, a few stations (README "Warehouse engines" names what this covers)
WEEK = ("2022-01-10", "2022-01-17")  # [first day, day after the last)
SPLIT = "2022-01-16"  # Spark builds the last day in a second, incremental run
SIM_ENV = {"EV_SIM_CITIES": "bonn", "EV_SIM_STATIONS_PER_CITY": "4", "EV_SIM_DAYS": "7", "EV_SIM_START": WEEK[0]}
# Spark's JVM lives two minutes on small data here: the quick JIT compiler only and one GC thread cost ~15 % less CPU
# (the suite shares two cores) for the same wall time. Not in the profile: a long job on real data needs the full JIT.
# Both windows run in one Spark session, so its catalog can be in memory: no Derby metastore (114 -> 85 s alone).
SHORT_LIVED_JVM = {"JAVA_TOOL_OPTIONS": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC", "EV_SPARK_CATALOG": "in-memory"}


def _spark_missing() -> str | None:
    if shutil.which("java") is None:
        return "no Java on PATH: `make spark` installs Debian's openjdk-17-jre-headless"
    try:
        import pyspark  # noqa: F401
        import dbt.adapters.spark  # noqa: F401
    except ImportError:
        return "the spark extra (dbt-spark, pyspark) is not installed: `make spark` installs it"
    return None


@pytest.fixture(scope="module")
def both_engines(tmp_path_factory, dbt_manifest) -> tuple[Settings, Settings]:
    """The week's raw tables in DuckDB, then dbt on both engines: (DuckDB settings, Spark settings), one data root."""
    if reason := _spark_missing():
        pytest.skip(reason)
    data_dir = tmp_path_factory.mktemp("two_engines") / "data"
    with pytest.MonkeyPatch.context() as env:
        for name, value in {**SIM_ENV, "EV_DATA_DIR": str(data_dir), "EV_SOURCE": "simulated"}.items():
            env.setenv(name, value)
        from ev_assets.definitions import defs

        last = (date.fromisoformat(WEEK[1]) - timedelta(days=1)).isoformat()
        run_job(defs, "chargecloud_poll_job", f"{WEEK[0]}-00:00", f"{last}-23:50")
        run_job(defs, "ingest_job", WEEK[0], last)
        settings = Settings.from_env()
    duck, on_spark = settings.with_(warehouse_engine="duckdb"), settings.with_(warehouse_engine="spark")
    with warehouse.connect(duck.warehouse_path, lake=lake.from_settings(duck)):
        pass  # DuckDB's sources: the raw views over the lake, as the warehouse assets make them before dbt
    exported = spark.export_raw_tables(on_spark)
    assert exported["status_chargingpoints"] > 1000, exported  # a week of polls reached the Parquet folders

    def build(engine: Settings) -> dbt_inprocess.FinishedDbt:
        """DuckDB builds the week in one window; Spark day 1-6, then day 7 incrementally (insert_overwrite of its
        day partitions, the runs and sessions crossing midnight carried over), as daily partitions run."""
        logs = data_dir / f"dbt_{engine.warehouse_engine}"
        windows = [WEEK] if engine.warehouse_engine == "duckdb" else [(WEEK[0], SPLIT), (SPLIT, WEEK[1])]
        for window in windows:
            command = spark.dbt_command(engine, "run", window=window) + [
                "--target-path", str(logs / "target"), "--log-path", str(logs / "logs")]
            done = dbt_inprocess.run(command, SHORT_LIVED_JVM, spark.DBT_PROJECT)
            if done.returncode != 0:
                break
        return done

    try:
        for engine in (duck, on_spark):
            result = build(engine)
            assert result.returncode == 0, \
                f"dbt run on {engine.warehouse_engine} failed:\n{result.stdout.getvalue().decode()[-6000:]}"
    finally:
        stop_spark()
    return duck, on_spark


def stop_spark() -> None:
    """End the Spark session dbt-spark started in this process, and its JVM."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    if (session := SparkSession.getActiveSession()) is not None:
        session.stop()
    if (gateway := SparkContext._gateway) is not None:
        gateway.shutdown()
        if (jvm := getattr(gateway, "proc", None)) is not None:  # None when pyspark did not start the JVM itself
            jvm.kill()
            jvm.wait()
        SparkContext._gateway = SparkContext._jvm = None


def test_every_mart_is_the_same_on_duckdb_and_spark(both_engines):
    duck, on_spark = both_engines
    compared, problems = spark.compare_marts(duck, on_spark)
    # the star schema and the KPI marts: all of them, not a sample
    assert {"dim_station", "dim_operator", "dim_time", "fct_charging_point_status", "fct_charging_sessions",
            "mart_utilization_station_daily", "mart_reliability_daily", "mart_energy_daily"} <= set(compared), compared
    assert not problems, "\n".join(problems)
    # the week is not trivially empty: polls, sessions and energy made it through on both engines
    assert compared["fct_charging_point_status"] > 1000 and compared["fct_charging_sessions"] > 10, compared
    assert compared["mart_energy_daily"] > 0 and compared["dim_time"] >= 7 * 24, compared
