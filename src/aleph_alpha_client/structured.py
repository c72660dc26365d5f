"""Parsing structured answers: typed errors for cut or invalid JSON, partial objects of a stream."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, Generic, Optional, Protocol, TypeVar

from ._exceptions import MissingDependencyError, StructuredOutputError
from ._partial_json import parse_partial

__all__ = ["AsyncStructuredStream", "StructuredStream", "parse_partial", "parse_structured"]

_T = TypeVar("_T")

if TYPE_CHECKING:
    from .chat import ChatResponse


class _ChatStream(Protocol):
    """A chat stream of the sync client: items, then the accumulated answer."""

    def __iter__(self) -> Iterator[Any]: ...

    def get_final_response(self) -> ChatResponse: ...


class _AsyncChatStream(Protocol):
    """A chat stream of the async client."""

    def __aiter__(self) -> AsyncIterator[Any]: ...

    async def get_final_response(self) -> ChatResponse: ...


def parse_structured(text: str, model_class: type[_T], finish_reason: Optional[Any] = None) -> _T:
    """Validate ``text`` into ``model_class`` (pydantic); typed errors keep the raw text."""
    validate = getattr(model_class, "model_validate", None)
    if not callable(validate):
        raise MissingDependencyError("pydantic", "pydantic", "ChatResponse.parsed")
    reason = getattr(finish_reason, "value", finish_reason)
    if reason == "length":
        raise StructuredOutputError(
            "the structured answer was cut by the token limit (finish_reason 'length'); "
            "raise maximum_tokens",
            reason="length",
            text=text,
        )
    try:
        decoded = json.loads(text)
    except ValueError as err:
        raise StructuredOutputError(
            f"the structured answer is not valid JSON: {err}", reason="invalid_json", text=text
        ) from None
    from pydantic import ValidationError

    from .tools import drop_null_defaults

    try:  # null for a field with a default is strict mode's "left out"
        result: _T = validate(drop_null_defaults(model_class, decoded))
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "(root)"
        raise StructuredOutputError(
            f"the structured answer does not fit {model_class.__name__}: {where}: "
            f"{first.get('msg')}",
            reason="validation",
            text=text,
        ) from None
    return result


class _Accumulator:
    """The text so far and the last partial value handed out (shared by both streams)."""

    def __init__(self) -> None:
        self.text = ""
        self.last: Any = None

    def feed(self, item: Any) -> Optional[Any]:
        """The new partial value after ``item``, or ``None`` when it did not change."""
        from .chat import ChatStreamChunk

        if not isinstance(item, ChatStreamChunk) or not item.content or item.index != 0:
            return None  # with n > 1 the partial object follows the first choice
        self.text += item.content
        value = parse_partial(self.text)
        if value is None or value == self.last:
            return None
        self.last = value
        return value


class StructuredStream(Generic[_T]):
    """A streamed structured answer: iterate for the partial object as it grows.

    Each partial is a valid JSON value (dict, list, str, ...) that the final answer extends;
    after the loop, :attr:`parsed` is the answer validated into ``model_class``
    (:class:`StructuredOutputError` when it was cut, is not JSON or does not fit). Wrap the
    stream of ``client.chat_with_streaming(request, model)``.
    """

    def __init__(self, stream: _ChatStream, model_class: type[_T]) -> None:
        self._stream = stream
        self._model_class = model_class
        self._parsed: Optional[_T] = None
        self._done = False

    def __iter__(self) -> Iterator[Any]:
        accumulator = _Accumulator()
        for item in self._stream:
            value = accumulator.feed(item)
            if value is not None:
                yield value
        final = self._stream.get_final_response()
        self._parsed = parse_structured(final.content, self._model_class, final.finish_reason)
        self._done = True

    @property
    def parsed(self) -> _T:
        """The validated model (read the stream first, or use :meth:`get_parsed`)."""
        if not self._done or self._parsed is None:
            return self.get_parsed()
        return self._parsed

    def get_parsed(self) -> _T:
        """Read the rest of the stream; the validated model."""
        if not self._done:
            for _ in self:
                pass
        assert self._parsed is not None
        return self._parsed


class AsyncStructuredStream(Generic[_T]):
    """:class:`StructuredStream` for ``AsyncClient``: ``async for partial in ...``, then
    ``await get_parsed()``."""

    def __init__(self, stream: _AsyncChatStream, model_class: type[_T]) -> None:
        self._stream = stream
        self._model_class = model_class
        self._parsed: Optional[_T] = None
        self._done = False

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        accumulator = _Accumulator()
        async for item in self._stream:
            value = accumulator.feed(item)
            if value is not None:
                yield value
        final = await self._stream.get_final_response()
        self._parsed = parse_structured(final.content, self._model_class, final.finish_reason)
        self._done = True

    @property
    def parsed(self) -> _T:
        """The validated model, once the stream was read to its end."""
        if not self._done or self._parsed is None:
            raise RuntimeError("read the stream first (or await get_parsed())")
        return self._parsed

    async def get_parsed(self) -> _T:
        """Read the rest of the stream; the validated model."""
        if not self._done:
            async for _ in self:
                pass
        assert self._parsed is not None
        return self._parsed
