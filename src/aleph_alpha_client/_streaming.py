"""Streams: the pure accumulators of chat and completion streams, and the stream objects.

The accumulators (:class:`ChatStreamState`, :class:`CompletionStreamState`) take decoded JSON
chunks and give the items the official client yields, in its order; they also build the
final response, and they know whether the stream ended properly. :class:`StreamProcessor`
feeds them from raw bytes through the SSE decoder. All of this is pure and shared; the
clients only move bytes and sleep.

Items that carry no content yet (the empty role chunk) are held back until the first real
item, so that a stream that fails with an overload error event before its first token can be
retried without the caller seeing anything twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator, Mapping
from typing import Any, Generic, Protocol, TypeVar, Union

from ._exceptions import (
    AlephAlphaError,
    APIResponseValidationError,
    IncompleteStreamError,
    StreamError,
    StreamEventError,
)
from ._json import fast_loads as _fast_loads
from ._json import loads
from ._raw import Headers, request_id_of, set_request_id
from ._sse import SSEDecoder
from ._tracing import CallObserver
from .chat import (
    ChatChoice,
    ChatRequest,
    ChatResponse,
    ChatStreamChunk,
    ChoiceFinishReason,
    FinishReason,
    FunctionCall,
    ReasoningChunk,
    Role,
    TextMessage,
    TokenLogprob,
    ToolCall,
    Usage,
    _reasoning_of,
    logprobs_from_json,
)
from .completion import (
    CompletionRequest,
    CompletionResponse,
    CompletionResponseStreamItem,
    CompletionResult,
    CompletionSummary,
    stream_item_from_json,
)

__all__ = [
    "AsyncStream",
    "Batch",
    "ChatItem",
    "ChatStreamState",
    "CompletionStreamState",
    "Stream",
    "StreamProcessor",
    "StreamState",
    "chat_stream_state",
    "completion_stream_state",
]

ItemT = TypeVar("ItemT")
FinalT = TypeVar("FinalT")
FinalT_co = TypeVar("FinalT_co", covariant=True)
#: One item of a chat stream.
ChatItem = Union[ChatStreamChunk, ReasoningChunk, ToolCall, FinishReason, ChoiceFinishReason, Usage]


class StreamState(Protocol[ItemT, FinalT_co]):
    """The accumulator of one stream: decoded chunks in, items out, the final answer built.

    A new kind of stream (or a new item, such as reasoning) is a state with these members; the
    pipeline (:class:`StreamProcessor`), the attempt machine and the stream objects stay as
    they are. ``started`` turns true with the first item handed out: a stream that fails
    before it is sent again.
    """

    started: bool
    done_seen: bool

    def feed(self, chunk: Any) -> list[ItemT]:
        """The items of one decoded chunk; an error object raises StreamEventError."""

    def done(self) -> list[ItemT]:
        """``[DONE]`` arrived: the items still held back."""

    def check_complete(self) -> None:
        """At the end of the body: raise IncompleteStreamError unless the stream ended."""

    def final_response(self) -> FinalT_co:
        """The answer accumulated so far."""


def _error_event(chunk: Mapping[str, Any]) -> StreamEventError:
    err = chunk.get("error")
    code = chunk.get("code")
    if isinstance(err, Mapping):
        message = str(err.get("message") or err)
        code = code if code is not None else err.get("code") or err.get("type")
    else:
        message = str(err)
    return StreamEventError(message, code=None if code is None else str(code), body=dict(chunk))


def _check_strings(obj: Mapping[str, Any], keys: tuple[str, ...], what: str) -> None:
    for key in keys:
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            raise APIResponseValidationError(f"{what} {key} is not a string: {value!r:.100}")


class _ToolCallBuffer:
    __slots__ = ("arguments", "id", "name", "type")

    def __init__(self, id: str | None, type: str | None, name: str | None) -> None:
        self.id = id
        self.type = type
        self.name = name
        self.arguments: list[str] = []


# Where a choice's content stands with respect to a leading <think> tag.
_UNDECIDED, _THINKING, _AFTER_THINK, _ANSWER = range(4)
_OPEN, _CLOSE = "<think>", "</think>"


class _ThinkSplitter:
    """Splits a leading ``<think>...</think>`` off streamed content, tags split across deltas.

    ``feed`` returns ``(reasoning, content)`` pieces ready to hand out; text that may still be
    part of a tag, and whitespace at either end of the reasoning, is held back until the next
    delta (or ``flush``), so the pieces add up to what :func:`split_think` gives.
    """

    __slots__ = ("fresh", "mode", "pending")

    def __init__(self) -> None:
        self.mode = _UNDECIDED
        self.pending = ""
        self.fresh = True  # no reasoning handed out yet: leading whitespace is dropped

    def feed(self, text: str) -> tuple[str, str]:
        text = self.pending + text
        self.pending = ""
        reasoning = ""
        if self.mode == _UNDECIDED:
            stripped = text.lstrip()
            if not stripped or (len(stripped) < len(_OPEN) and _OPEN.startswith(stripped)):
                self.pending = text  # only whitespace or the start of "<think>" so far
                return "", ""
            if not stripped.startswith(_OPEN):
                self.mode = _ANSWER
                return "", text
            self.mode = _THINKING
            text = stripped[len(_OPEN) :]
        if self.mode == _THINKING:
            if self.fresh:
                text = text.lstrip()
            end = text.find(_CLOSE)
            if end < 0:
                keep = _partial_suffix(text, _CLOSE)
                body = text[: len(text) - keep]
                trimmed = body.rstrip()
                self.pending = text[len(trimmed) :]
                if trimmed:
                    self.fresh = False
                return trimmed, ""
            reasoning = text[:end].rstrip()
            text = text[end + len(_CLOSE) :]
            self.mode = _AFTER_THINK
        if self.mode == _AFTER_THINK:
            text = text.lstrip()
            if not text:
                return reasoning, ""
            self.mode = _ANSWER
        return reasoning, text

    def flush(self) -> tuple[str, str]:
        """The end of the choice: what was held back."""
        text, self.pending = self.pending, ""
        if self.mode == _THINKING:
            return text.rstrip(), ""
        if self.mode == _AFTER_THINK:
            return "", ""
        return "", text


def _partial_suffix(text: str, tag: str) -> int:
    """The length of the longest end of ``text`` that is a proper start of ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


