"""Tokens, rerank, translate, steering concepts, models."""

from __future__ import annotations

import re
from typing import Any

from .. import tokenizer
from .common import (
    HandlerConfig,
    Response,
    _APIError,
    _bad,
    _bool,
    _Context,
    _field,
    _opt_int,
    _str_field,
    _token_ids,
    _unit,
    json_response,
)
from .embeddings import _WORD_RE

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


def _model_settings(config: HandlerConfig) -> Response:
    return json_response(200, [model.to_settings_json() for model in config.models.values()])
