"""One benchmark workload for one client kind, in this process; prints one JSON line.

    python workloads.py --client ours|official|raw --workload NAME --base-url URL [sizes]

`ours` and `official` both import `aleph_alpha_client`; which one you get depends
on the interpreter (venv) that runs this file, so run.py starts each client
kind with its own Python. `raw` uses only the standard library: http.client
for sync, and a minimal hand-written HTTP/1.1 keep-alive client on asyncio
streams for async. It parses the same JSON (json.loads) but builds no objects,
so it is the floor a client can hope for on this machine.

Every workload makes one untimed warm-up call first (connection set-up, lazy
imports), then times the measured part with time.perf_counter() and records
the process's CPU time for it (`cpu_s`; close to `elapsed` when the client,
not the server, is the bottleneck). The result line has `value` and `unit`, or `na` (the client lacks the feature) or `error`.
Stdlib only besides the client under test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

MODEL = "llama-3.1-8b-instruct"
TOKEN = "bench-token"
USER_AGENT = "raw-baseline/1.0"
EXPECTED_CHAT_PREFIX = "I'm just a computer program"
EMBEDDING_SIZE = 5120

WORKLOADS = (
    "sync_chat",
    "async_chat",
    "async_stream",
    "sync_stream",
    "sync_embed",
    "sync_complete",
    "cold_import",
)


class NotAvailable(Exception):
    """The client kind does not offer this feature."""


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB.

    Read from VmHWM in /proc/self/status: getrusage's ru_maxrss is not usable
    here, because Linux carries the parent's peak RSS over a (v)fork + exec into
    the child's ru_maxrss, so a child of a big parent reports the parent's peak.
    ru_maxrss (KiB on Linux) is the fallback where /proc is missing.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def chat_body(stream: bool = False) -> bytes:
    """The chat request body the clients send, for the raw baseline."""
    body: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
    }
    if stream:
        body["stream"] = True
    return json.dumps(body).encode()


# --------------------------------------------------------------------------------------
# raw baseline: sync (http.client)
# --------------------------------------------------------------------------------------


class RawSync:
    """Keep-alive JSON-over-HTTP with http.client; parses answers with json.loads."""

    def __init__(self, base_url: str) -> None:
        import http.client

        parts = urlsplit(base_url)
        self.prefix = parts.path.rstrip("/")
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
        self.headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {TOKEN}",
            "User-Agent": USER_AGENT,
        }

    def post(self, path: str, body: bytes) -> Any:
        self.conn.request("POST", f"{self.prefix}/{path}", body=body, headers=self.headers)
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {data[:200]!r}")
        return json.loads(data)

    def post_stream(self, path: str, body: bytes) -> Iterator[Any]:
        self.conn.request("POST", f"{self.prefix}/{path}", body=body, headers=self.headers)
        response = self.conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
        for line in response:
            if line.startswith(b"data: "):
                payload = line[6:].rstrip()
                if payload == b"[DONE]":
                    continue
                yield json.loads(payload)
        response.close()


# --------------------------------------------------------------------------------------
# raw baseline: async (asyncio streams, hand-written HTTP/1.1)
# --------------------------------------------------------------------------------------


class RawAsyncConnection:
    """One HTTP/1.1 keep-alive connection; Content-Length and chunked bodies."""

    def __init__(self, host: str, port: int, prefix: str) -> None:
        self.host = host
        self.port = port
        self.prefix = prefix
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is None or self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self.reader, self.writer

    async def _send(self, path: str, body: bytes) -> tuple[int, dict[bytes, bytes]]:
        reader, writer = await self._connect()
        head = (
            f"POST {self.prefix}/{path} HTTP/1.1\r\n"
            f"Host: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {TOKEN}\r\n"
            f"User-Agent: {USER_AGENT}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        writer.write(head + body)
        raw = await reader.readuntil(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
        return status, headers

    async def _body(self, headers: dict[bytes, bytes]) -> AsyncIterator[bytes]:
        assert self.reader is not None
        reader = self.reader
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")  # no trailers expected
                    return
                yield await reader.readexactly(size)
                await reader.readexactly(2)
        else:
            remaining = int(headers.get(b"content-length", b"0"))
            while remaining:
                block = await reader.read(min(remaining, 65536))
                if not block:
                    raise ConnectionError("connection closed in the body")
                remaining -= len(block)
                yield block
        if headers.get(b"connection", b"").lower() == b"close":
            assert self.writer is not None
            self.writer.close()

    async def post(self, path: str, body: bytes) -> Any:
        status, headers = await self._send(path, body)
        data = b"".join([block async for block in self._body(headers)])
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {data[:200]!r}")
        return json.loads(data)

    async def post_stream(self, path: str, body: bytes) -> AsyncIterator[Any]:
        status, headers = await self._send(path, body)
        if status != 200:
            raise RuntimeError(f"HTTP {status}")
        buffer = b""
        async for block in self._body(headers):
            buffer += block
            *events, buffer = buffer.split(b"\n\n")
            for event in events:
                if event.startswith(b"data: "):
                    payload = event[6:]
                    if payload == b"[DONE]":
                        continue
                    yield json.loads(payload)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass


def raw_async_connection(base_url: str) -> RawAsyncConnection:
    parts = urlsplit(base_url)
    return RawAsyncConnection(
        parts.hostname or "127.0.0.1", parts.port or 80, parts.path.rstrip("/")
    )


# --------------------------------------------------------------------------------------
# helpers for the two real clients
# --------------------------------------------------------------------------------------


def chat_request() -> Any:
    from aleph_alpha_client import ChatRequest, Message
    from aleph_alpha_client.chat import Role

    return ChatRequest(model=MODEL, messages=[Message(role=Role.User, content="hi")])


def check_chat(content: str) -> None:
    if not content.startswith(EXPECTED_CHAT_PREFIX):
        raise RuntimeError(f"unexpected chat content: {content[:80]!r}")


_cpu: dict[str, float] = {}


def clock_start() -> float:
    """Start timing: wall clock returned, this process's CPU time remembered."""
    _cpu["start"] = time.process_time()
    return time.perf_counter()