class _Choice:
    """What a chat stream accumulates for one choice."""

    __slots__ = (
        "calls",
        "content",
        "emitted_calls",
        "finish_reason",
        "index",
        "logprobs",
        "pending_logprobs",
        "reasoning",
        "role",
        "think",
    )

    def __init__(self, index: int) -> None:
        self.index = index
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.role: Role | None = None
        self.calls: dict[int, _ToolCallBuffer] = {}
        self.emitted_calls: list[ToolCall] = []
        self.finish_reason: FinishReason | None = None
        self.logprobs: list[TokenLogprob] | None = None
        self.pending_logprobs: list[TokenLogprob] | None = None
        self.think = _ThinkSplitter()

    def take_logprobs(self) -> list[TokenLogprob] | None:
        pending, self.pending_logprobs = self.pending_logprobs, None
        return pending

    def calls_so_far(self) -> list[ToolCall]:
        calls = list(self.emitted_calls)
        for index in sorted(self.calls):
            calls.append(_call_of(self.calls[index], index))
        return calls

    def to_choice(self) -> ChatChoice:
        calls = self.calls_so_far()
        reasoning = "".join(self.reasoning)
        return ChatChoice(
            index=self.index,
            message=TextMessage(
                role=self.role or Role.Assistant,
                content="".join(self.content),
                tool_calls=calls or None,
                reasoning_content=reasoning or None,
            ),
            finish_reason=self.finish_reason,
            logprobs=self.logprobs,
        )


