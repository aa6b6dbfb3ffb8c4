"""Shared fixtures: where the real public test data lives, and a fresh data root per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from ev_assets.cli import RANGE_END_TAG, RANGE_START_TAG

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` (real public recordings). Tests using it skip on a clone without that folder."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (it sits beside the repository in CI)")
    return SHARED_DATA


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    return root




@pytest.fixture(scope="session")
def dbt_manifest() -> Path:
    """dagster-dbt loads the project from its manifest: parse once when a fresh checkout has none."""
    project = REPO_ROOT / "dbt_project"
    manifest = project / "target" / "manifest.json"
    if not manifest.exists():
        from dbt.cli.main import dbtRunner

        result = dbtRunner().invoke(["parse", "--quiet", "--project-dir", str(project), "--profiles-dir", str(project)])
        assert result.success, f"dbt parse failed: {result.exception}"
    return manifest


@pytest.fixture
def ev_env(monkeypatch, data_dir):
    """A fresh data root and the offline defaults, whatever the developer's shell has set."""
    for name in ("EV_SOURCE", "EV_REPLAY_DIR", "EV_CITIES", "EV_SOURCE_CHARGECLOUD", "EV_SOURCE_OSM",
                 "EV_SOURCE_OPENCHARGEMAP", "EV_SOURCE_SESSIONS", "OPENCHARGEMAP_API_KEY", "EV_LAKE_URL",
                 "EV_S3_ENDPOINT_URL", "EV_EXECUTOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EV_DATA_DIR", str(data_dir))
    return monkeypatch


@pytest.fixture
def defs(dbt_manifest):
    from ev_assets.definitions import defs as definitions

    return definitions


def raw_tables(data_dir: Path):
    """An in-memory DuckDB with the raw tables of the lake under `data_dir` as views: what ingestion wrote, before
    any warehouse run made the warehouse file."""
    import duckdb

    from ev_assets.lib import lake, warehouse

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE SCHEMA raw")
    warehouse.create_raw_views(con, lake.Lake(str(data_dir / "lake")))
    return con


def run_job(defs, name: str, first: str | None = None, last: str | None = None, instance=None, expect_success=True):
    """Run a job in-process over a partition range (one run, as a backfill with the single-run policy)."""
    import dagster as dg

    tags = {RANGE_START_TAG: first, RANGE_END_TAG: last} if first else {}
    result = defs.resolve_job_def(name).execute_in_process(
        instance=instance or dg.DagsterInstance.ephemeral(), tags=tags, raise_on_error=False
    )
    failures = [e.step_failure_data.error.to_string() for e in result.all_events if e.is_step_failure]
    if expect_success:
        assert result.success, "\n".join(failures)
    return result


def check_results(result) -> dict[str, bool]:
    return {
        e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data.passed
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
