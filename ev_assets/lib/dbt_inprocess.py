"""dbt run in this process (dbt's `dbtRunner`) instead of a `dbt` subprocess, returned as the finished process
dagster-dbt reads: the same command, environment and folder, the same JSON log lines, the same exit code.

A `dbt` subprocess spends about 7 s starting (importing dbt, loading its adapter and the parsed project) before a
daily step's 1-5 s of work; in the process of a Dagster step, which has dbt imported already, an invocation
starts in about 2 s, and in well under a second after the first. Spark's target keeps the subprocess (its JVM
would stay in the step's process).

dbt's own state is global (flags, event loggers, dbt-duckdb's open database): one invocation at a time, and the
database is closed when dbt returns, so the warehouse can be opened again, read-only, by the same process.

`run_reusing_parse` also keeps the project as dbt last parsed it in this process (`LastParse`): the next invocation
on unchanged files, vars, target and settings starts from a copy of it instead of loading `partial_parse.msgpack`
and checking it again (~0.3 s quiet, ~1 s in a busy suite, at every invocation).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import io
import os
import re
import signal
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
    An interrupt (Ctrl-C, Dagster terminating the run) stops dbt as a Ctrl-C stops its command line (its threads
    stopped, their queries cancelled, run results written) and is raised once dbt has returned, as the handler it
    replaced raises it (Dagster's interrupted error in a step); where that handler only records it, as a
    KeyboardInterrupt. With a `manifest` (a parsed project, `parse`) dbt does not parse the project again."""
    from dbt.cli.main import dbtRunner

    printed = io.StringIO()
    with ONE_AT_A_TIME, environment(env), contextlib.chdir(cwd), contextlib.redirect_stdout(printed):
        try:
            with interrupts_as_keyboard_interrupt() as interrupted_by:
                result = dbtRunner(manifest=manifest).invoke(list(args[1:]))
        finally:
            close_duckdb()
    if interrupted_by:  # dbt has stopped: the interrupt is raised as the handler it replaced raises it
        signo, handler = interrupted_by[0]
        handler(signo, None)
        raise KeyboardInterrupt  # dbt was interrupted, though that handler only recorded it
    if result.exception is not None and not isinstance(result.exception, Exception):
        raise result.exception  # dbtRunner returns even a KeyboardInterrupt as the result's exception
    code = SUCCESS if result.success else ERROR if result.exception is not None else FAILURE
    return FinishedDbt(list(args), io.BytesIO(printed.getvalue().encode()), code, result.result)


@contextlib.contextmanager
def interrupts_as_keyboard_interrupt() -> Iterator[list[tuple[int, Any]]]:
    """An interrupt (SIGINT, and SIGTERM where it is handled as one) raised as a KeyboardInterrupt, the one
    exception on which dbt stops its threads, cancels their queries and writes its run results before it returns.
    A Dagster step raises its own error on an interrupt instead, which dbt would let through with its threads still
    running. Only the first signal is raised: a second one (Dagster's executor repeats the terminal's Ctrl-C) would cut
    dbt's cancelling short. Yields the list of (signal, the handler it replaced) received, for the caller to raise as
    that handler would once dbt has returned. Signals are the main thread's: elsewhere nothing changes."""
    received: list[tuple[int, Any]] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    before = {signo: signal.getsignal(signo) for signo in (signal.SIGINT, signal.SIGTERM)}
    # a Python handler of SIGINT, and SIGTERM where it has the same (Dagster maps SIGTERM to SIGINT's handler)
    replaced = [signo for signo, handler in before.items()
                if callable(handler) and handler is before[signal.SIGINT]]

    armed = True  # false while the handlers are put back: a signal then is only recorded

    def as_keyboard_interrupt(signo: int, frame: Any) -> None:
        received.append((signo, before[signo]))
        if armed and len(received) == 1:
            raise KeyboardInterrupt

    try:
        for signo in replaced:
            signal.signal(signo, as_keyboard_interrupt)
        yield received
    finally:
        armed = False
        for signo in replaced:
            signal.signal(signo, before[signo])


# The flags of a dbt command (with their value) that change what its parse gives, and all those its parse reads
PARSED_BY = ("--project-dir", "--profiles-dir", "--vars", "--target", "-t", "--profile")
PARSE_FLAGS = (*PARSED_BY, "--target-path", "--log-path")
# dbt's settings of one invocation that its parse does not read: where it writes, how it logs, which tests it runs
PER_INVOCATION_ENV = ("DBT_TARGET_PATH", "DBT_LOG_PATH", "DBT_LOG_FORMAT", "DBT_INDIRECT_SELECTION")
# the environment variables a parse may read: dbt's own, and those the project's files name in `env_var('...')`
DBT_ENV_PREFIX = "DBT_"
ENV_VAR_CALL = re.compile(r"""env_var\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]\s*[,)]""")


@dataclass
class LastParse:
    """The project as dbt parsed it last in this process, and what that parse depended on (`parse_key`; the
    environment variables dbt read while parsing are in the manifest's `env_vars`)."""

    key: tuple
    manifest: Any


LAST_PARSE: LastParse | None = None


