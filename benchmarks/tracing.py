"""What tracing costs per call: client CPU time of chat calls with OpenTelemetry off and on.

Usage: ``python benchmarks/tracing.py [--calls 200] [--rounds 15] [--floor]`` (about 2 minutes).

The emulator answers in its own process, so the figures are the client's own CPU time
(``time.process_time``) per call, median over bursts. Each configuration lives in its own
interpreter (OpenTelemetry's global providers cannot be unset), started once. Within it the
parent asks for pairs of short bursts of calls, one with the client's tracing hooks
(``_tracing.start``, ``start_stream``, ``on_attempt``) as they are and one with them replaced
by no-ops (what the client does without ``opentelemetry`` installed), so that both halves of a
pair see the same load of a shared machine; the change is the median over the pairs:

* ``api, no SDK``: ``opentelemetry-api`` importable, no provider configured (the default for
  an application that installs the ``otel`` extra but configures nothing);
* ``SDK spans``: a ``TracerProvider`` with a ``SimpleSpanProcessor`` and the in-memory exporter
  (every span exported synchronously, the worst case of a real exporter's processor);
* ``SDK spans, batch``: the same exporter behind a ``BatchSpanProcessor`` (what production
  setups use: spans are exported by a background thread, whose CPU time counts too);
* ``SDK spans+metrics``: ``SDK spans`` plus a ``MeterProvider`` with an in-memory metric reader.

Workloads: ``sync chat`` (``Client.chat``), ``async chat`` (``AsyncClient.chat``, one at a
time), ``sync stream`` (``Client.chat_with_streaming`` read to its end). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CONFIGS = ["api, no SDK", "SDK spans", "SDK spans, batch", "SDK spans+metrics"]
WORKLOADS = ["sync chat", "async chat", "sync stream"]

CHILD = r"""
import asyncio, json, sys, time
config, url = sys.argv[1], sys.argv[2]
if config.startswith("SDK"):
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    processor = BatchSpanProcessor if "batch" in config else SimpleSpanProcessor
    provider.add_span_processor(processor(exporter))
    trace.set_tracer_provider(provider)
    if "metrics" in config:
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
from aleph_alpha_client import AsyncClient, ChatRequest, Client, Message, Role, _tracing

HOOKS = {name: getattr(_tracing, name) for name in ("start", "start_stream", "on_attempt")}


def hooks(on):  # the client's tracing hooks as they are (on) or no-ops (off)
    for name, hook in HOOKS.items():
        setattr(_tracing, name, hook if on else (lambda *args, **kwargs: None))

MODEL = "llama-3.1-8b-instruct"
request = ChatRequest(messages=[Message(role=Role.User, content="Hello")], model=MODEL)


def clear():
    if config.startswith("SDK"):
        exporter.clear()


client = Client("t", host=url)
loop = asyncio.new_event_loop()
aclient = AsyncClient("t", host=url)


def sync_chat(n):
    for _ in range(n):
        client.chat(request, MODEL)


def sync_stream(n):
    for _ in range(n):
        client.chat_with_streaming(request, MODEL).until_done()


async def async_chat(n):
    for _ in range(n):
        await aclient.chat(request, MODEL)


def run(workload, n, on):
    hooks(on)
    clear()
    cpu = time.process_time()
    if workload == "async chat":
        loop.run_until_complete(async_chat(n))
    elif workload == "sync stream":
        sync_stream(n)
    else:
        sync_chat(n)
    return (time.process_time() - cpu) / n


for workload in ("sync chat", "async chat", "sync stream"):
    run(workload, 50, True)  # warm up: connections, caches, lazy imports
print("ready", flush=True)
for line in sys.stdin:
    workload, n, on = line.rsplit(" ", 2)
    print(json.dumps(run(workload, int(n), on.strip() == "on")), flush=True)
"""


FLOOR = r"""
import json, statistics, sys, time
from opentelemetry import context, propagate, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
from aleph_alpha_client import ChatRequest, ChatResponse, Message, Role, _tracing
request = ChatRequest(messages=[Message(role=Role.User, content="Hello")], model="m")
answer = ChatResponse.from_json({"id": "x", "model": "m", "choices": [{"finish_reason": "stop",
    "message": {"role": "assistant", "content": "hi"}}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}})
object.__setattr__(answer, "request_id", "r")
tracer = provider.get_tracer("floor")
start = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "aleph_alpha",
    "gen_ai.request.model": "m", "server.address": "127.0.0.1", "server.port": 8000}
end = {"gen_ai.response.id": "x", "gen_ai.response.model": "m",
    "gen_ai.response.finish_reasons": ["stop"], "gen_ai.usage.input_tokens": 1,
    "gen_ai.usage.output_tokens": 2, "aleph_alpha.request_id": "r", "aleph_alpha.attempts": 1}
