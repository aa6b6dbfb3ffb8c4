"""The service during the soak: `python -m ev_assets.api` on a free port of 127.0.0.1, asked as a user would ask it
(`/health`, an availability forecast for a station), every answer and the champion version that gave it kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ev_assets.lib.live.broker import free_port
from ev_assets.lib.settings import Settings

START_TIMEOUT_S = 60.0


@dataclass
class Answer:
    at: datetime  # simulated time of the request
    path: str
    status: int  # 0: no answer (connection refused, timeout)
    model: str | None = None
    version: str | None = None
    detail: str = ""


@dataclass
class Service:
    settings: Settings
    log_path: Path
    answers: list[Answer] = field(default_factory=list)
    process: subprocess.Popen | None = None
    base: str = ""

    def start(self) -> "Service":
        port = free_port()
        env = {**os.environ, "EV_DATA_DIR": str(self.settings.data_dir), "EV_SERVE_HOST": "127.0.0.1",
               "EV_SERVE_PORT": str(port), "EV_MODEL_RELOAD_S": "2"}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "ev_assets.api"], env=env, stdout=log,
                                        stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited at start (code {self.process.returncode}): see {self.log_path}")
            try:
                self._call("GET", "/health")
                return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"the service did not answer within {START_TIMEOUT_S:.0f} s: see {self.log_path}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def _call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            text = error.read()
            try:
                return error.code, json.loads(text or b"{}")
            except ValueError:
                return error.code, {"detail": text[:200].decode(errors="replace")}

    def ask(self, at: datetime, station_id: str | None) -> None:
        """`/health`, and a 60-minute availability forecast for `station_id` (from the newest data)."""
        self._answer(at, "GET", "/health")
        if station_id is not None:
            self._answer(at, "POST", "/predict/availability", {"station_id": station_id, "horizon_minutes": 60})

    def _answer(self, at: datetime, method: str, path: str, body: dict | None = None) -> None:
        try:
            status, payload = self._call(method, path, body)
        except OSError as error:
            self.answers.append(Answer(at, path, 0, detail=str(error)))
            return
        detail = "" if status < 400 else str(payload.get("detail", payload))[:200]
        self.answers.append(Answer(at, path, status, payload.get("model"),
                                   str(payload["version"]) if payload.get("version") is not None else None, detail))

    def champions(self) -> dict[str, str]:
        """Model -> champion version the service serves now (from `/health`)."""
        status, payload = self._call("GET", "/health")
        models = payload.get("models", {}) if status == 200 else {}  # /health: name -> {"version": ..., ...}
        return {name: str(m["version"]) for name, m in models.items() if m.get("version") is not None}
