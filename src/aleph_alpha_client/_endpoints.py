"""One row per API operation: path, request type, response parser, stream accumulator. Pure.

The client methods are one or two lines each: they hand a row and the request to their
shell's ``_call`` / ``_stream``. A new endpoint is a row here and a one-line method on each
client; a streaming one also names its accumulator (a ``_streaming.StreamState``). Batching for ``batch_semantic_embed`` (splitting and merging)
lives here too, so both clients split and merge the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from ._exceptions import InvalidArgumentError, InvalidArgumentTypeError
from ._streaming import ChatItem, StreamState, chat_stream_state, completion_stream_state
from ._validation import check_int
from .chat import ChatRequest, ChatResponse
from .completion import CompletionRequest, CompletionResponse, CompletionResponseStreamItem
from .detokenization import DetokenizationRequest, DetokenizationResponse
from .embedding import (
    BatchSemanticEmbeddingRequest,
    BatchSemanticEmbeddingResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    EmbeddingV2Request,
    EmbeddingV2Response,
    InstructableEmbeddingRequest,
    InstructableEmbeddingResponse,
    SemanticEmbeddingRequest,
    SemanticEmbeddingResponse,
)
from .evaluation import EvaluationRequest, EvaluationResponse
from .explanation import ExplanationRequest, ExplanationResponse
from .reranking import RerankRequest, RerankResponse
from .steering import SteeringConceptCreationRequest, SteeringConceptCreationResponse
from .tokenization import TokenizationRequest, TokenizationResponse
from .translation import TranslationRequest, TranslationResponse

__all__ = ["Endpoint", "StreamingEndpoint", "merge_batches", "split_batches"]

R = TypeVar("R")
ItemT = TypeVar("ItemT")


@dataclass(frozen=True)
class Endpoint(Generic[R]):
    """An API operation: ``POST path`` with a ``request_type`` body, parsed by ``parse``."""

    path: str
    request_type: type
    parse: Callable[[Any], R]


@dataclass(frozen=True)
class StreamingEndpoint(Endpoint[R], Generic[R, ItemT]):
    """An operation that can also stream: ``accumulator(request)`` is the fresh state of one
    stream attempt; it yields ``ItemT`` items and builds the same ``R`` the plain call returns."""

    accumulator: Callable[[Any], StreamState[ItemT, R]]


CHAT: StreamingEndpoint[ChatResponse, ChatItem] = StreamingEndpoint(
    "chat/completions", ChatRequest, ChatResponse.from_json, chat_stream_state
)
COMPLETE: StreamingEndpoint[CompletionResponse, CompletionResponseStreamItem] = StreamingEndpoint(
    "complete", CompletionRequest, CompletionResponse.from_json, completion_stream_state
)
TOKENIZE: Endpoint[TokenizationResponse] = Endpoint(
    "tokenize", TokenizationRequest, TokenizationResponse.from_json
)
DETOKENIZE: Endpoint[DetokenizationResponse] = Endpoint(
    "detokenize", DetokenizationRequest, DetokenizationResponse.from_json
)
EMBED: Endpoint[EmbeddingResponse] = Endpoint(
    "embed", EmbeddingRequest, EmbeddingResponse.from_json
)
EMBEDDINGS: Endpoint[EmbeddingV2Response] = Endpoint(
    "embeddings", EmbeddingV2Request, EmbeddingV2Response.from_json
)
SEMANTIC_EMBED: Endpoint[SemanticEmbeddingResponse] = Endpoint(
    "semantic_embed", SemanticEmbeddingRequest, SemanticEmbeddingResponse.from_json
)
BATCH_SEMANTIC_EMBED: Endpoint[BatchSemanticEmbeddingResponse] = Endpoint(
    "batch_semantic_embed", BatchSemanticEmbeddingRequest, BatchSemanticEmbeddingResponse.from_json
)
INSTRUCTABLE_EMBED: Endpoint[InstructableEmbeddingResponse] = Endpoint(
    "instructable_embed", InstructableEmbeddingRequest, InstructableEmbeddingResponse.from_json
)
EVALUATE: Endpoint[EvaluationResponse] = Endpoint(
    "evaluate", EvaluationRequest, EvaluationResponse.from_json
)
EXPLAIN: Endpoint[ExplanationResponse] = Endpoint(
    "explain", ExplanationRequest, ExplanationResponse.from_json
)
RERANK: Endpoint[RerankResponse] = Endpoint("rerank", RerankRequest, RerankResponse.from_json)
TRANSLATE: Endpoint[TranslationResponse] = Endpoint(
    "translate", TranslationRequest, TranslationResponse.from_json
)
STEERING: Endpoint[SteeringConceptCreationResponse] = Endpoint(
    "steering_concepts", SteeringConceptCreationRequest, SteeringConceptCreationResponse.from_json
)

#: The largest batch the API takes in one ``batch_semantic_embed`` request.
MAX_BATCH_SIZE = 100


def split_batches(
    request: BatchSemanticEmbeddingRequest, batch_size: int, num_concurrent_requests: int
) -> list[BatchSemanticEmbeddingRequest]:
    """Cut a batch request into requests of at most ``batch_size`` prompts, in order."""
    if not isinstance(request, BatchSemanticEmbeddingRequest):
        raise InvalidArgumentTypeError(
            f"request: expected a BatchSemanticEmbeddingRequest, got {type(request).__name__}"
        )
    check_int("batch_size", batch_size, minimum=1, maximum=MAX_BATCH_SIZE)
    if (
        isinstance(num_concurrent_requests, bool)
        or not isinstance(num_concurrent_requests, int)
        or num_concurrent_requests < 1
    ):
        raise InvalidArgumentError(
            f"num_concurrent_requests: expected an int >= 1, got {num_concurrent_requests!r}"
        )
    prompts = list(request.prompts)
    return [
        replace(request, prompts=prompts[start : start + batch_size])
        for start in range(0, len(prompts), batch_size)
    ]


def merge_batches(
    responses: Sequence[BatchSemanticEmbeddingResponse],
) -> BatchSemanticEmbeddingResponse:
    """One response of all batches, embeddings in input order, token counts summed."""
    embeddings: list[Any] = []
    tokens = 0
    model_version = ""
    for response in responses:
        embeddings.extend(response.embeddings)
        tokens += response.num_tokens_prompt_total or 0
        model_version = response.model_version
    return BatchSemanticEmbeddingResponse(
        model_version=model_version, embeddings=embeddings, num_tokens_prompt_total=tokens
    )


def note_batch(
    error: BaseException, index: int, count: int, batch_size: int, prompts: int | None = None
) -> None:
    """Say in the error which batch failed (and which of the ``prompts`` it held)."""
    last = (index + 1) * batch_size - 1
    if prompts is not None:
        last = min(last, prompts - 1)
    note = (
        f"batch_semantic_embed: batch {index + 1} of {count} failed "
        f"(prompts {index * batch_size} to {last})"
    )
    add_note = getattr(error, "add_note", None)
    if add_note is not None:
        add_note(note)
    else:  # Python 3.10: no add_note; fill the attribute that 3.11+ fills (and prints)
        vars(error)["__notes__"] = [*getattr(error, "__notes__", ()), note]
    vars(error)["batch_index"] = index
