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


_MISSING = object()

#: The last verdict per library, with the attribute values it was about: while they are the
#: same objects the verdict stands, so the check before every request is one tuple compare.
_VERDICTS: dict[str, tuple[tuple[Any, ...], bool]] = {}


def _own(owner: Any, *names: str) -> tuple[Any, ...]:
    """The attributes ``names`` as ``owner`` itself defines them (a class: its own dict)."""
    if isinstance(owner, type):
        found = owner.__dict__
        return tuple([found.get(name, _MISSING) for name in names])
    return tuple([getattr(owner, name, _MISSING) for name in names])


def _verdict(library: str, package: str, values: tuple[Any, ...]) -> bool:
    """True if any of ``values`` is not what ``package`` defined (cached while unchanged)."""
    seen = _VERDICTS.get(library)
    if seen is not None and seen[0] == values:
        return seen[1]
    verdict = any(value is _MISSING or _not_from(value, package) for value in values)
    _VERDICTS[library] = (values, verdict)
    return verdict


def _not_from(value: Any, package: str) -> bool:
    """True if ``value`` (a function or class) does not come from ``package``."""
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

    return _verdict("http.client", "http", _own(hc, "HTTPConnection", "HTTPSConnection"))


def _urllib3_patched() -> bool:
    pool = sys.modules.get("urllib3.connectionpool")
    if pool is None:
        return False
    http_pool = getattr(pool, "HTTPConnectionPool", None)
    https_pool = getattr(pool, "HTTPSConnectionPool", None)
    if http_pool is None or https_pool is None:
        return True
    values = (
        *_own(http_pool, "urlopen"),
        getattr(http_pool, "ConnectionCls", _MISSING),
        getattr(https_pool, "ConnectionCls", _MISSING),
    )
    return _verdict("urllib3", "urllib3", values)


def _requests_patched() -> bool:
    adapters = sys.modules.get("requests.adapters")
    sessions = sys.modules.get("requests.sessions")
    if adapters is None or sessions is None:
        return False
    values = (
        *_own(adapters.HTTPAdapter, "send"),
        # post and get: what the official client calls (tests patch them)
        *_own(sessions.Session, "send", "get_adapter", "request", "post", "get"),
    )
    return _verdict("requests", "requests", values)


def _aiohttp_patched() -> bool:
    client = sys.modules.get("aiohttp.client")
    if client is None:
        return False
    # post and get: what the official async client calls
    values = _own(client.ClientSession, "_request", "request", "post", "get")
    return _verdict("aiohttp", "aiohttp", values)


def _httpx_patched() -> bool:
    transports = sys.modules.get("httpx._transports.default")
    client = sys.modules.get("httpx._client")
    if transports is None or client is None:
        return False
    values = (
        *_own(transports.HTTPTransport, "handle_request"),
        *_own(transports.AsyncHTTPTransport, "handle_async_request"),
        *_own(client.Client, "_send_single_request"),
        *_own(client.AsyncClient, "_send_single_request"),
    )
    if _verdict("httpx", "httpx", values):
        return True
    pool = sys.modules.get("httpcore")
    if pool is None:
        return False
    values = (
        *_own(pool.ConnectionPool, "handle_request"),
        *_own(pool.AsyncConnectionPool, "handle_async_request"),
    )
    return _verdict("httpcore", "httpcore", values)


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
