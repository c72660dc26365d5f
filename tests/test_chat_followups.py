"""Follow-ups to issue 12, end to end against the emulator with both clients: reasoning in the
tool loop (``run_tools_with_streaming`` and ``chat --tool``), tool-call answers with ``n``
choices, and the finish item of an ``n`` > 1 stream saying which choice finished."""

from __future__ import annotations

import io
import json
import pickle
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aleph_alpha_client import (
    ChatRequest,
    ChatStreamChunk,
    ChoiceFinishReason,
    FinishReason,
    Message,
    ReasoningChunk,
    Role,
    StreamOptions,
    ToolCall,
)
from aleph_alpha_client.cli import main
from aleph_alpha_client.emulator import Emulator
from aleph_alpha_client.tools import ToolResult, ToolRunResult
from conftest import run_client
from scripted_server import Reply, ScriptedServer

MODES = ["sync", "async"]
REASONING_MODELS = ["qwen3-32b-reasoning", "deepseek-r1-distill-llama-8b"]
QUESTION = "Weather in Berlin?"


def get_weather(city: str) -> dict[str, Any]:
    """Current weather of a city."""
    return {"city": city, "temperature": 21}


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


def collect(mode: str, url: str, make: Any) -> list[Any]:
    """The items of the (sync or async) iterator ``make(client)`` returns."""

    def call(c: Any) -> Any:
        stream = make(c)
        if mode == "sync":
            return list(stream)

        async def go() -> list[Any]:
            return [item async for item in stream]

        return go()

    result: list[Any] = run_client(mode, url, call)
    return result


def stream_items(mode: str, url: str, request: ChatRequest, model: str) -> tuple[list[Any], Any]:
    def call(c: Any) -> Any:
        stream = c.chat_with_streaming(request, model)
        if mode == "sync":
            return list(stream), stream.get_final_response()

        async def go() -> Any:
            items = [item async for item in stream]
            return items, await stream.get_final_response()

        return go()

    return run_client(mode, url, call)  # type: ignore[no-any-return]


# ------------------------------------------------------------------ reasoning in the tool loop


@pytest.mark.parametrize("model", REASONING_MODELS)
@pytest.mark.parametrize("mode", MODES)
def test_run_tools_with_streaming_passes_reasoning_on(emu: Emulator, mode: str, model: str) -> None:
    request = ChatRequest(model, [Message(Role.User, QUESTION)], tools=[get_weather])
    events = collect(mode, emu.url, lambda c: c.run_tools_with_streaming(request, model))
    result = events[-1]
    assert isinstance(result, ToolRunResult)
    call_at = next(i for i, e in enumerate(events) if isinstance(e, ToolCall))
    turn1, turn2 = events[:call_at], events[call_at + 2 : -1]
    assert isinstance(events[call_at + 1], ToolResult)
    # the tool-call turn: only thinking; the answer turn: thinking, then the answer
    assert turn1 and all(isinstance(e, ReasoningChunk) for e in turn1)
    thought1 = "".join(e.content for e in turn1)
    assert thought1 == result.messages[1].reasoning_content
    assert thought1.startswith(f'The user wrote: "{QUESTION}".')
    reasoning2 = [e for e in turn2 if isinstance(e, ReasoningChunk)]
    chunks = [e for e in turn2 if isinstance(e, ChatStreamChunk)]
    assert len(reasoning2) + len(chunks) == len(turn2)
    assert turn2.index(chunks[0]) > turn2.index(reasoning2[-1])  # thinking comes first
    assert "".join(e.content for e in reasoning2) == result.response.reasoning_content
    text = "".join(e.content for e in chunks)
    assert text == result.content == 'The tool returned: "{"city": "Berlin", "temperature": 21}".'
    assert "<think>" not in text and "The user wrote" not in text


@pytest.mark.parametrize("model", REASONING_MODELS)
@pytest.mark.parametrize("mode", MODES)
def test_tool_call_answers_of_reasoning_models_carry_the_thinking(
    emu: Emulator, mode: str, model: str
) -> None:
    request = ChatRequest(model, [Message(Role.User, QUESTION)], tools=[get_weather])
    response = run_client(mode, emu.url, lambda c: c.chat(request, model))
    assert response.finish_reason is FinishReason.ToolCalls
    assert response.content == "" and len(response.tool_calls) == 1
    assert response.reasoning_content.startswith(f'The user wrote: "{QUESTION}".')
    items, final = stream_items(mode, emu.url, request, model)
    assert final.message.reasoning_content == response.reasoning_content
    assert final.message.content == ""
    assert [c.function for c in final.tool_calls] == [c.function for c in response.tool_calls]
    assert not any(isinstance(i, ChatStreamChunk) and i.content for i in items)


# ------------------------------------------------------------------ n tool-call choices


def _tool_request(n: int, stream_usage: bool = False) -> ChatRequest:
    return ChatRequest(
        "x",
        [Message(Role.User, QUESTION)],
        tools=[get_weather],
        n=n,
        stream_options=StreamOptions(include_usage=True) if stream_usage else None,
    )


