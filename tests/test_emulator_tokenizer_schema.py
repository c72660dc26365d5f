"""The emulator's tokenizer (reversible, agrees with HF tokenizers) and schema example values."""

from __future__ import annotations

import enum
import json
from typing import Any, Literal, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aleph_alpha_client.emulator import Emulator, handle
from aleph_alpha_client.emulator import tokenizer as tok
from aleph_alpha_client.emulator.schema import example_for_schema
from test_emulator_helpers import Http


@given(st.text(max_size=200))
def test_decode_of_encode_is_identity(text: str) -> None:
    assert tok.decode(tok.encode(text)) == text


def test_common_words_are_single_tokens() -> None:
    assert [tok.id_to_token(i) for i in tok.encode("Hello, the capital of Spain")] == [
        "Hello",
        ",",
        "Ġthe",
        "Ġcapital",
        "Ġof",
        "ĠSpain",
    ]
    assert tok.encode("") == []
    assert tok.VOCAB_SIZE > 256


def test_handler_tokenize_matches_module() -> None:
    body = json.dumps(
        {"prompt": "a b", "tokens": True, "token_ids": True, "model": "luminous-base"}
    )
    response = handle("POST", "/tokenize", {}, body.encode())
    assert response.json() == {
        "tokens": [tok.id_to_token(i) for i in tok.encode("a b")],
        "token_ids": tok.encode("a b"),
    }


@pytest.fixture(scope="module")
def hf_tokenizer() -> Any:
    tokenizers = pytest.importorskip("tokenizers")
    with Emulator() as emu:
        conn = Http(emu)
        try:
            text = conn.get("/models/luminous-base/tokenizer").body.decode()
        finally:
            conn.close()
    return tokenizers.Tokenizer.from_str(text)


SAMPLES = [
    "Hello",
    "Hello, World!",
    "  leading and  double  spaces ",
    "tabs\tand\nnewlines\n\n\r\n",
    "Grüße aus Köln 😀 — 123abc ½ ⅓",
    "don't stop believing",
    "日本語のテキスト",
    "\u00a0non-breaking\u2028separator\x1cfile",
    "",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_hf_tokenizer_agrees(hf_tokenizer: Any, text: str) -> None:
    ids = tok.encode(text)
    assert hf_tokenizer.encode(text).ids == ids
    assert hf_tokenizer.decode(ids) == text


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=60))
def test_hf_tokenizer_agrees_on_any_text(hf_tokenizer: Any, text: str) -> None:
    ids = tok.encode(text)
    assert hf_tokenizer.encode(text).ids == ids
    assert hf_tokenizer.decode(ids) == text


@settings(max_examples=300, deadline=None)
@given(ids=st.lists(st.integers(0, tok.VOCAB_SIZE - 1), max_size=10))
def test_hf_decode_agrees_on_any_ids(hf_tokenizer: Any, ids: list[int]) -> None:
    # also where ids split a UTF-8 sequence: both replace it with U+FFFD the same way
    assert hf_tokenizer.decode(ids) == tok.decode(ids)


# -- schema examples -------------------------------------------------------------------------


def test_schema_examples_for_hand_written_schemas() -> None:
    assert example_for_schema({"type": "integer", "minimum": 50, "maximum": 60}) == 50
    assert example_for_schema({"type": "integer", "exclusiveMaximum": 3}) == 2
    assert example_for_schema({"type": "number", "minimum": 0, "maximum": 1}) == 1
    assert example_for_schema({"type": "integer", "multipleOf": 5, "minimum": 43}) == 45
    assert example_for_schema({"type": "string", "maxLength": 3}) == "exa"
    assert len(example_for_schema({"type": "string", "minLength": 40})) == 40
    assert example_for_schema({"type": "string", "format": "date"}) == "2024-01-01"
    assert example_for_schema({"type": "array", "maxItems": 0}) == []
    assert (
        example_for_schema({"type": "array", "items": {"type": "boolean"}, "minItems": 3})
        == [True] * 3
    )
    assert example_for_schema({"type": ["null", "string"]}, "city") == "Paris"
    assert example_for_schema({"allOf": [{"$ref": "#/$defs/A"}], "$defs": {"A": {"const": 1}}}) == 1
    recursive = {
        "$defs": {"Node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/Node"}}}},
        "$ref": "#/$defs/Node",
    }
    value = example_for_schema(recursive)
    depth = 0
    while isinstance(value, dict) and "child" in value:
        value, depth = value["child"], depth + 1
    assert depth > 1


def test_schema_examples_validate_against_pydantic_models() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Color(enum.Enum):
        red = "red"
        blue = "blue"

    class Fin(pydantic.BaseModel):
        count: int = pydantic.Field(ge=1, le=4)
        length_cm: float = pydantic.Field(gt=0.5)

    class Fish(pydantic.BaseModel):
        """A fish."""

        name: str = pydantic.Field(min_length=3, max_length=12)
        kind: Literal["clownfish", "tang"]
        color: Color
        fins: list[Fin] = pydantic.Field(min_length=2)
        friend: Optional[Fish] = None
        tags: dict[str, int]
        home: tuple[str, int]
        nickname: str | None
        weight: float = 1.5

    schema = Fish.model_json_schema()
    value = example_for_schema(schema)
    fish = Fish.model_validate(value)
    assert len(fish.fins) >= 2
    assert fish.nickname is not None
    assert json.loads(json.dumps(value)) == value


