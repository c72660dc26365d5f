"""The blocking HTTP/1.1 transport of ``Client``: stdlib sockets + the sans-I/O ``_http11``.

Keep-alive connections are pooled per (scheme, host, port) in a thread-safe LIFO that keeps
at most ``pool_size`` idle sockets and never blocks. A request on a reused idle connection
that fails before any byte of the answer arrived is sent once more on a fresh connection
(the server had closed the idle connection). Every OS/TLS error is mapped to our typed
errors; nothing foreign escapes.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
)
from ._http11 import (
    SEPARATE_BODY_SIZE,
    BodyTooLargeError,
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
    parse_proxy,
    request_payload,
    split_url,
)
from ._socks import Socks5Handshake
from ._tls import TLSOverTLS

if TYPE_CHECKING:
    from ._config import Timeout
    from ._request import HTTPRequest

__all__ = ["SyncHTTP", "SyncHTTPResponse", "Target", "parse_proxy", "split_url"]

_RECV = 65536
_STREAM_RECV = 262144  # streams: large reads, decoded in bulk

_Key = tuple[str, str, int]


def _still_open(sock: socket.socket) -> bool:
    """Whether an idle keep-alive socket can carry a request: nothing may be readable on it.

    Readable means the server closed it (EOF), reset it or sent bytes nobody asked for. A TLS
    socket may also have records that carry no data (TLS 1.3 session tickets): those are
    consumed here.
    """
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        readable = bool(poller.poll(0))
    else:  # Windows has no poll(); select() is fine for one socket there
        try:
            readable = bool(select.select([sock], [], [], 0)[0])
        except (OSError, ValueError):
            return False
    if not readable:
        return True
    if isinstance(sock, TLSOverTLS):
        return sock.still_open()
    if not isinstance(sock, ssl.SSLSocket):
        return False
    timeout = sock.gettimeout()
    try:
        sock.setblocking(False)
        sock.recv(1)
    except ssl.SSLWantReadError:
        return True
    except OSError:
        return False
    finally:
        try:
            sock.settimeout(timeout)
        except OSError:
            pass
    return False  # data or EOF


class _Stale(Exception):
    """A reused idle connection failed before any answer byte: send again on a fresh one."""


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


# ------------------------------------------------------------------------------ response


def _after(seconds: float | None) -> float | None:
    return None if seconds is None else time.monotonic() + seconds


class SyncHTTPResponse:
    """An answer: ``status``, ``headers`` (lower-case keys), ``read()``, ``iter_chunks()``;
    our implementation of the public protocol :class:`~aleph_alpha_client.transport.SyncResponse`.

    Of a stream request, ``read()`` takes the whole body under one deadline (``Timeout.read``
    from the call) and ``max_body``; ``iter_chunks()`` of a ``text/event-stream`` answer
    waits at most ``Timeout.read`` between *events* (a trickle of bytes does not reset the
    clock) and at most ``Timeout.stream`` in all.
    """

    __slots__ = (
        "_body",
        "_key",
        "_max_body",
        "_owner",
        "_parser",
        "_pending",
        "_sock",
        "_stream_deadline",
        "_timeout",
        "_url",
        "headers",
        "status",
    )

    def __init__(
        self,
        owner: SyncHTTP,
        key: _Key,
        sock: socket.socket | None,
        parser: ResponseParser,
        url: str,
        body: bytes | None,
        pending: bytes,
        timeout: Timeout,
        max_body: int | None = None,
    ) -> None:
        self._owner = owner
        self._key = key
        self._sock = sock
        self._parser = parser
        self._url = url
        self._body = body
        self._pending = pending
        self._timeout = timeout
        self._max_body = max_body
        self._stream_deadline = _after(timeout.stream)
        self.status = parser.status
        self.headers = parser.headers

    def read(self) -> bytes:
        """The whole body (already read for non-streaming requests)."""
        if self._body is not None:
            return self._body
        parts = BodyBuffer()
        parts.add(self._pending)
        self._pending = b""
        self._parser.max_body = self._max_body
        if self._max_body is not None and self._parser.body_size > self._max_body:
            self._drop()
            raise APIResponseValidationError(
                f"the answer is larger than {self._max_body} bytes ({self._url})"
            )
        try:
            for chunk in self._chunks(False, _after(self._timeout.read)):
                parts.add(chunk)
        finally:
            self.close()
        self._body = parts.take()
        return self._body

    def iter_chunks(self) -> Iterator[bytes]:
        """The body as it arrives, in pieces of a bounded size."""
        if self._body is not None:
            if self._body:
                yield self._body
            return
        pending = self._pending
        if pending:
            self._pending = b""
            yield pending
        yield from self._chunks(True, None)

    def _chunks(self, streaming: bool, deadline: float | None) -> Iterator[bytes]:
        sock = self._sock
        parser = self._parser
        if sock is None or parser.done:
            self._finish()
            return
        url = self._url
        idle = self._timeout.read
        events = streaming and is_event_stream(self.headers)
        # an event stream: the idle clock runs from the last event, not the last read
        event_deadline = _after(idle) if events else None
        stream_deadline = self._stream_deadline if streaming else None
        tail = b""
        phase = "idle" if streaming else "read"
        try:
            recv = sock.recv
            feed = parser.feed
            while True:
                if parser.pending:
                    out = feed(b"")
                else:
                    limit: float | None = None if events else idle
                    phase = "idle" if streaming else "read"
                    for when, name in (
                        (deadline, "read"),
                        (event_deadline, "idle"),
                        (stream_deadline, "stream"),
                    ):
                        if when is not None:
                            left = when - time.monotonic()
                            if limit is None or left < limit:
                                limit, phase = left, name
                    if limit is not None and limit <= 0:
                        raise TimeoutError
                    sock.settimeout(limit)
                    data = recv(_STREAM_RECV)
                    out = feed(data) if data else parser.feed_eof()
                if events and out:
                    if event_deadline is not None and ends_event(tail, out):
                        event_deadline = _after(idle)
                    tail = out[-3:]
                if parser.done:
                    self._finish()
                    if out:
                        yield out
                    return
                if out:
                    yield out
        except TimeoutError as err:
            self._drop()
            raise timeout_error(phase, url, self._timeout) from err
        except BodyTooLargeError as err:
            self._drop()
            raise APIResponseValidationError(f"{err} ({url})") from err
        except (OSError, ProtocolError) as err:
            self._drop()
            raise io_error(err, url, streaming=streaming) from err

    def _finish(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            if self._parser.keep_alive and self._parser.done:
                self._owner._release(self._key, sock)
            else:
                _close(sock)

    def _drop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            _close(sock)

    def close(self) -> None:
        """Drop the connection unless the body was read to its end (then it is pooled)."""
        if self._parser.done:
            self._finish()
        else:
            self._drop()

    def __del__(self) -> None:
        sock = self._sock
        if sock is not None:
            self._sock = None
            _close(sock)


# ------------------------------------------------------------------------------ transport


class SyncHTTP:
    """A pool of keep-alive connections shared by a client and its copies; thread-safe.

    The pool behind :class:`~aleph_alpha_client._transport.SyncTransport`, which a client
    holds (it builds this pool with the environment's proxy rules and sends with its ``send``).
    """

    def __init__(
        self,
        *,
        pool_size: int,
        verify_ssl: bool,
        proxy: str | ProxyRules | None,
        ssl_context: ssl.SSLContext | None = None,
        cert: tuple[str, str | None] | None = None,
    ) -> None:
        self._pool_size = max(0, pool_size)
        self._verify = verify_ssl
        self._cert = cert
        self._context: ssl.SSLContext | None = ssl_context
        self._proxies = ProxyRules.coerce(proxy)
        self._idle: dict[_Key, list[socket.socket]] = {}
        self._lock = threading.Lock()

    # -------------------------------------------------------------- pool

    def _pop(self, key: _Key) -> socket.socket | None:
        while True:
            with self._lock:
                idle = self._idle.get(key)
                if not idle:
                    return None
                sock = idle.pop()
            if _still_open(sock):
                return sock
            _close(sock)

    def _release(self, key: _Key, sock: socket.socket) -> None:
        with self._lock:
            idle = self._idle.get(key)
            if idle is None:
                idle = self._idle[key] = []
            if len(idle) < self._pool_size:
                idle.append(sock)
                return
        _close(sock)

    def close(self) -> None:
        """Close every idle connection (the transport stays usable)."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for socks in idle.values():
            for sock in socks:
                _close(sock)

    def __del__(self) -> None:
        try:
            idle = self._idle
        except AttributeError:
            return
        for socks in idle.values():
            for sock in socks:
                _close(sock)

    # -------------------------------------------------------------- connect

    def _ssl(self) -> ssl.SSLContext:
        context = self._context
        if context is None:
            context = self._context = make_ssl_context(self._verify, self._cert)
        return context

    def _connect(self, target: Target, proxy: Proxy | None, timeout: float | None) -> Any:
        """A connection to ``target`` (through ``proxy``), opened within ``timeout`` seconds.

        The whole of it (TCP, TLS to the proxy, CONNECT or the SOCKS handshake, TLS to the
        API) is under one deadline: a proxy that answers a byte at a time cannot hold it.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        sock: Any = None
        try:
            if proxy is None:
                sock = socket.create_connection((target.host, target.port), timeout=timeout)
            else:
                sock = socket.create_connection((proxy.host, proxy.port), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if proxy is not None:
                if proxy.tls:
                    sock.settimeout(_left(deadline))
                    sock = self._ssl().wrap_socket(sock, server_hostname=proxy.host)
                if proxy.socks:
                    self._socks(sock, target, proxy, deadline)
                elif target.scheme == "https":
                    self._tunnel(sock, target, proxy, deadline)
            if target.scheme == "https":
                sock.settimeout(_left(deadline))
                if isinstance(sock, ssl.SSLSocket):  # TLS to the API inside TLS to the proxy
                    inner = TLSOverTLS(sock, self._ssl(), target.host)
                    sock = inner
                    inner.do_handshake()
                else:
                    sock = self._ssl().wrap_socket(sock, server_hostname=target.host)
            return sock
        except (OSError, ProtocolError) as err:
            if sock is not None:
                _close(sock)
            raise connect_error(err, target.url) from err
        except BaseException:
            if sock is not None:
                _close(sock)
            raise

    def _tunnel(
        self, sock: socket.socket, target: Target, proxy: Proxy, deadline: float | None
    ) -> None:
        authority = f"{target.authority_host}:{target.port}"
        extra = {"Proxy-Authorization": proxy.auth} if proxy.auth else None
        sock.settimeout(_left(deadline))
        sock.sendall(serialize_request("CONNECT", authority, authority, {}, None, extra))
        parser = ResponseParser("CONNECT")
        while not parser.head_done:
            sock.settimeout(_left(deadline))
            data = sock.recv(_RECV)
            if not data:
                parser.feed_eof()
            parser.feed(data)
        if not 200 <= parser.status < 300:
            raise APIConnectionError(
                f"proxy error for {target.url}: {proxy.shown} answered CONNECT with "
                f"{parser.status}"
                + (" (check the proxy credentials)" if parser.status == 407 else ""),
                url=target.url,
                retryable=parser.status != 407,  # wrong or missing credentials: not retried
            )

    def _socks(
        self, sock: socket.socket, target: Target, proxy: Proxy, deadline: float | None
    ) -> None:
        host = target.host
        if not proxy.remote_dns:
            sock.settimeout(_left(deadline))
            host = str(socket.getaddrinfo(host, target.port, type=socket.SOCK_STREAM)[0][4][0])
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
            sock.settimeout(_left(deadline))
            if out:
                sock.sendall(out)
            data = b""
            while len(data) < handshake.need:
                sock.settimeout(_left(deadline))
                piece = sock.recv(handshake.need - len(data))
                if not piece:
                    break
                data += piece
            out = handshake.receive(data)

    # -------------------------------------------------------------- send

    def send(self, request: HTTPRequest, timeout: Timeout) -> SyncHTTPResponse:
        """Send one attempt and read the head (and, unless streaming, the whole body)."""
        started = time.monotonic()
        target = split_url(request.url)
        proxy = None if self._proxies is None else self._proxies.for_target(target)
        payload = request_payload(request, target, proxy)
        deadline = None
        if not request.stream and timeout.total is not None:
            deadline = started + timeout.total
        sock = self._pop(target.key)
        if sock is not None:
            try:
                return self._exchange(sock, True, target, request, payload, timeout, deadline)
            except _Stale:
                pass
        sock = self._connect(target, proxy, timeout.connect)
        return self._exchange(sock, False, target, request, payload, timeout, deadline)

    def _exchange(
        self,
        sock: socket.socket,
        reused: bool,
        target: Target,
        request: HTTPRequest,
        payload: bytes,
        timeout: Timeout,
        deadline: float | None,
    ) -> SyncHTTPResponse:
        url = target.url
        max_body = getattr(request, "max_body", None)
        parser = ResponseParser(request.method, max_body=None if request.stream else max_body)
        read_limit = timeout.read
        got_bytes = False
        body = request.body
        # the whole head (1xx answers included) arrives within ``read`` of sending
        head_deadline = _after(read_limit)
        if deadline is not None and (head_deadline is None or deadline < head_deadline):
            head_deadline = deadline
        phase = "head"
        try:
            sock.settimeout(_limit(None, head_deadline, url))
            try:
                sock.sendall(payload)
                if body is not None and len(body) >= SEPARATE_BODY_SIZE:
                    sock.sendall(body)
            except TimeoutError:
                raise
            except OSError as err:
                if reused:
                    raise _Stale() from err
                raise
            out = b""
            while True:
                sock.settimeout(_limit(None, head_deadline, url))
                data = sock.recv(_RECV)
                if not data:
                    if reused and not got_bytes:
                        raise _Stale()
                    if not got_bytes:
                        raise APIConnectionError(
                            f"the server closed the connection without answering ({url})",
                            url=url,
                        )
                    out = parser.feed_eof()
                else:
                    got_bytes = True
                    out = parser.feed(data)
                if parser.head_done:
                    break
            if request.stream:
                response = SyncHTTPResponse(
                    self, target.key, sock, parser, url, None, out, timeout, max_body
                )
                if parser.done:
                    response._finish()
                return response
            phase = "read"
            parts = BodyBuffer()
            parts.add(out)
            while not parser.done:
                if parser.pending:
                    out = parser.feed(b"")
                else:
                    sock.settimeout(_limit(read_limit, deadline, url))
                    data = sock.recv(_RECV)
                    out = parser.feed(data) if data else parser.feed_eof()
                if out:
                    parts.add(out)
        except _Stale:
            _close(sock)
            raise
        except TimeoutError as err:
            _close(sock)
            raise timeout_error(phase, url, timeout) from err
        except BodyTooLargeError as err:
            _close(sock)
            raise APIResponseValidationError(
                f"{err} ({url}); raise max_response_size to accept it"
            ) from err
        except (OSError, ProtocolError, APIConnectionError) as err:
            _close(sock)
            raise io_error(err, url) from err
        except BaseException:
            _close(sock)
            raise
        if parser.keep_alive:
            self._release(target.key, sock)
        else:
            _close(sock)
        body_bytes = parts.take()
        del parts
        return SyncHTTPResponse(self, target.key, None, parser, url, body_bytes, b"", timeout)


def _left(deadline: float | None) -> float | None:
    """The seconds left before a connect deadline (TimeoutError once it passed)."""
    if deadline is None:
        return None
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("connect deadline passed")
    return remaining


def _limit(read: float | None, deadline: float | None, url: str) -> float | None:
    """The socket timeout now: the idle limit, cut to what is left before the deadline."""
    if deadline is None:
        return read
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    if read is None or remaining < read:
        return remaining
    return read
