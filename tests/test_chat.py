"""The chat API end to end: exact request bytes, parsing, streaming in both clients."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from typing import Any

import pytest

from aleph_alpha_client import (
    AsyncClient,
    BadRequestError,
    ChatRequest,
    ChatResponse,
    ChatStreamChunk,
    Client,
    FinishReason,
    FunctionCall,
    Image,
    IncompleteStreamError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    JSONSchema,
    Message,
    Role,
    StreamEventError,
    StreamOptions,
    TextMessage,
    ToolCall,
    ToolFunction,
    Usage,
)
from aleph_alpha_client._streaming import ChatStreamState, StreamProcessor
from aleph_alpha_client.chat import stream_chat_item_from_json
from aleph_alpha_client.steering import SteeringConceptCreationRequest, SteeringPairedExample
from conftest import TOKEN
from scripted_server import Reply, ScriptedServer

MODEL = "llama-3.1-8b-instruct"

CHAT_ANSWER = {
    "id": "chatcmpl-1",
    "choices": [
        {
            "finish_reason": "stop",
            "index": 0,
            "message": {"role": "assistant", "content": "I am fine."},
            "logprobs": None,
        }
    ],
    "created": 1754484237,
    "model": MODEL,
    "system_fingerprint": ".unknown.",
    "object": "chat.completion",
    "usage": {"prompt_tokens": 16, "completion_tokens": 50, "total_tokens": 66},
}


def chunk(
    delta: dict[str, Any] | None = None,
    finish: str | None = None,
    usage: dict[str, int] | None = None,
) -> dict[str, Any]:
    return {
        "id": "c1",
        "choices": []
        if delta is None
        else [{"finish_reason": finish, "index": 0, "delta": delta, "logprobs": None}],
        "created": 1,
        "model": MODEL,
        "system_fingerprint": None,
        "object": "chat.completion.chunk",
        "usage": usage,
    }


USAGE = {"prompt_tokens": 16, "completion_tokens": 3, "total_tokens": 19}
PLAIN_STREAM = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "I'm "}),
    chunk({"content": "fine ü🙂"}),
    chunk({}, "stop"),
    chunk(None, usage=USAGE),
]
TOOL_STREAM = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "</think>\n\n"}),
    chunk(
        {
            "content": "",
            "tool_calls": [
                {
                    "id": "chatcmpl-tool-1",
                    "index": 0,
                    "type": "function",
                    "function": {"name": "get_weather"},
                }
            ],
        }
    ),
    *[
        chunk({"content": "", "tool_calls": [{"index": 0, "function": {"arguments": part}}]})
        for part in ['{"location": "', "Paris", ",", " France", '"}']
    ],
    chunk({"content": ""}, "tool_calls"),
]


def user(text: str) -> Message:
    return Message(role=Role.User, content=text)


# --------------------------------------------------------------------------- request bytes


def test_minimal_request_body_is_the_official_bytes(client: Client, server: ScriptedServer) -> None:
    server.add(Reply.json(CHAT_ANSWER))
    client.chat(ChatRequest(model=MODEL, messages=[user("Hello, how are you?")]), model=MODEL)
    received = server.received[0]
    assert received.method == "POST"
    assert received.path == "/chat/completions"
    assert received.body == (
        b'{"model": "llama-3.1-8b-instruct", "messages": [{"role": "user", '
        b'"content": "Hello, how are you?"}]}'
    )
    assert received.headers["authorization"] == f"Bearer {TOKEN}"
    assert received.headers["content-type"] == "application/json"
    assert received.headers["user-agent"].startswith("Aleph-Alpha-Python-Client-12.")


def test_every_field_in_official_key_order(server: ScriptedServer) -> None:
    server.add(Reply.sse(PLAIN_STREAM))
    request = ChatRequest(
        model="ignored",
        messages=[Message(role=Role.System, content="Be brief."), user("Héllo")],
        maximum_tokens=64,
        temperature=0.5,
        top_k=3,
        top_p=0.9,
        stream_options=StreamOptions(include_usage=True),
        steering_concepts=["c1"],
        response_format=JSONSchema({"type": "object"}, "answer", "An answer", True),
        tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
        tool_choice=ToolFunction("function", {"name": "f"}),
        parallel_tool_calls=False,
    )
    with Client(TOKEN, host=server.url, hosting="aleph-alpha", tags=["t1"], nice=True) as c:
        list(c.chat_with_streaming(request, MODEL))
    received = server.received[0]
    assert received.path == "/chat/completions?nice=true"
    body = received.json()
    assert list(body) == [
        "model",
        "messages",
        "maximum_tokens",
        "temperature",
        "top_k",
        "top_p",
        "stream_options",
        "steering_concepts",
        "response_format",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "hosting",
        "tags",
        "stream",
    ]
    assert body["model"] == MODEL
    assert body["stream"] is True
    assert body["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {
            "schema": {"type": "object"},
            "name": "answer",
            "description": "An answer",
            "strict": True,
        },
    }
    assert b'"H\\u00e9llo"' in received.body  # ensure_ascii, as json.dumps defaults


def test_pydantic_response_format_matches_official(client: Client, server: ScriptedServer) -> None:
    pydantic = pytest.importorskip("pydantic")

    class Aquarium(pydantic.BaseModel):
        tank_size: int
        fish: list[str]

    answer = json.loads(json.dumps(CHAT_ANSWER))
    answer["choices"][0]["message"]["content"] = '{"tank_size": 200, "fish": ["nemo"]}'
    server.add(Reply.json(answer))
    response = client.chat(
        ChatRequest(model=MODEL, messages=[user("fish?")], response_format=Aquarium), MODEL
    )
    sent = server.received[0].json()["response_format"]
    assert sent == {
        "type": "json_schema",
        "json_schema": {
            "schema": Aquarium.model_json_schema(),
            "name": "Aquarium",
            "description": None,
            "strict": True,
        },
    }
    parsed = response.parsed(Aquarium)
    assert parsed == Aquarium(tank_size=200, fish=["nemo"])
    assert response.json() == {"tank_size": 200, "fish": ["nemo"]}


def test_images_keep_their_bytes_and_type(
    client: Client, server: ScriptedServer, tmp_path: Any
) -> None:
    jpeg = b"\xff\xd8\xff\xe0" + b"fake jpeg payload" * 10
    path = tmp_path / "cat.jpg"
    path.write_bytes(jpeg)
    server.add(Reply.json(CHAT_ANSWER))
    message = Message(
        role=Role.User,
        content=["Describe the following image.", Image.from_file(path)],
    )
    client.chat(ChatRequest(model=MODEL, messages=[message], maximum_tokens=200), "dummy-model")
    body = server.received[0].json()
    assert body == {
        "model": "dummy-model",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Describe the following image."},
                    {
                        "type": "image_url",
                        "image_url": {
                            "url": "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
                        },
                    },
                ],
            }
        ],
        "maximum_tokens": 200,
    }


def test_pil_images_are_sent_as_png(client: Client, server: ScriptedServer) -> None:
    pil = pytest.importorskip("PIL.Image")
    image = pil.new("CMYK", (4, 4))  # PNG cannot hold CMYK: converted, not an error
    server.add(Reply.json(CHAT_ANSWER))
    client.chat(ChatRequest(model=MODEL, messages=[Message(Role.User, ["look", image])]), MODEL)
    url = server.received[0].json()["messages"][0]["content"][1]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    decoded = pil.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert decoded.size == (4, 4)


def test_tool_turns_round_trip(client: Client, server: ScriptedServer) -> None:
    call = {
        "id": "chatcmpl-tool-9",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"location": "Paris, France"}'},
    }
    first = json.loads(json.dumps(CHAT_ANSWER))
    first["choices"][0]["finish_reason"] = "tool_calls"
    first["choices"][0]["message"] = {"role": "assistant", "content": "", "tool_calls": [call]}
    server.add(Reply.json(first), Reply.json(CHAT_ANSWER))
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather of a city",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
                "strict": True,
            },
        }
    ]
    conversation: list[Message | TextMessage] = [user("Weather in Paris?")]
    response = client.chat(ChatRequest(model=MODEL, messages=conversation, tools=tools), MODEL)
    assert response.finish_reason is FinishReason.ToolCalls
    assert response.tool_calls == [
        ToolCall(
            "chatcmpl-tool-9",
            "function",
            FunctionCall("get_weather", call["function"]["arguments"]),
        )
    ]
    assert response.tool_calls[0].function.parsed_arguments() == {"location": "Paris, France"}
    conversation.append(response.message)
    conversation.append(
        Message(
            role=Role.Tool, content="Cloudy with a bit of rain.", tool_call_id="chatcmpl-tool-9"
        )
    )
    client.chat(ChatRequest(model=MODEL, messages=conversation, tools=tools), MODEL)
    sent = server.received[1].json()["messages"]
    assert sent[1] == {"role": "assistant", "content": "", "tool_calls": [call]}
    assert sent[2] == {
        "role": "tool",
        "content": "Cloudy with a bit of rain.",
        "tool_call_id": "chatcmpl-tool-9",
    }


# --------------------------------------------------------------------------- responses


def test_response_keeps_usage_id_and_model(client: Client, server: ScriptedServer) -> None:
    server.add(Reply.json(CHAT_ANSWER))
    response = client.chat(ChatRequest(model=MODEL, messages=[user("hi")]), MODEL)
    assert response == ChatResponse(
        FinishReason.Stop,
        TextMessage(Role.Assistant, "I am fine."),
        Usage(completion_tokens=50, prompt_tokens=16, total_tokens=66),
        "chatcmpl-1",
        MODEL,
    )
    assert response.content == "I am fine."
    # positional use of the official two fields still works
    assert ChatResponse(FinishReason.Stop, response.message).usage is None


def test_api_error_is_typed_and_matches_official_except(
    client: Client, server: ScriptedServer
) -> None:
    text = '{"error":"Sadly the model you chose does not provide that capability","code":"MISSING_CAPABILITY"}'
    server.add(
        Reply(400, {"Content-Type": "application/json", "X-Request-Id": "rq-1"}, [text.encode()])
    )
    with pytest.raises(ValueError) as info:
        client.chat(ChatRequest(model=MODEL, messages=[user("hi")]), "luminous-base")
    err = info.value
    assert isinstance(err, BadRequestError)
    assert err.args == (400, text)
    assert err.code == "MISSING_CAPABILITY"
    assert err.request_id == "rq-1"
    assert "does not provide that capability" in str(err)
    assert len(server.received) == 1


# --------------------------------------------------------------------------- streaming


def expected_plain(include_usage: bool = True) -> list[Any]:
    items: list[Any] = [
        ChatStreamChunk("", Role.Assistant, None),
        ChatStreamChunk("I'm ", None, None),
        ChatStreamChunk("fine ü🙂", None, None),
        FinishReason.Stop,
    ]
    if include_usage:
        items.append(Usage(3, 16, 19))
    return items


def stream_request(include_usage: bool = True, **kw: Any) -> ChatRequest:
    return ChatRequest(
        model=MODEL,
        messages=[user("How are you?")],
        stream_options=StreamOptions(include_usage=include_usage),
        **kw,
    )


def test_sync_stream_yields_official_order(client: Client, server: ScriptedServer) -> None:
    server.add(Reply.sse(PLAIN_STREAM, pieces=9))
    assert list(client.chat_with_streaming(stream_request(), MODEL)) == expected_plain()
    assert server.received[0].json()["stream"] is True


async def test_async_stream_yields_official_order(
    async_client: AsyncClient, server: ScriptedServer
) -> None:
    server.add(Reply.sse(PLAIN_STREAM, pieces=9))
    items = [item async for item in async_client.chat_with_streaming(stream_request(), MODEL)]
    assert items == expected_plain()


def test_tool_call_deltas_are_assembled(client: Client, server: ScriptedServer) -> None:
    server.add(Reply.sse(TOOL_STREAM))
    items = list(client.chat_with_streaming(stream_request(False, tools=[]), MODEL))
    assert items == [
        ChatStreamChunk("", Role.Assistant, None),
        ChatStreamChunk("</think>\n\n", None, None),
        ToolCall(
            "chatcmpl-tool-1",
            "function",
            FunctionCall("get_weather", '{"location": "Paris, France"}'),
        ),
        FinishReason.ToolCalls,
    ]


async def test_final_response_and_text_stream(
    async_client: AsyncClient, server: ScriptedServer
) -> None:
    server.add(Reply.sse(TOOL_STREAM), Reply.sse(PLAIN_STREAM))
    final = await async_client.chat_with_streaming(
        stream_request(False), MODEL
    ).get_final_response()
    assert final.finish_reason is FinishReason.ToolCalls
    assert final.message.content == "</think>\n\n"
    assert final.tool_calls[0].function.arguments == '{"location": "Paris, France"}'
    stream = async_client.chat_with_streaming(stream_request(), MODEL)
    texts = [text async for text in stream.text_stream]
    assert texts == ["I'm ", "fine ü🙂"]
    final = await stream.get_final_response()
    assert final.usage == Usage(3, 16, 19)
    assert final.id == "c1"


def test_sync_final_response_and_text_stream(client: Client, server: ScriptedServer) -> None:
    server.add(Reply.sse(PLAIN_STREAM), Reply.sse(PLAIN_STREAM))
    with client.chat_with_streaming(stream_request(), MODEL) as stream:
        assert "".join(stream.text_stream) == "I'm fine ü🙂"
    final = client.chat_with_streaming(stream_request(), MODEL).get_final_response()
    assert final.message == TextMessage(Role.Assistant, "I'm fine ü🙂")
    assert final.usage == Usage(3, 16, 19)


def _body(events: list[Any], done: bool = True, sep: bytes = b"\n\n") -> bytes:
    out = b"".join(b"data: " + json.dumps(e).encode() + sep for e in events)
    return out + (b"data: [DONE]" + sep if done else b"")


def _process(pieces: list[bytes], include_usage: bool = True) -> list[Any]:
    processor = StreamProcessor(ChatStreamState(include_usage), 1 << 20)
    items: list[Any] = []
    for piece in pieces:
        items.extend(processor.feed(piece))
    items.extend(processor.finish())
    return items


@pytest.mark.parametrize("sep", [b"\n\n", b"\r\n\r\n", b"\r\r"])
def test_stream_split_at_every_byte_offset(sep: bytes) -> None:
    body = _body(PLAIN_STREAM, sep=sep)
    expected = expected_plain()
    for offset in range(len(body) + 1):
        assert _process([body[:offset], body[offset:]]) == expected, offset


def test_stream_fed_byte_by_byte_with_tools() -> None:
    body = _body(TOOL_STREAM)
    whole = _process([body], include_usage=False)
    assert _process([body[i : i + 1] for i in range(len(body))], include_usage=False) == whole
    assert isinstance(whole[-2], ToolCall)


def test_finish_chunk_with_usage_and_content_loses_nothing() -> None:
    events = [
        chunk({"role": "assistant", "content": "Hi"}),
        {**chunk({"content": " there"}, "stop"), "usage": USAGE},
    ]
    assert _process([_body(events)]) == [
        ChatStreamChunk("Hi", Role.Assistant, None),
        ChatStreamChunk(" there", None, None),
        FinishReason.Stop,
        Usage(3, 16, 19),
    ]


def test_stream_without_finish_or_done_raises_with_partial(
    client: Client, server: ScriptedServer
) -> None:
    server.add(Reply.sse(PLAIN_STREAM[:3], done=False))
    seen: list[Any] = []
    with pytest.raises(IncompleteStreamError) as info:
        for item in client.chat_with_streaming(stream_request(), MODEL):
            seen.append(item)
    assert seen == expected_plain()[:3]
    assert info.value.partial.message.content == "I'm fine ü🙂"


def test_missing_usage_chunk_when_asked_is_incomplete() -> None:
    body = _body(PLAIN_STREAM[:4], done=False)
    with pytest.raises(IncompleteStreamError):
        _process([body], include_usage=True)
    assert _process([body], include_usage=False) == expected_plain(False)


def test_error_event_after_first_token_raises(client: Client, server: ScriptedServer) -> None:
    server.add(
        Reply.sse(
            [PLAIN_STREAM[0], PLAIN_STREAM[1], {"error": "model crashed", "code": "INTERNAL"}],
            done=False,
        )
    )
    with pytest.raises(StreamEventError) as info:
        list(client.chat_with_streaming(stream_request(), MODEL))
    assert info.value.code == "INTERNAL"
    assert len(server.received) == 1


def test_overload_event_before_first_token_is_retried(
    client: Client, server: ScriptedServer
) -> None:
    server.add(
        Reply.sse(
            [PLAIN_STREAM[0], {"error": "model overloaded", "code": "OVERLOADED"}], done=False
        ),
        Reply.sse(PLAIN_STREAM),
    )
    assert list(client.chat_with_streaming(stream_request(), MODEL)) == expected_plain()
    assert len(server.received) == 2


def test_official_single_chunk_classifier() -> None:
    assert stream_chat_item_from_json(chunk(None, usage=USAGE)) == Usage(3, 16, 19)
    assert stream_chat_item_from_json(chunk({}, "length")) is FinishReason.Length
    assert stream_chat_item_from_json(chunk({"role": "assistant", "content": "x"})) == (
        ChatStreamChunk("x", Role.Assistant, None)
    )


def test_break_releases_the_connection(client: Client, server: ScriptedServer) -> None:
    server.add(Reply.sse(PLAIN_STREAM * 1, pieces=5, pause=0.05), Reply.json(CHAT_ANSWER))
    for item in client.chat_with_streaming(stream_request(), MODEL):
        assert item == ChatStreamChunk("", Role.Assistant, None) or item
        break
    # the broken-off connection was dropped; the next call works
    assert client.chat(ChatRequest(model=MODEL, messages=[user("hi")]), MODEL).content


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("request_", "fragment"),
    [
        (ChatRequest(model=MODEL, messages=[]), "messages"),
        (ChatRequest(model=MODEL, messages=[Message(Role.User, [b"bytes"])]), "content[0]"),
        (ChatRequest(model=MODEL, messages=[user("x")], maximum_tokens="10"), "maximum_tokens"),  # type: ignore[arg-type]
        (ChatRequest(model=MODEL, messages=[user("x")], temperature=-1.0), "temperature"),
        (ChatRequest(model=MODEL, messages=[user("x")], tool_choice="sometimes"), "tool_choice"),  # type: ignore[arg-type]
        (ChatRequest(model=MODEL, messages=[Message("robot", "x")]), "role"),  # type: ignore[arg-type]
        (ChatRequest(model=MODEL, messages=["just a string"]), "messages[0]"),  # type: ignore[list-item]
    ],
)
def test_bad_input_is_rejected_before_sending(
    client: Client, server: ScriptedServer, request_: ChatRequest, fragment: str
) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        client.chat(request_, MODEL)
    assert fragment in str(info.value)
    with pytest.raises(InvalidArgumentError):
        client.chat_with_streaming(request_, MODEL)
    assert server.received == []


def test_model_argument_is_required(client: Client, server: ScriptedServer) -> None:
    with pytest.raises(InvalidArgumentError, match="model"):
        client.chat(ChatRequest(model=MODEL, messages=[user("x")]), "")
    with pytest.raises(InvalidArgumentTypeError, match="request"):
        client.chat({"model": MODEL}, MODEL)  # type: ignore[arg-type]
    assert server.received == []


# --------------------------------------------------------------------------- steering


async def test_steering_on_both_clients(server: ScriptedServer) -> None:
    concept_id = "bc31b0c1" * 8
    server.add(
        Reply.json({"id": concept_id}, status=201), Reply.json({"id": concept_id}, status=201)
    )
    request = SteeringConceptCreationRequest(
        examples=[SteeringPairedExample(negative="I appreciate it.", positive="Thanks, fam.")]
    )
    with Client(TOKEN, host=server.url) as c:
        assert c.create_steering_concept(request).id == concept_id
    async with AsyncClient(TOKEN, host=server.url) as ac:
        assert (await ac.create_steering_concept(request)).id == concept_id
    for received in server.received:
        assert received.path == "/steering_concepts"
        assert received.body == (
            b'{"examples": [{"negative": "I appreciate it.", "positive": "Thanks, fam."}]}'
        )


# --------------------------------------------------------------------------- construction


def test_token_sources_and_default_host(monkeypatch: pytest.MonkeyPatch) -> None:
    from aleph_alpha_client import AlephAlphaError

    with pytest.raises(AlephAlphaError, match="ALEPH_ALPHA_API_KEY"):
        Client()
    monkeypatch.setenv("AA_TOKEN", "from-aa")
    assert Client().token == "from-aa"
    monkeypatch.setenv("ALEPH_ALPHA_API_KEY", "from-key")
    assert Client().token == "from-key"
    assert Client(token="arg").token == "arg"
    assert Client(token="arg").host == "https://api.aleph-alpha.com/"
    monkeypatch.setenv("ALEPH_ALPHA_BASE_URL", "http://127.0.0.1:1/v1")
    assert Client().host == "http://127.0.0.1:1/v1/"
    assert "from-key" not in repr(Client())


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/"])
def test_hosts_with_or_without_v1(server: ScriptedServer, suffix: str) -> None:
    server.add(Reply.json(CHAT_ANSWER))
    with Client(TOKEN, server.url + suffix, request_timeout_seconds=None) as c:
        c.chat(ChatRequest(model=MODEL, messages=[user("hi")]), MODEL)
    expected = "/v1/chat/completions" if "v1" in suffix else "/chat/completions"
    assert server.received[0].path == expected


def test_async_client_outside_a_loop_and_across_loops(server: ScriptedServer) -> None:
    server.default = Reply.json(CHAT_ANSWER)
    client = AsyncClient(TOKEN, host=server.url)  # no running loop here

    async def use() -> str:
        async with client:
            response = await client.chat(ChatRequest(model=MODEL, messages=[user("hi")]), MODEL)
        return response.content

    assert asyncio.run(use()) == "I am fine."
    assert asyncio.run(use()) == "I am fine."  # entered again, in a new loop
    with pytest.raises(TypeError, match="async with"):
        with client:  # type: ignore[attr-defined]
            pass


# --------------------------------------------------------------------------- seed examples


def test_seed_simple_and_multi_turn_chat(client: Client, server: ScriptedServer) -> None:
    server.default = Reply.json(CHAT_ANSWER)
    conversation: list[Message | TextMessage] = [
        Message(role=Role.System, content="You are a helpful assistant."),
        Message(role=Role.User, content="What is the capital of Spain?"),
    ]
    response = client.chat(ChatRequest(messages=conversation, model=MODEL), model=MODEL)
    conversation.append(response.message)
    conversation.append(Message(role=Role.User, content="And of France?"))
    client.chat(ChatRequest(messages=conversation, model=MODEL), model=MODEL)
    assert server.received[1].json()["messages"][2] == {
        "role": "assistant",
        "content": "I am fine.",
    }


async def test_seed_async_streaming_with_usage(server: ScriptedServer) -> None:
    server.add(Reply.sse(PLAIN_STREAM, pieces=4))
    async with AsyncClient(token=TOKEN, host=server.url) as client:
        request = ChatRequest(
            messages=[Message(role=Role.User, content="How are you?")],
            model=MODEL,
            stream_options=StreamOptions(include_usage=True),
        )
        usage = None
        text = ""
        async for item in client.chat_with_streaming(request, model=MODEL):
            if isinstance(item, ChatStreamChunk):
                text += item.content
            elif isinstance(item, Usage):
                usage = item
    assert text == "I'm fine ü🙂"
    assert usage == Usage(3, 16, 19)


async def test_async_client_dropped_without_close_leaks_nothing(server: ScriptedServer) -> None:
    import gc
    import warnings

    server.default = Reply.json(CHAT_ANSWER)
    gc.collect()  # what earlier tests left for the collector is not this client's
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = AsyncClient(TOKEN, host=server.url)
        await client.chat(ChatRequest(model=MODEL, messages=[user("hi")]), MODEL)
        del client
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_final_response_of_a_stream_closed_early_is_an_error(
    client: Client, server: ScriptedServer
) -> None:
    from aleph_alpha_client import StreamError

    stream = client.chat_with_streaming(stream_request(), MODEL)
    stream.close()
    with pytest.raises(StreamError, match="closed before"):
        stream.get_final_response()
    assert server.received == []  # nothing was sent: streams are lazy

    one_event_each = Reply.sse(PLAIN_STREAM)
    body = one_event_each.chunks[0]
    one_event_each.chunks = [part + b"\n\n" for part in body.split(b"\n\n") if part]
    one_event_each.pause = 0.3  # the third event comes long after the second was read
    server.add(one_event_each)
    stream = client.chat_with_streaming(stream_request(), MODEL)
    assert next(stream) == ChatStreamChunk("", Role.Assistant, None)
    assert next(stream) == ChatStreamChunk("I'm ", None, None)
    stream.close()
    with pytest.raises(IncompleteStreamError) as info:
        stream.get_final_response()
    assert info.value.partial.message.content == "I'm "


def test_retry_after_dates_without_zone_are_utc() -> None:
    import email.utils

    from aleph_alpha_client._retry import parse_retry_after

    now = 1_700_000_000.0
    stamp = email.utils.formatdate(now + 30, usegmt=True).replace("GMT", "-0000")
    assert parse_retry_after({"retry-after": stamp}, now=now) == pytest.approx(30, abs=1)


def test_dir_lists_the_lazy_async_client() -> None:
    import aleph_alpha_client

    assert "AsyncClient" in dir(aleph_alpha_client)


async def test_official_process_chat_stream_assembles_and_never_ends_short() -> None:
    from aleph_alpha_client.chat import process_chat_stream

    async def chunks(events: list[Any]) -> Any:
        for event in events:
            yield event

    items = [item async for item in process_chat_stream(chunks(TOOL_STREAM))]
    assert items[-2:] == [
        ToolCall(
            "chatcmpl-tool-1",
            "function",
            FunctionCall("get_weather", '{"location": "Paris, France"}'),
        ),
        FinishReason.ToolCalls,
    ]
    seen: list[Any] = []
    with pytest.raises(IncompleteStreamError):
        async for item in process_chat_stream(chunks(PLAIN_STREAM[:3])):
            seen.append(item)
    assert seen == expected_plain()[:3]
