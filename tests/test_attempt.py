"""The attempt machine (``_attempt.AttemptDriver``) on its own: pure steps, no socket, no sleep.

Each test plays the shell's part by hand: it takes the step the machine returns, "does" it
(hands over a fake response, a body, a connection error, a fresh token) and checks the next
step. What is checked is what the machine decides: send what, sleep how long, hand back which
response, raise which typed error, refresh the token when.
"""

from __future__ import annotations

from typing import Any

import pytest

from aleph_alpha_client._attempt import AttemptDriver, Done, Raise, Read, Refresh, Send, Sleep
from aleph_alpha_client._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    AuthenticationError,
    BusyError,
    IncompleteStreamError,
    InternalServerError,
    StreamEventError,
)
from aleph_alpha_client._request import HTTPRequest
from aleph_alpha_client._retry import RetryPolicy
from aleph_alpha_client._wire import MAX_REDIRECTS

URL = "https://api.example.com/complete"
BODY = b'{"model": "m", "prompt": "hi"}'


class FakeResponse:
    """What the machine needs of a response: status, headers, close()."""

    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.headers: dict[str, str] = headers or {}
        self.closed = False

    def close(self) -> None:
        self.closed = True


def make_request(token: str | None = "static") -> HTTPRequest:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return HTTPRequest("POST", URL, headers, BODY)


def driver_for(request: HTTPRequest | None = None, **policy: Any) -> AttemptDriver[FakeResponse]:
    return AttemptDriver(request or make_request(), RetryPolicy(**policy))


def send_of(step: object) -> HTTPRequest:
    assert isinstance(step, Send), step
    return step.request


def seconds_of(step: object) -> float:
    assert isinstance(step, Sleep), step
    return step.seconds


def error_of(step: object) -> BaseException:
    assert isinstance(step, Raise), step
    return step.error


def answer(driver: AttemptDriver[FakeResponse], response: FakeResponse, body: bytes = b"") -> Any:
    """Hand ``response`` to the machine; an error status is read at once (its body)."""
    step = driver.received(response)
    if isinstance(step, Read):
        assert step.response is response
        return driver.read(response, body)
    return step


# --------------------------------------------------------------------------- success


def test_a_success_at_once_is_done_with_the_open_response() -> None:
    request = make_request()
    driver = driver_for(request)
    assert send_of(driver.start()) is request
    ok = FakeResponse(200)
    step = driver.received(ok)
    assert isinstance(step, Done) and step.response is ok
    assert not ok.closed  # handed to the caller, who reads it
    assert driver.attempt == 0


# --------------------------------------------------------------------------- retries


def test_a_503_is_read_then_slept_for_its_retry_after_then_sent_again() -> None:
    request = make_request()
    driver = driver_for(request, max_retries=3)
    send_of(driver.start())
    busy = FakeResponse(503, {"retry-after": "2"})
    step = driver.received(busy)
    assert isinstance(step, Read) and step.response is busy  # the error body is read first
    assert seconds_of(driver.read(busy, b'{"error": "busy"}')) == 2.0
    assert driver.attempt == 1
    assert send_of(driver.start()) is request  # the same request again
    ok = FakeResponse(200)
    assert isinstance(driver.received(ok), Done)


def test_retry_after_ms_wins_and_a_long_retry_after_is_capped() -> None:
    driver = driver_for(max_retries=3, max_retry_after=5.0)
    driver.start()
    assert seconds_of(answer(driver, FakeResponse(503, {"retry-after-ms": "250"}))) == 0.25
    driver.start()
    assert seconds_of(answer(driver, FakeResponse(429, {"retry-after": "120"}))) == 5.0


def test_without_retry_after_the_wait_is_the_jittered_backoff() -> None:
    driver = driver_for(max_retries=3, initial_backoff=1.0, max_backoff=8.0)
    for attempt in range(3):
        driver.start()
        base = min(8.0, 2.0**attempt)
        assert base / 2 <= seconds_of(answer(driver, FakeResponse(502))) <= base


