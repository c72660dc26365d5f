"""Shared pieces of the handlers: responses, errors, field helpers, the request context, answers."""

from __future__ import annotations

import codecs
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import tokenizer
from ..models import MODELS, ModelInfo

#: The API version ``GET version`` answers by default.
DEFAULT_VERSION = "1.19.0"
_CREATED = 1735689600  # 2025-01-01T00:00:00Z, the fixed "created" of deterministic answers
_IMAGE_TOKENS = 144
_MESSAGE_OVERHEAD_TOKENS = 4
_STREAM_TOKENS_PER_EVENT = 3
_SNIPPET = 200


@dataclass
class Response:
    """One answer: a body (``events is None``) or an SSE stream of ``data:`` payloads."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    #: SSE ``data:`` payloads (compact JSON text or ``"[DONE]"``); None for a plain body.
    events: list[str] | None = None

    @property
    def is_stream(self) -> bool:
        """Whether this is an SSE stream."""
        return self.events is not None

    def json(self) -> Any:
        """The parsed JSON body."""
        return json.loads(self.body)


@dataclass(frozen=True)
class HandlerConfig:
    """Settings of the handlers."""

    token: str | None = None
    randomness: bool = False
    version: str = DEFAULT_VERSION
    models: Mapping[str, ModelInfo] = field(default_factory=lambda: MODELS)


class _APIError(Exception):
    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def _bad(message: str) -> _APIError:
    return _APIError(400, message, "INVALID_REQUEST")


def dumps(value: Any) -> str:
    """Compact JSON, as the API sends it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def json_response(status: int, value: Any, headers: Sequence[tuple[str, str]] = ()) -> Response:
    """A JSON response (compact separators, UTF-8)."""
    return Response(
        status,
        [("Content-Type", "application/json"), *headers],
        dumps(value).encode("utf-8"),
    )


def error_response(
    status: int, message: str, code: str, headers: Sequence[tuple[str, str]] = ()
) -> Response:
    """An API error response ``{"error": message, "code": code}``."""
    return json_response(status, {"error": message, "code": code}, headers)


def _text_response(status: int, text: str, content_type: str = "text/plain") -> Response:
    return Response(status, [("Content-Type", f"{content_type}; charset=utf-8")], text.encode())


def _stream_response(events: list[str]) -> Response:
    return Response(
        200,
        [
            ("Content-Type", "text/event-stream"),
            ("Cache-Control", "no-cache"),
            ("Content-Encoding", "identity"),
        ],
        events=events,
    )


def route_of(path: str) -> str:
    """The route of a request path: query and ``/v1`` prefix dropped, no leading slash."""
    path = path.split("?", 1)[0]
    route = path.lstrip("/")
    if route == "v1":
        return ""
    if route.startswith("v1/"):
        route = route[3:]
    return route


def _require_method(method: str, allowed: str) -> None:
    if method != allowed:
        raise _APIError(405, f"Method {method} not allowed, use {allowed}", "METHOD_NOT_ALLOWED")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, val in headers.items():
        if key.lower() == lowered:
            return val
    return None


def _check_token(headers: Mapping[str, str], config: HandlerConfig) -> None:
    if config.token is None:
        return
    auth = _header(headers, "Authorization") or ""
    scheme, _, credential = auth.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        credential.strip().encode(), config.token.encode()
    ):
        raise _APIError(401, "Invalid or missing API token", "UNAUTHENTICATED")


