"""Retries under faults, against a real loopback server, for ``Client`` and ``AsyncClient``.

Guarantees (docs/reliability.md):

* 408/409/429/500/502/503/504 are retried and the caller gets the answer of the attempt that
  worked; the server sees exactly one request per attempt.
* A server-asked wait (``retry-after-ms``, ``Retry-After`` in seconds or as an HTTP date) is
  honoured and capped at ``max_retry_after``.
* When retries are spent the last status comes out as its typed error, ``args == (status,
  text)``; 400/401/403/404/422 are never retried.
* Connection resets and refused connections are retried; a port with nothing listening ends
  in ``APIConnectionError``.
* ``with_options(max_retries=...)`` overrides the retry count for one call.

Server-asked waits are read from the client's INFO log line ``retry N in X.XXs`` (the delay
it is about to sleep), so no assertion depends on a clock.
"""

from __future__ import annotations

import email.utils
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from aleph_alpha_client._exceptions import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    BusyError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutError,
    UnprocessableEntityError,
)
from aleph_alpha_client.chat import ChatRequest, ChatResponse, Message, Role
from conftest import TRANSPORT_MODES, run_client
from scripted_server import Reply, ScriptedServer

MODES = TRANSPORT_MODES
REQUEST = ChatRequest(model="m", messages=[Message(role=Role.User, content="hi")])


def chat_ok(text: str = "hello") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "model": "m",
        "created": 1,
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": text},
            }
        ],
        "usage": {"completion_tokens": 1, "prompt_tokens": 2, "total_tokens": 3},
    }


def run(mode: str, host: str, call: Callable[[Any], Any], **kwargs: Any) -> Any:
    """Run ``call`` on a client of ``mode`` (see conftest.run_client)."""
    kwargs.setdefault("total_retries", 3)
    return run_client(mode, host, call, **kwargs)


def chat(c: Any) -> Any:
    return c.chat(REQUEST, "m")


def retry_delays(caplog: pytest.LogCaptureFixture) -> list[float]:
    """The waits the client announced before each retry, in order."""
    delays = []
    for record in caplog.records:
        match = re.search(r"retry \d+ in ([0-9.]+)s$", record.getMessage())
        if match:
            delays.append(float(match.group(1)))
    return delays


# ------------------------------------------------------------------ retried statuses


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("status", [503, 429, 500, 502, 504, 408, 409])
def test_retried_status_then_success(server: ScriptedServer, mode: str, status: int) -> None:
    server.add(
        Reply.json({"error": "try later", "code": "X"}, status, {"Retry-After": "0"}),
        Reply.json({"error": "try later", "code": "X"}, status, {"retry-after-ms": "10"}),
        Reply.json(chat_ok("third time lucky")),
    )
    result = run(mode, server.url, chat)
    assert isinstance(result, ChatResponse)
    assert result.message.content == "third time lucky"
    assert len(server.received) == 3
    # Every attempt is the same request: same path, same bytes.
    assert {r.path for r in server.received} == {"/chat/completions"}
    assert len({r.body for r in server.received}) == 1


