"""The arguments and environment of the warehouse's dbt invocations, built without dbt (`lib/dbt_runs.py`)."""

import json
from datetime import date
from pathlib import Path

import pytest

from ev_assets.lib import dbt_runs


def test_build_args_carry_the_data_root_and_poll_interval_but_never_the_window(tmp_path):
    args = dbt_runs.build_args(tmp_path, 10)
    assert args[:2] == ["build", "--vars"]
    assert json.loads(args[2]) == {"ev_data_dir": str(tmp_path), "poll_interval_minutes": 10}
    assert args[3:] == ["--exclude-resource-type", "unit_test"]  # the SQL's unit tests run in `make test`, not daily
    # the same vars whatever the day: dbt re-uses its parse (a change of --vars re-parses the whole project)
    assert dbt_runs.build_args(tmp_path, 10) == args


def test_build_args_select_exclude_full_refresh_and_two_word_commands(tmp_path):
    assert dbt_runs.build_args(tmp_path, 10, select=dbt_runs.INCREMENTAL, full_refresh=True, unit_tests=True)[3:] == [
        "--select", "config.materialized:incremental", "--full-refresh"]
    assert dbt_runs.build_args(tmp_path, 5, exclude=dbt_runs.INCREMENTAL, unit_tests=True)[3:] == [
        "--exclude", "config.materialized:incremental"]
    docs = dbt_runs.build_args(tmp_path, 10, command="docs generate")
    assert docs[:3] == ["docs", "generate", "--vars"] and len(docs) == 4


def test_window_env_gives_the_utc_days_or_empty_values():
    assert dbt_runs.window_env(date(2022, 1, 10), date(2022, 1, 11)) == {
        "EV_DBT_MIN_DATE": "2022-01-10", "EV_DBT_MAX_DATE": "2022-01-11"}
    # no window: both set empty, so a window of an earlier invocation in the same environment cannot leak in
    assert dbt_runs.window_env() == {"EV_DBT_MIN_DATE": "", "EV_DBT_MAX_DATE": ""}
    with pytest.raises(ValueError, match="both ends"):
        dbt_runs.window_env(date(2022, 1, 10), None)
    with pytest.raises(ValueError, match="empty window"):
        dbt_runs.window_env(date(2022, 1, 11), date(2022, 1, 11))


def test_the_parse_is_kept_per_data_root_and_handed_to_the_next_invocation(tmp_path):
    cache = tmp_path / "data" / "dbt" / dbt_runs.PARTIAL_PARSE
    first, second = tmp_path / "target" / "run-1", tmp_path / "target" / "run-2"
    assert dbt_runs.reuse_parse(cache, first) is False  # nothing parsed yet: dbt parses everything
    assert dbt_runs.keep_parse(first, cache) is False  # dbt failed before parsing: nothing to keep
    first.mkdir(parents=True)
    (first / dbt_runs.PARTIAL_PARSE).write_bytes(b"parsed once")
    assert dbt_runs.keep_parse(first, cache) is True
    assert dbt_runs.reuse_parse(cache, second) is True
    assert (second / dbt_runs.PARTIAL_PARSE).read_bytes() == b"parsed once"
    assert [p.name for p in cache.parent.iterdir()] == [dbt_runs.PARTIAL_PARSE]  # no temporary file left


def test_the_window_macro_reads_the_environment_only_when_compiling():
    """The window must stay out of what dbt parses, or every day would parse the project again."""
    macro = (Path(__file__).resolve().parents[2] / "dbt_project" / "macros" / "processing_window.sql").read_text()
    assert "{%- if value is none and execute -%}" in macro
    assert "env_var('EV_DBT_' ~ (name | upper), '')" in macro
    assert [f"EV_DBT_{n.upper()}" for n in ("min_date", "max_date")] == list(dbt_runs.WINDOW_ENV)


def test_run_env_runs_each_test_with_the_last_of_its_models():
    env = dbt_runs.run_env(date(2022, 1, 10), date(2022, 1, 11))
    assert env == {"EV_DBT_MIN_DATE": "2022-01-10", "EV_DBT_MAX_DATE": "2022-01-11", "DBT_INDIRECT_SELECTION": "buildable"}
