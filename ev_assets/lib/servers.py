"""Local servers for running beyond one process: Redis (the Celery broker), PostgreSQL (the Dagster instance and
MLflow's backend store) and Celery workers, each on a free port of 127.0.0.1 under a folder of its own, stopped when
the `with` block ends. The tests and the benchmarks start them; in production they are services of their own
(ev_assets/deploy/). Debian's `redis-server` and `postgresql` must be installed (the Makefile's `servers` target).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping


class ServerError(RuntimeError):
    """A server could not be found or started; the message says which and what to install."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _binary(name: str, package: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise ServerError(f"{name} not found: install Debian's {package} (`make servers` does)")
    return found


def _wait_for_port(port: int, process: subprocess.Popen | None, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ServerError(f"{what} exited with code {process.returncode} before it listened on port {port}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise ServerError(f"{what} did not listen on 127.0.0.1:{port} within {timeout_s:.0f} s")


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A Redis server without persistence on a free port: yields its URL (redis://127.0.0.1:<port>/0)."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process = subprocess.Popen(
        [_binary("redis-server", "redis-server"), "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "no", "--dir", str(folder)],
        stdout=open(folder / "redis.log", "w"), stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_port(port, process, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def postgres_server(folder: Path, databases: tuple[str, ...] = ("dagster",)) -> Iterator[dict[str, str]]:
    """A PostgreSQL cluster made with initdb under `folder`, started with pg_ctl on a free port, with `databases`
    created: yields each database's SQLAlchemy URL (postgresql+psycopg2://ev@127.0.0.1:<port>/<db>; SQLAlchemy 2.1 would
    otherwise pick psycopg 3, which is not installed), trusted local connections.

    PostgreSQL refuses to run as root: as root, the cluster runs as Debian's `postgres` user, in a folder of its
    own under the system's temporary folder (`folder` may sit where that user cannot enter), removed afterwards."""
    as_user: list[str] = []
    cleanup = None
    if os.geteuid() == 0:
        import pwd

        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            raise ServerError("PostgreSQL refuses to run as root and there is no `postgres` user: install Debian's "
                              "postgresql or run as an ordinary user") from None
        folder = Path(tempfile.mkdtemp(prefix="ev-postgres-"))
        os.chown(folder, user.pw_uid, user.pw_gid)
        as_user, cleanup = ["runuser", "-u", "postgres", "--"], folder
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "pgdata"
    port = free_port()

    def run(*args: str, check: bool = True):
        done = subprocess.run([*as_user, *args], capture_output=True, text=True)
        if check and done.returncode:
            raise ServerError(f"{' '.join(args[:1])} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")

    try:
        run(_binary("initdb", "postgresql"), "-D", str(data), "-U", "ev", "--auth=trust", "-E", "UTF8")
        run(_binary("pg_ctl", "postgresql"), "-D", str(data), "-l", str(folder / "postgres.log"), "-w", "-o",
            f"-p {port} -h 127.0.0.1 -k {folder} -c fsync=off", "start")
        try:
            for db in databases:
                run(_binary("createdb", "postgresql"), "-h", "127.0.0.1", "-p", str(port), "-U", "ev", db)
            yield {db: f"postgresql+psycopg2://ev@127.0.0.1:{port}/{db}" for db in databases}
        finally:
            run(_binary("pg_ctl", "postgresql"), "-D", str(data), "-m", "fast", "-w", "stop", check=False)
    finally:
        if cleanup is not None:
            shutil.rmtree(cleanup, ignore_errors=True)


CELERY_CONFIG_MODULE = "dagster_celery_config"  # what dagster_celery.app reads its broker and backend from


@contextmanager
def celery_workers(folder: Path, broker: str, count: int = 2, env: Mapping[str, str] | None = None,
                   preload: str | None = "ev_assets.definitions") -> Iterator[list]:
    """`count` Celery worker processes (one task at a time each) of dagster-celery's app, listening to `broker`
    (also the result backend), with `env` (the EV_* settings the steps read): yields the processes. `preload` is
    imported when a worker starts, not by its first step (the code location takes seconds to import)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{CELERY_CONFIG_MODULE}.py").write_text(f"broker_url = {broker!r}\nresult_backend = {broker!r}\n")
    environment = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))}
    celery = str(Path(sys.executable).with_name("celery"))
    workers = [
        subprocess.Popen(
            [celery, "-A", "dagster_celery.app", "worker", "--prefetch-multiplier=1", "--concurrency=1", "--pool=prefork",
             "-Q", "dagster", "-n", f"ev-worker-{i}@%h", "--loglevel=WARNING", "--without-gossip", "--without-mingle",
             *(["-I", preload] if preload else [])],
            env=environment, stdout=open(folder / f"worker-{i}.log", "w"), stderr=subprocess.STDOUT,
        )
        for i in range(count)
    ]
    try:
        yield workers
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
