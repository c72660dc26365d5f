"""Functions and pydantic models as tools, and run_tools on both clients over real sockets."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import threading
import time
import typing
from typing import Any, Literal, Optional, Union

import pydantic
import pytest
from typing_extensions import TypedDict

from aleph_alpha_client import (
    ChatRequest,
    ChatResponse,
    ChatStreamChunk,
    FunctionCall,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    Message,
    Role,
    Tool,
    ToolArgumentsError,
    ToolCall,
    ToolLoopLimitError,
    ToolResult,
    ToolRunResult,
    tool,
)
from aleph_alpha_client.emulator import Emulator
from aleph_alpha_client.tools import ToolLoop, json_schema_for, strict_schema
from conftest import run_client
from scripted_server import Reply, ScriptedServer

MODEL = "llama-3.1-8b-instruct"
MODES = ["sync", "async"]


def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> dict[str, Any]:
    """Current weather of a city.

    Args:
        city: The city name.
        unit: Temperature unit.
    """
    return {"city": city, "temperature": 21, "unit": unit}


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Point(TypedDict):
    x: int
    y: int


@dataclasses.dataclass
class Box:
    width: float
    label: str = "box"


class Address(pydantic.BaseModel):
    """Where someone lives."""

    street: str
    zip_code: Optional[str] = None


def request(**kwargs: Any) -> ChatRequest:
    return ChatRequest(model=MODEL, messages=[Message(Role.User, "Weather in Berlin?")], **kwargs)


# --------------------------------------------------------------------------------------------
# Schema builder


def test_function_tool_is_the_dict_a_user_would_write() -> None:
    assert tool(get_weather).to_json() == {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather of a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "The city name."},
                    "unit": {
                        "type": "string",
                        "enum": ["celsius", "fahrenheit"],
                        "description": "Temperature unit.",
                        "default": "celsius",
                    },
                },
                "required": ["city"],
            },
        },
    }


@pytest.mark.parametrize(
    ("annotation", "schema"),
    [
        (str, {"type": "string"}),
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (bool, {"type": "boolean"}),
        (None, {"type": "null"}),
        (Any, {}),
        (Optional[int], {"anyOf": [{"type": "integer"}, {"type": "null"}]}),
        (Union[int, str], {"anyOf": [{"type": "integer"}, {"type": "string"}]}),
        (int | None, {"anyOf": [{"type": "integer"}, {"type": "null"}]}),
        (Literal[1, 2], {"type": "integer", "enum": [1, 2]}),
        (Literal["a", 1], {"enum": ["a", 1]}),
        (Color, {"type": "string", "enum": ["red", "blue"]}),
        (list[int], {"type": "array", "items": {"type": "integer"}}),
        (tuple[str, ...], {"type": "array", "items": {"type": "string"}}),
        (
            tuple[int, str],
            {
                "type": "array",
                "prefixItems": [{"type": "integer"}, {"type": "string"}],
                "minItems": 2,
                "maxItems": 2,
            },
        ),
        (dict[str, float], {"type": "object", "additionalProperties": {"type": "number"}}),
        (
            Point,
            {
                "type": "object",
                "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}},
                "required": ["x", "y"],
            },
        ),
        (
            Box,
            {
                "type": "object",
                "properties": {"width": {"type": "number"}, "label": {"type": "string"}},
                "required": ["width"],
            },
        ),
    ],
)
def test_schema_of_each_supported_type(annotation: Any, schema: dict[str, Any]) -> None:
    assert json_schema_for(annotation) == schema


def test_pydantic_parameter_goes_into_defs() -> None:
    def ship(to: Address, count: int) -> str:
        """Ship a parcel."""
        return "ok"

    parameters = tool(ship).to_json()["function"]["parameters"]
    assert parameters["properties"]["to"] == {"$ref": "#/$defs/Address"}
    assert parameters["$defs"]["Address"]["properties"]["street"] == {
        "title": "Street",
        "type": "string",
    }


def test_unsupported_parameter_is_named() -> None:
    def when(moment: threading.Thread) -> None:
        """Nope."""

    with pytest.raises(InvalidArgumentTypeError, match=r"tool 'when': parameter 'moment'.*Thread"):
        tool(when)
    with pytest.raises(InvalidArgumentTypeError, match=r"ChatRequest\.tools\[1\]"):
        request(tools=[get_weather, 42]).to_json()
    with pytest.raises(InvalidArgumentTypeError, match="keys are strings"):
        json_schema_for(dict[int, str])


def test_lambda_needs_a_name() -> None:
    with pytest.raises(InvalidArgumentError, match="name="):
        tool(lambda x: x)
    assert tool(lambda x: x, name="echo").name == "echo"


def test_strict_tool_is_normalised() -> None:
    wire = tool(get_weather, strict=True).to_json()["function"]
    assert wire["strict"] is True
    parameters = wire["parameters"]
    assert parameters["additionalProperties"] is False
    assert parameters["required"] == ["city", "unit"]
    assert "default" not in json.dumps(parameters)
    assert parameters["properties"]["unit"]["anyOf"][1] == {"type": "null"}


def test_strict_schema_recurses_into_defs_and_arrays() -> None:
    schema = strict_schema(
        {
            "type": "object",
            "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/A"}}},
            "$defs": {"A": {"type": "object", "properties": {"a": {"type": "string"}}}},
        }
    )
    assert schema["$defs"]["A"]["additionalProperties"] is False
    assert schema["$defs"]["A"]["required"] == ["a"]


def test_pydantic_model_tool() -> None:
    wire = tool(Address).to_json()["function"]
    assert wire["name"] == "Address"
    assert wire["description"] == "Where someone lives."
    assert wire["parameters"]["required"] == ["street"]
    parsed = tool(Address).parse_arguments('{"street": "Main St"}')
    assert parsed == Address(street="Main St")


def test_docstring_sphinx_style() -> None:
    def f(a: int, b: str) -> None:
        """Do things.

        :param a: the first
        :param b: the second
        """

    properties = tool(f).parameters["properties"]
    assert tool(f).description == "Do things."
    assert properties["a"]["description"] == "the first"
    assert properties["b"]["description"] == "the second"


# --------------------------------------------------------------------------------------------
# Argument validation


def test_arguments_are_validated_and_named() -> None:
    t = tool(get_weather)
    assert t.parse_arguments('{"city": "Bonn"}') == {"city": "Bonn"}
    with pytest.raises(ToolArgumentsError, match="missing argument 'city'") as info:
        t.parse_arguments("{}")
    assert info.value.argument == "city"
    with pytest.raises(ToolArgumentsError, match="unknown argument 'town'"):
        t.parse_arguments('{"city": "Bonn", "town": "x"}')
    with pytest.raises(ToolArgumentsError, match="argument 'unit'") as info:
        t.parse_arguments('{"city": "Bonn", "unit": "kelvin"}')
    assert info.value.argument == "unit"
    with pytest.raises(ToolArgumentsError, match="not valid JSON"):
        t.parse_arguments('{"city": ')
    with pytest.raises(ToolArgumentsError, match="must be a JSON object"):
        t.parse_arguments("[1]")


def test_arguments_are_converted() -> None:
    def area(box: Box, color: Color) -> float:
        """Area."""
        return box.width

    arguments = tool(area).parse_arguments('{"box": {"width": 2}, "color": "red"}')
    assert arguments == {"box": Box(width=2.0), "color": Color.RED}


def test_function_call_parsed_arguments_with_tools() -> None:
    call = FunctionCall(name="get_weather", arguments='{"city": "Bonn", "unit": "kelvin"}')
    assert call.parsed_arguments() == {"city": "Bonn", "unit": "kelvin"}
    with pytest.raises(ToolArgumentsError, match="'unit'"):
        call.parsed_arguments(tools=[get_weather])
    model_call = FunctionCall(name="Address", arguments='{"street": "A"}')
    assert model_call.parsed_arguments(tools=[Address]) == Address(street="A")


def test_tools_on_the_wire_match_dicts(server: ScriptedServer) -> None:
    answer = {
        "id": "c",
        "choices": [
            {"finish_reason": "stop", "index": 0, "message": {"role": "assistant", "content": "x"}}
        ],
        "created": 1,
        "model": MODEL,
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    server.default = Reply.json(answer)
    for mode in MODES:
        run_client(mode, server.url, lambda c: c.chat(request(tools=[get_weather]), MODEL))
        run_client(
            mode, server.url, lambda c: c.chat(request(tools=[tool(get_weather).to_json()]), MODEL)
        )
    bodies = [r.body for r in server.received]
    assert len(bodies) == 4
    assert bodies[0] == bodies[1] == bodies[2] == bodies[3]
    assert json.loads(bodies[0])["tools"][0]["function"]["name"] == "get_weather"


# --------------------------------------------------------------------------------------------
# The tool loop against the emulator


@pytest.mark.parametrize("mode", MODES)
def test_run_tools_weather_loop(aleph_alpha_emulator: Emulator, mode: str) -> None:
    seen: list[str] = []

    def weather(city: str) -> dict[str, Any]:
        """Weather of a city."""
        seen.append(city)
        return {"city": city, "temperature": 21}

    result: ToolRunResult = run_client(
        mode, aleph_alpha_emulator.url, lambda c: c.run_tools(request(tools=[weather]), MODEL)
    )
    assert len(seen) == 1
    assert isinstance(result.response, ChatResponse)
    assert result.response.tool_calls == []
    assert '"temperature": 21' in result.content
    roles = [m.role for m in result.messages]
    assert roles == [Role.User, Role.Assistant, Role.Tool, Role.Assistant]
    tool_message = result.messages[2]
    assert isinstance(tool_message, Message)
    assert tool_message.tool_call_id == result.messages[1].tool_calls[0].id  # type: ignore[index]
    # the conversation can be continued as it is
    follow_up = ChatRequest(model=MODEL, messages=[*result.messages, Message(Role.User, "Thanks")])
    assert run_client(mode, aleph_alpha_emulator.url, lambda c: c.chat(follow_up, MODEL)).content


@pytest.mark.parametrize("mode", MODES)
def test_tool_exception_becomes_a_tool_message(aleph_alpha_emulator: Emulator, mode: str) -> None:
    def weather(city: str) -> str:
        """Weather."""
        raise RuntimeError("station offline")

    result = run_client(
        mode, aleph_alpha_emulator.url, lambda c: c.run_tools(request(tools=[weather]), MODEL)
    )
    assert result.messages[2].content == "Error: RuntimeError: station offline"
    assert "station offline" in result.content


@pytest.mark.parametrize("mode", MODES)
def test_unknown_tool_and_bad_arguments_are_answered(server: ScriptedServer, mode: str) -> None:
    calls = [
        {"id": "a", "type": "function", "function": {"name": "nope", "arguments": "{}"}},
        {"id": "b", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}},
    ]
    server.add(
        Reply.json(chat_answer({"role": "assistant", "content": "", "tool_calls": calls})),
        Reply.json(chat_answer({"role": "assistant", "content": "done"}, "stop")),
    )
    result = run_client(
        mode, server.url, lambda c: c.run_tools(request(tools=[get_weather]), MODEL)
    )
    assert result.content == "done"
    sent = server.received[1].json()["messages"]
    assert sent[2] == {
        "role": "tool",
        "content": "Error: LookupError: unknown tool 'nope' (tools: get_weather)",
        "tool_call_id": "a",
    }
    assert sent[3]["tool_call_id"] == "b"
    assert "missing argument 'city'" in sent[3]["content"]


def chat_answer(message: dict[str, Any], finish: str = "tool_calls") -> dict[str, Any]:
    return {
        "id": "c",
        "choices": [{"finish_reason": finish, "index": 0, "message": message}],
        "created": 1,
        "model": MODEL,
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


@pytest.mark.parametrize("mode", MODES)
def test_out_of_iterations_carries_the_conversation(server: ScriptedServer, mode: str) -> None:
    call = {
        "id": "a",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "X"}'},
    }
    server.default = Reply.json(
        chat_answer({"role": "assistant", "content": "", "tool_calls": [call]})
    )
    with pytest.raises(ToolLoopLimitError, match="after 3 iterations") as info:
        run_client(
            mode,
            server.url,
            lambda c: c.run_tools(request(tools=[get_weather]), MODEL, max_iterations=3),
        )
    assert len(server.received) == 3
    assert [m.role for m in info.value.messages] == [Role.User] + [Role.Assistant, Role.Tool] * 3


def test_max_iterations_is_checked() -> None:
    with pytest.raises(InvalidArgumentError, match="max_iterations"):
        ToolLoop(request(), max_iterations=0)
    with pytest.raises(InvalidArgumentTypeError, match="max_iterations"):
        ToolLoop(request(), max_iterations="3")  # type: ignore[arg-type]


def test_sync_client_refuses_async_tools(aleph_alpha_emulator: Emulator) -> None:
    async def weather(city: str) -> str:
        """Weather."""
        return "sunny"

    result = run_client(
        "sync", aleph_alpha_emulator.url, lambda c: c.run_tools(request(tools=[weather]), MODEL)
    )
    assert "is async; use AsyncClient.run_tools" in result.messages[2].content


def test_async_client_runs_calls_of_a_turn_concurrently(server: ScriptedServer) -> None:
    calls = [
        {"id": str(i), "type": "function", "function": {"name": name, "arguments": "{}"}}
        for i, name in enumerate(["slow_async", "slow_sync", "slow_async"])
    ]
    server.add(
        Reply.json(chat_answer({"role": "assistant", "content": "", "tool_calls": calls})),
        Reply.json(chat_answer({"role": "assistant", "content": "done"}, "stop")),
    )
    running = 0
    peak = 0
    lock = threading.Lock()

    def enter() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)

    def leave() -> None:
        nonlocal running
        with lock:
            running -= 1

    async def slow_async() -> str:
        """Slow."""
        enter()
        await asyncio.sleep(0.2)
        leave()
        return "a"

    def slow_sync() -> str:
        """Slow."""
        enter()
        time.sleep(0.2)
        leave()
        return "s"

    result = run_client(
        "async",
        server.url,
        lambda c: c.run_tools(request(tools=[slow_async, slow_sync]), MODEL),
    )
    assert result.content == "done"
    assert peak == 3
    sent = server.received[1].json()["messages"]
    assert [m["content"] for m in sent[2:]] == ["a", "s", "a"]  # results keep the call order


@pytest.mark.parametrize("mode", MODES)
def test_run_tools_with_streaming_events(aleph_alpha_emulator: Emulator, mode: str) -> None:
    def go(c: Any) -> Any:
        stream = c.run_tools_with_streaming(request(tools=[get_weather]), MODEL)
        if mode == "sync":
            return list(stream)

        async def collect() -> list[Any]:
            return [event async for event in stream]

        return collect()

    events = run_client(mode, aleph_alpha_emulator.url, go)
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "ToolCall"
    assert kinds[1] == "ToolResult"
    assert kinds[-1] == "ToolRunResult"
    assert set(kinds[2:-1]) == {"ChatStreamChunk"}
    result = events[-1]
    text = "".join(e.content for e in events if isinstance(e, ChatStreamChunk))
    assert text == result.content
    assert isinstance(events[0], ToolCall) and isinstance(events[1], ToolResult)
    assert events[1].call == events[0]
    assert [m.role for m in result.messages] == [
        Role.User,
        Role.Assistant,
        Role.Tool,
        Role.Assistant,
    ]


def test_tool_object_passes_through() -> None:
    t = tool(get_weather, name="weather", description="Weather.")
    assert isinstance(t, Tool)
    assert tool(t) is t
    assert request(tools=[t]).to_json()["tools"][0]["function"]["name"] == "weather"


class Booking(pydantic.BaseModel):
    """Book a flight."""

    flight: str = pydantic.Field(pattern=r"^[A-Z]{2}\d{3,4}$")
    seat: str = pydantic.Field(pattern=r"^\d{1,2}[A-F]$")
    passengers: int = pydantic.Field(ge=1, le=9)
    note: Optional[str] = None


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("strict", [False, True])
def test_emulator_arguments_satisfy_patterns_and_strict_schemas(
    aleph_alpha_emulator: Emulator, mode: str, strict: bool
) -> None:
    booking_tool = tool(Booking, strict=strict)
    result = run_client(
        mode,
        aleph_alpha_emulator.url,
        lambda c: c.run_tools(request(tools=[booking_tool]), MODEL),
    )
    call = result.messages[1].tool_calls[0]
    arguments = json.loads(call.function.arguments)
    if strict:
        assert set(arguments) == {"flight", "seat", "passengers", "note"}
    booking = call.function.parsed_arguments(tools=[booking_tool])
    assert isinstance(booking, Booking)
    # a model tool has no function: its validated arguments are the result
    assert json.loads(result.messages[2].content) == json.loads(booking.model_dump_json())


def test_emulator_pattern_examples() -> None:
    from aleph_alpha_client.emulator.schema import example_for_schema

    for pattern in [r"^\d{3}-\d{4}$", r"^(foo|bar)+\.baz$", r"^[^\d\s]{3}$", r"^(ab)\1$"]:
        value = example_for_schema({"type": "string", "pattern": pattern}, "code")
        assert __import__("re").search(pattern, value), (pattern, value)
    # a value that already matches is kept
    assert example_for_schema({"type": "string", "pattern": "Par"}, "city") == "Paris"


@pytest.mark.parametrize("mode", MODES)
def test_emulator_calls_the_tool_the_user_mentions(
    aleph_alpha_emulator: Emulator, mode: str
) -> None:
    def get_time(zone: str) -> str:
        """The time in a zone."""
        return "12:00"

    def ask(text: str) -> Any:
        weather_request = ChatRequest(
            model=MODEL, messages=[Message(Role.User, text)], tools=[get_time, get_weather]
        )
        return run_client(
            mode, aleph_alpha_emulator.url, lambda c: c.run_tools(weather_request, MODEL)
        )

    assert ask("What's the weather in Bonn?").messages[1].tool_calls[0].function.name == (
        "get_weather"
    )
    assert ask("What time is it?").messages[1].tool_calls[0].function.name == "get_time"
    assert ask("Hello").messages[1].tool_calls[0].function.name == "get_time"  # the first


# --------------------------------------------------------------------------------------------
# Strict mode: the walk follows schema keywords; null stands for a default


def test_strict_keeps_properties_named_like_keywords() -> None:
    def f(default: str, properties: int = 3, items: Optional[str] = None) -> None:
        """Names that are JSON-schema keywords."""

    parameters = tool(f, strict=True).parameters
    assert list(parameters["properties"]) == ["default", "properties", "items"]
    assert parameters["properties"]["default"] == {"type": "string"}
    assert parameters["properties"]["properties"] == {
        "anyOf": [{"type": "integer"}, {"type": "null"}]
    }
    assert parameters["required"] == ["default", "properties", "items"]


def test_strict_refuses_free_keys_naming_the_parameter() -> None:
    def f(city: str, tags: dict[str, int]) -> None:
        """A mapping with free keys."""

    with pytest.raises(InvalidArgumentTypeError, match=r"tool 'f'.*schema\.tags.*free keys"):
        tool(f, strict=True)
    assert tool(f).parameters["properties"]["tags"]["additionalProperties"] == {"type": "integer"}


@pytest.mark.parametrize("mode", MODES)
def test_strict_null_means_the_default(server: ScriptedServer, mode: str) -> None:
    seen: list[str] = []

    def weather(city: str, unit: str = "celsius") -> str:
        """Weather."""
        seen.append(unit)
        return f"{city} in {unit}"

    call = {
        "id": "a",
        "type": "function",
        "function": {"name": "weather", "arguments": '{"city": "Bonn", "unit": null}'},
    }
    server.add(
        Reply.json(chat_answer({"role": "assistant", "content": "", "tool_calls": [call]})),
        Reply.json(chat_answer({"role": "assistant", "content": "done"}, "stop")),
    )
    strict_weather = tool(weather, strict=True)
    result = run_client(
        mode, server.url, lambda c: c.run_tools(request(tools=[strict_weather]), MODEL)
    )
    assert result.content == "done"
    assert seen == ["celsius"]
    assert server.received[1].json()["messages"][2]["content"] == "Bonn in celsius"
    # without strict, null is not a str: the model is told so
    with pytest.raises(ToolArgumentsError, match="unit"):
        tool(weather).parse_arguments('{"city": "Bonn", "unit": null}')


def test_strict_model_tool_null_means_the_default() -> None:
    class Trip(pydantic.BaseModel):
        to: str
        stops: int = 0
        home: Optional[Address] = None

    parsed = tool(Trip, strict=True).parse_arguments(
        '{"to": "Rome", "stops": null, "home": {"street": "Main St", "zip_code": null}}'
    )
    assert parsed == Trip(to="Rome", stops=0, home=Address(street="Main St"))


def test_recursive_dataclass_goes_to_defs() -> None:
    parameters = tool(plant_tree).parameters
    assert parameters["properties"]["root"] == {"$ref": "#/$defs/TreeNode"}
    node = parameters["$defs"]["TreeNode"]
    assert node["properties"]["children"]["items"] == {"$ref": "#/$defs/TreeNode"}
    arguments = tool(plant_tree).parse_arguments(
        '{"root": {"name": "a", "children": [{"name": "b"}]}}'
    )
    assert arguments["root"] == TreeNode("a", [TreeNode("b")])


def test_typing_typeddict_arguments_do_not_crash() -> None:
    def place(corner: Corner, count: int) -> None:
        """Place."""

    arguments = tool(place).parse_arguments('{"corner": {"x": 1}, "count": "2"}')
    assert arguments == {"corner": {"x": 1}, "count": 2}


class Corner(typing.TypedDict):  # typing's, which pydantic refuses before Python 3.12
    x: int


@dataclasses.dataclass
class TreeNode:
    name: str
    children: list[TreeNode] = dataclasses.field(default_factory=list)


def plant_tree(root: TreeNode) -> None:
    """Plant a tree."""


@dataclasses.dataclass
class SearchOptions:
    limit: int = 10
    exact: bool = False


class Filters(pydantic.BaseModel):
    year: int = 2024
    tag: str = pydantic.Field(default="all", validation_alias="label")


def search(query: str, options: SearchOptions, filters: list[Filters]) -> None:
    """Search."""


def test_strict_null_means_the_default_in_nested_arguments() -> None:
    arguments = tool(search, strict=True).parse_arguments(
        '{"query": "x", "options": {"limit": null, "exact": true},'
        ' "filters": [{"year": null, "label": null}, {"year": 1999, "label": "b"}]}'
    )
    assert arguments["options"] == SearchOptions(limit=10, exact=True)
    assert arguments["filters"] == [Filters(), Filters(year=1999, label="b")]


@pytest.mark.parametrize(
    ("question", "city"),
    [("What's the weather in Bonn?", "Bonn"), ("Weather in New York today?", "New York")],
)
def test_emulator_asks_the_tool_about_the_place_named(
    aleph_alpha_emulator: Emulator, question: str, city: str
) -> None:
    asked = ChatRequest(model=MODEL, messages=[Message(Role.User, question)], tools=[get_weather])
    result = run_client(
        "sync", aleph_alpha_emulator.url, lambda c: c.run_tools(asked, MODEL, max_iterations=2)
    )
    call = result.messages[1].tool_calls[0]
    assert json.loads(call.function.arguments)["city"] == city
    assert city in result.content  # the answer quotes the tool's result
