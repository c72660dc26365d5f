"""Pure request handlers of the emulated Aleph Alpha API (no I/O).

:func:`handle` maps one HTTP request (method, path, headers, body bytes) to a
:class:`Response`: either a JSON (or text) body, or an SSE stream given as the list of its
``data:`` payloads. The HTTP server (:mod:`.server`) only frames and sends it, and applies
faults (:mod:`.faults`).

Routes (each also under ``/v1``): ``POST complete``, ``chat/completions``, ``embed``,
``semantic_embed``, ``batch_semantic_embed``, ``instructable_embed``, ``embeddings``,
``evaluate``, ``explain``, ``tokenize``, ``detokenize``, ``rerank``, ``translate``,
``steering_concepts``, ``transcribe`` (multipart); ``GET models_available``, ``model-settings``,
``version``, ``models/{model}/tokenizer``.

Chat knows reasoning models (``qwen3-32b-reasoning`` answers with ``reasoning_content``,
``deepseek-r1-distill-llama-8b`` thinks in ``<think>`` tags), ``n`` choices (streamed too, choice
``i`` > 0 ends in ``(Answer i+1.)``), ``logprobs``/``top_logprobs`` and ``reasoning_effort``
(more thoughts for ``"high"``). ``transcribe`` is deterministic: "audio" that is printable ASCII
is transcribed as that text, anything else as a sentence naming its size and hash.

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

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

from .chat import _chat
from .common import (
    DEFAULT_VERSION,
    HandlerConfig,
    Response,
    _APIError,
    _check_token,
    _Context,
    _parse_body,
    _require_method,
    _text_response,
    answer_for,
    error_response,
    json_response,
    route_of,
)
from .completion import _complete
from .embeddings import (
    _batch_semantic_embed,
    _embed,
    _embeddings,
    _instructable_embed,
    _semantic_embed,
)
from .explain import (
    _evaluate,
    _explain,
)
from .misc import (
    _detokenize,
    _model_settings,
    _models_available,
    _rerank,
    _steering_concepts,
    _tokenize,
    _tokenizer_route,
    _translate,
)
from .transcribe import transcribe

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
        if route == "transcribe":
            _require_method(method, "POST")
            return transcribe(headers, body, _Context(config, body))
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
    "model-settings": _model_settings,
}
_TOKENIZER_ROUTE = re.compile(r"models/(.+)/tokenizer")

#: Routes the emulator serves (without the ``/v1`` prefix).
ROUTES: tuple[str, ...] = (
    *_POST_ROUTES,
    *_GET_ROUTES,
    "transcribe",
    "version",
    "models/{model}/tokenizer",
)
