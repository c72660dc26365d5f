"""The batch runner over real sockets: ids, errors as lines, 429 storms, JSONL, resume after SIGKILL."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aleph_alpha_client import (
    AsyncClient,
    Client,
    Prompt,
    SemanticEmbeddingRequest,
    SemanticRepresentation,
)
from aleph_alpha_client.batch import (
    AdaptiveLimit,
    BatchItem,
    BatchResult,
    BatchSummary,
    _runner,
    arun_batch,
    read_jsonl,
    run_batch,
)
from aleph_alpha_client.emulator import Emulator, Fault
from counting_emulator import CountingEmulator

MODEL = "luminous-base"


def embed(text: str) -> SemanticEmbeddingRequest:
    return SemanticEmbeddingRequest(
        prompt=Prompt.from_text(text), representation=SemanticRepresentation.Symmetric
    )


def items(n: int) -> Iterator[BatchItem]:
    for i in range(n):
        yield BatchItem(f"id-{i}", embed(f"text {i}"), MODEL)


def lines(path: Path) -> list[dict[str, Any]]:
    raw = path.read_bytes()
    assert raw == b"" or raw.endswith(b"\n")
    return [json.loads(line) for line in raw.splitlines()]


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


#: Run a test with each client: run_batch for a Client, arun_batch for an AsyncClient.
BOTH_CLIENTS = pytest.mark.parametrize("kind", ["sync", "async"])


def collect(
    kind: str, host: str, inputs: Any, *, total_retries: int, **options: Any
) -> list[BatchResult]:
    """Every result of a batch, through the sync or the async entry point."""
    if kind == "sync":
        with Client("t", host=host, total_retries=total_retries) as client:
            return list(run_batch(client, inputs, **options))

    async def main() -> list[BatchResult]:
        async with AsyncClient("t", host=host, total_retries=total_retries) as client:
            return [r async for r in arun_batch(client, inputs, **options)]

    return asyncio.run(main())


async def test_one_result_per_id_errors_are_lines(emu: Emulator, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    inputs = [*items(20), BatchItem("bad-model", embed("x"), "no-such-model")]
    summary = BatchSummary()
    async with AsyncClient("t", host=emu.url, total_retries=0) as client:
        results = [
            r async for r in arun_batch(client, inputs, output=out, concurrency=4, summary=summary)
        ]
    assert sorted(r.custom_id for r in results) == sorted(i.custom_id for i in inputs)
    bad = next(r for r in results if r.custom_id == "bad-model")
    assert not bad.ok and bad.status_code == 400
    written = {line["custom_id"]: line for line in lines(out)}
    assert len(written) == 21 and len(lines(out)) == 21
    good = written["id-3"]
    assert good["error"] is None and good["response"]["status_code"] == 200
    assert good["response"]["request_id"].startswith("emu-")  # the server's, as on errors
    assert len({line["response"]["request_id"] for line in written.values()}) == 21
    assert len(good["response"]["body"]["embedding"]) > 0
    assert written["bad-model"]["response"]["status_code"] == 400
    assert written["bad-model"]["error"]["message"]
    assert summary.items == 21 and summary.failed == 1 and summary.succeeded == 20


def test_sync_run_batch_with_client_and_a_generator(emu: Emulator) -> None:
    with Client("t", host=emu.url, total_retries=0) as client:
        ids = [r.custom_id for r in run_batch(client, items(15), concurrency=3) if r.ok]
    assert sorted(ids) == sorted(f"id-{i}" for i in range(15))


async def test_sync_run_batch_works_inside_a_running_loop(emu: Emulator) -> None:
    # as in a notebook cell: a loop is running in this thread
    with Client("t", host=emu.url, total_retries=0) as client:
        results = list(run_batch(client, items(5), concurrency=2))
    assert len(results) == 5 and all(r.ok for r in results)


@BOTH_CLIENTS
def test_429_storm_shrinks_concurrency_and_every_item_ends_answered(
    emu: Emulator, kind: str
) -> None:
    emu.script([Fault.status(429, retry_after=0.05)] * 12)
    summary = BatchSummary()
    results = collect(
        kind, emu.url, items(40), total_retries=8, concurrency=8, max_concurrency=8, summary=summary
    )
    assert len(results) == 40 and all(r.ok for r in results)
    assert summary.retries == 12
    assert summary.lowest_concurrency < 8


@BOTH_CLIENTS
def test_concurrency_grows_back_after_a_429_storm(kind: str) -> None:
    summary = BatchSummary()
    with CountingEmulator(latency=0.02) as emu:
        emu.script([Fault.status(429, retry_after=0.05)] * 16)
        results = collect(
            kind,
            emu.url,
            items(300),
            total_retries=8,
            concurrency=8,
            max_concurrency=8,
            summary=summary,
        )
        arrivals = emu.arrivals
    assert len(results) == 300 and all(r.ok for r in results)
    assert summary.lowest_concurrency <= 4  # the storm cut it down (halved at least once)
    # the last 100 requests, long after the storm: the server sees (close to) the maximum in
    # flight again (2 when the limit does not grow back)
    assert max(count for _, count in arrivals[-100:]) >= 6
    assert summary.concurrency == 8


@BOTH_CLIENTS
def test_retry_after_is_honoured(kind: str) -> None:
    with CountingEmulator() as emu:
        emu.script([Fault.status(503, retry_after=0.4)])
        results = collect(kind, emu.url, items(1), total_retries=2, concurrency=1)
        (first, _), (second, _) = emu.arrivals
    assert second - first >= 0.4  # the retry waited for Retry-After (a pause, not a speed)
    assert results[0].ok and results[0].attempts == 2


async def test_retries_stay_within_the_client_budget(emu: Emulator, tmp_path: Path) -> None:
    emu.script([Fault.status(503, retry_after=0.01)] * 3)
    out = tmp_path / "out.jsonl"
    async with AsyncClient("t", host=emu.url, total_retries=1) as client:
        results = [r async for r in arun_batch(client, items(1), output=out)]
    assert results[0].attempts == 2 and results[0].status_code == 503
    assert lines(out)[0]["response"]["status_code"] == 503
    assert len(emu.requests) == 2


def test_adaptive_limit_aimd() -> None:
    limit = AdaptiveLimit(4, 6)
    for _ in range(100):
        limit.success()
    assert limit.current == 6  # never above the maximum
    limit.overload(None, now=10.0)
    assert limit.current == 3
    limit.overload(None, now=10.1)  # the same storm: no second cut
    assert limit.current == 3
    limit.overload(2.0, now=11.0)
    assert limit.current == 1 and limit.paused_until == 13.0


def test_jsonl_input_all_endpoints_and_bad_lines(emu: Emulator, tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    rows = [
        {
            "custom_id": "chat",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "llama-3.1-8b-instruct",
                "messages": [{"role": "user", "content": "What is the capital of Spain?"}],
                "max_tokens": 20,
            },
        },
        {
            "custom_id": "complete",
            "method": "POST",
            "url": "/complete",
            "body": {"model": MODEL, "prompt": "An apple a day", "maximum_tokens": 5},
        },
        {
            "custom_id": "semantic",
            "method": "POST",
            "url": "/semantic_embed",
            "body": {"model": MODEL, "prompt": "hi", "representation": "symmetric"},
        },
        {
            "custom_id": "v2",
            "method": "POST",
            "url": "/embeddings",
            "body": {"model": "pharia-1-embedding-4608-control", "input": "hello"},
        },
        {"custom_id": "broken", "method": "POST", "url": "/nope", "body": {}},
    ]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    with Client("t", host=emu.url, total_retries=0) as client:
        results = {r.custom_id: r for r in run_batch(client, src, output=out)}
    assert set(results) == {"chat", "complete", "semantic", "v2", "broken"}
    assert all(results[k].ok for k in ("chat", "complete", "semantic", "v2")), results
    assert "Madrid" in results["chat"].response.message.content
    assert results["broken"].error is not None
    assert "url" in results["broken"].error["message"]
    assert results["broken"].error["code"] == "invalid_request"
    assert len(lines(out)) == 5


def test_line_without_custom_id_is_a_clear_error(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"url": "/complete"}\n')
    with pytest.raises(ValueError, match=r"line 1\.custom_id"):
        list(read_jsonl(src))


def test_existing_output_needs_resume(emu: Emulator, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text('{"custom_id": "x"}\n')
    with Client("t", host=emu.url) as client, pytest.raises(ValueError, match="resume"):
        list(run_batch(client, items(1), output=out))


_CHILD = textwrap.dedent(
    """
    import asyncio
    import sys
    from aleph_alpha_client import (
        AsyncClient, Client, Prompt, SemanticEmbeddingRequest, SemanticRepresentation
    )
    from aleph_alpha_client.batch import BatchItem, arun_batch, run_batch

    host, out, kind = sys.argv[1], sys.argv[2], sys.argv[3]

    def items():
        for i in range(400):
            request = SemanticEmbeddingRequest(
                prompt=Prompt.from_text(f"text {i}"),
                representation=SemanticRepresentation.Symmetric,
            )
            yield BatchItem(f"id-{i}", request, "luminous-base")

    async def main():
        async with AsyncClient("t", host=host, total_retries=0) as client:
            async for _ in arun_batch(client, items(), output=out, resume=True, concurrency=4):
                pass

    if kind == "sync":
        with Client("t", host=host, total_retries=0) as client:
            for _ in run_batch(client, items(), output=out, resume=True, concurrency=4):
                pass
    else:
        asyncio.run(main())
    """
)


@BOTH_CLIENTS
def test_resume_after_sigkill_answers_every_input_exactly_once(tmp_path: Path, kind: str) -> None:
    out = tmp_path / "out.jsonl"
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    with Emulator(latency=0.01) as emu:
        child = subprocess.Popen([sys.executable, str(script), emu.url, str(out), kind])
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if out.exists() and out.read_bytes().count(b"\n") >= 40:
                    break
                time.sleep(0.01)
            child.send_signal(signal.SIGKILL)
            child.wait(10)
        finally:
            if child.poll() is None:
                child.kill()
        first = out.read_bytes().count(b"\n")
        assert 40 <= first < 400  # killed mid-job
        rerun = collect(
            kind, emu.url, items(400), total_retries=0, output=out, resume=True, concurrency=4
        )
    ids = [line["custom_id"] for line in lines(out)]
    assert sorted(ids) == sorted(f"id-{i}" for i in range(400))  # each exactly once
    assert len(rerun) == 400 - len({*ids[:first]})
    assert all(line["error"] is None for line in lines(out))


def test_torn_last_line_is_cut_on_resume(emu: Emulator, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with Client("t", host=emu.url, total_retries=0) as client:
        list(run_batch(client, items(3), output=out))
        with open(out, "ab") as handle:
            handle.write(b'{"id": "x", "custom_id": "id-3", "resp')  # a torn line
        rest = list(run_batch(client, items(5), output=out, resume=True))
    assert sorted(r.custom_id for r in rest) == ["id-3", "id-4"]
    assert sorted(line["custom_id"] for line in lines(out)) == [f"id-{i}" for i in range(5)]


def test_rps_ceiling(emu: Emulator) -> None:
    with Client("t", host=emu.url, total_retries=0) as client:
        started = time.monotonic()
        list(run_batch(client, items(6), concurrency=6, rps=20))
    assert time.monotonic() - started >= 0.2  # 6 starts at 20/s need at least 5 gaps of 50 ms


def test_tokens_per_minute_ceiling_counts_what_is_in_flight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The sliding minute shrunk to 2 s so that the test takes seconds; the ceiling admits the
    # tokens of 4 items per window (each "text 00i" is 5 tokens), 8 could run at once.
    monkeypatch.setattr(_runner, "_TOKEN_WINDOW", 2.0)
    inputs = [BatchItem(f"id-{i}", embed(f"text {i:03d}"), MODEL) for i in range(10)]
    with CountingEmulator(latency=0.1) as emu, Client("t", host=emu.url, total_retries=0) as c:
        results = list(run_batch(c, inputs, concurrency=8, tokens_per_minute=20))
        arrivals = [at for at, _ in emu.arrivals]
    assert len(results) == 10 and all(r.ok for r in results)
    assert {r.tokens for r in results} == {5}
    # Counted where the server received them, over 1.5 s of each 2 s window: the rest is a
    # generous margin for the way from admission to the server, not a speed bound.
    most = max(sum(1 for u in arrivals if t <= u < t + 1.5) for t in arrivals)
    assert most <= 4


def test_bad_options_are_clear_errors(emu: Emulator) -> None:
    with Client("t", host=emu.url) as client:
        with pytest.raises(ValueError, match="concurrency"):
            list(run_batch(client, items(1), concurrency=0))
        with pytest.raises(ValueError, match="rps"):
            list(run_batch(client, items(1), rps=-1))
        with pytest.raises(ValueError, match="inputs"):
            list(run_batch(client, [object()]))


def test_progress_bar_on_stderr(emu: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    with Client("t", host=emu.url, total_retries=0) as client:
        assert len(list(run_batch(client, items(3), progress=True))) == 3
    err = capsys.readouterr().err
    assert "3item" in err and "concurrency=" in err


async def test_read_timeout_is_an_error_line_not_resent(emu: Emulator) -> None:
    emu.script([Fault.latency(1.0)])
    async with AsyncClient("t", host=emu.url, total_retries=3, request_timeout_seconds=0.2) as c:
        (result,) = [r async for r in arun_batch(c, items(1))]
    assert result.error is not None and result.error["code"] == "timeout"
    assert result.attempts == 1 and len(emu.requests) == 1
