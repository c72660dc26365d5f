"""Hostile-server cases of issue 11: wall time and peak RSS of one call, per client.

    python3 benchmarks/hostile.py                      # every case, ours sync + async
    python3 benchmarks/hostile.py --cases bomb_chat,trickle_head
    python3 benchmarks/hostile.py --official PYTHON    # add the official client's column

A raw loopback server in this process misbehaves (trickles, floods ``100 Continue``, sends a
gzip bomb or an endless body); each call runs in a fresh child interpreter with a 3 s
timeout, no retries, and is killed after ``--cap`` seconds. Peak RSS is the child's
``ru_maxrss`` (from ``os.wait4``). The official client (``aleph-alpha-client`` 11.5.1) is
measured when ``--official`` names its interpreter, or one of ``/work/venv-official``,
``.ci-venv-official``, ``benchmarks/.work/venv-official`` exists; it has no sync stream, so
its stream cases use ``AsyncClient``. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent
WORK = ROOT / ".work"
TIMEOUT = 3.0
SSE = b"Content-Type: text/event-stream\r\n"
JSON = b"Content-Type: application/json\r\n"
EVENT = (
    b'data: {"id":"x","created":1,"model":"m","object":"chat.completion.chunk",'
    b'"choices":[{"index":0,"delta":{"role":"assistant","content":"hi"}}]}\n\n'
)


def bomb(fill: bytes) -> bytes:
    """1 GiB of ``fill`` gzipped (about 1 MB), cached in benchmarks/.work/."""
    path = WORK / f"bomb-{fill.hex()}.gz"
    if path.exists():
        return path.read_bytes()
    WORK.mkdir(exist_ok=True)
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = fill * (1 << 20)
    data = b"".join(packer.compress(block) for _ in range(1024)) + packer.flush()
    path.write_bytes(data)
    return data


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def head(status: bytes, extra: bytes) -> bytes:
    return b"HTTP/1.1 " + status + b"\r\n" + extra + b"Transfer-Encoding: chunked\r\n\r\n"


def slowly(conn: socket.socket, data: bytes, step: float) -> None:
    for i in range(len(data)):
        conn.sendall(data[i : i + 1])
        time.sleep(step)


def endless(conn: socket.socket, piece: bytes, step: float = 0.0) -> None:
    while True:
        conn.sendall(piece)
        if step:
            time.sleep(step)


# name: (what it is, stream call?, server behaviour)
CASES = {
    "bomb_chat": (
        "chat answered by a 1 MB gzip bomb (1 GiB of zeros)",
        False,
        lambda c: c.sendall(
            b"HTTP/1.1 200 OK\r\n"
            + JSON
            + b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb(b"\0"))
            + bomb(b"\0")
        ),
    ),
    "bomb_event": (
        "stream answered by a gzip bomb of one endless event",
        True,
        lambda c: c.sendall(
            b"HTTP/1.1 200 OK\r\n"
            + SSE
            + b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb(b"a"))
            + bomb(b"a")
        ),
    ),
    "endless_body": (
        "chat answered by an endless chunked body at full speed",
        False,
        lambda c: (c.sendall(head(b"200 OK", JSON)), endless(c, chunk(b" " * 65536))),
    ),
    "trickle_head": (
        "stream: the response head trickles in, one byte per 0.5 s",
        True,
        lambda c: slowly(c, head(b"200 OK", SSE) + b"X-Pad: " + b"p" * 100, 0.5),
    ),
    "continue_flood": (
        "stream: '100 Continue' every 0.5 s, forever",
        True,
        lambda c: endless(c, b"HTTP/1.1 100 Continue\r\n\r\n", 0.5),
    ),
    "trickle_event": (
        "stream: an event trickles in, one byte per 0.5 s",
        True,
        lambda c: (c.sendall(head(b"200 OK", SSE)), slowly(c, chunk(EVENT[:-2]) * 1000, 0.5)),
    ),
    "error_trickle": (
        "stream answered by a 500 whose chunked body trickles, forever",
        True,
        lambda c: (
            c.sendall(head(b"500 Internal Server Error", JSON)),
            endless(c, chunk(b"x"), 0.5),
        ),
    ),
    "json_trickle": (
        "stream answered by a 200 JSON whose chunked body trickles, forever",
        True,
        lambda c: (c.sendall(head(b"200 OK", JSON)), endless(c, chunk(b" "), 0.5)),
    ),
}

CHILD = r"""
import asyncio, json, sys, time
from aleph_alpha_client import AsyncClient, Client
from aleph_alpha_client.chat import ChatRequest, Message, Role
host, mode, stream, timeout = sys.argv[1], sys.argv[2], sys.argv[3] == "1", float(sys.argv[4])
request = ChatRequest(model="m", messages=[Message(role=Role.User, content="hi")])
opts = dict(host=host, request_timeout_seconds=timeout, total_retries=0)
start = time.monotonic()
try:
    if mode == "sync":
        c = Client("t", **opts)  # the official sync Client is no context manager
        list(c.chat_with_streaming(request, "m")) if stream else c.chat(request, "m")
    else:
        async def main():
            async with AsyncClient("t", **opts) as c:
                if stream:
                    async for _ in c.chat_with_streaming(request, "m"):
                        pass
                else:
                    await c.chat(request, "m")
        asyncio.run(main())
    outcome = "answer"
