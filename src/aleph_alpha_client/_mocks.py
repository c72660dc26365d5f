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
    filename = getattr(getattr(value, "__code__", None), "co_filename", None)
    if not isinstance(filename, str):  # a Mock (an AsyncMock fakes a __code__), a partial,
        return True  # a callable object: not the library's function
    filename = filename.replace("\\", "/")
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


def _sync_route() -> Route:
    if _sync_libraries_patched():
        return "requests"
    if _httpx_patched():
        return "httpx"
    return "default"


def _async_route() -> Route:
    if _aiohttp_patched():
        return "aiohttp"
    if _httpx_patched():
        return "httpx"
    if _sync_libraries_patched():
        return "requests"
    return "default"


# The fast path. Every value the checks above read lives in a module's or a class's own
# namespace; ``_watch`` lists those (namespace, name) pairs for the modules imported now.
# While the modules and the values are the same objects, so are both routes: the check
# before a request is then two short list compares.

#: module -> {its attribute the checks read: what they read of it, if it is a class};
#: a name read with getattr (inherited) is marked "^", the rest are the class's own.
_WATCHED: dict[str, dict[str, tuple[str, ...]]] = {
    "http.client": {"HTTPConnection": (), "HTTPSConnection": ()},
    "urllib3.connectionpool": {
        "HTTPConnectionPool": ("urlopen", "^ConnectionCls"),
        "HTTPSConnectionPool": ("^ConnectionCls",),
    },
    "requests.adapters": {"HTTPAdapter": ("send",)},
    "requests.sessions": {"Session": ("send", "get_adapter", "request", "post", "get")},
    "aiohttp.client": {"ClientSession": ("_request", "request", "post", "get")},
    "httpx._transports.default": {
        "HTTPTransport": ("handle_request",),
        "AsyncHTTPTransport": ("handle_async_request",),
    },
    "httpx._client": {
        "Client": ("_send_single_request",),
        "AsyncClient": ("_send_single_request",),
    },
    "httpcore": {
        "ConnectionPool": ("handle_request",),
        "AsyncConnectionPool": ("handle_async_request",),
    },
}
_MODULES = tuple(_WATCHED)
#: (modules, watched (namespace, name) pairs, their values, (sync route, async route)),
#: replaced as a whole (threads read one consistent tuple)
_state: tuple[Any, ...] = (None, (), None, ("default", "default"))


def _watch(modules: tuple[Any, ...]) -> list[tuple[Any, str]]:
    pairs: list[tuple[Any, str]] = []
    for module, attributes in zip(modules, _WATCHED.values()):
        if module is None:
            continue
        namespace = vars(module)
        for name, members in attributes.items():
            pairs.append((namespace, name))
            owner = namespace.get(name)
            if not isinstance(owner, type):
                continue  # replaced by something else: the module's value tells a change
            for member in members:
                if member.startswith("^"):  # every class on its lookup path
                    pairs.extend((cls.__dict__, member[1:]) for cls in owner.__mro__[:-1])
                else:
                    pairs.append((owner.__dict__, member))
    return pairs


def _routes() -> tuple[Route, Route]:
    global _state
    state = _state
    get = sys.modules.get
    modules = tuple([get(name) for name in _MODULES])
    if modules == state[0]:
        if [space.get(name, _MISSING) for space, name in state[1]] == state[2]:
            routes: tuple[Route, Route] = state[3]
            return routes
    watch = _watch(modules)
    values = [space.get(name, _MISSING) for space, name in watch]
    routes = (_sync_route(), _async_route())
    _state = (modules, watch, values, routes)
    return routes


def sync_route() -> Route:
    """Where ``Client`` must send now: through requests (it sees http.client, urllib3 and
    requests mocks), through httpx (respx and vcrpy's httpx patch), or our own transport."""
    return _routes()[0]


def async_route() -> Route:
    """Where ``AsyncClient`` must send now: aiohttp, httpx, requests (in a worker thread, when
    only a sync library is mocked) or our own transport."""
    return _routes()[1]
