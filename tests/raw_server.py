"""A raw loopback HTTP server for the transport tests: a handler thread per connection.

``RawServer(handler, wrap=None)`` runs ``handler(conn, connection_index, server)`` for every
accepted connection (wrapped in TLS when ``wrap`` is an SSL context) and records each request
that ``server.next_request`` reads. ``close()`` stops accepting and shuts live connections.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable


def read_request(conn: socket.socket, buf: bytearray) -> bytes | None:
    """One request (head + Content-Length body) from ``conn``; None at EOF."""
    while b"\r\n\r\n" not in buf:
        data = conn.recv(65536)
        if not data:
            return None
        buf += data
    end = buf.index(b"\r\n\r\n") + 4
    head = bytes(buf[:end])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    while len(buf) < end + length:
        data = conn.recv(65536)
        if not data:
            return None
        buf += data
    request = bytes(buf[: end + length])
    del buf[: end + length]
    return request


Handler = Callable[[socket.socket, int, "RawServer"], None]


class RawServer:
    """Runs ``handler(conn, connection_index, server)`` in a thread per accepted connection."""

    def __init__(self, handler: Handler, wrap: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.wrap = wrap
        self.requests: list[bytes] = []
        self.accepted = 0
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        scheme = "https" if wrap else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}/path?q=1"
        self.threads: list[threading.Thread] = []
        self.stopping = False
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.stopping:
                conn.close()
                return
            with self.lock:
                index = self.accepted
                self.accepted += 1
                self.conns.append(conn)
            thread = threading.Thread(target=self._run, args=(conn, index), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _run(self, conn: socket.socket, index: int) -> None:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if self.wrap is not None:
                try:
                    conn = self.wrap.wrap_socket(conn, server_side=True)
                except (OSError, ssl.SSLError):
                    return
            self.handler(conn, index, self)
        except OSError:
            pass
        finally:
            with self.lock:
                self.active -= 1
            conn.close()

    def next_request(self, conn: socket.socket, buf: bytearray) -> bytes | None:
        request = read_request(conn, buf)
        if request is not None:
            with self.lock:
                self.requests.append(request)
        return request

    def close(self) -> None:
        self.stopping = True
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                pass
        except OSError:
            pass
        self.sock.close()
        with self.lock:
            conns = list(self.conns)
        for conn in conns:  # wake handlers blocked in recv()
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.thread.join(5)
        for thread in self.threads:
            thread.join(5)
