"""Request bodies equal the official client's bytes (reference §3.1, §3.4, §3.5), responses
parse the API's JSON, and ``_validate`` rejects bad input naming the field."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from aleph_alpha_client._exceptions import (
    APIResponseValidationError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
)
from aleph_alpha_client.completion import (
    CompletionRequest,
    CompletionResponse,
    CompletionResult,
    CompletionSummary,
    StreamChunk,
    StreamSummary,
    stream_item_from_json,
)
from aleph_alpha_client.detokenization import DetokenizationRequest, DetokenizationResponse
from aleph_alpha_client.embedding import (
    BatchSemanticEmbeddingRequest,
    BatchSemanticEmbeddingResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    EmbeddingV2Request,
    EmbeddingV2Response,
    EmbeddingV2ResponseData,
    InstructableEmbeddingRequest,
    InstructableEmbeddingResponse,
    SemanticEmbeddingRequest,
    SemanticEmbeddingResponse,
    SemanticRepresentation,
    Usage,
)
from aleph_alpha_client.evaluation import EvaluationRequest, EvaluationResponse
from aleph_alpha_client.prompt import (
    ControlTokenOverlap,
    Image,
    Prompt,
    Text,
    TextControl,
    Tokens,
)
from aleph_alpha_client.reranking import RerankRequest, RerankResponse, RerankResult, RerankUsage
from aleph_alpha_client.steering import (
    SteeringConceptCreationRequest,
    SteeringConceptCreationResponse,
    SteeringPairedExample,
)
from aleph_alpha_client.tokenization import TokenizationRequest, TokenizationResponse
from aleph_alpha_client.translation import (
    TranslationRequest,
    TranslationResponse,
    TranslationSegment,
)


def body(request: Any, model: str | None) -> str:
    """The bytes the official client sends: ``json.dumps({**to_json(), "model": m})``."""
    payload = dict(request.to_json())
    if model is not None:
        payload["model"] = model
    return json.dumps(payload)


HELLO = Prompt.from_text("hello")
HELLO_JSON = '[{"type": "text", "data": "hello", "controls": []}]'


# --------------------------------------------------------------------------- completion

COMPLETE_BODY = (
    '{"prompt": [{"type": "text", "data": "Hello, World!", "controls": [{"start": 1, "length": 5, '
    '"factor": 0.5}, {"start": 1, "length": 5, "factor": 0.5, "token_overlap": "complete"}]}], '
    '"maximum_tokens": 7, "temperature": 0.0, "top_k": 0, "top_p": 0.0, "presence_penalty": 0.0, '
    '"frequency_penalty": 0.0, "repetition_penalties_include_prompt": false, '
    '"use_multiplicative_presence_penalty": false, "n": 1, "logit_bias": {"1": 2.0}, '
    '"log_probs": 0, "tokens": false, "disable_optimizations": false, "minimum_tokens": 0, '
    '"echo": false, "use_multiplicative_frequency_penalty": false, "sequence_penalty": 0.0, '
    '"sequence_penalty_min_length": 2, "use_multiplicative_sequence_penalty": false, '
    '"completion_bias_inclusion_first_token_only": false, '
    '"completion_bias_exclusion_first_token_only": false, "control_log_additive": true, '
    '"repetition_penalties_include_completion": true, "raw_completion": false, '
    '"model": "luminous-base"}'
)


def test_completion_body_matches_reference_bytes() -> None:
    prompt = Prompt(
        [
            Text(
                "Hello, World!",
                [TextControl(1, 5, 0.5), TextControl(1, 5, 0.5, ControlTokenOverlap.Complete)],
            )
        ]
    )
    request = CompletionRequest(prompt=prompt, maximum_tokens=7, logit_bias={1: 2.0}, log_probs=0)
    request._validate()
    assert body(request, "luminous-base") == COMPLETE_BODY
    assert request.to_json()["logit_bias"] == {"1": 2.0}


def test_completion_request_has_the_official_fields_in_order() -> None:
    names = [f.name for f in dataclasses.fields(CompletionRequest)]
    assert len(names) == 34
    assert names[:3] == ["prompt", "maximum_tokens", "temperature"]
    assert names[-4:] == [
        "control_log_additive",
        "repetition_penalties_include_completion",
        "raw_completion",
        "steering_concepts",
    ]
    assert CompletionRequest(HELLO).use_multiplicative_presence_penalty is False


def test_completion_optional_fields_keep_field_order() -> None:
    request = CompletionRequest(
        HELLO,
        stop_sequences=["\n"],
        penalty_bias="x",
        steering_concepts=["abc"],
        completion_bias_inclusion=("a",),
    )
    keys = list(request.to_json())
    assert keys.index("penalty_bias") < keys.index("stop_sequences")
    assert keys.index("stop_sequences") < keys.index("completion_bias_inclusion")
    assert keys[-1] == "steering_concepts"
    assert json.loads(json.dumps(request.to_json()))["completion_bias_inclusion"] == ["a"]


def test_completion_with_cropped_image_item() -> None:
    from aleph_alpha_client.prompt import Cropping, ImageControl

    image = Image("QUJD", Cropping(300, 0, 600), [ImageControl(0.5, 0.0, 0.25, 1.0, 0.0)])
    request = CompletionRequest(Prompt([image]), maximum_tokens=1)
    assert json.dumps(request.to_json()["prompt"]) == (
        '[{"type": "image", "data": "QUJD", "x": 300, "y": 0, "size": 600, "controls": '
        '[{"rect": {"left": 0.5, "top": 0.0, "width": 0.25, "height": 1.0}, "factor": 0.0}]}]'
    )


COMPLETE_RESPONSE = {
    "completions": [
        {
            "index": 0,
            "log_probs": [{"\n": -1.95}, {}],
            "completion": " world",
            "raw_completion": " world",
            "completion_tokens": [" world"],
            "finish_reason": "maximum_tokens",
            "some_future_field": 1,
        }
    ],
    "model_version": "2022-04",
    "num_tokens_prompt_total": 4,
    "num_tokens_generated": 7,
    "optimized_prompt": [
        {"type": "text", "data": "Hello", "add_prefix_space": True},
        {"type": "token_ids", "data": [1]},
    ],
    "another_unknown": {"x": 1},
}


def test_completion_response_from_json() -> None:
    response = CompletionResponse.from_json(COMPLETE_RESPONSE)
    assert response == CompletionResponse(
        model_version="2022-04",
        completions=[
            CompletionResult(
                log_probs=[{"\n": -1.95}, {}],
                completion=" world",
                completion_tokens=[" world"],
                finish_reason="maximum_tokens",
                raw_completion=" world",
            )
        ],
        num_tokens_prompt_total=4,
        num_tokens_generated=7,
        optimized_prompt=Prompt([Text("Hello", []), Tokens([1], [])]),
    )
    minimal = CompletionResponse.from_json(
        {
            "model_version": "m",
            "completions": [{}],
            "num_tokens_prompt_total": 1,
            "num_tokens_generated": 0,
            "optimized_prompt": [],
        }
    )
    assert minimal.completions == [CompletionResult()]
    assert minimal.optimized_prompt is None


def test_completion_response_to_json_is_asdict_style() -> None:
    response = CompletionResponse.from_json(COMPLETE_RESPONSE)
    assert response.to_json() == dataclasses.asdict(response)
    assert response.to_json()["optimized_prompt"] == {
        "items": [{"text": "Hello", "controls": []}, {"tokens": [1], "controls": []}]
    }
    no_prompt = dataclasses.replace(response, optimized_prompt=None)
    assert no_prompt.to_json() == dataclasses.asdict(no_prompt)
    assert list(no_prompt.to_json()) == [
        "model_version",
        "completions",
        "num_tokens_prompt_total",
        "num_tokens_generated",
        "optimized_prompt",
    ]


def test_stream_items() -> None:
    chunk = stream_item_from_json(
        {"type": "stream_chunk", "index": 0, "completion": " The New York Times, May 15"}
    )
    assert chunk == StreamChunk(0, None, " The New York Times, May 15", None, None)
    assert chunk.to_json() == dataclasses.asdict(chunk)
    summary = stream_item_from_json(
        {
            "type": "stream_summary",
            "index": 0,
            "model_version": "2022-04",
            "finish_reason": "maximum_tokens",
        }
    )
    assert summary == StreamSummary(0, "2022-04", "maximum_tokens")
    assert summary.to_json() == dataclasses.asdict(summary)
    final = stream_item_from_json(
        {"type": "completion_summary", "num_tokens_prompt_total": 1, "num_tokens_generated": 7}
    )
    assert final == CompletionSummary(None, 1, 7)
    assert final.to_json() == dataclasses.asdict(final)


@pytest.mark.parametrize("item", [{"type": "mystery"}, {"error": "boom"}, {"type": None}])
def test_unknown_stream_item_raises_typed_error(item: dict[str, Any]) -> None:
    with pytest.raises(APIResponseValidationError):
        stream_item_from_json(item)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"maximum_tokens": -1},
            InvalidArgumentError,
            "maximum_tokens: expected an int >= 0 or None, got -1",
        ),
        ({"maximum_tokens": True}, InvalidArgumentTypeError, "maximum_tokens"),
        ({"temperature": "hot"}, InvalidArgumentTypeError, "temperature: expected a number"),
        ({"temperature": float("nan")}, InvalidArgumentError, "temperature: expected a finite"),
        ({"top_p": 1.5}, InvalidArgumentError, "top_p: expected a number between 0 and 1"),
        ({"n": 0}, InvalidArgumentError, "n: expected a positive int"),
        (
            {"stop_sequences": "\n"},
            InvalidArgumentTypeError,
            "stop_sequences: expected a list of str",
        ),
        ({"stop_sequences": ["a", 1]}, InvalidArgumentTypeError, r"stop_sequences\[1\]"),
        ({"logit_bias": {"x": 1.0}}, InvalidArgumentTypeError, "logit_bias: expected token ids"),
        ({"logit_bias": {1: "a"}}, InvalidArgumentTypeError, r"logit_bias\[1\]"),
        ({"echo": 1}, InvalidArgumentTypeError, "echo: expected a bool"),
        ({"control_log_additive": "yes"}, InvalidArgumentTypeError, "control_log_additive"),
    ],
)
def test_completion_validation(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        CompletionRequest(HELLO, **kwargs)._validate()


def test_completion_validation_accepts_ints_for_floats_and_none() -> None:
    CompletionRequest(
        HELLO,
        temperature=1,
        top_p=1,
        presence_penalty=-1,
        maximum_tokens=None,
        control_log_additive=None,
        logit_bias={3: 1, "4": -0.5},  # type: ignore[dict-item]
    )._validate()


def test_completion_validation_rejects_non_prompt() -> None:
    with pytest.raises(InvalidArgumentTypeError, match="prompt: expected a Prompt, got str"):
        CompletionRequest("hello")._validate()  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentTypeError, match=r"prompt.items\[0\]"):
        CompletionRequest(Prompt([3.5]))._validate()  # type: ignore[list-item]


# --------------------------------------------------------------------------- embeddings


def test_embed_body_keeps_nulls() -> None:
    request = EmbeddingRequest(prompt=HELLO, layers=[0, -1], pooling=["mean", "max"])
    request._validate()
    assert body(request, "luminous-base") == (
        f'{{"prompt": {HELLO_JSON}, "layers": [0, -1], "pooling": ["mean", "max"], '
        '"type": null, "tokens": false, "normalize": false, '
        '"contextual_control_threshold": null, "control_log_additive": true, '
        '"model": "luminous-base"}'
    )


def test_semantic_embed_body() -> None:
    request = SemanticEmbeddingRequest(
        prompt=HELLO, representation=SemanticRepresentation.Symmetric, compress_to_size=128
    )
    request._validate()
    assert body(request, "luminous-base") == (
        f'{{"prompt": {HELLO_JSON}, "representation": "symmetric", "compress_to_size": 128, '
        '"normalize": false, "contextual_control_threshold": null, '
        '"control_log_additive": true, "model": "luminous-base"}'
    )


def test_batch_semantic_embed_body_with_and_without_model() -> None:
    request = BatchSemanticEmbeddingRequest(
        prompts=[HELLO, HELLO],
        representation=SemanticRepresentation.Symmetric,
        compress_to_size=128,
    )
    request._validate()
    tail = (
        '"representation": "symmetric", "compress_to_size": 128, "normalize": false, '
        '"contextual_control_threshold": null, "control_log_additive": true'
    )
    assert body(request, "luminous-base") == (
        f'{{"prompts": [{HELLO_JSON}, {HELLO_JSON}], {tail}, "model": "luminous-base"}}'
    )
    assert body(request, None) == f'{{"prompts": [{HELLO_JSON}, {HELLO_JSON}], {tail}}}'
    BatchSemanticEmbeddingRequest(
        prompts=[], representation=SemanticRepresentation.Query
    )._validate()


def test_instructable_embed_body() -> None:
    request = InstructableEmbeddingRequest(
        input=HELLO, instruction="Represent the text to query a database of salutations"
    )
    request._validate()
    model = "pharia-1-embedding-4608-control-with-256-embedding"
    assert body(request, model) == (
        f'{{"input": {HELLO_JSON}, "instruction": "Represent the text to query a database of '
        'salutations", "normalize": false, "contextual_control_threshold": null, '
        f'"control_log_additive": true, "model": "{model}"}}'
    )


def test_embeddings_v2_body_omits_unset() -> None:
    assert body(EmbeddingV2Request(input="hi"), "m") == '{"input": "hi", "model": "m"}'
    request = EmbeddingV2Request(input=[[1, 2], [3]], dimensions=64, encoding_format="base64")
    request._validate()
    assert body(request, "m") == (
        '{"input": [[1, 2], [3]], "dimensions": 64, "encoding_format": "base64", "model": "m"}'
    )


def test_embedding_responses() -> None:
    embed = EmbeddingResponse.from_json(
        {
            "model_version": "2022-04",
            "embeddings": {"layer_0": {"mean": [0.1], "max": [0.2]}, "layer_40": {"mean": [0.3]}},
            "tokens": None,
            "num_tokens_prompt_total": 1,
            "unknown": True,
        }
    )
    assert embed.embeddings == {
        ("layer_0", "mean"): [0.1],
        ("layer_0", "max"): [0.2],
        ("layer_40", "mean"): [0.3],
    }
    assert embed.tokens is None and embed.num_tokens_prompt_total == 1
    semantic = SemanticEmbeddingResponse.from_json(
        {"model_version": "2022-04", "embedding": [1.0, 2.0], "num_tokens_prompt_total": 1}
    )
    assert semantic == SemanticEmbeddingResponse("2022-04", [1.0, 2.0], 1)
    batch = BatchSemanticEmbeddingResponse.from_json(
        {"model_version": "2022-04", "embeddings": [[1.0], [2.0]], "num_tokens_prompt_total": 100}
    )
    assert batch.to_json() == {
        "model_version": "2022-04",
        "embeddings": [[1.0], [2.0]],
        "num_tokens_prompt_total": 100,
    }
    assert BatchSemanticEmbeddingResponse._from_model_version_and_embeddings("", [], 0) == (
        BatchSemanticEmbeddingResponse("", [], 0)
    )
    instructable = InstructableEmbeddingResponse.from_json(
        {"model_version": ".unknown.", "embedding": [0.5], "num_tokens_prompt_total": 2}
    )
    assert instructable == InstructableEmbeddingResponse(".unknown.", [0.5], 2)
    v2 = EmbeddingV2Response.from_json(
        {
            "object": "list",
            "data": [{"object": "embedding", "embedding": [0.1, 0.2], "index": 0}],
            "model": "m",
            "usage": {"prompt_tokens": 3, "total_tokens": 3},
        }
    )
    assert v2 == EmbeddingV2Response(
        "list", [EmbeddingV2ResponseData("embedding", [0.1, 0.2], 0)], "m", Usage(3, 3)
    )


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (
            EmbeddingRequest(HELLO, layers=[], pooling=["mean"]),
            "layers: expected a non-empty list of int, got an empty list",
        ),
        (EmbeddingRequest(HELLO, layers=[0], pooling="mean"), "pooling: expected a non-empty list"),  # type: ignore[arg-type]
        (
            SemanticEmbeddingRequest(HELLO, "sym"),
            "representation: expected a SemanticRepresentation or one of",
        ),  # type: ignore[arg-type]
        (
            SemanticEmbeddingRequest(HELLO, SemanticRepresentation.Query, compress_to_size=0),
            "compress_to_size: expected a positive int",
        ),
        (
            BatchSemanticEmbeddingRequest(HELLO, SemanticRepresentation.Query),  # type: ignore[arg-type]
            "prompts: expected a list",
        ),
        (InstructableEmbeddingRequest(HELLO, None), "instruction: expected a str"),  # type: ignore[arg-type]
        (EmbeddingV2Request([]), "input: expected .*, got an empty list"),
        (EmbeddingV2Request([1, "a"]), "input: expected"),  # type: ignore[arg-type]
        (EmbeddingV2Request("a", encoding_format="hex"), "encoding_format"),  # type: ignore[arg-type]
    ],
)
def test_embedding_validation(request_: Any, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        request_._validate()


def test_semantic_representation_accepts_its_string_value() -> None:
    request = SemanticEmbeddingRequest(HELLO, "document")  # type: ignore[arg-type]
    request._validate()
    assert request.to_json()["representation"] == "document"
    assert [m.name for m in SemanticRepresentation] == ["Symmetric", "Document", "Query"]


# --------------------------------------------------------------------------- other endpoints


def test_evaluate_body_and_response() -> None:
    request = EvaluationRequest(prompt=HELLO, completion_expected="world")
    request._validate()
    assert body(request, "luminous-base") == (
        f'{{"prompt": {HELLO_JSON}, "completion_expected": "world", '
        '"contextual_control_threshold": null, "control_log_additive": true, '
        '"model": "luminous-base"}'
    )
    result = {
        "log_probability": -11.3125,
        "log_perplexity": 11.3125,
        "log_perplexity_per_token": 11.3125,
        "log_perplexity_per_character": 2.2625,
        "correct_greedy": False,
        "token_count": 1,
        "character_count": 5,
        "completion": ",",
    }
    response = EvaluationResponse.from_json(
        {"model_version": "2022-04", "result": result, "num_tokens_prompt_total": 2}
    )
    assert response == EvaluationResponse("2022-04", None, result, 2)


def test_tokenize_and_detokenize() -> None:
    request = TokenizationRequest(prompt="Hello", tokens=True, token_ids=True)
    request._validate()
    assert body(request, "luminous-base") == (
        '{"prompt": "Hello", "tokens": true, "token_ids": true, "model": "luminous-base"}'
    )
    assert TokenizationResponse.from_json({"tokens": ["ĠHello"], "token_ids": [49222]}) == (
        TokenizationResponse(["ĠHello"], [49222])
    )
    assert TokenizationResponse.from_json({}) == TokenizationResponse()
    detok = DetokenizationRequest(token_ids=(4711,))
    detok._validate()
    assert body(detok, "luminous-base") == '{"token_ids": [4711], "model": "luminous-base"}'
    assert DetokenizationResponse.from_json({"result": "tiss"}) == DetokenizationResponse("tiss")
    with pytest.raises(InvalidArgumentTypeError, match=r"token_ids\[0\]: expected an int"):
        DetokenizationRequest(["a"])._validate()  # type: ignore[list-item]
    with pytest.raises(InvalidArgumentTypeError, match="tokens: expected a bool"):
        TokenizationRequest("x", None, True)._validate()  # type: ignore[arg-type]


def test_rerank() -> None:
    request = RerankRequest(query="q", documents=("a", "b", "c"), top_n=2)
    request._validate()
    assert body(request, "bge-reranker-v2-m3") == (
        '{"query": "q", "documents": ["a", "b", "c"], "top_n": 2, "model": "bge-reranker-v2-m3"}'
    )
    assert body(RerankRequest("q", ["a"]), None) == '{"query": "q", "documents": ["a"]}'
    response = RerankResponse.from_json(
        {
            "results": [
                {"index": 1, "relevance_score": 0.99996},
                {"index": 0, "relevance_score": 0.0011},
            ],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 57},
        }
    )
    assert response == RerankResponse(
        [RerankResult(1, 0.99996), RerankResult(0, 0.0011)], RerankUsage(0, 0, 57)
    )
    with pytest.raises(InvalidArgumentError, match="documents: expected a non-empty list"):
        RerankRequest("q", [])._validate()
    with pytest.raises(InvalidArgumentError, match="top_n"):
        RerankRequest("q", ["a"], top_n=0)._validate()


def test_translate() -> None:
    request = TranslationRequest(
        model="pharia-1-mt-translation", source="Hallo", target_language="de"
    )
    request._validate()
    assert json.dumps(request.to_json()) == (
        '{"model": "pharia-1-mt-translation", "source": "Hallo", "target_language": "de"}'
    )
    assert TranslationRequest("m", "s", "en") == TranslationRequest(
        model="m", source="s", target_language="en"
    )
    response = TranslationResponse.from_json(
        {
            "translation": "Hallo",
            "score": 0.72,
            "segments": None,
            "num_tokens_prompt_total": 2394,
            "num_tokens_generated": 0,
        }
    )
    assert response == TranslationResponse("Hallo", 0.72, None, 2394, 0)
    with_segments = TranslationResponse.from_json(
        {
            "translation": "a",
            "score": 1.0,
            "segments": [{"source": "x", "translation": "a", "score": 0.5}],
            "num_tokens_prompt_total": 0,
            "num_tokens_generated": 0,
        }
    )
    assert with_segments.segments == [TranslationSegment("x", "a", 0.5)]


def test_steering() -> None:
    request = SteeringConceptCreationRequest(
        examples=[
            SteeringPairedExample(
                negative="I appreciate your valuable feedback on this matter.",
                positive="Thanks for the real talk, fam.",
            )
        ]
    )
    request._validate()
    assert json.dumps(request.to_json()) == (
        '{"examples": [{"negative": "I appreciate your valuable feedback on this matter.", '
        '"positive": "Thanks for the real talk, fam."}]}'
    )
    concept_id = "a" * 64
    assert SteeringConceptCreationResponse.from_json({"id": concept_id}).id == concept_id
    with pytest.raises(
        InvalidArgumentError,
        match="examples: expected a non-empty list of SteeringPairedExample, got an empty list",
    ):
        SteeringConceptCreationRequest([])._validate()
    with pytest.raises(InvalidArgumentTypeError, match=r"examples\[0\]"):
        SteeringConceptCreationRequest([("a", "b")])._validate()  # type: ignore[list-item]


def test_non_ascii_is_escaped_like_the_official_client() -> None:
    request = CompletionRequest(Prompt.from_text("café"), maximum_tokens=1)
    assert '"data": "caf\\u00e9"' in body(request, "m")


def test_from_json_is_a_classmethod_so_subclasses_parse_to_themselves() -> None:
    class MyResult(RerankResult):
        pass

    parsed = MyResult.from_json({"index": 0, "relevance_score": 0.5, "extra": "ignored"})
    assert type(parsed) is MyResult
    assert parsed == MyResult(0, 0.5)
