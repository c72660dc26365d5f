"""Which HTTP mocking library is active right now, so a mocked test never reaches the network.

Our default transport speaks HTTP/1.1 on its own sockets: it goes through neither requests,
urllib3, http.client nor aiohttp, which vcrpy, pytest-recording, ``responses``,
``requests-mock`` and ``aioresponses`` patch. Before each request the clients ask
:func:`sync_route` / :func:`async_route` whether one of those libraries has replaced something;
if so, the request goes through that library (requests, aiohttp or httpx) so the mock sees it.

The check is structural, not a list of mock libraries: a function or class that no longer comes
from its own module (a ``mock.patch``, a vcrpy stub, a wrapper) counts as patched. It only looks
at modules already imported (``sys.modules``): nothing is imported here, and with no mocking
library loaded it costs a few dictionary look-ups.
"""

from __future__ import annotations

import sys
from typing import Any, Literal

__all__ = ["async_route", "patched_libraries", "sync_route"]

Route = Literal["default", "requests", "aiohttp", "httpx"]


def _foreign(owner: Any, name: str, package: str) -> bool:
    """True if ``owner.name`` is no longer the function/class that ``package`` defined."""
    try:
        value = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
    except (KeyError, AttributeError):
        return True
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    if isinstance(value, type):
        return not (value.__module__ or "").startswith(package)
    code = getattr(value, "__code__", None)
    if code is None:  # a Mock, a partial, a callable object: not the library's function
        return True
    filename = code.co_filename.replace("\\", "/")
    return f"/{package}/" not in filename and not filename.endswith(f"/{package}.py")


def _http_client_patched() -> bool:
    import http.client as hc

    return _foreign(hc, "HTTPConnection", "http") or _foreign(hc, "HTTPSConnection", "http")


def _urllib3_patched() -> bool:
    pool = sys.modules.get("urllib3.connectionpool")
    if pool is None:
        return False
    http_pool = getattr(pool, "HTTPConnectionPool", None)
    https_pool = getattr(pool, "HTTPSConnectionPool", None)
    if http_pool is None or https_pool is None:
        return True
    return (
        _foreign(http_pool, "urlopen", "urllib3")
        or not (getattr(http_pool, "ConnectionCls", None).__module__ or "").startswith("urllib3")
        or not (getattr(https_pool, "ConnectionCls", None).__module__ or "").startswith("urllib3")
    )


def _requests_patched() -> bool:
    adapters = sys.modules.get("requests.adapters")
    sessions = sys.modules.get("requests.sessions")
    if adapters is None or sessions is None:
        return False
    return (
        _foreign(adapters.HTTPAdapter, "send", "requests")
        or _foreign(sessions.Session, "send", "requests")
        or _foreign(sessions.Session, "get_adapter", "requests")
        or _foreign(sessions.Session, "request", "requests")
        or _foreign(sessions.Session, "post", "requests")  # what the official client calls
        or _foreign(sessions.Session, "get", "requests")
    )


def _aiohttp_patched() -> bool:
    client = sys.modules.get("aiohttp.client")
    if client is None:
        return False
    session = client.ClientSession
    return (
        _foreign(session, "_request", "aiohttp")
        or _foreign(session, "request", "aiohttp")
        or _foreign(session, "post", "aiohttp")  # what the official async client calls
        or _foreign(session, "get", "aiohttp")
    )


def _httpx_patched() -> bool:
    transports = sys.modules.get("httpx._transports.default")
    client = sys.modules.get("httpx._client")
    if transports is None or client is None:
        return False
    if (
        _foreign(transports.HTTPTransport, "handle_request", "httpx")
        or _foreign(transports.AsyncHTTPTransport, "handle_async_request", "httpx")
        or _foreign(client.Client, "_send_single_request", "httpx")
        or _foreign(client.AsyncClient, "_send_single_request", "httpx")
    ):
        return True
    pool = sys.modules.get("httpcore")
    if pool is None:
        return False
    return _foreign(pool.ConnectionPool, "handle_request", "httpcore") or _foreign(
        pool.AsyncConnectionPool, "handle_async_request", "httpcore"
    )


def patched_libraries() -> list[str]:
    """The HTTP libraries that something (a mock, vcrpy) has patched, e.g. ``["requests"]``."""
    checks = (
        ("http.client", _http_client_patched),
        ("urllib3", _urllib3_patched),
        ("requests", _requests_patched),
        ("aiohttp", _aiohttp_patched),
        ("httpx", _httpx_patched),
    )
    return [name for name, check in checks if check()]


def _sync_libraries_patched() -> bool:
    return _http_client_patched() or _urllib3_patched() or _requests_patched()


def sync_route() -> Route:
    """Where ``Client`` must send now: through requests (it sees http.client, urllib3 and
    requests mocks), through httpx (respx and vcrpy's httpx patch), or our own transport."""
    if _sync_libraries_patched():
        return "requests"
    if _httpx_patched():
        return "httpx"
    return "default"


def async_route() -> Route:
    """Where ``AsyncClient`` must send now: aiohttp, httpx, requests (in a worker thread, when
    only a sync library is mocked) or our own transport."""
    if _aiohttp_patched():
        return "aiohttp"
    if _httpx_patched():
        return "httpx"
    if _sync_libraries_patched():
        return "requests"
    return "default"