def _call_of(buf: _ToolCallBuffer, index: int) -> ToolCall:
    return ToolCall(
        id=buf.id or f"call_{index}",
        type=buf.type or "function",
        function=FunctionCall(name=buf.name or "", arguments="".join(buf.arguments)),
    )


class ChatStreamState:
    """Accumulates a chat stream: yields items in the official order, builds the answer.

    Reasoning (a delta's ``reasoning_content`` / ``reasoning``, or a leading ``<think>`` of the
    content, tags split across deltas included) becomes :class:`ReasoningChunk` items, never
    content. With ``n`` > 1 every choice is accumulated on its own (chunks carry ``index``)
    and each finish item is a :class:`ChoiceFinishReason` naming its choice.
    """

    def __init__(self, include_usage: bool, n: int = 1) -> None:
        self.include_usage = include_usage
        self.several = n > 1  # finish items say their choice (ChoiceFinishReason)
        self.started = False
        self._held: list[ChatItem] = []
        self._first = _Choice(0)
        self._choices: dict[int, _Choice] = {0: self._first}
        self.usage: Usage | None = None
        self.id: str | None = None
        self.model: str | None = None
        self.created: int | None = None
        self.system_fingerprint: str | None = None
        self.done_seen = False

    @property
    def finish_reason(self) -> FinishReason | None:
        """The first choice's finish reason (None while it is running)."""
        return self._first.finish_reason

    def _emit(self, out: list[ChatItem], item: ChatItem) -> None:
        if self.started:
            out.append(item)
        else:
            self._held.append(item)

    def _start(self, out: list[ChatItem]) -> None:
        if not self.started:
            self.started = True
            out.extend(self._held)
            self._held.clear()

    def _flush_calls(self, choice: _Choice, out: list[ChatItem]) -> None:
        for index in sorted(choice.calls):
            call = _call_of(choice.calls[index], index)
            choice.emitted_calls.append(call)
            out.append(call)
        choice.calls.clear()

    def _text(
        self, choice: _Choice, reasoning: str, content: str, role: Role | None, out: list[ChatItem]
    ) -> bool:
        """Hand out reasoning and content pieces; whether a content chunk was emitted."""
        if reasoning:
            self._start(out)
            choice.reasoning.append(reasoning)
            out.append(ReasoningChunk(reasoning, choice.index))
        if content:
            self._start(out)
            choice.content.append(content)
            out.append(ChatStreamChunk(content, role, None, choice.index, choice.take_logprobs()))
            return True
        return False

    def feed(self, chunk: Any) -> list[ChatItem]:
        """The items of one decoded chunk. An error object raises StreamEventError."""
        # Fast path: a plain content delta of choice 0 of a started stream past any <think>.
        if type(chunk) is dict and self.started and chunk.get("usage") is None:
            choices = chunk.get("choices")
            if type(choices) is list and len(choices) == 1 and self._first.think.mode == _ANSWER:
                choice = choices[0]
                if (
                    type(choice) is dict
                    and choice.get("finish_reason") is None
                    and not choice.get("index")
                    and choice.get("logprobs") is None
                ):
                    delta = choice.get("delta")
                    if type(delta) is dict and len(delta) == 1:
                        content = delta.get("content")
                        if type(content) is str and content:
                            self._first.content.append(content)
                            return [ChatStreamChunk(content, None, None)]
        return self._feed(chunk)

    def _choice(self, raw: Mapping[str, Any]) -> _Choice:
        index = raw.get("index") or 0
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise APIResponseValidationError(f"stream choice index is not an int: {index!r:.100}")
        choice = self._choices.get(index)
        if choice is None:
            choice = self._choices[index] = _Choice(index)
        return choice

    def _feed(self, chunk: Any) -> list[ChatItem]:
        if not isinstance(chunk, Mapping):
            raise APIResponseValidationError(f"stream chunk is not a JSON object: {chunk!r:.200}")
        if "error" in chunk and not chunk.get("choices"):
            raise _error_event(chunk)
        if self.id is None:
            self.id = chunk.get("id")
            self.model = chunk.get("model")
            self.created = chunk.get("created")
        fingerprint = chunk.get("system_fingerprint")
        if isinstance(fingerprint, str):
            self.system_fingerprint = fingerprint
        out: list[ChatItem] = []
        for raw in chunk.get("choices") or ():
            self._feed_choice(raw, out)
        usage = chunk.get("usage")
        if usage is not None:
            self._start(out)
            self.usage = Usage.from_json(usage)
            out.append(self.usage)
        return out

    def _feed_choice(self, raw: Mapping[str, Any], out: list[ChatItem]) -> None:
        choice = self._choice(raw)
        delta = raw.get("delta") or {}
        raw_role = delta.get("role")
        role = None if raw_role is None else Role(raw_role)
        if role is not None:
            choice.role = role
        content = delta.get("content")
        if content is not None and not isinstance(content, str):
            raise APIResponseValidationError(
                f"stream delta content is not a string: {content!r:.100}"
            )
        logprobs = logprobs_from_json(raw.get("logprobs"))
        if logprobs:
            choice.logprobs = (choice.logprobs or []) + logprobs
            choice.pending_logprobs = (choice.pending_logprobs or []) + logprobs
        raw_calls = delta.get("tool_calls")
        if raw_calls:
            self._start(out)
            for call in raw_calls:
                self._feed_call(choice, call)
        finish = raw.get("finish_reason")
        reasoning = _reasoning_of(delta) or ""
        text = ""
        if content:
            thought, text = choice.think.feed(content)
            reasoning += thought
        if finish is not None:
            thought, rest = choice.think.flush()
            reasoning, text = reasoning + thought, text + rest
        if role is not None and not text and not raw_calls and finish is None:
            self._emit(out, ChatStreamChunk("", role, None, choice.index))
            role = None
        self._text(choice, reasoning, text, role, out)
        if finish is not None:
            self._start(out)
            choice.finish_reason = FinishReason.from_json(finish)
            self._flush_calls(choice, out)
            if self.several or len(self._choices) > 1 or choice.index:  # say which choice
                out.append(ChoiceFinishReason(choice.finish_reason, choice.index))
            else:
                out.append(choice.finish_reason)

    def _feed_call(self, choice: _Choice, raw: Mapping[str, Any]) -> None:
        index = raw.get("index", 0)
        function = raw.get("function") or {}
        _check_strings(raw, ("id", "type"), "tool call")
        _check_strings(function, ("name", "arguments"), "tool call function")
        buf = choice.calls.get(index)
        if buf is None:
            buf = choice.calls[index] = _ToolCallBuffer(
                raw.get("id"), raw.get("type"), function.get("name")
            )
        else:
            if raw.get("id") and not buf.id:
                buf.id = raw["id"]
            if function.get("name") and not buf.name:
                buf.name = function["name"]
        arguments = function.get("arguments")
        if arguments:
            buf.arguments.append(arguments)

    def done(self) -> list[ChatItem]:
        """``[DONE]`` arrived: flush anything still buffered."""
        self.done_seen = True
        out: list[ChatItem] = []
        self._start(out)
        for index in sorted(self._choices):
            choice = self._choices[index]
            reasoning, text = choice.think.flush()
            self._text(choice, reasoning, text, None, out)
            self._flush_calls(choice, out)
        return out

    def check_complete(self) -> None:
        """At the end of the body: raise if the stream stopped before its end."""
        if self.done_seen:
            return
        if any(choice.finish_reason is None for choice in self._choices.values()):
            received = sum(len("".join(c.content)) for c in self._choices.values())
            raise IncompleteStreamError(
                "the chat stream ended before its finish chunk or [DONE]: the answer is "
                f"incomplete ({received} characters received)",
                partial=self.final_response(),
            )
        if self.include_usage and self.usage is None:
            raise IncompleteStreamError(
                "the chat stream ended after its finish chunk but before the usage chunk "
                "and [DONE]",
                partial=self.final_response(),
            )

    def final_response(self) -> ChatResponse:
        """The answer accumulated so far: every choice, usage, tool calls and reasoning."""
        choices = [self._choices[i].to_choice() for i in sorted(self._choices)]
        first = choices[0]
        # A partial answer (stream broken before its finish chunk) has finish_reason None.
        return ChatResponse(
            finish_reason=first.finish_reason,  # type: ignore[arg-type]
            message=first.message,
            usage=self.usage,
            id=self.id,
            model=self.model,
            created=self.created,
            choices=choices,
            system_fingerprint=self.system_fingerprint,
        )


