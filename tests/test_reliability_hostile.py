"""A hostile or broken server (issue 11): only our documented errors, strict framing.

Each case runs over a raw loopback socket on ``Client`` and ``AsyncClient``:

* a status code of non-ASCII digits (``HTTP/1.1 2²³ OK``) is a ``ProtocolError``-backed
  ``APIConnectionError``-family ``AlephAlphaError``, never a bare ``ValueError``;
* a ``Location`` with a bad port or IPv6 literal is an ``APIResponseValidationError``;
* a bare CR in a response header value is replaced by a space (RFC 9112 2.2);
* a chunk size that is not ``1*HEXDIG`` (``1_3f``) is refused;
* a raw-deflate body whose first read holds one byte decodes like the same bytes in one read.

Over the other transports (``TRANSPORT_MODES``) the library parses the answer: each case still
ends in one of our errors (or, for the deflate body, the answer); the exact wording and the
header repair are our parser's.
"""

from __future__ import annotations

import json
import socket
import time
import zlib
from typing import Any

import pytest

from aleph_alpha_client._exceptions import (
    AlephAlphaError,
    APIResponseValidationError,
    InternalServerError,
)
from aleph_alpha_client.chat import ChatRequest, Message, Role
from conftest import TRANSPORT_MODES, modes, run_client
from raw_server import RawServer

MODES = TRANSPORT_MODES
OURS = ("sync", "async")
REQUEST = ChatRequest(model="m", messages=[Message(role=Role.User, content="hi")])
ANSWER = json.dumps(
    {
        "id": "x",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "hello"},
            }
        ],
        "created": 1,
        "model": "m",
        "object": "chat.completion",
    }
).encode()


def answering(*parts: bytes, pause: float = 0.0) -> Any:
    """A handler that answers every request with ``parts``, sent separately."""

    def handler(conn: socket.socket, index: int, server: RawServer) -> None:
        buf = bytearray()
        while server.next_request(conn, buf) is not None:
            for part in parts:
                conn.sendall(part)
                if pause:
                    time.sleep(pause)
            if not parts[0].startswith(b"HTTP/1.1 2") or b"close" in parts[0].lower():
                return

    return handler


def chat(c: Any) -> Any:
    return c.chat(REQUEST, "m")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])  # latin-1: int() took "2²³" apart
def test_non_ascii_status_digits_are_our_error(
    mode: str, encoding: str, make_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    head = "HTTP/1.1 2²³ OK\r\nContent-Length: 0\r\n\r\n".encode(encoding)
    server = make_server(answering(head))
    with caplog.at_level("DEBUG", logger="asyncio"), pytest.raises(AlephAlphaError) as info:
        run_client(mode, f"http://127.0.0.1:{server.port}", chat)
    if mode in OURS:
        assert "malformed status" in str(info.value)
    # the error is ours alone: asyncio logged no "protocol.data_received() call failed"
    assert not [r for r in caplog.records if r.name == "asyncio" and r.levelno >= 30]


@pytest.mark.parametrize("location", ["http://127.0.0.1:99999/x", "http://[::1/x"])
@pytest.mark.parametrize("mode", MODES)
def test_bad_redirect_location_is_our_error(mode: str, location: str, make_server: Any) -> None:
    head = f"HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n"
    server = make_server(answering(head.encode()))
    with pytest.raises(APIResponseValidationError) as info:
        run_client(mode, f"http://127.0.0.1:{server.port}", chat)
    assert "invalid URL" in str(info.value)


@pytest.mark.parametrize("mode", MODES)
def test_bare_cr_in_a_header_value_is_replaced(mode: str, make_server: Any) -> None:
    body = b'{"error":"boom","code":"E"}'
    head = (
        b"HTTP/1.1 500 Internal Server Error\r\nX-Request-Id: abc\rInjected: 1\r\n"
        b"Content-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
    )
    server = make_server(answering(head + body))
    # httpx and aiohttp refuse the header (APIConnectionError); requests ends the line there
    with pytest.raises(InternalServerError if mode in OURS else AlephAlphaError) as info:
        run_client(mode, f"http://127.0.0.1:{server.port}", chat)
    err: Any = info.value
    if isinstance(err, InternalServerError):
        assert all("\r" not in v for v in err.headers.values())
    if mode in OURS:
        assert err.headers["x-request-id"] == "abc Injected: 1"


@pytest.mark.parametrize("size", [b"1_3f", b"0x5", b"+5", b"5 5"])
@pytest.mark.parametrize("mode", MODES)
def test_chunk_size_must_be_hex_digits(mode: str, size: bytes, make_server: Any) -> None:
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    server = make_server(answering(head + size + b"\r\n" + b"x" * 0x3F + b"\r\n0\r\n\r\n"))
    with pytest.raises(AlephAlphaError) as info:
        run_client(mode, f"http://127.0.0.1:{server.port}", chat)
    if mode in OURS:
        assert "malformed chunk size" in str(info.value)


@pytest.mark.parametrize(
    "mode",
    modes(
        skip={
            mode: f"{mode}: httpx's deflate decoder takes a raw-deflate body for zlib when its "
            "first read holds one byte, and fails on the next (an APIConnectionError)"
            for mode in ("sync-httpx", "async-httpx")
        }
    ),
)
def test_raw_deflate_split_after_one_byte_decodes(mode: str, make_server: Any) -> None:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    raw = packer.compress(ANSWER) + packer.flush()
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: deflate\r\n"
        b"Content-Length: " + str(len(raw)).encode() + b"\r\n\r\n"
    )
    server = make_server(answering(head + raw[:1], raw[1:], pause=0.2))
    result = run_client(mode, f"http://127.0.0.1:{server.port}", chat)
    assert result.message.content == "hello"