def by_hand():
    span = tracer.start_span("chat m", kind=trace.SpanKind.CLIENT, attributes=start)
    token = context.attach(trace.set_span_in_context(span))
    propagate.inject({})
    span.set_attributes(end)
    context.detach(token)
    span.end()
def bare():
    tracer.start_span("chat m").end()
def ours():
    observer = _tracing.start("chat/completions", "m", request, "http://127.0.0.1:8000/")
    _tracing.on_attempt({}, 0)
    observer.done(answer)
work = (("the SDK's bare span (no attributes, not made current)", bare),
    ("SDK span by hand (our attributes, made current, traceparent)", by_hand), ("ours", ours))
out = {name: [] for name, _ in work}
for _ in range(7):
    for name, f in work:
        cpu = time.process_time()
        for _ in range(3000):
            f()
        out[name].append((time.process_time() - cpu) / 3000)
        exporter.clear()
print(json.dumps({k: statistics.median(v) for k, v in out.items()}))
"""


NO_SDK = r"""
import json, timeit
import opentelemetry.trace
from aleph_alpha_client import ChatRequest, Message, Role, _tracing
request = ChatRequest(messages=[Message(role=Role.User, content="Hello")], model="m")
def hooks():
    _tracing.start("chat/completions", "m", request, "http://127.0.0.1:8000/")
    _tracing.on_attempt({}, 0)
print(json.dumps({"ours, no SDK configured": min(timeit.repeat(hooks, number=20000, repeat=7)) / 20000}))
"""


def floor() -> None:
    values: dict[str, float] = {}
    for script in (FLOOR, NO_SDK):
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=300
        )
        values.update(json.loads(done.stdout.strip().splitlines()[-1]))
    print(
        "\nspan work alone (no HTTP), CPU µs per call, median (min without an SDK) of 7 rounds:\n"
    )
    print("| span made by | µs |")
    print("|---|---|")
    for name, value in values.items():
        print(f"| {name} | {value * 1e6:.1f} |")


def start_emulator() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "aleph_alpha_client.emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        for word in line.split():
            if word.startswith("http://"):
                return proc, word.rstrip("/.,")
    proc.kill()
    raise SystemExit("the emulator did not say its URL")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per burst")
    parser.add_argument("--rounds", type=int, default=15, help="bursts per configuration")
    parser.add_argument(
        "--floor", action="store_true", help="also time the span work alone (SDK by hand vs ours)"
    )
    args = parser.parse_args()
    proc, url = start_emulator()
    # results[config][workload][mode]: CPU seconds per call of each burst
    results: dict[str, dict[str, dict[str, list[float]]]] = {
        c: {w: {"off": [], "on": []} for w in WORKLOADS} for c in CONFIGS
    }
    children: dict[str, subprocess.Popen[str]] = {}
    try:
        for config in CONFIGS:
            children[config] = child = subprocess.Popen(
                [sys.executable, "-c", CHILD, config, url],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                raise SystemExit(f"the {config!r} child did not start")

        def burst(config: str, workload: str, n: int, mode: str) -> None:
            child = children[config]
            assert child.stdin is not None and child.stdout is not None
            child.stdin.write(f"{workload} {n} {mode}\n")
            child.stdin.flush()
            results[config][workload][mode].append(json.loads(child.stdout.readline()))

        # Pairs of short bursts in one interpreter, hooks off then on (or on then off): the
        # load of a shared machine changes over seconds, a pair sees the same load.
        for round_ in range(args.rounds):
            modes = ("off", "on") if round_ % 2 == 0 else ("on", "off")
            for workload in WORKLOADS:
                n = args.calls if workload != "sync stream" else max(1, args.calls // 5)
                for config in CONFIGS:
                    for mode in modes:
                        burst(config, workload, n, mode)
    finally:
        for child in children.values():
            child.kill()
            child.wait(10)
        proc.terminate()
        proc.wait(10)
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {args.calls} calls a burst, "
        f"{args.rounds} pairs of bursts; client CPU µs per call with the client's tracing hooks "
        "off / on in the same interpreter (medians), and the median (quartiles) of the per-pair "
        "changes\n"
    )
    print("| workload | " + " | ".join(CONFIGS) + " |")
    print("|---" * (len(CONFIGS) + 1) + "|")
    for workload in WORKLOADS:
        cells = []
        for config in CONFIGS:
            off = results[config][workload]["off"]
            on = results[config][workload]["on"]
            changes = [b / a - 1 for a, b in zip(off, on)]
            low, mid, high = statistics.quantiles(changes, n=4)
            cells.append(
                f"{statistics.median(off) * 1e6:.0f} / {statistics.median(on) * 1e6:.0f} "
                f"({mid * 100:+.1f}%, {low * 100:+.0f}..{high * 100:+.0f})"
            )
        print(f"| {workload} | " + " | ".join(cells) + " |")
    if args.floor:
        floor()


if __name__ == "__main__":
    main()
