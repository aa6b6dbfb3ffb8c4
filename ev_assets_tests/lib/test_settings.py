from datetime import date
from pathlib import Path

import pytest

from ev_assets.lib.settings import CHARGECLOUD_CITIES, DEFAULT_OSM_TAGS, Settings, SettingsError


def test_defaults_run_offline_on_the_simulated_feed():
    s = Settings.from_env({})
    assert s.source == "simulated"
    assert all(s.mode(src) == "simulated" for src in ("chargecloud", "openchargemap", "osm", "sessions"))
    assert s.data_dir == Path("data").resolve()
    assert s.warehouse_path == s.data_dir / "warehouse.duckdb"
    assert s.cities == CHARGECLOUD_CITIES and len(s.cities) == 38
    assert s.poll_interval_minutes == 10
    assert s.osm_tags == DEFAULT_OSM_TAGS


def test_environment_values_are_parsed():
    s = Settings.from_env(
        {
            "EV_SOURCE": "Replay",
            "EV_SOURCE_OSM": "simulated",
            "EV_REPLAY_DIR": "/tmp",
            "EV_CITIES": "koeln, bonn",
            "EV_SIM_START": "2022-03-01",
            "EV_SIM_DAYS": "3",
            "EV_OSM_TAGS": "amenity=cafe|fuel,tourism",
            "OPENCHARGEMAP_API_KEY": "secret",
        }
    )
    assert s.mode("chargecloud") == "replay" and s.mode("osm") == "simulated"
    assert s.cities == ("koeln", "bonn")
    assert s.simulation.start == date(2022, 3, 1) and s.simulation.days == 3
    assert s.osm_tags == {"amenity": ["cafe", "fuel"], "tourism": True}
    assert "secret" not in repr(s)


@pytest.mark.parametrize(
    "env, message",
    [
        ({"EV_SOURCE": "online"}, "EV_SOURCE='online' is not a source mode"),
        ({"EV_SOURCE_CHARGECLOUD": "x"}, "EV_SOURCE_CHARGECLOUD='x'"),
        ({"EV_SIM_DAYS": "two"}, "EV_SIM_DAYS='two' is not a whole number"),
        ({"EV_SIM_DAYS": "0"}, "EV_SIM_DAYS=0 must be at least 1"),
        ({"EV_SIM_START": "10.01.2022"}, "EV_SIM_START='10.01.2022' is not a date"),
    ],
)
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        Settings.from_env(env)


def test_replay_folder_needs_a_folder(tmp_path):
    with pytest.raises(SettingsError, match="EV_REPLAY_DIR is not set"):
        Settings.from_env({"EV_SOURCE": "replay"}).replay_folder("chargecloud")
    (tmp_path / "osm").mkdir()
    s = Settings.from_env({"EV_REPLAY_DIR": str(tmp_path)})
    assert s.replay_folder("osm") == tmp_path / "osm"
    assert s.replay_folder("chargecloud") == tmp_path  # a plain folder of recorded polls works as is


def test_the_warehouse_engine_is_duckdb_or_spark():
    from ev_assets.lib import spark

    assert Settings.from_env({}).warehouse_engine == "duckdb"
    on_spark = Settings.from_env({"EV_WAREHOUSE_ENGINE": "Spark", "EV_DATA_DIR": "/srv/ev"})
    assert on_spark.warehouse_engine == "spark"
    assert spark.dbt_args(on_spark) == ["--target", "spark"] and spark.dbt_args(Settings()) == []
    assert spark.dbt_vars(on_spark) == {"raw_parquet_dir": "/srv/ev/spark/raw"}
    with pytest.raises(SettingsError, match="EV_WAREHOUSE_ENGINE='trino' is not an engine; use one of duckdb, spark"):
        Settings.from_env({"EV_WAREHOUSE_ENGINE": "trino"})