class CompletionStreamState:
    """Accumulates a completion stream (no ``[DONE]``: it ends with a completion summary)."""

    def __init__(self) -> None:
        self.started = False
        self.summary: CompletionSummary | None = None
        self.done_seen = False
        self._texts: dict[int, list[str]] = {}
        self._finish: dict[int, Any] = {}
        self._model_version: str | None = None

    def feed(self, chunk: Any) -> list[CompletionResponseStreamItem]:
        """The item of one decoded chunk. An error object raises StreamEventError."""
        if not isinstance(chunk, Mapping):
            raise APIResponseValidationError(f"stream chunk is not a JSON object: {chunk!r:.200}")
        if "error" in chunk and "type" not in chunk:
            raise _error_event(chunk)
        item = stream_item_from_json(chunk)
        kind = chunk.get("type")
        if kind in ("stream_chunk", "stream_summary"):
            index = chunk.get("index", 0)
            if isinstance(index, bool) or not isinstance(index, int):
                raise APIResponseValidationError(f"{kind} index is not an int: {index!r:.100}")
            _check_strings(chunk, ("completion",), kind)
        if kind == "stream_chunk":
            self._texts.setdefault(chunk.get("index", 0), []).append(chunk.get("completion") or "")
        elif kind == "stream_summary":
            self._finish[chunk.get("index", 0)] = chunk.get("finish_reason")
            self._model_version = chunk.get("model_version")
        elif isinstance(item, CompletionSummary):
            self.summary = item
        self.started = True
        return [item]

    def done(self) -> list[CompletionResponseStreamItem]:
        """``[DONE]`` (not sent by the API for completions, but accepted)."""
        self.done_seen = True
        return []

    def check_complete(self) -> None:
        """At the end of the body: raise unless the completion summary arrived."""
        if self.summary is None:
            raise IncompleteStreamError(
                "the completion stream ended before its completion_summary: the answer is "
                "incomplete",
                partial=self.final_response(),
            )

    def final_response(self) -> CompletionResponse:
        """The CompletionResponse accumulated so far."""
        indices = sorted(set(self._texts) | set(self._finish))
        summary = self.summary
        return CompletionResponse(
            model_version=self._model_version or "",
            completions=[
                CompletionResult(
                    completion="".join(self._texts.get(i, [])),
                    finish_reason=self._finish.get(i),
                )
                for i in indices
            ],
            num_tokens_prompt_total=getattr(summary, "num_tokens_prompt_total", 0) or 0,
            num_tokens_generated=getattr(summary, "num_tokens_generated", 0) or 0,
            optimized_prompt=getattr(summary, "optimized_prompt", None),
        )


