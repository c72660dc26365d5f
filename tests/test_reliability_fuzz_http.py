"""Whole hostile responses, fuzzed (issue 11, item 3): nothing but our error types escapes.

Hypothesis builds complete HTTP/1.1 answers (status line, headers, framing, codings, redirect
targets), cut at arbitrary points, and feeds them to the sans-I/O parser
(``ResponseParser``: only ``ProtocolError`` may escape, and no single step hands out more than
``MAX_DECODE_STEP`` bytes), to the redirect logic (only ``APIResponseValidationError``), and
over a real loopback socket to ``Client`` and ``AsyncClient`` (only ``AlephAlphaError``).
The coverage-guided counterpart is ``fuzz/fuzz_http11.py`` (atheris).
"""

from __future__ import annotations

import asyncio
import gzip
import re
import socket
import threading
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from aleph_alpha_client import AsyncClient, Client
from aleph_alpha_client._exceptions import AlephAlphaError, APIResponseValidationError
from aleph_alpha_client._http11 import MAX_DECODE_STEP, ProtocolError, ResponseParser
from aleph_alpha_client._net import split_url
from aleph_alpha_client._transport import HTTPRequest
from aleph_alpha_client._wire import redirect
from aleph_alpha_client.chat import ChatRequest, Message, Role
from conftest import TOKEN
from raw_server import RawServer

FUZZ = settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ------------------------------------------------------------------------- strategies

_text = st.text(st.characters(codec="latin-1"), max_size=12)
_code = st.one_of(
    st.integers(0, 999).map(str),
    st.sampled_from(
        ["2²³", "٢٠٠", "20", "2000", "-20", " 200", "1e2", "0x1", "\uff11\uff10\uff10"]
    ),
    _text,
)
_version = st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2", "HTTP/1.x", "http/1.1", "ICY", ""])
_name = st.sampled_from(
    [
        "Content-Length",
        "Transfer-Encoding",
        "Content-Encoding",
        "Content-Type",
        "Connection",
        "Location",
        "Retry-After",
        "X-Request-Id",
        "X Bad",
        "",
    ]
)
_value = st.one_of(
    _text,
    st.integers(-5, 10**20).map(str),
    st.sampled_from(
        [
            "chunked",
            "gzip, chunked",
            "deflate, chunked",
            "chunked, chunked",
            "br, chunked",
            "gzip",
            "gzip, deflate",
            "identity",
            "close",
            "keep-alive",
            "text/event-stream",
            "application/json",
            "5, 6",
            "1_3f",
            "²",
        ]
    ),
)
_header_block = st.lists(st.tuples(_name, _value), max_size=6)


def _chunked(body: bytes, sizes: list[int], ext: str) -> bytes:
    out, pos = [], 0
    for size in sizes or [len(body)]:
        piece = body[pos : pos + size]
        pos += size
        if piece:
            out.append(b"%x%s\r\n%s\r\n" % (len(piece), ext.encode("latin-1"), piece))
    return b"".join(out) + b"0\r\n\r\n"


@st.composite
def responses(draw: Any) -> bytes:
    """A whole answer: some 1xx, a status line, headers, and a body framed and coded."""
    lines = []
    for _ in range(draw(st.integers(0, 2))):
        lines.append(b"HTTP/1.1 100 Continue\r\n\r\n")
    status = f"{draw(_version)} {draw(_code)} {draw(_text)}".encode()
    body = draw(st.binary(max_size=300))
    coding = draw(st.sampled_from(["", "gzip", "deflate", "raw", "garbage"]))
    if coding == "gzip":
        body = gzip.compress(body)
    elif coding == "deflate":
        body = zlib.compress(body)
    elif coding == "raw":
        packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        body = packer.compress(body) + packer.flush()
    if draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body)))]  # cut short
    headers = [(n, v) for n, v in draw(_header_block)]
    if coding:
        headers.append(("Content-Encoding", "gzip" if coding == "gzip" else "deflate"))
    framing = draw(st.sampled_from(["length", "chunked", "close", "none"]))
    if framing == "length":
        headers.append(("Content-Length", str(len(body) + draw(st.integers(-2, 2)))))
    elif framing == "chunked":
        headers.append(("Transfer-Encoding", "chunked"))
        sizes = draw(st.lists(st.integers(1, 64), max_size=5))
        body = _chunked(body, sizes, draw(st.sampled_from(["", ";a=b", ";" + "x" * 5000])))
    head = status + b"\r\n"
    for name, value in headers:
        head += f"{name}: {value}\r\n".encode("latin-1")
    return b"".join(lines) + head + b"\r\n" + body


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in points:
        out.append(data[last:p])
        last = p
    out.append(data[last:])
    return out