@pytest.mark.parametrize("mode", MODES)
def test_emulator_tool_calls_honour_n(emu: Emulator, mode: str) -> None:
    model = "llama-3.1-8b-instruct"
    one = run_client(mode, emu.url, lambda c: c.chat(_tool_request(1), model))
    response = run_client(mode, emu.url, lambda c: c.chat(_tool_request(3), model))
    again = run_client(mode, emu.url, lambda c: c.chat(_tool_request(3), model))
    assert response == again  # deterministic
    assert [c.index for c in response.choices] == [0, 1, 2]
    assert all(c.finish_reason is FinishReason.ToolCalls for c in response.choices)
    calls = [c.message.tool_calls for c in response.choices]
    assert all(cs is not None and len(cs) == 1 for cs in calls)
    assert len({cs[0].id for cs in calls if cs}) == 3  # each choice its own call
    assert {cs[0].function for cs in calls if cs} == {one.tool_calls[0].function}
    assert response.usage is not None and one.usage is not None
    assert response.usage.completion_tokens == 3 * one.usage.completion_tokens

    items, final = stream_items(mode, emu.url, _tool_request(3, stream_usage=True), model)
    streamed = [i for i in items if isinstance(i, ToolCall)]
    assert [c.function for c in streamed] == [cs[0].function for cs in calls if cs]
    assert len({c.id for c in streamed}) == 3
    finishes = [i for i in items if isinstance(i, FinishReason)]
    assert [(f.index, f.reason) for f in finishes] == [
        (i, FinishReason.ToolCalls) for i in range(3)
    ]
    # each choice's tool calls come right before its finish item
    position = {id(item): i for i, item in enumerate(items)}  # finish items compare equal
    for call, finish in zip(streamed, finishes):
        assert position[id(finish)] == position[id(call)] + 1
    assert [c.message.tool_calls for c in final.choices] == [[c] for c in streamed]
    assert [c.finish_reason for c in final.choices] == [FinishReason.ToolCalls] * 3
    assert final.usage == response.usage
    assert json.loads(emu.requests[-1].body)["n"] == 3


@pytest.mark.parametrize("mode", MODES)
def test_emulator_n_tool_calls_of_a_reasoning_model(emu: Emulator, mode: str) -> None:
    model = "qwen3-32b-reasoning"
    request = _tool_request(2)
    response = run_client(mode, emu.url, lambda c: c.chat(request, model))
    items, final = stream_items(mode, emu.url, request, model)
    assert [c.message.reasoning_content for c in final.choices] == [
        c.message.reasoning_content for c in response.choices
    ]
    assert len({c.message.tool_calls[0].id for c in final.choices if c.message.tool_calls}) == 2
    for choice in response.choices:
        thought = "".join(
            i.content for i in items if isinstance(i, ReasoningChunk) and i.index == choice.index
        )
        assert thought == choice.message.reasoning_content and thought


# ------------------------------------------------------------------ the finish item of n > 1


@pytest.mark.parametrize("mode", MODES)
def test_n_stream_finish_items_say_which_choice(emu: Emulator, mode: str) -> None:
    request = ChatRequest("x", [Message(Role.User, "capital of Italy?")], n=3)
    items, final = stream_items(mode, emu.url, request, "llama-3.1-8b-instruct")
    finishes = [i for i in items if isinstance(i, FinishReason)]
    assert [type(f) for f in finishes] == [ChoiceFinishReason] * 3
    assert [f.index for f in finishes] == [0, 1, 2]
    assert finishes == [FinishReason.Stop] * 3  # compares as the bare member
    assert [f.reason for f in finishes] == [c.finish_reason for c in final.choices]

    single = ChatRequest("x", [Message(Role.User, "capital of Italy?")])
    items, _ = stream_items(mode, emu.url, single, "llama-3.1-8b-instruct")
    finishes = [i for i in items if isinstance(i, FinishReason)]
    assert len(finishes) == 1 and finishes[0] is FinishReason.Stop  # n = 1: unchanged


def _sse_chunk(delta: dict[str, Any], index: int, finish: str | None = None) -> dict[str, Any]:
    choice = {"index": index, "delta": delta, "finish_reason": finish}
    return {"id": "s", "created": 2, "model": "m", "choices": [choice]}


@pytest.mark.parametrize("mode", MODES)
def test_n_stream_whose_first_choice_ends_before_the_others_start(
    server: ScriptedServer, mode: str
) -> None:
    events = [
        _sse_chunk({"role": "assistant", "content": "A"}, 0),
        _sse_chunk({"content": ""}, 0, finish="length"),
        _sse_chunk({"role": "assistant", "content": "B"}, 1),
        _sse_chunk({"content": ""}, 1, finish="stop"),
    ]
    server.add(Reply.sse(events))
    request = ChatRequest("m", [Message(Role.User, "Hi")], n=2)
    items, final = stream_items(mode, server.url, request, "m")
    finishes = [i for i in items if isinstance(i, FinishReason)]
    # the request asked for two choices: the first finish item names its choice too
    assert [(type(f), f.index, f.reason) for f in finishes] == [
        (ChoiceFinishReason, 0, FinishReason.Length),
        (ChoiceFinishReason, 1, FinishReason.Stop),
    ]
    assert [c.finish_reason for c in final.choices] == [FinishReason.Length, FinishReason.Stop]


