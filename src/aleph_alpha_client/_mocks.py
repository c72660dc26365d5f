"""Which HTTP mocking library is active right now, so a mocked test never reaches the network.

Our default transport speaks HTTP/1.1 on its own sockets: it goes through neither requests,
urllib3, http.client nor aiohttp, which vcrpy, pytest-recording, ``responses``,
``requests-mock``, ``aioresponses``, httpretty (``socket``) and pook patch. Before each request the clients ask
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

__all__ = ["async_route", "not_from", "patched_libraries", "sync_route"]

Route = Literal["default", "requests", "aiohttp", "httpx"]


_MISSING = object()


def not_from(value: Any, package: str | tuple[str, ...]) -> bool:
    """True if ``value`` (a function or class) is not ``package``'s own: its module is not
    in the package, or (a function) its code is in a file outside it (a wrapper that copied
    the name and module of what it wraps). A Mock, a partial or a callable object is never."""
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    packages = (package,) if isinstance(package, str) else package
    module = getattr(value, "__module__", None)
    if not isinstance(module, str):
        return True
    owner = next((p for p in packages if module == p or module.startswith(p + ".")), None)
    if owner is None:
        return True
    if isinstance(value, type):
        return False
    filename = getattr(getattr(value, "__code__", None), "co_filename", None)
    if not isinstance(filename, str):  # an AsyncMock fakes a __code__
        return True
    filename = filename.replace("\\", "/")
    return f"/{owner}/" not in filename and not filename.endswith(f"/{owner}.py")


#: What mocks patch, per module: (library, the package its code lives in, {attribute of the
#: module: what is read of it if it is a class}). A member marked "^" is read as getattr does
#: (along the class's MRO); the others from the class's own namespace.
_WATCHED: dict[str, tuple[str, str | tuple[str, ...], dict[str, tuple[str, ...]]]] = {
    # socket-level fakes (httpretty, pytest-socket's guard); gevent and eventlet put their own
    # sockets there, which our transport can use
    "socket": (
        "socket",
        ("socket", "_socket", "gevent", "eventlet"),
        {"socket": (), "create_connection": ()},
    ),
    "http.client": ("http.client", "http", {"HTTPConnection": (), "HTTPSConnection": ()}),
    "urllib3.connectionpool": (
        "urllib3",
        "urllib3",
        {
            "HTTPConnectionPool": ("urlopen", "^ConnectionCls"),
            "HTTPSConnectionPool": ("^ConnectionCls",),
        },
    ),
    # what tests patch at the top: requests.get (the official image download), requests.Session
    "requests": ("requests", "requests", {"Session": (), "get": (), "post": (), "request": ()}),
    "requests.adapters": ("requests", "requests", {"HTTPAdapter": ("send",)}),
    "requests.sessions": (
        "requests",
        "requests",
        # post and get: what the official client calls (tests patch them)
        {"Session": ("send", "get_adapter", "request", "post", "get")},
    ),
    # post and get: what the official async client calls
    "aiohttp.client": (
        "aiohttp",
        "aiohttp",
        {"ClientSession": ("_request", "request", "post", "get")},
    ),
    "httpx._transports.default": (
        "httpx",
        "httpx",
        {
            "HTTPTransport": ("handle_request",),
            "AsyncHTTPTransport": ("handle_async_request",),
        },
    ),
    "httpx._client": (
        "httpx",
        "httpx",
        {
            "Client": ("send", "_send_single_request"),
            "AsyncClient": ("send", "_send_single_request"),
        },
    ),
    "httpcore": (
        "httpx",  # respx and vcrpy patch httpx through httpcore: the httpx route sees them
        "httpcore",
        {
            "ConnectionPool": ("handle_request",),
            "AsyncConnectionPool": ("handle_async_request",),
        },
    ),
}
_MODULES = tuple(_WATCHED)
_LIBRARIES = ("socket", "http.client", "urllib3", "requests", "aiohttp", "httpx")
_SYNC_LIBRARIES = frozenset({"socket", "http.client", "urllib3", "requests"})


class _Snapshot:
    """The watched values at one moment and what they mean.

    ``pairs`` are (namespace, name) places; ``values`` what they held when read (a class's
    own namespace is watched through the class object read in the same pass, so the two
    always belong together). ``patched`` and the routes are worked out from ``values``
    alone: a snapshot never pairs values with a verdict about other values.
    """

    __slots__ = ("async_route", "modules", "pairs", "patched", "sync_route", "values")

    def __init__(self, modules: tuple[Any, ...]) -> None:
        self.modules = modules
        pairs: list[tuple[Any, str]] = []
        values: list[Any] = []
        # (library, package, indices into values: the first one set is the value read)
        probes: list[tuple[str, str | tuple[str, ...], tuple[int, ...]]] = []
        for module, (library, package, attributes) in zip(modules, _WATCHED.values()):
            if module is None:
                continue
            namespace = vars(module)
            for name, members in attributes.items():
                owner = namespace.get(name, _MISSING)
                probes.append((library, package, (len(values),)))
                pairs.append((namespace, name))
                values.append(owner)
                if not isinstance(owner, type):
                    continue  # gone or replaced: its own probe says patched
                for member in members:
                    found: list[int] = []
                    name = member.lstrip("^")
                    # getattr's lookup path, up to the class that defines the member
                    for cls in owner.__mro__[:-1] if member.startswith("^") else (owner,):
                        found.append(len(values))
                        pairs.append((cls.__dict__, name))
                        values.append(cls.__dict__.get(name, _MISSING))
                        if values[-1] is not _MISSING:
                            break
                    probes.append((library, package, tuple(found)))
        self.pairs = pairs
        self.values = values
        patched: set[str] = set()
        for library, package, indices in probes:
            if library in patched:
                continue
            value = next((values[i] for i in indices if values[i] is not _MISSING), _MISSING)
            if value is _MISSING or not_from(value, package):
                patched.add(library)
        self.patched = [library for library in _LIBRARIES if library in patched]
        sync_patched = not _SYNC_LIBRARIES.isdisjoint(patched)
        sync: Route = "requests" if sync_patched else "httpx" if "httpx" in patched else "default"
        self.sync_route: Route = sync
        if "aiohttp" in patched:
            self.async_route: Route = "aiohttp"
        elif "httpx" in patched:
            self.async_route = "httpx"
        else:
            self.async_route = "requests" if sync_patched else "default"

    def holds(self, modules: tuple[Any, ...]) -> bool:
        """Whether nothing watched has changed since this snapshot."""
        if modules != self.modules:
            return False
        try:  # (subscripts: half the time of .get on class namespaces)
            return [space[name] for space, name in self.pairs] == self.values
        except KeyError:  # some watched name is not set (a member a class inherits)
            return [space.get(name, _MISSING) for space, name in self.pairs] == self.values


_snapshot: _Snapshot | None = None


def _current() -> _Snapshot:
    """The snapshot of now: the last one while nothing changed (two list compares)."""
    global _snapshot
    get = sys.modules.get
    modules = tuple([get(name) for name in _MODULES])
    snapshot = _snapshot
    if snapshot is None or not snapshot.holds(modules):
        snapshot = _snapshot = _Snapshot(modules)
    return snapshot


def patched_libraries() -> list[str]:
    """The HTTP libraries that something (a mock, vcrpy) has patched, e.g. ``["requests"]``."""
    return list(_current().patched)


def sync_route() -> Route:
    """Where ``Client`` must send now: through requests (it sees http.client, urllib3 and
    requests mocks), through httpx (respx and vcrpy's httpx patch), or our own transport."""
    return _current().sync_route


def async_route() -> Route:
    """Where ``AsyncClient`` must send now: aiohttp, httpx, requests (in a worker thread, when
    only a sync library is mocked) or our own transport."""
    return _current().async_route
