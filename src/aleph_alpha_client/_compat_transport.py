"""Transports over other HTTP libraries: requests, aiohttp and httpx.

They implement the same protocols as our own transport (:mod:`aleph_alpha_client.transport`):
one attempt, no retries, no redirects (the shells do both), every library error mapped to
:class:`APIConnectionError` / :class:`APITimeoutError` / :class:`IncompleteStreamError`.
requests and aiohttp are used when a mocking library has patched them (see ``_mocks``); httpx
when the user passes ``http_client=`` or respx is active. Each library is imported on first use.

They keep the bounds of our own transport as the body arrives, piece by piece: the decoded
size of an answer (``max_response_size``), the first MiB of an error body (the rest is not
read), the deadline of a whole answer, the idle limit between the events of a stream and
``stream_timeout``. The library's per-read timeout (the idle limit) bounds each wait, so a
deadline that passes while the server is silent is noticed within one idle limit. The async
transports also bound the response head (a timer on the calling task); the sync ones cannot
(requests and httpx read it with a per-read timeout only). A redirect whose ``Location`` the
library cannot parse is refused as over ours (``APIResponseValidationError``), not retried as
a connection error.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Iterable, Iterator
from typing import Any, TypeVar

from ._config import Timeout
from ._exceptions import (
    AlephAlphaError,
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    IncompleteStreamError,
    MissingDependencyError,
)
from ._http11 import MAX_ERROR_BODY, ends_event, is_event_stream, timeout_error
from ._mocks import not_from
from ._request import HTTPRequest

T = TypeVar("T")

#: The size of the pieces a whole body is read in.
_PIECE = 64 * 1024

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


def _chain(err: BaseException) -> Iterator[BaseException]:
    """``err`` and the errors it was raised from (at most a few)."""
    seen = 0
    current: BaseException | None = err
    while current is not None and seen < 8:
        yield current
        seen += 1
        current = current.__cause__ or current.__context__


def _lower(headers: Any) -> dict[str, str]:
    if not hasattr(headers, "items"):  # a test's stand-in response
        return {}
    return {str(k).lower(): str(v) for k, v in headers.items()}


def _status_of(status: Any, url: str) -> int:
    """The status of a library's response; a test's stand-in (a mock) without an integer
    status is our connection error, not a ``TypeError`` from deep inside the client."""
    if isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 999:
        return status
    raise APIConnectionError(
        f"the response to {url} has no HTTP status (got {type(status).__name__})", url=url
    )


def _read_timeout(timeout: Timeout, stream: bool) -> float | None:
    # idle defaults to total (see Timeout); None only when both are unlimited.
    return timeout.idle if timeout.idle is not None else timeout.total


def _after(seconds: float | None) -> float | None:
    return None if seconds is None else time.monotonic() + seconds


def _answer_deadline(request: HTTPRequest, timeout: Timeout, started: float) -> float | None:
    """When a whole non-streaming answer must be in (``Timeout.total`` from sending)."""
    if request.stream or timeout.total is None:
        return None
    return started + timeout.total


class _Body:
    """A whole body taken piece by piece under the bounds of our own transport: at most
    ``max_body`` decoded bytes (more raises), of an error answer (status >= 400) the first
    :data:`MAX_ERROR_BODY` bytes (``add`` then says to stop: the rest is not read), and no
    piece after ``deadline``."""

    __slots__ = ("_cap", "_deadline", "_max", "_parts", "_size", "_timeout", "_url")

    def __init__(
        self,
        url: str,
        status: int,
        max_body: int | None,
        deadline: float | None,
        timeout: Timeout,
    ) -> None:
        self._url = url
        self._cap = MAX_ERROR_BODY if status >= 400 else None
        self._max = max_body
        self._deadline = deadline
        self._timeout = timeout
        self._parts: list[bytes] = []
        self._size = 0

    def add(self, piece: bytes) -> bool:
        """Take ``piece``; True once the error body is cut (read no further)."""
        if self._deadline is not None and time.monotonic() >= self._deadline:
            raise timeout_error("read", self._url, self._timeout)
        size = self._size + len(piece)
        if self._cap is not None and size >= self._cap:
            self._parts.append(piece[: self._cap - self._size])
            self._size = self._cap
            return True
        if self._max is not None and size > self._max:
            raise APIResponseValidationError(
                f"the answer is larger than {self._max} bytes ({self._url}); "
                "raise max_response_size to accept it"
            )
        self._parts.append(piece)
        self._size = size
        return False

    def take_all(self, pieces: Iterable[bytes]) -> bytes:
        """Add every piece (up to the cut of an error body); the body."""
        for piece in pieces:
            if piece and self.add(piece):
                break
        return self.body()

    def body(self) -> bytes:
        parts = self._parts
        return parts[0] if len(parts) == 1 else b"".join(parts)


class _StreamClock:
    """The time bounds of a stream, checked as each piece arrives: at most ``Timeout.read``
    between two *events* of a ``text/event-stream`` (bytes trickling in without ending an event
    do not reset it) and at most ``Timeout.stream`` from the head on."""

    __slots__ = ("_event_deadline", "_idle", "_stream_deadline", "_tail", "_timeout", "_url")

    def __init__(
        self, url: str, headers: dict[str, str], timeout: Timeout, stream_deadline: float | None
    ) -> None:
        self._url = url
        self._timeout = timeout
        self._idle = timeout.read
        events = is_event_stream(headers)
        self._event_deadline = _after(self._idle) if events else None
        self._stream_deadline = stream_deadline
        self._tail = b""

    def check(self, piece: bytes) -> None:
        """``piece`` arrived: raise our timeout error if it came too late."""
        stream_deadline, event_deadline = self._stream_deadline, self._event_deadline
        if stream_deadline is None and event_deadline is None:
            return
        now = time.monotonic()
        if stream_deadline is not None and now >= stream_deadline:
            raise timeout_error("stream", self._url, self._timeout)
        if event_deadline is not None:
            if now >= event_deadline:
                raise timeout_error("idle", self._url, self._timeout)
            if ends_event(self._tail, piece):
                self._event_deadline = now + (self._idle or 0.0)
            self._tail = piece[-3:]


async def _within(awaitable: Awaitable[T], seconds: float | None) -> T:
    """``await awaitable`` in this task, at most ``seconds`` (then ``asyncio.TimeoutError``).

    No task is made for it (``asyncio.wait_for`` would make one before Python 3.12): the
    library's own reads stay in step with ours, as without a limit.
    """
    if seconds is None:
        return await awaitable
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(max(seconds, 0.0)):
            return await awaitable
    task = asyncio.current_task()
    assert task is not None
    fired = []

    def expire() -> None:
        fired.append(True)
        task.cancel()

    handle = asyncio.get_running_loop().call_later(max(seconds, 0.0), expire)
    try:
        return await awaitable
    except asyncio.CancelledError:
        if fired:
            raise asyncio.TimeoutError from None
        raise
    finally:
        handle.cancel()


def _head_limit(request: HTTPRequest, timeout: Timeout) -> float | None:
    """How long the response head may take (``Timeout.read``, and ``total`` unless a stream)."""
    limits = [timeout.read] + ([] if request.stream else [timeout.total])
    present = [limit for limit in limits if limit is not None]
    return min(present) if present else None


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


def _invalid_location(url: str, err: BaseException) -> APIResponseValidationError:
    return APIResponseValidationError(
        f"the server redirected to an invalid URL ({url}): {_short(err)}"
    )


# ------------------------------------------------------------------------------ requests


def _official_method(session: Any, method: str) -> Any:
    """The session method the official sync client calls: ``session.post`` /
    ``session.get`` (a test that patches ``requests.Session.post`` sees our calls too; they
    go on through ``request``, ``send`` and the adapter), else ``session.request``."""
    if method == "POST":
        return session.post
    if method == "GET":
        return session.get
    return functools.partial(session.request, method)


def _official_async_method(session: Any, method: str) -> Any:
    """The session method the official async client reaches: ``ClientSession.request``
    (through aiohttp_retry), which goes on through ``_request`` (what aioresponses patches).
    A test may have patched ``ClientSession.post`` / ``.get`` instead (they go to
    ``_request`` directly, past ``request``): then that one, so every patch point sees us."""
    shortcut = {"POST": "post", "GET": "get"}.get(method)
    if shortcut is not None:
        defined = type(session).__dict__.get(shortcut)
        if defined is not None and not_from(defined, "aiohttp"):
            return getattr(session, shortcut)
    return functools.partial(session.request, method)


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
    def __init__(
        self, response: Any, request: HTTPRequest, timeout: Timeout, started: float
    ) -> None:
        self._response = response
        self._url = url = request.url
        self._timeout = timeout
        self._max_body = request.max_body
        self._stream = request.stream
        self._deadline = _answer_deadline(request, timeout, started)
        self._stream_deadline = _after(timeout.stream) if request.stream else None
        self._body: bytes | None = None
        self.status: int = _status_of(response.status_code, url)
        self.headers: dict[str, str] = _lower(response.headers)

    def _error(self, err: BaseException, streaming: bool) -> AlephAlphaError:
        return _requests_error(err, self._url, streaming=streaming)

    def read(self) -> bytes:
        if self._body is not None:
            return self._body
        response = self._response
        # a whole answer: by Timeout.total from sending; a stream's body: under one deadline
        deadline = _after(self._timeout.read) if self._stream else self._deadline
        body = _Body(self._url, self.status, self._max_body, deadline, self._timeout)
        try:
            if _is_requests_response(response):
                self._body = body.take_all(self._pieces(whole=True))
            else:
                # a test's stand-in response (mock.patch("requests.Session.post")); one that
                # gives only .json(), as the official client reads it, is read that way
                content = response.content
                if not isinstance(content, (bytes, bytearray)):
                    content = json.dumps(response.json()).encode()
                self._body = body.take_all([bytes(content)])
            return self._body
        except AlephAlphaError:  # ours already
            raise
        except Exception as err:
            raise self._error(err, False) from err
        finally:
            response.close()

    def iter_chunks(self) -> Iterator[bytes]:
        if self._body is not None:
            if self._body:
                yield self._body
            return
        clock = _StreamClock(self._url, self.headers, self._timeout, self._stream_deadline)
        try:
            for chunk in self._pieces():
                if chunk:
                    clock.check(chunk)
                    yield bytes(chunk)
        except AlephAlphaError:  # ours already
            raise
        except Exception as err:
            raise self._error(err, True) from err
        finally:
            self._response.close()

    def _pieces(self, whole: bool = False) -> Iterator[bytes]:
        """The decoded body as it arrives, in pieces of at most 64 KiB (urllib3 2 bounds
        what it decompresses per read)."""
        raw = self._response.raw
        read1 = getattr(raw, "read1", None)
        if read1 is None or not _takes_decode_content(read1):
            # urllib3 < 2, or a replayed body (vcrpy). A whole body in bounded pieces (with
            # chunk_size=None urllib3 1.26 reads a Content-Length body in one go, past every
            # limit); a stream as its chunks come, so no event waits for a full piece.
            return iter(self._response.iter_content(chunk_size=_PIECE if whole else None))
        # what has arrived, without waiting for a full buffer
        return iter(lambda: read1(_PIECE, decode_content=True), b"")

    def close(self) -> None:
        self._response.close()


def _is_requests_response(response: Any) -> bool:
    """Whether ``response`` is a real ``requests.Response`` (not a test's stand-in)."""
    import requests

    return issubclass(type(response), requests.Response) and response.raw is not None


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


#: The last response requests received in this thread (see RequestsTransport.send).
_kept = threading.local()


def _keep_response(response: Any, *args: Any, **kwargs: Any) -> None:
    _kept.response = response


class RequestsTransport:
    """A sync transport over a ``requests.Session`` (used while requests or below is mocked)."""

    def __init__(
        self, *, verify_ssl: bool = True, pool_size: int = 10, downloads: bool = False
    ) -> None:
        requests = _import("requests", "requests", "sending through a mocked requests")
        # downloads: GETs go through requests.get when a test patched it (the official
        # client downloaded images with requests.get)
        self._downloads = downloads
        self._session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=pool_size)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._verify = verify_ssl
        # With allow_redirects=False requests still parses a redirect's Location (for
        # response.next) and raises a bare ValueError on a bad one: the response, kept by this
        # hook, goes to the client instead, which refuses the Location as it does over ours.
        self._session.hooks["response"].append(_keep_response)

    def send(self, request: HTTPRequest, timeout: Timeout) -> _RequestsResponse:
        """Send one attempt; raise only our typed errors."""
        send = _official_method(self._session, request.method)
        if self._downloads and request.method == "GET":
            requests = sys.modules["requests"]
            if not_from(requests.get, "requests"):  # a test patched requests.get
                send = functools.partial(requests.get, hooks={"response": [_keep_response]})
        headers, payload = _as_official(request)
        headers = self._auth_on_session(headers)
        started = time.monotonic()
        _kept.response = None
        try:
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
            except ValueError:
                response = _kept.response
                if response is None or not response.is_redirect:
                    raise
            result = _RequestsResponse(response, request, timeout, started)
        except AlephAlphaError:  # ours already
            raise
        except Exception as err:
            raise _requests_error(err, request.url, streaming=False) from err
        finally:
            _kept.response = None
        if not request.stream:
            result.read()
        return result

    def _auth_on_session(self, headers: dict[str, str]) -> dict[str, Any]:
        """The token goes on the session, as the official client keeps it (a test's mock of
        ``Session.post`` then shows no token in its call arguments, nor in the message of a
        failed ``assert_called_with``); a request that must go without it (a redirect to
        another origin) says ``Authorization: None``, which requests honours over the
        session's, so no thread can send it the token."""
        out: dict[str, Any] = dict(headers)
        auth = out.pop("Authorization", None)
        if auth is None:
            out["Authorization"] = None
        elif self._session.headers.get("Authorization") != auth:
            self._session.headers["Authorization"] = auth
        return out

    def close(self) -> None:
        """Close the session's connections."""
        self._session.close()


