"""The seam to the network: our own HTTP/1.1 client, sync (sockets) and async (asyncio).

The sans-I/O parser and serializer live in ``_http11``; ``_sync_http`` drives them over
blocking sockets for ``Client``, ``_async_http`` over an asyncio Protocol for
``AsyncClient``. Both are imported when a transport is first built, not at package import.
Every OS/TLS/protocol error is mapped there to :class:`APIConnectionError` /
:class:`APITimeoutError` (or :class:`IncompleteStreamError` for a stream cut short), with
``raise ... from err``. Nothing here retries, follows redirects or parses JSON: the shells and
the core do that.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from ._config import Timeout
from ._exceptions import InvalidArgumentError, InvalidArgumentTypeError
from ._request import HTTPRequest

if TYPE_CHECKING:
    import ssl

    from ._async_http import AsyncHTTP
    from ._proxy import ProxyRules
    from ._sync_http import SyncHTTP

__all__ = [
    "AsyncResponse",
    "AsyncTransport",
    "HTTPRequest",
    "SyncResponse",
    "SyncTransport",
    "check_tls",
    "check_transport",
]


def _proxy_rules() -> ProxyRules | None:
    """The proxy rules of the environment (HTTP(S)_PROXY, ALL_PROXY, NO_PROXY), read once
    per transport and applied per request target; None when no proxy is configured."""
    from ._proxy import ProxyRules

    rules = ProxyRules.from_environment()
    return None if rules.empty else rules


class SyncResponse(Protocol):
    """A response of the sync transport: ``status``, ``headers`` (lower-case keys)."""

    status: int
    headers: dict[str, str]

    def read(self) -> bytes:
        """The whole body (already read for non-streaming requests)."""

    def iter_chunks(self) -> Iterator[bytes]:
        """The body as it arrives; each read waits at most the idle timeout."""

    def close(self) -> None:
        """Give the connection back (or drop it if the body was not read to the end)."""


class AsyncResponse(Protocol):
    """A response of the async transport: ``status``, ``headers`` (lower-case keys)."""

    status: int
    headers: dict[str, str]

    async def read(self) -> bytes:
        """The whole body; releases the connection."""

    def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives; each read waits at most the idle timeout."""

    def close(self) -> None:
        """Release the connection (dropped if the body was not read to the end)."""


class SyncTransport:
    """The transport a ``Client`` holds: a keep-alive connection pool (``_sync_http.SyncHTTP``,
    built with the environment's proxy rules) shared by a client and its ``with_options``
    copies.

    ``send(request, timeout)`` sends one attempt and raises only our typed errors; it is the
    pool's own method (bound once, no wrapper call per request). Its answers implement
    :class:`SyncResponse`.
    """

    send: Callable[[HTTPRequest, Timeout], SyncResponse]

    def __init__(
        self,
        *,
        pool_size: int,
        verify_ssl: bool,
        host: str,
        ssl_context: ssl.SSLContext | None = None,
        cert: tuple[str, str | None] | None = None,
    ) -> None:
        from ._sync_http import SyncHTTP

        self._http: SyncHTTP = SyncHTTP(
            pool_size=pool_size,
            verify_ssl=verify_ssl,
            proxy=_proxy_rules(),
            ssl_context=ssl_context,
            cert=cert,
        )
        self.send = self._http.send

    def close(self) -> None:
        """Close every pooled connection (the transport stays usable)."""
        self._http.close()


