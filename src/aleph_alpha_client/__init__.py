"""aleph_alpha_client: a fast, complete Python client for the Aleph Alpha inference API.

A drop-in replacement of the official ``aleph-alpha-client`` 11.x: the same names, module
paths, signatures and wire format, with sync and async streaming, typed errors, retries that
honour ``Retry-After``, timeouts on every call, an offline emulator and a CLI.
"""

from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from ._client import Client
from ._config import DEFAULT_HOST, Timeout
from ._exceptions import (
    AlephAlphaError,
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BusyError,
    ConflictError,
    EventTooLargeError,
    IncompleteStreamError,
    InternalServerError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    MissingDependencyError,
    ModelNotFoundError,
    NotFoundError,
    PermissionDeniedError,
    QuotaError,
    RateLimitError,
    RequestTimeoutError,
    StreamError,
    StreamEventError,
    StructuredOutputError,
    ToolArgumentsError,
    ToolLoopLimitError,
    UnknownStatusError,
    UnprocessableEntityError,
)
from ._hooks import RequestEvent, ResponseEvent
from ._raw import RawResponse
from ._streaming import AsyncStream, Stream
from .chat import (
    ChatChoice,
    ChatRequest,
    ChatResponse,
    ChatStreamChunk,
    ChoiceFinishReason,
    FinishReason,
    FunctionCall,
    Message,
    ReasoningChunk,
    Role,
    StreamOptions,
    TextMessage,
    TokenLogprob,
    ToolCall,
    ToolFunction,
    TopLogprob,
    Usage,
)
from .completion import CompletionRequest, CompletionResponse
from .detokenization import DetokenizationRequest, DetokenizationResponse
from .document import Document
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
    SemanticRepresentation,
)
from .evaluation import EvaluationRequest, EvaluationResponse
from .explanation import (
    CustomGranularity,
    Explanation,
    ExplanationPostprocessing,
    ExplanationRequest,
    ExplanationResponse,
    ImagePromptItemExplanation,
    ImageScore,
    PromptGranularity,
    TargetGranularity,
    TargetPromptItemExplanation,
    TargetScore,
    TextPromptItemExplanation,
    TextScore,
    TokenPromptItemExplanation,
    TokenScore,
)
from .model_settings import ModelSettings
from .prompt import (
    ControlTokenOverlap,
    Image,
    ImageControl,
    Prompt,
    Text,
    TextControl,
    TokenControl,
    Tokens,
)
from .prompt_template import PromptTemplate
from .reranking import RerankRequest, RerankResponse, RerankResult, RerankUsage
from .structured import AsyncStructuredStream, StructuredStream
from .structured_output import JSONSchema
from .tokenization import TokenizationRequest, TokenizationResponse
from .tools import Tool, ToolResult, ToolRunResult, tool
from .transcription import TranscriptionResponse, TranscriptionSegment
from .utils import load_base64_from_file, load_base64_from_url
from .version import __version__

if _TYPE_CHECKING:
    from ._async_client import AsyncClient


def __getattr__(name: str) -> _Any:
    # AsyncClient (and with it asyncio) is imported on first use: sync users never pay for it.
    if name == "AsyncClient":
        from ._async_client import AsyncClient

        globals()["AsyncClient"] = AsyncClient
        return AsyncClient
    raise AttributeError(f"module 'aleph_alpha_client' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | {"AsyncClient"})


#: Pooling options of ``EmbeddingRequest`` (informational, as in the official client).
POOLING_OPTIONS = ["mean", "max", "last_token", "abs_max"]

__all__ = [
    "DEFAULT_HOST",
    "POOLING_OPTIONS",
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AlephAlphaError",
    "AsyncClient",
    "AsyncStream",
    "AsyncStructuredStream",
    "AuthenticationError",
    "BadRequestError",
    "BatchSemanticEmbeddingRequest",
    "BatchSemanticEmbeddingResponse",
    "BusyError",
    "ChatChoice",
    "ChatRequest",
    "ChatResponse",
    "ChatStreamChunk",
    "ChoiceFinishReason",
    "Client",
    "CompletionRequest",
    "CompletionResponse",
    "ConflictError",
    "ControlTokenOverlap",
    "CustomGranularity",
    "DetokenizationRequest",
    "DetokenizationResponse",
    "Document",
    "EmbeddingRequest",
    "EmbeddingResponse",
    "EmbeddingV2Request",
    "EmbeddingV2Response",
    "EvaluationRequest",
    "EvaluationResponse",
    "EventTooLargeError",
    "Explanation",
    "ExplanationPostprocessing",
    "ExplanationRequest",
    "ExplanationResponse",
    "FinishReason",
    "FunctionCall",
    "Image",
    "ImageControl",
    "ImagePromptItemExplanation",
    "ImageScore",
    "IncompleteStreamError",
    "InstructableEmbeddingRequest",
    "InstructableEmbeddingResponse",
    "InternalServerError",
    "InvalidArgumentError",
    "InvalidArgumentTypeError",
    "JSONSchema",
    "Message",
    "MissingDependencyError",
    "ModelNotFoundError",
    "ModelSettings",
    "NotFoundError",
    "PermissionDeniedError",
    "Prompt",
    "PromptGranularity",
    "PromptTemplate",
    "QuotaError",
    "RateLimitError",
    "RawResponse",
    "ReasoningChunk",
    "RequestEvent",
    "RequestTimeoutError",
    "RerankRequest",
    "RerankResponse",
    "RerankResult",
    "RerankUsage",
    "ResponseEvent",
    "Role",
    "SemanticEmbeddingRequest",
    "SemanticEmbeddingResponse",
    "SemanticRepresentation",
    "Stream",
    "StreamError",
    "StreamEventError",
    "StreamOptions",
    "StructuredOutputError",
    "StructuredStream",
    "TargetGranularity",
    "TargetPromptItemExplanation",
    "TargetScore",
    "Text",
    "TextControl",
    "TextMessage",
    "TextPromptItemExplanation",
    "TextScore",
    "Timeout",
    "TokenControl",
    "TokenLogprob",
    "TokenPromptItemExplanation",
    "TokenScore",
    "TokenizationRequest",
    "TokenizationResponse",
    "Tokens",
    "Tool",
    "ToolArgumentsError",
    "ToolCall",
    "ToolFunction",
    "ToolLoopLimitError",
    "ToolResult",
    "ToolRunResult",
    "TopLogprob",
    "TranscriptionResponse",
    "TranscriptionSegment",
    "UnknownStatusError",
    "UnprocessableEntityError",
    "Usage",
    "__version__",
    "load_base64_from_file",
    "load_base64_from_url",
    "tool",
]
