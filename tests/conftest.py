"""Shared fixtures: a scripted loopback server and clients pointed at it."""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from aleph_alpha_client import AsyncClient, Client
from raw_server import Handler, RawServer
from scripted_server import ScriptedServer

TOKEN = "test-token-SECRET-1234"

try:  # hypothesis checks behaviour, not speed: no per-example deadline on a loaded CI machine
    from hypothesis import settings as _hypothesis_settings

    _hypothesis_settings.register_profile("aleph-alpha-ci", deadline=None)
    _hypothesis_settings.load_profile("aleph-alpha-ci")
except ImportError:  # pragma: no cover - hypothesis is in the test extra
    pass


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """For .ci/run: the ids of failed tests go to ``$AA_CI_FAILED_LOG`` (re-run there once)."""
    path = os.environ.get("AA_CI_FAILED_LOG")
    if path and report.failed:
        with open(path, "a", encoding="utf-8") as log:
            log.write(report.nodeid + "\n")


#: The client modes the reliability tests run over: each client over each transport.
#: "sync"/"async" use our own HTTP/1.1 transport; the others pass ``transport=``
#: ("async-requests": requests in worker threads, as ``AsyncClient`` sends while only a sync
#: HTTP library is mocked).
TRANSPORT_MODES = [
    "sync",
    "async",
    "sync-httpx",
    "async-httpx",
    "sync-requests",
    "async-aiohttp",
    "async-requests",
]


#: The modes over another library's transport (all of TRANSPORT_MODES but our own two).
COMPAT_MODES = [mode for mode in TRANSPORT_MODES if "-" in mode]


def modes(*names: str, skip: dict[str, str] | None = None) -> list[Any]:
    """``names`` (default: TRANSPORT_MODES) as parameters, those in ``skip`` skipped with the
    reason given: the bound that transport does not keep (listed in docs/deployment.md)."""
    skip = skip or {}
    return [
        pytest.param(name, marks=pytest.mark.skip(reason=skip[name])) if name in skip else name
        for name in (names or TRANSPORT_MODES)
    ]


def make_transport(mode: str, verify_ssl: bool = True) -> Any:
    """The ``transport=`` of a mode (None: our default transport)."""
    from aleph_alpha_client import _compat_transport as ct

    kind = mode.partition("-")[2]
    if not kind:
        return None
    pytest.importorskip({"requests": "requests", "aiohttp": "aiohttp"}.get(kind, "httpx"))
    factories: dict[str, Any] = {
        "sync-httpx": ct.HttpxTransport,
        "async-httpx": ct.AsyncHttpxTransport,
        "sync-requests": ct.RequestsTransport,
        "async-aiohttp": ct.AiohttpTransport,
        "async-requests": ct.ThreadedTransport,
    }
    return factories[mode](verify_ssl=verify_ssl)


def run_client(mode: str, host: str, call: Callable[[Any], Any], **kwargs: Any) -> Any:
    """Build a ``Client`` (mode "sync...") or ``AsyncClient`` (mode "async...") for ``host``
    and return ``call(client)``, awaited when it is awaitable. No retries and a 10 s timeout
    unless ``kwargs`` say otherwise; the client is closed afterwards. A mode like
    "sync-httpx" sends over that transport (see TRANSPORT_MODES)."""
    kwargs.setdefault("total_retries", 0)
    kwargs.setdefault("request_timeout_seconds", 10)
    transport = make_transport(mode, kwargs.get("verify_ssl", True))
    if transport is not None:
        kwargs.setdefault("transport", transport)
    if mode.startswith("sync"):
        with Client(TOKEN, host=host, **kwargs) as c:
            return call(c)

    async def main() -> Any:
        async with AsyncClient(TOKEN, host=host, **kwargs) as c:
            result = call(c)
            if inspect.isawaitable(result):
                result = await result
            return result

    return asyncio.run(main())


def default_sigint() -> None:
    """``preexec_fn`` for children that a test stops with SIGINT.

    A background job of a non-interactive shell starts with SIGINT ignored, and children
    inherit that; Python then installs no KeyboardInterrupt handler and SIGINT does nothing.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ALEPH_ALPHA_API_KEY", "AA_TOKEN", "ALEPH_ALPHA_BASE_URL", "ALEPH_ALPHA_LOG"):
        monkeypatch.delenv(name, raising=False)
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def client(server: ScriptedServer) -> Iterator[Client]:
    with Client(TOKEN, host=server.url, total_retries=3, request_timeout_seconds=10) as c:
        yield c


@pytest.fixture
async def async_client(server: ScriptedServer) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(
        TOKEN, host=server.url, total_retries=3, request_timeout_seconds=10
    ) as c:
        yield c


@pytest.fixture
def make_server() -> Iterator[Callable[..., RawServer]]:
    """``make_server(handler, wrap=None)``: raw loopback servers, closed after the test."""
    servers: list[RawServer] = []

    def make(handler: Handler, wrap: Any = None) -> RawServer:
        server = RawServer(handler, wrap)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()
