"""Timeouts on real loopback sockets, for ``Client`` and ``AsyncClient``.

Guarantees (docs/reliability.md):

* Connecting, waiting for the answer's headers, and silence between stream events are each
  bounded, and each ends in ``APITimeoutError`` (also a ``TimeoutError``) with its ``phase``.
* A POST whose answer timed out is not sent again (the server may still be running the
  inference) unless ``retry_read_timeouts=True``; a connect timeout (nothing was sent) is.
* A healthy stream is never cut by the total timeout, only by silence longer than ``idle``.

No assertion reads a clock: every scripted server waits far longer (30 s) than the client's
timeout, so a client without the timeout would get a successful answer and fail the test.
"""

from __future__ import annotations

import inspect
import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from aleph_alpha_client import Timeout
from aleph_alpha_client._exceptions import APITimeoutError
from aleph_alpha_client._streaming import AsyncStream
from aleph_alpha_client.chat import ChatRequest, ChatStreamChunk, Message, Role
from conftest import TRANSPORT_MODES, run_client
from scripted_server import Reply, ScriptedServer

MODES = TRANSPORT_MODES
REQUEST = ChatRequest(model="m", messages=[Message(role=Role.User, content="hi")])
CHAT_OK = {
    "choices": [
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}
    ]
}
HANG = 30.0  # how long a scripted server stalls; far beyond every client timeout here


def run(mode: str, host: str, call: Callable[[Any], Any], **kwargs: Any) -> Any:
    """Run ``call`` on a client of ``mode`` (see conftest.run_client)."""
    kwargs.setdefault("total_retries", 3)
    kwargs.setdefault("request_timeout_seconds", 305)  # the client default: tests pass their own
    return run_client(mode, host, call, **kwargs)


def chat(c: Any) -> Any:
    return c.chat(REQUEST, "m")


def drain_into(seen: list[Any]) -> Callable[[Any], Any]:
    """A call that streams a chat and appends every item to ``seen`` as it arrives."""

    def call(c: Any) -> Any:
        stream = c.chat_with_streaming(REQUEST, "m")
        if isinstance(stream, AsyncStream):

            async def go() -> None:
                async for item in stream:
                    seen.append(item)

            return go()
        for item in stream:
            seen.append(item)
        return None

    return call


def delayed(reply: Reply, seconds: float = HANG) -> Reply:
    reply.delay = seconds
    return reply


def sse_events(*texts: str) -> list[Any]:
    events: list[Any] = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
    events += [{"choices": [{"index": 0, "delta": {"content": t}}]} for t in texts]
    events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return events


# ------------------------------------------------------------------ connect


@pytest.fixture
def full_backlog() -> Iterator[str]:
    """A loopback listener that never accepts and whose backlog is full: SYNs are dropped,
    so a connect hangs until the client's connect timeout (Linux drops, does not refuse)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        filler.setblocking(False)
        try:
            filler.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(filler)
    # Make sure the backlog really is full: one more blocking connect must time out.
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.settimeout(0.2)
    try:
        probe.connect(("127.0.0.1", port))
    except TimeoutError:
        pass
    else:  # pragma: no cover - depends on the kernel
        probe.close()
        for filler in fillers:
            filler.close()
        listener.close()
        pytest.skip("this kernel accepts connects beyond a full backlog; no loopback trick")
    probe.close()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


@pytest.mark.parametrize("mode", MODES)
def test_connect_timeout(full_backlog: str, mode: str) -> None:
    timeout = Timeout(total=HANG, connect=0.2)
    with pytest.raises(APITimeoutError) as info:
        run(mode, full_backlog, chat, total_retries=0, request_timeout_seconds=timeout)
    assert isinstance(info.value, TimeoutError)
    assert info.value.phase == "connect"


@pytest.mark.parametrize("mode", MODES)
def test_connect_timeout_is_retried(
    full_backlog: str, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing was sent, so a connect timeout is safe to retry."""
    caplog.set_level(logging.INFO, logger="aleph_alpha_client")
    timeout = Timeout(total=HANG, connect=0.1)
    with pytest.raises(APITimeoutError) as info:
        run(mode, full_backlog, chat, total_retries=1, request_timeout_seconds=timeout)
    assert info.value.phase == "connect"
    assert sum("retry 1 in" in r.getMessage() for r in caplog.records) == 1


# ------------------------------------------------------------------ read


@pytest.mark.parametrize("mode", MODES)
def test_read_timeout_raises_and_is_not_resent(server: ScriptedServer, mode: str) -> None:
    server.default = delayed(Reply.json(CHAT_OK))
    with pytest.raises(APITimeoutError) as info:
        run(mode, server.url, chat, total_retries=3, request_timeout_seconds=0.3)
    assert isinstance(info.value, TimeoutError)
    assert info.value.phase == "read"
    # The POST may be running on the server: it was not sent again.
    assert len(server.received) == 1