@pytest.mark.parametrize("mode", MODES)
def test_retry_after_seconds_and_ms_are_honoured(
    server: ScriptedServer, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aleph_alpha_client")
    server.add(
        Reply.json({"error": "busy"}, 503, {"Retry-After": "0"}),
        Reply.json({"error": "slow down"}, 429, {"retry-after-ms": "10"}),
        # retry-after-ms wins over Retry-After when both are sent.
        Reply.json({"error": "busy"}, 503, {"retry-after-ms": "20", "Retry-After": "7"}),
        Reply.json(chat_ok()),
    )
    assert run(mode, server.url, chat).message.content == "hello"
    assert retry_delays(caplog) == [0.0, 0.01, 0.02]


@pytest.mark.parametrize("mode", MODES)
def test_retry_after_http_date(
    server: ScriptedServer, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aleph_alpha_client")
    past = email.utils.formatdate(time.time() - 60, usegmt=True)
    future = email.utils.formatdate(time.time() + 3600, usegmt=True)
    server.add(
        Reply.json({"error": "busy"}, 503, {"Retry-After": past}),
        Reply.json({"error": "busy"}, 503, {"Retry-After": future}),
        Reply.json(chat_ok()),
    )
    result = run(mode, server.url, chat, max_retry_after=0.03)
    assert result.message.content == "hello"
    # A date in the past means "now"; a date an hour away is capped at max_retry_after.
    # (Without parsing the date the client would use its jittered back-off of >= 0.125 s.)
    assert retry_delays(caplog) == [0.0, 0.03]


@pytest.mark.parametrize("mode", MODES)
def test_server_asked_wait_is_capped(
    server: ScriptedServer, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aleph_alpha_client")
    server.add(
        Reply.json({"error": "busy"}, 503, {"Retry-After": "3600"}),
        Reply.json({"error": "slow"}, 429, {"retry-after-ms": "3600000"}),
        Reply.json(chat_ok()),
    )
    result = run(mode, server.url, chat, max_retry_after=0.02)
    assert result.message.content == "hello"
    assert retry_delays(caplog) == [0.02, 0.02]


@pytest.mark.parametrize("mode", MODES)
def test_with_options_max_retry_after_caps_one_call(
    server: ScriptedServer, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aleph_alpha_client")
    server.add(Reply.json({"error": "busy"}, 503, {"Retry-After": "3600"}), Reply.json(chat_ok()))
    result = run(
        mode, server.url, lambda c: c.with_options(max_retry_after=0.01).chat(REQUEST, "m")
    )
    assert result.message.content == "hello"
    assert retry_delays(caplog) == [0.01]


# ------------------------------------------------------------------ retries exhausted


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("status", "error", "builtin"),
    [
        (503, BusyError, RuntimeError),
        (429, RateLimitError, RuntimeError),
        (500, InternalServerError, RuntimeError),
        (502, InternalServerError, RuntimeError),
        (504, InternalServerError, RuntimeError),
        (408, RequestTimeoutError, TimeoutError),
        (409, ConflictError, RuntimeError),
    ],
)
def test_retries_exhausted_raise_last_status(
    server: ScriptedServer, mode: str, status: int, error: type, builtin: type
) -> None:
    server.add(
        Reply.json({"error": "first", "code": "A"}, status, {"Retry-After": "0"}),
        Reply.json({"error": "second", "code": "B"}, status, {"Retry-After": "0"}),
    )
    last_body = f'{{"error":"last {status}","code":"C"}}'
    server.add(
        Reply(
            status, {"Content-Type": "application/json", "Retry-After": "0"}, [last_body.encode()]
        )
    )
    with pytest.raises(error) as info:
        run(mode, server.url, chat, total_retries=2)
    err = info.value
    assert isinstance(err, builtin)
    assert isinstance(err, APIStatusError)
    assert err.args == (status, last_body)
    assert err.status_code == status
    assert err.code == "C"
    assert f"last {status}" in str(err)
    assert len(server.received) == 3


@pytest.mark.parametrize("mode", MODES)
def test_busy_error_is_still_a_busy_error_with_plain_text_body(
    server: ScriptedServer, mode: str
) -> None:
    server.default = Reply(503, {"Content-Type": "text/plain", "Retry-After": "0"}, [b"Busy."])
    with pytest.raises(BusyError) as info:
        run(mode, server.url, chat, total_retries=1)
    assert info.value.args == (503, "Busy.")
    assert len(server.received) == 2


# ------------------------------------------------------------------ never retried


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (422, UnprocessableEntityError),
    ],
)
def test_client_errors_are_never_retried(
    server: ScriptedServer, mode: str, status: int, error: type
) -> None:
    # Even a Retry-After header does not make them retryable.
    server.default = Reply.json({"error": f"nope {status}"}, status, {"Retry-After": "0"})
    with pytest.raises(error) as info:
        run(mode, server.url, chat, total_retries=5)
    assert info.value.args[0] == status
    assert len(server.received) == 1


# ------------------------------------------------------------------ transport failures


@pytest.mark.parametrize("mode", MODES)
def test_connection_reset_is_retried(server: ScriptedServer, mode: str) -> None:
    server.add(Reply(reset=True), Reply(reset=True), Reply.json(chat_ok("after resets")))
    assert run(mode, server.url, chat).message.content == "after resets"
    assert len(server.received) == 3


@pytest.mark.parametrize("mode", MODES)
def test_reset_on_every_attempt_raises_connection_error(server: ScriptedServer, mode: str) -> None:
    server.default = Reply(reset=True)
    with pytest.raises(APIConnectionError) as info:
        run(mode, server.url, chat, total_retries=1)
    assert isinstance(info.value, ConnectionError)
    assert len(server.received) == 2


def _free_port() -> int:
    """A loopback port with nothing listening on it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


@pytest.mark.parametrize("mode", MODES)
def test_refused_connection_retried_then_api_connection_error(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aleph_alpha_client")
    host = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(APIConnectionError) as info:
        run(mode, host, chat, total_retries=2)
    err = info.value
    assert isinstance(err, ConnectionError)
    assert err.url == host + "/chat/completions"
    # Two retries were announced (each after a refused attempt).
    assert len(retry_delays(caplog)) == 2


class _OneShotServer:
    """Answers one HTTP request on a given port with a fixed JSON body, then stops."""

    def __init__(self, port: int, body: bytes) -> None:
        self.requests = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self._sock.listen(8)
        self._body = body
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self._sock.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, rest = data.partition(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
            while len(rest) < length:
                rest += conn.recv(65536)
            self.requests += 1
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                + f"Content-Length: {len(self._body)}\r\n\r\n".encode()
                + self._body
            )

    def close(self) -> None:
        self._sock.close()
        self._thread.join(timeout=5)


@pytest.mark.parametrize("mode", MODES)
def test_refused_then_listening_succeeds(mode: str) -> None:
    """The first attempt is refused; a server comes up on that port before the retry."""
    port = _free_port()
    started: list[_OneShotServer] = []

    class StartServerOnFirstRetry(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if not started and "retry 1 in" in record.getMessage():
                started.append(_OneShotServer(port, json.dumps(chat_ok("came up")).encode()))

    handler = StartServerOnFirstRetry()
    log = logging.getLogger("aleph_alpha_client")
    old_level = log.level
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    try:
        result = run(mode, f"http://127.0.0.1:{port}", chat, total_retries=3)
    finally:
        log.removeHandler(handler)
        log.setLevel(old_level)
        for srv in started:
            srv.close()
    assert result.message.content == "came up"
    assert started[0].requests == 1


# ------------------------------------------------------------------ per-call override


@pytest.mark.parametrize("mode", MODES)
def test_with_options_max_retries_raises_the_budget(server: ScriptedServer, mode: str) -> None:
    busy = Reply.json({"error": "busy"}, 503, {"Retry-After": "0"})
    server.add(busy, busy, busy, Reply.json(chat_ok("made it")))
    result = run(
        mode,
        server.url,
        lambda c: c.with_options(max_retries=3).chat(REQUEST, "m"),
        total_retries=0,
    )
    assert result.message.content == "made it"
    assert len(server.received) == 4


@pytest.mark.parametrize("mode", MODES)
def test_with_options_max_retries_zero_sends_once(server: ScriptedServer, mode: str) -> None:
    server.default = Reply.json({"error": "busy"}, 503, {"Retry-After": "0"})
    with pytest.raises(BusyError):
        run(
            mode,
            server.url,
            lambda c: c.with_options(max_retries=0).chat(REQUEST, "m"),
            total_retries=5,
        )
    assert len(server.received) == 1


@pytest.mark.parametrize("mode", MODES)
def test_with_options_does_not_change_the_original(server: ScriptedServer, mode: str) -> None:
    server.default = Reply.json({"error": "busy"}, 503, {"Retry-After": "0"})

    def call(c: Any) -> Any:
        c.with_options(max_retries=0)
        return c.chat(REQUEST, "m")

    with pytest.raises(BusyError):
        run(mode, server.url, call, total_retries=2)
    assert len(server.received) == 3


@pytest.mark.parametrize("mode", MODES)
def test_stream_request_status_retried_too(server: ScriptedServer, mode: str) -> None:
    """A 503 before a stream starts is retried like any request."""
    server.add(
        Reply.json({"error": "busy"}, 503, {"Retry-After": "0"}),
        Reply(reset=True),
        Reply.sse(
            [
                {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
                {"choices": [{"index": 0, "delta": {"content": "ok"}}]},
                {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            ]
        ),
    )

    result = run(
        mode, server.url, lambda c: c.chat_with_streaming(REQUEST, "m").get_final_response()
    )
    assert result.message.content == "ok"
    assert len(server.received) == 3