def sync_mock_transport(
    route: str, *, verify_ssl: bool, pool_size: int, downloads: bool = False
) -> Any:
    """The sync transport for a mock route of :func:`~._mocks.sync_route` (not "default");
    ``downloads``: for ``Image.from_url`` and ``load_base64_from_url``."""
    if route == "requests":
        return RequestsTransport(verify_ssl=verify_ssl, pool_size=pool_size, downloads=downloads)
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
    too_large = getattr(aiohttp.http_exceptions, "DecompressSizeError", None)
    if too_large is not None and any(isinstance(e, too_large) for e in _chain(err)):
        # aiohttp's own bound: one read of compressed data expanding past 32 MiB
        return APIResponseValidationError(
            f"the answer is larger than aiohttp decompresses from one read ({url}): {_short(err)}"
        )
    if isinstance(err, (asyncio.TimeoutError, TimeoutError)):
        if streaming:
            return APITimeoutError(f"the stream went silent ({url})", url=url, phase="idle")
        return APITimeoutError(f"reading the answer timed out ({url})", url=url, phase="read")
    if streaming and isinstance(err, (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError)):
        return IncompleteStreamError(
            f"the connection broke in the middle of the stream ({url}): {_short(err)}"
        )
    return APIConnectionError(f"connection to {url} failed: {_short(err)}", url=url)


