"""Chat answers beyond 11.5.1: choices, system_fingerprint, logprobs, reasoning, n > 1 streams.

Both clients against a scripted server (exact wire answers) and the pure stream state.
"""

from __future__ import annotations

from typing import Any

import pytest

from aleph_alpha_client import (
    ChatRequest,
    ChatStreamChunk,
    FinishReason,
    IncompleteStreamError,
    Message,
    ReasoningChunk,
    Role,
    TokenLogprob,
    TopLogprob,
    Usage,
)
from aleph_alpha_client._streaming import ChatStreamState
from aleph_alpha_client.chat import split_think
from conftest import run_client
from scripted_server import Reply, ScriptedServer

MODEL = "qwen3-32b"
MODES = ["sync", "async"]
REQUEST = ChatRequest(MODEL, [Message(Role.User, "Hi")])

LOGPROBS = {
    "content": [
        {
            "token": "Hel",
            "logprob": -0.25,
            "bytes": [72, 101, 108],
            "top_logprobs": [
                {"token": "Hel", "logprob": -0.25, "bytes": [72, 101, 108]},
                {"token": "Hi", "logprob": -1.5, "bytes": [72, 105]},
            ],
        },
        {"token": "lo", "logprob": -0.01, "bytes": [108, 111], "top_logprobs": []},
    ]
}
HEL = TokenLogprob(
    "Hel",
    -0.25,
    [72, 101, 108],
    [TopLogprob("Hel", -0.25, [72, 101, 108]), TopLogprob("Hi", -1.5, [72, 105])],
)
LO = TokenLogprob("lo", -0.01, [108, 111], [])


def _answer(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "id": "c",
        "choices": choices,
        "created": 1,
        "model": MODEL,
        "object": "chat.completion",
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
        **extra,
    }


def _choice(index: int, message: dict[str, Any], finish: str = "stop", logprobs: Any = None):
    return {"finish_reason": finish, "index": index, "message": message, "logprobs": logprobs}


def _chunk(delta: dict[str, Any] | None, index: int = 0, finish: str | None = None, **kw: Any):
    choices = [] if delta is None else [{"index": index, "delta": delta, "finish_reason": finish}]
    if kw.get("logprobs") is not None and choices:
        choices[0]["logprobs"] = kw.pop("logprobs")
    return {"id": "s", "created": 2, "model": MODEL, "choices": choices, **kw}


def _chat(server: ScriptedServer, mode: str, answer: dict[str, Any]) -> Any:
    server.add(Reply.json(answer))
    return run_client(mode, server.url, lambda c: c.chat(REQUEST, MODEL))


def _stream(server: ScriptedServer, mode: str, events: list[Any], **kw: Any) -> Any:
    server.add(Reply.sse(events, **kw))

    def call(c: Any) -> Any:
        stream = c.chat_with_streaming(REQUEST, MODEL)
        if mode == "sync":
            return list(stream), stream.get_final_response()

        async def go() -> Any:
            items = [item async for item in stream]
            return items, await stream.get_final_response()

        return go()

    return run_client(mode, server.url, call)


# --------------------------------------------------------------------------- non-streamed


@pytest.mark.parametrize("mode", MODES)
def test_every_choice_is_kept_and_message_is_the_first(server: ScriptedServer, mode: str) -> None:
    answer = _answer(
        [
            _choice(1, {"role": "assistant", "content": "two"}, "length"),
            _choice(0, {"role": "assistant", "content": "one"}),
        ],
        system_fingerprint="fp-7",
    )
    response = _chat(server, mode, answer)
    assert [(c.index, c.message.content, c.finish_reason) for c in response.choices] == [
        (0, "one", FinishReason.Stop),
        (1, "two", FinishReason.Length),
    ]
    assert response.message.content == "one"
    assert response.finish_reason is FinishReason.Stop
    assert response.system_fingerprint == "fp-7"


@pytest.mark.parametrize("mode", MODES)
def test_logprobs_per_token(server: ScriptedServer, mode: str) -> None:
    answer = _answer([_choice(0, {"role": "assistant", "content": "Hello"}, logprobs=LOGPROBS)])
    response = _chat(server, mode, answer)
    assert response.logprobs == [HEL, LO]
    assert response.choices[0].logprobs == [HEL, LO]
    assert response.logprobs[0].top_logprobs[1].token == "Hi"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_field(server: ScriptedServer, mode: str, field: str) -> None:
    message = {"role": "assistant", "content": "42", field: "Let me think."}
    response = _chat(server, mode, _answer([_choice(0, message)]))
    assert response.message.reasoning_content == "Let me think."
    assert response.reasoning_content == "Let me think."
    assert response.content == "42"