def test_an_exhausted_retry_budget_raises_the_typed_status_error() -> None:
    driver = driver_for(max_retries=2)
    for _ in range(2):
        send_of(driver.start())
        assert seconds_of(answer(driver, FakeResponse(503, {"retry-after": "0"}))) == 0.0
    send_of(driver.start())
    error = error_of(answer(driver, FakeResponse(503), b'{"error": "still busy"}'))
    assert isinstance(error, BusyError) and isinstance(error, InternalServerError)
    assert error.status_code == 503
    assert error.url == URL
    assert driver.attempt == 2  # three attempts: max_retries + 1


def test_a_status_that_is_not_retried_raises_at_once() -> None:
    driver = driver_for(max_retries=5)
    driver.start()
    error = error_of(answer(driver, FakeResponse(400), b'{"error": "bad"}'))
    assert type(error).__name__ == "BadRequestError"
    assert driver.attempt == 0


def test_connection_errors_are_retried_until_the_budget_is_spent() -> None:
    driver = driver_for(max_retries=1, initial_backoff=0.5)
    driver.start()
    refused = APIConnectionError("refused", url=URL)
    assert 0.25 <= seconds_of(driver.failed(refused)) <= 0.5
    assert driver.attempt == 1
    driver.start()
    again = APIConnectionError("refused again", url=URL)
    assert error_of(driver.failed(again)) is again  # the transport's own error, raised


def test_a_read_timeout_and_an_unretryable_failure_are_not_retried() -> None:
    driver = driver_for(max_retries=5)
    driver.start()
    timeout = APITimeoutError("read timed out", url=URL, phase="read")
    assert error_of(driver.failed(timeout)) is timeout
    certificate = APIConnectionError("certificate verify failed", retryable=False)
    assert error_of(driver.failed(certificate)) is certificate
    connect = APITimeoutError("connect timed out", url=URL, phase="connect")
    assert isinstance(driver.failed(connect), Sleep)  # nothing was sent: safe to retry


# --------------------------------------------------------------------------- redirects


def test_a_same_origin_redirect_is_followed_with_method_body_and_token() -> None:
    driver = driver_for()
    driver.start()
    moved = FakeResponse(307, {"location": "/v2/complete"})
    follow = send_of(driver.received(moved))
    assert moved.closed  # the machine does not hand a redirect back: it closes it
    assert follow.url == "https://api.example.com/v2/complete"
    assert (follow.method, follow.body) == ("POST", BODY)
    assert follow.headers["Authorization"] == "Bearer static"
    ok = FakeResponse(200)
    step = driver.received(ok)
    assert isinstance(step, Done) and step.response is ok


def test_a_cross_origin_redirect_drops_the_token() -> None:
    driver = driver_for()
    driver.start()
    moved = FakeResponse(302, {"location": "https://elsewhere.example.org/complete"})
    follow = send_of(driver.received(moved))
    assert follow.url == "https://elsewhere.example.org/complete"
    assert not any(key.lower() == "authorization" for key in follow.headers)
    assert (follow.method, follow.body) == ("GET", None)  # 302 after a POST: a GET
    assert "Content-Type" not in follow.headers
    assert driver.request is follow


def test_an_upgrade_to_https_on_the_same_host_keeps_the_token() -> None:
    request = HTTPRequest("GET", "http://api.example.com/models", {"Authorization": "Bearer t"})
    driver = driver_for(request)
    driver.start()
    follow = send_of(driver.received(FakeResponse(301, {"location": "https://api.example.com/m"})))
    assert follow.headers["Authorization"] == "Bearer t"


def test_too_many_redirects_raise_and_close_the_last_one() -> None:
    driver = driver_for()
    driver.start()
    for i in range(MAX_REDIRECTS):
        send_of(driver.received(FakeResponse(308, {"location": f"/hop{i}"})))
    last = FakeResponse(308, {"location": "/one-more"})
    error = error_of(driver.received(last))
    assert isinstance(error, APIResponseValidationError)
    assert "/one-more" in str(error)
    assert last.closed


def test_a_redirect_without_location_or_to_a_bad_url_raises() -> None:
    driver = driver_for()
    driver.start()
    nowhere = FakeResponse(302)
    assert isinstance(error_of(driver.received(nowhere)), APIResponseValidationError)
    assert nowhere.closed
    bad = FakeResponse(302, {"location": "http://h:99999/x"})
    assert isinstance(error_of(driver.received(bad)), APIResponseValidationError)
    assert bad.closed


# --------------------------------------------------------------------------- token refresh


