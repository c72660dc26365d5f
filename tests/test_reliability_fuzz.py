"""Fuzzing: whatever the server sends, only our typed errors come out.

Guarantees (docs/reliability.md):

* The stream processor (SSE decoding plus the chat / completion accumulators), fed arbitrary
  bytes split anywhere, or arbitrary JSON chunks shaped like the API's, either yields items
  or raises a subclass of ``AlephAlphaError``; never ``KeyError``/``TypeError``/... . When it
  yields, the final response can be built.
* Every response parser of the endpoint table (``Endpoint.parse`` through
  ``_wire.parse_model``; the chat row is ``ChatResponse.from_json``), fed arbitrary JSON and
  mutations of a valid answer, returns a model or raises ``AlephAlphaError``.
* ``parse_json``, ``error_for_status``, ``stream_content_type_error`` and
  ``parse_retry_after`` never raise a foreign exception on any bytes or header value.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from aleph_alpha_client import _endpoints as ep
from aleph_alpha_client._exceptions import (
    AlephAlphaError,
    APIResponseValidationError,
    APIStatusError,
    StreamError,
)
from aleph_alpha_client._retry import parse_retry_after
from aleph_alpha_client._streaming import ChatStreamState, CompletionStreamState, StreamProcessor
from aleph_alpha_client._wire import (
    error_for_status,
    parse_json,
    parse_model,
    stream_content_type_error,
)

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ------------------------------------------------------------------ strategies

leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=6),
    st.sampled_from([10**400, -(10**400), 2**63, "", "\x00", "[DONE]", "null"]),
)
json_values = st.recursive(
    leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the intended value; sometimes any JSON value in its place."""
    return st.one_of(strategy, strategy, strategy, leaf, json_values)


small_text = st.text(max_size=6)
tool_call = st.fixed_dictionaries(
    {},
    optional={
        "index": maybe(st.integers(0, 2)),
        "id": maybe(small_text),
        "type": maybe(st.just("function")),
        "function": maybe(
            st.fixed_dictionaries(
                {}, optional={"name": maybe(small_text), "arguments": maybe(small_text)}
            )
        ),
    },
)
chat_delta = st.fixed_dictionaries(
    {},
    optional={
        "role": maybe(st.sampled_from(["assistant", "user", "system", "tool"])),
        "content": maybe(small_text),
        "tool_calls": maybe(st.lists(maybe(tool_call), max_size=3)),
    },
)
chat_choice = st.fixed_dictionaries(
    {},
    optional={
        "index": maybe(st.integers(0, 1)),
        "delta": maybe(chat_delta),
        "finish_reason": maybe(st.sampled_from(["stop", "length", "tool_calls", "content_filter"])),
    },
)
chat_usage = st.fixed_dictionaries(
    {
        "completion_tokens": maybe(st.integers(0, 9)),
        "prompt_tokens": maybe(st.integers(0, 9)),
        "total_tokens": maybe(st.integers(0, 9)),
    }
)
chat_chunk = st.fixed_dictionaries(
    {},
    optional={
        "id": maybe(small_text),
        "model": maybe(small_text),
        "created": maybe(st.integers(0, 10)),
        "choices": maybe(st.lists(maybe(chat_choice), max_size=2)),
        "usage": maybe(chat_usage),
        "error": maybe(small_text),
        "code": maybe(small_text),
    },
)
completion_chunk = st.fixed_dictionaries(
    {"type": maybe(st.sampled_from(["stream_chunk", "stream_summary", "completion_summary"]))},
    optional={
        "index": maybe(st.integers(0, 2)),
        "completion": maybe(small_text),
        "raw_completion": maybe(small_text),
        "completion_tokens": maybe(st.lists(small_text, max_size=2)),
        "log_probs": maybe(st.lists(st.dictionaries(small_text, st.floats(-5, 0)), max_size=2)),
        "model_version": maybe(small_text),
        "finish_reason": maybe(small_text),
        "num_tokens_prompt_total": maybe(st.integers(0, 9)),
        "num_tokens_generated": maybe(st.integers(0, 9)),
        "optimized_prompt": maybe(
            st.lists(
                st.fixed_dictionaries(
                    {"type": maybe(st.sampled_from(["text", "image", "token_ids"]))},
                    optional={"data": maybe(small_text)},
                ),
                max_size=2,
            )
        ),
        "error": maybe(small_text),
    },
)

