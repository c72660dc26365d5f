"""Review of the HTTP/1.1 transports: regressions found by review, against loopback sockets.

Each test pins one bug: a queued async request stranded by ``close()``, time spent waiting
for a pool slot counted as a read timeout (after the request was sent), the sync pool on a
platform without ``select.poll`` (Windows), a malformed ``Content-Length`` escaping as a
foreign ``ValueError``, and a bare-LF head whose body holds CRLF CRLF.
"""

from __future__ import annotations

import asyncio
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from aleph_alpha_client._async_http import AsyncHTTP
from aleph_alpha_client._config import Timeout
from aleph_alpha_client._exceptions import APIConnectionError
from aleph_alpha_client._request import HTTPRequest
from aleph_alpha_client._sync_http import SyncHTTP
from raw_server import Handler, RawServer

T = Timeout(total=10, connect=5, idle=None)
OK = b'HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{"ok":true}'


def post(url: str, stream: bool = False) -> HTTPRequest:
    return HTTPRequest("POST", url, {"Authorization": "Bearer t"}, b"{}", stream)


async def async_call(pool: AsyncHTTP, req: HTTPRequest, timeout: Timeout = T) -> Any:
    response = await pool.send(req, timeout)
    try:
        return response.status, await response.read()
    finally:
        response.close()


def gated(gate: threading.Event) -> Handler:
    """Keep-alive handler that answers each request once ``gate`` is set."""

    def handler(conn: socket.socket, index: int, server: RawServer) -> None:
        buf = bytearray()
        while server.next_request(conn, buf) is not None:
            gate.wait(10)
            conn.sendall(OK)

    return handler


async def until(check: Callable[[], bool]) -> None:
    while not check():
        await asyncio.sleep(0.01)


# ------------------------------------------------------------------ async pool limit


def test_async_close_does_not_strand_requests_waiting_for_a_slot(make_server: Any) -> None:
    """close() while requests wait for a free connection: they must go on, not hang."""
    gate = threading.Event()
    server = make_server(gated(gate))

    async def run() -> Any:
        pool = AsyncHTTP(limit=1, verify_ssl=True, proxy=None)
        first = asyncio.ensure_future(async_call(pool, post(server.url)))
        await until(lambda: len(server.requests) == 1)
        queued = asyncio.ensure_future(async_call(pool, post(server.url)))
        await until(lambda: len(pool._waiters) == 1)
        await pool.close()
        gate.set()
        with pytest.raises(APIConnectionError):
            await first  # its connection was closed under it
        try:
            # a hang detector, not a timing assert: the answer is immediate once sent
            return await asyncio.wait_for(queued, 20)
        finally:
            await pool.close()

    assert asyncio.run(run()) == (200, b'{"ok":true}')


def test_async_wait_for_a_slot_does_not_count_against_the_total_timeout(
    make_server: Any,
) -> None:
    """A request queued behind the limit for longer than ``total`` was sent and then failed
    at once as a read timeout (the server did the work, the caller got an error)."""
    gate = threading.Event()

    def handler(conn: socket.socket, index: int, server: RawServer) -> None:
        buf = bytearray()
        while server.next_request(conn, buf) is not None:
            gate.wait(10)
            if len(server.requests) == 2:
                time.sleep(0.2)  # well inside the queued request's own total
            conn.sendall(OK)

    server = make_server(handler)
    short = Timeout(total=1.0, connect=5, idle=None)

    async def run() -> Any:
        pool = AsyncHTTP(limit=1, verify_ssl=True, proxy=None)
        try:
            first = asyncio.ensure_future(async_call(pool, post(server.url)))
            await until(lambda: len(server.requests) == 1)
            queued = asyncio.ensure_future(async_call(pool, post(server.url), short))
            await until(lambda: len(pool._waiters) == 1)
            await asyncio.sleep(1.3)  # queued for longer than its total
            gate.set()
            assert await first == (200, b'{"ok":true}')
            return await queued
        finally:
            await pool.close()

    assert asyncio.run(run()) == (200, b'{"ok":true}')
    assert len(server.requests) == 2


# ------------------------------------------------------------------ sync pool without poll


def test_sync_pool_reuses_connections_without_select_poll(
    make_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows has no select.poll: a pooled connection must still be checked and reused."""

    def handler(conn: socket.socket, index: int, server: RawServer) -> None:
        buf = bytearray()
        while server.next_request(conn, buf) is not None:
            conn.sendall(OK)
            if len(server.requests) == 2:
                break  # closes the connection after the second answer

    server = make_server(handler)
    monkeypatch.delattr(select, "poll", raising=False)
    pool = SyncHTTP(pool_size=2, verify_ssl=True, proxy=None)
    try:
        results = []
        for _ in range(2):
            response = pool.send(post(server.url), T)
            results.append((response.status, response.read()))
            response.close()
        assert server.accepted == 1  # reused
        # the server closed the pooled connection: detected, a fresh one is used
        while server.threads[0].is_alive():
            server.threads[0].join(0.05)
        response = pool.send(post(server.url), T)
        results.append((response.status, response.read()))
        assert results == [(200, b'{"ok":true}')] * 3
        assert server.accepted == 2
    finally:
        pool.close()


# ------------------------------------------------------------------ malformed Content-Length


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_non_ascii_digit_content_length_is_a_typed_error(mode: str, make_server: Any) -> None:
    """'²'.isdigit() is True but int('²') raises: a foreign ValueError escaped."""

    def handler(conn: socket.socket, index: int, server: RawServer) -> None:
        server.next_request(conn, bytearray())
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\nab")

    server = make_server(handler)
    if mode == "sync":
        pool = SyncHTTP(pool_size=1, verify_ssl=True, proxy=None)
        with pytest.raises(APIConnectionError, match="Content-Length"):
            pool.send(post(server.url), T)
        pool.close()
    else:

        async def run() -> None:
            pool = AsyncHTTP(limit=1, verify_ssl=True, proxy=None)
            try:
                await async_call(pool, post(server.url))
            finally:
                await pool.close()

        with pytest.raises(APIConnectionError, match="Content-Length"):
            asyncio.run(run())


# ------------------------------------------------------------------ bare-LF heads


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_bare_lf_head_whose_body_holds_crlf_crlf(mode: str, make_server: Any) -> None:
    """The first head terminator wins: a CRLF CRLF inside the body of a bare-LF head was taken
    for the end of the head (body bytes parsed as headers: 'malformed header line')."""
    body = b"ab\r\n\r\ncdef"

    def handler(conn: socket.socket, index: int, server: RawServer) -> None:
        server.next_request(conn, bytearray())
        conn.sendall(b"HTTP/1.1 200 OK\nContent-Length: 10\nConnection: close\n\n" + body)

    server = make_server(handler)
    if mode == "sync":
        pool = SyncHTTP(pool_size=1, verify_ssl=True, proxy=None)
        try:
            response = pool.send(post(server.url), T)
            assert (response.status, response.read()) == (200, body)
        finally:
            pool.close()
    else:

        async def run() -> Any:
            pool = AsyncHTTP(limit=1, verify_ssl=True, proxy=None)
            try:
                return await async_call(pool, post(server.url))
            finally:
                await pool.close()

        assert asyncio.run(run()) == (200, body)