class Batch(Generic[ItemT]):
    """What one piece of the body gave: ``items`` to hand out, then ``error`` to raise (if any).

    An error event after some items in the same read keeps those items: the stream hands
    them out first. Iterating a batch yields its items and then raises its error.
    """

    __slots__ = ("error", "items")

    def __init__(self, items: list[ItemT], error: AlephAlphaError | None = None) -> None:
        self.items = items
        self.error = error

    def __iter__(self) -> Iterator[ItemT]:
        yield from self.items
        if self.error is not None:
            raise self.error

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        return f"Batch({self.items!r}, error={self.error!r})"


class StreamProcessor(Generic[ItemT, FinalT]):
    """Bytes in, stream items out: SSE decoding plus a state. Pure and incremental."""

    __slots__ = ("_decoder", "state")

    def __init__(self, state: StreamState[ItemT, FinalT], max_event_size: int) -> None:
        self.state = state
        self._decoder = SSEDecoder(max_event_size=max_event_size)

    def feed(self, data: bytes) -> Batch[ItemT]:
        """The items of one piece of the body, and the error that followed them (if any).

        An error with no item before it in this piece is raised at once.
        """
        events = self._decoder.feed(data)
        if not events:
            return Batch([])
        return self._handle(events)

    def _handle(self, events: list[Any]) -> Batch[ItemT]:
        # The hot loop of every stream: one pass per event, no call beyond JSON and the state.
        out: list[ItemT] = []
        state = self.state
        fast_loads = _fast_loads
        for event in events:
            payload = event.data
            try:
                if payload == "[DONE]":
                    out.extend(state.done())
                    continue
                try:
                    chunk = fast_loads(payload)
                except (ValueError, RecursionError):
                    try:
                        chunk = loads(payload)  # what orjson refuses, the stdlib may take
                    except (ValueError, RecursionError):
                        raise StreamError(
                            f"a stream event is not valid JSON: {payload[:200]!r}"
                        ) from None
                if event.event == "error" and isinstance(chunk, Mapping) and "error" not in chunk:
                    chunk = {"error": chunk.get("message", chunk), "code": chunk.get("code")}
                items = state.feed(chunk)
            except AlephAlphaError as err:
                if not out:
                    raise
                return Batch(out, err)
            except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
                shape_error = APIResponseValidationError(
                    f"a stream event does not have the expected shape "
                    f"({err.__class__.__name__}: {err}): {payload[:200]!r}"
                )
                if not out:
                    raise shape_error from None
                return Batch(out, shape_error)
            if len(items) == 1:
                out.append(items[0])
            else:
                out.extend(items)
        return Batch(out)

    def finish(self) -> Batch[ItemT]:
        """The end of the body: the last items, or IncompleteStreamError."""
        batch = self._handle(self._decoder.flush())
        if batch.error is not None:
            return batch
        try:
            if self._decoder.truncated and not self.state.done_seen:
                raise IncompleteStreamError(
                    "the stream ended in the middle of an event",
                    partial=self.state.final_response(),
                )
            self.state.check_complete()
        except AlephAlphaError as err:
            if not batch.items:
                raise
            batch.error = err
        return batch


