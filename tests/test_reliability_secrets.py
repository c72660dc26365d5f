"""Secrets stay secret: the token is sent as ``Authorization`` to the configured host and
nowhere else, and never shows up in a repr, a message or a log line.

Guarantees (docs/reliability.md), for ``Client`` and ``AsyncClient``:

* ``repr``/``str`` of clients (and their ``with_options`` copies), their config, built
  requests, responses, streams and every error (status errors, connection errors, timeouts,
  with their whole ``__cause__`` chain and formatted traceback) hold no token.
* Log output at DEBUG (the package's logger, asyncio; and the stderr handler
  that ``ALEPH_ALPHA_LOG=debug`` installs) holds no token; the headers it logs show
  ``Bearer ***``.
* ``Authorization`` is dropped when a redirect leaves the origin (another host or port) and
  kept on a same-origin redirect.
* TLS certificates are verified by default (a self-signed loopback server is refused before
  any HTTP request is sent); ``verify_ssl=False`` warns, then works.
"""

from __future__ import annotations

import gc
import logging
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aleph_alpha_client import AsyncClient, Client
from aleph_alpha_client._exceptions import (
    AlephAlphaError,
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BusyError,
)
from aleph_alpha_client._streaming import AsyncStream
from aleph_alpha_client._wire import build_request
from aleph_alpha_client.chat import ChatRequest, Message, Role
from conftest import TOKEN, TRANSPORT_MODES, run_client
from scripted_server import Reply, ScriptedServer

MODES = TRANSPORT_MODES
REQUEST = ChatRequest(model="m", messages=[Message(role=Role.User, content="hi")])
CHAT_OK = {
    "choices": [
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}
    ]
}
SSE_OK = [
    {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "ok"}}]},
    {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
]
SECRET_PART = TOKEN.split("-")[2]  # "SECRET": catches partial leaks too


def run(mode: str, host: str, call: Callable[[Any], Any], **kwargs: Any) -> Any:
    """Run ``call`` on a client of ``mode`` (see conftest.run_client)."""
    return run_client(mode, host, call, **kwargs)


def assert_clean(text: str) -> None:
    assert TOKEN not in text
    assert SECRET_PART not in text


def assert_error_clean(err: BaseException) -> None:
    """The error, its causes and its formatted traceback hold no token."""
    assert_clean("".join(traceback.format_exception(type(err), err, err.__traceback__)))
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        assert_clean(str(current))
        assert_clean(repr(current))
        assert_clean(repr(current.args))
        current = current.__cause__ or current.__context__


def chat(c: Any) -> Any:
    return c.chat(REQUEST, "m")


def stream_all(c: Any) -> Any:
    stream = c.chat_with_streaming(REQUEST, "m")
    if isinstance(stream, AsyncStream):

        async def go() -> Any:
            items = [item async for item in stream]
            assert_clean(repr(stream))
            assert_clean(repr(stream._holder.response))
            return items

        return go()
    items = list(stream)
    assert_clean(repr(stream))
    assert_clean(repr(stream._holder.response))
    return items


# ------------------------------------------------------------------ reprs


def test_reprs_hold_no_token() -> None:
    for cls in (Client, AsyncClient):
        client = cls(TOKEN, host="http://127.0.0.1:9")
        copy = client.with_options(max_retries=1, timeout=3)
        for obj in (client, copy, client._config, copy._config):
            assert_clean(repr(obj))
            assert_clean(str(obj))
        assert client.token == TOKEN  # still there for those who ask for it
    client = Client(TOKEN, host="http://127.0.0.1:9")
    request = build_request(client._config, client._headers, "chat/completions", REQUEST, "m")
    assert_clean(repr(request))
    assert_clean(str(request))
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize("mode", MODES)
def test_response_and_stream_reprs(server: ScriptedServer, mode: str) -> None:
    server.default = Reply.sse(SSE_OK)
    run(mode, server.url, stream_all)


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize("mode", MODES)
def test_status_errors_hold_no_token(server: ScriptedServer, mode: str) -> None:
    server.add(
        Reply.json({"error": "bad token", "code": "UNAUTHENTICATED"}, 401),
        Reply.json({"error": "busy"}, 503, {"x-request-id": "req-1"}),
    )
    with pytest.raises(AuthenticationError) as info:
        run(mode, server.url, chat)
    assert_error_clean(info.value)
    with pytest.raises(BusyError) as busy:
        run(mode, server.url, chat)
    assert_error_clean(busy.value)
    assert busy.value.request_id == "req-1"
    # The token did go out, to the configured host only.
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in server.received)


