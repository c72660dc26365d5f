"""Embeddings: ``embed``, ``semantic_embed``, ``batch_semantic_embed``, ``instructable_embed``, ``embeddings``."""

from __future__ import annotations

import base64
import hashlib
import math
import re
import struct
from collections.abc import Mapping
from typing import Any

from .. import tokenizer
from ..models import ModelInfo
from .common import (
    Response,
    _bad,
    _bool,
    _Context,
    _field,
    _opt_int,
    _parse_prompt,
    _require_image_support,
    _str_field,
    _token_ids,
    json_response,
)

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
