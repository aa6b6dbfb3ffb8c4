import pytest

from ev_assets.defs.resources import EvConfig
from ev_assets.lib.settings import SettingsError


def test_resource_fields_override_the_environment(ev_env, tmp_path, data_dir):
    ev_env.setenv("EV_SOURCE", "live")
    ev_env.setenv("EV_SOURCE_OSM", "replay")
    assert EvConfig().settings().data_dir == data_dir
    assert EvConfig().settings().mode("osm") == "replay"

    other = EvConfig(data_dir=str(tmp_path / "other"), source="simulated", replay_dir=str(tmp_path)).settings()
    assert other.data_dir == tmp_path / "other"
    assert other.mode("chargecloud") == other.mode("osm") == "simulated"  # one mode for every source
    assert other.replay_dir == tmp_path


def test_a_bad_source_mode_is_a_clear_error(ev_env):
    with pytest.raises(SettingsError, match="source='offline' is not a source mode"):
        EvConfig(source="offline").settings()
