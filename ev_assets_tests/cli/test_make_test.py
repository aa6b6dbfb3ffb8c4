"""`make test`'s temporary folders (data roots, instances, warehouses: 1-2 GB, on tmpfs when it has room): removed
after a run that passed or was stopped with Ctrl-C, kept and named after one that failed. Each case runs `make test`
on a one-test file of its own, its prerequisites taken as done (`make -o setup ...`: this suite runs after them)."""

from __future__ import annotations

import os
import pty
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ev_assets_tests.fixtures.paths import REPO_ROOT

pytestmark = [
    pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed"),
    pytest.mark.skipif(not (REPO_ROOT / ".venv").exists(), reason="no .venv: the tests run outside `make test`"),
]

TESTS = {
    "passes": "def test_it():\n    assert True\n",
    "fails": "def test_it():\n    assert 1 == 2\n",
    # writes the file `started` beside itself, then waits for the Ctrl-C
    "waits": "import pathlib, time\n\ndef test_it():\n"
             "    pathlib.Path(__file__).with_name('started').touch()\n    time.sleep(120)\n",
}


def make_test(tmp_path: Path, case: str, workers: int = 0) -> subprocess.Popen:
    folder = tmp_path / case
    folder.mkdir()
    (folder / "test_case.py").write_text(TESTS[case])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}  # not one of this suite's workers
    command = ["make", "-o", "setup", "-o", "browser", "-o", "spark", "-o", "servers", "test",
               f"TEST_WORKERS={workers}", f"TEST_TMP={tmp_path}", f"ARGS=-p no:cacheprovider {folder / 'test_case.py'}"]
    # as a terminal's foreground job: its own process group (Ctrl-C reaches make, the shell, uv and pytest at once)
    # reading a terminal (uv forwards a SIGINT to pytest when it has none, and pytest would see two)
    terminal, its_side = pty.openpty()
    run = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdin=its_side, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, start_new_session=True)
    os.close(its_side)
    run.terminal = terminal  # closed by `finish`
    return run


def finish(run: subprocess.Popen) -> tuple[int, str, Path]:
    try:
        output = run.communicate(timeout=300)[0]
    finally:
        if run.poll() is None:  # timed out: nothing of it left behind
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
        os.close(run.terminal)
    folder = re.search(r"^temporary folders: (\S+)$", output, re.MULTILINE)
    assert folder, output
    return run.returncode, output, Path(folder.group(1))


def test_a_run_that_passes_leaves_no_folder_and_one_that_fails_keeps_and_names_it(tmp_path):
    code, output, folder = finish(make_test(tmp_path, "passes"))
    assert code == 0 and "1 passed" in output, output
    assert folder.parent == tmp_path and not folder.exists()

    code, output, folder = finish(make_test(tmp_path, "fails"))
    assert code != 0 and "1 failed" in output, output
    assert f"the tests' temporary folders are kept in {folder}" in output
    assert (folder / "tmp").is_dir()  # the TMPDIR of the run, kept to look at


def test_ctrl_c_stops_the_run_and_removes_its_folder(tmp_path):
    run = make_test(tmp_path, "waits", workers=2)  # on pytest-xdist's workers, as `make test` runs
    started, deadline = tmp_path / "waits" / "started", time.monotonic() + 120
    while not started.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert started.exists(), finish(run)[1]
    os.killpg(run.pid, signal.SIGINT)  # Ctrl-C in the terminal
    code, output, folder = finish(run)
    assert code != 0 and "KeyboardInterrupt" in output, output
    assert not folder.exists() and "kept in" not in output, output
