"""Transports over other HTTP libraries: requests, aiohttp and httpx.

They implement the same protocols as our own transport (:mod:`aleph_alpha_client.transport`):
one attempt, no retries, no redirects (the shells do both), every library error mapped to
:class:`APIConnectionError` / :class:`APITimeoutError` / :class:`IncompleteStreamError`.
requests and aiohttp are used when a mocking library has patched them (see ``_mocks``); httpx
when the user passes ``http_client=`` or respx is active. Each library is imported on first use.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from ._config import Timeout
from ._exceptions import (
    AlephAlphaError,
    APIConnectionError,
    APITimeoutError,
    IncompleteStreamError,
    MissingDependencyError,
)
from ._request import HTTPRequest

__all__ = [
    "AiohttpTransport",
    "AsyncHttpxTransport",
    "HttpxTransport",
    "RequestsTransport",
    "ThreadedTransport",
]


def _import(module: str, extra: str, feature: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependencyError(module, extra, feature) from err


def _short(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return text if len(text) < 300 else text[:300] + "..."


def _lower(headers: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}


def _read_timeout(timeout: Timeout, stream: bool) -> float | None:
    # idle defaults to total (see Timeout); None only when both are unlimited.
    return timeout.idle if timeout.idle is not None else timeout.total


# ------------------------------------------------------------------------------ requests


def _as_official(request: HTTPRequest) -> tuple[dict[str, str], dict[str, Any]]:
    """Headers and body keyword as the official client passes them (``json=`` for a JSON
    body): recorders such as vcrpy store the request that way, so cassettes recorded with it
    match ours, and a test's ``mock.call_args.kwargs["json"]`` is there as before."""
    if request.body and "json" in request.headers.get("Content-Type", ""):
        headers = {k: v for k, v in request.headers.items() if k != "Content-Type"}
        return headers, {"json": json.loads(request.body)}
    return request.headers, {"data": request.body}


def _takes_decode_content(read1: Any) -> bool:
    """Whether ``read1`` is urllib3 2's (it decodes gzip itself), not a stand-in's."""
    try:
        parameters = inspect.signature(read1).parameters
    except (TypeError, ValueError):
        return False
    return "decode_content" in parameters


class _RequestsResponse:
    def __init__(self, response: Any, url: str, stream: bool) -> None:
        self._response = response
        self._url = url
        self._stream = stream
        status = response.status_code
        if not isinstance(status, int):  # a test's stand-in response without a status
            raise APIConnectionError(
                f"the response to {url} has no integer status_code (got {type(status).__name__})",
                url=url,
            )
        self.status: int = status
        headers = response.headers
        self.headers: dict[str, str] = _lower(headers) if hasattr(headers, "items") else {}

    def _error(self, err: BaseException, streaming: bool) -> AlephAlphaError:
        return _requests_error(err, self._url, streaming=streaming)

    def read(self) -> bytes:
        try:
            content = self._response.content
            if not isinstance(content, (bytes, bytearray)):
                # a test's stand-in response (mock.patch("requests.Session.post")) that gives
                # only .json(), as the official client reads it
                return json.dumps(self._response.json()).encode()
            return bytes(content)
        except Exception as err:
            raise self._error(err, False) from err
        finally:
            self._response.close()

    def iter_chunks(self) -> Iterator[bytes]:
        try:
            raw = self._response.raw
            read1 = getattr(raw, "read1", None)
            if read1 is None or not _takes_decode_content(read1):
                # urllib3 < 2, or a replayed body (vcrpy): whole chunks as they come
                chunks = self._response.iter_content(chunk_size=None)
            else:  # what has arrived, without waiting for a full buffer
                chunks = iter(lambda: read1(65536, decode_content=True), b"")
            for chunk in chunks:
                if chunk:
                    yield bytes(chunk)
        except Exception as err:
            raise self._error(err, True) from err
        finally:
            self._response.close()

    def close(self) -> None:
        self._response.close()


