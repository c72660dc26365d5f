"""ChatRequest fields newer than 11.5.1: wire form, validation, byte-identical default body."""

from __future__ import annotations

from typing import Any

import pytest

from aleph_alpha_client import ChatRequest, InvalidArgumentError, Message, Role
from conftest import run_client
from scripted_server import Reply, ScriptedServer

MODEL = "llama-3.1-8b-instruct"
ANSWER = {
    "id": "c",
    "choices": [
        {
            "finish_reason": "stop",
            "index": 0,
            "message": {"role": "assistant", "content": "ok"},
            "logprobs": None,
        }
    ],
    "created": 1,
    "model": MODEL,
    "object": "chat.completion",
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}
MESSAGES = [Message(role=Role.User, content="Hi")]
MODES = ["sync", "async"]


def _send(server: ScriptedServer, mode: str, request: ChatRequest) -> bytes:
    server.add(Reply.json(ANSWER))
    run_client(mode, server.url, lambda c: c.chat(request, MODEL))
    return server.received[-1].body


@pytest.mark.parametrize("mode", MODES)
def test_no_new_field_sends_todays_bytes(server: ScriptedServer, mode: str) -> None:
    body = _send(server, mode, ChatRequest(MODEL, MESSAGES, 10, 0.5))
    assert body == (
        b'{"model": "llama-3.1-8b-instruct", "messages": [{"role": "user", "content": "Hi"}], '
        b'"maximum_tokens": 10, "temperature": 0.5}'
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("fields", "wire"),
    [
        ({"stop": "END"}, {"stop": "END"}),
        ({"stop": ["a", "b"]}, {"stop": ["a", "b"]}),
        ({"n": 2}, {"n": 2}),
        ({"frequency_penalty": -2.0}, {"frequency_penalty": -2.0}),
        ({"presence_penalty": 1.5}, {"presence_penalty": 1.5}),
        ({"logit_bias": {42: -100, 7: 2.5}}, {"logit_bias": {"42": -100, "7": 2.5}}),
        ({"logprobs": True, "top_logprobs": 20}, {"logprobs": True, "top_logprobs": 20}),
        ({"seed": 1234}, {"seed": 1234}),
        ({"reasoning_effort": "high"}, {"reasoning_effort": "high"}),
        ({"max_completion_tokens": 64}, {"max_completion_tokens": 64}),
        ({"extra_body": {"min_p": 0.1, "x": [1]}}, {"min_p": 0.1, "x": [1]}),
    ],
)
def test_new_field_wire_form(
    server: ScriptedServer, mode: str, fields: dict[str, Any], wire: dict[str, Any]
) -> None:
    server.add(Reply.json(ANSWER))
    request = ChatRequest(MODEL, MESSAGES, **fields)
    run_client(mode, server.url, lambda c: c.chat(request, MODEL))
    body = server.received[-1].json()
    assert list(body) == ["model", "messages", *wire]
    assert {k: body[k] for k in wire} == wire


@pytest.mark.parametrize("mode", MODES)
def test_tool_strict_is_sent_unchanged(server: ScriptedServer, mode: str) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {}, "strict": True}}
    server.add(Reply.json(ANSWER))
    request = ChatRequest(MODEL, MESSAGES, tools=[tool])
    run_client(mode, server.url, lambda c: c.chat(request, MODEL))
    assert server.received[-1].json()["tools"] == [tool]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"stop": 3}, "ChatRequest.stop"),
        ({"stop": ["a", 1]}, "ChatRequest.stop"),
        ({"n": 0}, "ChatRequest.n"),
        ({"frequency_penalty": 2.5}, "ChatRequest.frequency_penalty"),
        ({"presence_penalty": -3}, "ChatRequest.presence_penalty"),
        ({"logit_bias": {1: 101}}, "ChatRequest.logit_bias[1]"),
        ({"logit_bias": {"a": 1}}, "ChatRequest.logit_bias"),
        ({"logprobs": "yes"}, "ChatRequest.logprobs"),
        ({"top_logprobs": 21}, "ChatRequest.top_logprobs"),
        ({"seed": 1.5}, "ChatRequest.seed"),
        ({"reasoning_effort": "max"}, "ChatRequest.reasoning_effort"),
        ({"max_completion_tokens": 0}, "ChatRequest.max_completion_tokens"),
        ({"extra_body": {"temperature": 2}}, "ChatRequest.extra_body"),
        ({"extra_body": {"stream": True}}, "ChatRequest.extra_body"),
        ({"extra_body": ["x"]}, "ChatRequest.extra_body"),
    ],
)
def test_bad_values_rejected_before_sending(
    server: ScriptedServer, mode: str, fields: dict[str, Any], fragment: str
) -> None:
    request = ChatRequest(MODEL, MESSAGES, **fields)
    with pytest.raises(InvalidArgumentError, match=fragment.replace("[", r"\[")):
        run_client(mode, server.url, lambda c: c.chat(request, MODEL))
    assert server.received == []


@pytest.mark.parametrize("mode", MODES)
def test_emulator_accepts_every_new_field(mode: str) -> None:
    from aleph_alpha_client.emulator import Emulator

    request = ChatRequest(
        MODEL,
        MESSAGES,
        stop=["x"],
        n=1,
        frequency_penalty=0.1,
        presence_penalty=0.1,
        logit_bias={1: 1.0},
        logprobs=False,
        top_logprobs=0,
        seed=1,
        reasoning_effort="low",
        max_completion_tokens=5,
        extra_body={"min_p": 0.1},
    )
    with Emulator() as emulator:
        answer = run_client(mode, emulator.url, lambda c: c.chat(request, MODEL))
    assert answer.content


def test_emulator_honours_max_completion_tokens() -> None:
    from aleph_alpha_client import FinishReason
    from aleph_alpha_client.emulator import Emulator

    request = ChatRequest(MODEL, MESSAGES, max_completion_tokens=1)
    with Emulator() as emulator:
        answer = run_client("sync", emulator.url, lambda c: c.chat(request, MODEL))
    assert answer.finish_reason == FinishReason.Length
    assert emulator.requests[-1].json["max_completion_tokens"] == 1