SSE_TOKENS = [
    b"data: ",
    b"data:",
    b"event: error\n",
    b"event: message\n",
    b": comment\n",
    b"id: 1\n",
    b"retry: 5\n",
    b"\n",
    b"\r\n",
    b"\r",
    b"\n\n",
    b"[DONE]",
    b'{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}',
    b'{"choices":[{"index":0,"delta":{"content":"a\xc3\xbc"}}]}',
    b'{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{"}}]}}]}',
    b'{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}',
    b'{"choices":[],"usage":{"completion_tokens":1,"prompt_tokens":1,"total_tokens":2}}',
    b'{"type":"stream_chunk","index":0,"completion":"x"}',
    b'{"type":"completion_summary","num_tokens_prompt_total":1,"num_tokens_generated":1}',
    b'{"error":"overloaded","code":"OVERLOADED"}',
    b"\xf0\x9f",
    b"\x8c\x8d",
    b"\xef\xbb\xbf",
    b"{",
    b"}",
    b"[",
    b'"',
]
sse_bytes = st.lists(
    st.one_of(st.sampled_from(SSE_TOKENS), st.binary(max_size=4)), max_size=30
).map(b"".join)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


def drive(state: Any, pieces: list[bytes]) -> list[Any]:
    """Feed pieces and finish, iterating every returned batch of items; build the answer."""
    processor = StreamProcessor(state, 64 * 1024)
    items: list[Any] = []
    for piece in pieces:
        items.extend(iter(processor.feed(piece)))
    items.extend(iter(processor.finish()))
    state.final_response()
    return items


def only_typed_errors(state: Any, pieces: list[bytes]) -> None:
    try:
        drive(state, pieces)
    except AlephAlphaError as err:
        partial = getattr(err, "partial", None)
        assert partial is None or partial is not err
        str(err)


def sse(events: list[Any], done: bool) -> bytes:
    body = b"".join(
        b"data: " + json.dumps(event, ensure_ascii=False).encode() + b"\n\n" for event in events
    )
    return body + (b"data: [DONE]\n\n" if done else b"")


def _paths(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _paths(value, (*path, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from _paths(value, (*path, index))


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


@st.composite
def mutated(draw: st.DrawFn, sample: Any) -> Any:
    """A valid answer with one to three values replaced by arbitrary JSON or removed."""
    doc = copy.deepcopy(sample)
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(doc))
        leaves = [p for p in paths if p and not isinstance(_at(doc, p), (dict, list))]
        path = draw(st.sampled_from(leaves if leaves and draw(st.booleans()) else paths))
        value = draw(st.one_of(leaf, json_values))
        if not path:
            doc = value
            continue
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
    return doc


# ------------------------------------------------------------------ stream processing


@FUZZ
@given(data=sse_bytes, cuts=st.lists(st.integers(0, 10_000), max_size=6), usage=st.booleans())
def test_chat_processor_arbitrary_bytes(data: bytes, cuts: list[int], usage: bool) -> None:
    only_typed_errors(ChatStreamState(usage), split(data, cuts))


@FUZZ
@given(data=sse_bytes, cuts=st.lists(st.integers(0, 10_000), max_size=6))
def test_completion_processor_arbitrary_bytes(data: bytes, cuts: list[int]) -> None:
    only_typed_errors(CompletionStreamState(), split(data, cuts))


@FUZZ
@given(
    events=st.lists(st.one_of(chat_chunk, json_values), max_size=6),
    done=st.booleans(),
    usage=st.booleans(),
    cuts=st.lists(st.integers(0, 10_000), max_size=3),
)
def test_chat_processor_arbitrary_chunks(
    events: list[Any], done: bool, usage: bool, cuts: list[int]
) -> None:
    only_typed_errors(ChatStreamState(usage), split(sse(events, done), cuts))


@FUZZ
@given(
    events=st.lists(st.one_of(completion_chunk, json_values), max_size=6),
    done=st.booleans(),
    cuts=st.lists(st.integers(0, 10_000), max_size=3),
)
def test_completion_processor_arbitrary_chunks(
    events: list[Any], done: bool, cuts: list[int]
) -> None:
    only_typed_errors(CompletionStreamState(), split(sse(events, done), cuts))


@FUZZ
@given(events=st.lists(chat_chunk, max_size=8))
def test_chat_state_items_then_final_response(events: list[Any]) -> None:
    """When no error comes out, the final response holds exactly the streamed text."""
    state = ChatStreamState(False)
    try:
        items = drive(state, [sse(events, True)])
    except AlephAlphaError:
        return
    text = "".join(getattr(i, "content", "") or "" for i in items if hasattr(i, "content"))
    assert state.final_response().message.content == text


CHAT_STREAMS: list[list[Any]] = [
    [
        {
            "id": "c",
            "model": "m",
            "created": 1,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}],
        },
        {"choices": [{"index": 0, "delta": {"content": "Hel"}}]},
        {"choices": [{"index": 0, "delta": {"content": "lo"}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {"choices": [], "usage": {"completion_tokens": 2, "prompt_tokens": 1, "total_tokens": 3}},
    ],
    [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": None}}]},
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "a",
                                "type": "function",
                                "function": {"name": "f", "arguments": ""},
                            },
                            {
                                "index": 1,
                                "id": "b",
                                "type": "function",
                                "function": {"name": "g", "arguments": "{"},
                            },
                        ]
                    },
                }
            ]
        },
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]},
                }
            ]
        },
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": 1, "function": {"arguments": "}"}}]},
                }
            ]
        },
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ],
]
COMPLETION_STREAMS: list[list[Any]] = [
    [
        {
            "type": "stream_chunk",
            "index": 0,
            "completion": "a",
            "raw_completion": "a",
            "completion_tokens": ["a"],
            "log_probs": [{"a": -0.1}],
        },
        {"type": "stream_chunk", "index": 1, "completion": "b"},
        {
            "type": "stream_summary",
            "index": 0,
            "model_version": "1",
            "finish_reason": "maximum_tokens",
        },
        {
            "type": "stream_summary",
            "index": 1,
            "model_version": "1",
            "finish_reason": "end_of_text",
        },
        {
            "type": "completion_summary",
            "num_tokens_prompt_total": 1,
            "num_tokens_generated": 2,
            "optimized_prompt": [{"type": "text", "data": "x"}, {"type": "token_ids", "data": [1]}],
        },
    ]
]


