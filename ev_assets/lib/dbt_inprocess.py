"""dbt run in this process (dbt's `dbtRunner`) instead of a `dbt` subprocess, returned as the finished process
dagster-dbt reads: the same command, environment and folder, the same JSON log lines, the same exit code.

A `dbt` subprocess spends about 7 s starting (importing dbt, loading its adapter and the parsed project) before a
daily step's 1-5 s of work; in the process of a Dagster step, which has dbt imported already, an invocation
starts in about 2 s, and in well under a second after the first. Spark's target keeps the subprocess (its JVM
would stay in the step's process).

dbt's own state is global (flags, event loggers, dbt-duckdb's open database): one invocation at a time, and the
database is closed when dbt returns, so the warehouse can be opened again, read-only, by the same process.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# dbt's exit codes (`dbt.utils.ExitCodes`): what a `dbt` subprocess would return
SUCCESS, FAILURE, ERROR = 0, 1, 2
ONE_AT_A_TIME = threading.Lock()  # dbt's flags, loggers, environment and working folder are the process's


@dataclass
class FinishedDbt:
    """What dagster-dbt reads of a dbt process (`subprocess.Popen`'s `args`, `stdout`, `returncode`, `wait`,
    `poll`, `send_signal`), for a dbt that has run to its end in this process."""

    args: list[str]
    stdout: io.BytesIO
    returncode: int
    result: Any = None  # what dbt returned: the Manifest of a parse, the results of a build

    def wait(self, timeout: float | None = None) -> int:
        return self.returncode

    def poll(self) -> int:
        return self.returncode

    def send_signal(self, signal: int) -> None:
        """Nothing to signal: dbt has returned."""


def run(args: Sequence[str], env: Mapping[str, str], cwd: Path, manifest: Any = None) -> FinishedDbt:
    """`args` (`dbt` and its arguments) as dbt's command line would run them, with `env` as the environment and
    `cwd` as the working folder. What dbt prints (JSON lines under DBT_LOG_FORMAT=json) is the returned stdout.
    An interrupt (Ctrl-C, Dagster terminating the run) is raised once dbt has returned. With a `manifest` (a
    parsed project, `parse`) dbt does not parse the project again."""
    from dbt.cli.main import dbtRunner

    printed = io.StringIO()
    with ONE_AT_A_TIME, environment(env), contextlib.chdir(cwd), contextlib.redirect_stdout(printed):
        try:
            result = dbtRunner(manifest=manifest).invoke(list(args[1:]))
        finally:
            close_duckdb()
    if result.exception is not None and not isinstance(result.exception, Exception):
        raise result.exception  # dbtRunner returns even a KeyboardInterrupt as the result's exception
    code = SUCCESS if result.success else ERROR if result.exception is not None else FAILURE
    return FinishedDbt(list(args), io.BytesIO(printed.getvalue().encode()), code, result.result)


def parse(project_dir: Path, target_path: Path) -> Any:
    """The project parsed (dbt's `Manifest`), for `run` to re-use: what it holds does not depend on the data root
    or the window (the profile and the macros read those when dbt compiles)."""
    done = run(["dbt", "parse", "--quiet", "--project-dir", str(project_dir), "--profiles-dir", str(project_dir),
                "--target-path", str(target_path)], {}, project_dir)
    if done.returncode != SUCCESS:
        raise RuntimeError(f"dbt parse failed:\n{done.stdout.getvalue().decode()[-3000:]}")
    return done.result


def close_duckdb() -> None:
    """Close the database dbt-duckdb keeps open for the next invocation (it closes it only at exit): until then
    this process could not open the warehouse read-only, nor another process at all."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # another adapter only
        return
    with DuckDBConnectionManager._LOCK:
        if DuckDBConnectionManager._ENV is not None:
            DuckDBConnectionManager._ENV.close()
            DuckDBConnectionManager._ENV = None


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """`values` in this process's environment, then as before."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