def test_a_401_with_a_token_callable_refreshes_once_then_raises() -> None:
    driver = driver_for(make_request(token=None), max_retries=3)
    driver.authorize("one")
    assert send_of(driver.start()).headers["Authorization"] == "Bearer one"
    assert isinstance(answer(driver, FakeResponse(401)), Refresh)
    resent = send_of(driver.refreshed("two"))
    assert resent.headers["Authorization"] == "Bearer two"
    error = error_of(answer(driver, FakeResponse(401), b'{"error": "expired"}'))
    assert isinstance(error, AuthenticationError) and error.status_code == 401
    assert driver.attempt == 0  # a refresh is not a retry


def test_a_401_after_a_refresh_and_a_success_is_done() -> None:
    driver = driver_for(make_request(token=None))
    driver.authorize("old")
    driver.start()
    assert isinstance(answer(driver, FakeResponse(401)), Refresh)
    send_of(driver.refreshed("new"))
    assert isinstance(driver.received(FakeResponse(200)), Done)


def test_a_static_token_gets_no_refresh() -> None:
    driver = driver_for(make_request(token="static"))
    driver.start()
    assert isinstance(error_of(answer(driver, FakeResponse(401))), AuthenticationError)


def test_no_refresh_when_a_redirect_dropped_the_token() -> None:
    driver = driver_for(make_request(token=None))
    driver.authorize("one")
    driver.start()
    send_of(driver.received(FakeResponse(307, {"location": "https://other.example.org/x"})))
    assert isinstance(error_of(answer(driver, FakeResponse(401))), AuthenticationError)


# --------------------------------------------------------------------------- streams


def test_a_stream_failing_before_its_first_token_is_sent_again_from_the_original() -> None:
    request = make_request()
    driver = driver_for(request, max_retries=3, initial_backoff=0.1)
    driver.start()
    send_of(driver.received(FakeResponse(307, {"location": "/v2/complete"})))
    assert isinstance(driver.received(FakeResponse(200)), Done)
    cut = IncompleteStreamError("the stream ended early")
    assert 0.05 <= seconds_of(driver.stream_failed(cut, started=False)) <= 0.1
    assert driver.attempt == 1
    assert send_of(driver.start()) is request  # the original request, not the redirect


def test_a_stream_failing_after_its_first_token_is_raised() -> None:
    driver = driver_for(max_retries=3)
    driver.start()
    assert isinstance(driver.received(FakeResponse(200)), Done)
    cut = IncompleteStreamError("the stream ended early")
    assert error_of(driver.stream_failed(cut, started=True)) is cut
    overloaded = StreamEventError("model overloaded", code="OVERLOADED")
    assert error_of(driver.stream_failed(overloaded, started=True)) is overloaded
    assert driver.attempt == 0


def test_a_stream_error_event_before_the_first_token_is_retried_only_if_transient() -> None:
    driver = driver_for(max_retries=3)
    driver.start()
    overloaded = StreamEventError("model overloaded", code="OVERLOADED")
    assert isinstance(driver.stream_failed(overloaded, started=False), Sleep)
    driver.start()
    invalid = StreamEventError("invalid request", code="BAD_REQUEST")
    assert error_of(driver.stream_failed(invalid, started=False)) is invalid


def test_stream_restarts_share_the_retry_budget_with_the_other_attempts() -> None:
    driver = driver_for(max_retries=2)
    driver.start()
    assert isinstance(answer(driver, FakeResponse(503, {"retry-after": "0"})), Sleep)
    driver.start()
    driver.received(FakeResponse(200))
    cut = IncompleteStreamError("cut")
    assert isinstance(driver.stream_failed(cut, started=False), Sleep)
    driver.start()
    driver.received(FakeResponse(200))
    last = IncompleteStreamError("cut again")
    assert error_of(driver.stream_failed(last, started=False)) is last
    assert driver.attempt == 2


@pytest.mark.parametrize("attempt", [0, 4])
def test_the_attempt_count_given_is_where_the_budget_starts(attempt: int) -> None:
    driver: AttemptDriver[FakeResponse] = AttemptDriver(
        make_request(), RetryPolicy(max_retries=4), attempt
    )
    driver.start()
    step = answer(driver, FakeResponse(503, {"retry-after": "1"}))
    assert isinstance(step, Sleep if attempt < 4 else Raise)
