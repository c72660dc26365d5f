"""One message style for bad arguments: ``argument: expected ..., got ...`` (see _validation)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from aleph_alpha_client import (
    AsyncClient,
    ChatRequest,
    Client,
    CompletionRequest,
    EmbeddingRequest,
    EmbeddingV2Request,
    ExplanationRequest,
    Message,
    Prompt,
    RerankRequest,
    Role,
    SemanticEmbeddingRequest,
    Timeout,
    TokenizationRequest,
)
from aleph_alpha_client._exceptions import InvalidArgumentError, InvalidArgumentTypeError
from aleph_alpha_client._sse import SSEDecoder
from aleph_alpha_client.steering import SteeringConceptCreationRequest
from aleph_alpha_client.tools import ToolLoop

HOST = "http://127.0.0.1:9"
STYLE = re.compile(r"^(?P<name>[\w.\[\]]+): expected (?P<what>.+), got (?P<got>.+)$")
HELLO = Prompt.from_text("hello")
MESSAGES = [Message(Role.User, "hi")]


def _client(**kwargs: Any) -> Callable[[], Any]:
    return lambda: Client("t", host=HOST, **kwargs)


def _options(**kwargs: Any) -> Callable[[], Any]:
    return lambda: AsyncClient("t", host=HOST).with_options(**kwargs)


CASES: list[tuple[str, Callable[[], Any], str, type[Exception]]] = [
    ("ctor total_retries", _client(total_retries=-1), "total_retries", InvalidArgumentError),
    ("ctor hosting", _client(hosting=3), "hosting", InvalidArgumentTypeError),
    ("ctor tags str", _client(tags="a"), "tags", InvalidArgumentTypeError),
    ("ctor tags int", _client(tags=5), "tags", InvalidArgumentTypeError),
    ("ctor max_event_size", _client(max_event_size=10), "max_event_size", InvalidArgumentError),
    ("ctor max_retry_after", _client(max_retry_after="1"), "max_retry_after", TypeError),
    (
        "ctor timeout",
        _client(request_timeout_seconds=0),
        "request_timeout_seconds",
        InvalidArgumentError,
    ),
    ("ctor host", lambda: Client("t", host="http://h/?q=1"), "host", InvalidArgumentError),
    ("Timeout.total", lambda: Timeout(total=-1), "Timeout.total", InvalidArgumentError),
    ("options timeout", _options(timeout="5"), "timeout", InvalidArgumentTypeError),
    ("options max_retries", _options(max_retries=1.5), "max_retries", InvalidArgumentError),
    ("options hosting", _options(hosting=1), "hosting", InvalidArgumentTypeError),
    ("options tags", _options(tags=[1]), "tags", InvalidArgumentTypeError),
    (
        "completion maximum_tokens",
        lambda: CompletionRequest(HELLO, maximum_tokens=-1)._validate(),
        "maximum_tokens",
        InvalidArgumentError,
    ),
    (
        "completion temperature",
        lambda: CompletionRequest(HELLO, temperature="hot")._validate(),  # type: ignore[arg-type]
        "temperature",
        InvalidArgumentTypeError,
    ),
    (
        "embedding pooling",
        lambda: EmbeddingRequest(HELLO, layers=[0], pooling="mean")._validate(),  # type: ignore[arg-type]
        "pooling",
        InvalidArgumentTypeError,
    ),
    (
        "tokenize tokens",
        lambda: TokenizationRequest("x", tokens=1, token_ids=True)._validate(),  # type: ignore[arg-type]
        "tokens",
        InvalidArgumentTypeError,
    ),
    (
        "rerank documents",
        lambda: RerankRequest("q", [])._validate(),
        "documents",
        InvalidArgumentError,
    ),
    (
        "chat n",
        lambda: ChatRequest("m", MESSAGES, n=0)._validate(),
        "ChatRequest.n",
        InvalidArgumentError,
    ),
    (
        "chat top_p",
        lambda: ChatRequest("m", MESSAGES, top_p="x")._validate(),  # type: ignore[arg-type]
        "ChatRequest.top_p",
        InvalidArgumentTypeError,
    ),
    (
        "chat messages empty",
        lambda: ChatRequest("m", [])._validate(),
        "ChatRequest.messages",
        InvalidArgumentError,
    ),
    (
        "chat logprobs",
        lambda: ChatRequest("m", MESSAGES, logprobs=1)._validate(),  # type: ignore[arg-type]
        "ChatRequest.logprobs",
        InvalidArgumentTypeError,
    ),
    (
        "chat logit_bias key",
        lambda: ChatRequest("m", MESSAGES, logit_bias={-1: 1.0})._validate(),
        "ChatRequest.logit_bias",
        InvalidArgumentTypeError,
    ),
    (
        "completion prompt",
        lambda: CompletionRequest("hello")._validate(),  # type: ignore[arg-type]
        "prompt",
        InvalidArgumentTypeError,
    ),
    (
        "completion logit_bias key",
        lambda: CompletionRequest(HELLO, logit_bias={"x": 1.0})._validate(),  # type: ignore[dict-item]
        "logit_bias",
        InvalidArgumentTypeError,
    ),
    (
        "embedding layers empty",
        lambda: EmbeddingRequest(HELLO, layers=[], pooling=["mean"])._validate(),
        "layers",
        InvalidArgumentError,
    ),
    (
        "embedding layers item",
        lambda: EmbeddingRequest(HELLO, layers=["0"], pooling=["mean"])._validate(),  # type: ignore[list-item]
        "layers[0]",
        InvalidArgumentTypeError,
    ),
    (
        "semantic representation",
        lambda: SemanticEmbeddingRequest(HELLO, "sym")._validate(),  # type: ignore[arg-type]
        "representation",
        InvalidArgumentError,
    ),
    (
        "embedding v2 input",
        lambda: EmbeddingV2Request([])._validate(),
        "input",
        InvalidArgumentError,
    ),
    (
        "explanation postprocessing",
        lambda: ExplanationRequest(HELLO, "x", postprocessing=3)._validate(),  # type: ignore[arg-type]
        "postprocessing",
        InvalidArgumentTypeError,
    ),
    (
        "steering examples",
        lambda: SteeringConceptCreationRequest([])._validate(),
        "examples",
        InvalidArgumentError,
    ),
    ("ctor token", lambda: Client("tok\u201d", host=HOST), "token", InvalidArgumentError),
    ("ctor stream_timeout", _client(stream_timeout=0), "stream_timeout", InvalidArgumentError),
    (
        "tool loop max_iterations",
        lambda: ToolLoop(ChatRequest("m", MESSAGES), max_iterations=0),
        "max_iterations",
        InvalidArgumentError,
    ),
    ("sse max_event_size", lambda: SSEDecoder(0), "max_event_size", InvalidArgumentError),
    (
        "chat steering_concepts not iterable",
        lambda: ChatRequest("m", MESSAGES, steering_concepts=5)._validate(),  # type: ignore[arg-type]
        "ChatRequest.steering_concepts",
        InvalidArgumentTypeError,
    ),
]


@pytest.mark.parametrize(("case", "call", "name", "error"), CASES, ids=[c[0] for c in CASES])
def test_bad_arguments_are_named_in_one_style(
    case: str, call: Callable[[], Any], name: str, error: type[Exception]
) -> None:
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    match = STYLE.match(message)
    assert match is not None, f"{case}: {message!r} is not 'argument: expected ..., got ...'"
    assert match["name"] == name


def test_the_style_check_can_fail() -> None:
    assert STYLE.match("maximum_tokens must be a positive int, got -1") is None
    assert STYLE.match("tags: expected a list of strings") is None
