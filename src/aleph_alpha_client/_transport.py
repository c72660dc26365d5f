"""The only code that touches the network: urllib3 for ``Client``, aiohttp for ``AsyncClient``.

Both libraries are imported when a transport is first built, not at package import. Every
foreign exception is mapped here to :class:`APIConnectionError` / :class:`APITimeoutError`
(or :class:`IncompleteStreamError` for a body cut short), with ``raise ... from err``.
Nothing here retries, follows redirects or parses JSON: the shells and the core do that.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ._config import Timeout
from ._exceptions import APIConnectionError, APITimeoutError, IncompleteStreamError

__all__ = ["AsyncResponse", "AsyncTransport", "HTTPRequest", "SyncResponse", "SyncTransport"]

_CHUNK = 64 * 1024


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


def _proxy_for(url: str) -> str | None:
    """The proxy the environment (HTTP(S)_PROXY, NO_PROXY) asks for, if any."""
    import urllib.request

    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme)
    if not proxy:
        return None
    if urllib.request.proxy_bypass_environment(parts.hostname or "", proxies):  # type: ignore[attr-defined]
        return None
    return proxy


def _lower_headers(items: Any) -> dict[str, str]:
    return {str(key).lower(): str(value) for key, value in items}


# --------------------------------------------------------------------------------------------
# sync: urllib3


def _map_urllib3_error(err: Exception, url: str, *, streaming: bool = False) -> Exception:
    from urllib3 import exceptions as u3

    if isinstance(err, u3.NameResolutionError):
        return APIConnectionError(f"could not resolve the host of {url}", url=url)
    if isinstance(err, u3.NewConnectionError):
        return APIConnectionError(f"could not connect to {url}: {_reason(err)}", url=url)
    if isinstance(err, u3.ConnectTimeoutError):
        return APITimeoutError(f"connecting to {url} timed out", url=url, phase="connect")
    if isinstance(err, u3.ReadTimeoutError):
        phase = "idle" if streaming else "read"
        what = "the stream went silent" if streaming else "reading the answer timed out"
        return APITimeoutError(f"{what} ({url})", url=url, phase=phase)
    if isinstance(err, u3.SSLError):
        return APIConnectionError(f"TLS error talking to {url}: {_reason(err)}", url=url)
    if isinstance(err, u3.ProxyError):
        return APIConnectionError(f"proxy error for {url}: {_reason(err)}", url=url)
    if streaming and isinstance(err, (u3.ProtocolError, u3.IncompleteRead, u3.InvalidChunkLength)):
        return IncompleteStreamError(f"the connection broke in the middle of the stream ({url})")
    if isinstance(err, (u3.HTTPError, OSError)):
        return APIConnectionError(f"connection to {url} failed: {_reason(err)}", url=url)
    return err


def _reason(err: BaseException) -> str:
    text = str(err)
    # urllib3 messages can embed object reprs; keep them short.
    return text if len(text) < 300 else text[:300] + "..."


class SyncResponse:
    """A response of the sync transport."""

    __slots__ = ("_body", "_raw", "_url", "headers", "status")

    def __init__(self, raw: Any, url: str, body: bytes | None = None) -> None:
        self._raw = raw
        self._url = url
        self._body = body
        self.status: int = raw.status
        self.headers: dict[str, str] = _lower_headers(raw.headers.items())

    def read(self) -> bytes:
        """The whole body (already read for non-streaming requests)."""
        from urllib3 import exceptions as u3

        if self._body is not None:
            return self._body
        try:
            data: bytes = self._raw.data or b""
            return data
        except (u3.HTTPError, OSError) as err:
            raise _map_urllib3_error(err, self._url) from err
        finally:
            self._raw.release_conn()

    def iter_chunks(self) -> Iterator[bytes]:
        """The body as it arrives; each read waits at most the idle timeout."""
        from urllib3 import exceptions as u3

        raw = self._raw
        read1 = raw.read1
        try:
            while True:
                chunk = read1(_CHUNK)
                if not chunk:
                    return
                yield chunk
        except (u3.HTTPError, OSError) as err:
            raise _map_urllib3_error(err, self._url, streaming=True) from err

    def close(self) -> None:
        """Give the connection back (or drop it if the body was not read to the end)."""
        raw = self._raw
        try:
            if not raw.closed and not raw.isclosed():
                raw.close()
        finally:
            raw.release_conn()


def _read_body(raw: Any, url: str, deadline: float | None) -> bytes:
    """The whole body, read by ``deadline`` (urllib3 bounds each read, not their sum)."""
    from urllib3 import exceptions as u3

    parts: list[bytes] = []
    try:
        while True:
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise APITimeoutError(
                        f"reading the answer timed out ({url})", url=url, phase="read"
                    )
                sock = getattr(getattr(raw, "connection", None), "sock", None)
                if sock is not None:
                    current = sock.gettimeout()
                    if current is None or current > remaining:
                        sock.settimeout(remaining)
            chunk = raw.read1(_CHUNK)
            if not chunk:
                break
            parts.append(chunk)
    except APITimeoutError:
        raw.close()
        raw.release_conn()
        raise
    except (u3.HTTPError, OSError) as err:
        raw.close()
        raw.release_conn()
        raise _map_urllib3_error(err, url) from err
    raw.release_conn()
    return b"".join(parts)


class SyncTransport:
    """A urllib3 pool shared by a client and its ``with_options`` copies."""

    def __init__(self, *, pool_size: int, verify_ssl: bool, host: str) -> None:
        import urllib3

        self._urllib3 = urllib3
        kwargs: dict[str, Any] = {
            "num_pools": 4,
            "maxsize": pool_size,
            "block": False,
            "retries": False,
        }
        if not verify_ssl:
            kwargs["cert_reqs"] = "CERT_NONE"
        proxy = _proxy_for(host)
        if proxy:
            self._pool: Any = urllib3.ProxyManager(proxy, **kwargs)
        else:
            self._pool = urllib3.PoolManager(**kwargs)
        self._timeouts: dict[tuple[Timeout, bool], Any] = {}

    def _timeout(self, timeout: Timeout, stream: bool) -> Any:
        key = (timeout, stream)
        cached = self._timeouts.get(key)
        if cached is None:
            if stream:
                cached = self._urllib3.Timeout(connect=timeout.connect, read=timeout.read)
            else:
                cached = self._urllib3.Timeout(
                    connect=timeout.connect, read=timeout.read, total=timeout.total
                )
            self._timeouts[key] = cached
        return cached

    def send(self, request: HTTPRequest, timeout: Timeout) -> SyncResponse:
        """Send one attempt; raise only our typed errors."""
        from urllib3 import exceptions as u3

        started = time.monotonic()
        try:
            raw = self._pool.urlopen(
                request.method,
                request.url,
                body=request.body,
                headers=request.headers,
                retries=False,
                redirect=False,
                preload_content=False,
                decode_content=True,
                timeout=self._timeout(timeout, request.stream),
            )
        except (u3.HTTPError, OSError) as err:
            raise _map_urllib3_error(err, request.url) from err
        if request.stream:
            return SyncResponse(raw, request.url)
        deadline = None if timeout.total is None else started + timeout.total
        return SyncResponse(raw, request.url, _read_body(raw, request.url, deadline))

    def close(self) -> None:
        """Close every pooled connection."""
        self._pool.clear()


# --------------------------------------------------------------------------------------------
# async: aiohttp


def _map_aiohttp_error(err: BaseException, url: str, *, streaming: bool = False) -> Exception:
    import asyncio

    import aiohttp

    if isinstance(err, aiohttp.ConnectionTimeoutError):
        return APITimeoutError(f"connecting to {url} timed out", url=url, phase="connect")
    if isinstance(err, (aiohttp.SocketTimeoutError, aiohttp.ServerTimeoutError)):
        phase = "idle" if streaming else "read"
        what = "the stream went silent" if streaming else "reading the answer timed out"
        return APITimeoutError(f"{what} ({url})", url=url, phase=phase)
    if isinstance(err, asyncio.TimeoutError):
        return APITimeoutError(f"the request to {url} timed out", url=url, phase="read")
    if isinstance(err, aiohttp.ClientConnectorDNSError):
        return APIConnectionError(f"could not resolve the host of {url}", url=url)
    if isinstance(err, aiohttp.ClientConnectorError):
        return APIConnectionError(f"could not connect to {url}: {_reason(err)}", url=url)
    if streaming and isinstance(err, (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError)):
        return IncompleteStreamError(f"the connection broke in the middle of the stream ({url})")
    if isinstance(err, (aiohttp.ClientError, OSError)):
        return APIConnectionError(f"connection to {url} failed: {_reason(err)}", url=url)
    return err  # type: ignore[return-value]


def _foreign_async_errors() -> tuple[type[BaseException], ...]:
    import asyncio

    import aiohttp

    return (aiohttp.ClientError, OSError, asyncio.TimeoutError)


class AsyncResponse:
    """A response of the async transport."""

    __slots__ = ("_raw", "_url", "headers", "status")

    def __init__(self, raw: Any, url: str) -> None:
        self._raw = raw
        self._url = url
        self.status: int = raw.status
        self.headers: dict[str, str] = _lower_headers(raw.headers.items())

    async def read(self) -> bytes:
        """The whole body; releases the connection."""
        try:
            data: bytes = await self._raw.read()
            return data
        except _foreign_async_errors() as err:
            raise _map_aiohttp_error(err, self._url) from err
        finally:
            self._raw.release()

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives; each read waits at most the idle timeout."""
        content = self._raw.content
        try:
            while True:
                chunk = await content.readany()
                if not chunk:
                    return
                yield chunk
        except _foreign_async_errors() as err:
            raise _map_aiohttp_error(err, self._url, streaming=True) from err

    def close(self) -> None:
        """Release the connection (dropped if the body was not read to the end)."""
        raw = self._raw
        if raw.content.at_eof():
            raw.release()
        else:
            raw.close()