def clock_stop(start: float) -> float:
    """Wall seconds since `start`; the CPU seconds go into the result line."""
    elapsed = time.perf_counter() - start
    _cpu["used"] = time.process_time() - _cpu["start"]
    return elapsed


def timed_loop(n: int, call: Callable[[], None]) -> float:
    start = clock_start()
    for _ in range(n):
        call()
    return clock_stop(start)


def result(value: float, unit: str, **extra: Any) -> dict[str, Any]:
    """A result line; `cpu_s` is the client's CPU time in the timed part (user+sys)."""
    if "used" in _cpu:
        extra["cpu_s"] = _cpu["used"]
    return {"value": value, "unit": unit, **extra}


# --------------------------------------------------------------------------------------
# workloads
# --------------------------------------------------------------------------------------


def sync_chat(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    n = args.n
    if kind == "raw":
        raw = RawSync(args.base_url)
        body = chat_body()

        def call() -> None:
            answer = raw.post("chat/completions", body)
            check_chat(answer["choices"][0]["message"]["content"])

    else:
        from aleph_alpha_client import Client

        client = Client(TOKEN, host=args.base_url)
        request = chat_request()

        def call() -> None:
            check_chat(client.chat(request, model=MODEL).message.content)

    call()
    elapsed = timed_loop(n, call)
    return result(n / elapsed, "req/s", n=n, elapsed=elapsed)


def sync_complete(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    n = args.n
    if kind == "raw":
        raw = RawSync(args.base_url)
        body = json.dumps(
            {
                "prompt": [{"type": "text", "data": "Hello", "controls": []}],
                "maximum_tokens": 32,
                "model": MODEL,
            }
        ).encode()

        def call() -> None:
            answer = raw.post("complete", body)
            check_chat(answer["completions"][0]["completion"].lstrip())

    else:
        from aleph_alpha_client import Client, CompletionRequest, Prompt

        client = Client(TOKEN, host=args.base_url)
        request = CompletionRequest(prompt=Prompt.from_text("Hello"), maximum_tokens=32)

        def call() -> None:
            answer = client.complete(request, model=MODEL)
            check_chat((answer.completions[0].completion or "").lstrip())

    call()
    elapsed = timed_loop(n, call)
    return result(n / elapsed, "req/s", n=n, elapsed=elapsed)


def sync_embed(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    n = args.n
    if kind == "raw":
        raw = RawSync(args.base_url)
        body = json.dumps(
            {
                "prompt": [{"type": "text", "data": "hello", "controls": []}],
                "layers": [-1],
                "pooling": ["mean"],
                "model": MODEL,
            }
        ).encode()

        def call() -> None:
            answer = raw.post("embed", body)
            vectors = [v for layer in answer["embeddings"].values() for v in layer.values()]
            if len(vectors[0]) != EMBEDDING_SIZE:
                raise RuntimeError("wrong embedding size")

    else:
        from aleph_alpha_client import Client, EmbeddingRequest, Prompt

        client = Client(TOKEN, host=args.base_url)
        request = EmbeddingRequest(prompt=Prompt.from_text("hello"), layers=[-1], pooling=["mean"])

        def call() -> None:
            answer = client.embed(request, model=MODEL)
            vectors = list(answer.embeddings.values())
            if len(vectors[0]) != EMBEDDING_SIZE:
                raise RuntimeError("wrong embedding size")

    call()
    elapsed = timed_loop(n, call)
    return result(n / elapsed, "req/s", n=n, elapsed=elapsed)


def sync_stream(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    stream_url = args.base_url + ("stream-cl/" if args.framing == "length" else "stream/")
    warm_url = args.base_url + "warm/"
    if kind == "raw":
        raw_stream = RawSync(stream_url)
        raw_warm = RawSync(warm_url)
        body = chat_body(stream=True)

        def consume(warm: bool) -> int:
            target = raw_warm if warm else raw_stream
            return sum(1 for _ in target.post_stream("chat/completions", body))

    else:
        from aleph_alpha_client import Client

        if not hasattr(Client, "chat_with_streaming"):
            raise NotAvailable("Client has no chat_with_streaming")
        client = Client(TOKEN, host=stream_url)
        warm_client = Client(TOKEN, host=warm_url)
        request = chat_request()

        def consume(warm: bool) -> int:
            target = warm_client if warm else client
            return sum(1 for _ in target.chat_with_streaming(request, model=MODEL))

    consume(True)
    items = 0
    start = clock_start()
    for _ in range(args.repeat):
        items += consume(False)
    elapsed = clock_stop(start)
    events = args.events * args.repeat
    return result(events / elapsed, "chunks/s", events=events, items=items, elapsed=elapsed)


async def _async_chat(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    n, concurrency = args.n, args.concurrency
    remaining = n

    def take() -> bool:
        nonlocal remaining
        if remaining <= 0:
            return False
        remaining -= 1
        return True

    if kind == "raw":
        body = chat_body()
        connections = [raw_async_connection(args.base_url) for _ in range(concurrency)]

        async def worker(conn: RawAsyncConnection) -> None:
            while take():
                answer = await conn.post("chat/completions", body)
                check_chat(answer["choices"][0]["message"]["content"])

        await connections[0].post("chat/completions", body)  # warm-up
        start = clock_start()
        await asyncio.gather(*(worker(conn) for conn in connections))
        elapsed = clock_stop(start)
        for conn in connections:
            await conn.close()
    else:
        from aleph_alpha_client import AsyncClient

        request = chat_request()
        async with AsyncClient(TOKEN, host=args.base_url) as client:

            async def one() -> None:
                check_chat((await client.chat(request, model=MODEL)).message.content)

            async def worker_c() -> None:
                while take():
                    await one()

            await one()  # warm-up
            start = clock_start()
            await asyncio.gather(*(worker_c() for _ in range(concurrency)))
            elapsed = clock_stop(start)
    return result(
        n / elapsed,
        "req/s",
        n=n,
        concurrency=concurrency,
        elapsed=elapsed,
        peak_rss_mb=peak_rss_mb(),
    )


def async_chat(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    return asyncio.run(_async_chat(kind, args))


async def _async_stream(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    stream_url = args.base_url + ("stream-cl/" if args.framing == "length" else "stream/")
    warm_url = args.base_url + "warm/"
    items = 0
    if kind == "raw":
        body = chat_body(stream=True)
        conn = raw_async_connection(stream_url)
        warm = raw_async_connection(warm_url)
        async for _ in warm.post_stream("chat/completions", body):
            pass
        start = clock_start()
        for _ in range(args.repeat):
            async for _ in conn.post_stream("chat/completions", body):
                items += 1
        elapsed = clock_stop(start)
        await conn.close()
        await warm.close()
    else:
        from aleph_alpha_client import AsyncClient

        request = chat_request()
        async with AsyncClient(TOKEN, host=warm_url) as warm_client:
            async for _ in warm_client.chat_with_streaming(request, model=MODEL):
                pass
        async with AsyncClient(TOKEN, host=stream_url) as client:
            start = clock_start()
            for _ in range(args.repeat):
                async for _ in client.chat_with_streaming(request, model=MODEL):
                    items += 1
            elapsed = clock_stop(start)
    events = args.events * args.repeat
    return result(events / elapsed, "chunks/s", events=events, items=items, elapsed=elapsed)


def async_stream(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    return asyncio.run(_async_stream(kind, args))


IMPORT_SNIPPET = """\
import time
t0 = time.perf_counter()
{stmt}
t1 = time.perf_counter()
try:
    {touch}
    t2 = (time.perf_counter() - t0) * 1000
except AttributeError:
    t2 = float("nan")
print((t1 - t0) * 1000, t2)
"""


def cold_import(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    """Import time in fresh interpreters (pyc cache warm, OS file cache warm).

    `value` is the time of the bare `import aleph_alpha_client`; `clients_ms` is the
    time until `Client` and `AsyncClient` have also been fetched from it, which is
    what a program pays when the package defers work to attribute access.
    """
    if kind == "raw":
        stmt, touch = "import json, http.client", "import asyncio"
    else:
        stmt = "import aleph_alpha_client"
        touch = "aleph_alpha_client.Client, aleph_alpha_client.AsyncClient"
    # PYTHONPATH stays: run.py points it at the snapshot of ours it measures.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    code = IMPORT_SNIPPET.format(stmt=stmt, touch=touch)
    bare: list[float] = []
    clients: list[float] = []
    wall: list[float] = []
    for i in range(args.n + 1):  # the first run writes missing .pyc files; not counted
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        if proc.returncode:
            tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
            raise RuntimeError(f"import failed: {tail}")
        out = proc.stdout
        took = (time.perf_counter() - start) * 1000
        if i:
            first, second = out.split()
            bare.append(float(first))
            if second != "nan":
                clients.append(float(second))
            wall.append(took)
    return result(
        statistics.median(bare),
        "ms",
        n=args.n,
        clients_ms=statistics.median(clients) if clients else None,
        process_wall_ms=statistics.median(wall),
        min_ms=min(bare),
        max_ms=max(bare),
    )


RUNNERS: dict[str, Callable[[str, argparse.Namespace], dict[str, Any]]] = {
    "sync_chat": sync_chat,
    "async_chat": async_chat,
    "async_stream": async_stream,
    "sync_stream": sync_stream,
    "sync_embed": sync_embed,
    "sync_complete": sync_complete,
    "cold_import": cold_import,
}


def client_version(kind: str) -> str:
    if kind == "raw":
        return f"python {sys.version.split()[0]} stdlib"
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("aleph-alpha-client")
    except PackageNotFoundError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", required=True, choices=["ours", "official", "raw"])
    parser.add_argument("--workload", required=True, choices=WORKLOADS)
    parser.add_argument("--base-url", default="http://127.0.0.1:8080/")
    parser.add_argument("--n", type=int, default=1000, help="calls (or import runs)")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--events", type=int, default=20_000, help="events per served stream")
    parser.add_argument("--repeat", type=int, default=1, help="streams per measurement")
    parser.add_argument(
        "--framing",
        choices=["chunked", "length"],
        default="chunked",
        help="streams: chunked, ~1 HTTP chunk per event (default), or one Content-Length body",
    )
    args = parser.parse_args()
    if not args.base_url.endswith("/"):
        args.base_url += "/"
    line: dict[str, Any] = {"client": args.client, "workload": args.workload}
    try:
        if args.client != "raw" and args.workload != "cold_import":
            line["version"] = client_version(args.client)
            import aleph_alpha_client

            line["module"] = os.path.dirname(aleph_alpha_client.__file__ or "?")
        line.update(RUNNERS[args.workload](args.client, args))
    except NotAvailable as exc:
        line.update(value=None, na=str(exc))
    except Exception as exc:  # reported, not raised: run.py shows it in the table
        traceback.print_exc()
        line.update(value=None, error=f"{type(exc).__name__}: {exc}"[:500])
    print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
