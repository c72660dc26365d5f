"""A hostile server cannot hold a call longer than its timeouts or blow up its memory (issue 11).

Raw loopback servers (``tests/raw_server.py``) trickle bytes, send endless ``100 Continue``,
endless chunked bodies and decompression bombs at ``Client`` and ``AsyncClient``. Without the
bounds each of these calls would end with an answer (the server gives up after a few seconds
and sends a valid one) or hold gigabytes; with them it ends in our typed error. No test reads
a clock: a missing bound shows as an answer instead of an error (timings: benchmarks/hostile.py).

The bounds hold over every transport (``TRANSPORT_MODES``), except where a skip names the one
a transport does not keep (docs/deployment.md, "httpx and custom transports"); the slower
positive cases run over our transport and one of each kind of the others.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import socket
import time
import zlib
from typing import Any

import pytest

from aleph_alpha_client import AsyncClient, Client
from aleph_alpha_client._async_http import _HIGH_WATER
from aleph_alpha_client._config import Timeout
from aleph_alpha_client._exceptions import (
    APIResponseValidationError,
    APITimeoutError,
    EventTooLargeError,
    InternalServerError,
    InvalidArgumentError,
)
from aleph_alpha_client._http11 import MAX_DECODE_STEP, MAX_ERROR_BODY
from aleph_alpha_client._transport import AsyncTransport, HTTPRequest, SyncTransport
from aleph_alpha_client.chat import ChatRequest, Message, Role
from conftest import TOKEN, TRANSPORT_MODES, modes, run_client
from raw_server import RawServer

MODES = TRANSPORT_MODES
#: requests and sync httpx read the response head themselves, waiting per read only.
NO_HEAD_DEADLINE = {
    mode: f"{mode}: the library reads the response head with a per-read timeout only, so a "
    "head that trickles in (or endless 100 Continue) is not cut by a head deadline"
    for mode in ("sync-httpx", "sync-requests", "async-requests")
}
REQUEST = ChatRequest(model="m", messages=[Message(role=Role.User, content="hi")])
STEP = 0.05  # seconds between trickled bytes
TIMEOUT = 1.0  # the client's timeout in these tests; the servers go on for much longer


def data_line(event: Any) -> bytes:
    return b"data: " + json.dumps(event).encode() + b"\n\n"


CHUNK = {
    "id": "x",
    "created": 1,
    "model": "m",
    "object": "chat.completion.chunk",
}
STREAM = (
    data_line({**CHUNK, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"}}]})
    + data_line({**CHUNK, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    + b"data: [DONE]\n\n"
)
SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def trickle(conn: socket.socket, data: bytes, seconds: float) -> bool:
    """Send ``data`` one byte per ``STEP`` for at most ``seconds``; False if the peer left."""
    stop = time.monotonic() + seconds
    for i in range(len(data)):
        if time.monotonic() > stop:
            break
        try:
            conn.sendall(data[i : i + 1])
        except OSError:
            return False
        time.sleep(STEP)
    return True


def serve(reply: Any) -> Any:
    """A handler that reads one request and runs ``reply(conn)``."""

    def handler(conn: socket.socket, index: int, server: RawServer) -> None:
        if server.next_request(conn, bytearray()) is None:
            return
        try:
            reply(conn)
        except OSError:
            pass

    return handler


def stream_call(c: Any) -> Any:
    stream = c.chat_with_streaming(REQUEST, "m")
    if isinstance(c, AsyncClient):

        async def go() -> Any:
            return [item async for item in stream]

        return go()
    return list(stream)


def chat_call(c: Any) -> Any:
    return c.chat(REQUEST, "m")


def run(mode: str, server: RawServer, call: Any, **kwargs: Any) -> Any:
    kwargs.setdefault("request_timeout_seconds", TIMEOUT)
    return run_client(mode, f"http://127.0.0.1:{server.port}", call, **kwargs)


# ------------------------------------------------------------------------- 1. time


@pytest.mark.parametrize("mode", modes(skip=NO_HEAD_DEADLINE))
def test_trickled_stream_head_is_cut(mode: str, make_server: Any) -> None:
    """One byte of the head every 50 ms: the head deadline ends the call, not the trickle."""

    def reply(conn: socket.socket) -> None:
        head = SSE_HEAD.replace(b"\r\n\r\n", b"\r\nX-Pad: " + b"p" * 200 + b"\r\n\r\n")
        if trickle(conn, head, 20):
            conn.sendall(chunk(STREAM) + b"0\r\n\r\n")

    server = make_server(serve(reply))
    with pytest.raises(APITimeoutError) as info:
        run(mode, server, stream_call)
    assert info.value.phase == "read"


@pytest.mark.parametrize("mode", modes(skip=NO_HEAD_DEADLINE))
@pytest.mark.parametrize("call", [stream_call, chat_call], ids=["stream", "chat"])
def test_endless_100_continue_is_cut(mode: str, call: Any, make_server: Any) -> None:
    def reply(conn: socket.socket) -> None:
        for _ in range(200):
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            time.sleep(STEP)
        conn.sendall(SSE_HEAD + chunk(STREAM) + b"0\r\n\r\n")

    server = make_server(serve(reply))
    with pytest.raises(APITimeoutError):
        run(mode, server, call)


@pytest.mark.parametrize("mode", MODES)
def test_trickled_event_is_cut(mode: str, make_server: Any) -> None:
    """An event that trickles in a byte at a time never resets the idle clock."""

    def reply(conn: socket.socket) -> None:
        conn.sendall(SSE_HEAD)
        for i in range(len(STREAM)):
            conn.sendall(chunk(STREAM[i : i + 1]))
            time.sleep(STEP)
        conn.sendall(b"0\r\n\r\n")

    server = make_server(serve(reply))
    with pytest.raises(APITimeoutError) as info:
        run(mode, server, stream_call)
    assert info.value.phase == "idle"


@pytest.mark.parametrize("mode", ["sync", "async", "sync-httpx", "async-aiohttp"])
def test_events_reset_the_idle_clock(mode: str, make_server: Any) -> None:
    """A stream whose events come more often than the idle limit runs past it."""

    def reply(conn: socket.socket) -> None:
        conn.sendall(SSE_HEAD)
        for _ in range(8):  # a comment event every 0.3 s: 2.4 s in all, idle limit 1 s
            conn.sendall(chunk(b": ping\n\n"))
            time.sleep(0.3)
        conn.sendall(chunk(STREAM) + b"0\r\n\r\n")

    server = make_server(serve(reply))
    items = run(mode, server, stream_call)
    assert items


@pytest.mark.parametrize("mode", MODES)
def test_stream_timeout_bounds_a_whole_stream(mode: str, make_server: Any) -> None:
    """``stream_timeout`` (off by default) cuts a stream whose events keep coming."""

    def reply(conn: socket.socket) -> None:
        conn.sendall(SSE_HEAD)
        for _ in range(100):
            conn.sendall(chunk(b": ping\n\n"))
            time.sleep(0.1)
        conn.sendall(chunk(STREAM) + b"0\r\n\r\n")

    server = make_server(serve(reply))
    with pytest.raises(APITimeoutError) as info:
        run(mode, server, stream_call, request_timeout_seconds=5, stream_timeout=1.0)
    assert info.value.phase == "stream"
    assert "stream_timeout" in str(info.value)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_stream_timeout_per_call(mode: str, make_server: Any) -> None:
    def reply(conn: socket.socket) -> None:
        conn.sendall(SSE_HEAD)
        for _ in range(100):
            conn.sendall(chunk(b": ping\n\n"))
            time.sleep(0.1)
        conn.sendall(chunk(STREAM) + b"0\r\n\r\n")

    server = make_server(serve(reply))
    with pytest.raises(APITimeoutError) as info:
        run(mode, server, lambda c: stream_call(c.with_options(stream_timeout=1.0)))
    assert info.value.phase == "stream"


@pytest.mark.parametrize(
    ("mode", "status"),
    [
        (mode, status)
        for status in (b"500 Internal Server Error", b"200 OK")
        for mode in MODES
        if mode in ("sync", "async") or status.startswith(b"5")  # the same read either way
    ],
)
def test_trickled_body_answering_a_stream_is_cut(
    mode: str, status: bytes, make_server: Any
) -> None:
    """An error answer (or JSON) to a stream request, its chunked body trickling in: the body
    is read under one deadline."""

    def reply(conn: socket.socket) -> None:
        conn.sendall(
            b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        body = b'{"error": "' + b"x" * 200 + b'", "code": "E"}'
        for i in range(len(body)):
            conn.sendall(chunk(body[i : i + 1]))
            time.sleep(STEP)
        conn.sendall(b"0\r\n\r\n")

    server = make_server(serve(reply))
    with pytest.raises(APITimeoutError):
        run(mode, server, stream_call)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("call", [stream_call, chat_call], ids=["stream", "chat"])
def test_endless_error_body_is_capped(mode: str, call: Any, make_server: Any) -> None:
    """A 500 whose chunked body never ends: the error keeps its status and the first MiB."""

    def reply(conn: socket.socket) -> None:
        conn.sendall(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        piece = chunk(b"e" * 65536)
        for _ in range(2000):  # 128 MiB, far more than the cap
            conn.sendall(piece)

    server = make_server(serve(reply))
    with pytest.raises(InternalServerError) as info:
        run(mode, server, call, request_timeout_seconds=30)
    text = info.value.args[1]
    assert 0 < len(text) <= MAX_ERROR_BODY


# ------------------------------------------------------------------------- 2. memory

BOMB_SIZE = 64 * 1024 * 1024


def bomb(size: int = BOMB_SIZE, fill: bytes = b"\0") -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = fill * (1024 * 1024)
    out = [packer.compress(block) for _ in range(size // len(block))]
    out.append(packer.flush())
    return b"".join(out)


@pytest.mark.parametrize("mode", MODES)
def test_gzip_bomb_stops_at_max_response_size(mode: str, make_server: Any) -> None:
    data = bomb()

    def reply(conn: socket.socket) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
            b"Content-Length: %d\r\n\r\n" % len(data) + data
        )

    server = make_server(serve(reply))
    with pytest.raises(APIResponseValidationError) as info:
        run(mode, server, chat_call, max_response_size=4 * 1024 * 1024)
    if mode == "async-aiohttp":  # aiohttp's own bound (32 MiB from one read) may come first
        assert "larger than" in str(info.value)
    else:
        assert "larger than 4194304 bytes" in str(info.value)


@pytest.mark.parametrize("mode", MODES)
def test_endless_body_stops_at_max_response_size(mode: str, make_server: Any) -> None:
    def reply(conn: socket.socket) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        piece = chunk(b" " * 65536)
        for _ in range(1024):  # 64 MiB, then the connection closes: a client without the
            conn.sendall(piece)  # bound fails too, after holding all of it, not forever

    server = make_server(serve(reply))
    with pytest.raises(APIResponseValidationError) as info:
        run(mode, server, chat_call, max_response_size=2 * 1024 * 1024, request_timeout_seconds=30)
    assert "larger than" in str(info.value)


def bomb_server(make_server: Any, fill: bytes) -> RawServer:
    data = bomb(fill=fill)

    def reply(conn: socket.socket) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: gzip\r\n"
            b"Content-Length: %d\r\n\r\n" % len(data) + data
        )

    return make_server(serve(reply))


@pytest.mark.parametrize("mode", MODES)
def test_event_limit_holds_inside_one_read(mode: str, make_server: Any) -> None:
    """A gzip bomb of one endless event: the event limit fires, no piece is bigger than a
    decoding step (the limit is checked before the read expands further)."""
    server = bomb_server(make_server, b"a")
    # aiohttp refuses one read of compressed data that expands past 32 MiB before we see it
    expected = APIResponseValidationError if mode == "async-aiohttp" else EventTooLargeError
    with pytest.raises(expected):
        run(mode, server, stream_call, max_event_size=1024 * 1024)


def test_stream_pieces_are_bounded_sync(make_server: Any) -> None:
    server = bomb_server(make_server, b"a")
    transport = SyncTransport(pool_size=1, verify_ssl=True, host=server.url)
    request = HTTPRequest("GET", server.url, {}, None, True)
    response = transport.send(request, Timeout(total=30))
    sizes = []
    for piece in response.iter_chunks():
        sizes.append(len(piece))
        if sum(sizes) > 8 * MAX_DECODE_STEP:
            break
    response.close()
    transport.close()
    assert max(sizes) <= MAX_DECODE_STEP


def test_stream_pieces_are_bounded_and_the_loop_runs_async(make_server: Any) -> None:
    """Async: pieces are bounded, and other tasks run between two decoding steps."""
    server = bomb_server(make_server, b"a")

    async def main() -> tuple[list[int], list[int]]:
        transport = AsyncTransport(limit=1, verify_ssl=True, host=server.url)
        ticks = [0]
        stop = asyncio.Event()

        async def ticker() -> None:
            while not stop.is_set():
                ticks[0] += 1
                await asyncio.sleep(0)

        task = asyncio.ensure_future(ticker())
        request = HTTPRequest("GET", server.url, {}, None, True)
        response = await transport.send(request, Timeout(total=30))
        sizes, seen = [], []
        async for piece in response.iter_chunks():
            sizes.append(len(piece))
            seen.append(ticks[0])
            if sum(sizes) > 16 * MAX_DECODE_STEP:
                break
        response.close()
        stop.set()
        await task
        await transport.close()
        return sizes, seen

    sizes, seen = asyncio.run(main())
    # steps not yet taken are handed over together, up to the 1 MiB read-ahead of a stream
    assert max(sizes) <= _HIGH_WATER + MAX_DECODE_STEP
    # the ticker ran between (nearly) every two pieces: no read decoded all at once
    advanced = sum(1 for a, b in itertools.pairwise(seen) if b > a)
    assert advanced >= len(seen) // 2


# ------------------------------------------------------------------------- options


def test_new_options_are_validated() -> None:
    for cls in (Client, AsyncClient):
        with pytest.raises(InvalidArgumentError, match="stream_timeout"):
            cls(TOKEN, host="http://127.0.0.1:1", stream_timeout=0)
        with pytest.raises(InvalidArgumentError, match="max_response_size"):
            cls(TOKEN, host="http://127.0.0.1:1", max_response_size=10)
        c = cls(TOKEN, host="http://127.0.0.1:1", stream_timeout=7)
        assert c._config.timeout.stream == 7
        assert c.with_options(timeout=3)._config.timeout.stream == 7
        assert c.with_options(stream_timeout=None)._config.timeout.stream is None
        assert cls(TOKEN, host="http://127.0.0.1:1")._config.timeout.stream is None


def test_gzip_helper_is_gzip() -> None:
    assert gzip.decompress(bomb(1024 * 1024)) == b"\0" * (1024 * 1024)


def test_a_large_body_is_never_held_twice() -> None:
    # The pieces of a non-streaming answer are gathered without a second copy of the body
    # (b"".join(pieces) holds both); allocation accounting, not timing.
    import tracemalloc

    from aleph_alpha_client._net import BodyBuffer

    piece, count = 256 * 1024, 128  # 32 MiB in the 256 KiB pieces the decoder hands out
    buffer = BodyBuffer()
    tracemalloc.start()
    try:
        for i in range(count):
            buffer.add(bytes([i]) * piece)
        body = buffer.take()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(body) == piece * count and body[piece * 5] == 5
    assert peak < 1.3 * len(body)  # a join would peak at 2x
    assert not buffer and buffer.take() == b""


def test_body_buffer_small_and_empty() -> None:
    from aleph_alpha_client._net import BodyBuffer

    buffer = BodyBuffer()
    assert not buffer and buffer.take() == b""
    one = b"only"
    buffer.add(one)
    assert buffer.take() is one  # one piece passes through untouched
    buffer.add(b"a")
    buffer.add(b"")
    buffer.add(b"b")
    assert len(buffer) == 2 and buffer.take() == b"ab"