def _requests_error(err: BaseException, url: str, *, streaming: bool) -> AlephAlphaError:
    if isinstance(err, AlephAlphaError):  # ours already (raised by this module)
        return err
    import requests

    exc = requests.exceptions
    if isinstance(err, exc.ConnectTimeout):
        return APITimeoutError(f"connecting to {url} timed out", url=url, phase="connect")
    if isinstance(err, (exc.ReadTimeout, TimeoutError)) or "timed out" in str(err):
        if streaming:
            return APITimeoutError(f"the stream went silent ({url})", url=url, phase="idle")
        return APITimeoutError(f"reading the answer timed out ({url})", url=url, phase="read")
    import urllib3

    broken = (exc.ChunkedEncodingError, exc.ConnectionError, urllib3.exceptions.ProtocolError)
    if streaming and isinstance(err, broken):
        return IncompleteStreamError(
            f"the connection broke in the middle of the stream ({url}): {_short(err)}"
        )
    if isinstance(err, exc.SSLError):
        return APIConnectionError(f"TLS error talking to {url}: {_short(err)}", url=url)
    return APIConnectionError(f"connection to {url} failed: {_short(err)}", url=url)


class RequestsTransport:
    """A sync transport over a ``requests.Session`` (used while requests or below is mocked)."""

    def __init__(self, *, verify_ssl: bool = True, pool_size: int = 10) -> None:
        requests = _import("requests", "requests", "sending through a mocked requests")
        self._session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=pool_size)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._verify = verify_ssl

    def send(self, request: HTTPRequest, timeout: Timeout) -> _RequestsResponse:
        """Send one attempt; raise only our typed errors."""
        # Through session.post / session.get as the official client sends, so a test that
        # patches those (mock.patch("requests.Session.post")) sees our calls too.
        session = self._session
        by_method = {"POST": session.post, "GET": session.get}
        send = by_method.get(request.method)
        if send is None:
            send = functools.partial(session.request, request.method)
        headers, payload = _as_official(request)
        try:
            response = send(
                request.url,
                headers=headers,
                stream=True,
                allow_redirects=False,
                verify=self._verify,
                timeout=(timeout.connect, _read_timeout(timeout, request.stream)),
                **payload,
            )
            result = _RequestsResponse(response, request.url, request.stream)
        except Exception as err:
            raise _requests_error(err, request.url, streaming=False) from err
        if not request.stream:
            body = result.read()
            result.read = lambda: body  # type: ignore[method-assign]
        return result

    def close(self) -> None:
        """Close the session's connections."""
        self._session.close()


def sync_mock_transport(route: str, *, verify_ssl: bool, pool_size: int) -> Any:
    """The sync transport for a mock route of :func:`~._mocks.sync_route` (not "default")."""
    if route == "requests":
        return RequestsTransport(verify_ssl=verify_ssl, pool_size=pool_size)
    return HttpxTransport(verify_ssl=verify_ssl)