def _parse_body(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise _APIError(400, f"Request body is not valid JSON: {err}", "INVALID_JSON") from None
    if not isinstance(payload, dict):
        raise _APIError(400, "Request body must be a JSON object", "INVALID_JSON")
    return payload


@dataclass
class _Context:
    config: HandlerConfig
    body: bytes

    def hex_id(self, salt: str = "", length: int = 32) -> str:
        if self.config.randomness:
            return (uuid.uuid4().hex + uuid.uuid4().hex)[:length]
        digest = hashlib.sha256(self.body + b"\0" + salt.encode()).hexdigest()
        return digest[:length]

    def created(self) -> int:
        return int(time.time()) if self.config.randomness else _CREATED

    def model(
        self,
        payload: Mapping[str, Any],
        capability: str,
        *,
        default: str | None = None,
        what: str = "",
    ) -> ModelInfo:
        name = payload.get("model", default)
        if name is None:
            raise _bad("missing field `model`")
        if not isinstance(name, str):
            raise _bad("field `model` must be a string")
        model = self.config.models.get(name)
        if model is None:
            raise _APIError(
                400, f"Model '{name}' is not available (see GET models_available)", "UNKNOWN_MODEL"
            )
        if capability and capability not in model.capabilities:
            raise _APIError(
                400,
                "Sadly the model you chose does not provide that capability: "
                f"The model '{name}' does not support {what or capability}.",
                "MISSING_CAPABILITY",
            )
        return model


# --------------------------------------------------------------------------------------------
# Field helpers


def _field(payload: Mapping[str, Any], name: str) -> Any:
    if name not in payload or payload[name] is None:
        raise _bad(f"missing field `{name}`")
    return payload[name]


def _str_field(payload: Mapping[str, Any], name: str) -> str:
    value = _field(payload, name)
    if not isinstance(value, str):
        raise _bad(f"field `{name}` must be a string")
    return value


def _opt_int(payload: Mapping[str, Any], name: str, minimum: int = 0) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _bad(f"field `{name}` must be an integer >= {minimum}")
    return value


def _n(payload: Mapping[str, Any]) -> int:
    n = _opt_int(payload, "n", 1) or 1
    if n > 100:
        raise _bad("field `n` must be at most 100")
    return n


def _bool(payload: Mapping[str, Any], name: str, default: bool = False) -> bool:
    value = payload.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _bad(f"field `{name}` must be a boolean")
    return value


def _str_list(payload: Mapping[str, Any], name: str) -> list[str]:
    value = payload.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(f"field `{name}` must be a list of strings")
    return value


@dataclass
class _Prompt:
    text: str
    tokens: int
    images: int
    items: list[tuple[str, Any]]  # (type, text | token ids | None)


def _parse_prompt(value: Any, name: str = "prompt") -> _Prompt:
    if value is None:
        raise _bad(f"missing field `{name}`")
    if isinstance(value, str):
        value = [{"type": "text", "data": value}]
    if not isinstance(value, list):
        raise _bad(f"field `{name}` must be a string or a list of prompt items")
    texts: list[str] = []
    tokens = 0
    images = 0
    items: list[tuple[str, Any]] = []
    for item in value:
        if not isinstance(item, dict):
            raise _bad(f"items of `{name}` must be objects")
        kind = item.get("type")
        data = item.get("data")
        if kind == "text":
            if not isinstance(data, str):
                raise _bad(f"text item of `{name}` needs a string `data`")
            texts.append(data)
            tokens += len(tokenizer.encode(data))
            items.append(("text", data))
        elif kind == "token_ids":
            ids = _token_ids(data, f"{name}[].data")
            texts.append(tokenizer.decode(ids))
            tokens += len(ids)
            items.append(("token_ids", ids))
        elif kind == "image":
            if not isinstance(data, str):
                raise _bad(f"image item of `{name}` needs a base64 string `data`")
            images += 1
            tokens += _IMAGE_TOKENS
            items.append(("image", None))
        else:
            raise _bad(f"unknown prompt item type {kind!r} in `{name}`")
    return _Prompt("".join(texts), tokens, images, items)


def _token_ids(value: Any, name: str) -> list[int]:
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise _bad(f"field `{name}` must be a list of integers")
    for v in value:
        if not 0 <= v < tokenizer.VOCAB_SIZE:
            raise _APIError(
                400,
                f"token id {v} is out of range (vocabulary size {tokenizer.VOCAB_SIZE})",
                "INVALID_REQUEST",
            )
    return value


def _require_image_support(model: ModelInfo, images: int) -> None:
    if images and "image" not in model.capabilities:
        raise _APIError(
            400,
            "Sadly the model you chose does not provide that capability: "
            f"The model '{model.name}' does not support images.",
            "MISSING_CAPABILITY",
        )


# --------------------------------------------------------------------------------------------
# Answers

_FACTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("capital", "spain"), "The capital of Spain is Madrid."),
    (("capital", "france"), "The capital of France is Paris."),
    (("capital", "germany"), "The capital of Germany is Berlin."),
    (("capital", "italy"), "The capital of Italy is Rome."),
    (("2 + 2",), "2 + 2 = 4."),
    (("2+2",), "2 + 2 = 4."),
    (("who are you",), "I am the offline Aleph Alpha emulator, a stand-in for the real API."),
)


def answer_for(text: str, images: int = 0) -> str:
    """The emulator's answer to a user text (a known fact, or an echo of the text)."""
    lowered = text.lower()
    for keys, fact in _FACTS:
        if all(k in lowered for k in keys):
            return fact
    seen = ""
    if images:
        seen = f" You sent {images} image{'s' if images > 1 else ''}."
    return f'You said: "{text[:_SNIPPET]}".{seen} This is the offline Aleph Alpha emulator.'


def _limit(text: str, maximum_tokens: int | None) -> tuple[list[int], bool]:
    ids = tokenizer.encode(text)
    if maximum_tokens is not None and len(ids) > maximum_tokens:
        return ids[:maximum_tokens], True
    return ids, False


def _pieces(ids: Sequence[int], per_event: int = _STREAM_TOKENS_PER_EVENT) -> list[str]:
    """Split token ids into text pieces of about ``per_event`` tokens, never inside a char."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pieces: list[str] = []
    for start in range(0, len(ids), per_event):
        chunk = b"".join(tokenizer.token_bytes(i) for i in ids[start : start + per_event])
        final = start + per_event >= len(ids)
        text = decoder.decode(chunk, final=final)
        if text:
            pieces.append(text)
    return pieces


def _unit(seed: bytes) -> float:
    """A deterministic float in [0, 1) from ``seed``."""
    digest = hashlib.blake2b(seed, digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64
