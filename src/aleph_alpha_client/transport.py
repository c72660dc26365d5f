"""The public transport seam: what ``Client(transport=...)`` / ``AsyncClient(transport=...)`` take.

A transport sends one attempt of a fully built :class:`HTTPRequest` and returns a response; it
never retries, follows redirects, parses JSON or SSE: the clients do all of that the same way
over every transport. It raises only :class:`~aleph_alpha_client.APIConnectionError` /
:class:`~aleph_alpha_client.APITimeoutError` (and
:class:`~aleph_alpha_client.IncompleteStreamError` when a stream breaks). Our own HTTP/1.1
transport is the default; ``http_client=httpx.Client(...)`` wraps httpx in one.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ._config import Timeout
from ._transport import AsyncResponse, HTTPRequest, SyncResponse

__all__ = [
    "AsyncResponse",
    "AsyncTransportProtocol",
    "HTTPRequest",
    "SyncResponse",
    "SyncTransportProtocol",
    "Timeout",
]


@runtime_checkable
class SyncTransportProtocol(Protocol):
    """What ``Client(transport=...)`` takes: ``send`` one attempt, ``close`` the pool."""

    def send(self, request: HTTPRequest, timeout: Timeout) -> SyncResponse:
        """Send one attempt; return a response with ``status``, lower-case ``headers``,
        ``read()``, ``iter_chunks()`` and ``close()``; raise only our connection errors."""

    def close(self) -> None:
        """Close pooled connections; the transport may be used again afterwards."""


@runtime_checkable
class AsyncTransportProtocol(Protocol):
    """What ``AsyncClient(transport=...)`` takes: ``await send(...)``, ``await close()``."""

    async def send(self, request: HTTPRequest, timeout: Timeout) -> AsyncResponse:
        """Send one attempt (see :class:`SyncTransportProtocol`)."""

    async def close(self) -> None:
        """Close pooled connections; the transport may be used again afterwards."""