class _Response(Protocol):
    """What a stream object needs of its response."""

    @property
    def headers(self) -> Mapping[str, str]: ...

    def close(self) -> None: ...


class _Holder(Generic[ItemT, FinalT]):
    """What a running stream shares with its stream object: state and current response."""

    __slots__ = ("response", "state")

    def __init__(self) -> None:
        self.state: StreamState[ItemT, FinalT] | None = None
        self.response: _Response | None = None

    def partial(self) -> Any:
        """What the stream accumulated so far (for tracing), or None."""
        state = self.state
        if state is None:
            return None
        try:
            return state.final_response()
        except Exception:
            return None


class _StreamInfo(Generic[ItemT, FinalT]):
    """What both stream objects tell about their response."""

    _holder: _Holder[ItemT, FinalT]

    def _final(self) -> FinalT:
        state = self._holder.state
        if state is None:
            raise StreamError("the stream was closed before anything was read")
        state.check_complete()  # closed before its end: IncompleteStreamError with .partial
        result = state.final_response()
        response = self._holder.response
        if response is not None:
            set_request_id(result, response.headers)
        return result

    @property
    def headers(self) -> Mapping[str, str]:
        """The response headers (empty before the first item); names in any case."""
        response = self._holder.response
        return Headers(response.headers if response is not None else None)

    @property
    def request_id(self) -> str | None:
        """The request id the server sent, if any."""
        response = self._holder.response
        return request_id_of(response.headers) if response is not None else None


