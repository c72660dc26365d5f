"""One AsyncClient used by several event loops in several threads at once (issue 10)."""

from __future__ import annotations

import asyncio
import threading
import warnings
from typing import Any

import pytest

from aleph_alpha_client import AsyncClient, ChatRequest, Client, Message
from aleph_alpha_client.emulator import Emulator

MODEL = "llama-3.1-8b-instruct"
CALLS = 40


def _chat(text: str) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content=text)], model=MODEL)


def _run_threads(target: Any, count: int) -> list[Any]:
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def main(index: int) -> None:
        try:
            results[index] = target(index)
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=main, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "a thread hangs"
    assert not errors, errors
    return results


def test_one_async_client_serves_two_loops_in_two_threads_at_once() -> None:
    with Emulator(token="t", latency=0.005) as emu:
        client = AsyncClient("t", host=emu.url, total_retries=0, request_timeout_seconds=20)
        start = threading.Barrier(2)

        def thread_main(index: int) -> list[str]:
            async def many() -> list[str]:
                start.wait()  # both loops start sending at the same time
                answers = await asyncio.gather(
                    *(client.chat(_chat(f"t{index} c{i}"), MODEL) for i in range(CALLS))
                )
                streamed = []
                async for chunk in client.chat_with_streaming(_chat(f"s{index}"), MODEL):
                    streamed.append(chunk)
                return [a.message.content for a in answers]

            return asyncio.run(many())

        results = _run_threads(thread_main, 2)
        assert [len(r) for r in results] == [CALLS, CALLS]
        for result in results:
            assert all(isinstance(text, str) and text for text in result)
        assert len(emu.requests) == 2 * CALLS + 2
        asyncio.run(client.close())


def test_async_client_loops_one_after_another_and_then_two_at_once() -> None:
    with Emulator(token="t") as emu:
        client = AsyncClient("t", host=emu.url, total_retries=0, request_timeout_seconds=20)

        async def some(tag: str) -> int:
            answers = await asyncio.gather(*(client.chat(_chat(tag), MODEL) for _ in range(10)))
            return len(answers)

        assert asyncio.run(some("first")) == 10
        assert asyncio.run(some("second")) == 10
        assert _run_threads(lambda i: asyncio.run(some(f"t{i}")), 3) == [10, 10, 10]
        asyncio.run(client.close())


def test_sync_client_serves_many_threads_at_once() -> None:
    with Emulator(token="t") as emu, Client("t", host=emu.url, total_retries=0) as client:

        def thread_main(index: int) -> int:
            return sum(
                1 for i in range(10) if client.chat(_chat(f"{index} {i}"), MODEL).message.content
            )

        assert _run_threads(thread_main, 4) == [10] * 4


def test_close_from_one_loop_leaves_another_loops_stream_running() -> None:
    with Emulator(token="t", stream_latency=0.01) as emu:
        client = AsyncClient("t", host=emu.url, total_retries=0, request_timeout_seconds=20)
        started, closed = threading.Event(), threading.Event()
        long_text = " ".join(f"word{i}" for i in range(30))

        def streaming(_: int) -> int:
            async def main() -> int:
                items = 0
                async for _item in client.chat_with_streaming(_chat(long_text), MODEL):
                    items += 1
                    if items == 1:
                        started.set()
                        await asyncio.get_running_loop().run_in_executor(None, closed.wait, 20)
                return items

            return asyncio.run(main())

        def closing() -> None:
            assert started.wait(20)
            asyncio.run(client.close())  # from another loop and thread, mid-stream
            closed.set()

        closer = threading.Thread(target=closing)
        closer.start()
        [items] = _run_threads(streaming, 1)
        closer.join(20)
        assert closed.is_set() and items > 3
        # the client still works afterwards, from a new loop
        assert asyncio.run(client.chat(_chat("again"), MODEL)).message.content
        asyncio.run(client.close())


def test_mocked_aiohttp_serves_two_loops_in_two_threads_at_once() -> None:
    """Under aioresponses the client sends through aiohttp: one session per loop too."""
    import gc

    aioresponses = pytest.importorskip("aioresponses")
    from aleph_alpha_client import CompletionRequest, Prompt

    url = "https://api.example.invalid/complete"
    body = {
        "model_version": "1",
        "completions": [{"completion": " mocked", "finish_reason": "maximum_tokens"}],
        "num_tokens_prompt_total": 1,
        "num_tokens_generated": 1,
    }
    request = CompletionRequest(prompt=Prompt.from_text("x"), maximum_tokens=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with aioresponses.aioresponses() as mock:
            mock.post(url, payload=body, repeat=True)
            clients = [AsyncClient("t", host="https://api.example.invalid", total_retries=0)]
            start = threading.Barrier(2)

            def thread_main(_: int) -> int:
                async def many() -> int:
                    start.wait()
                    client = clients[0]
                    answers = await asyncio.gather(
                        *(client.complete(request, model="m") for _ in range(10))
                    )
                    await client.close()  # each loop closes what it opened
                    return sum(a.completions[0].completion == " mocked" for a in answers)

                return asyncio.run(many())

            assert _run_threads(thread_main, 2) == [10, 10]
        clients.clear()
        del mock
        gc.collect()  # a session left unclosed warns when it is collected
    assert [str(w.message) for w in caught if "Unclosed" in str(w.message)] == []
