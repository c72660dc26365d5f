"""Batch items and results, and the OpenAI Batch API JSONL format (pure, no I/O)."""

from __future__ import annotations

import dataclasses
import enum
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._exceptions import InvalidArgumentError
from ..chat import ChatRequest, Message, Role
from ..completion import CompletionRequest
from ..embedding import (
    BatchSemanticEmbeddingRequest,
    EmbeddingRequest,
    EmbeddingV2Request,
    SemanticEmbeddingRequest,
    SemanticRepresentation,
)
from ..prompt import Prompt

__all__ = ["BatchItem", "BatchResult", "ENDPOINTS", "item_from_line", "url_for"]

#: url -> (client method, request type).
ENDPOINTS: dict[str, tuple[str, type]] = {
    "/chat/completions": ("chat", ChatRequest),
    "/complete": ("complete", CompletionRequest),
    "/semantic_embed": ("semantic_embed", SemanticEmbeddingRequest),
    "/batch_semantic_embed": ("batch_semantic_embed", BatchSemanticEmbeddingRequest),
    "/embed": ("embed", EmbeddingRequest),
    "/embeddings": ("embeddings", EmbeddingV2Request),
}


def url_for(request: Any) -> str:
    """The endpoint url of a request object; InvalidArgumentError for an unsupported type."""
    for url, (_, kind) in ENDPOINTS.items():
        if type(request) is kind:
            return url
    raise InvalidArgumentError(
        f"request: expected one of {', '.join(k.__name__ for _, k in ENDPOINTS.values())}, "
        f"got {type(request).__name__}"
    )


@dataclass(frozen=True)
class BatchItem:
    """One input of a batch: a request object with its id (and the model to run it on)."""

    custom_id: str
    request: Any
    model: str | None = None


@dataclass
class BatchResult:
    """One output of a batch: the response (``ok``) or the error, under the input's id.

    ``response`` is the typed response object; ``body`` the error answer's body (the output
    line's ``response.body`` is the response's JSON for successes).
    """

    custom_id: str
    url: str
    status_code: int | None = None
    request_id: str | None = None
    response: Any = None
    body: Any = None
    error: dict[str, Any] | None = None
    attempts: int = 1
    tokens: int = 0

    @property
    def ok(self) -> bool:
        """Whether the item succeeded."""
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        """The OpenAI Batch API output line for this result."""
        response = None
        if self.status_code is not None:
            response = {
                "status_code": self.status_code,
                "request_id": self.request_id,
                "body": self.body if self.response is None else jsonable(self.response),
            }
        return {
            "id": f"batch_req_{uuid.uuid4().hex}",
            "custom_id": self.custom_id,
            "response": response,
            "error": self.error,
        }


def jsonable(value: Any) -> Any:
    """A response object as JSON data (its ``to_json()``, else its dataclass fields)."""
    to_json = getattr(value, "to_json", None)
    if callable(to_json):
        return jsonable(to_json())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def _prompt(value: Any, where: str) -> Prompt:
    if isinstance(value, str):
        return Prompt.from_text(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return Prompt.from_text("".join(value))
    raise InvalidArgumentError(f"{where}: expected a text prompt (a string)")


def _request(url: str, body: Mapping[str, Any], where: str) -> Any:
    _, kind = ENDPOINTS[url]
    names = {f.name for f in dataclasses.fields(kind)}
    kwargs: dict[str, Any] = {}
    for key, value in body.items():
        if key == "model" and "model" not in names:
            continue
        if key == "max_tokens" and kind is ChatRequest:
            key = "maximum_tokens"
        if key not in names:
            raise InvalidArgumentError(f"{where}.body.{key}: not a field of {kind.__name__}")
        if key == "prompt" and kind is not EmbeddingV2Request:
            value = _prompt(value, f"{where}.body.prompt")
        elif key == "prompts":
            value = [_prompt(v, f"{where}.body.prompts") for v in value]
        elif key == "messages":
            try:
                value = [Message(role=Role(m["role"]), content=m["content"]) for m in value]
            except (TypeError, ValueError, KeyError) as err:
                raise InvalidArgumentError(f"{where}.body.messages: {err!r}") from None
        elif key == "representation":
            value = SemanticRepresentation(value)
        kwargs[key] = value
    if kind is ChatRequest:
        kwargs.setdefault("model", body.get("model"))
    try:
        return kind(**kwargs)
    except (TypeError, ValueError, KeyError) as err:
        raise InvalidArgumentError(f"{where}.body: {err}") from None


def item_from_line(line: str | bytes, number: int) -> BatchItem:
    """A :class:`BatchItem` from one OpenAI Batch API input line."""
    where = f"line {number}"
    try:
        data = json.loads(line)
    except ValueError as err:
        raise InvalidArgumentError(f"{where}: not JSON ({err})") from None
    if not isinstance(data, dict):
        raise InvalidArgumentError(f"{where}: expected a JSON object")
    custom_id = data.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise InvalidArgumentError(f"{where}.custom_id: expected a non-empty string")
    method = data.get("method", "POST")
    if method != "POST":
        raise InvalidArgumentError(f"{where}.method: expected 'POST', got {method!r}")
    url = data.get("url")
    if isinstance(url, str) and url.startswith("/v1/"):
        url = url[3:]
    if url not in ENDPOINTS:
        raise InvalidArgumentError(
            f"{where}.url: expected one of {', '.join(ENDPOINTS)}, got {data.get('url')!r}"
        )
    body = data.get("body")
    if not isinstance(body, dict):
        raise InvalidArgumentError(f"{where}.body: expected a JSON object")
    model = body.get("model")
    return BatchItem(
        custom_id, _request(url, body, where), model if isinstance(model, str) else None
    )
