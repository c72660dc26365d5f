"""Typed streams: Stream[Item, Final], endpoint rows that know their accumulator, batches."""

from __future__ import annotations

import json
import typing
from typing import Any

import pytest

from aleph_alpha_client import AsyncClient, Client
from aleph_alpha_client import _endpoints as ep
from aleph_alpha_client._exceptions import StreamEventError
from aleph_alpha_client._streaming import (
    AsyncStream,
    Batch,
    ChatStreamState,
    CompletionStreamState,
    Stream,
    StreamProcessor,
)
from aleph_alpha_client.chat import (
    ChatRequest,
    ChatResponse,
    ChatStreamChunk,
    FinishReason,
    Message,
    ReasoningChunk,
    Role,
    StreamOptions,
    ToolCall,
    Usage,
)
from aleph_alpha_client.completion import (
    CompletionRequest,
    CompletionResponse,
    CompletionSummary,
    StreamChunk,
    StreamSummary,
)
from aleph_alpha_client.emulator import Emulator
from aleph_alpha_client.prompt import Prompt
from conftest import run_client

MODEL = "llama-3.1-8b-instruct"
CHAT_ITEM = typing.Union[ChatStreamChunk, ReasoningChunk, ToolCall, FinishReason, Usage]
COMPLETION_ITEM = typing.Union[StreamChunk, StreamSummary, CompletionSummary]


@pytest.mark.parametrize(
    ("client", "stream"), [(Client, Stream), (AsyncClient, AsyncStream)], ids=["sync", "async"]
)
def test_stream_methods_name_their_item_and_final_types(client: type, stream: type) -> None:
    chat = typing.get_type_hints(client.chat_with_streaming)["return"]
    assert typing.get_origin(chat) is stream
    assert typing.get_args(chat) == (CHAT_ITEM, ChatResponse)
    complete = typing.get_type_hints(client.complete_with_streaming)["return"]
    assert typing.get_origin(complete) is stream
    assert typing.get_args(complete) == (COMPLETION_ITEM, CompletionResponse)


def test_streaming_rows_know_their_accumulator() -> None:
    assert isinstance(ep.CHAT, ep.StreamingEndpoint)
    assert isinstance(ep.COMPLETE, ep.StreamingEndpoint)
    plain = ChatRequest(MODEL, [Message(Role.User, "hi")])
    with_usage = ChatRequest(
        MODEL, [Message(Role.User, "hi")], stream_options=StreamOptions(include_usage=True)
    )
    state = ep.CHAT.accumulator(plain)
    assert isinstance(state, ChatStreamState) and not state.include_usage
    usage_state = ep.CHAT.accumulator(with_usage)
    assert isinstance(usage_state, ChatStreamState) and usage_state.include_usage
    assert isinstance(
        ep.COMPLETE.accumulator(CompletionRequest(Prompt.from_text("x"))), CompletionStreamState
    )
    assert ep.CHAT.accumulator(plain) is not state  # a fresh state per attempt


def _event(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def test_a_batch_carries_the_items_before_an_error_and_the_error() -> None:
    processor = StreamProcessor(ChatStreamState(include_usage=False), 1 << 20)
    piece = _event({"choices": [{"delta": {"role": "assistant", "content": "Hel"}}]}) + _event(
        {"error": {"message": "overloaded"}, "code": "busy"}
    )
    batch = processor.feed(piece)
    assert isinstance(batch, Batch)
    assert batch.items == [ChatStreamChunk("Hel", Role.Assistant, None)]
    assert isinstance(batch.error, StreamEventError)
    seen: list[Any] = []
    with pytest.raises(StreamEventError, match="overloaded"):
        seen.extend(batch)  # iterating hands out the items, then raises
    assert seen == batch.items


def test_a_batch_without_error_is_just_its_items() -> None:
    processor = StreamProcessor(ChatStreamState(include_usage=False), 1 << 20)
    batch = processor.feed(_event({"choices": [{"delta": {"role": "assistant", "content": "a"}}]}))
    assert batch.error is None and len(batch) == 1
    assert processor.feed(b"").items == []


class _CountingState(ChatStreamState):
    """A new accumulator plugged into a row: the chat items, and how many chunks it saw."""

    fed = 0

    def feed(self, chunk: Any) -> list[Any]:
        _CountingState.fed += 1
        return super().feed(chunk)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_new_streaming_row_streams_through_the_same_pipeline(
    aleph_alpha_emulator: Emulator, mode: str
) -> None:
    row = ep.StreamingEndpoint(
        ep.CHAT.path, ChatRequest, ChatResponse.from_json, lambda _r: _CountingState(False)
    )
    _CountingState.fed = 0
    request = ChatRequest(MODEL, [Message(Role.User, "Say something")], maximum_tokens=8)

    def go(c: Any) -> Any:
        stream = c._stream(row, request, MODEL)
        if mode == "sync":
            return list(stream), stream.get_final_response()

        async def collect() -> Any:
            items = [item async for item in stream]
            return items, await stream.get_final_response()

        return collect()

    items, final = run_client(mode, aleph_alpha_emulator.url, go)
    assert isinstance(final, ChatResponse)
    text = "".join(i.content for i in items if isinstance(i, ChatStreamChunk))
    assert text == final.message.content and text
    assert _CountingState.fed >= 2
