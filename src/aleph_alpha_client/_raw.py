"""Raw responses and request ids: what the server said besides the parsed answer.

``client.with_raw_response.chat(request, model)`` returns a :class:`RawResponse` (status,
headers, request id, attempts, and the parsed value from :meth:`RawResponse.parse`); every
response object also carries ``request_id`` when the server sent one. A leaf module: the
shells call :func:`finish` once per parsed answer.
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from ._exceptions import APIError
from ._headers import Headers, request_id_of

__all__ = ["AsyncWithRawResponse", "Headers", "RawResponse", "WithRawResponse", "request_id_of"]

T = TypeVar("T")


def tag_error(error: BaseException, headers: Mapping[str, str]) -> None:
    """Name the answer's request id on ``error`` (an :class:`APIError` raised after the
    answer's head came: a broken stream, a body that is not JSON, a read timeout)."""
    if isinstance(error, APIError) and error._request_id is None:
        error._request_id = request_id_of(headers)


def set_request_id(result: Any, headers: Mapping[str, str]) -> None:
    """Attach the request id to a response object (not a field: equality is unchanged)."""
    request_id = request_id_of(headers)
    if request_id is not None:
        try:
            object.__setattr__(result, "request_id", request_id)
        except (AttributeError, TypeError):  # str, list, objects with __slots__
            pass


class _Capture:
    __slots__ = ("attempts", "headers", "status")

    def __init__(self) -> None:
        self.status = 0
        self.headers: Mapping[str, str] = {}
        self.attempts = 0


_CAPTURE: contextvars.ContextVar[_Capture | None] = contextvars.ContextVar(
    "aleph_alpha_client_raw", default=None
)


def finish(result: T, response: Any, attempt: int) -> T:
    """A parsed answer leaves a shell: attach its request id, tell a waiting raw call."""
    headers = response.headers
    set_request_id(result, headers)
    capture = _CAPTURE.get()
    if capture is not None:
        capture.status = response.status
        capture.headers = headers
        capture.attempts = attempt + 1
    return result


class RawResponse(Generic[T]):
    """A successful call's HTTP side: ``status_code``, ``headers``, ``request_id``,
    ``attempts`` (``None`` for streams), and the parsed answer from :meth:`parse` (the
    stream itself, for streamed calls)."""

    __slots__ = ("_value", "attempts", "headers", "status_code")

    def __init__(
        self, value: T, status_code: int, headers: Mapping[str, str], attempts: int | None
    ) -> None:
        self._value = value
        self.status_code = status_code
        self.headers: Mapping[str, str] = Headers(headers)
        self.attempts = attempts

    @property
    def request_id(self) -> str | None:
        """The request id the server sent, if any."""
        return request_id_of(self.headers)

    def parse(self) -> T:
        """The parsed answer (the same object the plain call returns)."""
        return self._value

    def __repr__(self) -> str:
        return (
            f"RawResponse(status_code={self.status_code}, request_id={self.request_id!r}, "
            f"value={type(self._value).__name__})"
        )


def _stream_raw(stream: Any) -> RawResponse[Any]:
    response = stream._holder.response
    headers = response.headers if response is not None else {}
    status = response.status if response is not None else 0
    return RawResponse(stream, status, headers, None)


class WithRawResponse:
    """``client.with_raw_response``: each API method of :class:`Client`, returning a
    :class:`RawResponse`. Streamed methods send the request and read the first items first."""

    __slots__ = ("_client",)

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Callable[..., RawResponse[Any]]:
        method = _api_method(self._client, name)

        def call(*args: Any, **kwargs: Any) -> RawResponse[Any]:
            capture = _Capture()
            token = _CAPTURE.set(capture)
            try:
                value = method(*args, **kwargs)
                if hasattr(value, "_prime"):
                    value._prime()
                    return _stream_raw(value)
            finally:
                _CAPTURE.reset(token)
            return RawResponse(value, capture.status, capture.headers, capture.attempts)

        call.__name__ = name
        call.__doc__ = method.__doc__
        return call


class AsyncWithRawResponse:
    """``async_client.with_raw_response``: each API method of :class:`AsyncClient` as a
    coroutine returning a :class:`RawResponse` (``await`` it, streamed methods too)."""

    __slots__ = ("_client",)

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = _api_method(self._client, name)

        async def call(*args: Any, **kwargs: Any) -> RawResponse[Any]:
            capture = _Capture()
            token = _CAPTURE.set(capture)
            try:
                value = method(*args, **kwargs)
                if inspect.isawaitable(value):
                    value = await value
                elif hasattr(value, "_prime"):
                    await value._prime()
                    return _stream_raw(value)
            finally:
                _CAPTURE.reset(token)
            return RawResponse(value, capture.status, capture.headers, capture.attempts)

        call.__name__ = name
        call.__doc__ = method.__doc__
        return call


_NOT_API = frozenset({"close", "with_options", "run_tools", "run_tools_with_streaming"})


def _api_method(client: Any, name: str) -> Any:
    if name.startswith("_") or name in _NOT_API:
        raise AttributeError(f"with_raw_response has no method {name!r}")
    method = getattr(client, name, None)
    if method is None or not callable(method) or isinstance(method, type):
        raise AttributeError(f"with_raw_response has no method {name!r}")
    return method
