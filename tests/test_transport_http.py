"""Our HTTP/1.1 transports (_sync_http, _async_http) against raw loopback servers.

Pooling and reuse, the one transparent re-send on a stale idle connection, timeouts and their
phases, error mapping, framing errors, streaming in large pieces, flow control, TLS with a
self-signed certificate (openssl CLI), proxies (absolute-form and CONNECT), and cleanup
without ResourceWarning (pytest runs with -W error).
"""

from __future__ import annotations

import asyncio
import base64
import gc
import gzip
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aleph_alpha_client._async_http import AsyncHTTP
from aleph_alpha_client._config import Timeout
from aleph_alpha_client._exceptions import (
    APIConnectionError,
    APITimeoutError,
    IncompleteStreamError,
    InvalidArgumentError,
)
from aleph_alpha_client._request import HTTPRequest
from aleph_alpha_client._sync_http import SyncHTTP
from raw_server import Handler, RawServer

MODES = ["sync", "async"]
T = Timeout(total=5, connect=5, idle=None)


# ------------------------------------------------------------------ a raw server


def ok(body: bytes = b'{"ok":true}', extra: str = "") -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


def keep_alive(answer: bytes) -> Handler:
    def handler(conn: socket.socket, index: int, server: RawServer) -> None:
        buf = bytearray()
        while server.next_request(conn, buf) is not None:
            conn.sendall(answer)

    return handler


def request(url: str, stream: bool = False, **kw: Any) -> HTTPRequest:
    headers = kw.pop("headers", {"Authorization": "Bearer secret-token"})
    return HTTPRequest("POST", url, headers, kw.pop("body", b"{}"), stream)


def sync_call(pool: SyncHTTP, req: HTTPRequest, timeout: Timeout = T) -> tuple[int, bytes]:
    response = pool.send(req, timeout)
    try:
        if req.stream:
            return response.status, b"".join(response.iter_chunks())
        return response.status, response.read()
    finally:
        response.close()


async def async_call(pool: AsyncHTTP, req: HTTPRequest, timeout: Timeout = T) -> tuple[int, bytes]:
    response = await pool.send(req, timeout)
    try:
        if req.stream:
            return response.status, b"".join([c async for c in response.iter_chunks()])
        return response.status, await response.read()
    finally:
        response.close()


def calls(mode: str, reqs: list[HTTPRequest], timeout: Timeout = T, **kw: Any) -> list[Any]:
    """Send ``reqs`` one after the other on one pool; an error is returned, not raised."""
    kw.setdefault("verify_ssl", True)
    kw.setdefault("proxy", None)
    if mode == "sync":
        pool = SyncHTTP(pool_size=kw.pop("pool_size", 10), **kw)
        results: list[Any] = []
        try:
            for req in reqs:
                try:
                    results.append(sync_call(pool, req, timeout))
                except Exception as err:
                    results.append(err)
        finally:
            pool.close()
        return results

    async def run() -> list[Any]:
        pool = AsyncHTTP(limit=kw.pop("limit", 10), **kw)
        results: list[Any] = []
        try:
            for req in reqs:
                try:
                    results.append(await async_call(pool, req, timeout))
                except Exception as err:
                    results.append(err)
        finally:
            await pool.close()
        return results

    return asyncio.run(run())


def one(mode: str, req: HTTPRequest, timeout: Timeout = T, **kw: Any) -> Any:
    result = calls(mode, [req], timeout, **kw)[0]
    if isinstance(result, Exception):
        raise result
    return result


# ------------------------------------------------------------------ pooling


