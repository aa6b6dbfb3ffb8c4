"""Pure ASGI middleware that refuses a request before the service spends anything on it.

- `HostCheck`: a `Host` header that is not one of the trusted hosts gets 400 (DNS rebinding: a page of another site
  that resolves its name to this machine must not reach the service).
- `RequestLimits`: a body over `max_body_bytes` gets 413 before it is read whole (its Content-Length says so, or
  the bytes counted while a chunked body streams in pass the limit); a query string over `max_query_bytes` gets 414.

Both answer with the service's JSON error body, `{"detail": "<message>"}`.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

MAX_QUERY_BYTES = 8192


async def refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def host_name(host: str) -> str:
    """The name of a Host header without its port: `[::1]:8000` -> `::1`, `localhost:8000` -> `localhost`."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


class HostCheck:
    """400 unless the Host header names one of `hosts` (`*` allows any, `*.example.org` a domain's hosts)."""

    def __init__(self, app: ASGIApp, hosts: tuple[str, ...]) -> None:
        self.app = app
        self.hosts = tuple(h.strip().lower().strip("[]") for h in hosts if h.strip())

    def allowed(self, host: str) -> bool:
        return any(pattern == "*" or host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:]))
                   for pattern in self.hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = host_name(_header(scope, b"host") or "")
            if not self.allowed(host):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                await refuse(send, 400, f"invalid Host header {host!r}: this service answers only for "
                                        f"{', '.join(self.hosts)} (EV_ALLOWED_HOSTS)")
                return
        await self.app(scope, receive, send)


class BodyTooLarge(HTTPException):
    """Raised from `receive` once a streamed body passes the limit: FastAPI re-raises an HTTPException met while
    reading the body, so the route answers 413 through the service's error handler."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes (EV_MAX_BODY_BYTES)")


class RequestLimits:
    def __init__(self, app: ASGIApp, max_body_bytes: int, max_query_bytes: int = MAX_QUERY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_query_bytes = max_query_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        if len(scope.get("query_string", b"")) > self.max_query_bytes:
            await refuse(send, 414, f"the query string is longer than {self.max_query_bytes} bytes")
            return
        length = _header(scope, b"content-length")
        if length is not None:
            if not length.strip().isdigit():
                await refuse(send, 400, f"invalid Content-Length {length!r}")
                return
            if int(length) > limit:
                await refuse(send, 413, BodyTooLarge(limit).detail)
                return

        received = 0
        started = False

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched_send(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge as exc:  # read outside a route's own body handling
            if started:
                raise
            await refuse(send, 413, exc.detail)