@pytest.mark.parametrize("mode", MODES)
def test_leading_think_tag_is_split_off(server: ScriptedServer, mode: str) -> None:
    message = {"role": "assistant", "content": "\n<think>\nhmm, 6*7\n</think>\n\n42"}
    response = _chat(server, mode, _answer([_choice(0, message)]))
    assert response.message.reasoning_content == "hmm, 6*7"
    assert response.content == "42"


def test_reasoning_is_not_sent_back_in_the_history(server: ScriptedServer) -> None:
    message = {"role": "assistant", "content": "42", "reasoning_content": "secret thoughts"}
    first = _chat(server, "sync", _answer([_choice(0, message)]))
    follow_up = ChatRequest(MODEL, [Message(Role.User, "Hi"), first.message])
    server.add(Reply.json(_answer([_choice(0, {"role": "assistant", "content": "ok"})])))
    run_client("sync", server.url, lambda c: c.chat(follow_up, MODEL))
    assert server.received[-1].json()["messages"][1] == {"role": "assistant", "content": "42"}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("plain", (None, "plain")),
        ("<think>a</think>b", ("a", "b")),
        ("  <think>a</think>  b", ("a", "b")),
        ("<think>cut short", ("cut short", "")),
        ("<think>\n a \n</think>\n\n b ", ("a", "b ")),
        ("x <think>a</think>", (None, "x <think>a</think>")),
        ("</think>\n\nanswer", (None, "</think>\n\nanswer")),
    ],
)
def test_split_think(content: str, expected: tuple[Any, str]) -> None:
    assert split_think(content) == expected


# --------------------------------------------------------------------------- streamed


def _text_items(items: list[Any]) -> tuple[str, str]:
    reasoning = "".join(i.content for i in items if isinstance(i, ReasoningChunk))
    content = "".join(i.content for i in items if isinstance(i, ChatStreamChunk))
    return reasoning, content


@pytest.mark.parametrize("mode", MODES)
def test_reasoning_field_in_a_stream_is_its_own_item(server: ScriptedServer, mode: str) -> None:
    events = [
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"reasoning_content": "Think"}),
        _chunk({"reasoning": "ing."}),
        _chunk({"content": "42"}),
        _chunk({"content": ""}, finish="stop", system_fingerprint="fp-1"),
    ]
    items, final = _stream(server, mode, events)
    assert items == [
        ChatStreamChunk("", Role.Assistant, None),
        ReasoningChunk("Think"),
        ReasoningChunk("ing."),
        ChatStreamChunk("42", None, None),
        FinishReason.Stop,
    ]
    assert final.message.reasoning_content == "Thinking."
    assert final.content == "42"
    assert final.system_fingerprint == "fp-1"


@pytest.mark.parametrize("mode", MODES)
def test_think_tags_in_a_stream(server: ScriptedServer, mode: str) -> None:
    pieces = ["<thi", "nk>\nstep one", " and two</th", "ink>\n\n", "The answer", " is 42."]
    events = [
        _chunk({"role": "assistant", "content": ""}),
        *[_chunk({"content": p}) for p in pieces],
        _chunk({"content": ""}, finish="stop"),
    ]
    items, final = _stream(server, mode, events)
    assert _text_items(items) == ("step one and two", "The answer is 42.")
    assert not any("think>" in i.content for i in items if isinstance(i, ChatStreamChunk))
    assert final.message.reasoning_content == "step one and two"
    assert final.content == "The answer is 42."


THINK_TEXT = "  <think>\n a < b,\n </thin not yet \n</think>\n\nThe answer <think> stays."


@pytest.mark.parametrize("cut", range(1, len(THINK_TEXT)))
def test_think_tag_split_at_every_offset(cut: int) -> None:
    state = ChatStreamState(include_usage=False)
    items: list[Any] = []
    items += state.feed(_chunk({"role": "assistant", "content": ""}))
    items += state.feed(_chunk({"content": THINK_TEXT[:cut]}))
    items += state.feed(_chunk({"content": THINK_TEXT[cut:]}))
    items += state.feed(_chunk({"content": ""}, finish="stop"))
    expected = split_think(THINK_TEXT)
    assert expected == ("a < b,\n </thin not yet", "The answer <think> stays.")
    assert _text_items(items) == expected
    final = state.final_response()
    assert final.message.reasoning_content == expected[0]
    assert final.content == "The answer <think> stays."


def test_unclosed_think_at_the_end_is_reasoning() -> None:
    state = ChatStreamState(include_usage=False)
    items = state.feed(_chunk({"role": "assistant", "content": "<think>cut </thi"}))
    items += state.feed(_chunk({"content": ""}, finish="length"))
    assert _text_items(items) == ("cut </thi", "")


