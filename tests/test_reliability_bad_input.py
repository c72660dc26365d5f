"""Bad input is rejected before anything is sent, with an error naming the argument.

Guarantees (docs/reliability.md): every case below raises ``InvalidArgumentError`` (a
``ValueError``) or ``InvalidArgumentTypeError`` (also a ``TypeError``) whose message names
the argument, for ``Client`` and ``AsyncClient`` (a few cases over every transport of
``TRANSPORT_MODES`` too), and the loopback server received nothing:
no request and not even a connection. Streaming calls fail at the call, not at the first
iteration.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aleph_alpha_client import AsyncClient, Client
from aleph_alpha_client._exceptions import (
    AlephAlphaError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
)
from aleph_alpha_client.chat import ChatRequest, Message, Role, StreamOptions
from aleph_alpha_client.completion import CompletionRequest
from aleph_alpha_client.detokenization import DetokenizationRequest
from aleph_alpha_client.embedding import SemanticEmbeddingRequest
from aleph_alpha_client.prompt import Image, Prompt
from aleph_alpha_client.translation import TranslationRequest
from conftest import COMPAT_MODES, TOKEN, run_client
from scripted_server import Reply, ScriptedServer

MODES = ["sync", "async"]
#: The cases also run over the other transports (the checks are the client's, before any
#: transport is asked): one of each kind, sync and async, stream and not.
COMPAT_CASES = ("content-int-item", "stream-bad-field", "model-empty", "tokenizer-empty-model")
M = [Message(role=Role.User, content="hi")]


def chat_with(**fields: Any) -> Callable[[Any], Any]:
    values: dict[str, Any] = {"model": "m", "messages": M, **fields}
    return lambda c: c.chat(ChatRequest(**values), "m")


# (id, call, error type, text the message must contain)
CASES: list[tuple[str, Callable[[Any], Any], type[Exception], str]] = [
    (
        "content-int-item",
        lambda c: c.chat(ChatRequest("m", [Message(Role.User, ["look", 123])]), "m"),
        InvalidArgumentTypeError,
        "messages[0].content[1]",
    ),
    (
        "content-bytes-item",
        lambda c: c.chat(ChatRequest("m", [Message(Role.User, [b"\x89PNG"])]), "m"),
        InvalidArgumentTypeError,
        "messages[0].content[0]",
    ),
    (
        "content-dict-item",
        lambda c: c.chat(
            ChatRequest("m", [*M, Message(Role.User, [{"type": "text", "text": "x"}])]), "m"
        ),
        InvalidArgumentTypeError,
        "messages[1].content[0]",
    ),
    (
        "content-not-a-list",
        lambda c: c.chat(ChatRequest("m", [Message(Role.User, 42)]), "m"),  # type: ignore[arg-type]
        InvalidArgumentTypeError,
        "messages[0].content",
    ),
    ("no-messages", chat_with(messages=[]), InvalidArgumentError, "messages"),
    ("messages-str", chat_with(messages="hi"), InvalidArgumentTypeError, "messages"),
    (
        "message-dict",
        chat_with(messages=[{"role": "user", "content": "hi"}]),
        InvalidArgumentTypeError,
        "messages[0]",
    ),
    (
        "bad-role",
        chat_with(messages=[Message("robot", "hi")]),  # type: ignore[arg-type]
        InvalidArgumentError,
        "messages[0].role",
    ),
    (
        "maximum_tokens-str",
        chat_with(maximum_tokens="10"),
        InvalidArgumentTypeError,
        "maximum_tokens",
    ),
    ("maximum_tokens-zero", chat_with(maximum_tokens=0), InvalidArgumentError, "maximum_tokens"),
    ("temperature-str", chat_with(temperature="hot"), InvalidArgumentTypeError, "temperature"),
    ("temperature-nan", chat_with(temperature=float("nan")), InvalidArgumentError, "temperature"),
    ("top_p-above-1", chat_with(top_p=1.5), InvalidArgumentError, "top_p"),
    (
        "stream_options-dict",
        chat_with(stream_options={"include_usage": True}),
        InvalidArgumentTypeError,
        "stream_options",
    ),
    ("tools-str", chat_with(tools="search"), InvalidArgumentTypeError, "tools"),
    ("tool_choice", chat_with(tool_choice="always"), InvalidArgumentError, "tool_choice"),
    ("model-empty", lambda c: c.chat(ChatRequest("m", M), ""), InvalidArgumentError, "model"),
    ("model-blank", lambda c: c.chat(ChatRequest("m", M), "  "), InvalidArgumentError, "model"),
    ("model-int", lambda c: c.chat(ChatRequest("m", M), 7), InvalidArgumentError, "model"),
    (
        "model-missing-in-request-too",
        lambda c: c.chat(ChatRequest("", M), None),
        InvalidArgumentError,
        "model",
    ),
    ("request-dict", lambda c: c.chat({"messages": []}, "m"), InvalidArgumentTypeError, "request"),
    (
        "request-wrong-class",
        lambda c: c.chat(CompletionRequest(Prompt.from_text("x")), "m"),
        InvalidArgumentTypeError,
        "request",
    ),
    (
        "stream-bad-field",
        lambda c: c.chat_with_streaming(ChatRequest("m", M, maximum_tokens="10"), "m"),
        InvalidArgumentTypeError,
        "maximum_tokens",
    ),
    (
        "stream-empty-model",
        lambda c: c.complete_with_streaming(CompletionRequest(Prompt.from_text("x")), ""),
        InvalidArgumentError,
        "model",
    ),
    (
        "completion-prompt-str",
        lambda c: c.complete(CompletionRequest(prompt="hi"), "m"),  # type: ignore[arg-type]
        InvalidArgumentTypeError,
        "prompt",
    ),
    (
        "completion-maximum_tokens-str",
        lambda c: c.complete(CompletionRequest(Prompt.from_text("x"), maximum_tokens="5"), "m"),  # type: ignore[arg-type]
        InvalidArgumentTypeError,
        "maximum_tokens",
    ),
    (
        "detokenize-str-ids",
        lambda c: c.detokenize(DetokenizationRequest(["a"]), "m"),  # type: ignore[list-item]
        InvalidArgumentTypeError,
        "token_ids",
    ),
    (
        "semantic-representation",
        lambda c: c.semantic_embed(SemanticEmbeddingRequest(Prompt.from_text("x"), "sym"), "m"),  # type: ignore[arg-type]
        InvalidArgumentError,
        "representation",
    ),
    (
        "translate-empty-model",
        lambda c: c.translate(TranslationRequest("", "Hallo", "en")),
        InvalidArgumentError,
        "model",
    ),
    ("tokenizer-empty-model", lambda c: c.tokenizer(""), InvalidArgumentError, "model"),
    (
        "nan-in-tools",
        chat_with(tools=[{"type": "function", "function": {"name": "f", "x": float("nan")}}]),
        InvalidArgumentError,
        "NaN",
    ),
]


def run(mode: str, host: str, call: Callable[[Any], Any]) -> None:
    run_client(mode, host, call)


@pytest.mark.parametrize(
    ("mode", "call", "error", "names"),
    [
        pytest.param(mode, *case[1:], id=f"{case[0]}-{mode}")
        for mode in MODES + COMPAT_MODES
        for case in CASES
        if mode in MODES or case[0] in COMPAT_CASES
    ],
)
def test_rejected_before_sending(
    server: ScriptedServer,
    mode: str,
    call: Callable[[Any], Any],
    error: type[Exception],
    names: str,
) -> None:
    server.default = Reply.json({"never": "used"})
    with pytest.raises(error) as info:
        run(mode, server.url, call)
    assert isinstance(info.value, AlephAlphaError)
    assert isinstance(info.value, ValueError)
    if issubclass(error, InvalidArgumentTypeError):
        assert isinstance(info.value, TypeError)
    assert names in str(info.value)
    assert server.received == []
    assert server.connections == 0


def test_missing_image_file_fails_when_the_image_is_made(tmp_path: Path) -> None:
    """The file is read when the Image is built: the error names the path, nothing is sent."""
    missing = tmp_path / "no-such-picture.png"
    with pytest.raises(FileNotFoundError) as info:
        Image.from_file(missing)
    assert "no-such-picture.png" in str(info.value)
    with pytest.raises(FileNotFoundError):
        Image.from_image_source(str(missing))


@pytest.mark.parametrize(
    ("kwargs", "error", "names"),
    [
        ({"host": "ftp://example.com"}, InvalidArgumentError, "host"),
        ({"host": ""}, InvalidArgumentError, "host"),
        ({"total_retries": -1}, InvalidArgumentError, "total_retries"),
        ({"total_retries": "3"}, InvalidArgumentError, "total_retries"),
        ({"request_timeout_seconds": 0}, InvalidArgumentError, "request_timeout_seconds"),
        ({"request_timeout_seconds": "5"}, InvalidArgumentTypeError, "request_timeout_seconds"),
        ({"max_retry_after": -1}, InvalidArgumentError, "max_retry_after"),
        ({"max_retry_after": "1"}, InvalidArgumentTypeError, "max_retry_after"),
        ({"tags": "a"}, InvalidArgumentTypeError, "tags"),
        ({"max_event_size": 10}, InvalidArgumentError, "max_event_size"),
    ],
)
@pytest.mark.parametrize("cls", [Client, AsyncClient])
def test_constructor_arguments(
    cls: type, kwargs: dict[str, Any], error: type[Exception], names: str
) -> None:
    kwargs = {"host": "http://127.0.0.1:9", **kwargs}
    with pytest.raises(error, match=names):
        cls(TOKEN, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "names"),
    [
        ({"max_retries": -1}, InvalidArgumentError, "max_retries"),
        ({"max_retries": 1.5}, InvalidArgumentError, "max_retries"),
        ({"timeout": 0}, InvalidArgumentError, "timeout"),
        ({"timeout": "5"}, InvalidArgumentTypeError, "timeout"),
        ({"max_retry_after": "x"}, InvalidArgumentTypeError, "max_retry_after"),
        ({"max_retry_after": float("nan")}, InvalidArgumentError, "max_retry_after"),
    ],
)
@pytest.mark.parametrize("cls", [Client, AsyncClient])
def test_with_options_arguments(
    cls: type, kwargs: dict[str, Any], error: type[Exception], names: str
) -> None:
    client = cls(TOKEN, host="http://127.0.0.1:9")
    with pytest.raises(error, match=names):
        client.with_options(**kwargs)


def test_usage_request_still_valid() -> None:
    """The cases above fail for their one bad field: the same requests with it fixed pass."""
    ChatRequest("m", M, maximum_tokens=10, stream_options=StreamOptions(True))._validate()