def test_chat_structured_output_validates_with_pydantic(aleph_alpha_emulator: Emulator) -> None:
    pydantic = pytest.importorskip("pydantic")

    class Aquarium(pydantic.BaseModel):
        name: str
        fish_count: int = pydantic.Field(ge=0)
        species: list[str]
        heated: bool

    body = {
        "model": "qwen3-32b-tool",
        "messages": [{"role": "user", "content": "Describe an aquarium"}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "schema": Aquarium.model_json_schema(),
                "name": "Aquarium",
                "description": None,
                "strict": True,
            },
        },
    }
    conn = Http(aleph_alpha_emulator)
    try:
        reply = conn.post("/chat/completions", body).json()
    finally:
        conn.close()
    content = reply["choices"][0]["message"]["content"]
    aquarium = Aquarium.model_validate_json(content)
    assert aquarium.species


# -- robustness: the handlers answer every body with a status, never an exception ------------

_FIELDS = [
    "model",
    "prompt",
    "prompts",
    "messages",
    "maximum_tokens",
    "n",
    "log_probs",
    "echo",
    "tokens",
    "token_ids",
    "stop_sequences",
    "stream",
    "stream_options",
    "tools",
    "tool_choice",
    "response_format",
    "layers",
    "pooling",
    "normalize",
    "representation",
    "compress_to_size",
    "input",
    "instruction",
    "dimensions",
    "encoding_format",
    "completion_expected",
    "target",
    "prompt_granularity",
    "target_granularity",
    "postprocessing",
    "query",
    "documents",
    "top_n",
    "source",
    "target_language",
    "examples",
    "steering_concepts",
]
_MODELS = ["luminous-base", "qwen3-32b-tool", "pharia-1-embedding-4608-control", "x"]
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 300)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "data",
                    "role",
                    "content",
                    "function",
                    "name",
                    "text",
                    "include_usage",
                    "schema",
                    "json_schema",
                    "negative",
                    "positive",
                ]
            ),
            inner,
            max_size=3,
        )
    ),
    max_leaves=8,
)


@settings(max_examples=400, deadline=None)
@given(
    route=st.sampled_from(
        [
            "complete",
            "chat/completions",
            "embed",
            "semantic_embed",
            "batch_semantic_embed",
            "instructable_embed",
            "embeddings",
            "evaluate",
            "explain",
            "tokenize",
            "detokenize",
            "rerank",
            "translate",
            "steering_concepts",
        ]
    ),
    model=st.sampled_from(_MODELS),
    fields=st.dictionaries(st.sampled_from(_FIELDS), _json_values, max_size=6),
)
def test_handlers_never_crash(route: str, model: str, fields: dict[str, Any]) -> None:
    body = json.dumps({"model": model, **fields}).encode()
    response = handle("POST", f"/v1/{route}", {}, body)
    assert response.status in (200, 201, 400)
    if response.status == 400:
        assert set(response.json()) == {"error", "code"}


_TEXT = [{"type": "text", "data": "hello world", "controls": []}]
_VALID: dict[str, dict[str, Any]] = {
    "complete": {"prompt": _TEXT, "maximum_tokens": 5, "model": "luminous-base"},
    "chat/completions": {
        "model": "qwen3-32b-tool",
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [
            {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
        ],
    },
    "embed": {"prompt": _TEXT, "layers": [0], "pooling": ["mean"], "model": "luminous-base"},
    "semantic_embed": {"prompt": _TEXT, "representation": "query", "model": "luminous-base"},
    "batch_semantic_embed": {
        "prompts": [_TEXT],
        "representation": "query",
        "model": "luminous-base",
    },
    "instructable_embed": {
        "input": _TEXT,
        "instruction": "x",
        "model": "pharia-1-embedding-4608-control",
    },
    "embeddings": {"input": "x", "model": "luminous-base"},
    "evaluate": {"prompt": _TEXT, "completion_expected": "x", "model": "luminous-base"},
    "explain": {"prompt": _TEXT, "target": " x", "model": "luminous-base"},
    "tokenize": {"prompt": "x", "tokens": True, "token_ids": True, "model": "luminous-base"},
    "detokenize": {"token_ids": [1, 2], "model": "luminous-base"},
    "rerank": {"query": "x", "documents": ["x"], "model": "bge-reranker-v2-m3"},
    "translate": {"model": "pharia-1-mt-translation", "source": "x", "target_language": "de"},
    "steering_concepts": {"examples": [{"negative": "a", "positive": "b"}]},
}


@pytest.mark.parametrize("route", sorted(_VALID))
def test_valid_base_bodies_succeed(route: str) -> None:
    response = handle("POST", route, {}, json.dumps(_VALID[route]).encode())
    assert response.status in (200, 201)


@settings(max_examples=600, deadline=None)
@given(
    route=st.sampled_from(sorted(_VALID)),
    overrides=st.dictionaries(st.sampled_from(_FIELDS), _json_values, min_size=1, max_size=3),
)
def test_handlers_never_crash_on_mutated_valid_bodies(
    route: str, overrides: dict[str, Any]
) -> None:
    body = json.dumps({**_VALID[route], **overrides}).encode()
    response = handle("POST", route, {}, body)
    assert response.status in (200, 201, 400)
    if response.status == 400:
        assert set(response.json()) == {"error", "code"}
