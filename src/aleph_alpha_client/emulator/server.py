"""The emulator's HTTP/1.1 server: asyncio streams on loopback, in a background thread.

:class:`Emulator` starts an event loop in its own thread and serves the pure handlers of
:mod:`.handlers` there, so it works the same from sync code, from async tests (their loop is
not involved) and from several client threads. It speaks HTTP/1.1 with keep-alive (many
requests per connection), answers JSON with ``Content-Length`` and streams with
``Transfer-Encoding: chunked`` (one SSE event ``data: <json>\\n\\n`` per chunk), reads request
bodies by ``Content-Length`` or chunked, and applies faults (:mod:`.faults`) per request.
Every received request is logged in :attr:`Emulator.requests`.

``stop()`` closes the listening socket and every connection before the loop ends, so no
``ResourceWarning`` is left behind. :func:`run_server` is the blocking form for the CLI.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import http
import json
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

from .faults import Fault, FaultPlan, ScriptEntry, parse_fault_spec
from .handlers import (
    DEFAULT_VERSION,
    HandlerConfig,
    Response,
    error_response,
    handle,
    route_of,
)
from .handlers.common import dumps

__all__ = ["Emulator", "Headers", "RecordedRequest", "run_server"]

_MAX_HEADER_BYTES = 1 << 20
_MAX_BODY_BYTES = 256 << 20
_MALFORMED_BODY = b"<html><body><h1>502 Bad Gateway</h1>The upstream sent garbage.</body></html>"


class Headers(Mapping[str, str]):
    """Request headers: a case-insensitive mapping that keeps the received order."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items = list(items)
        self._index: dict[str, str] = {}
        for name, value in self._items:
            key = name.lower()
            self._index[key] = f"{self._index[key]}, {value}" if key in self._index else value

    def __getitem__(self, name: str) -> str:
        return self._index[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    @property
    def raw(self) -> list[tuple[str, str]]:
        """The headers as received: (name, value) pairs in order."""
        return list(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


@dataclass(frozen=True)
class RecordedRequest:
    """One request the emulator received."""

    method: str
    path: str
    query: dict[str, str]
    headers: Headers
    body: bytes
    #: Whether the request came in under the ``/v1`` prefix.
    versioned: bool = field(default=False)

    @property
    def route(self) -> str:
        """The path without ``/v1`` and the leading slash, e.g. ``"chat/completions"``."""
        return route_of(self.path)

    @functools.cached_property
    def json(self) -> Any:
        """The parsed JSON body (None when the body is empty or not JSON)."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None


class _ProtocolError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class _Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None


class Emulator:
    """An offline Aleph Alpha API on loopback (a context manager; see the package docs).

    ``token``: when set, every route but ``GET version`` needs ``Authorization: Bearer
    <token>``. ``port=0`` picks a free port. ``faults``: a spec string (see :mod:`.faults`) or
    a :class:`FaultPlan`. ``seed`` seeds the fault RNG (unless the spec sets ``seed=``).
    ``latency``/``stream_latency``: seconds before every answer / between stream events.
    ``randomness``: random ids and ``created`` instead of ones derived from the body.
    ``version``: what ``GET version`` answers.
    """

    def __init__(
        self,
        token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: str | FaultPlan | None = None,
        seed: int = 0,
        latency: float = 0.0,
        randomness: bool = False,
        *,
        stream_latency: float = 0.0,
        version: str = DEFAULT_VERSION,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.seed = seed
        self.latency = latency
        self.stream_latency = stream_latency
        self.config = HandlerConfig(token=token, randomness=randomness, version=version)
        self._plan = self._make_plan(faults)
        self._log: list[RecordedRequest] = []
        self._log_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._port: int | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._request_counter = 0

    # -- configuration ---------------------------------------------------------------------

    def _make_plan(self, faults: str | FaultPlan | None) -> FaultPlan:
        if faults is None:
            return FaultPlan(seed=self.seed)
        if isinstance(faults, FaultPlan):
            return faults
        if isinstance(faults, str):
            plan = parse_fault_spec(faults)
            if "seed=" not in faults:
                plan = FaultPlan(
                    plan.rates,
                    latency=plan.latency,
                    stream_latency=plan.stream_latency,
                    seed=self.seed,
                )
            return plan
        raise TypeError("faults must be a spec string, a FaultPlan or None")

    @property
    def token(self) -> str | None:
        """The required bearer token (None: no auth)."""
        return self.config.token

    @property
    def faults(self) -> FaultPlan:
        """The active fault plan (scripts and rates)."""
        return self._plan

    def set_faults(self, faults: str | FaultPlan | None) -> None:
        """Replace the fault plan (drops queued script entries)."""
        self._plan = self._make_plan(faults)

    def script(self, entries: Iterable[ScriptEntry], *, path: str | None = None) -> None:
        """Queue faults consumed one per request (None = a normal answer), after any still
        queued (:meth:`clear_script` drops those)."""
        self._plan.script(entries, path=path)

    def clear_script(self) -> None:
        """Drop the scripted faults not consumed yet."""
        self._plan.clear_script()

    # -- request log -----------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the log of received requests, oldest first."""
        with self._log_lock:
            return list(self._log)

    @property
    def last_request(self) -> RecordedRequest | None:
        """The most recent request, if any."""
        with self._log_lock:
            return self._log[-1] if self._log else None

    def clear(self) -> None:
        """Empty the request log."""
        with self._log_lock:
            self._log.clear()

    def reset(self) -> None:
        """Empty the request log and drop all faults (scripts and rates)."""
        self.clear()
        self._plan = FaultPlan(seed=self.seed)

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (after ``start()``)."""
        if self._port is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return self._port

    @property
    def url(self) -> str:
        """The base URL, e.g. ``"http://127.0.0.1:54321"`` (routes work with or without /v1)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the server thread is serving."""
        return self._thread is not None and self._thread.is_alive() and self._port is not None

    def start(self) -> Emulator:
        """Start serving in a background thread; returns self once the port is bound."""
        if self._thread is not None:
            return self
        self._ready.clear()
        self._startup_error = None
        self._thread = threading.Thread(
            target=self._thread_main, name="aleph-alpha-emulator", daemon=True
        )
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            self._thread.join()
            self._thread = None
            raise self._startup_error
        return self

    def stop(self) -> None:
        """Stop serving and close every socket; safe to call twice."""
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and stop_event is not None and thread.is_alive():
            try:
                loop.call_soon_threadsafe(stop_event.set)
            except RuntimeError:  # the loop is already closed
                pass
        thread.join()
        self._thread = None
        self._loop = None
        self._stop_event = None
        self._port = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "stopped"
        return f"<Emulator {where}>"

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as err:  # pragma: no cover - reported to start()
            if not self._ready.is_set():
                self._startup_error = err
                self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        try:
            server = await asyncio.start_server(
                self._on_connection,
                self.host,
                self._requested_port,
                limit=_MAX_HEADER_BYTES,
                backlog=1024,
            )
        except BaseException as err:
            self._startup_error = err
            self._ready.set()
            return
        try:
            self._port = int(server.sockets[0].getsockname()[1])
            self._ready.set()
            await self._stop_event.wait()
        finally:
            server.close()
            # Abort, do not flush: a peer that stopped reading must not hold the shutdown up.
            for writer in list(self._writers):
                writer.transport.abort()
            tasks = list(self._connections)
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=5)
            await asyncio.wait_for(server.wait_closed(), timeout=5)

    # -- connections -----------------------------------------------------------------------

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self._writers.add(writer)
        try:
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while True:
                try:
                    request = await _read_request(reader, writer)
                except _ProtocolError as err:
                    body = dumps({"error": str(err), "code": "BAD_HTTP_REQUEST"}).encode()
                    head = _head(err.status, [("Content-Type", "application/json")], len(body), "")
                    writer.write(head + body)
                    await writer.drain()
                    break
                if request is None:
                    break
                keep_alive = await self._serve(request, writer)
                if not keep_alive:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._writers.discard(writer)
            self._connections.discard(task)
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), timeout=5)
            except (ConnectionError, OSError, asyncio.CancelledError, asyncio.TimeoutError):
                writer.transport.abort()

    def _record(self, request: _Request) -> RecordedRequest:
        path, _, query = request.target.partition("?")
        recorded = RecordedRequest(
            method=request.method,
            path=path,
            query=dict(parse_qsl(query, keep_blank_values=True)),
            headers=Headers(request.headers),
            body=request.body,
            versioned=path.lstrip("/").startswith("v1/"),
        )
        with self._log_lock:
            self._log.append(recorded)
        return recorded

    async def _serve(self, request: _Request, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; returns whether the connection stays open."""
        recorded = self._record(request)
        self._request_counter += 1
        request_id = f"emu-{self._request_counter:08d}"
        keep_alive = _keep_alive(request)
        faults = self._plan.choose(recorded.route)
        delay = self.latency + self._plan.latency
        stream_delay = self.stream_latency + self._plan.stream_latency
        terminal: Fault | None = None
        for fault in faults:
            if fault.kind == "latency":
                delay += fault.seconds
            elif fault.kind == "stream_latency":
                stream_delay += fault.seconds
            elif terminal is None:
                terminal = fault
        if delay > 0:
            await asyncio.sleep(delay)

        if terminal is not None and terminal.kind == "reset" and not terminal.mid_body:
            _abort(writer)
            return False
        if terminal is not None and terminal.kind == "status":
            response = error_response(
                terminal.status_code,
                terminal.error_message(),
                terminal.error_code(),
                terminal.retry_headers(),
            )
        elif terminal is not None and terminal.kind == "malformed":
            response = Response(200, [("Content-Type", "text/html")], _MALFORMED_BODY)
        else:
            response = handle(
                request.method, request.target, recorded.headers, request.body, self.config
            )
            if terminal is not None and terminal.kind == "content_type":
                response.headers = [
                    (k, v) for k, v in response.headers if k.lower() != "content-type"
                ] + [("Content-Type", terminal.content_type_value)]
            if (
                terminal is not None
                and terminal.kind == "error_event"
                and not response.is_stream
                and response.status < 400
            ):
                response = Response(
                    200,
                    [("Content-Type", "application/json")],
                    dumps(
                        {"error": terminal.error_message(), "code": terminal.error_code()}
                    ).encode(),
                )
        extra = [("x-request-id", request_id)]
        connection = "" if keep_alive else "close"
        if response.events is not None:
            return (
                await self._send_stream(writer, response, extra, connection, stream_delay, terminal)
                and keep_alive
            )
        return await self._send_body(writer, response, extra, connection, terminal) and keep_alive

    async def _send_body(
        self,
        writer: asyncio.StreamWriter,
        response: Response,
        extra: list[tuple[str, str]],
        connection: str,
        terminal: Fault | None,
    ) -> bool:
        body = response.body
        if terminal is not None and terminal.kind == "cut":
            body = body[: len(body) // 2]
        head = _head(response.status, [*response.headers, *extra], len(body), connection)
        if terminal is not None and terminal.kind == "reset":
            writer.write(head + body[: len(body) // 2])
            await writer.drain()
            _abort(writer)
            return False
        writer.write(head + body)
        await writer.drain()
        return True

    async def _send_stream(
        self,
        writer: asyncio.StreamWriter,
        response: Response,
        extra: list[tuple[str, str]],
        connection: str,
        stream_delay: float,
        terminal: Fault | None,
    ) -> bool:
        events = list(response.events or ())
        stop_after: int | None = None
        tail: list[str] = []
        if terminal is not None and terminal.kind in ("cut", "reset", "error_event"):
            stop_after = max(0, terminal.after_events)
            if terminal.kind == "error_event":
                tail = [dumps({"error": terminal.error_message(), "code": terminal.error_code()})]
        if stop_after is not None:
            events = events[:stop_after] + tail
        headers = [*response.headers, ("Transfer-Encoding", "chunked"), *extra]
        parts = [_head(response.status, headers, None, connection)]
        for index, event in enumerate(events):
            if stream_delay > 0 and index > 0:
                writer.write(b"".join(parts))
                parts.clear()
                await writer.drain()
                await asyncio.sleep(stream_delay)
            data = f"data: {event}\n\n".encode()
            parts.append(b"%x\r\n%s\r\n" % (len(data), data))
        if terminal is not None and terminal.kind == "reset":
            writer.write(b"".join(parts))
            await writer.drain()
            _abort(writer)
            return False
        parts.append(b"0\r\n\r\n")
        writer.write(b"".join(parts))  # one send when there is no delay between events
        await writer.drain()
        return True


# --------------------------------------------------------------------------------------------
# HTTP/1.1 plumbing


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close the connection with a TCP RST (SO_LINGER 0), dropping unsent data."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


def _keep_alive(request: _Request) -> bool:
    connection = (request.header("Connection") or "").lower()
    if request.version == "HTTP/1.0":
        return "keep-alive" in connection
    return "close" not in connection


@functools.lru_cache(maxsize=4)
def _date(second: int) -> str:
    return email.utils.formatdate(second, usegmt=True)


def _head(
    status: int, headers: Sequence[tuple[str, str]], length: int | None, connection: str
) -> bytes:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    lines = [
        f"HTTP/1.1 {status} {phrase}",
        "Server: aleph-alpha-emulator",
        f"Date: {_date(int(time.time()))}",
    ]
    lines.extend(f"{name}: {value}" for name, value in headers)
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if connection:
        lines.append(f"Connection: {connection}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> _Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as err:
        if err.partial.strip():
            raise _ProtocolError(400, "incomplete request head") from None
        return None
    except asyncio.LimitOverrunError:
        raise _ProtocolError(431, "request head too large") from None
    text = head.decode("latin-1").lstrip("\r\n")
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise _ProtocolError(400, f"bad request line {lines[0]!r}")
    method, target, version = parts
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise _ProtocolError(400, f"bad header line {line!r}")
        headers.append((name.strip(), value.strip()))
    request = _Request(method, target, version, headers, b"")
    if (request.header("Expect") or "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
    encoding = (request.header("Transfer-Encoding") or "").lower()
    if "chunked" in encoding:
        request.body = await _read_chunked(reader)
    else:
        length_text = request.header("Content-Length")
        if length_text:
            try:
                length = int(length_text)
            except ValueError:
                raise _ProtocolError(400, "bad Content-Length") from None
            if length < 0 or length > _MAX_BODY_BYTES:
                raise _ProtocolError(413, "request body too large")
            request.body = await reader.readexactly(length)
    return request


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _ProtocolError(400, "bad chunk size") from None
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass  # trailers
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readexactly(2)
        if len(body) > _MAX_BODY_BYTES:
            raise _ProtocolError(413, "request body too large")


# --------------------------------------------------------------------------------------------
# Blocking entry point for the CLI


def run_server(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    token: str | None = None,
    faults: str | None = None,
    seed: int = 0,
    latency: float = 0.0,
    stream_latency: float = 0.0,
    randomness: bool = False,
    version: str = DEFAULT_VERSION,
) -> None:
    """Serve until Ctrl-C (or SIGTERM); prints the URL to stderr once listening."""
    emulator = Emulator(
        token=token,
        host=host,
        port=port,
        faults=faults,
        seed=seed,
        latency=latency,
        randomness=randomness,
        stream_latency=stream_latency,
        version=version,
    )
    done = threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():

        def _on_term(signum: int, frame: object) -> None:
            done.set()

        previous = signal.signal(signal.SIGTERM, _on_term)
    try:
        with emulator:
            print(f"Aleph Alpha emulator listening on {emulator.url}", file=sys.stderr, flush=True)
            while not done.wait(0.2):
                pass
    except KeyboardInterrupt:
        pass  # a Ctrl-C at any point, even while starting, is a clean stop
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    print("Aleph Alpha emulator stopped", file=sys.stderr, flush=True)