class _ThreadedResponse:
    def __init__(self, response: _RequestsResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers = response.headers

    async def read(self) -> bytes:
        return await asyncio.to_thread(self._response.read)

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        iterator = self._response.iter_chunks()
        done = object()
        while True:
            chunk = await asyncio.to_thread(next, iterator, done)
            if chunk is done:
                return
            yield chunk  # type: ignore[misc]

    def close(self) -> None:
        self._response.close()


class ThreadedTransport:
    """An async transport that runs :class:`RequestsTransport` in worker threads (used by
    ``AsyncClient`` when only a sync HTTP library is mocked, so the mock still sees it)."""

    def __init__(self, *, verify_ssl: bool = True, pool_size: int = 10) -> None:
        self._sync = RequestsTransport(verify_ssl=verify_ssl, pool_size=pool_size)

    async def send(self, request: HTTPRequest, timeout: Timeout) -> _ThreadedResponse:
        """Send one attempt; raise only our typed errors."""
        return _ThreadedResponse(await asyncio.to_thread(self._sync.send, request, timeout))

    async def close(self) -> None:
        """Close the session's connections."""
        self._sync.close()


# ------------------------------------------------------------------------------- aiohttp


def _aiohttp_error(err: BaseException, url: str, *, streaming: bool) -> AlephAlphaError:
    if isinstance(err, AlephAlphaError):  # ours already (raised by this module)
        return err
    import aiohttp

    if isinstance(err, aiohttp.ConnectionTimeoutError):
        return APITimeoutError(f"connecting to {url} timed out", url=url, phase="connect")
    if isinstance(err, (asyncio.TimeoutError, TimeoutError)):
        if streaming:
            return APITimeoutError(f"the stream went silent ({url})", url=url, phase="idle")
        return APITimeoutError(f"reading the answer timed out ({url})", url=url, phase="read")
    if streaming and isinstance(err, (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError)):
        return IncompleteStreamError(
            f"the connection broke in the middle of the stream ({url}): {_short(err)}"
        )
    return APIConnectionError(f"connection to {url} failed: {_short(err)}", url=url)


class _AiohttpResponse:
    def __init__(self, response: Any, url: str, body: bytes | None) -> None:
        self._response = response
        self._url = url
        self._body = body
        self.status: int = response.status
        self.headers: dict[str, str] = _lower(response.headers)

    async def read(self) -> bytes:
        if self._body is not None:
            return self._body
        try:
            return bytes(await self._response.read())
        except Exception as err:
            raise _aiohttp_error(err, self._url, streaming=False) from err
        finally:
            self._response.release()

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                if chunk:
                    yield bytes(chunk)
        except Exception as err:
            raise _aiohttp_error(err, self._url, streaming=True) from err
        finally:
            self._response.release()

    def close(self) -> None:
        self._response.release()


class AiohttpTransport:
    """An async transport over ``aiohttp`` (used while aiohttp is mocked): one
    ``ClientSession`` per event loop, so loops in several threads can share it."""

    #: ``close()`` closes the calling loop's session only; the transport stays usable.
    per_loop = True

    def __init__(self, *, verify_ssl: bool = True, limit: int = 100) -> None:
        import threading

        _import("aiohttp", "aiohttp", "sending through a mocked aiohttp")
        self._verify = verify_ssl
        self._limit = limit
        self._sessions: dict[asyncio.AbstractEventLoop, Any] = {}
        self._lock = threading.Lock()

    def _get_session(self) -> Any:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            import aiohttp

            with self._lock:
                # a loop that has ended can no longer close its session: forget it
                for ended in [other for other in self._sessions if other.is_closed()]:
                    del self._sessions[ended]
                connector = aiohttp.TCPConnector(
                    limit=self._limit, ssl=True if self._verify else False
                )
                session = aiohttp.ClientSession(connector=connector, auto_decompress=True)
                self._sessions[loop] = session
        return session

    async def send(self, request: HTTPRequest, timeout: Timeout) -> _AiohttpResponse:
        """Send one attempt; raise only our typed errors."""
        import aiohttp

        session = self._get_session()
        headers, body = _as_official(request)
        client_timeout = aiohttp.ClientTimeout(
            total=None if request.stream else timeout.total,
            connect=timeout.connect,
            sock_read=_read_timeout(timeout, request.stream),
        )
        # Through session.post / session.get as the official client sends, so a test that
        # patches those (mock.patch("aiohttp.ClientSession.post")) sees our calls too.
        by_method = {"POST": session.post, "GET": session.get}
        send = by_method.get(request.method)
        if send is None:
            send = functools.partial(session.request, request.method)
        try:
            response = await send(
                request.url,
                headers=headers,
                allow_redirects=False,
                timeout=client_timeout,
                **body,
            )
            content = None if request.stream else bytes(await response.read())
        except Exception as err:
            raise _aiohttp_error(err, request.url, streaming=False) from err
        return _AiohttpResponse(response, request.url, content)

    async def close(self) -> None:
        """Close this loop's session; another loop's stays open for its requests in flight
        until that loop closes the client (a loop that has ended is forgotten)."""
        running = asyncio.get_running_loop()
        with self._lock:
            session = self._sessions.pop(running, None)
            for ended in [other for other in self._sessions if other.is_closed()]:
                del self._sessions[ended]
        if session is not None and not session.closed:
            await session.close()


# --------------------------------------------------------------------------------- httpx


def _httpx_error(err: BaseException, url: str, *, streaming: bool) -> AlephAlphaError:
    if isinstance(err, AlephAlphaError):  # ours already (raised by this module)
        return err
    import httpx

    if isinstance(err, (httpx.ConnectTimeout, httpx.PoolTimeout)):
        return APITimeoutError(f"connecting to {url} timed out", url=url, phase="connect")
    if isinstance(err, httpx.TimeoutException):
        if streaming:
            return APITimeoutError(f"the stream went silent ({url})", url=url, phase="idle")
        return APITimeoutError(f"reading the answer timed out ({url})", url=url, phase="read")
    if streaming and isinstance(err, (httpx.RemoteProtocolError, httpx.ReadError)):
        return IncompleteStreamError(
            f"the connection broke in the middle of the stream ({url}): {_short(err)}"
        )
    return APIConnectionError(f"connection to {url} failed: {_short(err)}", url=url)


def _httpx_timeout(timeout: Timeout, stream: bool) -> Any:
    import httpx

    read = _read_timeout(timeout, stream)
    return httpx.Timeout(connect=timeout.connect, read=read, write=read, pool=timeout.connect)


class _HttpxResponse:
    def __init__(self, response: Any, url: str) -> None:
        self._response = response
        self._url = url
        self.status: int = response.status_code
        self.headers: dict[str, str] = _lower(response.headers)

    def read(self) -> bytes:
        try:
            return bytes(self._response.read())
        except Exception as err:
            raise _httpx_error(err, self._url, streaming=False) from err
        finally:
            self._response.close()

    def iter_chunks(self) -> Iterator[bytes]:
        try:
            for chunk in self._response.iter_bytes():
                if chunk:
                    yield bytes(chunk)
        except Exception as err:
            raise _httpx_error(err, self._url, streaming=True) from err
        finally:
            self._response.close()

    def close(self) -> None:
        self._response.close()


class HttpxTransport:
    """A sync transport over an ``httpx.Client`` (yours via ``http_client=``, or our own)."""

    def __init__(self, client: Any = None, *, verify_ssl: bool = True) -> None:
        httpx = _import("httpx", "httpx", "http_client=httpx.Client(...)")
        self._owned = client is None
        self._client = client if client is not None else httpx.Client(verify=verify_ssl)

    def send(self, request: HTTPRequest, timeout: Timeout) -> _HttpxResponse:
        """Send one attempt; raise only our typed errors."""
        try:
            built = self._client.build_request(
                request.method,
                request.url,
                headers=request.headers,
                content=request.body,
                timeout=_httpx_timeout(timeout, request.stream),
            )
            response = self._client.send(built, stream=True, follow_redirects=False)
        except Exception as err:
            raise _httpx_error(err, request.url, streaming=False) from err
        result = _HttpxResponse(response, request.url)
        if not request.stream:
            body = result.read()
            result.read = lambda: body  # type: ignore[method-assign]
        return result

    def close(self) -> None:
        """Close the httpx client if we made it (yours stays open: you close it)."""
        if self._owned:
            self._client.close()


class _AsyncHttpxResponse:
    def __init__(self, response: Any, url: str, body: bytes | None) -> None:
        self._response = response
        self._url = url
        self._body = body
        self.status: int = response.status_code
        self.headers: dict[str, str] = _lower(response.headers)

    async def read(self) -> bytes:
        if self._body is not None:
            return self._body
        try:
            return bytes(await self._response.aread())
        except Exception as err:
            raise _httpx_error(err, self._url, streaming=False) from err
        finally:
            await self._response.aclose()

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_bytes():
                if chunk:
                    yield bytes(chunk)
        except Exception as err:
            raise _httpx_error(err, self._url, streaming=True) from err
        finally:
            await self._response.aclose()

    def close(self) -> None:
        if self._body is None and not self._response.is_closed:
            try:
                asyncio.get_running_loop().create_task(self._response.aclose())
            except RuntimeError:
                pass


class AsyncHttpxTransport:
    """An async transport over an ``httpx.AsyncClient`` (yours via ``http_client=``, or ours)."""

    def __init__(self, client: Any = None, *, verify_ssl: bool = True) -> None:
        httpx = _import("httpx", "httpx", "http_client=httpx.AsyncClient(...)")
        self._owned = client is None
        self._client = client if client is not None else httpx.AsyncClient(verify=verify_ssl)

    async def send(self, request: HTTPRequest, timeout: Timeout) -> _AsyncHttpxResponse:
        """Send one attempt; raise only our typed errors."""
        try:
            built = self._client.build_request(
                request.method,
                request.url,
                headers=request.headers,
                content=request.body,
                timeout=_httpx_timeout(timeout, request.stream),
            )
            response = await self._client.send(built, stream=True, follow_redirects=False)
            body = None
            if not request.stream:
                try:
                    body = bytes(await response.aread())
                finally:
                    await response.aclose()
        except Exception as err:
            raise _httpx_error(err, request.url, streaming=False) from err
        return _AsyncHttpxResponse(response, request.url, body)

    async def close(self) -> None:
        """Close the httpx client if we made it (yours stays open: you close it)."""
        if self._owned:
            await self._client.aclose()
