"""A scripted HTTP/1.1 server on loopback for tests: answers are queued, requests recorded.

Each queued :class:`Reply` says exactly what goes on the wire: status, headers, a body sent
in pieces with optional pauses, or a connection reset. The server speaks keep-alive and
records every request (method, path, headers, body) so tests can compare exact bytes.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reply:
    """One scripted answer."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    chunks: Sequence[bytes] = ()
    pause: float = 0.0  # seconds before each chunk after the first
    delay: float = 0.0  # seconds before the status line
    chunked: bool = False  # Transfer-Encoding: chunked instead of Content-Length
    reset: bool = False  # close the socket without answering
    cut_after: int | None = None  # close the socket after this many chunks

    @staticmethod
    def json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
        """A JSON answer."""
        return Reply(
            status,
            {"Content-Type": "application/json", **(headers or {})},
            [json.dumps(data, separators=(",", ":")).encode()],
        )

    @staticmethod
    def sse(
        events: Iterable[Any],
        *,
        done: bool = True,
        pieces: int | None = None,
        pause: float = 0.0,
        cut_after: int | None = None,
    ) -> Reply:
        """An SSE answer: each event a JSON object (or a raw ``bytes`` event)."""
        body = b""
        for event in events:
            if isinstance(event, bytes):
                body += event
            else:
                body += b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n"
        if done:
            body += b"data: [DONE]\n\n"
        if pieces:
            size = max(1, len(body) // pieces)
            chunks = [body[i : i + size] for i in range(0, len(body), size)]
        else:
            chunks = [body]
        return Reply(
            200,
            {"Content-Type": "text/event-stream"},
            chunks,
            pause=pause,
            chunked=True,
            cut_after=cut_after,
        )


@dataclass
class Received:
    """A request the server got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


class ScriptedServer:
    """Serves queued replies in order; ``default`` when the queue is empty."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.default: Reply | None = None
        self.received: list[Received] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._clients: list[socket.socket] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def add(self, *replies: Reply) -> None:
        """Queue answers."""
        with self._lock:
            self.replies.extend(replies)

    def _next(self) -> Reply:
        with self._lock:
            if self.replies:
                return self.replies.popleft()
            if self.default is not None:
                return self.default
        return Reply.json({"error": "no reply scripted", "code": "TEST"}, status=500)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._clients.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        try:
            while not self._stop.is_set():
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    key, _, value = line.partition(":")
                    headers[key.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                while len(buffer) < length:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                body, buffer = buffer[:length], buffer[length:]
                with self._lock:
                    self.received.append(Received(method, path, headers, body))
                reply = self._next()
                if not self._answer(conn, reply):
                    return
        except OSError:
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _answer(self, conn: socket.socket, reply: Reply) -> bool:
        if reply.delay:
            if self._stop.wait(reply.delay):
                return False
        if reply.reset:
            conn.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            return False
        head = f"HTTP/1.1 {reply.status} X\r\n"
        headers = dict(reply.headers)
        if reply.chunked:
            headers["Transfer-Encoding"] = "chunked"
        else:
            headers["Content-Length"] = str(sum(len(c) for c in reply.chunks))
        for key, value in headers.items():
            head += f"{key}: {value}\r\n"
        conn.sendall(head.encode() + b"\r\n")
        for index, chunk in enumerate(reply.chunks):
            if reply.cut_after is not None and index >= reply.cut_after:
                return False
            if index and reply.pause:
                if self._stop.wait(reply.pause):
                    return False
            if reply.chunked:
                if chunk:
                    conn.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            else:
                conn.sendall(chunk)
        if reply.cut_after is not None and reply.cut_after >= len(reply.chunks):
            return False
        if reply.chunked:
            conn.sendall(b"0\r\n\r\n")
        return True

    def close(self) -> None:
        """Stop serving and close every socket."""
        self._stop.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        try:
            self._sock.close()
        except OSError:
            pass
        with self._lock:
            clients = list(self._clients)
        for conn in clients:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._acceptor.join(timeout=5)
        deadline = time.monotonic() + 5
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