async def _aiohttp_body(response: Any, body: _Body) -> bytes:
    """The whole body of an aiohttp response, in pieces under ``body``'s bounds."""
    import aiohttp

    if not isinstance(response, aiohttp.ClientResponse):  # a test's stand-in
        return body.take_all([bytes(await response.read())])
    async for piece in response.content.iter_any():
        if piece and body.add(bytes(piece)):
            response.close()  # an error body cut short: the rest is not read
            break
    return body.body()


class _AiohttpResponse:
    def __init__(
        self, response: Any, request: HTTPRequest, timeout: Timeout, body: bytes | None
    ) -> None:
        self._response = response
        self._url = request.url
        self._timeout = timeout
        self._max_body = request.max_body
        self._body = body
        self._stream_deadline = _after(timeout.stream) if request.stream else None
        self.status: int = _status_of(response.status, self._url)
        self.headers: dict[str, str] = _lower(response.headers)

    async def read(self) -> bytes:
        if self._body is not None:
            return self._body
        idle = self._timeout.read
        body = _Body(self._url, self.status, self._max_body, _after(idle), self._timeout)
        try:
            self._body = await _within(_aiohttp_body(self._response, body), idle)
            return self._body
        except AlephAlphaError:  # ours already
            raise
        except Exception as err:
            raise _aiohttp_error(err, self._url, streaming=False) from err
        finally:
            self._response.release()

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        if self._body is not None:
            if self._body:
                yield self._body
            return
        clock = _StreamClock(self._url, self.headers, self._timeout, self._stream_deadline)
        try:
            async for chunk in self._response.content.iter_any():
                if chunk:
                    clock.check(chunk)
                    yield bytes(chunk)
        except AlephAlphaError:  # ours already
            raise
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
        send = _official_async_method(session, request.method)
        started = time.monotonic()
        try:
            # the head within Timeout.read (and total), a whole answer within total
            response = await _within(
                send(
                    request.url,
                    headers=headers,
                    allow_redirects=False,
                    timeout=client_timeout,
                    **body,
                ),
                _head_limit(request, timeout),
            )
        except AlephAlphaError:  # ours already
            raise
        except Exception as err:
            raise _aiohttp_error(err, request.url, streaming=False) from err
        if request.stream:
            return _AiohttpResponse(response, request, timeout, None)
        deadline = _answer_deadline(request, timeout, started)
        status = _status_of(response.status, request.url)
        bounds = _Body(request.url, status, request.max_body, deadline, timeout)
        try:
            content = await _within(_aiohttp_body(response, bounds), _left(deadline))
        except AlephAlphaError:
            response.close()
            raise
        except Exception as err:
            response.close()
            raise _aiohttp_error(err, request.url, streaming=False) from err
        except BaseException:  # cancelled while reading: the connection is not reusable
            response.close()
            raise
        return _AiohttpResponse(response, request, timeout, content)

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
    if isinstance(err, (httpx.TimeoutException, asyncio.TimeoutError, TimeoutError)):
        if streaming:
            return APITimeoutError(f"the stream went silent ({url})", url=url, phase="idle")
        return APITimeoutError(f"reading the answer timed out ({url})", url=url, phase="read")
    if streaming and isinstance(err, (httpx.RemoteProtocolError, httpx.ReadError)):
        return IncompleteStreamError(
            f"the connection broke in the middle of the stream ({url}): {_short(err)}"
        )
    if isinstance(err, httpx.RemoteProtocolError) and "location header" in str(err):
        # httpx parses a redirect's Location even with follow_redirects=False
        return _invalid_location(url, err)
    return APIConnectionError(f"connection to {url} failed: {_short(err)}", url=url)


