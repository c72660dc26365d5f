"""Streams under faults on real loopback sockets, for ``Client`` and ``AsyncClient``.

Guarantees (docs/reliability.md):

* A stream parses the same however the bytes are split (at every byte, inside multi-byte
  UTF-8), with LF, CRLF or CR line endings, comments, ``event:``/``id:``/``retry:`` lines,
  multi-line data, and a 1 MiB event.
* A stream never ends silently: a body cut mid-event or mid-chunk, a body that ends without
  its finish chunk / ``[DONE]`` / completion summary, an error event in a 200 stream, an event
  above ``max_event_size``: each raises a typed ``StreamError`` (``IncompleteStreamError``
  keeps what arrived in ``partial``).
* An overload error event before the first token is retried within the retry budget and the
  caller sees one clean stream; after the first token it raises ``StreamEventError``.
* Breaking out of a stream, closing it, leaving its ``with`` block or cancelling its task
  releases the connection (the server sees it closed), without a ``ResourceWarning``; a stream
  read to its end gives its connection back to the pool (the server sees it reused).
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import socket
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from aleph_alpha_client import AsyncClient, Client
from aleph_alpha_client._exceptions import (
    APIResponseValidationError,
    EventTooLargeError,
    IncompleteStreamError,
    StreamError,
    StreamEventError,
)
from aleph_alpha_client._streaming import (
    AsyncStream,
    ChatStreamState,
    StreamProcessor,
)
from aleph_alpha_client.chat import (
    ChatRequest,
    ChatResponse,
    ChatStreamChunk,
    FinishReason,
    Message,
    Role,
    StreamOptions,
    Usage,
)
from aleph_alpha_client.completion import CompletionRequest, CompletionSummary, StreamChunk
from aleph_alpha_client.prompt import Prompt
from conftest import TOKEN, TRANSPORT_MODES, run_client
from scripted_server import Reply, ScriptedServer

MODES = TRANSPORT_MODES
REQUEST = ChatRequest(model="m", messages=[Message(role=Role.User, content="hi")])
USAGE_REQUEST = ChatRequest(
    model="m",
    messages=[Message(role=Role.User, content="hi")],
    stream_options=StreamOptions(include_usage=True),
)
COMPLETION_REQUEST = CompletionRequest(prompt=Prompt.from_text("hi"), maximum_tokens=5)
USAGE = {"completion_tokens": 3, "prompt_tokens": 2, "total_tokens": 5}


def run(mode: str, host: str, call: Callable[[Any], Any], **kwargs: Any) -> Any:
    """Run ``call`` on a client of ``mode`` (see conftest.run_client)."""
    kwargs.setdefault("total_retries", 3)
    return run_client(mode, host, call, **kwargs)


def streamed(seen: list[Any], request: Any = REQUEST, method: str = "chat") -> Callable[[Any], Any]:
    """A call that streams and appends each item to ``seen``; returns the final response."""

    def call(c: Any) -> Any:
        if method == "chat":
            stream = c.chat_with_streaming(request, "m")
        else:
            stream = c.complete_with_streaming(request, "m")
        if isinstance(stream, AsyncStream):

            async def go() -> Any:
                async for item in stream:
                    seen.append(item)
                return await stream.get_final_response()

            return go()
        for item in stream:
            seen.append(item)
        return stream.get_final_response()

    return call


def role(content: str = "") -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"role": "assistant", "content": content}}]}


def delta(text: str) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": text}}]}


def finish(reason: str = "stop") -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]}


def usage_chunk() -> dict[str, Any]:
    return {"choices": [], "usage": USAGE}


def data_line(event: Any, nl: str = "\n") -> bytes:
    return f"data: {json.dumps(event, ensure_ascii=False)}{nl}{nl}".encode()


def sse_reply(body: bytes, pieces: list[bytes] | None = None, **kwargs: Any) -> Reply:
    return Reply(
        200, {"Content-Type": "text/event-stream"}, pieces or [body], chunked=True, **kwargs
    )


def rich_body(nl: str) -> bytes:
    """A chat stream using every SSE feature, with multi-byte UTF-8 and line ending ``nl``."""
    parts = [
        f": this is a comment{nl}",
        f":{nl}",
        nl,  # a blank line before any data: dispatches nothing
        f"event: message{nl}id: 1{nl}retry: 1000{nl}",
        f"data: {json.dumps(role(), ensure_ascii=False)}{nl}{nl}",
        f"data: {json.dumps(delta('Grüße, '), ensure_ascii=False)}{nl}{nl}",
        # no space after the colon
        f"data:{json.dumps(delta('🌍 日本語'), ensure_ascii=False)}{nl}{nl}",
        # one JSON object over two data lines (joined with a line feed)
        f'data: {{"choices":[{{"index":0,"delta":{{"content":"!"}}}}],{nl}data: "x":1}}{nl}{nl}',
        f"id: 2{nl}: ping{nl}",
        f"data: {json.dumps(finish())}{nl}{nl}",
        f"data: {json.dumps(usage_chunk())}{nl}{nl}",
        f"data: [DONE]{nl}{nl}",
    ]
    return "".join(parts).encode("utf-8")


RICH_TEXT = "Grüße, 🌍 日本語!"
RICH_ITEMS = [
    ChatStreamChunk("", Role.Assistant, None),
    ChatStreamChunk("Grüße, ", None, None),
    ChatStreamChunk("🌍 日本語", None, None),
    ChatStreamChunk("!", None, None),
    FinishReason.Stop,
    Usage(3, 2, 5),
]


def process(body_pieces: list[bytes], state: Any = None) -> list[Any]:
    state = state if state is not None else ChatStreamState(include_usage=True)
    processor = StreamProcessor(state, 16 * 1024 * 1024)
    items: list[Any] = []
    for piece in body_pieces:
        items.extend(processor.feed(piece))
    items.extend(processor.finish())
    return items


# ------------------------------------------------------------------ parsing, pure


@pytest.mark.parametrize("nl", ["\n", "\r\n", "\r"])
def test_processor_split_at_every_offset(nl: str) -> None:
    body = rich_body(nl)
    assert process([body]) == RICH_ITEMS
    for cut in range(len(body) + 1):
        assert process([body[:cut], body[cut:]]) == RICH_ITEMS, cut
    # and one byte at a time (every multi-byte character cut in every place)
    assert process([body[i : i + 1] for i in range(len(body))]) == RICH_ITEMS


def test_processor_three_way_splits_inside_utf8() -> None:
    body = rich_body("\r\n")
    start = body.index("🌍".encode())
    for a in range(start - 2, start + 5):
        for b in range(a, start + 12):
            assert process([body[:a], body[a:b], body[b:]]) == RICH_ITEMS


# ------------------------------------------------------------------ parsing, loopback


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("nl", ["\n", "\r\n", "\r"])
def test_stream_one_byte_per_chunk(server: ScriptedServer, mode: str, nl: str) -> None:
    body = rich_body(nl)
    # One HTTP chunk per byte; with CRLF also a tiny pause so most bytes arrive alone.
    server.default = sse_reply(
        body, [body[i : i + 1] for i in range(len(body))], pause=0.0005 if nl == "\r\n" else 0.0
    )
    seen: list[Any] = []
    final = run(mode, server.url, streamed(seen, USAGE_REQUEST))
    assert seen == RICH_ITEMS
    assert isinstance(final, ChatResponse)
    assert final.message.content == RICH_TEXT
    assert final.finish_reason == FinishReason.Stop
    assert final.usage == Usage(3, 2, 5)


@pytest.mark.parametrize("mode", MODES)
def test_one_mib_event(server: ScriptedServer, mode: str) -> None:
    big = "ü" * (512 * 1024)  # 1 MiB of UTF-8 in one event
    body = data_line(role()) + data_line(delta(big)) + data_line(finish()) + b"data: [DONE]\n\n"
    pieces = [body[i : i + 65521] for i in range(0, len(body), 65521)]  # odd size: cuts "ü"
    server.default = sse_reply(body, pieces)
    seen: list[Any] = []
    final = run(mode, server.url, streamed(seen))
    assert final.message.content == big
    assert [i for i in seen if isinstance(i, ChatStreamChunk) and i.content] == [
        ChatStreamChunk(big, None, None)
    ]


@pytest.mark.parametrize("mode", MODES)
def test_event_above_limit_raises(server: ScriptedServer, mode: str) -> None:
    body = data_line(role()) + data_line(delta("x" * (1024 * 1024))) + data_line(finish())
    server.default = sse_reply(body, [body[i : i + 4096] for i in range(0, len(body), 4096)])
    with pytest.raises(EventTooLargeError):
        run(mode, server.url, streamed([]), max_event_size=64 * 1024)


# ------------------------------------------------------------------ nothing ends silently


def _assert_partial(err: IncompleteStreamError, text: str) -> None:
    assert isinstance(err.partial, ChatResponse)
    assert err.partial.message.content == text


@pytest.mark.parametrize("mode", MODES)
def test_cut_mid_chunk_raises_incomplete(server: ScriptedServer, mode: str) -> None:
    """The socket closes inside the chunked framing, in the middle of an event."""
    body = data_line(role()) + data_line(delta("Hello")) + data_line(delta(" world"))
    body += data_line(finish()) + b"data: [DONE]\n\n"
    cut = body.index(b" world") + 3
    server.default = sse_reply(body, [body[:cut], body[cut:]], cut_after=1)
    seen: list[Any] = []
    with pytest.raises(IncompleteStreamError) as info:
        run(mode, server.url, streamed(seen))
    assert ChatStreamChunk("Hello", None, None) in seen
    if info.value.partial is not None:
        assert info.value.partial.message.content.startswith("Hello")
    assert len(server.received) == 1  # a started stream is never re-sent


@pytest.mark.parametrize("mode", MODES)
def test_cut_between_events_raises_incomplete(server: ScriptedServer, mode: str) -> None:
    body = data_line(role()) + data_line(delta("Hello"))
    server.default = sse_reply(body, [body, data_line(finish())], cut_after=1)
    with pytest.raises(IncompleteStreamError) as info:
        run(mode, server.url, streamed([]))
    # Either the transport or the parser noticed; what arrived is never lost when the parser
    # decides (the transport's error has no partial answer to give).
    if info.value.partial is not None:
        _assert_partial(info.value, "Hello")


@pytest.mark.parametrize("mode", MODES)
def test_content_length_body_cut_raises_incomplete(server: ScriptedServer, mode: str) -> None:
    body = data_line(role()) + data_line(delta("Hello")) + data_line(finish())
    cut = body.index(b"Hello") + 10
    server.default = Reply(
        200,
        {"Content-Type": "text/event-stream"},
        [body[:cut], body[cut:]],
        cut_after=1,  # Content-Length announces the whole body; part of it comes
    )
    seen: list[Any] = []
    with pytest.raises(IncompleteStreamError):
        run(mode, server.url, streamed(seen), total_retries=0)
    # urllib3 and aiohttp may raise before handing over the bytes that came with the close
    # (Content-Length framing only; the API streams chunked): ``seen`` may lack "Hello".
    assert seen in ([], CLEAN_ITEMS[:2])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("how", ["reset-chunked", "reset-content-length", "clean-end", "empty"])
def test_stream_failing_before_first_token_is_retried(
    server: ScriptedServer, mode: str, how: str
) -> None:
    """Nothing was shown to the caller yet: the stream is sent again, seen once."""
    first = data_line(role())
    broken = {
        "reset-chunked": sse_reply(first + CLEAN, [first, CLEAN], cut_after=1),
        "reset-content-length": Reply(
            200, {"Content-Type": "text/event-stream"}, [first, CLEAN], cut_after=1
        ),
        "clean-end": sse_reply(first),
        "empty": sse_reply(b""),
    }[how]
    server.add(broken, sse_reply(CLEAN))
    seen: list[Any] = []
    final = run(mode, server.url, streamed(seen))
    assert seen == CLEAN_ITEMS
    assert final.message.content == "Hello"
    assert len(server.received) == 2


@pytest.mark.parametrize("mode", MODES)
def test_clean_end_without_finish_or_done(server: ScriptedServer, mode: str) -> None:
    body = data_line(role()) + data_line(delta("Hel")) + data_line(delta("lo"))
    server.default = sse_reply(body)
    seen: list[Any] = []
    with pytest.raises(IncompleteStreamError) as info:
        run(mode, server.url, streamed(seen))
    _assert_partial(info.value, "Hello")
    assert "[DONE]" in str(info.value)
    assert len(server.received) == 1


@pytest.mark.parametrize("mode", MODES)
def test_clean_end_in_the_middle_of_an_event(server: ScriptedServer, mode: str) -> None:
    body = data_line(role()) + data_line(delta("Hel")) + b'data: {"choices":[{"ind'
    server.default = sse_reply(body)
    with pytest.raises(IncompleteStreamError):
        run(mode, server.url, streamed([]))


@pytest.mark.parametrize("mode", MODES)
def test_usage_asked_but_missing(server: ScriptedServer, mode: str) -> None:
    body = data_line(role()) + data_line(delta("Hi")) + data_line(finish())
    server.default = sse_reply(body)
    with pytest.raises(IncompleteStreamError) as info:
        run(mode, server.url, streamed([], USAGE_REQUEST))
    _assert_partial(info.value, "Hi")


@pytest.mark.parametrize("mode", MODES)
def test_empty_stream_every_time(server: ScriptedServer, mode: str) -> None:
    server.default = sse_reply(b"")
    with pytest.raises(IncompleteStreamError):
        run(mode, server.url, streamed([]), total_retries=1)
    assert len(server.received) == 2  # retried once (nothing was shown), then raised


@pytest.mark.parametrize("mode", MODES)
def test_completion_stream_without_summary(server: ScriptedServer, mode: str) -> None:
    chunk = {"type": "stream_chunk", "index": 0, "completion": "abc"}
    summary = {"type": "stream_summary", "index": 0, "model_version": "1", "finish_reason": "x"}
    server.default = sse_reply(data_line(chunk) + data_line(summary))
    seen: list[Any] = []
    with pytest.raises(IncompleteStreamError) as info:
        run(mode, server.url, streamed(seen, COMPLETION_REQUEST, "complete"))
    assert isinstance(seen[0], StreamChunk)
    assert info.value.partial.completions[0].completion == "abc"


@pytest.mark.parametrize("mode", MODES)
def test_completion_stream_complete(server: ScriptedServer, mode: str) -> None:
    events = [
        {"type": "stream_chunk", "index": 0, "completion": "ab"},
        {"type": "stream_chunk", "index": 0, "completion": "c"},
        {"type": "stream_summary", "index": 0, "model_version": "1", "finish_reason": "maximum"},
        {
            "type": "completion_summary",
            "num_tokens_prompt_total": 1,
            "num_tokens_generated": 3,
        },
    ]
    server.default = sse_reply(b"".join(data_line(e) for e in events))
    seen: list[Any] = []
    final = run(mode, server.url, streamed(seen, COMPLETION_REQUEST, "complete"))
    assert isinstance(seen[-1], CompletionSummary)
    assert final.completions[0].completion == "abc"
    assert final.num_tokens_generated == 3


@pytest.mark.parametrize("mode", MODES)
def test_error_event_after_first_token(server: ScriptedServer, mode: str) -> None:
    error = {"error": "overloaded", "code": "OVERLOADED"}
    server.default = sse_reply(data_line(role()) + data_line(delta("Hi")) + data_line(error))
    seen: list[Any] = []
    with pytest.raises(StreamEventError) as info:
        run(mode, server.url, streamed(seen))
    assert info.value.code == "OVERLOADED"
    assert "overloaded" in str(info.value)
    assert seen == [ChatStreamChunk("", Role.Assistant, None), ChatStreamChunk("Hi", None, None)]
    assert len(server.received) == 1  # the caller saw content: no transparent retry


@pytest.mark.parametrize("mode", MODES)
def test_error_event_type_in_stream(server: ScriptedServer, mode: str) -> None:
    body = data_line(role()) + data_line(delta("Hi"))
    body += b'event: error\ndata: {"message":"model crashed","code":"INTERNAL"}\n\n'
    server.default = sse_reply(body)
    with pytest.raises(StreamEventError) as info:
        run(mode, server.url, streamed([]))
    assert info.value.code == "INTERNAL"
    assert info.value.message == "model crashed"


@pytest.mark.parametrize("mode", MODES)
def test_event_that_is_not_json(server: ScriptedServer, mode: str) -> None:
    server.default = sse_reply(data_line(role()) + b"data: {not json\n\n")
    with pytest.raises(StreamError) as info:
        run(mode, server.url, streamed([]))
    assert "{not json" in str(info.value)


@pytest.mark.parametrize("mode", MODES)
def test_event_of_the_wrong_shape(server: ScriptedServer, mode: str) -> None:
    server.default = sse_reply(data_line(role()) + data_line({"choices": "nope"}))
    with pytest.raises((StreamError, APIResponseValidationError)):
        run(mode, server.url, streamed([]))


# ------------------------------------------------------------------ in-stream overload


OVERLOADED = {"error": "overloaded", "code": "OVERLOADED"}
CLEAN = data_line(role()) + data_line(delta("Hello")) + data_line(finish()) + b"data: [DONE]\n\n"
CLEAN_ITEMS = [
    ChatStreamChunk("", Role.Assistant, None),
    ChatStreamChunk("Hello", None, None),
    FinishReason.Stop,
]


@pytest.mark.parametrize("mode", MODES)
def test_overload_before_first_token_is_retried(server: ScriptedServer, mode: str) -> None:
    server.add(
        sse_reply(data_line(role()) + data_line(OVERLOADED)),
        # also as an SSE event of type "error"
        sse_reply(data_line(role()) + b'event: error\ndata: {"message":"busy, overloaded"}\n\n'),
        sse_reply(CLEAN),
    )
    seen: list[Any] = []
    final = run(mode, server.url, streamed(seen))
    assert seen == CLEAN_ITEMS  # one role chunk: nothing seen twice
    assert final.message.content == "Hello"
    assert len(server.received) == 3
    assert len({r.body for r in server.received}) == 1


@pytest.mark.parametrize("mode", MODES)
def test_overload_as_json_answer_to_stream_is_retried(server: ScriptedServer, mode: str) -> None:
    server.add(Reply.json(OVERLOADED), sse_reply(CLEAN))
    seen: list[Any] = []
    run(mode, server.url, streamed(seen))
    assert seen == CLEAN_ITEMS
    assert len(server.received) == 2


@pytest.mark.parametrize("mode", MODES)
def test_overload_every_time_raises_after_budget(server: ScriptedServer, mode: str) -> None:
    server.default = sse_reply(data_line(role()) + data_line(OVERLOADED))
    seen: list[Any] = []
    with pytest.raises(StreamEventError) as info:
        run(mode, server.url, streamed(seen), total_retries=2)
    assert info.value.code == "OVERLOADED"
    assert seen == []  # the held-back role chunk never leaked out
    assert len(server.received) == 3


@pytest.mark.parametrize("mode", MODES)
def test_non_overload_error_before_first_token_not_retried(
    server: ScriptedServer, mode: str
) -> None:
    server.default = sse_reply(data_line(role()) + data_line({"error": "bad", "code": "INVALID"}))
    with pytest.raises(StreamEventError) as info:
        run(mode, server.url, streamed([]))
    assert info.value.code == "INVALID"
    assert len(server.received) == 1


@pytest.mark.parametrize("mode", MODES)
def test_stream_retry_budget_shared_with_status_retries(server: ScriptedServer, mode: str) -> None:
    """A 503 and an overload event both spend the same budget of ``total_retries``."""
    server.add(
        Reply.json({"error": "busy"}, 503, {"Retry-After": "0"}),
        sse_reply(data_line(role()) + data_line(OVERLOADED)),
        sse_reply(CLEAN),
    )
    with pytest.raises((StreamEventError, APIResponseValidationError, StreamError)):
        run(mode, server.url, streamed([]), total_retries=1)
    assert len(server.received) == 2


# ------------------------------------------------------------------ releasing connections


class HoldingServer:
    """Sends a stream's first events, then holds the connection open until the client
    closes it; ``closed`` is set when the server sees the connection closed."""

    def __init__(self, first: bytes) -> None:
        self.first = first
        self.closed = threading.Event()
        self.requests = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self._sock.accept()
        except OSError:
            return
        self._conns.append(conn)
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            while len(body) < length:
                body += conn.recv(65536)
            self.requests += 1
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
                + f"{len(self.first):x}\r\n".encode()
                + self.first
                + b"\r\n"
            )
            try:
                while conn.recv(65536):
                    pass
            except OSError:
                pass
            self.closed.set()

    def close(self) -> None:
        self._sock.close()
        for conn in self._conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)


@pytest.fixture
def holding() -> Iterator[HoldingServer]:
    srv = HoldingServer(data_line(role()) + data_line(delta("Hi")) + data_line(delta(" there")))
    try:
        yield srv
    finally:
        srv.close()


class NoResourceWarnings:
    """Records warnings; fails if a ResourceWarning (or an unraisable one) was emitted."""

    def __enter__(self) -> NoResourceWarnings:
        self._cm = warnings.catch_warnings(record=True)
        self.caught = self._cm.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc: object) -> None:
        gc.collect()
        self._cm.__exit__(*exc)
        bad = [w for w in self.caught if issubclass(w.category, ResourceWarning)]
        assert not bad, [str(w.message) for w in bad]


def test_sync_break_releases_connection(holding: HoldingServer) -> None:
    with NoResourceWarnings(), Client(TOKEN, host=holding.url) as c:
        for item in c.chat_with_streaming(REQUEST, "m"):
            if isinstance(item, ChatStreamChunk) and item.content:
                break
        gc.collect()
        assert holding.closed.wait(5), "the server still holds the connection"
    assert holding.requests == 1


def test_sync_with_block_releases_connection(holding: HoldingServer) -> None:
    with NoResourceWarnings(), Client(TOKEN, host=holding.url) as c:
        with c.chat_with_streaming(REQUEST, "m") as stream:
            first = next(iter(stream))
            assert first == ChatStreamChunk("", Role.Assistant, None)
            kept = stream  # the stream object outlives the block: only __exit__ may close
        assert holding.closed.wait(5)
        assert kept is stream


def test_sync_close_releases_connection(holding: HoldingServer) -> None:
    with NoResourceWarnings(), Client(TOKEN, host=holding.url) as c:
        stream = c.chat_with_streaming(REQUEST, "m")
        next(stream)
        stream.close()
        assert holding.closed.wait(5)
        with pytest.raises(StopIteration):
            next(stream)


def test_sync_dropped_stream_releases_connection(holding: HoldingServer) -> None:
    with NoResourceWarnings(), Client(TOKEN, host=holding.url) as c:
        stream = c.chat_with_streaming(REQUEST, "m")
        next(stream)
        del stream
        gc.collect()
        assert holding.closed.wait(5)


async def test_async_break_and_aclose_releases_connection(holding: HoldingServer) -> None:
    with NoResourceWarnings():
        async with AsyncClient(TOKEN, host=holding.url) as c:
            stream = c.chat_with_streaming(REQUEST, "m")
            async for item in stream:
                if isinstance(item, ChatStreamChunk) and item.content:
                    break
            await stream.aclose()
            assert await asyncio.to_thread(holding.closed.wait, 5)


async def test_async_with_block_releases_connection(holding: HoldingServer) -> None:
    with NoResourceWarnings():
        async with AsyncClient(TOKEN, host=holding.url) as c:
            async with c.chat_with_streaming(REQUEST, "m") as stream:
                async for _ in stream:
                    break
            assert await asyncio.to_thread(holding.closed.wait, 5)


async def test_async_break_without_aclose_releases_connection(holding: HoldingServer) -> None:
    with NoResourceWarnings():
        async with AsyncClient(TOKEN, host=holding.url) as c:
            async for item in c.chat_with_streaming(REQUEST, "m"):
                if isinstance(item, ChatStreamChunk) and item.content:
                    break
            gc.collect()
            assert await asyncio.to_thread(holding.closed.wait, 5)


async def test_async_cancel_releases_connection(holding: HoldingServer) -> None:
    with NoResourceWarnings():
        async with AsyncClient(TOKEN, host=holding.url) as c:
            got_one = asyncio.Event()
            seen: list[Any] = []

            async def consume() -> None:
                async for item in c.chat_with_streaming(REQUEST, "m"):
                    seen.append(item)
                    if isinstance(item, ChatStreamChunk) and item.content:
                        got_one.set()

            task = asyncio.create_task(consume())
            await got_one.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await asyncio.to_thread(holding.closed.wait, 5)
            assert ChatStreamChunk("Hi", None, None) in seen


@pytest.mark.parametrize("mode", MODES)
def test_stream_read_to_the_end_reuses_connection(server: ScriptedServer, mode: str) -> None:
    server.default = sse_reply(CLEAN)

    def twice(c: Any) -> Any:
        first = streamed([])(c)
        if inspect.isawaitable(first):

            async def go() -> Any:
                await first
                return await streamed([])(c)

            return go()
        return streamed([])(c)

    with NoResourceWarnings():
        final = run(mode, server.url, twice)
    assert final.message.content == "Hello"
    assert len(server.received) == 2
    assert server.connections == 1


@pytest.mark.parametrize("mode", MODES)
def test_failed_stream_does_not_leak(server: ScriptedServer, mode: str) -> None:
    """A stream that raised mid-body closes its connection; the next call still works."""
    server.add(
        sse_reply(data_line(role()) + data_line(delta("Hi")) + data_line({"error": "x"})),
        sse_reply(CLEAN),
    )

    def fail_then_succeed(c: Any) -> Any:
        seen: list[Any] = []
        if isinstance(c, AsyncClient):

            async def go() -> Any:
                with pytest.raises(StreamEventError):
                    await streamed(seen)(c)
                return await streamed([])(c)

            return go()
        with pytest.raises(StreamEventError):
            streamed(seen)(c)
        return streamed([])(c)

    with NoResourceWarnings():
        final = run(mode, server.url, fail_then_succeed)
    assert final.message.content == "Hello"
