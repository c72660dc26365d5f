"""Pure request handlers of the emulated Aleph Alpha API (no I/O).

:func:`handle` maps one HTTP request (method, path, headers, body bytes) to a
:class:`Response`: either a JSON (or text) body, or an SSE stream given as the list of its
``data:`` payloads. The HTTP server (:mod:`.server`) only frames and sends it, and applies
faults (:mod:`.faults`).

Routes (each also under ``/v1``): ``POST complete``, ``chat/completions``, ``embed``,
``semantic_embed``, ``batch_semantic_embed``, ``instructable_embed``, ``embeddings``,
``evaluate``, ``explain``, ``tokenize``, ``detokenize``, ``rerank``, ``translate``,
``steering_concepts``; ``GET models_available``, ``version``, ``models/{model}/tokenizer``.

Answers are deterministic: the same request body gives the same answer, and ids and
``created`` derive from a hash of the body unless ``randomness`` is on. A chat answer comes from
a small fact table (``"capital of Spain"`` -> ``"The capital of Spain is Madrid."``) or else
echoes the last user message (first 200 characters)::

    You said: "<text>". This is the offline Aleph Alpha emulator.

Completions answer the prompt the same way, with a leading space. ``maximum_tokens`` cuts the
answer (chat ``finish_reason`` ``"length"``, completion ``"maximum_tokens"``); a completion
stop sequence cuts it before the sequence (``"end_of_text"``).

Errors use the API's shape ``{"error": "<message>", "code": "<CODE>"}``: 400 ``INVALID_JSON``
(body is not JSON), 400 ``INVALID_REQUEST`` (missing or ill-typed field), 400 ``UNKNOWN_MODEL``,
400 ``MISSING_CAPABILITY`` (model cannot do that), 401 ``UNAUTHENTICATED`` (token configured and
the ``Authorization: Bearer`` header is missing or wrong; ``GET version`` needs no token),
404 ``NOT_FOUND`` (unknown route), 405 ``METHOD_NOT_ALLOWED``.
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import hmac
import json
import math
import re
import struct
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from . import tokenizer
from .models import MODELS, ModelInfo
from .schema import example_for_schema

__all__ = [
    "DEFAULT_VERSION",
    "HandlerConfig",
    "Response",
    "answer_for",
    "error_response",
    "handle",
    "json_response",
    "route_of",
]

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


# --------------------------------------------------------------------------------------------
# Entry point


def handle(
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    config: HandlerConfig | None = None,
) -> Response:
    """Answer one request (see the module docstring for routes and error codes)."""
    config = config or HandlerConfig()
    route = route_of(path)
    method = method.upper()
    try:
        if route == "version":
            _require_method(method, "GET")
            return _text_response(200, config.version)
        _check_token(headers, config)
        getter = _GET_ROUTES.get(route)
        if getter is not None:
            _require_method(method, "GET")
            return getter(config)
        match = _TOKENIZER_ROUTE.fullmatch(route)
        if match:
            _require_method(method, "GET")
            return _tokenizer_route(unquote(match.group(1)), config)
        poster = _POST_ROUTES.get(route)
        if poster is None:
            raise _APIError(404, f"No route for {method} /{route}", "NOT_FOUND")
        _require_method(method, "POST")
        payload = _parse_body(body)
        return poster(payload, _Context(config, body))
    except _APIError as err:
        return error_response(err.status, err.message, err.code)
    except Exception as err:  # a bug in the emulator: answer like a server would
        return error_response(500, f"Emulator error: {err!r}", "INTERNAL_ERROR")


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


# --------------------------------------------------------------------------------------------
# Completion


def _complete(payload: dict[str, Any], ctx: _Context) -> Response:
    model = ctx.model(payload, "complete", what="completions")
    prompt = _parse_prompt(payload.get("prompt"))
    _require_image_support(model, prompt.images)
    maximum_tokens = _opt_int(payload, "maximum_tokens", 1)
    n = _n(payload)
    log_probs = _opt_int(payload, "log_probs", 0)
    echo = _bool(payload, "echo")
    want_tokens = _bool(payload, "tokens")
    raw = _bool(payload, "raw_completion")
    stops = [s for s in _str_list(payload, "stop_sequences") if s]
    stream = _bool(payload, "stream")

    answer = " " + answer_for(prompt.text, prompt.images)
    for stop in stops:  # cutting at each found stop leaves the earliest cut
        pos = answer.find(stop)
        if pos != -1:
            answer = answer[:pos]
    ids, cut = _limit(answer, maximum_tokens)
    # A stop sequence ends the text like the model's end of text does.
    finish = "maximum_tokens" if cut else "end_of_text"
    prompt_ids = tokenizer.encode(prompt.text) if echo else []
    all_ids = prompt_ids + ids

    def log_prob_entries() -> list[dict[str, float]]:
        entries: list[dict[str, float]] = []
        for position, token_id in enumerate(all_ids):
            if echo and position == 0:
                entries.append({})
                continue
            entries.append(_log_prob_entry(token_id, position, log_probs or 0))
        return entries

    if stream:
        return _complete_stream(
            payload, model, prompt, ids, all_ids, finish, n, log_probs, want_tokens, raw, echo
        )
    completions = []
    text = tokenizer.decode(all_ids)
    for index in range(n):
        result: dict[str, Any] = {"index": index}
        if log_probs is not None:
            result["log_probs"] = log_prob_entries()
        result["completion"] = text
        if raw:
            result["raw_completion"] = text
        if want_tokens:
            result["completion_tokens"] = [tokenizer.id_to_token(i) for i in all_ids]
        result["finish_reason"] = finish
        completions.append(result)
    return json_response(
        200,
        {
            "completions": completions,
            "model_version": model.model_version,
            "num_tokens_prompt_total": prompt.tokens,
            "num_tokens_generated": len(ids) * n,
        },
    )


def _log_prob_entry(token_id: int, position: int, k: int) -> dict[str, float]:
    seed = f"{token_id}:{position}".encode()
    top = -round(_unit(seed) * 2.5, 4)
    entry = {tokenizer.id_to_token(token_id): top}
    alternative = token_id
    for j in range(1, k):
        alternative = (alternative * 31 + 17 + j) % tokenizer.VOCAB_SIZE
        name = tokenizer.id_to_token(alternative)
        if name not in entry:
            entry[name] = round(top - j * 0.75 - _unit(seed + bytes([j])), 4)
    return entry


def _complete_stream(
    payload: Mapping[str, Any],
    model: ModelInfo,
    prompt: _Prompt,
    ids: list[int],
    all_ids: list[int],
    finish: str,
    n: int,
    log_probs: int | None,
    want_tokens: bool,
    raw: bool,
    echo: bool,
) -> Response:
    del payload
    events: list[str] = []
    for index in range(n):
        position = 0
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        for start in range(0, len(all_ids), _STREAM_TOKENS_PER_EVENT):
            group = all_ids[start : start + _STREAM_TOKENS_PER_EVENT]
            text = decoder.decode(
                b"".join(tokenizer.token_bytes(t) for t in group),
                final=start + _STREAM_TOKENS_PER_EVENT >= len(all_ids),
            )
            chunk: dict[str, Any] = {"type": "stream_chunk", "index": index}
            if log_probs is not None:
                chunk["log_probs"] = [
                    {}
                    if echo and position + j == 0
                    else _log_prob_entry(t, position + j, log_probs)
                    for j, t in enumerate(group)
                ]
            chunk["completion"] = text
            if raw:
                chunk["raw_completion"] = text
            if want_tokens:
                chunk["completion_tokens"] = [tokenizer.id_to_token(t) for t in group]
            events.append(dumps(chunk))
            position += len(group)
        events.append(
            dumps(
                {
                    "type": "stream_summary",
                    "index": index,
                    "model_version": model.model_version,
                    "finish_reason": finish,
                }
            )
        )
    events.append(
        dumps(
            {
                "type": "completion_summary",
                "num_tokens_prompt_total": prompt.tokens,
                "num_tokens_generated": len(ids) * n,
            }
        )
    )
    return _stream_response(events)


# --------------------------------------------------------------------------------------------
# Chat


@dataclass
class _Message:
    role: str
    text: str
    images: int
    raw: dict[str, Any]


_ROLES = {"system", "user", "assistant", "tool"}


def _parse_messages(value: Any) -> list[_Message]:
    if not isinstance(value, list) or not value:
        raise _bad("field `messages` must be a non-empty list")
    messages: list[_Message] = []
    for raw in value:
        if not isinstance(raw, dict):
            raise _bad("items of `messages` must be objects")
        role = raw.get("role")
        if role not in _ROLES:
            raise _bad(f"message role must be one of {sorted(_ROLES)}, not {role!r}")
        content = raw.get("content")
        images = 0
        if content is None:
            text = ""
        elif isinstance(content, str):
            text = content
        elif isinstance(content, list):
            texts: list[str] = []
            for part in content:
                if not isinstance(part, dict):
                    raise _bad("message content parts must be objects")
                if part.get("type") == "text" and isinstance(part.get("text"), str):
                    texts.append(part["text"])
                elif part.get("type") == "image_url":
                    images += 1
                else:
                    raise _bad(f"unknown message content part {part.get('type')!r}")
            text = "".join(texts)
        else:
            raise _bad("message `content` must be a string, a list or null")
        messages.append(_Message(str(role), text, images, raw))
    return messages


def _tool_choice(payload: Mapping[str, Any], tools: list[dict[str, Any]]) -> tuple[bool, int]:
    """Whether to call a tool, and which one (index into ``tools``)."""
    choice = payload.get("tool_choice")
    if choice is None or choice in ("auto", "required"):
        return True, 0
    if choice == "none":
        return False, 0
    if isinstance(choice, dict):
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        for i, tool in enumerate(tools):
            if tool["function"].get("name") == name:
                return True, i
        raise _bad(f"tool_choice names the function {name!r}, which is not in `tools`")
    raise _bad("field `tool_choice` must be 'auto', 'none', 'required' or a function object")


def _parse_tools(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    tools = payload.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise _bad("field `tools` must be a list")
    for tool in tools:
        if (
            not isinstance(tool, dict)
            or not isinstance(tool.get("function"), dict)
            or not isinstance(tool["function"].get("name"), str)
        ):
            raise _bad("each tool must be {'type': 'function', 'function': {'name': ...}}")
    return tools


def _schema_of(payload: Mapping[str, Any]) -> tuple[bool, Any]:
    fmt = payload.get("response_format")
    if fmt is None:
        return False, None
    if not isinstance(fmt, dict):
        raise _bad("field `response_format` must be an object")
    kind = fmt.get("type")
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
            raise _bad("response_format.json_schema.schema must be an object")
        return True, spec["schema"]
    if kind == "json_object":
        return True, {"type": "object", "properties": {"answer": {"type": "string"}}}
    if kind == "text":
        return False, None
    raise _bad(f"unknown response_format type {kind!r}")


def _chat(payload: dict[str, Any], ctx: _Context) -> Response:
    model = ctx.model(payload, "chat", what="chat conversations")
    messages = _parse_messages(payload.get("messages"))
    images = sum(m.images for m in messages)
    _require_image_support(model, images)
    maximum_tokens = _opt_int(payload, "maximum_tokens", 1)
    if maximum_tokens is None:
        maximum_tokens = _opt_int(payload, "max_tokens", 1)
    n = _n(payload)
    tools = _parse_tools(payload)
    stream = _bool(payload, "stream")
    stream_options = payload.get("stream_options")
    include_usage = isinstance(stream_options, dict) and stream_options.get("include_usage") is True
    is_json, schema = _schema_of(payload)
    steering = payload.get("steering_concepts")
    if steering is not None and not (
        isinstance(steering, list) and all(isinstance(s, str) for s in steering)
    ):
        raise _bad("field `steering_concepts` must be a list of strings")

    prompt_tokens = sum(
        len(tokenizer.encode(m.text)) + _MESSAGE_OVERHEAD_TOKENS + m.images * _IMAGE_TOKENS
        for m in messages
    )
    last = messages[-1]
    call_tool, tool_index = (False, 0)
    if tools:
        call_tool, tool_index = _tool_choice(payload, tools)
        call_tool = call_tool and last.role == "user"

    chat_id = "chatcmpl-" + ctx.hex_id("chat")
    created = ctx.created()
    if call_tool:
        function = tools[tool_index]["function"]
        arguments = json.dumps(
            example_for_schema(function.get("parameters") or {"type": "object"}, "arguments")
        )
        call = {
            "id": "chatcmpl-tool-" + ctx.hex_id("tool"),
            "type": "function",
            "function": {"name": function["name"], "arguments": arguments},
        }
        completion_tokens = len(tokenizer.encode(function["name"] + arguments))
        usage = _usage(prompt_tokens, completion_tokens)
        if stream:
            return _chat_tool_stream(chat_id, created, model, call, usage, include_usage)
        message = {"role": "assistant", "content": "", "tool_calls": [call]}
        return _chat_json(chat_id, created, model, [(message, "tool_calls")] * n, usage, n)

    if is_json:
        content = json.dumps(example_for_schema(schema, "answer"))
    elif last.role == "tool":
        content = f'The tool returned: "{last.text[:_SNIPPET]}".'
    else:
        user = next((m for m in reversed(messages) if m.role == "user"), last)
        content = answer_for(user.text, user.images)
    ids, cut = _limit(content, maximum_tokens)
    if cut:
        content = tokenizer.decode(ids)
    finish = "length" if cut else "stop"
    usage = _usage(prompt_tokens, len(ids))
    if stream:
        return _chat_text_stream(chat_id, created, model, ids, finish, usage, include_usage)
    message = {"role": "assistant", "content": content}
    if "tools" in model.capabilities:
        message["tool_calls"] = []
    return _chat_json(chat_id, created, model, [(message, finish)] * n, usage, n)


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _chat_json(
    chat_id: str,
    created: int,
    model: ModelInfo,
    choices: list[tuple[dict[str, Any], str]],
    usage: dict[str, int],
    n: int,
) -> Response:
    if n > 1:
        usage = _usage(usage["prompt_tokens"], usage["completion_tokens"] * n)
    return json_response(
        200,
        {
            "id": chat_id,
            "choices": [
                {"finish_reason": finish, "index": i, "message": message, "logprobs": None}
                for i, (message, finish) in enumerate(choices)
            ],
            "created": created,
            "model": model.name,
            "system_fingerprint": ".unknown.",
            "object": "chat.completion",
            "usage": usage,
        },
    )


def _chunk(
    chat_id: str,
    created: int,
    model: ModelInfo,
    delta: dict[str, Any] | None,
    finish: str | None = None,
    usage: dict[str, int] | None = None,
) -> str:
    choices = (
        []
        if delta is None
        else [{"finish_reason": finish, "index": 0, "delta": delta, "logprobs": None}]
    )
    return dumps(
        {
            "id": chat_id,
            "choices": choices,
            "created": created,
            "model": model.name,
            "system_fingerprint": ".unknown." if finish or usage else None,
            "object": "chat.completion.chunk",
            "usage": usage,
        }
    )


def _chat_text_stream(
    chat_id: str,
    created: int,
    model: ModelInfo,
    ids: list[int],
    finish: str,
    usage: dict[str, int],
    include_usage: bool,
) -> Response:
    events = [_chunk(chat_id, created, model, {"role": "assistant", "content": ""})]
    events.extend(_chunk(chat_id, created, model, {"content": piece}) for piece in _pieces(ids))
    events.append(_chunk(chat_id, created, model, {}, finish))
    if include_usage:
        events.append(_chunk(chat_id, created, model, None, usage=usage))
    events.append("[DONE]")
    return _stream_response(events)


def _chat_tool_stream(
    chat_id: str,
    created: int,
    model: ModelInfo,
    call: dict[str, Any],
    usage: dict[str, int],
    include_usage: bool,
) -> Response:
    events = [_chunk(chat_id, created, model, {"role": "assistant", "content": ""})]
    head = {
        "id": call["id"],
        "index": 0,
        "type": "function",
        "function": {"name": call["function"]["name"]},
    }
    events.append(_chunk(chat_id, created, model, {"content": "", "tool_calls": [head]}))
    arguments: str = call["function"]["arguments"]
    step = 12
    for start in range(0, len(arguments), step):
        fragment = {"index": 0, "function": {"arguments": arguments[start : start + step]}}
        events.append(_chunk(chat_id, created, model, {"content": "", "tool_calls": [fragment]}))
    events.append(_chunk(chat_id, created, model, {"content": ""}, "tool_calls"))
    if include_usage:
        events.append(_chunk(chat_id, created, model, None, usage=usage))
    events.append("[DONE]")
    return _stream_response(events)


# --------------------------------------------------------------------------------------------
# Embeddings

_WORD_RE = re.compile(r"\w+")
_FEATURES_PER_WORD = 16
_NOISE = 0.05


def _vector(text: str, size: int, space: str, noise_salt: str, normalize: bool) -> list[float]:
    """A deterministic vector: hashed bag of words (shared by ``space``) plus a little noise.

    Texts sharing words get similar vectors; equal inputs give equal vectors.
    """
    noise_bytes = hashlib.shake_256(f"{space}\0{noise_salt}\0{text}".encode()).digest(2 * size)
    values = [(v / 32768.0 - 1.0) * _NOISE for v in struct.unpack(f"<{size}H", noise_bytes)]
    for word in _WORD_RE.findall(text.lower())[:512]:
        digest = hashlib.blake2b(f"{space}\0{word}".encode(), digest_size=64).digest()
        for j in range(_FEATURES_PER_WORD):
            raw = int.from_bytes(digest[4 * j : 4 * j + 4], "little")
            values[raw % size] += 1.0 if raw & 0x80000000 else -1.0
    if normalize:
        norm = math.sqrt(math.fsum(v * v for v in values)) or 1.0
        values = [v / norm for v in values]
    return values


def _embed(payload: dict[str, Any], ctx: _Context) -> Response:
    model = ctx.model(payload, "embed", what="embeddings")
    prompt = _parse_prompt(payload.get("prompt"))
    _require_image_support(model, prompt.images)
    layers = _field(payload, "layers")
    pooling = _field(payload, "pooling")
    if not isinstance(layers, list) or not all(
        isinstance(x, int) and not isinstance(x, bool) for x in layers
    ):
        raise _bad("field `layers` must be a list of integers")
    if not isinstance(pooling, list) or not all(isinstance(p, str) for p in pooling):
        raise _bad("field `pooling` must be a list of strings")
    normalize = _bool(payload, "normalize")
    want_tokens = _bool(payload, "tokens")
    embeddings: dict[str, dict[str, list[float]]] = {}
    for layer in layers:
        absolute = layer if layer >= 0 else model.layers + 1 + layer
        if not 0 <= absolute <= model.layers:
            raise _bad(f"layer {layer} is out of range for {model.name} ({model.layers} layers)")
        per_pool: dict[str, list[float]] = {}
        for pool in pooling:
            if pool not in ("mean", "max", "last_token", "abs_max"):
                raise _bad(f"unknown pooling {pool!r} (mean, max, last_token, abs_max)")
            per_pool[pool] = _vector(
                prompt.text,
                model.embedding_size,
                f"{model.name}/layer_{absolute}",
                pool,
                normalize,
            )
        embeddings[f"layer_{absolute}"] = per_pool
    tokens = (
        [tokenizer.id_to_token(i) for i in tokenizer.encode(prompt.text)] if want_tokens else None
    )
    return json_response(
        200,
        {
            "model_version": model.model_version,
            "embeddings": embeddings,
            "tokens": tokens,
            "num_tokens_prompt_total": prompt.tokens,
        },
    )


def _representation(payload: Mapping[str, Any]) -> str:
    value = _str_field(payload, "representation")
    if value not in ("symmetric", "document", "query"):
        raise _bad("field `representation` must be 'symmetric', 'document' or 'query'")
    return value


def _compress(payload: Mapping[str, Any], model: ModelInfo) -> int:
    value = payload.get("compress_to_size")
    if value is None:
        return model.embedding_size
    if value != 128:
        raise _bad("field `compress_to_size` must be 128 or null")
    return 128


def _semantic_vector(
    text: str, model: ModelInfo, size: int, rep: str, normalize: bool
) -> list[float]:
    return _vector(text, size, f"{model.name}/semantic/{size}", rep, normalize)


def _semantic_embed(payload: dict[str, Any], ctx: _Context) -> Response:
    model = ctx.model(payload, "embed", default="luminous-base", what="semantic embeddings")
    prompt = _parse_prompt(payload.get("prompt"))
    _require_image_support(model, prompt.images)
    rep = _representation(payload)
    size = _compress(payload, model)
    normalize = _bool(payload, "normalize")
    return json_response(
        200,
        {
            "model_version": model.model_version,
            "embedding": _semantic_vector(prompt.text, model, size, rep, normalize),
            "num_tokens_prompt_total": prompt.tokens,
        },
    )


def _batch_semantic_embed(payload: dict[str, Any], ctx: _Context) -> Response:
    model = ctx.model(payload, "embed", default="luminous-base", what="semantic embeddings")
    prompts_raw = _field(payload, "prompts")
    if not isinstance(prompts_raw, list):
        raise _bad("field `prompts` must be a list of prompts")
    if len(prompts_raw) > 100:
        raise _bad("field `prompts` holds at most 100 prompts")
    prompts = [_parse_prompt(p, "prompts[]") for p in prompts_raw]
    for p in prompts:
        _require_image_support(model, p.images)
    rep = _representation(payload)
    size = _compress(payload, model)
    normalize = _bool(payload, "normalize")
    return json_response(
        200,
        {
            "model_version": model.model_version,
            "embeddings": [_semantic_vector(p.text, model, size, rep, normalize) for p in prompts],
            "num_tokens_prompt_total": sum(p.tokens for p in prompts),
        },
    )


def _instructable_embed(payload: dict[str, Any], ctx: _Context) -> Response:
    model = ctx.model(payload, "instructable_embed", what="instructable embeddings")
    prompt = _parse_prompt(payload.get("input"), "input")
    instruction = _str_field(payload, "instruction")
    normalize = _bool(payload, "normalize")
    vector = _vector(prompt.text, model.embedding_size, model.name, instruction, normalize)
    return json_response(
        200,
        {
            "model_version": model.model_version,
            "embedding": vector,
            "num_tokens_prompt_total": prompt.tokens + len(tokenizer.encode(instruction)),
        },
    )


def _embeddings(payload: dict[str, Any], ctx: _Context) -> Response:
    model = ctx.model(payload, "", what="embeddings")
    if not model.capabilities & {"embed", "instructable_embed"}:
        ctx.model(payload, "embed", what="embeddings")
    raw = _field(payload, "input")
    texts: list[tuple[str, int]] = []
    if isinstance(raw, str):
        texts = [(raw, len(tokenizer.encode(raw)))]
    elif isinstance(raw, list) and raw and all(isinstance(x, str) for x in raw):
        texts = [(x, len(tokenizer.encode(x))) for x in raw]
    elif isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw):
        texts = [(tokenizer.decode(_token_ids(raw, "input")), len(raw))]
    elif isinstance(raw, list) and raw and all(isinstance(x, list) for x in raw):
        texts = [(tokenizer.decode(_token_ids(x, "input[]")), len(x)) for x in raw]
    else:
        raise _bad("field `input` must be a string, a list of strings or token ids")
    size = _opt_int(payload, "dimensions", 1) or model.embedding_size
    if size > model.embedding_size:
        raise _bad(f"field `dimensions` must be at most {model.embedding_size}")
    encoding = payload.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise _bad("field `encoding_format` must be 'float' or 'base64'")
    data = []
    for index, (text, _count) in enumerate(texts):
        vector = _vector(text, size, f"{model.name}/v2/{size}", "", True)
        embedding: Any = vector
        if encoding == "base64":
            embedding = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "embedding": embedding, "index": index})
    tokens = sum(count for _text, count in texts)
    return json_response(
        200,
        {
            "object": "list",
            "data": data,
            "model": model.name,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        },
    )


# --------------------------------------------------------------------------------------------
# Evaluate, explain


def _evaluate(payload: dict[str, Any], ctx: _Context) -> Response:
    model = ctx.model(payload, "evaluate", what="evaluation")
    prompt = _parse_prompt(payload.get("prompt"))
    _require_image_support(model, prompt.images)
    expected = _str_field(payload, "completion_expected")
    expected_ids = tokenizer.encode(expected)
    greedy = " " + answer_for(prompt.text, prompt.images)
    greedy_ids = tokenizer.encode(greedy)[: max(len(expected_ids), 1)]
    correct = bool(expected) and greedy.startswith(expected)
    if correct:
        log_probability = -round(0.05 * len(expected_ids), 4)
    else:
        seed = f"{prompt.text}\0{expected}".encode()
        log_probability = -round(1.0 + 10.0 * _unit(seed) + 0.5 * len(expected_ids), 4)
    tokens = max(len(expected_ids), 1)
    chars = max(len(expected), 1)
    return json_response(
        200,
        {
            "model_version": model.model_version,
            "result": {
                "log_probability": log_probability,
                "log_perplexity": -log_probability,
                "log_perplexity_per_token": -log_probability / tokens,
                "log_perplexity_per_character": -log_probability / chars,
                "correct_greedy": correct,
                "token_count": len(expected_ids),
                "character_count": len(expected),
                "completion": tokenizer.decode(greedy_ids),
            },
            "num_tokens_prompt_total": prompt.tokens,
        },
    )


def _token_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    position = 0
    for token_id in tokenizer.encode(text):
        piece = decoder.decode(tokenizer.token_bytes(token_id))
        spans.append((position, len(piece)))
        position += len(piece)
    return spans


def _spans(text: str, granularity: Any) -> list[tuple[int, int]]:
    kind = granularity.get("type") if isinstance(granularity, dict) else granularity
    if kind in (None, "token"):
        return _token_spans(text)
    if kind == "word":
        pattern = r"\S+"
    elif kind == "sentence":
        pattern = r"[^.!?]+[.!?]*\s*"
    elif kind == "paragraph":
        pattern = r"(?:[^\n]|\n(?!\n))+\n*"
    elif kind == "custom":
        delimiter = granularity.get("delimiter") if isinstance(granularity, dict) else None
        if not isinstance(delimiter, str) or not delimiter:
            raise _bad("custom prompt_granularity needs a non-empty `delimiter`")
        spans = []
        position = 0
        for part in text.split(delimiter):
            spans.append((position, len(part)))
            position += len(part) + len(delimiter)
        return spans
    else:
        raise _bad(f"unknown prompt_granularity {kind!r}")
    return [(m.start(), m.end() - m.start()) for m in re.finditer(pattern, text)]


def _explain(payload: dict[str, Any], ctx: _Context) -> Response:
    model = ctx.model(payload, "evaluate", what="explanations")
    prompt_raw = payload.get("prompt")
    prompt = _parse_prompt(prompt_raw)
    _require_image_support(model, prompt.images)
    target = _str_field(payload, "target")
    granularity = payload.get("prompt_granularity")
    target_granularity = payload.get("target_granularity") or "complete"
    if target_granularity not in ("complete", "token"):
        raise _bad("field `target_granularity` must be 'complete' or 'token'")
    postprocessing = payload.get("postprocessing")
    if postprocessing not in (None, "none", "square", "absolute"):
        raise _bad("field `postprocessing` must be 'square' or 'absolute'")
    normalize = _bool(payload, "normalize")

    if target_granularity == "token":
        target_spans = _token_spans(target)
        targets = [(target[s : s + n], s) for s, n in target_spans] or [(target, 0)]
    else:
        target_spans = []
        targets = [(target, 0)]

    def score(*parts: object) -> float:
        seed = "\0".join(str(p) for p in parts).encode()
        value = _unit(seed) * 2.0 - 1.0
        if postprocessing == "square":
            value = value * value
        elif postprocessing == "absolute":
            value = abs(value)
        return value

    explanations = []
    for k, (target_piece, _start) in enumerate(targets):
        items: list[dict[str, Any]] = []
        for index, (kind, data) in enumerate(prompt.items):
            if kind == "text":
                text: str = data
                items.append(
                    {
                        "type": "text",
                        "scores": [
                            {"start": s, "length": n, "score": score(target_piece, k, index, s)}
                            for s, n in _spans(text, granularity)
                        ],
                    }
                )
            elif kind == "token_ids":
                items.append(
                    {
                        "type": "token_ids",
                        "scores": [score(target_piece, k, index, j) for j in range(len(data))],
                    }
                )
            else:
                third = 1.0 / 3.0
                items.append(
                    {
                        "type": "image",
                        "scores": [
                            {
                                "rect": {
                                    "top": row * third,
                                    "left": col * third,
                                    "width": third,
                                    "height": third,
                                },
                                "score": score(target_piece, k, index, row, col),
                            }
                            for row in range(3)
                            for col in range(3)
                        ],
                    }
                )
        items.append(
            {
                "type": "target",
                "scores": [
                    {"start": s, "length": n, "score": score(target_piece, k, "target", s)}
                    for s, n in target_spans[:k]
                ],
            }
        )
        if normalize:
            _normalize_scores(items)
        explanations.append({"target": target_piece, "items": items})
    return json_response(200, {"model_version": model.model_version, "explanations": explanations})


def _normalize_scores(items: list[dict[str, Any]]) -> None:
    def values() -> Iterator[float]:
        for item in items:
            for s in item["scores"]:
                yield abs(s if isinstance(s, float) else s["score"])

    peak = max(values(), default=0.0)
    if peak <= 0:
        return
    for item in items:
        item["scores"] = [
            s / peak if isinstance(s, float) else {**s, "score": s["score"] / peak}
            for s in item["scores"]
        ]


# --------------------------------------------------------------------------------------------
# Tokens


def _tokenize(payload: dict[str, Any], ctx: _Context) -> Response:
    ctx.model(payload, "")
    text = _str_field(payload, "prompt")
    ids = tokenizer.encode(text)
    return json_response(
        200,
        {
            "tokens": [tokenizer.id_to_token(i) for i in ids] if _bool(payload, "tokens") else None,
            "token_ids": ids if _bool(payload, "token_ids") else None,
        },
    )


def _detokenize(payload: dict[str, Any], ctx: _Context) -> Response:
    ctx.model(payload, "")
    ids = _token_ids(_field(payload, "token_ids"), "token_ids")
    return json_response(200, {"result": tokenizer.decode(ids)})


def _tokenizer_route(name: str, config: HandlerConfig) -> Response:
    if name not in config.models:
        raise _APIError(400, f"Model '{name}' is not available", "UNKNOWN_MODEL")
    return Response(
        200,
        [("Content-Type", "application/json")],
        tokenizer.tokenizer_json().encode("utf-8"),
    )


# --------------------------------------------------------------------------------------------
# Rerank, translate, steering, models


def _rerank(payload: dict[str, Any], ctx: _Context) -> Response:
    ctx.model(payload, "rerank", what="reranking")
    query = _str_field(payload, "query")
    documents = _field(payload, "documents")
    if not isinstance(documents, list) or not all(isinstance(d, str) for d in documents):
        raise _bad("field `documents` must be a list of strings")
    top_n = _opt_int(payload, "top_n", 0)
    query_words = set(_WORD_RE.findall(query.lower()))
    scored = []
    for index, document in enumerate(documents):
        words = set(_WORD_RE.findall(document.lower()))
        overlap = len(query_words & words) / len(query_words) if query_words else 0.0
        jitter = _unit(f"{query}\0{document}".encode()) * 0.0009
        scored.append((round(0.0001 + 0.998 * overlap + jitter, 6), index))
    scored.sort(key=lambda pair: (-pair[0], pair[1]))
    if top_n is not None:
        scored = scored[:top_n]
    total = len(tokenizer.encode(query)) * len(documents) + sum(
        len(tokenizer.encode(d)) for d in documents
    )
    return json_response(
        200,
        {
            "results": [{"index": i, "relevance_score": s} for s, i in scored],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": total},
        },
    )


_TRANSLATIONS = {
    ("hello", "de"): "Hallo",
    ("hello", "fr"): "Bonjour",
    ("hello", "es"): "Hola",
    ("hello, how are you?", "de"): "Hallo, wie geht es dir?",
    ("thank you", "de"): "Danke",
}


def _translate(payload: dict[str, Any], ctx: _Context) -> Response:
    ctx.model(payload, "translate", what="translation")
    source = _str_field(payload, "source")
    language = _str_field(payload, "target_language")
    if not re.fullmatch(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*", language):
        raise _bad(f"unknown target_language {language!r}")
    translation = _TRANSLATIONS.get((source.strip().lower(), language.lower()))
    if translation is None:
        translation = f"[{language}] {source}"
    return json_response(
        200,
        {
            "translation": translation,
            "score": round(0.6 + 0.35 * _unit(f"{source}\0{language}".encode()), 4),
            "segments": None,
            "num_tokens_prompt_total": len(tokenizer.encode(source)),
            "num_tokens_generated": len(tokenizer.encode(translation)),
        },
    )


def _steering_concepts(payload: dict[str, Any], ctx: _Context) -> Response:
    examples = _field(payload, "examples")
    if (
        not isinstance(examples, list)
        or not examples
        or not all(
            isinstance(e, dict)
            and isinstance(e.get("negative"), str)
            and isinstance(e.get("positive"), str)
            for e in examples
        )
    ):
        raise _bad("field `examples` must be a non-empty list of {negative, positive} strings")
    return json_response(201, {"id": ctx.hex_id("steering", 64)})


def _models_available(config: HandlerConfig) -> Response:
    return json_response(200, [model.to_json() for model in config.models.values()])


_POST_ROUTES: dict[str, Callable[[dict[str, Any], _Context], Response]] = {
    "complete": _complete,
    "chat/completions": _chat,
    "embed": _embed,
    "semantic_embed": _semantic_embed,
    "batch_semantic_embed": _batch_semantic_embed,
    "instructable_embed": _instructable_embed,
    "embeddings": _embeddings,
    "evaluate": _evaluate,
    "explain": _explain,
    "tokenize": _tokenize,
    "detokenize": _detokenize,
    "rerank": _rerank,
    "translate": _translate,
    "steering_concepts": _steering_concepts,
}
_GET_ROUTES: dict[str, Callable[[HandlerConfig], Response]] = {
    "models_available": _models_available,
}
_TOKENIZER_ROUTE = re.compile(r"models/(.+)/tokenizer")

#: Routes the emulator serves (without the ``/v1`` prefix).
ROUTES: tuple[str, ...] = (
    *_POST_ROUTES,
    *_GET_ROUTES,
    "version",
    "models/{model}/tokenizer",
)