except BaseException as err:
    outcome = type(err).__name__
print(json.dumps({"wall": time.monotonic() - start, "outcome": outcome}))
"""


class Server:
    def __init__(self, behave: object) -> None:
        self.behave = behave
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            buf = b""
            while b"\r\n\r\n" not in buf:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
            self.behave(conn)  # type: ignore[operator]
            time.sleep(30)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.sock.close()


def run_child(
    python: str, src: str | None, port: int, mode: str, stream: bool, cap: float
) -> dict[str, object]:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src
    proc = subprocess.Popen(
        [
            python,
            "-c",
            CHILD,
            f"http://127.0.0.1:{port}",
            mode,
            "1" if stream else "0",
            str(TIMEOUT),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    start = time.monotonic()
    killer = threading.Timer(cap, proc.kill)
    killer.start()
    out = proc.stdout.read() if proc.stdout else b""
    _, _status, usage = os.wait4(proc.pid, 0)
    killer.cancel()
    wall = time.monotonic() - start
    rss = usage.ru_maxrss / 1024  # KiB -> MiB on Linux
    try:
        result = json.loads(out)
    except ValueError:
        return {"wall": wall, "rss": rss, "outcome": f"killed at {cap:.0f} s"}
    result["rss"] = rss
    return result


def official_python(arg: str | None) -> str | None:
    if arg:
        return arg
    for path in (
        "/work/venv-official/bin/python",
        str(ROOT.parent / ".ci-venv-official/bin/python"),
        str(WORK / "venv-official/bin/python"),
    ):
        if os.path.exists(path):
            return path
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--cap", type=float, default=15.0, help="kill a call after this")
    parser.add_argument("--official", default=None, help="the official client's python")
    parser.add_argument("--before", default=None, help="another src/ to compare (e.g. main's)")
    args = parser.parse_args()
    official = official_python(args.official)
    ours = str(ROOT.parent / "src")
    clients: list[tuple[str, str, str | None, str]] = [
        ("ours sync", sys.executable, ours, "sync"),
        ("ours async", sys.executable, ours, "async"),
    ]
    if args.before:
        clients += [
            ("before sync", sys.executable, args.before, "sync"),
            ("before async", sys.executable, args.before, "async"),
        ]
    if official:
        clients.append(("official", official, None, "official"))
    print(
        f"timeout {TIMEOUT} s, no retries, killed after {args.cap:.0f} s; "
        "each cell: wall time / peak RSS / outcome\n"
    )
    print("| case | " + " | ".join(client[0] for client in clients) + " |")
    print("|---|" + "---|" * len(clients))
    names = args.cases.split(",")
    if "bomb_chat" in names:
        bomb(b"\0")  # built before the clock runs (a few seconds, then cached)
    if "bomb_event" in names:
        bomb(b"a")
    for name in names:
        what, stream, behave = CASES[name]
        cells = []
        for _, python, src, mode in clients:
            if mode == "official":
                mode = "async" if stream else "sync"  # the official client has no sync stream
            server = Server(behave)
            try:
                r = run_child(python, src, server.port, mode, stream, args.cap)
            finally:
                server.close()
            cells.append(f"{r['wall']:.1f} s / {r['rss']:.0f} MB / {r['outcome']}")
        print(f"| {name}: {what} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