@pytest.mark.parametrize("mode", MODES)
def test_connection_errors_hold_no_token(mode: str) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(APIConnectionError) as info:
        run(mode, f"http://127.0.0.1:{port}", chat)
    assert_error_clean(info.value)


@pytest.mark.parametrize("mode", MODES)
def test_reset_and_timeout_errors_hold_no_token(server: ScriptedServer, mode: str) -> None:
    server.add(Reply(reset=True))
    with pytest.raises(APIConnectionError) as info:
        run(mode, server.url, chat)
    assert_error_clean(info.value)
    slow = Reply.json(CHAT_OK)
    slow.delay = 30
    server.add(slow)
    with pytest.raises(APITimeoutError) as timeout:
        run(mode, server.url, chat, request_timeout_seconds=0.2)
    assert_error_clean(timeout.value)


# ------------------------------------------------------------------ logs


@pytest.mark.parametrize("mode", MODES)
def test_debug_logs_hold_no_token(
    server: ScriptedServer, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # root: ours, urllib3, aiohttp, asyncio
    server.add(
        Reply.json({"error": "busy"}, 503, {"Retry-After": "0"}),
        Reply(reset=True),
        Reply.json(CHAT_OK),
        Reply.sse(SSE_OK),
        Reply.json({"error": "nope"}, 401),
    )

    def calls(c: Any) -> Any:
        if isinstance(c, AsyncClient):

            async def go() -> None:
                await c.chat(REQUEST, "m")
                await stream_all(c)
                with pytest.raises(AuthenticationError):
                    await c.chat(REQUEST, "m")

            return go()
        c.chat(REQUEST, "m")
        stream_all(c)
        with pytest.raises(AuthenticationError):
            c.chat(REQUEST, "m")
        return None

    run(mode, server.url, calls, total_retries=3)
    text = "\n".join(
        record.getMessage() + repr(record.args) + repr(record.__dict__) for record in caplog.records
    )
    assert_clean(text)
    assert_clean(caplog.text)
    assert "Bearer ***" in text  # headers were logged, redacted
    assert "retry 1" in text and "retry 2" in text


def test_aleph_alpha_log_debug_to_stderr(server: ScriptedServer) -> None:
    """``ALEPH_ALPHA_LOG=debug`` logs requests to stderr, the token redacted (a fresh
    interpreter, as the variable is read once per process)."""
    server.add(
        Reply.json({"error": "busy"}, 503, {"Retry-After": "0"}),
        Reply.json(CHAT_OK),
        Reply.json(CHAT_OK),
        Reply.json({"error": "nope"}, 401),
    )
    script = """
import asyncio
from aleph_alpha_client import AsyncClient, Client
from aleph_alpha_client.chat import ChatRequest, Message, Role
request = ChatRequest(model="m", messages=[Message(role=Role.User, content="hi")])
with Client(total_retries=2) as c:
    c.chat(request, "m")
async def main():
    async with AsyncClient() as c:
        await c.chat(request, "m")
        try:
            await c.chat(request, "m")
        except Exception as err:
            print("raised", type(err).__name__, err)
asyncio.run(main())
"""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.upper().endswith("_PROXY") and key not in ("AA_TOKEN",)
    }
    env.update(ALEPH_ALPHA_LOG="debug", ALEPH_ALPHA_API_KEY=TOKEN, ALEPH_ALPHA_BASE_URL=server.url)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "raised AuthenticationError" in done.stdout
    assert "-> 503" in done.stderr and "-> 200" in done.stderr and "-> 401" in done.stderr
    assert "Bearer ***" in done.stderr
    assert_clean(done.stderr)
    assert_clean(done.stdout)
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in server.received)


# ------------------------------------------------------------------ redirects


@pytest.fixture
def other_server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    try:
        yield srv
    finally:
        srv.close()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("host_name", ["localhost", "127.0.0.1"])
