"""The raw pulls and the raw lake on S3 (moto's server: a local test double of the S3 protocol, not a real object
store), end to end: chargecloud polls stored as objects, a day ingested into the lake's partitions, and dbt on
DuckDB building the facts from the lake through its plugin (`ev_assets/lib/dbt_lake.py`)."""

from __future__ import annotations

from datetime import datetime, timezone

from ev_assets.lib import lake as lakes
from ev_assets.lib import rawstore, warehouse
from ev_assets.lib.settings import Settings
from ev_assets_tests.fixtures.dbt import query, run_dbt
from ev_assets_tests.fixtures.jobs import run_job
from ev_assets_tests.fixtures.s3 import s3_bucket

SLOT = datetime(2022, 1, 10, 23, 50, tzinfo=timezone.utc)


def test_the_raw_store_on_s3(s3_endpoint):
    fs = s3_bucket(s3_endpoint, "ev-data")
    url = "s3://ev-data/raw"
    store = rawstore.RawStore(url, **lakes.storage_options(url, s3_endpoint))
    key = rawstore.slot_key(SLOT)
    first = store.write("cc", key, {"a": 1})
    again = store.write("cc", key, {"a": 1}, new_attempt=True)  # the same content: no second object
    other = store.write("cc", key, {"a": 2}, new_attempt=True)  # another attempt is kept beside the first
    assert first.written and not again.written and other.written
    assert str(first.path).startswith("s3://ev-data/raw/cc/2022/01/10/poll_20220110T2350Z.")
    assert first.name.endswith(f".{first.sha256[:12]}.json.gz")
    assert sorted(f.load()["a"] for f in store.attempts("cc", key)) == [1, 2]
    assert store.attempts("cc", "2022/01/10/poll_x") == []
    assert [slot for slot, _ in store.slots("cc", SLOT, datetime(2022, 1, 11, tzinfo=timezone.utc))] == [SLOT, SLOT]
    assert len(fs.find("ev-data/raw")) == 2

    pull = store.write_pull("ocm", [{"ID": 1}], prefix="ocm")
    assert not store.write_pull("ocm", [{"ID": 1}], prefix="ocm").written
    assert [p.path for p in store.pulls("ocm")] == [pull.path]
    assert store.read(pull.path) == [{"ID": 1}]


def test_polls_ingestion_and_dbt_on_s3(defs, ev_env, s3_endpoint, data_dir):
    fs = s3_bucket(s3_endpoint, "ev-data")
    for name, value in {"EV_RAW_URL": "s3://ev-data/raw", "EV_LAKE_URL": "s3://ev-data/lake", "EV_S3_ENDPOINT_URL": s3_endpoint,
                        "EV_CITIES": "bonn"}.items():
        ev_env.setenv(name, value)

    run_job(defs, "chargecloud_poll_job", "2022-01-11-20:50", "2022-01-11-21:00")
    assert len(fs.glob("ev-data/raw/chargecloud/2022/01/11/poll_*.json.gz")) == 2
    run_job(defs, "chargecloud_ingest_job", "2022-01-11", "2022-01-11")
    assert fs.exists("ev-data/lake/status_chargingpoints/source=chargecloud/day=2022-01-11/part-0.parquet")
    assert not (data_dir / "raw").exists() and not (data_dir / "lake").exists()  # nothing went to the local disk

    settings = Settings.from_env()
    with warehouse.connect(settings.warehouse_path, lake=lakes.from_settings(settings)) as con:  # as the dbt step
        points, polls = con.execute(
            "SELECT count(DISTINCT charging_point_id), count(DISTINCT poll_slot) FROM raw.status_chargingpoints"
        ).fetchone()
    assert points > 0 and polls == 2

    results = run_dbt(data_dir, "run", "--select", "+fct_charging_point_status")
    assert results["returncode"] == 0, results["stdout"][-3000:]
    assert query(data_dir, "SELECT count(*) FROM marts.fct_charging_point_status")[0][0] == points * polls
