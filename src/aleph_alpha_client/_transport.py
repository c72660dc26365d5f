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

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ._config import Timeout

if TYPE_CHECKING:
    import ssl

    from ._async_http import AsyncHTTP
    from ._proxy import ProxyRules
    from ._sync_http import SyncHTTP

__all__ = ["AsyncResponse", "AsyncTransport", "HTTPRequest", "SyncResponse", "SyncTransport"]


@dataclass
class HTTPRequest:
    """A request, fully built by the core: the transports send it as it is."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None = None
    stream: bool = False

    def __repr__(self) -> str:
        from ._config import redact_headers

        size = "None" if self.body is None else f"<{len(self.body)} bytes>"
        return (
            f"HTTPRequest(method={self.method!r}, url={self.url!r}, "
            f"headers={redact_headers(self.headers)!r}, body={size}, stream={self.stream!r})"
        )


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
    """A keep-alive connection pool shared by a client and its ``with_options`` copies."""

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
        self.send = self._http.send  # type: ignore[method-assign]

    def send(self, request: HTTPRequest, timeout: Timeout) -> SyncResponse:
        """Send one attempt; raise only our typed errors."""
        return self._http.send(request, timeout)

    def close(self) -> None:
        """Close every pooled connection (the transport stays usable)."""
        self._http.close()


class AsyncTransport:
    """A connection pool bound to the running event loop.

    It can be built outside a loop, closed, and used again afterwards; connections made in a
    loop that has ended are dropped, and a transport dropped without ``close()`` closes its
    sockets when it is garbage-collected.
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
        from ._async_http import AsyncHTTP

        self._http: AsyncHTTP = AsyncHTTP(
            limit=limit,
            verify_ssl=verify_ssl,
            proxy=_proxy_rules(),
            ssl_context=ssl_context,
            cert=cert,
        )
        self.send = self._http.send  # type: ignore[method-assign]

    async def send(self, request: HTTPRequest, timeout: Timeout) -> AsyncResponse:
        """Send one attempt; raise only our typed errors."""
        return await self._http.send(request, timeout)

    async def close(self) -> None:
        """Close every connection."""
        await self._http.close()
