"""Evaluate and explain."""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from typing import Any

from .. import tokenizer
from .common import (
    Response,
    _bad,
    _bool,
    _Context,
    _parse_prompt,
    _require_image_support,
    _str_field,
    _unit,
    answer_for,
    json_response,
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