class Stream(_StreamInfo[ItemT, FinalT]):
    """A streamed answer of the sync client: iterate it for ``ItemT`` items; the accumulated
    ``FinalT`` (a ``ChatResponse``, a ``CompletionResponse``) from :meth:`get_final_response`.

    The connection is released when the stream is exhausted, on ``break`` (when the stream
    is dropped), on error, on :meth:`close` and when a ``with`` block ends.
    """

    def __init__(
        self,
        make: Callable[[_Holder[ItemT, FinalT]], Generator[list[ItemT], None, None]],
        observer: CallObserver | None = None,
    ) -> None:
        self._holder = _Holder()
        # The generator yields batches (all items of one read); they are handed out one by one.
        self._gen = make(self._holder)
        self._batch: list[ItemT] = []
        self._next = 0
        self._closed = False
        self._observer = observer  # tracing (None without OpenTelemetry); see _tracing

    def __iter__(self) -> Stream[ItemT, FinalT]:
        return self

    def __next__(self) -> ItemT:
        index = self._next
        batch = self._batch
        if index < len(batch):
            self._next = index + 1
            return batch[index]
        if self._observer is not None:
            batch = self._observed_batch(self._observer)
        else:
            batch = next(self._gen)  # batches are never empty
        self._batch = batch
        self._next = 1
        return batch[0]

    def _observed_batch(self, observer: CallObserver) -> list[ItemT]:
        token = observer.enter()
        try:
            batch = next(self._gen)
        except StopIteration:
            observer.exit(token)
            self._observer = None
            observer.done(self._holder.partial(), self.request_id)
            raise
        except BaseException as err:
            observer.exit(token)
            self._observer = None
            observer.fail(err, self._holder.partial(), self.request_id)
            raise
        observer.exit(token)
        observer.first_item()
        return batch

    def _prime(self) -> None:
        """Send the request and read up to the first items (for raw responses)."""
        if self._holder.response is None and not self._closed and not self._batch:
            try:
                self.__next__()
            except StopIteration:
                return
            self._next -= 1  # the item stays in the batch for the caller

    def __enter__(self) -> Stream[ItemT, FinalT]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the stream and release its connection."""
        if not self._closed:
            self._closed = True
            self._batch = []
            try:
                self._gen.close()
            finally:
                observer = self._observer
                if observer is not None:
                    self._observer = None
                    observer.closed(self._holder.partial(), self.request_id)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    @property
    def text_stream(self) -> Iterator[str]:
        """Only the text deltas of a chat stream (or completion stream).

        Reasoning is left out; with ``n`` > 1 only the first choice's text comes.
        """
        for item in self:
            text = _text_of(item)
            if text:
                yield text

    def get_final_response(self) -> FinalT:
        """Read the rest of the stream; the accumulated ChatResponse / CompletionResponse."""
        for _ in self:
            pass
        return self._final()

    def until_done(self) -> None:
        """Read the stream to its end."""
        for _ in self:
            pass


class AsyncStream(_StreamInfo[ItemT, FinalT]):
    """A streamed answer of the async client: ``async for item in stream`` (no ``await``);
    ``await get_final_response()`` for the accumulated ``FinalT``.

    The connection is released on exhaustion, error, :meth:`aclose` / :meth:`close`,
    ``async with`` exit and task cancellation; a stream dropped after ``break`` closes its
    connection at once and finishes its generator on the event loop.
    """

    def __init__(
        self,
        make: Callable[[_Holder[ItemT, FinalT]], AsyncGenerator[list[ItemT], None]],
        observer: CallObserver | None = None,
    ) -> None:
        self._holder = _Holder()
        # The generator yields batches (all items of one read); they are handed out one by one.
        self._gen = make(self._holder)
        self._batch: list[ItemT] = []
        self._next = 0
        self._closed = False
        self._observer = observer  # tracing (None without OpenTelemetry); see _tracing

    def __aiter__(self) -> AsyncStream[ItemT, FinalT]:
        return self

    async def __anext__(self) -> ItemT:
        index = self._next
        batch = self._batch
        if index < len(batch):
            self._next = index + 1
            return batch[index]
        if self._observer is not None:
            batch = await self._observed_batch(self._observer)
        else:
            batch = await self._gen.__anext__()  # batches are never empty
        self._batch = batch
        self._next = 1
        return batch[0]

    async def _observed_batch(self, observer: CallObserver) -> list[ItemT]:
        token = observer.enter()
        try:
            batch = await self._gen.__anext__()
        except StopAsyncIteration:
            observer.exit(token)
            self._observer = None
            observer.done(self._holder.partial(), self.request_id)
            raise
        except BaseException as err:
            observer.exit(token)
            self._observer = None
            if isinstance(err, asyncio.CancelledError):  # the reader stopped: not the call's error
                observer.closed(self._holder.partial(), self.request_id)
            else:
                observer.fail(err, self._holder.partial(), self.request_id)
            raise
        observer.exit(token)
        observer.first_item()
        return batch

    async def _prime(self) -> None:
        """Send the request and read up to the first items (for raw responses)."""
        if self._holder.response is None and not self._closed and not self._batch:
            try:
                await self.__anext__()
            except StopAsyncIteration:
                return
            self._next -= 1  # the item stays in the batch for the caller

    async def __aenter__(self) -> AsyncStream[ItemT, FinalT]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the stream and release its connection."""
        if not self._closed:
            self._closed = True
            self._batch = []
            try:
                await self._gen.aclose()
            finally:
                observer = self._observer
                if observer is not None:
                    self._observer = None
                    observer.closed(self._holder.partial(), self.request_id)

    async def close(self) -> None:
        """Same as :meth:`aclose`."""
        await self.aclose()

    def __del__(self) -> None:
        response = self._holder.response
        if response is not None and not self._closed:
            try:
                response.close()
            except Exception:
                pass
        observer = self._observer
        if observer is not None:
            self._observer = None
            try:
                observer.closed(self._holder.partial(), self.request_id)
            except Exception:
                pass

    @property
    def text_stream(self) -> AsyncIterator[str]:
        """Only the text deltas (use ``async for text in stream.text_stream``)."""
        return _async_text_stream(self)

    async def get_final_response(self) -> FinalT:
        """Read the rest of the stream; the accumulated ChatResponse / CompletionResponse."""
        async for _ in self:
            pass
        return self._final()

    async def until_done(self) -> None:
        """Read the stream to its end."""
        async for _ in self:
            pass


async def _async_text_stream(stream: AsyncStream[Any, Any]) -> AsyncIterator[str]:
    async for item in stream:
        text = _text_of(item)
        if text:
            yield text


def _text_of(item: object) -> str:
    # The answer's text only: no reasoning, and with n > 1 only the first choice.
    if isinstance(item, ChatStreamChunk):
        return item.content if not item.index else ""
    completion = getattr(item, "completion", None)
    return completion if isinstance(completion, str) else ""


def chat_stream_state(request: ChatRequest) -> ChatStreamState:
    """A fresh accumulator for a chat stream of ``request`` (it waits for usage if asked)."""
    include_usage = bool(request.stream_options and request.stream_options.include_usage)
    return ChatStreamState(include_usage, n=request.n or 1)


def completion_stream_state(request: CompletionRequest) -> CompletionStreamState:
    """A fresh accumulator for a completion stream."""
    return CompletionStreamState()