def run_reusing_parse(args: Sequence[str], env: Mapping[str, str], cwd: Path,
                      compile_env: Sequence[str] = ()) -> FinishedDbt:
    """`run` on a copy of the project as this process last parsed it, while nothing that parse read has changed
    (the project's files, the flags of `PARSED_BY`, the environment of `parse_key`); otherwise dbt parses it first
    (from the target folder's `partial_parse.msgpack`, as the command would have) and that parse is kept.
    `compile_env` names variables dbt reads only while compiling SQL (a run's window): they may differ."""
    global LAST_PARSE
    env = {**os.environ, **env}  # as dbt will see it
    key = parse_key(args, env, cwd, compile_env)
    if key is None:
        return run(args, env, cwd)
    last = LAST_PARSE
    if last is None or last.key != key or not same_env(last.manifest.env_vars, env, compile_env):
        parsed = run(parse_command(args), env, cwd)
        if parsed.returncode != SUCCESS:  # the command itself reports dbt's error, as without a parse kept
            return run(args, env, cwd)
        last = LAST_PARSE = LastParse(key, parsed.result)
    # a copy: dbt compiles the nodes of the manifest it is given in place (and injects ephemeral CTEs only once)
    return run(args, env, cwd, manifest=fresh_copy(last.manifest))


def fresh_copy(manifest: Any) -> Any:
    """A deep copy of a parsed manifest, its lookups and caches left to be built again when first used. Not
    `copy.deepcopy`: dbt 1.11's `Manifest.__reduce_ex__` leaves out `fixtures` and so shifts every field after it
    (a source lookup would be a ref lookup)."""
    return type(manifest)(**{field.name: copy.deepcopy(getattr(manifest, field.name))
                             for field in dataclasses.fields(manifest) if not field.name.startswith("_")})


def parse_command(args: Sequence[str]) -> list[str]:
    """`dbt parse` with the flags of `args` that its parse reads."""
    return ["dbt", "parse", "--quiet", *(part for pair in flag_values(args, PARSE_FLAGS) for part in pair)]


def flag_values(args: Sequence[str], names: Sequence[str]) -> list[tuple[str, str]]:
    """The (flag, value) pairs of `args` among `names` (`--vars '{...}'` or `--vars={...}`)."""
    pairs = []
    for i, arg in enumerate(args):
        name, equals, value = arg.partition("=")
        if name in names:
            pairs.append((name, value if equals else (args[i + 1] if i + 1 < len(args) else "")))
    return pairs


def parse_key(args: Sequence[str], env: Mapping[str, str], cwd: Path, compile_env: Sequence[str]) -> tuple | None:
    """What a parse of the project depends on: the flags, its files and the profile, the environment variables
    dbt reads (DBT_*) and those the files name. None for a project with a `catalogs.yml`: dbt registers its catalogs
    with the adapter only while it parses."""
    flags = dict(flag_values(args, PARSED_BY))
    project = cwd / (flags.get("--project-dir") or env.get("DBT_PROJECT_DIR") or ".")
    profiles = cwd / (flags.get("--profiles-dir") or env.get("DBT_PROFILES_DIR")
                      or ("." if (cwd / "profiles.yml").exists() else Path.home() / ".dbt"))  # dbt's default
    if (project / "catalogs.yml").exists():
        return None
    state, named = read_files([*project_files(project), profiles / "profiles.yml"])
    names = {name for name in env if name.startswith(DBT_ENV_PREFIX)} | named
    environment = tuple(sorted((name, env.get(name)) for name in names - {*compile_env, *PER_INVOCATION_ENV}))
    return tuple(sorted(flags.items())), environment, state


def project_files(folder: Path) -> list[Path]:
    """The files of a dbt project but those of its `target` and `logs` folders."""
    paths = []
    for root, dirs, files in os.walk(folder):
        if root == str(folder):
            dirs[:] = [d for d in dirs if d not in ("target", "logs")]
        paths += [Path(root, name) for name in files]
    return sorted(paths)


def read_files(paths: Sequence[Path]) -> tuple[tuple, set[str]]:
    """Each file of `paths` that exists read once: its state, (path, a hash of its content), compared by content as
    dbt compares files (a rewrite within the file system's clock tick keeps the modification time); and the
    environment variables its SQL and YAML read by name (`env_var('EV_LAKE_URL', '')`)."""
    state, names = [], set()
    for path in paths:
        try:
            content = path.read_bytes()
        except OSError:
            continue
        state.append((str(path), hashlib.blake2b(content, digest_size=16).hexdigest()))
        if path.suffix in (".sql", ".yml", ".yaml"):
            names |= set(ENV_VAR_CALL.findall(content.decode(errors="replace")))
    return tuple(state), names


def same_env(read: Mapping[str, str], env: Mapping[str, str], compile_env: Sequence[str]) -> bool:
    """Whether the variables a parse read (a manifest's `env_vars`: a default taken is recorded as dbt's placeholder)
    have the same values in `env`."""
    from dbt.constants import DEFAULT_ENV_PLACEHOLDER

    return all(env.get(name, DEFAULT_ENV_PLACEHOLDER) == value
               for name, value in read.items() if name not in compile_env)


def parse(project_dir: Path, target_path: Path) -> Any:
    """The project parsed (dbt's `Manifest`), for `run` to re-use: what it holds does not depend on the data root
    or the window (the profile and the macros read those when dbt compiles)."""
    flags = ["--project-dir", str(project_dir), "--profiles-dir", str(project_dir), "--target-path", str(target_path)]
    done = run(parse_command(flags), {}, project_dir)
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
