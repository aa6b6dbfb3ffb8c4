"""The Kubernetes configuration (ev_assets/deploy/) parses, and names what this repository has: the code location,
settings that exist, and the Postgres instance config Dagster accepts. No cluster runs here: see the README."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import yaml

from ev_assets.lib import settings
from ev_assets_tests.fixtures.paths import REPO_ROOT

DEPLOY = REPO_ROOT / "ev_assets" / "deploy"


def _documents(name: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((DEPLOY / name).read_text()) if doc is not None]


def test_every_deploy_file_is_valid_yaml():
    files = sorted(DEPLOY.rglob("*.yaml"))
    assert {p.relative_to(DEPLOY).as_posix() for p in files} >= {
        "dagster-postgres.yaml", "helm/values.yaml", "k8s/settings.yaml", "k8s/celery-workers.yaml"
    }
    for path in files:
        assert _documents(path.relative_to(DEPLOY).as_posix()), f"{path} holds no document"


def test_the_helm_values_run_this_code_location_with_the_k8s_run_launcher_on_postgres():
    [values] = _documents("helm/values.yaml")
    module = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["dagster"]["module_name"]
    [deployment] = values["dagster-user-deployments"]["deployments"]
    args = deployment["dagsterApiGrpcArgs"]
    assert args[args.index("--module-name") + 1] == module
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["postgresql"]["enabled"] is False and values["postgresql"]["postgresqlHost"]


def test_the_settings_config_map_names_only_settings_that_exist():
    [config_map] = _documents("k8s/settings.yaml")
    known = set(re.findall(r'"((?:EV|OPENCHARGEMAP)_[A-Z0-9_]+)"', Path(settings.__file__).read_text()))
    names = set(config_map["data"]) - {"DAGSTER_HOME"}
    assert names and names <= known, f"not settings: {sorted(names - known)}"
    assert config_map["data"]["EV_EXECUTOR"] == "celery"
    workers = [d for d in _documents("k8s/celery-workers.yaml") if d["kind"] == "Deployment"]
    [worker] = [d for d in workers if d["metadata"]["name"] == "ev-assets-celery-workers"]
    [container] = worker["spec"]["template"]["spec"]["containers"]
    assert {"configMapRef": {"name": config_map["metadata"]["name"]}} in container["envFrom"]
    assert "dagster_celery.app" in " ".join(container["args"])


def test_the_postgres_instance_config_is_one_dagster_accepts(tmp_path):
    from dagster._core.instance.config import dagster_instance_config

    shutil.copy(DEPLOY / "dagster-postgres.yaml", tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))  # validates it against the instance schema (raises if not)
    assert config["storage"]["postgres"]["postgres_url"] == {"env": "EV_DAGSTER_PG_URL"}
