"""HTTP GET of JSON with timeouts, retries and backoff, used by every live source.

429 and 5xx answers, timeouts and dropped connections are retried with exponential backoff (a 429's
`Retry-After` is honoured); other 4xx answers fail at once. After the last try a `SourceHTTPError` says what
was asked, how often, and what came back. Secrets in the query (API keys) never appear in messages.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from datetime import timezone
from typing import Any, Callable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

SECRET_PARAMS = {"key", "api_key", "apikey", "token"}
RETRY_STATUS = {429, 500, 502, 503, 504}
MAX_RETRY_AFTER_S = 300.0


class SourceHTTPError(RuntimeError):
    """A live source could not be read; `status` is the last HTTP status (None for timeouts/connection errors)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class MalformedResponseError(ValueError):
    """The source answered, but not with the JSON it should have."""


@dataclass(frozen=True)
class RetryPolicy:
    timeout_s: float = 20.0
    retries: int = 4
    backoff_s: float = 1.0


def _mask(pairs) -> list[tuple[str, Any]]:
    return [(k, "***" if k.lower() in SECRET_PARAMS else v) for k, v in pairs]


def describe_url(url: str, params: Mapping[str, Any] | None = None) -> str:
    """The URL as it may be shown in logs and errors: secret parameters masked.

    Secrets are masked both in `params` and in a query string already part of `url` (a configured base URL
    like `https://host/poi/?key=...` must not leak either).
    """
    parts = urlsplit(url)
    if parts.query:
        query = urlencode(_mask(parse_qsl(parts.query, keep_blank_values=True)), safe="*")
        url = urlunsplit(parts._replace(query=query))
    if not params:
        return url
    return f"{url}{'&' if parts.query else '?'}{urlencode(_mask(params.items()), safe='*')}"


def retry_after_seconds(value: str | None, default: float) -> float:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), capped; `default` when absent."""
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):  # a garbled header must not turn a retry into a crash
            return default
        if parsed.tzinfo is None:  # "-0000": HTTP dates are always GMT
            parsed = parsed.replace(tzinfo=timezone.utc)
        seconds = parsed.timestamp() - time.time()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def get_json(
    url: str,
    params: Mapping[str, Any] | None = None,
    *,
    policy: RetryPolicy = RetryPolicy(),
    session: requests.Session | None = None,
    headers: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] | None = None,
) -> Any:
    """GET `url` and decode its JSON body, retrying as described in the module docstring."""
    http = session or requests.Session()
    try:
        return _get_json(http, url, params, policy, headers, sleep, log)
    finally:
        if session is None:  # close the connection pool we opened, not the caller's
            http.close()


def _get_json(http, url, params, policy, headers, sleep, log) -> Any:
    shown = describe_url(url, params)
    attempts = policy.retries + 1
    last_problem = ""
    last_status: int | None = None
    for attempt in range(1, attempts + 1):
        wait = policy.backoff_s * 2 ** (attempt - 1)
        try:
            response = http.get(url, params=params, headers=headers, timeout=policy.timeout_s)
        except requests.Timeout:
            last_problem, last_status = f"timed out after {policy.timeout_s:g} s", None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            # ChunkedEncodingError: the connection dropped while the body was being read.
            last_problem, last_status = f"connection failed ({type(exc).__name__})", None
        else:
            last_status = response.status_code
            if response.status_code == 200:
                try:
                    return response.json()
                except ValueError as exc:
                    snippet = response.text[:120].replace("\n", " ")
                    raise MalformedResponseError(f"{shown} returned malformed JSON ({exc}): {snippet!r}") from None
            last_problem = f"HTTP {response.status_code} {response.reason or ''}".strip()
            if response.status_code not in RETRY_STATUS:
                raise SourceHTTPError(f"GET {shown} failed: {last_problem} (not retried)", response.status_code)
            if response.status_code == 429:
                wait = retry_after_seconds(response.headers.get("Retry-After"), wait)
        if attempt < attempts:
            if log:
                log(f"GET {shown}: {last_problem}; try {attempt}/{attempts}, retrying in {wait:.1f} s")
            sleep(wait)
    raise SourceHTTPError(f"GET {shown} failed after {attempts} tries: {last_problem}", last_status)
