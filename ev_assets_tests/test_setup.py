"""`make setup`, which every `make` target runs first, leaves a matching environment alone."""

import shutil
import subprocess

import pytest

from ev_assets_tests.conftest import REPO_ROOT


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
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
