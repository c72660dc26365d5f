"""The public transport seam over real loopback sockets (issue 10, "A public transport seam").

* A transport a user writes against :mod:`aleph_alpha_client.transport` (sync: over
  ``http.client``; async: over asyncio streams) carries ``Client`` and ``AsyncClient``: a
  connection error and a 503 are retried by the client through it, a stream is parsed from the
  pieces it hands over, and ``close()`` reaches it.
* ``http_client=httpx.Client()`` / ``httpx.AsyncClient()`` send over a real socket (elsewhere
  they are tested under respx): the user's client is the one used (its event hooks see every
  attempt) and it stays open when our client closes.
"""

from __future__ import annotations

import asyncio
import http.client
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from aleph_alpha_client import AsyncClient, Client
from aleph_alpha_client._exceptions import APIConnectionError, IncompleteStreamError
from aleph_alpha_client.chat import ChatRequest, Message, Role
from aleph_alpha_client.transport import (
    AsyncTransportProtocol,
    HTTPRequest,
    SyncTransportProtocol,
    Timeout,
)
from conftest import TOKEN
from scripted_server import Reply, ScriptedServer

REQUEST = ChatRequest(model="m", messages=[Message(role=Role.User, content="hi")])
CHAT_OK = {
    "choices": [
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}
    ]
}
EVENTS = [
    {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
    {"choices": [{"index": 0, "delta": {"content": "Hel"}}]},
    {"choices": [{"index": 0, "delta": {"content": "lo"}}]},
    {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
]


def script(server: ScriptedServer) -> None:
    """A reset connection, a 503, the answer; then a stream in small pieces."""
    server.add(
        Reply(reset=True),
        Reply.json({"error": "busy", "code": "E"}, 503, {"Retry-After": "0"}),
        Reply.json(CHAT_OK),
        Reply.sse(EVENTS, pieces=6),
    )


def target(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return parts.hostname or "", parts.port or 80, path


# ----------------------------------------------------------------- a user's sync transport


class StdlibResponse:
    def __init__(self, conn: http.client.HTTPConnection, response: Any, url: str) -> None:
        self._conn = conn
        self._response = response
        self._url = url
        self.status: int = response.status
        self.headers = {key.lower(): value for key, value in response.getheaders()}

    def read(self) -> bytes:
        try:
            return bytes(self._response.read())
        except (OSError, http.client.HTTPException) as err:
            raise APIConnectionError(f"reading {self._url} failed: {err}", url=self._url) from err
        finally:
            self.close()

    def iter_chunks(self) -> Iterator[bytes]:
        try:
            while piece := self._response.read1(65536):
                yield piece
        except (OSError, http.client.HTTPException) as err:
            raise IncompleteStreamError(f"the stream from {self._url} broke: {err}") from err
        finally:
            self.close()

    def close(self) -> None:
        self._conn.close()


class StdlibTransport:
    """Written as a user would: one ``http.client`` connection per attempt."""

    def __init__(self) -> None:
        self.sent: list[HTTPRequest] = []
        self.closed = 0

    def send(self, request: HTTPRequest, timeout: Timeout) -> StdlibResponse:
        self.sent.append(request)
        host, port, path = target(request.url)
        conn = http.client.HTTPConnection(host, port, timeout=timeout.connect)
        try:
            conn.connect()
            assert conn.sock is not None
            conn.sock.settimeout(timeout.read)
            conn.request(request.method, path, body=request.body, headers=request.headers)
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as err:
            conn.close()
            raise APIConnectionError(f"{request.url}: {err}", url=request.url) from err
        return StdlibResponse(conn, response, request.url)

    def close(self) -> None:
        self.closed += 1


# ---------------------------------------------------------------- a user's async transport


class StreamsResponse:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        status: int,
        headers: dict[str, str],
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.status = status
        self.headers = headers

    async def read(self) -> bytes:
        try:
            return b"".join([piece async for piece in self.iter_chunks()])
        except IncompleteStreamError as err:
            raise APIConnectionError(str(err)) from err

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        reader = self._reader
        try:
            if self.headers.get("transfer-encoding") == "chunked":
                while size := int((await reader.readline()).split(b";")[0], 16):
                    yield await reader.readexactly(size)
                    await reader.readexactly(2)
            else:
                length = int(self.headers.get("content-length", "0"))
                if length:
                    yield await reader.readexactly(length)
        except (OSError, ValueError, asyncio.IncompleteReadError) as err:
            raise IncompleteStreamError(f"the stream broke: {err!r}") from err
        finally:
            self.close()

    def close(self) -> None:
        self._writer.close()


class StreamsTransport:
    """Written as a user would: HTTP/1.1 over asyncio streams, one connection per attempt."""

    def __init__(self) -> None:
        self.sent: list[HTTPRequest] = []
        self.closed = 0

    async def send(self, request: HTTPRequest, timeout: Timeout) -> StreamsResponse:
        self.sent.append(request)
        host, port, path = target(request.url)
        body = request.body or b""
        head = f"{request.method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        for key, value in {**request.headers, "Content-Length": str(len(body))}.items():
            head += f"{key}: {value}\r\n"
        try:
            opened = asyncio.open_connection(host, port)
            reader, writer = await asyncio.wait_for(opened, timeout.connect)
            writer.write(head.encode() + b"\r\n" + body)
            line = await asyncio.wait_for(reader.readline(), timeout.read)
            if not line:
                raise ConnectionResetError("closed without an answer")
            status = int(line.split(b" ")[1])
            headers = {}
            while (line := await reader.readline()) not in (b"\r\n", b""):
                key, _, value = line.decode("latin-1").partition(":")
                headers[key.strip().lower()] = value.strip()
        except (OSError, ValueError, IndexError, asyncio.TimeoutError) as err:
            raise APIConnectionError(f"{request.url}: {err!r}", url=request.url) from err
        return StreamsResponse(reader, writer, status, headers)

    async def close(self) -> None:
        self.closed += 1


# ------------------------------------------------------------------------------- tests


def check_sent(server: ScriptedServer, sent: list[HTTPRequest]) -> None:
    assert len(server.received) == 4  # reset, 503, answer, stream: each one attempt
    assert [request.stream for request in sent] == [False, False, False, True]
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in server.received)


def test_a_users_sync_transport_carries_retries_and_a_stream(server: ScriptedServer) -> None:
    script(server)
    transport = StdlibTransport()
    assert isinstance(transport, SyncTransportProtocol)
    with Client(TOKEN, host=server.url, transport=transport, total_retries=3) as client:
        assert client.chat(REQUEST, "m").message.content == "ok"
        stream = client.chat_with_streaming(REQUEST, "m")
        items = list(stream)
        final = stream.get_final_response()
    assert "".join(getattr(i, "content", "") or "" for i in items) == "Hello"
    assert final.message.content == "Hello"
    check_sent(server, transport.sent)
    assert transport.closed == 1


def test_a_users_async_transport_carries_retries_and_a_stream(server: ScriptedServer) -> None:
    script(server)
    transport = StreamsTransport()
    assert isinstance(transport, AsyncTransportProtocol)

    async def main() -> tuple[Any, list[Any], Any]:
        async with AsyncClient(
            TOKEN, host=server.url, transport=transport, total_retries=3
        ) as client:
            answer = await client.chat(REQUEST, "m")
            stream = client.chat_with_streaming(REQUEST, "m")
            items = [item async for item in stream]
            final = await stream.get_final_response()
        return answer, items, final

    answer, items, final = asyncio.run(main())
    assert answer.message.content == "ok"
    assert "".join(getattr(i, "content", "") or "" for i in items) == "Hello"
    assert final.message.content == "Hello"
    check_sent(server, transport.sent)
    assert transport.closed == 1


def test_http_client_httpx_client_over_a_socket(server: ScriptedServer) -> None:
    httpx = pytest.importorskip("httpx")
    script(server)
    seen: list[str] = []
    with httpx.Client(event_hooks={"request": [lambda r: seen.append(r.method)]}) as http:
        with Client(TOKEN, host=server.url, http_client=http, total_retries=3) as client:
            assert client.chat(REQUEST, "m").message.content == "ok"
            items = list(client.chat_with_streaming(REQUEST, "m"))
        assert not http.is_closed  # yours: you close it
    assert "".join(getattr(i, "content", "") or "" for i in items) == "Hello"
    assert seen == ["POST"] * 4 and len(server.received) == 4


def test_http_client_httpx_async_client_over_a_socket(server: ScriptedServer) -> None:
    httpx = pytest.importorskip("httpx")
    script(server)
    seen: list[str] = []

    async def hook(request: Any) -> None:
        seen.append(request.method)

    async def main() -> tuple[Any, list[Any]]:
        async with httpx.AsyncClient(event_hooks={"request": [hook]}) as http:
            async with AsyncClient(
                TOKEN, host=server.url, http_client=http, total_retries=3
            ) as client:
                answer = await client.chat(REQUEST, "m")
                items = [item async for item in client.chat_with_streaming(REQUEST, "m")]
            assert not http.is_closed  # yours: you close it
        return answer, items

    answer, items = asyncio.run(main())
    assert answer.message.content == "ok"
    assert "".join(getattr(i, "content", "") or "" for i in items) == "Hello"
    assert seen == ["POST"] * 4 and len(server.received) == 4
