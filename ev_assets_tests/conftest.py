"""Shared fixtures: where the real public test data lives, and a fresh data root per test. The trained data roots
several test packages share (session-scoped, built once) are in `fixtures/roots.py`; the builders and helpers
tests import are in the `fixtures` package."""

from __future__ import annotations

from pathlib import Path

import pytest

from ev_assets_tests.fixtures.jobs import SOURCE_ENV
from ev_assets_tests.fixtures.paths import DBT_PROJECT, SHARED_DATA

pytest_plugins = ["ev_assets_tests.fixtures.roots", "ev_assets_tests.fixtures.s3"]

# `make test` runs the tests on two pytest-xdist workers (`--dist loadgroup`): the tests of a module stay together (its
# fixtures are built once), and so do the tests of a session-scoped data root, whatever their module.
SHARED_ROOTS = {"demo_root": "demo_root", "service_root": "service_root", "dashboard_root": "dashboard_root",
                "dashboard_models_root": "dashboard_root"}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups into the test ids
def pytest_collection_modifyitems(config, items):
    """Each test's worker group, and the groups in the order the workers take them: the slowest first (the groups
    with the most `slow` tests), so that no long setup starts last while the other worker idles."""
    if config.getoption("dist", "no") == "no" and not hasattr(config, "workerinput"):
        return
    groups: dict[str, list] = {}
    for item in items:
        group = next((g for fixture, g in SHARED_ROOTS.items() if fixture in item.fixturenames),
                     item.nodeid.split("::")[0])
        item.add_marker(pytest.mark.xdist_group(group))
        groups.setdefault(group, []).append(item)
    slow = {g: sum(1 for i in tests if i.get_closest_marker("slow")) for g, tests in groups.items()}
    items[:] = [i for g in sorted(groups, key=lambda g: (-slow[g], -len(groups[g]))) for i in groups[g]]


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
    if not manifest.exists() or max(f.stat().st_mtime for f in sources) > manifest.stat().st_mtime:
        from dbt.cli.main import dbtRunner

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
