"""The batch runner against a server: items/s and peak RSS, next to asyncio.gather + semaphore.

Each measurement runs in a fresh interpreter (so peak RSS is its own), against the emulator
started in another process (or ``--host URL``, e.g. the nginx of ``server.py``)::

    python benchmarks/batch.py --items 10000 100000            # embed and chat, both modes
    python benchmarks/batch.py --items 2000 --faults           # 10% 429, 5% 503, 2% resets

Modes: ``runner`` (``arun_batch``, a bounded window over a lazy generator), ``gather``
(``asyncio.gather`` over one task per item and an ``asyncio.Semaphore``: the usual loop),
``official`` (the official client's ``batch_semantic_embed``, when ``--official-python`` names
a python with ``aleph-alpha-client`` 11.x installed; embeddings only), ``ours-batch`` (the same
``batch_semantic_embed`` calls made with this client: 1,000 prompts per call, which both clients
split into requests of 100 prompts, so it sends 1/100 of the runner's HTTP requests).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from typing import Any

CONCURRENCY = 32
FAULTS = "429:0.1:retry_after=0.05,503:0.05:code=QUEUE_FULL:retry_after=0.05,reset:0.02"


def _requests(workload: str, n: int) -> Any:
    from aleph_alpha_client import (
        ChatRequest,
        Message,
        Prompt,
        Role,
        SemanticEmbeddingRequest,
        SemanticRepresentation,
    )
    from aleph_alpha_client.batch import BatchItem

    for i in range(n):
        if workload == "embed":
            request: Any = SemanticEmbeddingRequest(
                prompt=Prompt.from_text(f"text {i}"),
                representation=SemanticRepresentation.Symmetric,
                compress_to_size=128,
            )
            yield BatchItem(str(i), request, "luminous-base")
        else:
            request = ChatRequest(
                model="llama-3.1-8b-instruct",
                messages=[Message(role=Role.User, content=f"Say {i}")],
                maximum_tokens=16,
            )
            yield BatchItem(str(i), request, "llama-3.1-8b-instruct")


async def _child(mode: str, workload: str, n: int, host: str, retries: int) -> dict[str, Any]:
    import asyncio

    from aleph_alpha_client import AsyncClient
    from aleph_alpha_client.batch import BatchSummary, arun_batch

    ok = 0
    async with AsyncClient("t", host=host, total_retries=retries, pool_size=CONCURRENCY) as c:
        started = time.perf_counter()
        if mode == "runner":
            summary = BatchSummary()
            async for result in arun_batch(
                c, _requests(workload, n), concurrency=CONCURRENCY, summary=summary
            ):
                ok += result.ok
        else:
            semaphore = asyncio.Semaphore(CONCURRENCY)

            async def one(item: Any) -> bool:
                async with semaphore:
                    method = c.semantic_embed if workload == "embed" else c.chat
                    try:
                        await method(item.request, model=item.model)
                    except Exception:
                        return False
                    return True

            results = await asyncio.gather(*(one(item) for item in _requests(workload, n)))
            ok = sum(results)
        seconds = time.perf_counter() - started
    import resource

    usage = resource.getrusage(0)
    return {
        "ok": ok,
        "seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
    }


def _official(n: int, host: str) -> dict[str, Any]:
    from aleph_alpha_client import (  # the official client in its own python, or ours
        BatchSemanticEmbeddingRequest,
        Client,
        Prompt,
        SemanticRepresentation,
    )

    client = Client(token="t", host=host)
    started = time.perf_counter()
    ok = 0
    for start in range(0, n, 1000):
        request = BatchSemanticEmbeddingRequest(
            prompts=[Prompt.from_text(f"text {i}") for i in range(start, min(n, start + 1000))],
            representation=SemanticRepresentation.Symmetric,
            compress_to_size=128,
        )
        ok += len(client.batch_semantic_embed(request, model="luminous-base").embeddings)
    import resource

    seconds = time.perf_counter() - started
    usage = resource.getrusage(0)
    return {
        "ok": ok,
        "seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_emulator(faults: str | None) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    argv = [sys.executable, "-m", "aleph_alpha_client.emulator", "--port", str(port)]
    if faults:
        argv += ["--faults", faults]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the emulator did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, nargs="+", default=[10_000])
    parser.add_argument("--workloads", nargs="+", default=["embed", "chat"])
    parser.add_argument("--modes", nargs="+", default=["runner", "gather"])
    parser.add_argument("--host", help="a running server (default: start the emulator)")
    parser.add_argument("--faults", action="store_true", help=f"emulator faults: {FAULTS}")
    parser.add_argument("--official-python", help="a python with the official client")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, workload, n, host, retries = args.child
        if mode in ("official", "ours-batch"):  # the same code: both clients share the API
            result = _official(int(n), host)
        else:
            import asyncio

            result = asyncio.run(_child(mode, workload, int(n), host, int(retries)))
        print(json.dumps(result))
        return
    proc = None
    host = args.host
    if host is None:
        proc, host = _start_emulator(FAULTS if args.faults else None)
    retries = 20 if args.faults else 2
    try:
        print(
            "| workload | mode | items | answered ok | s | items/s | client CPU s | peak RSS MB |"
        )
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        for workload in args.workloads:
            modes = list(args.modes)
            if workload == "embed" and args.official_python and "official" not in modes:
                modes.append("official")
            if workload != "embed":
                modes = [m for m in modes if m not in ("official", "ours-batch")]
            for mode in modes:
                for n in args.items:
                    python = args.official_python if mode == "official" else sys.executable
                    env = dict(os.environ)
                    if mode == "official":
                        env.pop("PYTHONPATH", None)
                    out = subprocess.run(
                        [python, __file__, "--child", mode, workload, str(n), host, str(retries)],
                        capture_output=True,
                        text=True,
                        env=env,
                        check=True,
                    ).stdout
                    r = json.loads(out.strip().splitlines()[-1])
                    print(
                        f"| {workload} | {mode} | {n} | {r['ok']} | {r['seconds']:.1f} | "
                        f"{n / r['seconds']:.0f} | {r['cpu_seconds']:.1f} | {r['peak_rss_mb']:.0f} |",
                        flush=True,
                    )
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
