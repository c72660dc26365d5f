"""The asyncio HTTP/1.1 transport of ``AsyncClient``: a Protocol feeding ``_http11``.

Each connection is an :class:`asyncio.Protocol` whose ``data_received`` feeds the sans-I/O
parser; a waiting coroutine is woken only when what it waits for (the head, body bytes, the
end of the message) is there. Timeouts are ``loop.call_at`` timers re-armed lazily, so a
request costs at most one timer. At most ``limit`` connections are open in total (a request
waits for a free one); idle ones are kept per (scheme, host, port), last in first out.
Streams pause reading while more than 1 MiB of their body waits to be consumed.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ._exceptions import APIConnectionError, APIResponseValidationError, APITimeoutError
from ._http11 import (
    SEPARATE_BODY_SIZE,
    BodyTooLargeError,
    IncompleteBodyError,
    ProtocolError,
    ResponseParser,
    ends_event,
    is_event_stream,
    serialize_request,
    timeout_error,
)
from ._net import (
    BodyBuffer,
    Proxy,
    ProxyRules,
    Target,
    connect_error,
    io_error,
    make_ssl_context,
    request_payload,
    split_url,
)
from ._socks import Socks5Handshake
from ._tls import async_tls_in_tls_error

if TYPE_CHECKING:
    from ._config import Timeout
    from ._request import HTTPRequest

__all__ = ["AsyncHTTP", "AsyncHTTPResponse"]

_HIGH_WATER = 1024 * 1024

_HEAD = 0  # wait for the response head
_DATA = 1  # wait for body bytes (or the end)
_DONE = 2  # wait for the end of the message

_Key = tuple[str, str, int]


class _Timeout(Exception):
    """A timer of a connection expired."""


class _Stale(Exception):
    """A reused idle connection failed before any answer byte: send again on a fresh one."""


def _hard_close(transport: Any) -> None:
    """Close a transport whose event loop is closed: close its socket right now.

    The loop can no longer run the transport's own close callbacks, so the socket is closed
    here and the transport is marked closed (no "unclosed transport" warning later).
    """
    inner = transport
    ssl_protocol = getattr(transport, "_ssl_protocol", None)
    if ssl_protocol is not None:
        transport._closed = True
        inner = getattr(ssl_protocol, "_transport", None) or transport
    sock = getattr(inner, "_sock", None)
    if sock is not None:
        inner._sock = None
        try:
            sock.close()
        except OSError:
            pass


def _wake_waiter(fut: asyncio.Future[None]) -> None:
    """Wake a request waiting for a slot, from any loop or thread (not if its loop ended)."""
    if fut.done():
        return
    loop = fut.get_loop()
    if loop.is_closed():
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    try:
        if loop is running:
            fut.set_result(None)
        else:
            loop.call_soon_threadsafe(_set_if_pending, fut)
    except RuntimeError:  # the loop closed meanwhile
        pass


def _set_if_pending(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class _Conn(asyncio.Protocol):
    """One connection: feeds received bytes to the parser of the current response."""

    def __init__(self, loop: asyncio.AbstractEventLoop, key: _Key) -> None:
        self.loop = loop
        self.key = key
        self.transport: Any = None
        self.parser: ResponseParser | None = None
        self.chunks = BodyBuffer()
        self.buffered = 0
        self.streaming = False
        self.paused = False
        self.draining = False
        self.closed = False
        self.dead = False  # discarded by the pool (counted out)
        self.got_bytes = False
        self.exc: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.want = _HEAD
        self.idle: float | None = None
        self.deadline: float | None = None
        self.last = 0.0
        self.handle: asyncio.TimerHandle | None = None

    # -------------------------------------------------------------- protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        parser = self.parser
        if parser is None or parser.done:
            # bytes nobody asked for: this connection cannot be trusted any more
            self.closed = True
            self.transport.abort()
            return
        self.got_bytes = True
        try:
            out = parser.feed(data)
        except ProtocolError as err:
            self._fail(err)
            return
        if parser.pending:
            self._schedule_drain()
        self._deliver(out)

    def _fail(self, err: BaseException) -> None:
        self.exc = err
        self.closed = True
        self.transport.abort()
        self._wake()

    def _schedule_drain(self) -> None:
        # the rest of a read decodes one bounded step per turn of the event loop: a gzip bomb
        # neither blocks the loop nor expands at once; reading pauses meanwhile
        if not self.draining:
            self.draining = True
            self.loop.call_soon(self._drain)

    def _drain(self) -> None:
        self.draining = False
        parser = self.parser
        if parser is None or self.exc is not None or not parser.pending:
            self._sync_reading()
            return
        if self.streaming and self.buffered > _HIGH_WATER:
            self._sync_reading()  # take() goes on
            return
        try:
            out = parser.feed(b"")
        except ProtocolError as err:
            self._fail(err)
            return
        if parser.pending:
            self._schedule_drain()
        self._deliver(out)

    def _sync_reading(self) -> None:
        if self.closed:
            return
        parser = self.parser
        pause = (parser is not None and parser.pending) or (
            self.streaming and self.buffered > _HIGH_WATER
        )
        if pause and not self.paused:
            self.paused = True
            self.transport.pause_reading()
        elif not pause and self.paused:
            self.paused = False
            self.transport.resume_reading()

    def _deliver(self, out: bytes) -> None:
        parser = self.parser
        assert parser is not None
        if out:
            self.chunks.add(out)
            self.buffered += len(out)
        self._sync_reading()
        waiter = self.waiter
        if waiter is not None:
            want = self.want
            if (
                parser.done
                or (want == _HEAD and parser.head_done)
                or (want == _DATA and self.chunks)
            ):
                if not waiter.done():
                    waiter.set_result(None)
            elif self.idle is not None:
                self.last = self.loop.time()

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        parser = self.parser
        if parser is not None and not parser.done and self.exc is None:
            if exc is None:
                try:
                    out = parser.feed_eof()
                except ProtocolError as err:
                    self.exc = err
                else:
                    if parser.pending:
                        self._schedule_drain()
                    if out:
                        self.chunks.add(out)
                        self.buffered += len(out)
            else:
                self.exc = exc
        self._wake()

    # -------------------------------------------------------------- waiting

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def start(self, parser: ResponseParser, streaming: bool) -> None:
        self.parser = parser
        self.streaming = streaming
        self.chunks = BodyBuffer()
        self.buffered = 0
        self.got_bytes = False
        self.exc = None

    def _satisfied(self, want: int) -> bool:
        parser = self.parser
        assert parser is not None
        if parser.done:
            return True
        if want == _HEAD:
            return parser.head_done
        if want == _DATA:
            return bool(self.chunks)
        return False

    async def wait(self, want: int, idle: float | None, deadline: float | None) -> None:
        """Wait until ``want`` holds; raise the connection's error or :class:`_Timeout`."""
        while not self._satisfied(want):
            if self.exc is not None:
                raise self.exc
            if self.closed and not self.draining:
                raise IncompleteBodyError("the connection closed")
            loop = self.loop
            waiter = self.waiter = loop.create_future()
            self.want = want
            self.idle = idle
            self.deadline = deadline
            self.last = loop.time()
            self._arm()
            try:
                await waiter
            finally:
                self.waiter = None
                handle = self.handle
                if handle is not None:
                    self.handle = None
                    handle.cancel()

    def _arm(self) -> None:
        when = None
        if self.idle is not None:
            when = self.last + self.idle
        if self.deadline is not None and (when is None or self.deadline < when):
            when = self.deadline
        if when is not None:
            self.handle = self.loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self.handle = None
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        now = self.loop.time()
        if (self.deadline is not None and now >= self.deadline) or (
            self.idle is not None and now - self.last >= self.idle
        ):
            waiter.set_exception(_Timeout())
        else:
            self._arm()

    def take(self) -> bytes:
        """The body bytes received so far (and resume reading if paused)."""
        data = self.chunks.take()
        self.buffered = 0
        parser = self.parser
        if parser is not None and parser.pending:
            self._schedule_drain()
        self._sync_reading()
        return data

    def close_now(self) -> None:
        """Close the connection from any context (its loop may be closed)."""
        self.closed = True
        transport = self.transport
        if transport is None:
            return
        loop = self.loop
        if loop.is_closed():
            _hard_close(transport)
        else:
            try:
                transport.abort()
            except RuntimeError:
                _hard_close(transport)