def parse_all(pieces: list[bytes], method: str = "GET") -> ResponseParser:
    """Feed pieces then EOF; every step hands out at most ``MAX_DECODE_STEP`` bytes."""
    parser = ResponseParser(method, max_body=100_000)
    for piece in [*pieces, None]:
        out = parser.feed_eof() if piece is None else parser.feed(piece)
        assert len(out) <= MAX_DECODE_STEP
        while parser.pending:
            assert len(parser.feed(b"")) <= MAX_DECODE_STEP
        if parser.done:
            break
    return parser


# ------------------------------------------------------------------------- sans-I/O


@FUZZ
@given(responses(), st.lists(st.integers(0, 10**6), max_size=6), st.sampled_from(["GET", "HEAD"]))
@example(b"HTTP/1.1 2\xb2\xb3 OK\r\n\r\n", [], "GET")
@example(
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nabcde\r\n0\r\n\r\n", [], "GET"
)
def test_parser_whole_responses_only_protocol_errors(
    data: bytes, cuts: list[int], method: str
) -> None:
    try:
        parser = parse_all(_split(data, cuts), method)
    except ProtocolError:
        return
    assert parser.done


@FUZZ
@given(st.binary(max_size=400), st.lists(st.integers(0, 10**6), max_size=6))
def test_parser_arbitrary_bytes_only_protocol_errors(data: bytes, cuts: list[int]) -> None:
    try:
        parse_all(_split(b"HTTP/1.1 200 OK\r\n" + data, cuts))
    except ProtocolError:
        pass


_location = st.one_of(
    _text,
    st.text(max_size=30),
    st.sampled_from(
        [
            "http://127.0.0.1:99999/x",
            "http://[::1/x",
            "http://",
            "http:///x",
            "//evil.example/x",
            "https://user:pw@h/x",
            "/ä ö?q=ü#frag",
            "http://h\t/x",
            "http://h/\r\nX: 1",
            "http://xn--nxasmq6b/",
            "http://bücher.example/",
            "ftp://h/x",
            "http://h:0/",
            "http://[fe80::1%25eth0]/",
        ]
    ),
)


@FUZZ
@given(st.sampled_from([301, 302, 303, 307, 308]), _location)
def test_redirect_targets_only_validation_errors(status: int, location: str) -> None:
    request = HTTPRequest(
        "POST", "http://127.0.0.1:8000/v1/chat", {"Authorization": "Bearer t"}, b"{}"
    )
    try:
        follow = redirect(request, status, {"location": location})
    except APIResponseValidationError:
        return
    if follow is not None:
        target = split_url(follow.url)  # what the transport does next: must not raise
        assert target.target.isascii() and " " not in target.target
        assert all(ord(ch) > 32 for ch in target.target)


# ------------------------------------------------------------------------- over sockets

REQUEST = ChatRequest(model="m", messages=[Message(role=Role.User, content="hi")])


class _Replay:
    """A raw server answering every request with the bytes the current example set."""

    def __init__(self) -> None:
        self.answer = b""
        self.lock = threading.Lock()
        self.server = RawServer(self._handle)

    def _handle(self, conn: socket.socket, index: int, server: RawServer) -> None:
        buf = bytearray()
        while server.next_request(conn, buf) is not None:
            with self.lock:
                answer = self.answer
            conn.sendall(answer)
            conn.shutdown(socket.SHUT_WR)
            return


@pytest.fixture(scope="module")
def replay() -> Any:
    server = _Replay()
    yield server
    server.server.close()


SOCKET_FUZZ = settings(FUZZ, max_examples=60)


@pytest.mark.parametrize("mode", ["sync", "async"])
@SOCKET_FUZZ
@given(data=responses(), stream=st.booleans())
def test_clients_only_our_errors(replay: Any, mode: str, data: bytes, stream: bool) -> None:
    # redirects stay on this server (a generated "//name" would be a DNS lookup)
    data = re.sub(rb"(?im)^(location:)[^\r\n]*", rb"\1 /elsewhere", data)
    with replay.lock:
        replay.answer = data
    host = f"http://127.0.0.1:{replay.server.port}"
    kwargs: dict[str, Any] = {"total_retries": 0, "request_timeout_seconds": 5}
    try:
        if mode == "sync":
            with Client(TOKEN, host=host, **kwargs) as c:
                if stream:
                    list(c.chat_with_streaming(REQUEST, "m"))
                else:
                    c.chat(REQUEST, "m")
        else:

            async def main() -> None:
                async with AsyncClient(TOKEN, host=host, **kwargs) as c:
                    if stream:
                        async for _ in c.chat_with_streaming(REQUEST, "m"):
                            pass
                    else:
                        await c.chat(REQUEST, "m")

            asyncio.run(main())
    except AlephAlphaError:
        pass
