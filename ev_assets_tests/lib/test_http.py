"""lib/http.get_json against a real local server: retries, backoff, Retry-After, timeouts, masking secrets."""

from __future__ import annotations

import json
import socket
import time
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

import pytest
import requests
from werkzeug import Response

from ev_assets.lib.http import (
    MAX_RETRY_AFTER_S,
    MalformedResponseError,
    RetryPolicy,
    SourceHTTPError,
    describe_url,
    get_json,
    retry_after_seconds,
)

FAST = RetryPolicy(timeout_s=2.0, retries=2, backoff_s=0.5)
PAYLOAD = {"data": [], "status_code": 1000, "status_message": "Success", "timestamp": "2022-01-11T21:58:22+01:00"}


class Waits(list):
    """A fake `sleep` that records the waits asked for instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def test_returns_decoded_json(httpserver):
    httpserver.expect_request("/koeln").respond_with_json(PAYLOAD)
    assert get_json(httpserver.url_for("/koeln"), policy=FAST, sleep=Waits()) == PAYLOAD


def test_5xx_is_retried_with_exponential_backoff_then_succeeds(httpserver):
    httpserver.expect_oneshot_request("/koeln").respond_with_data("down", status=500)
    httpserver.expect_oneshot_request("/koeln").respond_with_data("busy", status=503)
    httpserver.expect_request("/koeln").respond_with_json(PAYLOAD)
    waits, logged = Waits(), []
    assert get_json(httpserver.url_for("/koeln"), policy=FAST, sleep=waits, log=logged.append) == PAYLOAD
    assert waits == [0.5, 1.0]
    assert "HTTP 500" in logged[0] and "try 1/3" in logged[0]
    assert "HTTP 503" in logged[1]


def test_429_honours_retry_after_seconds(httpserver):
    httpserver.expect_oneshot_request("/koeln").respond_with_data("", status=429, headers={"Retry-After": "7"})
    httpserver.expect_request("/koeln").respond_with_json(PAYLOAD)
    waits = Waits()
    assert get_json(httpserver.url_for("/koeln"), policy=FAST, sleep=waits) == PAYLOAD
    assert waits == [7.0]


def test_429_with_garbled_retry_after_falls_back_to_backoff(httpserver):
    """A broken Retry-After used to raise ValueError from the date parser instead of retrying."""
    httpserver.expect_oneshot_request("/koeln").respond_with_data("", status=429, headers={"Retry-After": "soon-ish"})
    httpserver.expect_request("/koeln").respond_with_json(PAYLOAD)
    waits = Waits()
    assert get_json(httpserver.url_for("/koeln"), policy=FAST, sleep=waits) == PAYLOAD
    assert waits == [0.5]


def test_retries_exhausted_names_tries_and_last_status(httpserver):
    httpserver.expect_request("/koeln").respond_with_data("busy", status=503)
    with pytest.raises(SourceHTTPError, match=r"failed after 3 tries: HTTP 503") as err:
        get_json(httpserver.url_for("/koeln"), policy=FAST, sleep=Waits())
    assert err.value.status == 503
    assert len(httpserver.log) == 3


def test_other_4xx_fails_at_once(httpserver):
    httpserver.expect_request("/nowhere").respond_with_data("no such city", status=404)
    waits = Waits()
    with pytest.raises(SourceHTTPError, match="HTTP 404.*not retried") as err:
        get_json(httpserver.url_for("/nowhere"), policy=FAST, sleep=waits)
    assert err.value.status == 404
    assert waits == [] and len(httpserver.log) == 1


def test_timeout_is_retried_then_clear_error(httpserver):
    def slow(_request):
        time.sleep(0.3)
        return Response(json.dumps(PAYLOAD), content_type="application/json")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    policy = RetryPolicy(timeout_s=0.1, retries=1, backoff_s=0.01)
    started = time.monotonic()
    with pytest.raises(SourceHTTPError, match=r"failed after 2 tries: timed out after 0.1 s") as err:
        get_json(httpserver.url_for("/slow"), policy=policy)
    assert err.value.status is None
    assert time.monotonic() - started < 2
    wait_until_served(httpserver, 2)


def wait_until_served(httpserver, requests_expected: int, limit_s: float = 3.0) -> None:
    """The test server answers one request at a time: let it finish the slow answers nobody waits for any more,
    so they do not spill into the next test."""
    deadline = time.monotonic() + limit_s
    while len(httpserver.log) < requests_expected and time.monotonic() < deadline:
        time.sleep(0.02)


def test_connection_refused_is_retried_then_fails():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    waits = Waits()
    with pytest.raises(SourceHTTPError, match="connection failed"):
        get_json(f"http://127.0.0.1:{port}/koeln", policy=FAST, sleep=waits)
    assert waits == [0.5, 1.0]


def test_connection_dropped_mid_body_is_retried():
    """ChunkedEncodingError (the body was cut off) is a dropped connection too, and used to escape unretried."""

    class Flaky:
        calls = 0

        def get(self, url, **kwargs):
            self.calls += 1
            if self.calls == 1:
                raise requests.exceptions.ChunkedEncodingError("connection broken: IncompleteRead")
            response = requests.Response()
            response.status_code, response._content = 200, json.dumps(PAYLOAD).encode()
            return response

    session = Flaky()
    assert get_json("http://127.0.0.1:9/koeln", policy=FAST, session=session, sleep=Waits()) == PAYLOAD
    assert session.calls == 2


def test_malformed_json_is_not_retried(httpserver):
    httpserver.expect_request("/koeln").respond_with_data("<html>maintenance</html>", content_type="text/html")
    with pytest.raises(MalformedResponseError, match="malformed JSON.*maintenance"):
        get_json(httpserver.url_for("/koeln"), policy=FAST, sleep=Waits())
    assert len(httpserver.log) == 1


def test_secrets_are_masked_in_errors_and_logs(httpserver):
    httpserver.expect_request("/poi").respond_with_data("down", status=500)
    logged: list[str] = []
    with pytest.raises(SourceHTTPError) as err:
        get_json(httpserver.url_for("/poi"), {"key": "s3cret", "countrycode": "DE"}, policy=FAST, sleep=Waits(),
                 log=logged.append)
    assert "s3cret" not in str(err.value) and not any("s3cret" in line for line in logged)
    assert "key=***" in str(err.value) and "countrycode=DE" in str(err.value)
    # the real request still carried the key
    assert httpserver.log[0][0].args["key"] == "s3cret"


def test_describe_url_masks_params_and_query_in_the_url():
    assert describe_url("https://x/poi") == "https://x/poi"
    assert describe_url("https://x/poi", {"apikey": "a", "n": 5}) == "https://x/poi?apikey=***&n=5"
    assert describe_url("https://x/poi?token=abc&n=5") == "https://x/poi?token=***&n=5"
    assert describe_url("https://x/poi?Key=abc", {"n": 5}) == "https://x/poi?Key=***&n=5"


def test_retry_after_seconds():
    assert retry_after_seconds(None, 1.5) == 1.5
    assert retry_after_seconds("3", 1.5) == 3.0
    assert retry_after_seconds("-4", 1.5) == 0.0
    assert retry_after_seconds("99999", 1.5) == MAX_RETRY_AFTER_S
    assert retry_after_seconds("not a date", 1.5) == 1.5
    in_a_minute = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=60), usegmt=True)
    assert 55 <= retry_after_seconds(in_a_minute, 1.5) <= 60
    naive_gmt = (datetime.now(timezone.utc) + timedelta(seconds=60)).strftime("%a, %d %b %Y %H:%M:%S -0000")
    assert 55 <= retry_after_seconds(naive_gmt, 1.5) <= 60
