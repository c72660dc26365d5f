"""Completion: ``POST complete`` (streamed too)."""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from typing import Any

from .. import tokenizer
from ..models import ModelInfo
from .common import (
    _STREAM_TOKENS_PER_EVENT,
    Response,
    _bad,
    _bool,
    _Context,
    _limit,
    _n,
    _opt_int,
    _parse_prompt,
    _Prompt,
    _require_image_support,
    _str_list,
    _stream_response,
    _unit,
    answer_for,
    dumps,
    json_response,
)

# --------------------------------------------------------------------------------------------
# Completion


def _complete(payload: dict[str, Any], ctx: _Context) -> Response:
    model = ctx.model(payload, "complete", what="completions")
    prompt = _parse_prompt(payload.get("prompt"))
    _require_image_support(model, prompt.images)
    maximum_tokens = _opt_int(payload, "maximum_tokens", 0)
    n = _n(payload)
    log_probs = _opt_int(payload, "log_probs", 0)
    echo = _bool(payload, "echo")
    if maximum_tokens == 0 and not echo:  # 0 scores the prompt: only with echo
        raise _bad("field `maximum_tokens` may be 0 only with `echo: true`")
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