def test_text_that_only_looks_like_a_tag_start_is_content() -> None:
    state = ChatStreamState(include_usage=False)
    items = state.feed(_chunk({"role": "assistant", "content": "<th"}))
    assert items == []  # held: could still become <think>
    items += state.feed(_chunk({"content": "e end>"}))
    items += state.feed(_chunk({"content": ""}, finish="stop"))
    assert _text_items(items) == ("", "<the end>")


@pytest.mark.parametrize("mode", MODES)
def test_logprobs_in_stream_chunks(server: ScriptedServer, mode: str) -> None:
    first = {"content": [LOGPROBS["content"][0]]}
    second = {"content": [LOGPROBS["content"][1]]}
    events = [
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"content": "Hel"}, logprobs=first),
        _chunk({"content": "lo"}, logprobs=second),
        _chunk({"content": ""}, finish="stop"),
    ]
    items, final = _stream(server, mode, events)
    chunks = [i for i in items if isinstance(i, ChatStreamChunk) and i.content]
    assert [c.logprobs for c in chunks] == [[HEL], [LO]]
    assert final.logprobs == [HEL, LO]


@pytest.mark.parametrize("mode", MODES)
def test_n_choices_in_a_stream(server: ScriptedServer, mode: str) -> None:
    events = [
        _chunk({"role": "assistant", "content": ""}, 0),
        _chunk({"role": "assistant", "content": ""}, 1),
        _chunk({"content": "A1"}, 0),
        _chunk({"content": "B1"}, 1),
        _chunk({"content": " B2"}, 1),
        _chunk({"content": " A2"}, 0),
        _chunk({"content": ""}, 1, finish="length"),
        _chunk({"content": ""}, 0, finish="stop"),
        _chunk(None, usage={"prompt_tokens": 1, "completion_tokens": 4, "total_tokens": 5}),
    ]
    items, final = _stream(server, mode, events)
    chunks = [(i.index, i.content) for i in items if isinstance(i, ChatStreamChunk) and i.content]
    assert chunks == [(0, "A1"), (1, "B1"), (1, " B2"), (0, " A2")]
    assert [i for i in items if isinstance(i, FinishReason)] == [
        FinishReason.Length,
        FinishReason.Stop,
    ]
    assert [(c.index, c.message.content, c.finish_reason) for c in final.choices] == [
        (0, "A1 A2", FinishReason.Stop),
        (1, "B1 B2", FinishReason.Length),
    ]
    assert final.content == "A1 A2"
    assert final.usage == Usage(4, 1, 5)


@pytest.mark.parametrize("mode", MODES)
def test_n_stream_with_an_unfinished_choice_is_incomplete(
    server: ScriptedServer, mode: str
) -> None:
    events = [
        _chunk({"role": "assistant", "content": "A"}, 0),
        _chunk({"role": "assistant", "content": "B"}, 1),
        _chunk({"content": ""}, 0, finish="stop"),
    ]
    with pytest.raises(IncompleteStreamError) as info:
        _stream(server, mode, events, done=False)
    assert [c.message.content for c in info.value.partial.choices] == ["A", "B"]


def test_think_tags_fed_one_character_at_a_time() -> None:
    state = ChatStreamState(include_usage=False)
    items: list[Any] = state.feed(_chunk({"role": "assistant", "content": ""}))
    for char in THINK_TEXT:
        items += state.feed(_chunk({"content": char}))
    items += state.feed(_chunk({"content": ""}, finish="stop"))
    assert _text_items(items) == split_think(THINK_TEXT)


@pytest.mark.parametrize("mode", MODES)
def test_text_stream_has_only_the_first_choices_answer(server: ScriptedServer, mode: str) -> None:
    events = [
        _chunk({"role": "assistant", "reasoning_content": "hmm"}, 0),
        _chunk({"role": "assistant", "content": "B"}, 1),
        _chunk({"content": "A"}, 0),
        _chunk({"content": ""}, 0, finish="stop"),
        _chunk({"content": ""}, 1, finish="stop"),
    ]
    server.add(Reply.sse(events))

    def call(c: Any) -> Any:
        stream = c.chat_with_streaming(REQUEST, MODEL)
        if mode == "sync":
            return list(stream.text_stream)

        async def go() -> Any:
            return [text async for text in stream.text_stream]

        return go()

    assert run_client(mode, server.url, call) == ["A"]


def test_role_chunk_comes_before_the_first_reasoning() -> None:
    state = ChatStreamState(include_usage=False)
    items = state.feed(_chunk({"role": "assistant", "content": "", "reasoning_content": "hm"}))
    items += state.feed(_chunk({"content": "ok"}, finish="stop"))
    assert items == [
        ChatStreamChunk("", Role.Assistant, None),
        ReasoningChunk("hm"),
        ChatStreamChunk("ok", None, None),
        FinishReason.Stop,
    ]
