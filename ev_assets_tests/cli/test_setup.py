"""`make setup`, which every `make` target runs first, leaves a matching environment alone."""

import shutil
import subprocess

import pytest

from ev_assets_tests.fixtures.paths import REPO_ROOT


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.slow
def test_a_second_make_setup_does_not_touch_the_venv():
    venv_cfg = REPO_ROOT / ".venv" / "pyvenv.cfg"
    if not venv_cfg.exists():
        pytest.skip("no .venv: the tests run outside `make test`")
    first = subprocess.run(["make", "-s", "setup"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    before = venv_cfg.stat()
    second = subprocess.run(["make", "-s", "setup"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    # uv says "Removed virtual environment" when it rebuilds it (e.g. given a pyenv shim instead of the interpreter)
    assert "virtual environment" not in second.stdout + second.stderr
    after = venv_cfg.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert second.stdout.strip() == ""  # nothing to do, nothing said


@pytest.mark.skipif(shutil.which("make") is None or shutil.which("git") is None, reason="make or git is not installed")
@pytest.mark.slow
def test_two_make_targets_at_once_on_a_fresh_clone(tmp_path):
    """The README says targets are safe to run at the same time: on a fresh clone both install uv, the environment
    and the dbt manifest, and neither dies on the other's half-made files (issue 18: 1)."""
    import os

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True, timeout=120)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if p and not (os.path.exists(os.path.join(p, "uv")) or ".venv" in p))
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "EV_DATA_DIR", "DAGSTER_HOME")}
    env["PATH"] = path  # no uv on PATH: each make installs its own, as on a fresh machine
    env["UV_COMPILE_BYTECODE"] = "0"  # compiling the libraries (~30 s of CPU) is not what this test is about
    runs = [subprocess.Popen(["make", "-s", "setup"], cwd=clone, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=900)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], "\n---\n".join(outputs)
    assert (clone / ".venv" / "bin" / "python").exists()
    assert (clone / "dbt_project" / "target" / "manifest.json").exists()