class AsyncTransport:
    """An aiohttp session, made on first use inside the running event loop.

    It can be built outside a loop, closed, and used again afterwards (a new session is
    made); a session made in a loop that has ended is replaced.
    """

    def __init__(self, *, limit: int, verify_ssl: bool, host: str) -> None:
        import asyncio

        self._asyncio = asyncio
        self._limit = limit
        self._verify_ssl = verify_ssl
        self._proxy = _proxy_for(host)
        self._session: Any = None
        self._loop: Any = None
        self._timeouts: dict[tuple[Timeout, bool], Any] = {}

    def _get_session(self) -> Any:
        loop = self._asyncio.get_running_loop()
        session = self._session
        if session is not None and not session.closed and self._loop is loop:
            return session
        if session is not None and not session.closed:
            # Made in a loop that is gone: its sockets cannot be used here any more.
            connector = session.connector
            session._connector = None
            if connector is not None:
                connector._close()
        import aiohttp

        connector = aiohttp.TCPConnector(
            limit=self._limit,
            ssl=True if self._verify_ssl else False,
            enable_cleanup_closed=False,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            trust_env=False,
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
        )
        self._loop = loop
        return self._session

    def _timeout(self, timeout: Timeout, stream: bool) -> Any:
        key = (timeout, stream)
        cached = self._timeouts.get(key)
        if cached is None:
            import aiohttp

            if stream:
                cached = aiohttp.ClientTimeout(
                    total=None, connect=timeout.connect, sock_read=timeout.read
                )
            else:
                cached = aiohttp.ClientTimeout(
                    total=timeout.total, connect=timeout.connect, sock_read=timeout.read
                )
            self._timeouts[key] = cached
        return cached

    async def send(self, request: HTTPRequest, timeout: Timeout) -> AsyncResponse:
        """Send one attempt; raise only our typed errors."""
        session = self._get_session()
        try:
            raw = await session.request(
                request.method,
                request.url,
                data=request.body,
                headers=request.headers,
                allow_redirects=False,
                timeout=self._timeout(timeout, request.stream),
                proxy=self._proxy,
            )
        except _foreign_async_errors() as err:
            raise _map_aiohttp_error(err, request.url) from err
        response = AsyncResponse(raw, request.url)
        if not request.stream:
            # Read the body inside the total timeout of this attempt.
            try:
                await raw.read()
            except _foreign_async_errors() as err:
                raw.close()
                raise _map_aiohttp_error(err, request.url) from err
        return response

    def __del__(self) -> None:
        # A client dropped without close(): close its sockets now, without a loop, so that
        # nothing leaks and aiohttp has no unclosed session to warn about.
        session = self._session
        if session is not None and not session.closed:
            connector = session.connector
            session._connector = None
            if connector is not None:
                try:
                    connector._close()
                except Exception:
                    pass

    async def close(self) -> None:
        """Close the session and its connections."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            if self._loop is self._asyncio.get_running_loop():
                await session.close()
            else:
                connector = session.connector
                session._connector = None
                if connector is not None:
                    connector._close()