@settings(FUZZ, max_examples=400)
@given(
    events=st.sampled_from(CHAT_STREAMS).flatmap(mutated),
    done=st.booleans(),
    usage=st.booleans(),
)
@example(
    events=[
        CHAT_STREAMS[1][0],
        {"choices": [{"delta": {"tool_calls": [{"function": {"arguments": 5}}]}}]},
    ],
    done=True,
    usage=False,
)
def test_chat_processor_mutated_streams(events: Any, done: bool, usage: bool) -> None:
    if not isinstance(events, list):
        events = [events]
    only_typed_errors(ChatStreamState(usage), [sse(events, done)])


@settings(FUZZ, max_examples=400)
@given(events=st.sampled_from(COMPLETION_STREAMS).flatmap(mutated), done=st.booleans())
@example(events=[{"type": "stream_chunk", "index": 0, "completion": 5}], done=False)
@example(
    events=[
        {"type": "stream_chunk", "index": 0, "completion": "a"},
        {"type": "stream_chunk", "index": "0", "completion": "a"},
    ],
    done=False,
)
def test_completion_processor_mutated_streams(events: Any, done: bool) -> None:
    if not isinstance(events, list):
        events = [events]
    only_typed_errors(CompletionStreamState(), [sse(events, done)])


def test_deeply_nested_event_is_a_typed_error() -> None:
    body = b"data: " + b"[" * 60_000 + b"\n\n"  # below the 64 KiB event limit
    with pytest.raises(StreamError):
        drive(ChatStreamState(False), [body])


# ------------------------------------------------------------------ response parsers


SAMPLES: dict[str, Any] = {
    "chat/completions": {
        "id": "c",
        "model": "m",
        "created": 1,
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": "hi",
                    "tool_calls": [
                        {
                            "id": "t",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
            }
        ],
        "usage": {"completion_tokens": 1, "prompt_tokens": 2, "total_tokens": 3},
    },
    "complete": {
        "model_version": "1",
        "completions": [
            {
                "log_probs": [{"a": -1.0}],
                "completion": "x",
                "raw_completion": "x",
                "completion_tokens": ["x"],
                "finish_reason": "maximum_tokens",
            }
        ],
        "num_tokens_prompt_total": 1,
        "num_tokens_generated": 1,
        "optimized_prompt": [
            {"type": "text", "data": "Hello"},
            {"type": "token_ids", "data": [1]},
            {"type": "image", "data": "aGk="},
        ],
    },
    "tokenize": {"tokens": ["a"], "token_ids": [1]},
    "detokenize": {"result": "a"},
    "embed": {
        "model_version": "1",
        "embeddings": {"layer_0": {"mean": [0.1]}},
        "tokens": ["a"],
        "num_tokens_prompt_total": 1,
    },
    "embeddings": {
        "object": "list",
        "data": [{"object": "embedding", "embedding": [0.1], "index": 0}],
        "model": "m",
        "usage": {"prompt_tokens": 1, "total_tokens": 1},
    },
    "semantic_embed": {"model_version": "1", "embedding": [1.0], "num_tokens_prompt_total": 1},
    "batch_semantic_embed": {
        "model_version": "1",
        "embeddings": [[1.0]],
        "num_tokens_prompt_total": 1,
    },
    "instructable_embed": {"model_version": "1", "embedding": [1.0], "num_tokens_prompt_total": 1},
    "evaluate": {
        "model_version": "1",
        "result": {"log_probability": -1.0, "correct_greedy": True},
        "num_tokens_prompt_total": 1,
    },
    "explain": {
        "model_version": "1",
        "explanations": [
            {
                "target": " x",
                "items": [
                    {
                        "type": "image",
                        "scores": [
                            {"rect": {"top": 0, "left": 0, "width": 1, "height": 1}, "score": 1}
                        ],
                    },
                    {"type": "text", "scores": [{"start": 0, "length": 1, "score": 0.5}]},
                    {"type": "token_ids", "scores": [0.1]},
                    {"type": "target", "scores": [{"start": 0, "length": 1, "score": 0.3}]},
                ],
            }
        ],
    },
    "rerank": {
        "results": [{"index": 0, "relevance_score": 0.5}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 1},
    },
    "translate": {
        "translation": "a",
        "score": 1.0,
        "segments": [{"source": "x", "translation": "a", "score": 0.5}],
        "num_tokens_prompt_total": 0,
        "num_tokens_generated": 0,
    },
    "steering_concepts": {"id": "c"},
}