def _httpx_timeout(timeout: Timeout, stream: bool) -> Any:
    import httpx

    read = _read_timeout(timeout, stream)
    return httpx.Timeout(connect=timeout.connect, read=read, write=read, pool=timeout.connect)


class _HttpxResponse:
    def __init__(
        self, response: Any, request: HTTPRequest, timeout: Timeout, started: float
    ) -> None:
        self._response = response
        self._url = request.url
        self._timeout = timeout
        self._max_body = request.max_body
        self._stream = request.stream
        self._deadline = _answer_deadline(request, timeout, started)
        self._stream_deadline = _after(timeout.stream) if request.stream else None
        self._body: bytes | None = None
        self.status: int = _status_of(response.status_code, self._url)
        self.headers: dict[str, str] = _lower(response.headers)

    def read(self) -> bytes:
        if self._body is not None:
            return self._body
        # a whole answer: by Timeout.total from sending; a stream's body: under one deadline
        deadline = _after(self._timeout.read) if self._stream else self._deadline
        body = _Body(self._url, self.status, self._max_body, deadline, self._timeout)
        try:
            self._body = body.take_all(self._response.iter_bytes())
            return self._body
        except AlephAlphaError:  # ours already
            raise
        except Exception as err:
            raise _httpx_error(err, self._url, streaming=False) from err
        finally:
            self._response.close()

    def iter_chunks(self) -> Iterator[bytes]:
        if self._body is not None:
            if self._body:
                yield self._body
            return
        clock = _StreamClock(self._url, self.headers, self._timeout, self._stream_deadline)
        try:
            for chunk in self._response.iter_bytes():
                if chunk:
                    clock.check(chunk)
                    yield bytes(chunk)
        except AlephAlphaError:  # ours already
            raise
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
        started = time.monotonic()
        try:
            built = self._client.build_request(
                request.method,
                request.url,
                headers=request.headers,
                content=request.body,
                timeout=_httpx_timeout(timeout, request.stream),
            )
            response = self._client.send(built, stream=True, follow_redirects=False)
        except AlephAlphaError:  # ours already
            raise
        except Exception as err:
            raise _httpx_error(err, request.url, streaming=False) from err
        result = _HttpxResponse(response, request, timeout, started)
        if not request.stream:
            result.read()
        return result

    def close(self) -> None:
        """Close the httpx client if we made it (yours stays open: you close it)."""
        if self._owned:
            self._client.close()


