"""Every endpoint through ``Client`` and ``AsyncClient`` against a real loopback server.

For each API operation the request bytes must equal the official client's exact bodies
(official-client-reference.md §3), the method, path and query must be the official ones
(``?nice=true`` only on POSTs and only with ``nice=True``; ``hosting`` and ``tags`` appended
to every POST body), the answer must be parsed into the documented objects, and the sync and
async clients must send the same bytes and return equal results.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

import aleph_alpha_client
from aleph_alpha_client import (
    AsyncClient,
    AsyncStream,
    BatchSemanticEmbeddingRequest,
    BatchSemanticEmbeddingResponse,
    ChatRequest,
    ChatResponse,
    ChatStreamChunk,
    Client,
    CompletionRequest,
    CompletionResponse,
    ControlTokenOverlap,
    CustomGranularity,
    DetokenizationRequest,
    DetokenizationResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    EmbeddingV2Request,
    EmbeddingV2Response,
    EvaluationRequest,
    EvaluationResponse,
    ExplanationPostprocessing,
    ExplanationRequest,
    ExplanationResponse,
    FinishReason,
    Image,
    ImageControl,
    ImagePromptItemExplanation,
    ImageScore,
    InstructableEmbeddingRequest,
    InstructableEmbeddingResponse,
    Message,
    Prompt,
    PromptGranularity,
    RerankRequest,
    RerankResponse,
    RerankResult,
    RerankUsage,
    Role,
    SemanticEmbeddingRequest,
    SemanticEmbeddingResponse,
    SemanticRepresentation,
    Stream,
    StreamOptions,
    TargetGranularity,
    TargetPromptItemExplanation,
    TargetScore,
    Text,
    TextControl,
    TextMessage,
    TextPromptItemExplanation,
    TextScore,
    TokenizationRequest,
    TokenizationResponse,
    TokenPromptItemExplanation,
    Tokens,
    TokenScore,
    Usage,
)
from aleph_alpha_client.completion import (
    CompletionResult,
    CompletionSummary,
    StreamChunk,
    StreamSummary,
)
from aleph_alpha_client.embedding import EmbeddingV2ResponseData
from aleph_alpha_client.embedding import Usage as EmbeddingUsage
from aleph_alpha_client.prompt import Cropping
from aleph_alpha_client.steering import (
    SteeringConceptCreationRequest,
    SteeringConceptCreationResponse,
    SteeringPairedExample,
)
from aleph_alpha_client.translation import TranslationRequest, TranslationResponse
from conftest import TOKEN
from scripted_server import Received, Reply, ScriptedServer

# ------------------------------------------------------------------------------------ helpers

HOSTING_TAGS = ', "hosting": "aleph-alpha", "tags": ["t1"]'
USER_AGENT = f"Aleph-Alpha-Python-Client-{aleph_alpha_client.__version__}"


def call_sync(
    server: ScriptedServer,
    method: str,
    args: Sequence[Any] = (),
    kwargs: dict[str, Any] | None = None,
    host_suffix: str = "/v1",
    **client_options: Any,
) -> tuple[Any, list[Received]]:
    """Call ``Client.<method>``; return the result (a stream is read to its end) and what
    the server received."""
    start = len(server.received)
    options: dict[str, Any] = {"total_retries": 0, "request_timeout_seconds": 10}
    options.update(client_options)
    with Client(TOKEN, host=server.url + host_suffix, **options) as client:
        result = getattr(client, method)(*args, **(kwargs or {}))
        if isinstance(result, Stream):
            with result:
                result = list(result)
    return result, server.received[start:]


def call_async(
    server: ScriptedServer,
    method: str,
    args: Sequence[Any] = (),
    kwargs: dict[str, Any] | None = None,
    host_suffix: str = "/v1",
    **client_options: Any,
) -> tuple[Any, list[Received]]:
    """Call ``AsyncClient.<method>`` in a fresh event loop; as :func:`call_sync`."""
    start = len(server.received)
    options: dict[str, Any] = {"total_retries": 0, "request_timeout_seconds": 10}
    options.update(client_options)

    async def run() -> Any:
        async with AsyncClient(TOKEN, host=server.url + host_suffix, **options) as client:
            result = getattr(client, method)(*args, **(kwargs or {}))
            if isinstance(result, AsyncStream):
                async with result:
                    return [item async for item in result]
            return await result

    result = asyncio.run(run())
    return result, server.received[start:]


def call_both(
    server: ScriptedServer,
    method: str,
    args: Sequence[Any] = (),
    kwargs: dict[str, Any] | None = None,
    **client_options: Any,
) -> tuple[Any, list[Received]]:
    """Call the method on both clients; assert they sent the same and got equal results."""
    sync_result, sync_received = call_sync(server, method, args, kwargs, **client_options)
    async_result, async_received = call_async(server, method, args, kwargs, **client_options)
    assert [(r.method, r.path, r.body) for r in sync_received] == [
        (r.method, r.path, r.body) for r in async_received
    ]
    assert sync_result == async_result
    return sync_result, sync_received


def hello() -> Prompt:
    return Prompt.from_text("hello")


HELLO_JSON = '[{"type": "text", "data": "hello", "controls": []}]'


# ------------------------------------------------------------------------ the endpoint table


@dataclass
class Case:
    """One API operation: how to call it, what must go over the wire, what comes back."""

    id: str
    method: str
    args: tuple[Any, ...]
    reply: Reply
    http_method: str
    path: str
    body: str | None  # the exact request body; None for GETs
    check: Callable[[Any], None]
    stream: bool = False
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def is_post(self) -> bool:
        return self.http_method == "POST"


def _check_complete(result: Any) -> None:
    assert isinstance(result, CompletionResponse)
    assert result == CompletionResponse(
        model_version="2022-04",
        completions=[
            CompletionResult(
                log_probs=[{"\n": -1.95}],
                completion=" World!",
                completion_tokens=[" World", "!"],
                finish_reason="maximum_tokens",
                raw_completion=" World!",
            )
        ],
        num_tokens_prompt_total=4,
        num_tokens_generated=7,
        optimized_prompt=None,
    )


COMPLETE_REQUEST = CompletionRequest(
    prompt=Prompt(
        [
            Text(
                "Hello, World!",
                controls=[
                    TextControl(start=1, length=5, factor=0.5),
                    TextControl(
                        start=1, length=5, factor=0.5, token_overlap=ControlTokenOverlap.Complete
                    ),
                ],
            )
        ]
    ),
    maximum_tokens=7,
    logit_bias={1: 2.0},
    log_probs=0,
)
# official-client-reference.md §3.1, the sync cassette's exact bytes.
COMPLETE_BODY = (
    '{"prompt": [{"type": "text", "data": "Hello, World!", "controls": [{"start": 1, '
    '"length": 5, "factor": 0.5}, {"start": 1, "length": 5, "factor": 0.5, "token_overlap": '
    '"complete"}]}], "maximum_tokens": 7, "temperature": 0.0, "top_k": 0, "top_p": 0.0, '
    '"presence_penalty": 0.0, "frequency_penalty": 0.0, "repetition_penalties_include_prompt": '
    'false, "use_multiplicative_presence_penalty": false, "n": 1, "logit_bias": {"1": 2.0}, '
    '"log_probs": 0, "tokens": false, "disable_optimizations": false, "minimum_tokens": 0, '
    '"echo": false, "use_multiplicative_frequency_penalty": false, "sequence_penalty": 0.0, '
    '"sequence_penalty_min_length": 2, "use_multiplicative_sequence_penalty": false, '
    '"completion_bias_inclusion_first_token_only": false, '
    '"completion_bias_exclusion_first_token_only": false, "control_log_additive": true, '
    '"repetition_penalties_include_completion": true, "raw_completion": false, '
    '"model": "luminous-base"}'
)
COMPLETE_REPLY = {
    "completions": [
        {
            "index": 0,
            "log_probs": [{"\n": -1.95}],
            "completion": " World!",
            "raw_completion": " World!",
            "completion_tokens": [" World", "!"],
            "finish_reason": "maximum_tokens",
        }
    ],
    "model_version": "2022-04",
    "num_tokens_prompt_total": 4,
    "num_tokens_generated": 7,
}

# A multimodal prompt: an image with cropping and controls (§3.1), then token ids.
MULTIMODAL_REQUEST = CompletionRequest(
    prompt=Prompt(
        [
            Image("QUJD", Cropping(300, 0, 600), [ImageControl(0.5, 0.0, 0.25, 1.0, factor=0.0)]),
            Tokens([1, 2], []),
        ]
    ),
    maximum_tokens=2,
    stop_sequences=["\n"],
)
MULTIMODAL_BODY = (
    '{"prompt": [{"type": "image", "data": "QUJD", "x": 300, "y": 0, "size": 600, '
    '"controls": [{"rect": {"left": 0.5, "top": 0.0, "width": 0.25, "height": 1.0}, '
    '"factor": 0.0}]}, {"type": "token_ids", "data": [1, 2], "controls": []}], '
    '"maximum_tokens": 2, "temperature": 0.0, "top_k": 0, "top_p": 0.0, '
    '"presence_penalty": 0.0, "frequency_penalty": 0.0, "repetition_penalties_include_prompt": '
    'false, "use_multiplicative_presence_penalty": false, "n": 1, "stop_sequences": ["\\n"], '
    '"tokens": false, "disable_optimizations": false, "minimum_tokens": 0, "echo": false, '
    '"use_multiplicative_frequency_penalty": false, "sequence_penalty": 0.0, '
    '"sequence_penalty_min_length": 2, "use_multiplicative_sequence_penalty": false, '
    '"completion_bias_inclusion_first_token_only": false, '
    '"completion_bias_exclusion_first_token_only": false, "control_log_additive": true, '
    '"repetition_penalties_include_completion": true, "raw_completion": false, '
    '"model": "luminous-base"}'
)
OPTIMIZED_REPLY = {
    "completions": [{"completion": "ok", "finish_reason": "end_of_text"}],
    "model_version": "2022-04",
    "num_tokens_prompt_total": 3,
    "num_tokens_generated": 1,
    "optimized_prompt": [
        {"type": "text", "data": " Hi", "add_prefix_space": True},
        {"type": "token_ids", "data": [1, 2]},
    ],
}


def _check_optimized(result: Any) -> None:
    assert isinstance(result, CompletionResponse)
    assert result.completions == [CompletionResult(completion="ok", finish_reason="end_of_text")]
    assert result.optimized_prompt is not None
    items = result.optimized_prompt.items
    assert isinstance(items[0], Text) and items[0].text == " Hi"
    assert isinstance(items[1], Tokens) and list(items[1].tokens) == [1, 2]


CHAT_REQUEST = ChatRequest(
    model="ignored-model",
    messages=[Message(role=Role.User, content="Hello, how are you?")],
)
CHAT_BODY = (
    '{"model": "llama-3.1-8b-instruct", "messages": '
    '[{"role": "user", "content": "Hello, how are you?"}]}'
)
CHAT_REPLY = {
    "id": "chatcmpl-1",
    "choices": [
        {
            "finish_reason": "stop",
            "index": 0,
            "message": {"role": "assistant", "content": "Fine, thanks."},
            "logprobs": None,
        }
    ],
    "created": 1754484237,
    "model": "llama-3.1-8b-instruct",
    "system_fingerprint": ".unknown.",
    "object": "chat.completion",
    "usage": {"prompt_tokens": 16, "completion_tokens": 50, "total_tokens": 66},
}


def _check_chat(result: Any) -> None:
    assert isinstance(result, ChatResponse)
    assert result.finish_reason is FinishReason.Stop
    assert result.message == TextMessage(role=Role.Assistant, content="Fine, thanks.")
    assert result.usage == Usage(completion_tokens=50, prompt_tokens=16, total_tokens=66)
    assert result.id == "chatcmpl-1"
    assert result.model == "llama-3.1-8b-instruct"


# The chat request with stream options of §2.3's example.
CHAT_STREAM_REQUEST = ChatRequest(
    model="m",
    messages=[Message(role=Role.User, content="Hi")],
    stream_options=StreamOptions(include_usage=True),
)
CHAT_STREAM_BODY = (
    '{"model": "m", "messages": [{"role": "user", "content": "Hi"}], '
    '"stream_options": {"include_usage": true}, "stream": true}'
)


def _chat_chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "c1",
        "choices": [{"finish_reason": finish, "index": 0, "delta": delta, "logprobs": None}],
        "created": 1,
        "model": "m",
        "system_fingerprint": None,
        "object": "chat.completion.chunk",
        "usage": None,
    }


CHAT_STREAM_EVENTS = [
    _chat_chunk({"role": "assistant", "content": ""}),
    _chat_chunk({"content": "I'm just "}),
    _chat_chunk({"content": "a program."}),
    _chat_chunk({}, finish="stop"),
    {
        "id": "c1",
        "choices": [],
        "created": 1,
        "model": "m",
        "object": "chat.completion.chunk",
        "usage": {"prompt_tokens": 16, "completion_tokens": 5, "total_tokens": 21},
    },
]


def _check_chat_stream(result: Any) -> None:
    assert result == [
        ChatStreamChunk(content="", role=Role.Assistant, tool_calls=None),
        ChatStreamChunk(content="I'm just ", role=None, tool_calls=None),
        ChatStreamChunk(content="a program.", role=None, tool_calls=None),
        FinishReason.Stop,
        Usage(completion_tokens=5, prompt_tokens=16, total_tokens=21),
    ]


COMPLETE_STREAM_REQUEST = CompletionRequest(prompt=Prompt.from_text("Hi"), maximum_tokens=7)
COMPLETE_STREAM_BODY = (
    '{"prompt": [{"type": "text", "data": "Hi", "controls": []}], "maximum_tokens": 7, '
    '"temperature": 0.0, "top_k": 0, "top_p": 0.0, "presence_penalty": 0.0, '
    '"frequency_penalty": 0.0, "repetition_penalties_include_prompt": false, '
    '"use_multiplicative_presence_penalty": false, "n": 1, "tokens": false, '
    '"disable_optimizations": false, "minimum_tokens": 0, "echo": false, '
    '"use_multiplicative_frequency_penalty": false, "sequence_penalty": 0.0, '
    '"sequence_penalty_min_length": 2, "use_multiplicative_sequence_penalty": false, '
    '"completion_bias_inclusion_first_token_only": false, '
    '"completion_bias_exclusion_first_token_only": false, "control_log_additive": true, '
    '"repetition_penalties_include_completion": true, "raw_completion": false, '
    '"model": "luminous-base", "stream": true}'
)
# §3.1: the completion stream has no [DONE].
COMPLETE_STREAM_EVENTS = [
    {"type": "stream_chunk", "index": 0, "completion": " The New York Times, May 15"},
    {
        "type": "stream_summary",
        "index": 0,
        "model_version": "2022-04",
        "finish_reason": "maximum_tokens",
    },
    {"type": "completion_summary", "num_tokens_prompt_total": 1, "num_tokens_generated": 7},
]


def _check_complete_stream(result: Any) -> None:
    assert result == [
        StreamChunk(
            index=0,
            log_probs=None,
            completion=" The New York Times, May 15",
            raw_completion=None,
            completion_tokens=None,
        ),
        StreamSummary(index=0, model_version="2022-04", finish_reason="maximum_tokens"),
        CompletionSummary(optimized_prompt=None, num_tokens_prompt_total=1, num_tokens_generated=7),
    ]


EMBED_REQUEST = EmbeddingRequest(prompt=hello(), layers=[0, -1], pooling=["mean", "max"])
EMBED_BODY = (
    f'{{"prompt": {HELLO_JSON}, "layers": [0, -1], "pooling": ["mean", "max"], "type": null, '
    '"tokens": false, "normalize": false, "contextual_control_threshold": null, '
    '"control_log_additive": true, "model": "luminous-base"}'
)
EMBED_REPLY = {
    "model_version": "2022-04",
    "embeddings": {
        "layer_0": {"mean": [0.1, 0.2], "max": [0.3, 0.4]},
        "layer_40": {"mean": [0.5, 0.6], "max": [0.7, 0.8]},
    },
    "tokens": None,
    "num_tokens_prompt_total": 1,
}


def _check_embed(result: Any) -> None:
    assert isinstance(result, EmbeddingResponse)
    assert result.model_version == "2022-04"
    assert result.num_tokens_prompt_total == 1
    assert result.tokens is None
    assert result.embeddings == {
        ("layer_0", "mean"): [0.1, 0.2],
        ("layer_0", "max"): [0.3, 0.4],
        ("layer_40", "mean"): [0.5, 0.6],
        ("layer_40", "max"): [0.7, 0.8],
    }


SEMANTIC_REQUEST = SemanticEmbeddingRequest(
    prompt=hello(), representation=SemanticRepresentation.Symmetric, compress_to_size=128
)
SEMANTIC_BODY = (
    f'{{"prompt": {HELLO_JSON}, "representation": "symmetric", "compress_to_size": 128, '
    '"normalize": false, "contextual_control_threshold": null, "control_log_additive": true, '
    '"model": "luminous-base"}'
)
SEMANTIC_REPLY = {
    "model_version": "2022-04",
    "embedding": [0.5, -0.5],
    "num_tokens_prompt_total": 1,
}

BATCH_REQUEST = BatchSemanticEmbeddingRequest(
    prompts=[hello(), Prompt.from_text("world")],
    representation=SemanticRepresentation.Symmetric,
    compress_to_size=128,
)
BATCH_BODY = (
    '{"prompts": [[{"type": "text", "data": "hello", "controls": []}], '
    '[{"type": "text", "data": "world", "controls": []}]], "representation": "symmetric", '
    '"compress_to_size": 128, "normalize": false, "contextual_control_threshold": null, '
    '"control_log_additive": true, "model": "luminous-base"}'
)
BATCH_REPLY = {
    "model_version": "2022-04",
    "embeddings": [[1.0, 0.0], [0.0, 1.0]],
    "num_tokens_prompt_total": 2,
}

INSTRUCTABLE_REQUEST = InstructableEmbeddingRequest(
    input=hello(), instruction="Represent the text to query a database of salutations"
)
INSTRUCTABLE_BODY = (
    f'{{"input": {HELLO_JSON}, "instruction": "Represent the text to query a database of '
    'salutations", "normalize": false, "contextual_control_threshold": null, '
    '"control_log_additive": true, '
    '"model": "pharia-1-embedding-4608-control-with-256-embedding"}'
)
INSTRUCTABLE_REPLY = {
    "model_version": ".unknown.",
    "embedding": [0.25],
    "num_tokens_prompt_total": 2,
}

EMBEDDINGS_REQUEST = EmbeddingV2Request(input=["hello", "world"], dimensions=2)
EMBEDDINGS_BODY = '{"input": ["hello", "world"], "dimensions": 2, "model": "pharia-1-embedding"}'
EMBEDDINGS_REPLY = {
    "object": "list",
    "data": [
        {"object": "embedding", "embedding": [0.1, 0.2], "index": 0},
        {"object": "embedding", "embedding": [0.3, 0.4], "index": 1},
    ],
    "model": "pharia-1-embedding",
    "usage": {"prompt_tokens": 2, "total_tokens": 2},
}


def _check_embeddings(result: Any) -> None:
    assert result == EmbeddingV2Response(
        object="list",
        data=[
            EmbeddingV2ResponseData(object="embedding", embedding=[0.1, 0.2], index=0),
            EmbeddingV2ResponseData(object="embedding", embedding=[0.3, 0.4], index=1),
        ],
        model="pharia-1-embedding",
        usage=EmbeddingUsage(prompt_tokens=2, total_tokens=2),
    )


EVALUATE_REQUEST = EvaluationRequest(prompt=hello(), completion_expected="world")
EVALUATE_BODY = (
    f'{{"prompt": {HELLO_JSON}, "completion_expected": "world", '
    '"contextual_control_threshold": null, "control_log_additive": true, '
    '"model": "luminous-base"}'
)
EVALUATE_RESULT = {
    "log_probability": -11.3125,
    "log_perplexity": 11.3125,
    "log_perplexity_per_token": 11.3125,
    "log_perplexity_per_character": 2.2625,
    "correct_greedy": False,
    "token_count": 1,
    "character_count": 5,
    "completion": ",",
}
EVALUATE_REPLY = {
    "model_version": "2022-04",
    "result": EVALUATE_RESULT,
    "num_tokens_prompt_total": 2,
}

EXPLAIN_PROMPT = Prompt(
    [
        Image("QUJD", None, []),
        Text.from_text("I am a programmer and French. My favourite food is"),
        Tokens.from_token_ids([1, 2]),
    ]
)
EXPLAIN_REQUEST = ExplanationRequest(
    prompt=EXPLAIN_PROMPT,
    target=" pizza with cheese",
    target_granularity=TargetGranularity.Token,
    normalize=True,
)
EXPLAIN_BODY = (
    '{"prompt": [{"type": "image", "data": "QUJD", "controls": []}, {"type": "text", "data": '
    '"I am a programmer and French. My favourite food is", "controls": []}, '
    '{"type": "token_ids", "data": [1, 2], "controls": []}], "target": " pizza with cheese", '
    '"target_granularity": "token", "normalize": true, "model": "luminous-base"}'
)
EXPLAIN_REPLY = {
    "model_version": "2022-04",
    "explanations": [
        {
            "target": " pizza",
            "items": [
                {
                    "type": "image",
                    "scores": [
                        {
                            "rect": {"top": 0.0, "left": 0.0, "width": 0.333, "height": 0.333},
                            "score": 0.84,
                        }
                    ],
                },
                {"type": "text", "scores": [{"start": 0, "length": 29, "score": 2.01}]},
                {"type": "token_ids", "scores": [-0.9, -0.18]},
                {"type": "target", "scores": [{"start": 0, "length": 6, "score": 0.5}]},
            ],
        }
    ],
}


def _check_explain(result: Any) -> None:
    assert isinstance(result, ExplanationResponse)
    assert result.model_version == "2022-04"
    (explanation,) = result.explanations
    assert explanation.target == " pizza"
    image, text, tokens, target = explanation.items
    assert isinstance(image, ImagePromptItemExplanation)
    assert image.scores == [ImageScore(left=0.0, top=0.0, width=0.333, height=0.333, score=0.84)]
    assert isinstance(text, TextPromptItemExplanation)
    assert text.scores == [TextScore(start=0, length=29, score=2.01)]
    assert isinstance(tokens, TokenPromptItemExplanation)
    assert tokens.scores == [TokenScore(-0.9), TokenScore(-0.18)]
    assert isinstance(target, TargetPromptItemExplanation)
    assert target.scores == [TargetScore(start=0, length=6, score=0.5)]


TOKENIZE_REQUEST = TokenizationRequest(prompt="Hello", tokens=True, token_ids=True)
TOKENIZE_BODY = '{"prompt": "Hello", "tokens": true, "token_ids": true, "model": "luminous-base"}'
DETOKENIZE_REQUEST = DetokenizationRequest(token_ids=[4711])
DETOKENIZE_BODY = '{"token_ids": [4711], "model": "luminous-base"}'

RERANK_REQUEST = RerankRequest(query="capital of France?", documents=["a", "Paris", "b"], top_n=2)
RERANK_BODY = (
    '{"query": "capital of France?", "documents": ["a", "Paris", "b"], "top_n": 2, '
    '"model": "bge-reranker-v2-m3"}'
)
RERANK_REPLY = {
    "results": [{"index": 1, "relevance_score": 0.99996}, {"index": 0, "relevance_score": 0.0011}],
    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 57},
}

TRANSLATE_REQUEST = TranslationRequest(
    model="pharia-1-mt-translation", source="Hello, world", target_language="de"
)
TRANSLATE_BODY = (
    '{"model": "pharia-1-mt-translation", "source": "Hello, world", "target_language": "de"}'
)
TRANSLATE_REPLY = {
    "translation": "Hallo, Welt",
    "score": 0.72,
    "segments": None,
    "num_tokens_prompt_total": 2394,
    "num_tokens_generated": 0,
}

STEERING_REQUEST = SteeringConceptCreationRequest(
    examples=[
        SteeringPairedExample(
            negative="I appreciate your valuable feedback on this matter.",
            positive="Thanks for the real talk, fam.",
        ),
        SteeringPairedExample(negative="Good day.", positive="Yo."),
    ]
)
STEERING_BODY = (
    '{"examples": [{"negative": "I appreciate your valuable feedback on this matter.", '
    '"positive": "Thanks for the real talk, fam."}, {"negative": "Good day.", '
    '"positive": "Yo."}]}'
)
STEERING_ID = "bc31b0c1" + "0" * 52 + "08b2"

MODELS_REPLY = [
    {
        "name": "luminous-base",
        "description": "A model",
        "max_context_size": 2048,
        "hostings": ["aleph-alpha"],
        "image_support": True,
        "qa_support": False,
        "summarization_support": False,
        "embedding_types": ["symmetric"],
        "maximum_completion_tokens": 2048,
        "aligned": False,
    }
]


def _eq(expected: Any) -> Callable[[Any], None]:
    def check(result: Any) -> None:
        assert type(result) is type(expected)
        assert result == expected

    return check


CASES = [
    Case(
        "complete",
        "complete",
        (COMPLETE_REQUEST, "luminous-base"),
        Reply.json(COMPLETE_REPLY),
        "POST",
        "complete",
        COMPLETE_BODY,
        _check_complete,
    ),
    Case(
        "complete-multimodal",
        "complete",
        (MULTIMODAL_REQUEST, "luminous-base"),
        Reply.json(OPTIMIZED_REPLY),
        "POST",
        "complete",
        MULTIMODAL_BODY,
        _check_optimized,
    ),
    Case(
        "complete_with_streaming",
        "complete_with_streaming",
        (COMPLETE_STREAM_REQUEST, "luminous-base"),
        Reply.sse(COMPLETE_STREAM_EVENTS, done=False),
        "POST",
        "complete",
        COMPLETE_STREAM_BODY,
        _check_complete_stream,
        stream=True,
    ),
    Case(
        "chat",
        "chat",
        (CHAT_REQUEST, "llama-3.1-8b-instruct"),
        Reply.json(CHAT_REPLY),
        "POST",
        "chat/completions",
        CHAT_BODY,
        _check_chat,
    ),
    Case(
        "chat_with_streaming",
        "chat_with_streaming",
        (CHAT_STREAM_REQUEST, "m"),
        Reply.sse(CHAT_STREAM_EVENTS),
        "POST",
        "chat/completions",
        CHAT_STREAM_BODY,
        _check_chat_stream,
        stream=True,
    ),
    Case(
        "tokenize",
        "tokenize",
        (TOKENIZE_REQUEST, "luminous-base"),
        Reply.json({"tokens": ["ĠHello"], "token_ids": [49222]}),
        "POST",
        "tokenize",
        TOKENIZE_BODY,
        _eq(TokenizationResponse(tokens=["ĠHello"], token_ids=[49222])),
    ),
    Case(
        "detokenize",
        "detokenize",
        (DETOKENIZE_REQUEST, "luminous-base"),
        Reply.json({"result": "tiss"}),
        "POST",
        "detokenize",
        DETOKENIZE_BODY,
        _eq(DetokenizationResponse(result="tiss")),
    ),
    Case(
        "embed",
        "embed",
        (EMBED_REQUEST, "luminous-base"),
        Reply.json(EMBED_REPLY),
        "POST",
        "embed",
        EMBED_BODY,
        _check_embed,
    ),
    Case(
        "semantic_embed",
        "semantic_embed",
        (SEMANTIC_REQUEST, "luminous-base"),
        Reply.json(SEMANTIC_REPLY),
        "POST",
        "semantic_embed",
        SEMANTIC_BODY,
        _eq(SemanticEmbeddingResponse("2022-04", [0.5, -0.5], 1)),
    ),
    Case(
        "batch_semantic_embed",
        "batch_semantic_embed",
        (BATCH_REQUEST, "luminous-base"),
        Reply.json(BATCH_REPLY),
        "POST",
        "batch_semantic_embed",
        BATCH_BODY,
        _eq(BatchSemanticEmbeddingResponse("2022-04", [[1.0, 0.0], [0.0, 1.0]], 2)),
    ),
    Case(
        "instructable_embed",
        "instructable_embed",
        (INSTRUCTABLE_REQUEST, "pharia-1-embedding-4608-control-with-256-embedding"),
        Reply.json(INSTRUCTABLE_REPLY),
        "POST",
        "instructable_embed",
        INSTRUCTABLE_BODY,
        _eq(InstructableEmbeddingResponse(".unknown.", [0.25], 2)),
    ),
    Case(
        "embeddings",
        "embeddings",
        (EMBEDDINGS_REQUEST, "pharia-1-embedding"),
        Reply.json(EMBEDDINGS_REPLY),
        "POST",
        "embeddings",
        EMBEDDINGS_BODY,
        _check_embeddings,
    ),
    Case(
        "evaluate",
        "evaluate",
        (EVALUATE_REQUEST, "luminous-base"),
        Reply.json(EVALUATE_REPLY),
        "POST",
        "evaluate",
        EVALUATE_BODY,
        _eq(EvaluationResponse("2022-04", None, EVALUATE_RESULT, 2)),
    ),
    Case(
        "explain",
        "explain",
        (EXPLAIN_REQUEST, "luminous-base"),
        Reply.json(EXPLAIN_REPLY),
        "POST",
        "explain",
        EXPLAIN_BODY,
        _check_explain,
    ),
    Case(
        "rerank",
        "rerank",
        (RERANK_REQUEST, "bge-reranker-v2-m3"),
        Reply.json(RERANK_REPLY),
        "POST",
        "rerank",
        RERANK_BODY,
        _eq(
            RerankResponse(
                results=[RerankResult(1, 0.99996), RerankResult(0, 0.0011)],
                usage=RerankUsage(completion_tokens=0, prompt_tokens=0, total_tokens=57),
            )
        ),
    ),
    Case(
        "translate",
        "translate",
        (TRANSLATE_REQUEST,),
        Reply.json(TRANSLATE_REPLY),
        "POST",
        "translate",
        TRANSLATE_BODY,
        _eq(TranslationResponse("Hallo, Welt", 0.72, None, 2394, 0)),
    ),
    Case(
        "create_steering_concept",
        "create_steering_concept",
        (STEERING_REQUEST,),
        Reply.json({"id": STEERING_ID}, status=201),
        "POST",
        "steering_concepts",
        STEERING_BODY,
        _eq(SteeringConceptCreationResponse(id=STEERING_ID)),
    ),
    Case(
        "models",
        "models",
        (),
        Reply.json(MODELS_REPLY),
        "GET",
        "models_available",
        None,
        _eq(MODELS_REPLY),
    ),
    Case(
        "get_version",
        "get_version",
        (),
        Reply(200, {"Content-Type": "text/plain"}, [b"1.19.0"]),
        "GET",
        "version",
        None,
        _eq("1.19.0"),
    ),
]


def with_extras(body: str, stream: bool) -> str:
    """The body with ``hosting`` and ``tags`` appended (before ``stream``, which is last)."""
    if stream:
        assert body.endswith(', "stream": true}')
        return body[: -len(', "stream": true}')] + HOSTING_TAGS + ', "stream": true}'
    return body[:-1] + HOSTING_TAGS + "}"


def test_with_extras_gives_the_reference_stream_example() -> None:
    # official-client-reference.md §2.3's example of the full order of body extras.
    assert with_extras(CHAT_STREAM_BODY, stream=True) == (
        '{"model": "m", "messages": [{"role": "user", "content": "Hi"}], '
        '"stream_options": {"include_usage": true}, "hosting": "aleph-alpha", '
        '"tags": ["t1"], "stream": true}'
    )


def _check_wire(received: list[Received], case: Case, prefix: str, body: str | None) -> None:
    assert len(received) == 1, [r.path for r in received]
    (request,) = received
    assert request.method == case.http_method
    assert request.path == prefix + case.path
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["user-agent"] == USER_AGENT
    if case.is_post:
        assert request.headers["content-type"] == "application/json"
        assert request.body.decode("ascii") == body
        json.loads(request.body)  # and it is JSON
    else:
        assert request.body == b""


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_endpoint_plain(server: ScriptedServer, case: Case) -> None:
    server.default = case.reply
    result, received = call_both(server, case.method, case.args, case.kwargs)
    _check_wire(received, case, "/v1/", case.body)
    case.check(result)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_endpoint_with_hosting_tags_and_nice(server: ScriptedServer, case: Case) -> None:
    server.default = case.reply
    result, received = call_both(
        server, case.method, case.args, case.kwargs, hosting="aleph-alpha", tags=["t1"], nice=True
    )
    body = with_extras(case.body, case.stream) if case.body is not None else None
    query = "?nice=true" if case.is_post else ""
    case_with_query = Case(**{**case.__dict__, "path": case.path + query})
    _check_wire(received, case_with_query, "/v1/", body)
    case.check(result)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_endpoint_host_without_path_and_with_trailing_slash(
    server: ScriptedServer, case: Case
) -> None:
    server.default = case.reply
    result, received = call_sync(server, case.method, case.args, case.kwargs, host_suffix="/")
    _check_wire(received, case, "/", case.body)
    case.check(result)


# Objects that are maps (token to log prob, layer to pooling, the evaluation result), not
# records: a new key there is data, not an unknown field.
_MAPS = frozenset({"log_probs", "embeddings", "result"})


def _add_unknown_fields(value: Any) -> Any:
    """A copy of a JSON answer with an unknown key in every record object."""
    if isinstance(value, dict):
        out = {
            key: item if key in _MAPS else _add_unknown_fields(item) for key, item in value.items()
        }
        out["some_future_field"] = {"nested": [1, None]}
        return out
    if isinstance(value, list):
        return [_add_unknown_fields(item) for item in value]
    return value


_JSON_CASES = [c for c in CASES if c.reply.headers.get("Content-Type") == "application/json"]


@pytest.mark.parametrize("case", _JSON_CASES, ids=[c.id for c in _JSON_CASES])
def test_unknown_fields_in_answers_are_tolerated(server: ScriptedServer, case: Case) -> None:
    (raw,) = case.reply.chunks
    data = json.loads(raw)
    if case.method == "models":
        expected = _add_unknown_fields(data)  # untyped: passed through as it is
    else:
        expected = None
    server.default = Reply.json(_add_unknown_fields(data), status=case.reply.status)
    result, _ = call_both(server, case.method, case.args, case.kwargs)
    if expected is not None:
        assert result == expected
    else:
        case.check(result)


def test_unknown_fields_in_stream_events_are_tolerated(server: ScriptedServer) -> None:
    server.default = Reply.sse([_add_unknown_fields(e) for e in CHAT_STREAM_EVENTS])
    result, _ = call_both(server, "chat_with_streaming", (CHAT_STREAM_REQUEST, "m"))
    _check_chat_stream(result)
    server.default = Reply.sse([_add_unknown_fields(e) for e in COMPLETE_STREAM_EVENTS], done=False)
    result, _ = call_both(server, "complete_with_streaming", (COMPLETE_STREAM_REQUEST, "base"))
    _check_complete_stream(result)


# ------------------------------------------------------------------------ more request shapes


def test_chat_model_argument_overwrites_the_request_model_in_place(server: ScriptedServer) -> None:
    server.default = Reply.json(CHAT_REPLY)
    _, received = call_both(server, "chat", (CHAT_REQUEST, "other"))
    body = received[0].body.decode()
    assert body.startswith('{"model": "other", "messages": ')
    assert body.count('"model"') == 1


def test_chat_with_all_fields_keeps_the_official_key_order(server: ScriptedServer) -> None:
    from aleph_alpha_client import JSONSchema, ToolCall, ToolFunction
    from aleph_alpha_client.chat import FunctionCall

    call = ToolCall("call-1", "function", FunctionCall("get_weather", '{"location": "Paris"}'))
    request = ChatRequest(
        model="x",
        messages=[
            Message(role=Role.System, content="Be brief."),
            Message(role=Role.Assistant, content="", tool_calls=[call]),
            Message(role=Role.Tool, content="Cloudy.", tool_call_id="call-1"),
            TextMessage(role=Role.Assistant, content="é"),
        ],
        maximum_tokens=10,
        temperature=0.5,
        top_k=3,
        top_p=0.9,
        stream_options=StreamOptions(include_usage=False),
        steering_concepts=["s1"],
        response_format=JSONSchema({"type": "object"}, "aquarium", "Describe nemo", True),
        tools=[{"type": "function", "function": {"name": "get_weather"}}],
        tool_choice=ToolFunction("function", {"name": "get_weather"}),
        parallel_tool_calls=False,
    )
    server.default = Reply.json(CHAT_REPLY)
    _, received = call_both(server, "chat", (request, "llama"), hosting="aleph-alpha")
    assert received[0].body.decode("ascii") == (
        '{"model": "llama", "messages": [{"role": "system", "content": "Be brief."}, '
        '{"role": "assistant", "content": "", "tool_calls": [{"id": "call-1", "type": '
        '"function", "function": {"name": "get_weather", "arguments": "{\\"location\\": '
        '\\"Paris\\"}"}}]}, {"role": "tool", "content": "Cloudy.", "tool_call_id": "call-1"}, '
        '{"role": "assistant", "content": "\\u00e9"}], "maximum_tokens": 10, '
        '"temperature": 0.5, "top_k": 3, "top_p": 0.9, "stream_options": {"include_usage": '
        'false}, "steering_concepts": ["s1"], "response_format": {"type": "json_schema", '
        '"json_schema": {"schema": {"type": "object"}, "name": "aquarium", "description": '
        '"Describe nemo", "strict": true}}, "tools": [{"type": "function", "function": '
        '{"name": "get_weather"}}], "tool_choice": {"type": "function", "function": {"name": '
        '"get_weather"}}, "parallel_tool_calls": false, "hosting": "aleph-alpha"}'
    )


def test_chat_answer_with_tool_calls_is_parsed(server: ScriptedServer) -> None:
    from aleph_alpha_client import ToolCall
    from aleph_alpha_client.chat import FunctionCall

    reply = json.loads(json.dumps(CHAT_REPLY))
    reply["choices"][0]["finish_reason"] = "tool_calls"
    reply["choices"][0]["message"] = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "chatcmpl-tool-1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"location": "Paris, France"}'},
            }
        ],
    }
    server.default = Reply.json(reply)
    result, _ = call_both(server, "chat", (CHAT_REQUEST, "qwen"))
    assert result.finish_reason is FinishReason.ToolCalls
    assert result.message.tool_calls == [
        ToolCall(
            "chatcmpl-tool-1",
            "function",
            FunctionCall("get_weather", '{"location": "Paris, France"}'),
        )
    ]


def test_chat_stream_assembles_tool_calls(server: ScriptedServer) -> None:
    from aleph_alpha_client import ToolCall
    from aleph_alpha_client.chat import FunctionCall

    events = [
        _chat_chunk({"role": "assistant", "content": ""}),
        _chat_chunk({"content": "</think>\n\n"}),
        _chat_chunk(
            {
                "content": "",
                "tool_calls": [
                    {
                        "id": "chatcmpl-tool-9",
                        "index": 0,
                        "type": "function",
                        "function": {"name": "get_weather"},
                    }
                ],
            }
        ),
        *[
            _chat_chunk({"content": "", "tool_calls": [{"index": 0, "function": {"arguments": a}}]})
            for a in ['{"location": "', "Paris", ",", " France", '"}']
        ],
        _chat_chunk({"content": ""}, finish="tool_calls"),
    ]
    server.default = Reply.sse(events)
    request = ChatRequest(model="qwen", messages=[Message(Role.User, "weather?")])
    result, _ = call_both(server, "chat_with_streaming", (request, "qwen3-32b-tool"))
    assert result == [
        ChatStreamChunk("", Role.Assistant, None),
        ChatStreamChunk("</think>\n\n", None, None),
        ToolCall(
            "chatcmpl-tool-9",
            "function",
            FunctionCall("get_weather", '{"location": "Paris, France"}'),
        ),
        FinishReason.ToolCalls,
    ]


@pytest.mark.parametrize(
    ("request_", "body"),
    [
        (
            ExplanationRequest(
                prompt=hello(),
                target=" x",
                contextual_control_threshold=0.5,
                control_factor=0.1,
                control_token_overlap=ControlTokenOverlap.Complete,
                control_log_additive=True,
                prompt_granularity=PromptGranularity.Sentence,
                target_granularity=TargetGranularity.Token,
                postprocessing=ExplanationPostprocessing.Absolute,
                normalize=True,
            ),
            f'{{"prompt": {HELLO_JSON}, "target": " x", "contextual_control_threshold": 0.5, '
            '"control_token_overlap": "complete", "postprocessing": "absolute", '
            '"control_log_additive": true, "prompt_granularity": {"type": "sentence"}, '
            '"target_granularity": "token", "normalize": true, "control_factor": 0.1, '
            '"model": "luminous-base"}',
        ),
        (
            ExplanationRequest(
                prompt=hello(),
                target=" x",
                prompt_granularity=CustomGranularity("###"),
                target_granularity=TargetGranularity.Complete,
                postprocessing=ExplanationPostprocessing.Square,
            ),
            f'{{"prompt": {HELLO_JSON}, "target": " x", "postprocessing": "square", '
            '"prompt_granularity": {"type": "custom", "delimiter": "###"}, '
            '"target_granularity": "complete", "model": "luminous-base"}',
        ),
        (
            ExplanationRequest(prompt=hello(), target=" x", prompt_granularity="word"),
            f'{{"prompt": {HELLO_JSON}, "target": " x", "prompt_granularity": {{"type": "word"}}, '
            '"model": "luminous-base"}',
        ),
    ],
    ids=["all-fields", "custom-granularity", "str-granularity"],
)
def test_explain_request_key_order(
    server: ScriptedServer, request_: ExplanationRequest, body: str
) -> None:
    server.default = Reply.json({"model_version": "1", "explanations": []})
    result, received = call_both(server, "explain", (request_, "luminous-base"))
    assert received[0].body.decode("ascii") == body
    assert result == ExplanationResponse(model_version="1", explanations=[])


def test_embeddings_v2_with_a_single_string_and_base64(server: ScriptedServer) -> None:
    server.default = Reply.json(
        {
            "object": "list",
            "data": [{"object": "embedding", "embedding": "AAAA", "index": 0}],
            "model": "m",
            "usage": {"prompt_tokens": 1, "total_tokens": 1},
        }
    )
    request = EmbeddingV2Request(input="hello", encoding_format="base64")
    result, received = call_both(server, "embeddings", (request, "m"))
    assert received[0].body == b'{"input": "hello", "encoding_format": "base64", "model": "m"}'
    assert isinstance(result, EmbeddingV2Response)
    assert result.data[0].embedding == "AAAA"
    assert result.usage == EmbeddingUsage(prompt_tokens=1, total_tokens=1)


def test_embeddings_v2_with_token_ids(server: ScriptedServer) -> None:
    server.default = Reply.json(EMBEDDINGS_REPLY)
    request = EmbeddingV2Request(input=[[1, 2], [3]])
    _, received = call_both(server, "embeddings", (request, "m"))
    assert received[0].body == b'{"input": [[1, 2], [3]], "model": "m"}'


def test_non_ascii_is_escaped_like_json_dumps(server: ScriptedServer) -> None:
    server.default = Reply.json({"tokens": None, "token_ids": [1]})
    request = TokenizationRequest(prompt="Grüße 🙂", tokens=False, token_ids=True)
    _, received = call_both(server, "tokenize", (request, "m"))
    assert received[0].body == (
        b'{"prompt": "Gr\\u00fc\\u00dfe \\ud83d\\ude42", "tokens": false, "token_ids": true, '
        b'"model": "m"}'
    )


def test_translate_and_steering_send_no_model_key_of_their_own(server: ScriptedServer) -> None:
    server.default = Reply.json(TRANSLATE_REPLY)
    _, received = call_both(server, "translate", (TRANSLATE_REQUEST,), hosting="aleph-alpha")
    # The model travels in the request, first; the client appends nothing but hosting.
    assert received[0].body.decode() == TRANSLATE_BODY[:-1] + ', "hosting": "aleph-alpha"}'
    server.default = Reply.json({"id": "abc"}, status=201)
    result, received = call_both(server, "create_steering_concept", (STEERING_REQUEST,))
    assert '"model"' not in received[0].body.decode()
    assert result == SteeringConceptCreationResponse(id="abc")


def test_translate_answer_with_segments(server: ScriptedServer) -> None:
    from aleph_alpha_client.translation import TranslationSegment

    reply = dict(TRANSLATE_REPLY)
    reply["segments"] = [{"source": "Hello", "translation": "Hallo", "score": 0.9}]
    server.default = Reply.json(reply)
    result, _ = call_both(server, "translate", (TRANSLATE_REQUEST,))
    assert result.segments == [TranslationSegment("Hello", "Hallo", 0.9)]


# ----------------------------------------------------------------- version and models helpers


@pytest.mark.parametrize("version", ["1.19.0", "1.20.3", "1.19.0\n"])
def test_validate_version_accepts_supported_versions(server: ScriptedServer, version: str) -> None:
    server.default = Reply(200, {"Content-Type": "text/plain"}, [version.encode()])
    result, received = call_both(server, "validate_version")
    assert result is None
    assert [(r.method, r.path) for r in received] == [("GET", "/v1/version")]


@pytest.mark.parametrize("version", ["1.18.9", "2.0.0", "0.9.0"])
def test_validate_version_rejects_unsupported_versions(
    server: ScriptedServer, version: str
) -> None:
    server.default = Reply(200, {"Content-Type": "text/plain"}, [version.encode()])
    with pytest.raises(RuntimeError, match=r"1\.19\.0"):
        call_sync(server, "validate_version")
    with pytest.raises(RuntimeError, match=r"1\.19\.0"):
        call_async(server, "validate_version")


def test_gets_never_carry_nice(server: ScriptedServer) -> None:
    server.default = Reply(200, {"Content-Type": "text/plain"}, [b"1.19.0"])
    _, received = call_both(server, "get_version", nice=True)
    assert received[0].path == "/v1/version"
    server.default = Reply.json([])
    _, received = call_both(server, "models", nice=True, hosting="aleph-alpha")
    assert received[0].path == "/v1/models_available"
    assert received[0].body == b""


# ------------------------------------------------------------------- batch_semantic_embed


def _batch_request(count: int) -> BatchSemanticEmbeddingRequest:
    return BatchSemanticEmbeddingRequest(
        prompts=[Prompt.from_text(f"p{i}") for i in range(count)],
        representation=SemanticRepresentation.Query,
        compress_to_size=128,
    )


def _batch_reply(first: int, count: int, version: str) -> Reply:
    return Reply.json(
        {
            "model_version": version,
            "embeddings": [[float(first + i)] for i in range(count)],
            "num_tokens_prompt_total": count * 2,
        }
    )


def _received_prompts(received: Received) -> list[str]:
    return [prompt[0]["data"] for prompt in received.json()["prompts"]]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_batch_101_prompts_are_split_into_100_and_1(server: ScriptedServer, kind: str) -> None:
    server.add(_batch_reply(0, 100, "v-first"), _batch_reply(100, 1, "v-last"))
    call = call_sync if kind == "sync" else call_async
    result, received = call(server, "batch_semantic_embed", (_batch_request(101),))
    assert [len(r.json()["prompts"]) for r in received] == [100, 1]
    assert _received_prompts(received[0]) == [f"p{i}" for i in range(100)]
    assert _received_prompts(received[1]) == ["p100"]
    for r in received:
        assert r.path == "/v1/batch_semantic_embed"
        body = r.json()
        assert "model" not in body  # model=None sends no model key
        assert list(body) == [
            "prompts",
            "representation",
            "compress_to_size",
            "normalize",
            "contextual_control_threshold",
            "control_log_additive",
        ]
        assert body["representation"] == "query"
        assert body["compress_to_size"] == 128
    assert isinstance(result, BatchSemanticEmbeddingResponse)
    assert result.embeddings == [[float(i)] for i in range(101)]
    assert result.num_tokens_prompt_total == 202
    assert result.model_version == "v-last"


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_batch_with_model_and_small_batch_size(server: ScriptedServer, kind: str) -> None:
    server.add(*[_batch_reply(i * 3, min(3, 7 - i * 3), f"v{i}") for i in range(3)])
    call = call_sync if kind == "sync" else call_async
    result, received = call(
        server,
        "batch_semantic_embed",
        (),
        {"request": _batch_request(7), "model": "luminous-base", "batch_size": 3},
    )
    assert [len(r.json()["prompts"]) for r in received] == [3, 3, 1]
    assert all(r.json()["model"] == "luminous-base" for r in received)
    assert all(r.body.decode().endswith(', "model": "luminous-base"}') for r in received)
    assert result.embeddings == [[float(i)] for i in range(7)]
    assert result.model_version == "v2"


def _concurrent_batch_server(server: ScriptedServer, count: int, batch: int) -> dict[str, bool]:
    """Serve each batch the answer for its own prompts, only once every batch has arrived
    (proof that they run concurrently), and answer the last batch first, then the one
    before it, and so on, so answers come back in reverse order."""
    batches = (count + batch - 1) // batch
    by_first = {
        index * batch: (
            index,
            _batch_reply(index * batch, min(batch, count - index * batch), f"v{index}"),
        )
        for index in range(batches)
    }
    state = {"all_arrived_before_any_answer": True}
    barrier = threading.Barrier(batches, timeout=10)
    released = [threading.Event() for _ in range(batches)]
    released[-1].set()
    last: dict[int, Received] = {}

    class Recorded(list):  # type: ignore[type-arg]
        def append(self, item: Received) -> None:
            super().append(item)
            last[threading.get_ident()] = item

    server.received = Recorded()

    def matched() -> Reply:
        # Concurrent requests arrive in any order: answer the one this thread recorded.
        first = int(_received_prompts(last[threading.get_ident()])[0][1:])
        index, reply = by_first[first]
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            state["all_arrived_before_any_answer"] = False
        released[index].wait(timeout=10)
        if index:
            released[index - 1].set()
        return reply

    server._next = matched  # type: ignore[method-assign]
    return state


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_batch_concurrency_keeps_input_order(server: ScriptedServer, kind: str) -> None:
    state = _concurrent_batch_server(server, 10, 2)
    call = call_sync if kind == "sync" else call_async
    result, received = call(
        server,
        "batch_semantic_embed",
        (_batch_request(10), "m"),
        {"num_concurrent_requests": 5, "batch_size": 2},
    )
    assert len(received) == 5
    assert state["all_arrived_before_any_answer"], "batches were not sent concurrently"
    assert sorted(len(r.json()["prompts"]) for r in received) == [2] * 5
    assert result.embeddings == [[float(i)] for i in range(10)]
    assert result.num_tokens_prompt_total == 20
    # The model version of the last batch, whatever order the answers came in.
    assert result.model_version == "v4"


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_batch_failure_raises_the_typed_error_naming_the_batch(
    server: ScriptedServer, kind: str
) -> None:
    from aleph_alpha_client import BadRequestError

    server.add(
        _batch_reply(0, 100, "v"),
        Reply.json({"error": "prompt too long", "code": "PROMPT_TOO_LONG"}, status=400),
    )
    call = call_sync if kind == "sync" else call_async
    with pytest.raises(BadRequestError) as info:
        call(server, "batch_semantic_embed", (_batch_request(150), "m"))
    err = info.value
    assert isinstance(err, ValueError)
    assert err.args[0] == 400
    assert "prompt too long" in err.args[1]
    notes = " ".join(getattr(err, "__notes__", []))
    assert "batch 2 of 2" in notes
    assert "100" in notes


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_batch_with_no_prompts_sends_nothing(server: ScriptedServer, kind: str) -> None:
    call = call_sync if kind == "sync" else call_async
    result, received = call(server, "batch_semantic_embed", (_batch_request(0), "m"))
    assert received == []
    assert server.connections == 0
    assert result == BatchSemanticEmbeddingResponse(
        model_version="", embeddings=[], num_tokens_prompt_total=0
    )


@pytest.mark.parametrize("batch_size", [0, 101])
def test_batch_size_out_of_range_is_rejected_before_sending(
    server: ScriptedServer, batch_size: int
) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        call_sync(server, "batch_semantic_embed", (_batch_request(3),), {"batch_size": batch_size})
    with pytest.raises(ValueError, match="batch_size"):
        call_async(server, "batch_semantic_embed", (_batch_request(3),), {"batch_size": batch_size})
    assert server.received == []


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_batch_with_a_progress_bar(
    server: ScriptedServer, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("tqdm")
    server.add(_batch_reply(0, 2, "v0"), _batch_reply(2, 1, "v1"))
    call = call_sync if kind == "sync" else call_async
    result, received = call(
        server,
        "batch_semantic_embed",
        (_batch_request(3), "m"),
        {"batch_size": 2, "progress_bar": True},
    )
    assert len(received) == 2
    assert result.embeddings == [[0.0], [1.0], [2.0]]
    assert "2/2" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_batch_progress_bar_without_tqdm_fails_before_sending(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    import sys

    from aleph_alpha_client import MissingDependencyError

    monkeypatch.setitem(sys.modules, "tqdm", None)
    call = call_sync if kind == "sync" else call_async
    with pytest.raises(MissingDependencyError, match="tqdm"):
        call(server, "batch_semantic_embed", (_batch_request(3), "m"), {"progress_bar": True})
    assert server.received == []


def test_chat_with_a_pydantic_response_format(server: ScriptedServer) -> None:
    pydantic = pytest.importorskip("pydantic")

    class Aquarium(pydantic.BaseModel):  # type: ignore[name-defined,misc]
        animal: str
        count: int

    request = ChatRequest(
        model="m", messages=[Message(Role.User, "Describe nemo")], response_format=Aquarium
    )
    reply = json.loads(json.dumps(CHAT_REPLY))
    reply["choices"][0]["message"]["content"] = '{"animal": "clownfish", "count": 2}'
    server.default = Reply.json(reply)
    result, received = call_both(server, "chat", (request, "llama"))
    # official-client-reference.md §3.2: the pydantic variant's wire form.
    assert received[0].body.decode() == (
        '{"model": "llama", "messages": [{"role": "user", "content": "Describe nemo"}], '
        '"response_format": {"type": "json_schema", "json_schema": {"schema": {"properties": '
        '{"animal": {"title": "Animal", "type": "string"}, "count": {"title": "Count", '
        '"type": "integer"}}, "required": ["animal", "count"], "title": "Aquarium", '
        '"type": "object"}, "name": "Aquarium", "description": null, "strict": true}}}'
    )
    assert result.parsed(Aquarium) == Aquarium(animal="clownfish", count=2)