class AsyncHTTPResponse:
    """An answer: ``status``, ``headers`` (lower-case keys), ``read()``, ``iter_chunks()``;
    our implementation of the public protocol :class:`~aleph_alpha_client.transport.AsyncResponse`.

    Of a stream request, ``read()`` takes the whole body under one deadline (``Timeout.read``
    from the call) and ``max_body``; ``iter_chunks()`` of a ``text/event-stream`` answer
    waits at most ``Timeout.read`` between *events* and at most ``Timeout.stream`` in all.
    """

    __slots__ = (
        "_body",
        "_conn",
        "_max_body",
        "_owner",
        "_stream_deadline",
        "_timeout",
        "_url",
        "headers",
        "status",
    )

    def __init__(
        self,
        owner: AsyncHTTP,
        conn: _Conn | None,
        parser: ResponseParser,
        url: str,
        body: bytes | None,
        timeout: Timeout,
        max_body: int | None = None,
    ) -> None:
        self._owner = owner
        self._conn = conn
        self._url = url
        self._body = body
        self._timeout = timeout
        self._max_body = max_body
        stream = timeout.stream
        self._stream_deadline = (
            None if stream is None or conn is None else conn.loop.time() + stream
        )
        self.status = parser.status
        self.headers = parser.headers

    async def read(self) -> bytes:
        """The whole body (already read for non-streaming requests)."""
        if self._body is not None:
            return self._body
        conn = self._conn
        deadline = None
        if conn is not None:
            parser = conn.parser
            assert parser is not None
            max_body = parser.max_body = self._max_body
            if max_body is not None and parser.body_size > max_body:
                self._drop()
                raise APIResponseValidationError(
                    f"the answer is larger than {max_body} bytes ({self._url})"
                )
            idle = self._timeout.read
            deadline = None if idle is None else conn.loop.time() + idle
        parts = BodyBuffer()
        async for chunk in self._chunks(False, deadline):
            parts.add(chunk)
        self._body = parts.take()
        return self._body

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives, in pieces of a bounded size."""
        if self._body is not None:
            if self._body:
                yield self._body
            return
        async for chunk in self._chunks(True, None):
            yield chunk

    async def _chunks(self, streaming: bool, deadline: float | None) -> AsyncIterator[bytes]:
        conn = self._conn
        if conn is None:
            return
        parser = conn.parser
        assert parser is not None
        loop = conn.loop
        idle = self._timeout.read
        events = streaming and is_event_stream(self.headers)
        # an event stream: the idle clock runs from the last event, not the last read
        event_deadline = None if not events or idle is None else loop.time() + idle
        stream_deadline = self._stream_deadline if streaming else None
        tail = b""
        phase = "idle" if streaming else "read"
        try:
            while True:
                if conn.chunks:
                    data = conn.take()
                    if events:
                        if event_deadline is not None and ends_event(tail, data):
                            event_deadline = loop.time() + (idle or 0.0)
                        tail = data[-3:]
                    yield data
                    continue
                if parser.done:
                    self._finish()
                    return
                when = None
                for at in (deadline, event_deadline, stream_deadline):
                    if at is not None and (when is None or at < when):
                        when = at
                try:
                    await conn.wait(_DATA, None if events else idle, when)
                except _Timeout:
                    now = loop.time()
                    if stream_deadline is not None and now >= stream_deadline:
                        phase = "stream"
                    elif deadline is not None and now >= deadline:
                        phase = "read"
                    raise
        except _Timeout as err:
            self._drop()
            raise timeout_error(phase, self._url, self._timeout) from err
        except BodyTooLargeError as err:
            self._drop()
            raise APIResponseValidationError(f"{err} ({self._url})") from err
        except (OSError, ProtocolError) as err:
            self._drop()
            raise io_error(err, self._url, streaming=streaming) from err
        except BaseException:
            self._drop()
            raise

    def _finish(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._owner._release(conn)

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._owner._discard(conn)

    def close(self) -> None:
        """Drop the connection unless the body was read to its end (then it is pooled)."""
        conn = self._conn
        if conn is None:
            return
        parser = conn.parser
        if parser is not None and parser.done and not conn.chunks:
            self._finish()
        else:
            self._drop()

    def __del__(self) -> None:
        conn = self._conn
        if conn is not None:
            self._conn = None
            try:
                self._owner._discard(conn)
            except Exception:
                conn.close_now()


class AsyncHTTP:
    """A pool of keep-alive connections bound to the running event loop (one per loop of an
    :class:`~aleph_alpha_client._transport.AsyncTransport`).

    Built outside a loop, it binds to the loop of its first request; used from another loop
    later, it drops the connections of the old one (without awaiting) and starts afresh.
    """

    def __init__(
        self,
        *,
        limit: int,
        verify_ssl: bool,
        proxy: str | ProxyRules | None,
        ssl_context: ssl.SSLContext | None = None,
        cert: tuple[str, str | None] | None = None,
    ) -> None:
        self._limit = max(1, limit)
        self._verify = verify_ssl
        self._cert = cert
        self._context: ssl.SSLContext | None = ssl_context
        self._proxies = ProxyRules.coerce(proxy)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: dict[_Key, list[_Conn]] = {}
        self._all: set[_Conn] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._retired = False

    # -------------------------------------------------------------- pool

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            if self._loop is not None:
                self._drop_all()
            self._loop = loop
        return loop

    def drop_all(self) -> None:
        """Close every connection now, in flight or idle (from this pool's loop, or after
        the loop has ended)."""
        self._drop_all()

    def retire(self) -> None:
        """Close the idle connections; those in flight close when their answer is done."""
        self._retired = True
        for idle in self._idle.values():
            while idle:
                self._discard(idle.pop())

    def _drop_all(self) -> None:
        conns, self._all = self._all, set()
        self._idle = {}
        waiters, self._waiters = self._waiters, deque()
        for conn in conns:
            conn.dead = True
            conn.close_now()
        # requests waiting for a slot look again (every slot is free now); left waiting, they
        # would never be woken: the slots they wait for were counted in the old set
        for fut in waiters:
            _wake_waiter(fut)

    def _wake_one(self) -> None:
        waiters = self._waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    def _discard(self, conn: _Conn) -> None:
        if not conn.dead:
            conn.dead = True
            conn.close_now()
            self._all.discard(conn)
            self._wake_one()

    def _release(self, conn: _Conn) -> None:
        parser = conn.parser
        if (
            conn.dead
            or conn.closed
            or self._retired
            or parser is None
            or not parser.keep_alive
            or not parser.done
            or conn.loop is not self._loop
            or conn not in self._all
        ):
            self._discard(conn)
            return
        conn.parser = None
        conn.streaming = False
        idle = self._idle.get(conn.key)
        if idle is None:
            idle = self._idle[conn.key] = []
        idle.append(conn)
        self._wake_one()

    def _pop_idle(self, key: _Key) -> _Conn | None:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
            self._discard(conn)
        return None

    def _evict_one(self) -> bool:
        for idle in self._idle.values():
            if idle:
                self._discard(idle.pop(0))
                return True
        return False

    async def _acquire(
        self,
        loop: asyncio.AbstractEventLoop,
        target: Target,
        proxy: Proxy | None,
        connect: float | None,
        fresh: bool,
    ) -> tuple[_Conn, bool, float]:
        """A connection, whether it was reused, and how long the limit made us wait."""
        key = target.key
        waited = 0.0
        while True:
            if not fresh:
                conn = self._pop_idle(key)
                if conn is not None:
                    return conn, True, waited
            if len(self._all) < self._limit:
                break
            if self._evict_one():
                continue
            fut = loop.create_future()
            self._waiters.append(fut)
            since = loop.time()
            try:
                await fut
            except BaseException:
                if fut.done() and not fut.cancelled():
                    self._wake_one()  # pass the slot on
                raise
            waited += loop.time() - since
        conn = _Conn(loop, key)
        self._all.add(conn)
        try:
            await self._open(loop, conn, target, proxy, connect)
        except BaseException:
            self._discard(conn)
            raise
        return conn, False, waited

    def _ssl(self) -> ssl.SSLContext:
        context = self._context
        if context is None:
            context = self._context = make_ssl_context(self._verify, self._cert)
        return context

    async def _open(
        self,
        loop: asyncio.AbstractEventLoop,
        conn: _Conn,
        target: Target,
        proxy: Proxy | None,
        connect: float | None,
    ) -> None:
        # one deadline for all of it: TCP, TLS to the proxy, CONNECT or SOCKS, TLS to the API
        try:
            if connect is None:
                await self._open_inner(loop, conn, target, proxy)
            else:
                await asyncio.wait_for(self._open_inner(loop, conn, target, proxy), connect)
        except asyncio.TimeoutError as err:
            raise APITimeoutError(
                f"connecting to {target.url} timed out", url=target.url, phase="connect"
            ) from err
        except (OSError, ProtocolError, _Timeout) as err:
            raise connect_error(err, target.url) from err

    async def _open_inner(
        self, loop: asyncio.AbstractEventLoop, conn: _Conn, target: Target, proxy: Proxy | None
    ) -> None:
        if proxy is not None and proxy.socks:
            sock = await _socks_connect(loop, target, proxy)
            try:
                await loop.create_connection(
                    lambda: conn,
                    sock=sock,
                    ssl=self._ssl() if target.scheme == "https" else None,
                    server_hostname=target.host if target.scheme == "https" else None,
                )
            except BaseException:
                sock.close()
                raise
            return
        if proxy is None:
            await loop.create_connection(
                lambda: conn,
                target.host,
                target.port,
                ssl=self._ssl() if target.scheme == "https" else None,
                server_hostname=target.host if target.scheme == "https" else None,
            )
            return
        await loop.create_connection(
            lambda: conn,
            proxy.host,
            proxy.port,
            ssl=self._ssl() if proxy.tls else None,
            server_hostname=proxy.host if proxy.tls else None,
        )
        if target.scheme != "https":
            return
        authority = f"{target.authority_host}:{target.port}"
        extra = {"Proxy-Authorization": proxy.auth} if proxy.auth else None
        conn.start(ResponseParser("CONNECT"), False)
        conn.transport.write(serialize_request("CONNECT", authority, authority, {}, None, extra))
        await conn.wait(_HEAD, None, None)
        parser = conn.parser
        assert parser is not None
        if not 200 <= parser.status < 300:
            raise APIConnectionError(
                f"proxy error for {target.url}: {proxy.shown} answered CONNECT with "
                f"{parser.status}"
                + (" (check the proxy credentials)" if parser.status == 407 else ""),
                url=target.url,
                retryable=parser.status != 407,  # wrong or missing credentials: not retried
            )
        conn.parser = None
        transport = await loop.start_tls(
            conn.transport, conn, self._ssl(), server_hostname=target.host
        )
        conn.transport = transport

    async def close(self) -> None:
        """Close every connection of this pool."""
        self._drop_all()

    def __del__(self) -> None:
        try:
            conns = self._all
        except AttributeError:
            return
        for conn in conns:
            conn.dead = True
            conn.close_now()

    # -------------------------------------------------------------- send

    async def send(self, request: HTTPRequest, timeout: Timeout) -> AsyncHTTPResponse:
        """Send one attempt and read the head (and, unless streaming, the whole body)."""
        loop = self._bind()
        target = split_url(request.url)
        proxy = None if self._proxies is None else self._proxies.for_target(target)
        if proxy is not None and proxy.tls and target.scheme == "https":
            refused = async_tls_in_tls_error(proxy.shown, target.url)
            if refused is not None:  # Python 3.10: before any connection is made
                raise refused
        payload = request_payload(request, target, proxy)
        deadline = None
        if not request.stream and timeout.total is not None:
            deadline = loop.time() + timeout.total
        # the time spent waiting for a free slot (the limit) is not part of the attempt: a
        # request queued past its deadline would be sent and then time out at once
        conn, reused, waited = await self._acquire(loop, target, proxy, timeout.connect, False)
        if deadline is not None:
            deadline += waited
        if reused:
            try:
                return await self._exchange(conn, True, target, request, payload, timeout, deadline)
            except _Stale:
                pass
            conn, reused, waited = await self._acquire(loop, target, proxy, timeout.connect, True)
            if deadline is not None:
                deadline += waited
        return await self._exchange(conn, False, target, request, payload, timeout, deadline)

    async def _exchange(
        self,
        conn: _Conn,
        reused: bool,
        target: Target,
        request: HTTPRequest,
        payload: bytes,
        timeout: Timeout,
        deadline: float | None,
    ) -> AsyncHTTPResponse:
        url = target.url
        stream = request.stream
        max_body = getattr(request, "max_body", None)
        parser = ResponseParser(request.method, max_body=None if stream else max_body)
        conn.start(parser, stream)
        read_limit = timeout.read
        loop = conn.loop
        # the whole head (1xx answers included) arrives within ``read`` of sending
        head_deadline = None if read_limit is None else loop.time() + read_limit
        if deadline is not None and (head_deadline is None or deadline < head_deadline):
            head_deadline = deadline
        phase = "head"
        try:
            transport = conn.transport
            transport.write(payload)
            body = request.body
            if body is not None and len(body) >= SEPARATE_BODY_SIZE:
                transport.write(body)
            await conn.wait(_HEAD, None, head_deadline)
            if stream:
                return AsyncHTTPResponse(self, conn, parser, url, None, timeout, max_body)
            phase = "read"
            await conn.wait(_DONE, read_limit, deadline)
        except _Timeout:
            self._discard(conn)
            raise timeout_error(phase, url, timeout) from None
        except BodyTooLargeError as err:
            self._discard(conn)
            raise APIResponseValidationError(
                f"{err} ({url}); raise max_response_size to accept it"
            ) from err
        except (OSError, ProtocolError) as err:
            self._discard(conn)
            # The server closed the idle connection (EOF before any byte, or our write hit a
            # closed socket): send again once. A reset after the request went out is shown
            # to the retry policy instead (the server may have seen the request).
            if (
                reused
                and not conn.got_bytes
                and isinstance(err, (IncompleteBodyError, BrokenPipeError))
            ):
                raise _Stale() from err
            raise io_error(err, url) from err
        except BaseException:
            self._discard(conn)
            raise
        data = conn.take()
        self._release(conn)
        return AsyncHTTPResponse(self, None, parser, url, data, timeout)


async def _socks_connect(
    loop: asyncio.AbstractEventLoop, target: Target, proxy: Proxy
) -> socket.socket:
    """A socket to ``target`` through a SOCKS5 proxy (handshake done; TLS not yet)."""
    infos = await loop.getaddrinfo(proxy.host, proxy.port, type=socket.SOCK_STREAM)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setblocking(False)
        await loop.sock_connect(sock, address)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        host = target.host
        if not proxy.remote_dns:
            found = await loop.getaddrinfo(host, target.port, type=socket.SOCK_STREAM)
            host = str(found[0][4][0])
        handshake = Socks5Handshake(
            host,
            target.port,
            username=proxy.username,
            password=proxy.password,
            shown=proxy.shown,
            url=target.url,
        )
        out = handshake.start()
        while not handshake.done:
            if out:
                await loop.sock_sendall(sock, out)
            data = b""
            while len(data) < handshake.need:
                piece = await loop.sock_recv(sock, handshake.need - len(data))
                if not piece:
                    break
                data += piece
            out = handshake.receive(data)
    except BaseException:
        sock.close()
        raise
    return sock
