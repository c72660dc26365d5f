"""Structured answers: typed errors of parsed(), strict schemas, partial objects while streaming."""

from __future__ import annotations

import itertools
import json
from typing import Any, Optional

import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aleph_alpha_client import (
    AsyncStructuredStream,
    ChatRequest,
    ChatResponse,
    FinishReason,
    JSONSchema,
    Message,
    Role,
    StructuredOutputError,
    StructuredStream,
    TextMessage,
)
from aleph_alpha_client._partial_json import parse_partial
from aleph_alpha_client.emulator import Emulator
from conftest import run_client

MODEL = "llama-3.1-8b-instruct"


class City(pydantic.BaseModel):
    """A city."""

    name: str
    population: int
    districts: list[str]
    mayor: Optional[str] = None


def answer(content: str, finish: FinishReason = FinishReason.Stop) -> ChatResponse:
    return ChatResponse(finish_reason=finish, message=TextMessage(Role.Assistant, content))


def test_parsed_ok() -> None:
    text = '{"name": "Bonn", "population": 3, "districts": []}'
    assert answer(text).parsed(City) == City(name="Bonn", population=3, districts=[])


def test_parsed_cut_by_length_keeps_the_text() -> None:
    with pytest.raises(StructuredOutputError, match="finish_reason 'length'") as info:
        answer('{"name": "Bo', FinishReason.Length).parsed(City)
    assert info.value.reason == "length"
    assert info.value.text == '{"name": "Bo'


def test_parsed_invalid_json_and_wrong_shape() -> None:
    with pytest.raises(StructuredOutputError, match="not valid JSON") as info:
        answer("Sure! {").parsed(City)
    assert info.value.reason == "invalid_json"
    assert info.value.text == "Sure! {"
    with pytest.raises(StructuredOutputError, match="population") as info:
        answer('{"name": "Bonn", "districts": []}').parsed(City)
    assert info.value.reason == "validation"


def test_from_pydantic_default_is_official_and_strict_true_normalises() -> None:
    official = JSONSchema.from_pydantic(City)
    assert official.strict is True
    assert official.schema == City.model_json_schema()
    strict = JSONSchema.from_pydantic(City, strict=True).schema
    assert strict["additionalProperties"] is False
    assert strict["required"] == ["name", "population", "districts", "mayor"]
    assert "default" not in json.dumps(strict)
    loose = JSONSchema.from_pydantic(City, strict=False)
    assert loose.strict is False


def _prefixes_are_valid(text: str) -> None:
    full = json.loads(text)
    previous: Any = None
    for i in range(len(text) + 1):
        value = parse_partial(text[:i])
        json.dumps(value)  # always a JSON value
        if i == len(text):
            assert value == full
        previous = value
    assert previous == full


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda children: st.lists(children) | st.dictionaries(st.text(), children),
        max_leaves=12,
    )
)
def test_partial_json_prefixes(value: Any) -> None:
    _prefixes_are_valid(json.dumps(value))
    _prefixes_are_valid(json.dumps(value, indent=1, ensure_ascii=False))


def test_partial_json_examples() -> None:
    assert parse_partial("") is None
    assert parse_partial('{"a": [1, 2') == {"a": [1]}
    assert parse_partial('{"a": [1, 2,') == {"a": [1, 2]}
    assert parse_partial('{"a": "he') == {"a": "he"}
    assert parse_partial('{"a": "x\\u00') == {"a": "x"}
    assert parse_partial('{"a": tr') == {}
    assert parse_partial('{"a"') == {}


def request() -> ChatRequest:
    return ChatRequest(
        model=MODEL,
        messages=[Message(Role.User, "Describe a city")],
        response_format=City,
    )


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_structured_stream_grows_then_validates(aleph_alpha_emulator: Emulator, mode: str) -> None:
    def go(c: Any) -> Any:
        stream = c.chat_with_streaming(request(), MODEL)
        if mode == "sync":
            structured = StructuredStream(stream, City)
            partials = list(structured)
            return partials, structured.parsed

        async def collect() -> Any:
            structured = AsyncStructuredStream(stream, City)
            partials = [p async for p in structured]
            return partials, await structured.get_parsed()

        return collect()

    partials, parsed = run_client(mode, aleph_alpha_emulator.url, go)
    assert isinstance(parsed, City)
    assert len(partials) > 2
    assert partials[-1] == parsed.model_dump(exclude_unset=True) or partials[-1] == json.loads(
        parsed.model_dump_json()
    )
    for partial in partials:
        json.dumps(partial)
        assert isinstance(partial, dict)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_structured_stream_cut_by_length(aleph_alpha_emulator: Emulator, mode: str) -> None:
    cut = ChatRequest(
        model=MODEL,
        messages=[Message(Role.User, "Describe a city")],
        response_format=City,
        maximum_tokens=3,
    )

    def go(c: Any) -> Any:
        stream = c.chat_with_streaming(cut, MODEL)
        if mode == "sync":
            return list(StructuredStream(stream, City))

        async def collect() -> Any:
            return [p async for p in AsyncStructuredStream(stream, City)]

        return collect()

    with pytest.raises(StructuredOutputError) as info:
        run_client(mode, aleph_alpha_emulator.url, go)
    assert info.value.reason == "length"
    assert info.value.text


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_parsed_over_the_emulator(aleph_alpha_emulator: Emulator, mode: str) -> None:
    strict = ChatRequest(
        model=MODEL,
        messages=[Message(Role.User, "Describe a city")],
        response_format=JSONSchema.from_pydantic(City, strict=True),
    )
    response = run_client(mode, aleph_alpha_emulator.url, lambda c: c.chat(strict, MODEL))
    assert isinstance(response.parsed(City), City)


def test_parsed_null_means_the_default_of_a_strict_schema() -> None:
    # strict mode makes optional fields nullable: null stands for the default
    class Town(pydantic.BaseModel):
        name: str
        size: int = 1
        mayor: Optional[str] = None

    town = answer('{"name": "Bonn", "size": null, "mayor": null}').parsed(Town)
    assert town == Town(name="Bonn")
    with pytest.raises(StructuredOutputError, match="name"):
        answer('{"name": null, "size": 2, "mayor": null}').parsed(Town)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_structured_stream_of_n_choices_follows_the_first(
    aleph_alpha_emulator: Emulator, mode: str
) -> None:
    two = ChatRequest(
        model=MODEL,
        messages=[Message(Role.User, "Describe a city")],
        response_format=City,
        n=2,
    )

    def go(c: Any) -> Any:
        stream = c.chat_with_streaming(two, MODEL)
        if mode == "sync":
            structured = StructuredStream(stream, City)
            return list(structured), structured.parsed

        async def collect() -> Any:
            structured = AsyncStructuredStream(stream, City)
            return [p async for p in structured], await structured.get_parsed()

        return collect()

    partials, parsed = run_client(mode, aleph_alpha_emulator.url, go)
    assert isinstance(parsed, City)
    assert partials[-1] == json.loads(parsed.model_dump_json(exclude_unset=True))
    for before, after in itertools.pairwise(partials):  # each step extends the one before
        assert set(before) <= set(after)