def test_choice_finish_reason_stands_in_for_the_member() -> None:
    item = ChoiceFinishReason(FinishReason.Length, 2)
    assert isinstance(item, FinishReason) and isinstance(item, str)
    assert not isinstance("length", FinishReason)
    assert item == FinishReason.Length and FinishReason.Length == item and item == "length"
    assert item != FinishReason.Stop
    assert {FinishReason.Length: "cut"}[item] == "cut"
    assert FinishReason(item) is FinishReason.Length
    assert (item.value, item.name, item.index, item.reason) == (
        "length",
        "Length",
        2,
        FinishReason.Length,
    )
    assert json.dumps({"finish": item}) == '{"finish": "length"}'
    assert str(item) == str(FinishReason.Length)
    assert f"{item}" == f"{FinishReason.Length}"
    assert repr(item) == "ChoiceFinishReason(FinishReason.Length, index=2)"
    copy = pickle.loads(pickle.dumps(item))
    assert type(copy) is ChoiceFinishReason and (copy.index, copy.reason) == (2, item.reason)
    match item:
        case FinishReason.Stop:
            matched = "stop"
        case FinishReason.Length:
            matched = "length"
        case _:
            matched = "none"
    assert matched == "length"


# ------------------------------------------------------------------ CLI: chat --tool reasoning

TOOL_MODULE = '''
def get_weather(city: str) -> dict:
    """Current weather of a city."""
    return {"city": city, "temperature": 21}
'''
THOUGHT = f'The user wrote: "{QUESTION}".'
ANSWER = 'The tool returned: "{"city": "Berlin", "temperature": 21}".\n'


class TtyOut(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def tool_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (tmp_path / "followup_weather_tool.py").write_text(textwrap.dedent(TOOL_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "followup_weather_tool:get_weather"
    sys.modules.pop("followup_weather_tool", None)


def tool_argv(emu: Emulator, spec: str, model: str, *extra: str) -> list[str]:
    base = ["--host", emu.url, "--token", "t", "--retries", "0", "chat", "--model", model]
    return [*base, "--tool", spec, *extra, QUESTION]


@pytest.mark.parametrize("model", REASONING_MODELS)
@pytest.mark.parametrize("stream", [True, False])
def test_cli_tool_reasoning_goes_to_stderr(
    capsys: pytest.CaptureFixture[str], emu: Emulator, tool_module: str, model: str, stream: bool
) -> None:
    extra = [] if stream else ["--no-stream"]
    code = main(tool_argv(emu, tool_module, model, *extra))
    out, err = capsys.readouterr()
    assert (code, out) == (0, ANSWER), err
    # the tool-call turn's thinking, the tool lines, the answer turn's thinking
    lines = [line for line in err.splitlines() if not line.startswith("[tool] -> ")]
    assert lines[0].startswith(THOUGHT)
    assert lines[1].startswith("[tool] get_weather(")
    assert lines[2].startswith(THOUGHT) and len(lines) == 3
    assert ("[tool] -> " in err) is stream  # --no-stream prints only the calls
    assert "<think>" not in out + err and "\x1b[" not in out + err


@pytest.mark.parametrize("stream", [True, False])
def test_cli_tool_no_reasoning_hides_it(
    capsys: pytest.CaptureFixture[str], emu: Emulator, tool_module: str, stream: bool
) -> None:
    extra = ["--no-reasoning"] + ([] if stream else ["--no-stream"])
    code = main(tool_argv(emu, tool_module, "qwen3-32b-reasoning", *extra))
    out, err = capsys.readouterr()
    assert (code, out) == (0, ANSWER)
    assert "The user wrote" not in err and "[tool] get_weather(" in err


def test_cli_tool_reasoning_is_dimmed_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    emu: Emulator,
    tool_module: str,
) -> None:
    tty = TtyOut()
    monkeypatch.setattr(sys, "stdout", tty)
    code = main(tool_argv(emu, tool_module, "deepseek-r1-distill-llama-8b"))
    out = tty.getvalue()
    err = capsys.readouterr().err
    assert code == 0, err
    # the tool-call turn's thinking and the answer turn's, each dimmed
    assert out.count("\x1b[2m" + THOUGHT) == 2 and out.count("\x1b[0m") == 2
    assert out.endswith("\x1b[0m\n" + ANSWER) or out.endswith("\x1b[0m" + ANSWER)
    assert "[tool] get_weather(" in err and "<think>" not in out


def test_cli_tool_json_includes_reasoning(
    capsys: pytest.CaptureFixture[str], emu: Emulator, tool_module: str
) -> None:
    code = main(tool_argv(emu, tool_module, "qwen3-32b-reasoning", "--json"))
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    assert data["content"] == ANSWER.rstrip("\n")
    assert data["reasoning_content"].startswith('The user wrote: "Weather in Berlin?".')
    assert "The user wrote" not in err  # --json keeps it in the JSON only
