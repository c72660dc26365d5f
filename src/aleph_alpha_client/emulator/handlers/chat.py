"""Chat: ``POST chat/completions`` (streamed too, tools, structured output)."""

from __future__ import annotations

import codecs
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import tokenizer
from ..models import ModelInfo
from ..schema import example_for_schema, place_in
from .common import (
    _IMAGE_TOKENS,
    _MESSAGE_OVERHEAD_TOKENS,
    _SNIPPET,
    _STREAM_TOKENS_PER_EVENT,
    Response,
    _bad,
    _bool,
    _Context,
    _limit,
    _n,
    _opt_int,
    _require_image_support,
    _stream_response,
    _unit,
    answer_for,
    dumps,
    json_response,
)
from .tools import pick_tool

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
    if maximum_tokens is None:
        maximum_tokens = _opt_int(payload, "max_completion_tokens", 1)
    n = _n(payload)
    logprobs = _bool(payload, "logprobs")
    top_logprobs = _opt_int(payload, "top_logprobs", 0) or 0
    if top_logprobs > 20:
        raise _bad("field `top_logprobs` must be at most 20")
    effort_name = payload.get("reasoning_effort")
    if effort_name is not None and effort_name not in _EFFORTS:
        raise _bad(f"field `reasoning_effort` must be one of {sorted(_EFFORTS)}")
    effort = _EFFORTS.get(effort_name or "medium", 2)
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
        if call_tool and not isinstance(payload.get("tool_choice"), dict):
            tool_index = pick_tool(tools, last.text)

    chat_id = "chatcmpl-" + ctx.hex_id("chat")
    created = ctx.created()
    user_text = next((m.text for m in reversed(messages) if m.role == "user"), last.text)
    if call_tool:
        function = tools[tool_index]["function"]
        arguments = json.dumps(
            example_for_schema(
                function.get("parameters") or {"type": "object"},
                "arguments",
                place=_place(messages),
            )
        )
        thought = _thought(model, user_text, effort)
        calls = [
            {
                # choice 0 keeps the id an n = 1 answer has; the others get their own
                "id": "chatcmpl-tool-" + ctx.hex_id("tool" if i == 0 else f"tool{i}"),
                "type": "function",
                "function": {"name": function["name"], "arguments": arguments},
            }
            for i in range(n)
        ]
        per_choice = len(tokenizer.encode(function["name"] + arguments))
        if thought is not None:
            per_choice += len(tokenizer.encode(thought))
        usage = _usage(prompt_tokens, per_choice * n)
        if stream:
            return _chat_tool_stream(chat_id, created, model, calls, thought, usage, include_usage)
        messages_out = [_tool_message(model, call, thought) for call in calls]
        return _chat_json(chat_id, created, model, messages_out, usage)

    if is_json:
        content = json.dumps(example_for_schema(schema, "answer"))
    elif last.role == "tool":
        content = f'The tool returned: "{last.text[:_SNIPPET]}".'
    else:
        user = next((m for m in reversed(messages) if m.role == "user"), last)
        content = answer_for(user.text, user.images)
    answers = [
        _Answer.make(model, _variant(content, i, is_json), user_text, effort, maximum_tokens)
        for i in range(n)
    ]
    completion_tokens = sum(a.tokens for a in answers)
    usage = _usage(prompt_tokens, completion_tokens)
    if stream:
        return _chat_text_stream(
            chat_id, created, model, answers, usage, include_usage, logprobs, top_logprobs
        )
    choices = []
    for i, answer in enumerate(answers):
        reply: dict[str, Any] = {"role": "assistant", "content": answer.content}
        if answer.reasoning is not None:
            reply["reasoning_content"] = answer.reasoning
        if "tools" in model.capabilities:
            reply["tool_calls"] = []
        choices.append(
            {
                "finish_reason": answer.finish,
                "index": i,
                "message": reply,
                "logprobs": _logprobs(answer.ids, top_logprobs) if logprobs else None,
            }
        )
    return _chat_response(chat_id, created, model, choices, usage)


_EFFORTS = {"low": 1, "medium": 2, "high": 3}
_THOUGHTS = (
    "I recall what I know about it.",
    "I check that the answer fits the question.",
    "I look at it once more from another side before I answer.",
)


