"""The service refuses before it spends: a body over EV_MAX_BODY_BYTES is 413 before it is read whole (on the real
uvicorn server, with a Content-Length and chunked), a long query string 414, a foreign Host header 400; the admin
routes take only JSON and, bound beyond loopback, the admin token."""

from __future__ import annotations

import socket
import sys
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from ev_assets.api.app import create_app
from ev_assets.lib.settings import Settings
from ev_assets_tests import browser

BIG = 60 * 1024 * 1024
LOCAL = "http://127.0.0.1"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The real service (`python -m ev_assets.api`, one uvicorn worker) on an empty data root."""
    port = browser.free_port()
    env = {"EV_DATA_DIR": str(tmp_path_factory.mktemp("guard") / "data"), "EV_SERVE_PORT": str(port),
           "EV_SERVE_HOST": "127.0.0.1", "EV_MODEL_RELOAD_S": "0"}
    base = f"http://127.0.0.1:{port}"
    # /health answers 200 (degraded: no snapshot, no champions) once the service listens
    with browser.server([sys.executable, "-m", "ev_assets.api"], f"{base}/health", env=env):
        yield base


def _status_line_and_body(sock: socket.socket) -> tuple[int, str]:
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


def test_a_60_mb_body_is_413_within_a_second_before_it_is_read(server):
    port = int(server.rsplit(":", 1)[1])
    # announced by its Content-Length: refused on the headers alone, none of the 60 MB sent
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        start = time.monotonic()
        sock.sendall(f"POST /predict/availability HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json"
                     f"\r\nContent-Length: {BIG}\r\n\r\n".encode() + b'{"station_id": "' + b"x" * 65536)
        status, body = _status_line_and_body(sock)
        assert time.monotonic() - start < 1
    assert status == 413 and "EV_MAX_BODY_BYTES" in body, body

    # the whole 60 MB through httpx
    start = time.monotonic()
    try:
        r = httpx.post(f"{server}/predict/availability", content=b"x" * BIG,
                       headers={"Content-Type": "application/json"}, timeout=5)
        assert r.status_code == 413 and "larger than 1000000 bytes" in r.json()["detail"]
    except httpx.WriteError:  # the server answered and closed while the client was still sending
        pass
    assert time.monotonic() - start < 1

    # chunked (no Content-Length): counted while it streams in, refused once past the limit
    def chunks():
        for _ in range(BIG // 65536):
            yield b"x" * 65536

    start = time.monotonic()
    try:
        r = httpx.post(f"{server}/predict/availability", content=chunks(), headers={"Content-Type": "application/json"},
                       timeout=5)
        assert r.status_code == 413 and "EV_MAX_BODY_BYTES" in r.json()["detail"]
    except httpx.WriteError:
        pass
    assert time.monotonic() - start < 1

    # the service is free again and normal requests work
    assert httpx.get(f"{server}/health", timeout=5).status_code == 200
    r = httpx.post(f"{server}/predict/availability", json={"station_id": "S1", "horizon_minutes": 60}, timeout=5)
    assert r.status_code == 503 and "no champion" in r.json()["detail"]  # read and answered: no model here


def test_a_chunked_body_over_the_limit_is_413_with_a_json_body(tmp_path):
    with TestClient(create_app(Settings(data_dir=tmp_path, model_reload_s=0, max_body_bytes=1000)),
                    base_url=LOCAL) as client:
        r = client.post("/predict/availability", content=iter([b'{"station_id": "', b"x" * 2000, b'"}']),
                        headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and r.json() == {
            "detail": "the request body is larger than 1000 bytes (EV_MAX_BODY_BYTES)"}
        r = client.post("/predict/availability", json={"station_id": "S1", "horizon_minutes": 60})
        assert r.status_code == 503  # under the limit: read and answered


def test_an_oversized_query_string_is_414_with_a_json_body(server):
    r = httpx.get(f"{server}/kpi/energy/last-7-days", params={"end": "x" * 9000}, timeout=5)
    assert r.status_code == 414 and "query string is longer than 8192 bytes" in r.json()["detail"]
    assert httpx.get(f"{server}/health", params={"q": "x" * 100}, timeout=5).status_code == 200


def test_a_foreign_host_header_is_400(server, tmp_path):
    r = httpx.get(f"{server}/health", headers={"Host": "attacker.example"}, timeout=5)
    assert r.status_code == 400 and "attacker.example" in r.json()["detail"]
    assert httpx.get(f"{server}/health", headers={"Host": "localhost"}, timeout=5).status_code == 200
    # the configured hosts and the host the service is bound to
    settings = Settings(data_dir=tmp_path, model_reload_s=0, serve_host="ev.internal", allowed_hosts=("*.example.org",))
    with TestClient(create_app(settings), base_url="http://ev.internal:8000") as client:
        assert client.get("/health").status_code == 200
        assert client.get("/health", headers={"Host": "api.example.org"}).status_code == 200
        assert client.get("/health", headers={"Host": "localhost"}).status_code == 400
    assert Settings.from_env({"EV_ALLOWED_HOSTS": "a.example, B.example"}).trusted_hosts == (
        "a.example", "b.example", "127.0.0.1")


def test_admin_reload_needs_a_json_body(tmp_path):
    with TestClient(create_app(Settings(data_dir=tmp_path, model_reload_s=0)), base_url=LOCAL) as client:
        # what a page of another site can send without a preflight
        r = client.post("/admin/reload", content="{}", headers={"Content-Type": "text/plain",
                                                                "Origin": "http://evil.example"})
        assert r.status_code == 415 and "application/json" in r.json()["detail"]
        assert client.post("/admin/reload", data={"a": "b"}).status_code == 415
        assert client.post("/admin/reload").status_code == 415
        assert client.post("/admin/reload", json={}).status_code == 200  # on loopback, no token needed


def test_admin_routes_beyond_loopback_need_the_admin_token(tmp_path):
    exposed = Settings(data_dir=tmp_path, model_reload_s=0, serve_host="0.0.0.0")
    with TestClient(create_app(exposed), base_url=LOCAL) as client:
        r = client.post("/admin/reload", json={})
        assert r.status_code == 403 and "EV_ADMIN_TOKEN" in r.json()["detail"] and "0.0.0.0" in r.json()["detail"]
    with TestClient(create_app(exposed.with_(admin_token="s3cret")), base_url=LOCAL) as client:
        assert client.post("/admin/reload", json={}).status_code == 403
        assert client.post("/admin/reload", json={}, headers={"X-Admin-Token": "wrong"}).status_code == 403
        assert client.post("/admin/reload", json={}, headers={"X-Admin-Token": "s3cret"}).status_code == 200
    assert "s3cret" not in repr(exposed.with_(admin_token="s3cret"))
    assert Settings.from_env({"EV_ADMIN_TOKEN": "t", "EV_SERVE_HOST": "::1"}).serves_loopback_only
