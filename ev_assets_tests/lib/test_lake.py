"""The raw lake: Hive-partitioned Parquet by source and UTC day, each partition replaced atomically, on a local folder
and on S3 (moto's server: a local test double of the S3 protocol, not a real object store)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pandas as pd

from ev_assets.lib import lake as lakes
from ev_assets.lib import tables, warehouse
from ev_assets.lib.settings import Settings
from ev_assets_tests.fixtures.s3 import s3_bucket

T0 = datetime(2022, 1, 10, 8, 0, tzinfo=timezone.utc)


def _status(day: int, ids: list[str]) -> pd.DataFrame:
    slot = T0 + timedelta(days=day)
    return tables.frame("status_chargingpoints", [
        {"poll_slot": slot, "poll_time": slot, "city_slug": "koeln", "station_id": "1", "charging_point_id": i,
         "evse_uid": i, "status": "AVAILABLE", "parkingsensor_status": None} for i in ids
    ])


def _day(day: int) -> str:
    return f"{T0 + timedelta(days=day):%Y-%m-%d}"


def _count(lake, sql: str) -> list[tuple]:
    with warehouse.lake_connection(lake) as con:
        return con.execute(sql).fetchall()


def test_a_partition_written_again_is_replaced_not_duplicated(tmp_path):
    lake = lakes.Lake(str(tmp_path / "lake"))
    lake.write("status_chargingpoints", _status(0, ["a", "b"]), "chargecloud", _day(0))
    lake.write("status_chargingpoints", _status(1, ["a"]), "chargecloud", _day(1))
    lake.write("status_chargingpoints", _status(0, ["a", "b", "c"]), "chargecloud", _day(0))  # the day again

    assert _count(lake, "SELECT count(*) FROM raw.status_chargingpoints") == [(4,)]
    assert (tmp_path / "lake/status_chargingpoints/source=chargecloud/day=2022-01-10/part-0.parquet").is_file()
    assert lake.days("status_chargingpoints", "chargecloud") == ["2022-01-10", "2022-01-11"]
    assert not list((tmp_path / "lake").rglob("*.tmp"))  # no temporary file left behind
    types = _count(lake, "SELECT typeof(poll_slot), typeof(status) FROM raw.status_chargingpoints LIMIT 1")
    assert types == [("TIMESTAMP WITH TIME ZONE", "VARCHAR")]


def test_an_empty_lake_has_every_table_with_its_columns(tmp_path):
    lake = lakes.Lake(str(tmp_path / "lake"))
    with warehouse.lake_connection(lake) as con:
        for name in tables.TABLES:
            columns = [row[0] for row in con.execute(f"DESCRIBE raw.{name}").fetchall()]
            assert columns == tables.columns(name)
            assert con.execute(f"SELECT count(*) FROM raw.{name}").fetchone()[0] == 0


def test_days_are_written_at_the_same_time_without_a_lock(tmp_path):
    lake = lakes.Lake(str(tmp_path / "lake"))
    start = threading.Barrier(7)

    def write(day):
        start.wait()  # all seven days at once
        lake.write("status_chargingpoints", _status(day, [f"p{n}" for n in range(1000)]), "chargecloud", _day(day))

    threads = [threading.Thread(target=write, args=(day,)) for day in range(7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _count(lake, "SELECT count(DISTINCT poll_slot), count(*) FROM raw.status_chargingpoints") == [(7, 7000)]


def test_quarantine_is_kept_per_source_and_day(tmp_path):
    lake = lakes.Lake(str(tmp_path / "lake"))
    row = {"partition_key": "2022-01-10T08:00:00+00:00", "level": "connector", "record_id": "x", "reason": "1111 A",
           "record": "{}", "raw_file": "f"}
    lake.write("quarantine", tables.frame("quarantine", [{**row, "source": "chargecloud"}]), "chargecloud", "2022-01-10")
    lake.write("quarantine", tables.frame("quarantine", [{**row, "source": "osm"}] * 2), "openchargemap", lakes.WHOLE)
    lake.write("quarantine", tables.frame("quarantine", []), "chargecloud", "2022-01-10")  # that day again, now clean
    # the source column comes from the partition path, as Spark reads it too
    assert _count(lake, "SELECT source, count(*) FROM raw.quarantine GROUP BY 1") == [("openchargemap", 2)]


def test_master_data_versions_of_several_days_are_one_row_each(tmp_path):
    lake = lakes.Lake(str(tmp_path / "lake"))

    def version(power, seen):
        row = {c: None for c in tables.columns("connectors")}
        row.update(connector_id="c1", charging_point_id="p1", station_id="s1", max_power_kw=power,
                   attr_hash=f"h{power}", first_seen_at=seen, last_seen_at=seen + timedelta(hours=1))
        return row

    for day in range(3):
        lake.write("connectors", tables.frame("connectors", [version(22, T0 + timedelta(days=day))]), "chargecloud", _day(day))
    lake.write("connectors", tables.frame("connectors", [version(11, T0 + timedelta(days=3))]), "chargecloud", _day(3))
    rows = _count(lake, "SELECT max_power_kw, first_seen_at, last_seen_at FROM raw.connectors ORDER BY first_seen_at")
    assert rows == [(22.0, T0, T0 + timedelta(days=2, hours=1)), (11.0, T0 + timedelta(days=3), T0 + timedelta(days=3, hours=1))]


def test_a_warehouse_file_from_before_the_lake_moves_its_raw_rows_into_it(tmp_path):
    path, lake = tmp_path / "warehouse.duckdb", lakes.Lake(str(tmp_path / "lake"))
    with warehouse.connect(path) as con:  # no lake: raw tables inside the file, as before
        warehouse.replace_rows(con, "status_chargingpoints", _status(0, ["a", "b"]), "TRUE")
    with warehouse.connect(path, lake=lake) as con:
        assert con.execute("SELECT table_type FROM information_schema.tables WHERE table_name = 'status_chargingpoints'"
                           ).fetchone()[0] == "VIEW"
        assert con.execute("SELECT count(*) FROM raw.status_chargingpoints").fetchone()[0] == 2
    assert lake.days("status_chargingpoints", "chargecloud") == ["2022-01-10"]


def test_settings_name_the_lake():
    assert Settings.from_env({"EV_DATA_DIR": "/srv/ev"}).lake_location == "/srv/ev/lake"
    settings = Settings.from_env({"EV_LAKE_URL": "s3://bucket/lake", "EV_S3_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert settings.lake_location == "s3://bucket/lake"
    assert lakes.storage_options(settings.lake_location, settings.s3_endpoint_url) == {
        "client_kwargs": {"endpoint_url": "http://127.0.0.1:9"}
    }


# --- S3, against moto's server (a test double) ---------------------------------------------------------------------
def test_the_lake_on_s3(s3_endpoint, tmp_path):
    fs = s3_bucket(s3_endpoint, "ev-lake")
    url = "s3://ev-lake/lake"
    lake = lakes.Lake(url, **lakes.storage_options(url, s3_endpoint), skip_instance_cache=True)
    lake.write("status_chargingpoints", _status(0, ["a", "b"]), "chargecloud", _day(0))
    lake.write("status_chargingpoints", _status(0, ["a", "b"]), "chargecloud", _day(0))  # again: replaced
    lake.write("status_chargingpoints", _status(1, ["a"]), "chargecloud", _day(1))
    assert fs.exists("ev-lake/lake/status_chargingpoints/source=chargecloud/day=2022-01-11/part-0.parquet")

    # the warehouse file's raw views read the lake on S3 through fsspec
    with warehouse.connect(tmp_path / "warehouse.duckdb", lake=lake) as con:
        assert con.execute("SELECT count(*), count(DISTINCT poll_slot) FROM raw.status_chargingpoints").fetchone() == (3, 2)
        assert con.execute("SELECT count(*) FROM raw.quarantine").fetchone()[0] == 0
    assert lake.read("status_chargingpoints", "chargecloud", _day(1)).num_rows == 1