ENDPOINTS = sorted(
    (value for value in vars(ep).values() if isinstance(value, ep.Endpoint)),
    key=lambda e: e.path,
)


def test_every_endpoint_has_a_sample() -> None:
    assert {e.path for e in ENDPOINTS} == set(SAMPLES)
    for endpoint in ENDPOINTS:  # the samples are valid answers
        parse_model(endpoint.parse, SAMPLES[endpoint.path], 200, b"{}")


def _parse(endpoint: ep.Endpoint[Any], data: Any) -> None:
    try:
        parse_model(endpoint.parse, data, 200, json.dumps(data).encode())
    except AlephAlphaError as err:
        assert isinstance(err, APIResponseValidationError)
        str(err)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.path)
def test_parser_arbitrary_json(endpoint: ep.Endpoint[Any]) -> None:
    @settings(FUZZ, max_examples=60)
    @given(data=json_values)
    def check(data: Any) -> None:
        _parse(endpoint, data)

    check()


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.path)
def test_parser_mutated_answers(endpoint: ep.Endpoint[Any]) -> None:
    @settings(FUZZ, max_examples=120)
    @given(data=mutated(SAMPLES[endpoint.path]))
    def check(data: Any) -> None:
        _parse(endpoint, data)

    check()


# ------------------------------------------------------------------ wire helpers

content_types = st.sampled_from(
    ["", "application/json", "text/html", "text/plain; charset=utf-8", "text/event-stream"]
)


@FUZZ
@given(
    body=st.binary(max_size=64) | json_values.map(lambda v: json.dumps(v).encode()),
    content_type=content_types,
    status=st.integers(200, 299),
)
def test_parse_json_only_typed_errors(body: bytes, content_type: str, status: int) -> None:
    try:
        parse_json(status, {"content-type": content_type}, body)
    except APIResponseValidationError as err:
        assert f"HTTP {status}" in str(err)


def test_parse_json_deeply_nested() -> None:
    with pytest.raises(APIResponseValidationError):
        parse_json(200, {"content-type": "application/json"}, b"[" * 100_000)


@FUZZ
@given(
    body=st.binary(max_size=64) | json_values.map(lambda v: json.dumps(v).encode()),
    status=st.integers(400, 599),
    headers=st.dictionaries(
        st.sampled_from(["x-request-id", "retry-after", "content-type"]), st.text(max_size=8)
    ),
)
def test_error_for_status_never_raises(body: bytes, status: int, headers: dict[str, str]) -> None:
    err = error_for_status(status, headers, body, "http://127.0.0.1/x")
    assert isinstance(err, APIStatusError)
    assert err.args[0] == status
    str(err)
    repr(err)
    stream_err = stream_content_type_error(200, headers, body)
    assert isinstance(stream_err, AlephAlphaError)
    str(stream_err)


def test_error_for_status_deeply_nested_body() -> None:
    err = error_for_status(503, {}, b"[" * 100_000, "http://127.0.0.1/x")
    assert isinstance(err, APIStatusError)
    assert isinstance(stream_content_type_error(200, {}, b"[" * 100_000), AlephAlphaError)


@FUZZ
@given(
    value=st.one_of(
        st.text(max_size=40),
        st.sampled_from(
            [
                "0",
                "-1",
                "1e309",
                "nan",
                "inf",
                "Wed, 21 Oct 2015 07:28:00 GMT",
                "Mon, 99 Foo 0000 00:00:00 GMT",
            ]
        ),
    ),
    name=st.sampled_from(["retry-after", "retry-after-ms", "Retry-After"]),
)
def test_parse_retry_after_never_raises(value: str, name: str) -> None:
    result = parse_retry_after({name: value})
    assert result is None or (result >= 0 and result == result and result != float("inf"))