async def _httpx_body(response: Any, body: _Body) -> bytes:
    """The whole body of an httpx response, in pieces under ``body``'s bounds; closed after."""
    try:
        async for piece in response.aiter_bytes():
            if piece and body.add(piece):
                break  # an error body cut short: the rest is not read
        return body.body()
    finally:
        await response.aclose()


class _AsyncHttpxResponse:
    def __init__(
        self, response: Any, request: HTTPRequest, timeout: Timeout, body: bytes | None
    ) -> None:
        self._response = response
        self._url = request.url
        self._timeout = timeout
        self._max_body = request.max_body
        self._body = body
        self._stream_deadline = _after(timeout.stream) if request.stream else None
        self.status: int = _status_of(response.status_code, self._url)
        self.headers: dict[str, str] = _lower(response.headers)

    async def read(self) -> bytes:
        if self._body is not None:
            return self._body
        idle = self._timeout.read
        body = _Body(self._url, self.status, self._max_body, _after(idle), self._timeout)
        try:
            self._body = await _within(_httpx_body(self._response, body), idle)
            return self._body
        except AlephAlphaError:  # ours already
            raise
        except Exception as err:
            raise _httpx_error(err, self._url, streaming=False) from err

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        if self._body is not None:
            if self._body:
                yield self._body
            return
        clock = _StreamClock(self._url, self.headers, self._timeout, self._stream_deadline)
        try:
            async for chunk in self._response.aiter_bytes():
                if chunk:
                    clock.check(chunk)
                    yield bytes(chunk)
        except AlephAlphaError:  # ours already
            raise
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
        started = time.monotonic()
        try:
            built = self._client.build_request(
                request.method,
                request.url,
                headers=request.headers,
                content=request.body,
                timeout=_httpx_timeout(timeout, request.stream),
            )
            # the head within Timeout.read (and total), a whole answer within total
            response = await _within(
                self._client.send(built, stream=True, follow_redirects=False),
                _head_limit(request, timeout),
            )
        except AlephAlphaError:  # ours already
            raise
        except Exception as err:
            raise _httpx_error(err, request.url, streaming=False) from err
        if request.stream:
            return _AsyncHttpxResponse(response, request, timeout, None)
        deadline = _answer_deadline(request, timeout, started)
        status = _status_of(response.status_code, request.url)
        bounds = _Body(request.url, status, request.max_body, deadline, timeout)
        try:
            body = await _within(_httpx_body(response, bounds), _left(deadline))
        except AlephAlphaError:  # ours already
            raise
        except Exception as err:
            raise _httpx_error(err, request.url, streaming=False) from err
        return _AsyncHttpxResponse(response, request, timeout, body)

    async def close(self) -> None:
        """Close the httpx client if we made it (yours stays open: you close it)."""
        if self._owned:
            await self._client.aclose()