@pytest.mark.parametrize("mode", MODES)
def test_keep_alive_reuses_one_connection(mode: str, make_server: Any) -> None:
    server = make_server(keep_alive(ok()))
    results = calls(mode, [request(server.url) for _ in range(5)])
    assert results == [(200, b'{"ok":true}')] * 5
    assert server.accepted == 1
    first = server.requests[0]
    assert first.startswith(b"POST /path?q=1 HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"Content-Length: 2\r\n\r\n{}" in first


@pytest.mark.parametrize("mode", MODES)
def test_connection_close_is_not_reused(mode: str, make_server: Any) -> None:
    server = make_server(keep_alive(ok(extra="Connection: close\r\n")))
    assert calls(mode, [request(server.url) for _ in range(3)]) == [(200, b'{"ok":true}')] * 3
    assert server.accepted == 3


def two_requests_after(mode: str, url: str, between: Callable[[Any], None]) -> list[Any]:
    """Two requests on one pool; ``between(pool)`` runs after the first."""
    if mode == "sync":
        pool = SyncHTTP(pool_size=2, verify_ssl=True, proxy=None)
        first = sync_call(pool, request(url))
        between(pool)
        second = sync_call(pool, request(url))
        pool.close()
        return [first, second]

    async def run() -> list[Any]:
        pool = AsyncHTTP(limit=2, verify_ssl=True, proxy=None)
        first = await async_call(pool, request(url))
        between(pool)
        if any(conn.closed for conn in pool._all) is False:
            for _ in range(500):  # let the loop see the close
                await asyncio.sleep(0.01)
                if all(conn.closed for conn in pool._all):
                    break
        second = await async_call(pool, request(url))
        await pool.close()
        return [first, second]

    return asyncio.run(run())


@pytest.mark.parametrize("mode", MODES)
def test_idle_connection_closed_by_the_server_is_not_used(mode: str, make_server: Any) -> None:
    """The server closes each connection after its answer (without saying so)."""
    closed = threading.Semaphore(0)

    def handler(conn: socket.socket, index: int, server: RawServer) -> None:
        if server.next_request(conn, bytearray()) is not None:
            conn.sendall(ok(str(index).encode()))
        conn.close()
        closed.release()

    server = make_server(handler)
    results = two_requests_after(mode, server.url, lambda pool: closed.acquire(timeout=5))
    assert results == [(200, b"0"), (200, b"1")]
    assert len(server.requests) == 2 and server.accepted == 2


@pytest.mark.parametrize("mode", MODES)
def test_reused_connection_closed_before_the_answer_is_sent_again_once(
    mode: str, make_server: Any
) -> None:
    """EOF before any answer byte on a reused connection: the request goes out once more."""

    def handler(conn: socket.socket, index: int, server: RawServer) -> None:
        buf = bytearray()
        if server.next_request(conn, buf) is None:
            return
        conn.sendall(ok(str(index).encode()))
        if index == 0:
            server.next_request(conn, buf)
            conn.shutdown(socket.SHUT_WR)  # a clean close, no answer

    server = make_server(handler)
    results = two_requests_after(mode, server.url, lambda pool: None)
    assert results == [(200, b"0"), (200, b"1")]
    assert len(server.requests) == 3 and server.accepted == 2


@pytest.mark.parametrize("mode", MODES)
def test_fresh_connection_closed_without_answer_is_an_error(mode: str, make_server: Any) -> None:
    def handler(conn: socket.socket, index: int, server: RawServer) -> None:
        server.next_request(conn, bytearray())  # then close: no answer

    server = make_server(handler)
    with pytest.raises(APIConnectionError) as info:
        one(mode, request(server.url))
    assert not isinstance(info.value, APITimeoutError)
    assert server.url in str(info.value) and "secret-token" not in str(info.value)
    assert server.accepted == 1  # not re-sent: the retry policy decides


@pytest.mark.parametrize("mode", MODES)
def test_reset_after_the_request_on_a_reused_connection_is_shown(
    mode: str, make_server: Any
) -> None:
    """The server saw the request: only the retry policy may send it again."""

    def handler(conn: socket.socket, index: int, server: RawServer) -> None:
        buf = bytearray()
        server.next_request(conn, buf)
        conn.sendall(ok())
        server.next_request(conn, buf)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    server = make_server(handler)
    results = calls(mode, [request(server.url), request(server.url)])
    assert results[0] == (200, b'{"ok":true}')
    assert isinstance(results[1], APIConnectionError)
    assert server.accepted == 1


@pytest.mark.parametrize("mode", MODES)
def test_stream_read_to_the_end_is_reused_and_closed_early_is_not(
    mode: str, make_server: Any
) -> None:
    body = b"data: x\n\n" * 500_000  # 4.5 MB: not all read with the first piece
    answer = (
        f"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    server = make_server(keep_alive(answer))
    url = server.url

    if mode == "sync":
        pool = SyncHTTP(pool_size=4, verify_ssl=True, proxy=None)
        assert sync_call(pool, request(url, stream=True)) == (200, body)
        response = pool.send(request(url, stream=True), T)
        next(iter(response.iter_chunks()))
        response.close()  # early: the socket is dropped
        assert sync_call(pool, request(url, stream=True)) == (200, body)
        pool.close()
    else:

        async def run() -> None:
            pool = AsyncHTTP(limit=4, verify_ssl=True, proxy=None)
            assert await async_call(pool, request(url, stream=True)) == (200, body)
            response = await pool.send(request(url, stream=True), T)
            chunks = response.iter_chunks()
            await chunks.__anext__()
            response.close()
            await chunks.aclose()
            assert await async_call(pool, request(url, stream=True)) == (200, body)
            await pool.close()

        asyncio.run(run())
    assert server.accepted == 2


def test_sync_pool_keeps_at_most_pool_size_idle(make_server: Any) -> None:
    barrier = threading.Barrier(4)
    # The server answers only once all four requests are in, so no connection can come back
    # to the pool (and be reused) before the fourth one is opened.
    all_in = threading.Barrier(4, timeout=10)

    def handler(conn: socket.socket, index: int, server: RawServer) -> None:
        buf = bytearray()
        first = True
        while server.next_request(conn, buf) is not None:
            if first:
                first = False
                all_in.wait()
            conn.sendall(ok())

    server = make_server(handler)
    pool = SyncHTTP(pool_size=2, verify_ssl=True, proxy=None)
    responses: list[Any] = []

    def worker() -> None:
        barrier.wait()
        responses.append(pool.send(request(server.url, stream=True), T))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for response in responses:  # all four held at once: four connections
        assert b"".join(response.iter_chunks()) == b'{"ok":true}'
    assert server.accepted == 4
    assert sum(len(idle) for idle in pool._idle.values()) == 2
    pool.close()


def test_async_limit_caps_open_connections(make_server: Any) -> None:
    gate = threading.Event()

    def handler(conn: socket.socket, index: int, server: RawServer) -> None:
        buf = bytearray()
        while server.next_request(conn, buf) is not None:
            gate.wait(5)
            conn.sendall(ok())

    server = make_server(handler)

    async def run() -> list[Any]:
        pool = AsyncHTTP(limit=2, verify_ssl=True, proxy=None)
        tasks = [asyncio.ensure_future(async_call(pool, request(server.url))) for _ in range(8)]
        await asyncio.sleep(0.1)
        gate.set()
        results = await asyncio.gather(*tasks)
        await pool.close()
        return results

    assert asyncio.run(run()) == [(200, b'{"ok":true}')] * 8
    assert server.max_active <= 2 and server.accepted <= 2


# ------------------------------------------------------------------ timeouts and errors


@pytest.mark.parametrize("mode", MODES)
def test_read_timeout(mode: str, make_server: Any) -> None:
    stop = threading.Event()

    def handler(conn: socket.socket, index: int, server: RawServer) -> None:
        server.next_request(conn, bytearray())
        stop.wait(5)

    server = make_server(handler)
    with pytest.raises(APITimeoutError) as info:
        one(mode, request(server.url), Timeout(total=0.3, connect=5))
    stop.set()
    assert info.value.phase == "read"


@pytest.mark.parametrize("mode", MODES)
def test_total_deadline_bounds_a_trickling_body(mode: str, make_server: Any) -> None:
    stop = threading.Event()

    def handler(conn: socket.socket, index: int, server: RawServer) -> None:
        server.next_request(conn, bytearray())
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        while not stop.wait(0.05):
            conn.sendall(b"x")

    server = make_server(handler)
    with pytest.raises(APITimeoutError) as info:
        one(mode, request(server.url), Timeout(total=0.4, connect=5, idle=5))
    stop.set()
    assert info.value.phase == "read"


@pytest.mark.parametrize("mode", MODES)
def test_idle_stream_timeout(mode: str, make_server: Any) -> None:
    stop = threading.Event()

    def handler(conn: socket.socket, index: int, server: RawServer) -> None:
        server.next_request(conn, bytearray())
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        stop.wait(5)

    server = make_server(handler)
    seen: list[bytes] = []
    timeout = Timeout(total=0.1, connect=5, idle=1.0)  # total does not apply to streams
    if mode == "sync":
        pool = SyncHTTP(pool_size=1, verify_ssl=True, proxy=None)
        response = pool.send(request(server.url, stream=True), timeout)
        with pytest.raises(APITimeoutError) as info:
            for chunk in response.iter_chunks():
                seen.append(chunk)
        response.close()
    else:

        async def run() -> Any:
            pool = AsyncHTTP(limit=1, verify_ssl=True, proxy=None)
            response = await pool.send(request(server.url, stream=True), timeout)
            try:
                async for chunk in response.iter_chunks():
                    seen.append(chunk)
            finally:
                response.close()
                await pool.close()

        with pytest.raises(APITimeoutError) as info:
            asyncio.run(run())
    stop.set()
    assert info.value.phase == "idle"
    assert seen == [b"hello"]


@pytest.mark.parametrize("mode", MODES)
def test_refused_connection(mode: str) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    url = f"http://127.0.0.1:{port}/x"
    with pytest.raises(APIConnectionError) as info:
        one(mode, request(url))
    assert not isinstance(info.value, APITimeoutError)
    assert url in str(info.value) and "secret-token" not in str(info.value)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "answer",
    [b"HTTP/1.1 2x0 OK\r\n\r\n", b"<html>hello</html>\r\n\r\n", b"HTTP/1.1 200 OK\r\nX\r\n\r\n"],
)
def test_malformed_answer(mode: str, answer: bytes, make_server: Any) -> None:
    server = make_server(keep_alive(answer))
    with pytest.raises(APIConnectionError, match=r"malformed|not an HTTP"):
        one(mode, request(server.url))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_cut_body(mode: str, framing: str, make_server: Any) -> None:
    def handler(conn: socket.socket, index: int, server: RawServer) -> None:
        server.next_request(conn, bytearray())
        if framing == "length":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\ndata: partial")
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n20\r\ndata")

    server = make_server(handler)
    with pytest.raises(APIConnectionError) as plain:
        one(mode, request(server.url))
    assert not isinstance(plain.value, APITimeoutError)
    with pytest.raises(IncompleteStreamError):
        one(mode, request(server.url, stream=True))


@pytest.mark.parametrize("mode", MODES)
def test_header_injection_is_refused_before_sending(mode: str, make_server: Any) -> None:
    server = make_server(keep_alive(ok()))
    bad = request(server.url, headers={"X-Tag": "a\r\nX-Injected: 1"})
    with pytest.raises(InvalidArgumentError):
        one(mode, bad)
    assert server.requests == []


# ------------------------------------------------------------------ bodies


@pytest.mark.parametrize("mode", MODES)
def test_gzip_answer_is_decoded(mode: str, make_server: Any) -> None:
    plain = b'{"text":"' + b"z" * 10000 + b'"}'
    server = make_server(keep_alive(ok(gzip.compress(plain), "Content-Encoding: gzip\r\n")))
    assert one(mode, request(server.url)) == (200, plain)
    assert one(mode, request(server.url, stream=True)) == (200, plain)


@pytest.mark.parametrize("mode", MODES)
def test_large_request_body_and_chunked_stream_in_large_pieces(mode: str, make_server: Any) -> None:
    events = [b"data: %d\n\n" % i for i in range(5000)]
    framed = b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n"
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + framed
    server = make_server(keep_alive(answer))
    big = b"b" * 200_000
    pieces: list[bytes] = []
    if mode == "sync":
        pool = SyncHTTP(pool_size=1, verify_ssl=True, proxy=None)
        response = pool.send(request(server.url, stream=True, body=big), T)
        pieces = list(response.iter_chunks())
        response.close()
        pool.close()
    else:

        async def run() -> list[bytes]:
            pool = AsyncHTTP(limit=1, verify_ssl=True, proxy=None)
            response = await pool.send(request(server.url, stream=True, body=big), T)
            out = [c async for c in response.iter_chunks()]
            response.close()
            await pool.close()
            return out

        pieces = asyncio.run(run())
    assert b"".join(pieces) == b"".join(events)
    assert len(pieces) < len(events) // 10  # handed over in bulk, not one HTTP chunk per call
    assert server.requests[0].endswith(big)


def test_async_stream_pauses_reading_above_the_high_water_mark(make_server: Any) -> None:
    body = b"x" * (8 * 1024 * 1024)
    server = make_server(keep_alive(ok(body)))

    async def run() -> int:
        pool = AsyncHTTP(limit=1, verify_ssl=True, proxy=None)
        response = await pool.send(request(server.url, stream=True), T)
        conn = response._conn
        assert conn is not None
        for _ in range(500):
            if conn.paused:
                break
            await asyncio.sleep(0.01)
        assert conn.paused
        assert conn.buffered < 2 * 1024 * 1024
        total = sum([len(c) async for c in response.iter_chunks()])
        response.close()
        await pool.close()
        return total

    assert asyncio.run(run()) == len(body)


# ------------------------------------------------------------------ event loops and cleanup


def test_async_pool_across_loops_and_gc_without_close(make_server: Any) -> None:
    server = make_server(keep_alive(ok()))
    pool = AsyncHTTP(limit=4, verify_ssl=True, proxy=None)  # built outside a loop
    for _ in range(3):
        assert asyncio.run(async_call(pool, request(server.url))) == (200, b'{"ok":true}')
    asyncio.run(pool.close())
    assert asyncio.run(async_call(pool, request(server.url))) == (200, b'{"ok":true}')
    del pool  # its loop is closed and it was not closed: sockets closed now, no warning
    gc.collect()
    assert server.accepted == 4


def test_async_stream_dropped_without_close(make_server: Any) -> None:
    server = make_server(keep_alive(ok(b"x" * 100_000)))

    async def run() -> None:
        pool = AsyncHTTP(limit=1, verify_ssl=True, proxy=None)
        response = await pool.send(request(server.url, stream=True), T)
        del response
        gc.collect()
        assert await async_call(pool, request(server.url)) == (200, b"x" * 100_000)
        await pool.close()

    asyncio.run(run())
    gc.collect()


def test_sync_stream_dropped_without_close(make_server: Any) -> None:
    server = make_server(keep_alive(ok(b"x" * 100_000)))
    pool = SyncHTTP(pool_size=1, verify_ssl=True, proxy=None)
    response = pool.send(request(server.url, stream=True), T)
    del response
    gc.collect()
    assert sync_call(pool, request(server.url)) == (200, b"x" * 100_000)
    del pool
    gc.collect()


# ------------------------------------------------------------------ TLS and proxies


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("no openssl CLI to make a self-signed certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    done = subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        capture_output=True,
        check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"openssl could not make a certificate: {done.stderr[-200:]!r}")
    return cert, key


@pytest.fixture
def tls_context(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_files)
    return context


@pytest.mark.parametrize("mode", MODES)
def test_tls_verified_by_default(mode: str, make_server: Any, tls_context: Any) -> None:
    server = make_server(keep_alive(ok()), wrap=tls_context)
    with pytest.raises(APIConnectionError) as info:
        one(mode, request(server.url))
    assert "certificate" in str(info.value).lower() or "tls" in str(info.value).lower()
    assert server.requests == []


@pytest.mark.parametrize("mode", MODES)
def test_tls_without_verification(mode: str, make_server: Any, tls_context: Any) -> None:
    server = make_server(keep_alive(ok()), wrap=tls_context)
    results = calls(mode, [request(server.url), request(server.url)], verify_ssl=False)
    assert results == [(200, b'{"ok":true}')] * 2
    assert server.accepted == 1


def proxy_handler(upstream_port: int, seen: list[bytes]) -> Handler:
    """A tiny proxy: CONNECT tunnels; absolute-form requests answered directly."""

    def handler(conn: socket.socket, index: int, server: RawServer) -> None:
        buf = bytearray()
        first = server.next_request(conn, buf)
        if first is None:
            return
        seen.append(first)
        if first.startswith(b"CONNECT "):
            if b"Proxy-Authorization: Basic " + base64.b64encode(b"user:p@ss") not in first:
                conn.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
                return
            upstream = socket.create_connection(("127.0.0.1", upstream_port))
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

            def pump(src: socket.socket, dst: socket.socket) -> None:
                try:
                    while data := src.recv(65536):
                        dst.sendall(data)
                except OSError:
                    pass
                finally:
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass

            back = threading.Thread(target=pump, args=(upstream, conn), daemon=True)
            back.start()
            pump(conn, upstream)
            back.join(5)
            upstream.close()
            return
        request_ = first
        while request_ is not None:
            conn.sendall(ok(b"via proxy"))
            request_ = server.next_request(conn, buf)
            if request_ is not None:
                seen.append(request_)

    return handler


@pytest.mark.parametrize("mode", MODES)
def test_http_through_a_proxy_uses_absolute_form(mode: str, make_server: Any) -> None:
    seen: list[bytes] = []
    proxy = make_server(proxy_handler(0, seen))
    target = "http://api.example.test:8080/chat?x=1"
    proxy_url = f"http://user:p%40ss@127.0.0.1:{proxy.port}"
    results = calls(mode, [request(target), request(target)], proxy=proxy_url)
    assert results == [(200, b"via proxy")] * 2
    assert proxy.accepted == 1
    assert seen[0].startswith(
        b"POST http://api.example.test:8080/chat?x=1 HTTP/1.1\r\nHost: api.example.test:8080\r\n"
    )
    assert b"Proxy-Authorization: Basic " + base64.b64encode(b"user:p@ss") in seen[0]


@pytest.mark.parametrize("mode", MODES)
def test_https_through_a_proxy_uses_connect(mode: str, make_server: Any, tls_context: Any) -> None:
    upstream = make_server(keep_alive(ok(b"tunnelled")), wrap=tls_context)
    seen: list[bytes] = []
    proxy = make_server(proxy_handler(upstream.port, seen))
    proxy_url = f"http://user:p%40ss@127.0.0.1:{proxy.port}"
    results = calls(
        mode, [request(upstream.url), request(upstream.url)], proxy=proxy_url, verify_ssl=False
    )
    assert results == [(200, b"tunnelled")] * 2
    assert seen[0].startswith(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\n" % upstream.port)
    assert upstream.requests[0].startswith(b"POST /path?q=1 HTTP/1.1\r\n")
    assert proxy.accepted == 1 and upstream.accepted == 1


@pytest.mark.parametrize("mode", MODES)
def test_proxy_refusing_connect(mode: str, make_server: Any, tls_context: Any) -> None:
    upstream = make_server(keep_alive(ok()), wrap=tls_context)
    seen: list[bytes] = []
    proxy = make_server(proxy_handler(upstream.port, seen))
    with pytest.raises(APIConnectionError, match="407"):
        one(mode, request(upstream.url), proxy=f"http://127.0.0.1:{proxy.port}")


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
@pytest.mark.parametrize("mode", MODES)
def test_tls_trusts_a_ca_bundle_from_the_environment(
    mode: str,
    variable: str,
    make_server: Any,
    tls_context: Any,
    tls_files: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # REQUESTS_ wins, as in requests
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, str(tls_files[0]))
    server = make_server(keep_alive(ok()), wrap=tls_context)
    assert one(mode, request(server.url)) == (200, b'{"ok":true}')


def test_a_missing_ca_bundle_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from aleph_alpha_client import InvalidArgumentError
    from aleph_alpha_client._sync_http import make_ssl_context

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/no/such/bundle.pem")
    with pytest.raises(InvalidArgumentError, match="REQUESTS_CA_BUNDLE"):
        make_ssl_context(True)
    assert make_ssl_context(False).verify_mode == ssl.CERT_NONE  # not read when off


def test_ipv6_connect_authority_has_brackets() -> None:
    from aleph_alpha_client._sync_http import split_url

    target = split_url("https://[::1]:8443/v1/chat")
    assert f"{target.authority_host}:{target.port}" == "[::1]:8443"
    assert target.host == "::1"