class AsyncTransport:
    """Connection pools, one per event loop, shared by a client and its ``with_options`` copies.

    Each event loop that sends through it gets its own pool, so one ``AsyncClient`` can serve
    several loops in several threads at once: a connection is only ever touched by the loop
    (and thread) that opened it. The pool of a loop that has ended is dropped at the next
    call. It can be built outside a loop, closed, and used again afterwards; a transport
    dropped without ``close()`` closes its sockets when it is garbage-collected.
    """

    def __init__(
        self,
        *,
        limit: int,
        verify_ssl: bool,
        host: str,
        ssl_context: ssl.SSLContext | None = None,
        cert: tuple[str, str | None] | None = None,
    ) -> None:
        import threading

        #: What each loop's pool is built with.
        self._options: dict[str, Any] = {
            "limit": limit,
            "verify_ssl": verify_ssl,
            "proxy": _proxy_rules(),
            "ssl_context": ssl_context,
            "cert": cert,
        }
        self._pools: dict[asyncio.AbstractEventLoop, AsyncHTTP] = {}
        self._lock = threading.Lock()

    def _pool(self) -> AsyncHTTP:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            pool = self._new_pool(loop)
        return pool

    def _new_pool(self, loop: asyncio.AbstractEventLoop) -> AsyncHTTP:
        from ._async_http import AsyncHTTP

        with self._lock:
            pool = self._pools.get(loop)
            if pool is None:
                # the pools of loops that have ended: their sockets are closed right away
                for ended in [other for other in self._pools if other.is_closed()]:
                    self._pools.pop(ended).drop_all()
                pool = AsyncHTTP(**self._options)
                self._pools[loop] = pool
        return pool

    async def send(self, request: HTTPRequest, timeout: Timeout) -> AsyncResponse:
        """Send one attempt over the running loop's pool; raise only our typed errors."""
        return await self._pool().send(request, timeout)

    async def close(self) -> None:
        """Close the connections of every loop's pool.

        The running loop's connections are closed at once. Another loop that is still
        running closes its idle connections in its own thread, and its requests in flight
        finish undisturbed (their connections are not pooled again).
        """
        running = asyncio.get_running_loop()
        with self._lock:
            pools, self._pools = self._pools, {}
        for loop, pool in pools.items():
            if loop is running or loop.is_closed():
                pool.drop_all()
                continue
            try:
                loop.call_soon_threadsafe(pool.retire)
            except RuntimeError:  # that loop closed meanwhile
                pool.drop_all()


def check_transport(transport: Any, http_client: Any, *, sync: bool) -> Any:
    """The user's transport: ``transport=`` as given, ``http_client=`` (httpx) wrapped in one."""
    if transport is not None and http_client is not None:
        raise InvalidArgumentError("transport, http_client: pass one of them, not both")
    if http_client is not None:
        from ._compat_transport import AsyncHttpxTransport, HttpxTransport

        httpx = sys.modules.get("httpx")
        expected = None if httpx is None else (httpx.Client if sync else httpx.AsyncClient)
        if expected is None or not isinstance(http_client, expected):
            name = "httpx.Client" if sync else "httpx.AsyncClient"
            raise InvalidArgumentTypeError(
                f"http_client: expected an {name}, got {type(http_client).__name__}"
            )
        return HttpxTransport(http_client) if sync else AsyncHttpxTransport(http_client)
    if transport is None:
        return None
    send = getattr(transport, "send", None)
    if not callable(send) or not callable(getattr(transport, "close", None)):
        raise InvalidArgumentTypeError(
            f"transport: expected an object with send(request, timeout) and close(), "
            f"got {type(transport).__name__}"
        )
    if inspect.iscoroutinefunction(send) == sync:
        kind = "a sync send()" if sync else "an async send()"
        raise InvalidArgumentTypeError(
            f"transport: {'Client' if sync else 'AsyncClient'} needs a transport with {kind}"
        )
    return transport


def check_tls(ssl_context: Any, cert: Any, user_transport: Any) -> tuple[Any, Any]:
    """``ssl_context=`` and ``cert=`` checked (files loaded once); they need our transport."""
    from ._tls import check_cert, check_ssl_context

    context = check_ssl_context(ssl_context)
    pair = check_cert(cert)
    if context is not None and pair is not None:
        raise InvalidArgumentError(
            "ssl_context, cert: pass one of them (load the certificate into your context with "
            "context.load_cert_chain(...))"
        )
    if user_transport is not None and (context is not None or pair is not None):
        raise InvalidArgumentError(
            "ssl_context, cert: they configure the built-in transport; configure TLS on the "
            "transport or http_client you pass instead"
        )
    return context, pair