def _thought(model: ModelInfo, user_text: str, effort: int) -> str | None:
    """What a reasoning model thinks before it answers (None for other models)."""
    if "reasoning" not in model.capabilities and "think" not in model.capabilities:
        return None
    snippet = " ".join(user_text.split())[:80]
    return " ".join((f'The user wrote: "{snippet}".', *_THOUGHTS[:effort]))


def _tool_message(model: ModelInfo, call: dict[str, Any], thought: str | None) -> dict[str, Any]:
    """An assistant message calling a tool (a reasoning model's thinking included)."""
    message: dict[str, Any] = {"role": "assistant", "content": "", "tool_calls": [call]}
    if thought is not None and "think" in model.capabilities:
        message["content"] = f"<think>\n{thought}\n</think>\n\n"
    elif thought is not None:
        message["reasoning_content"] = thought
    return message


def _variant(content: str, index: int, is_json: bool) -> str:
    """The answer of choice ``index`` (n > 1): the first is the answer, the others differ."""
    if index == 0 or is_json:
        return content
    return f"{content} (Answer {index + 1}.)"


@dataclass
class _Answer:
    """One choice's text: content (``<think>`` included for a think model), reasoning, tokens."""

    content: str
    reasoning: str | None
    ids: list[int]
    reasoning_ids: list[int]
    finish: str

    @property
    def tokens(self) -> int:
        return len(self.ids) + len(self.reasoning_ids)

    @staticmethod
    def make(
        model: ModelInfo, answer: str, user_text: str, effort: int, maximum_tokens: int | None
    ) -> _Answer:
        reasoning = _thought(model, user_text, effort)
        if "think" in model.capabilities:
            answer = f"<think>\n{reasoning}\n</think>\n\n{answer}"
            reasoning = None
        ids, cut = _limit(answer, maximum_tokens)
        content = tokenizer.decode(ids) if cut else answer
        reasoning_ids = tokenizer.encode(reasoning) if reasoning is not None else []
        return _Answer(content, reasoning, ids, reasoning_ids, "length" if cut else "stop")


def _token_logprob(token_id: int, position: int, top: int) -> dict[str, Any]:
    raw = tokenizer.token_bytes(token_id)
    logprob = -round(_unit(f"{token_id}:{position}".encode()) * 2, 4)
    alternatives = [
        {"token": raw.decode("utf-8", "replace"), "logprob": logprob, "bytes": list(raw)}
    ]
    for j in range(1, top):
        alt = (token_id + j * 7919) % tokenizer.VOCAB_SIZE
        alt_raw = tokenizer.token_bytes(alt)
        alternatives.append(
            {
                "token": alt_raw.decode("utf-8", "replace"),
                "logprob": round(logprob - 1.5 * j - _unit(f"{alt}:{j}".encode()), 4),
                "bytes": list(alt_raw),
            }
        )
    return {
        "token": raw.decode("utf-8", "replace"),
        "logprob": logprob,
        "bytes": list(raw),
        "top_logprobs": alternatives[:top],
    }


def _logprobs(ids: list[int], top: int, offset: int = 0) -> dict[str, Any]:
    return {"content": [_token_logprob(t, offset + i, top) for i, t in enumerate(ids)]}