@pytest.mark.parametrize("status", [307, 308])
def test_redirect_to_another_origin_drops_authorization(
    server: ScriptedServer, other_server: ScriptedServer, mode: str, host_name: str, status: int
) -> None:
    target = f"http://{host_name}:{other_server.port}/elsewhere/chat/completions"
    server.default = Reply(status, {"Location": target, "Content-Length": "0"}, [])
    other_server.default = Reply.json(CHAT_OK)
    assert run(mode, server.url, chat).message.content == "ok"
    assert server.received[0].headers["authorization"] == f"Bearer {TOKEN}"
    (forwarded,) = other_server.received
    assert forwarded.path == "/elsewhere/chat/completions"
    assert "authorization" not in forwarded.headers
    assert_clean(repr(forwarded.headers))
    assert forwarded.body == server.received[0].body  # 307/308 keep the body


@pytest.mark.parametrize("mode", MODES)
def test_same_origin_redirect_keeps_authorization(server: ScriptedServer, mode: str) -> None:
    server.add(Reply(307, {"Location": "/v2/chat/completions", "Content-Length": "0"}, []))
    server.add(Reply.json(CHAT_OK))
    assert run(mode, server.url, chat).message.content == "ok"
    _, second = server.received
    assert second.path == "/v2/chat/completions"
    assert second.headers["authorization"] == f"Bearer {TOKEN}"


# ------------------------------------------------------------------ TLS


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed: cannot make a self-signed certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


class TLSServer:
    """One-connection-at-a-time HTTPS server on loopback; records the requests it reads."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.requests: list[bytes] = []
        self.handshake_failures = 0
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self.url = f"https://127.0.0.1:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        body = (
            b'{"choices":[{"finish_reason":"stop","message":{"role":"assistant","content":"tls"}}]}'
        )
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            conn.settimeout(5)
            try:
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    data = b""
                    while b"\r\n\r\n" not in data:
                        data += tls.recv(65536)
                    head, _, rest = data.partition(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":")[1])
                    while len(rest) < length:
                        rest += tls.recv(65536)
                    self.requests.append(head)
                    tls.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                        + f"Content-Length: {len(body)}\r\n\r\n".encode()
                        + body
                    )
            except (ssl.SSLError, OSError):
                self.handshake_failures += 1
                conn.close()

    def close(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self._sock.close()
        self._thread.join(timeout=5)


@pytest.fixture
def tls_server(self_signed: tuple[Path, Path]) -> Iterator[TLSServer]:
    srv = TLSServer(*self_signed)
    try:
        yield srv
    finally:
        srv.close()


@pytest.mark.parametrize("mode", MODES)
def test_tls_verified_by_default(tls_server: TLSServer, mode: str) -> None:
    with pytest.raises(APIConnectionError) as info:
        run(mode, tls_server.url, chat)
    assert not isinstance(info.value, APITimeoutError)
    text = str(info.value).lower()
    assert "certificate" in text or "tls" in text or "ssl" in text
    assert_error_clean(info.value)
    assert tls_server.requests == []  # nothing (and no token) went over the unverified link


# requests adds urllib3's own InsecureRequestWarning, which this test counts as extra.
@pytest.mark.parametrize("mode", [m for m in MODES if not m.endswith("-requests")])
def test_verify_ssl_false_warns_then_works(tls_server: TLSServer, mode: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run(mode, tls_server.url, chat, verify_ssl=False)
    # one warning, when the client is built; none per request
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "verify_ssl=False" in messages[0], messages
    assert result.message.content == "tls"
    assert len(tls_server.requests) == 1
    gc.collect()


def test_verify_ssl_default_is_true() -> None:
    for cls in (Client, AsyncClient):
        assert cls(TOKEN, host="https://127.0.0.1:9")._config.verify_ssl is True


def test_token_only_in_authorization_header(server: ScriptedServer) -> None:
    """The token is in no other header, in no URL and in no body."""
    server.default = Reply.json(CHAT_OK)
    run("sync", server.url, chat)
    run("async", server.url, chat)
    for received in server.received:
        others = {k: v for k, v in received.headers.items() if k != "authorization"}
        assert_clean(repr(others))
        assert_clean(received.path)
        assert_clean(received.body.decode())


def test_all_errors_are_ours(server: ScriptedServer) -> None:
    """Sanity: the errors checked above are the package's own, not foreign ones."""
    server.default = Reply(reset=True)
    with pytest.raises(AlephAlphaError):
        run("sync", server.url, chat)
