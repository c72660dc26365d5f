"""What each transport costs: the same chat call over every transport of both clients.

    python benchmarks/transports.py            # 500 sync calls, 2000 async (100 at once)
    python benchmarks/transports.py --n 200    # smaller

A canned-answer HTTP/1.1 keep-alive server runs in its own process on loopback (stdlib
``http.server``), so the numbers are client overhead plus that server's fixed cost, the same
for every transport. Needs the extras: ``pip install -e ".[httpx,requests,aiohttp]"``.
Prints a markdown table: calls per second, wall time per call and the client process's CPU
time per call (``time.process_time``; the server runs in another process, so this is the
client's own cost and the steadier figure on a loaded machine), medians of 3 rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import statistics
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ANSWER = json.dumps(
    {
        "id": "x",
        "choices": [
            {
                "finish_reason": "stop",
                "index": 0,
                "message": {"role": "assistant", "content": "The capital of Spain is Madrid."},
            }
        ],
        "created": 1,
        "model": "m",
        "object": "chat.completion",
        "usage": {"prompt_tokens": 1, "completion_tokens": 7, "total_tokens": 8},
    }
).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else head and body meet delayed ACKs: ~40 ms per call

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(ANSWER)))
        self.end_headers()
        self.wfile.write(ANSWER)

    def log_message(self, *args: Any) -> None:
        pass


def serve(port: int) -> None:
    ThreadingHTTPServer.request_queue_size = 256
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sync_transport(kind: str) -> Any:
    from aleph_alpha_client import _compat_transport as ct

    return {"ours": None, "httpx": ct.HttpxTransport, "requests": ct.RequestsTransport}[kind]


def async_transport(kind: str) -> Any:
    from aleph_alpha_client import _compat_transport as ct

    return {"ours": None, "httpx": ct.AsyncHttpxTransport, "aiohttp": ct.AiohttpTransport}[kind]


def request() -> Any:
    from aleph_alpha_client import ChatRequest, Message
    from aleph_alpha_client.chat import Role

    return ChatRequest(model="m", messages=[Message(role=Role.User, content="Capital of Spain?")])


def run_sync(kind: str, url: str, n: int) -> tuple[float, float]:
    from aleph_alpha_client import Client

    factory = sync_transport(kind)
    with Client("t", host=url, transport=factory() if factory else None) as c:
        req = request()
        c.chat(req, model="m")
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(n):
            c.chat(req, model="m")
        return (time.perf_counter() - start) / n, (time.process_time() - cpu) / n


def run_async(kind: str, url: str, n: int, concurrency: int) -> tuple[float, float]:
    from aleph_alpha_client import AsyncClient

    factory = async_transport(kind)

    async def main() -> tuple[float, float]:
        async with AsyncClient("t", host=url, transport=factory() if factory else None) as c:
            req = request()
            await c.chat(req, model="m")
            sem = asyncio.Semaphore(concurrency)

            async def one() -> None:
                async with sem:
                    await c.chat(req, model="m")

            start, cpu = time.perf_counter(), time.process_time()
            await asyncio.gather(*(one() for _ in range(n)))
            return (time.perf_counter() - start) / n, (time.process_time() - cpu) / n

    return asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--async-n", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    server = multiprocessing.Process(target=serve, args=(port,), daemon=True)
    server.start()
    time.sleep(0.5)
    url = f"http://127.0.0.1:{port}"
    rows = []
    try:
        for kind in ("ours", "httpx", "requests"):
            runs = [run_sync(kind, url, args.n) for _ in range(args.rounds)]
            rows.append(("Client", kind, *_medians(runs)))
        for kind in ("ours", "httpx", "aiohttp"):
            runs = [
                run_async(kind, url, args.async_n, args.concurrency) for _ in range(args.rounds)
            ]
            rows.append(("AsyncClient", kind, *_medians(runs)))
    finally:
        server.terminate()
    print("| client | transport | calls/s | µs per call | client CPU µs per call | CPU vs ours |")
    print("|---|---|---:|---:|---:|---:|")
    base: dict[str, float] = {}
    for client, kind, per_call, cpu in rows:
        base.setdefault(client, cpu)
        print(
            f"| {client} | {kind} | {1 / per_call:,.0f} | {per_call * 1e6:,.0f} | "
            f"{cpu * 1e6:,.0f} | {cpu / base[client]:.2f}x |"
        )


def _medians(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


if __name__ == "__main__":
    main()
