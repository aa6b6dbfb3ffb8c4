"""Shared fixtures: where the real public test data lives, and a fresh data root per test. The trained data roots
several test packages share (session-scoped, built once) are in `fixtures/roots.py`; the builders and helpers
tests import are in the `fixtures` package."""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest

from ev_assets_tests.fixtures.jobs import SOURCE_ENV
from ev_assets_tests.fixtures.paths import DBT_PROJECT, SHARED_DATA

pytest_plugins = ["ev_assets_tests.fixtures.roots", "ev_assets_tests.fixtures.s3"]


def pytest_xdist_make_scheduler(config, log):
    """`make test` runs the tests on pytest-xdist workers: see `fixtures/workers.py` for who runs what, and when."""
    from ev_assets_tests.fixtures.workers import GroupScheduling

    return GroupScheduling(config, log) if config.getvalue("dist") in ("load", "loadscope", "loadgroup") else None


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
    """dagster-dbt loads the project from its manifest: parsed when a fresh checkout has none, or when a file of the
    project changed since (as `make` does; a stale manifest names tests dbt no longer has)."""
    project = DBT_PROJECT
    manifest = project / "target" / "manifest.json"
    sources = [f for d in ("models", "macros", "seeds", "snapshots", "tests") for f in (project / d).rglob("*")
               if f.is_file()] + [project / "dbt_project.yml"]
    stale = lambda: not manifest.exists() or max(f.stat().st_mtime for f in sources) > manifest.stat().st_mtime  # noqa: E731
    if stale():
        from dbt.cli.main import dbtRunner

        (project / "target").mkdir(exist_ok=True)
        with open(project / "target" / ".parse.lock", "w") as lock:  # one parse, whatever the number of workers
            fcntl.flock(lock, fcntl.LOCK_EX)
            if stale():
                result = dbtRunner().invoke(["parse", "--quiet", "--project-dir", str(project), "--profiles-dir", str(project)])
                assert result.success, f"dbt parse failed: {result.exception}"
    return manifest


@pytest.fixture
def ev_env(monkeypatch, data_dir):
    """A fresh data root and the offline defaults, whatever the developer's shell has set."""
    for name in SOURCE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EV_DATA_DIR", str(data_dir))
    return monkeypatch


@pytest.fixture
def defs(dbt_manifest):
    from ev_assets.definitions import defs as definitions

    return definitions