def _pieces_with_ids(ids: list[int]) -> list[tuple[str, list[int], int]]:
    """Stream pieces of about 3 tokens: (text, token ids, position of the first id)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    out: list[tuple[str, list[int], int]] = []
    carried: list[int] = []
    first = 0
    step = _STREAM_TOKENS_PER_EVENT
    for start in range(0, len(ids), step):
        group = ids[start : start + step]
        if not carried:
            first = start
        carried += group
        text = decoder.decode(
            b"".join(tokenizer.token_bytes(i) for i in group), final=start + step >= len(ids)
        )
        if text:
            out.append((text, carried, first))
            carried = []
    return out


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
    messages: list[dict[str, Any]],
    usage: dict[str, int],
) -> Response:
    """A tool-call answer: one choice per message, each finishing with ``tool_calls``."""
    return _chat_response(
        chat_id,
        created,
        model,
        [
            {"finish_reason": "tool_calls", "index": i, "message": message, "logprobs": None}
            for i, message in enumerate(messages)
        ],
        usage,
    )


def _chat_response(
    chat_id: str,
    created: int,
    model: ModelInfo,
    choices: list[dict[str, Any]],
    usage: dict[str, int],
) -> Response:
    return json_response(
        200,
        {
            "id": chat_id,
            "choices": choices,
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
    index: int = 0,
    logprobs: dict[str, Any] | None = None,
) -> str:
    choices = (
        []
        if delta is None
        else [{"finish_reason": finish, "index": index, "delta": delta, "logprobs": logprobs}]
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
    answers: list[_Answer],
    usage: dict[str, int],
    include_usage: bool,
    logprobs: bool,
    top_logprobs: int,
) -> Response:
    """Every choice's role chunk, then their pieces in turn, their finish chunks, usage."""
    per_choice: list[list[str]] = []
    for index, answer in enumerate(answers):
        events: list[str] = []
        if answer.reasoning is not None:
            for piece, _ids, _pos in _pieces_with_ids(answer.reasoning_ids):
                events.append(
                    _chunk(chat_id, created, model, {"reasoning_content": piece}, index=index)
                )
        for piece, ids, position in _pieces_with_ids(answer.ids):
            events.append(
                _chunk(
                    chat_id,
                    created,
                    model,
                    {"content": piece},
                    index=index,
                    logprobs=_logprobs(ids, top_logprobs, position) if logprobs else None,
                )
            )
        per_choice.append(events)
    events = [
        _chunk(chat_id, created, model, {"role": "assistant", "content": ""}, index=i)
        for i in range(len(answers))
    ]
    for step in range(max(len(e) for e in per_choice)):
        events.extend(e[step] for e in per_choice if step < len(e))
    events.extend(
        _chunk(chat_id, created, model, {}, answer.finish, index=i)
        for i, answer in enumerate(answers)
    )
    if include_usage:
        events.append(_chunk(chat_id, created, model, None, usage=usage))
    events.append("[DONE]")
    return _stream_response(events)


def _chat_tool_stream(
    chat_id: str,
    created: int,
    model: ModelInfo,
    calls: list[dict[str, Any]],
    thought: str | None,
    usage: dict[str, int],
    include_usage: bool,
) -> Response:
    """Every choice's role chunk, then in turn their thinking, call heads and argument
    fragments, then their finish chunks, usage."""
    per_choice: list[list[str]] = []
    for index, call in enumerate(calls):
        events: list[str] = []
        if thought is not None:
            key = "content" if "think" in model.capabilities else "reasoning_content"
            text = f"<think>\n{thought}\n</think>\n\n" if key == "content" else thought
            for piece, _ids, _pos in _pieces_with_ids(tokenizer.encode(text)):
                events.append(_chunk(chat_id, created, model, {key: piece}, index=index))
        head = {
            "id": call["id"],
            "index": 0,
            "type": "function",
            "function": {"name": call["function"]["name"]},
        }
        delta: dict[str, Any] = {"content": "", "tool_calls": [head]}
        events.append(_chunk(chat_id, created, model, delta, index=index))
        arguments: str = call["function"]["arguments"]
        step = 12
        for start in range(0, len(arguments), step):
            fragment = {"index": 0, "function": {"arguments": arguments[start : start + step]}}
            delta = {"content": "", "tool_calls": [fragment]}
            events.append(_chunk(chat_id, created, model, delta, index=index))
        per_choice.append(events)
    events = [
        _chunk(chat_id, created, model, {"role": "assistant", "content": ""}, index=i)
        for i in range(len(calls))
    ]
    for step in range(max(len(e) for e in per_choice)):
        events.extend(e[step] for e in per_choice if step < len(e))
    events.extend(
        _chunk(chat_id, created, model, {"content": ""}, "tool_calls", index=i)
        for i in range(len(calls))
    )
    if include_usage:
        events.append(_chunk(chat_id, created, model, None, usage=usage))
    events.append("[DONE]")
    return _stream_response(events)


def _place(messages: list[_Message]) -> str | None:
    """The place the latest user message that names one asks about (for tool arguments)."""
    for message in reversed(messages):
        if message.role == "user":
            found = place_in(message.text)
            if found:
                return found
    return None