@pytest.mark.parametrize("mode", MODES)
def test_read_timeout_retried_when_asked(server: ScriptedServer, mode: str) -> None:
    server.add(delayed(Reply.json(CHAT_OK)), Reply.json(CHAT_OK))
    result = run(
        mode,
        server.url,
        chat,
        total_retries=3,
        request_timeout_seconds=0.3,
        retry_read_timeouts=True,
    )
    assert result.message.content == "ok"
    assert len(server.received) == 2


@pytest.mark.parametrize("mode", MODES)
def test_read_timeout_retry_per_call(server: ScriptedServer, mode: str) -> None:
    server.add(delayed(Reply.json(CHAT_OK)), Reply.json(CHAT_OK))
    result = run(
        mode,
        server.url,
        lambda c: c.with_options(retry_read_timeouts=True, timeout=0.3).chat(REQUEST, "m"),
    )
    assert result.message.content == "ok"
    assert len(server.received) == 2


# Over requests and sync httpx the deadline is checked as the body's pieces arrive.
@pytest.mark.parametrize("mode", MODES)
def test_trickling_answer_is_cut_at_total(server: ScriptedServer, mode: str) -> None:
    """A non-streaming answer whose bytes keep coming is still bounded by ``total``."""
    body = b'{"choices":[]}' + b" " * 100
    server.default = Reply(
        200,
        {"Content-Type": "application/json"},
        [body[i : i + 1] for i in range(len(body))],
        pause=0.05,  # each gap is short, the whole answer takes > 5 s
    )
    timeout = Timeout(total=0.5, connect=1.0, idle=HANG)
    with pytest.raises(APITimeoutError):
        run(mode, server.url, chat, total_retries=0, request_timeout_seconds=timeout)
    assert len(server.received) == 1


# ------------------------------------------------------------------ stream idle


@pytest.mark.parametrize("mode", MODES)
def test_stream_idle_timeout(server: ScriptedServer, mode: str) -> None:
    events = Reply.sse(sse_events("Hel", "lo", " there")).chunks[0].split(b"\n\n")
    first, rest = b"\n\n".join(events[:3]) + b"\n\n", b"\n\n".join(events[3:])
    server.default = Reply(200, {"Content-Type": "text/event-stream"}, [first, rest], pause=HANG)
    seen: list[Any] = []
    with pytest.raises(APITimeoutError) as info:
        run(mode, server.url, drain_into(seen), request_timeout_seconds=0.3)
    assert isinstance(info.value, TimeoutError)
    assert info.value.phase == "idle"
    # What arrived before the silence was delivered, and the stream was not re-sent.
    assert any(isinstance(item, ChatStreamChunk) and item.content for item in seen)
    assert len(server.received) == 1


@pytest.mark.parametrize("mode", MODES)
def test_stream_idle_timeout_before_first_byte(server: ScriptedServer, mode: str) -> None:
    server.default = delayed(Reply.sse(sse_events("never")))
    seen: list[Any] = []
    with pytest.raises(APITimeoutError):
        run(mode, server.url, drain_into(seen), request_timeout_seconds=0.3)
    assert seen == []
    assert len(server.received) == 1


@pytest.mark.parametrize("mode", MODES)
def test_healthy_stream_outlives_total(server: ScriptedServer, mode: str) -> None:
    """Only silence cuts a stream: 6 events 0.1 s apart pass a 0.2 s ``total``."""
    words = ["a", "b", "c", "d", "e"]
    server.default = Reply.sse(sse_events(*words), pieces=8, pause=0.1)
    seen: list[Any] = []
    timeout = Timeout(total=0.2, connect=1.0, idle=5.0)
    run(mode, server.url, drain_into(seen), request_timeout_seconds=timeout)
    text = "".join(i.content for i in seen if isinstance(i, ChatStreamChunk))
    assert text == "abcde"


@pytest.mark.parametrize("mode", MODES)
def test_answers_read_in_time_keep_their_connection(server: ScriptedServer, mode: str) -> None:
    """Reading a body under the total deadline still hands the connection back to the pool."""
    server.add(
        Reply.json({"error": "busy"}, 503, {"Retry-After": "0"}),
        Reply.json(CHAT_OK),
        Reply.json(CHAT_OK),
    )

    def twice(c: Any) -> Any:
        first = c.chat(REQUEST, "m")
        if inspect.isawaitable(first):

            async def go() -> Any:
                await first
                return await c.chat(REQUEST, "m")

            return go()
        return c.chat(REQUEST, "m")

    assert run(mode, server.url, twice, request_timeout_seconds=5).message.content == "ok"
    assert len(server.received) == 3
    assert server.connections == 1
