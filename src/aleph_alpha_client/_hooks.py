"""Request and response event hooks, token callables and extra headers: the pure parts.

``event_hooks={"request": [f, ...], "response": [g, ...]}`` on both constructors. Each
request hook is called with a :class:`RequestEvent` right before every attempt goes out
(retries, redirects and the re-send after a token refresh included), each response hook with
a :class:`ResponseEvent` as soon as the status and headers of an attempt's answer are there
(any status; for a stream, before its first event). The events are read-only views: headers
are immutable mappings and the token is shown as ``Bearer ***``. ``Client`` takes plain
functions; ``AsyncClient`` takes plain or ``async`` functions (awaited in turn).

An exception raised by a hook (or by a token callable) propagates unchanged to the caller of
the API method: the attempt is abandoned (its connection closed), not retried.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Union

from ._exceptions import InvalidArgumentError, InvalidArgumentTypeError

__all__ = [
    "EventHooks",
    "RequestEvent",
    "ResponseEvent",
    "TokenProvider",
    "check_event_hooks",
    "check_headers",
    "check_query",
    "check_token_value",
]

#: A token callable: asked for the token before each request (``AsyncClient``: may be async).
TokenProvider = Union[Callable[[], str], Callable[[], Awaitable[str]]]

#: Header names as RFC 9110 defines them (a "token").
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

#: Headers the client sets itself; ``default_headers``/``extra_headers`` may not replace them.
_RESERVED_HEADERS = {
    "authorization": "pass the token as token= (a str or a callable that returns one)",
    "host": "the host comes from host=",
    "content-length": "the client frames the body itself",
    "transfer-encoding": "the client frames the body itself",
    "connection": "the client manages its connections",
    "keep-alive": "the client manages its connections",
    "upgrade": "the client speaks HTTP/1.1 only",
    "te": "the client frames the body itself",
    "trailer": "the client frames the body itself",
    "expect": "the client sends the body at once",
    "content-type": "the client sends JSON and sets it per request",
    "accept": "the client sets it per request (JSON or an event stream)",
}


@dataclass(frozen=True)
class RequestEvent:
    """What a request hook sees of one attempt (read-only; the token shown as ``***``).

    ``attempt`` is 0 for the first attempt and grows by one per retry (a redirect or the
    re-send after a token refresh keeps it).
    """

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None
    stream: bool
    attempt: int

    def __repr__(self) -> str:
        size = "None" if self.body is None else f"<{len(self.body)} bytes>"
        return (
            f"RequestEvent(method={self.method!r}, url={self.url!r}, "
            f"headers={dict(self.headers)!r}, body={size}, stream={self.stream!r}, "
            f"attempt={self.attempt})"
        )


@dataclass(frozen=True)
class ResponseEvent:
    """What a response hook sees of one attempt's answer: status and headers (lower-case
    names, read-only) and the :class:`RequestEvent` it answers. The body is not part of it."""

    status: int
    headers: Mapping[str, str]
    request: RequestEvent


def request_event(request: Any, attempt: int) -> RequestEvent:
    """The read-only view of an :class:`~aleph_alpha_client.transport.HTTPRequest`."""
    headers = {
        key: ("Bearer ***" if key.lower() == "authorization" else value)
        for key, value in request.headers.items()
    }
    return RequestEvent(
        request.method,
        request.url,
        MappingProxyType(headers),
        request.body,
        request.stream,
        attempt,
    )


def response_event(status: int, headers: Mapping[str, str], request: RequestEvent) -> ResponseEvent:
    """The read-only view of an answer's head."""
    return ResponseEvent(status, MappingProxyType(dict(headers)), request)


@dataclass(frozen=True)
class EventHooks:
    """The checked ``event_hooks`` of a client."""

    request: tuple[Callable[..., Any], ...] = ()
    response: tuple[Callable[..., Any], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.request or self.response)


def check_event_hooks(hooks: Any, *, sync: bool) -> EventHooks | None:
    """``event_hooks`` checked: a mapping of ``"request"``/``"response"`` to lists of
    callables (``Client``: no ``async`` functions)."""
    if hooks is None:
        return None
    if not isinstance(hooks, Mapping):
        raise InvalidArgumentTypeError(
            "event_hooks: expected a dict like {'request': [f], 'response': [g]}, "
            f"got {type(hooks).__name__}"
        )
    found: dict[str, tuple[Callable[..., Any], ...]] = {}
    for key, value in hooks.items():
        if key not in ("request", "response"):
            raise InvalidArgumentError(
                f"event_hooks: expected the events 'request' and 'response', got {key!r}"
            )
        if callable(value) or isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise InvalidArgumentTypeError(
                f"event_hooks[{key!r}]: expected a list of callables, got {type(value).__name__}"
            )
        functions = tuple(value)
        for function in functions:
            if not callable(function):
                raise InvalidArgumentTypeError(
                    f"event_hooks[{key!r}]: expected callables, got {type(function).__name__}"
                )
            if sync and is_async_callable(function):
                raise InvalidArgumentTypeError(
                    f"event_hooks[{key!r}]: Client takes plain functions; "
                    "async hooks need AsyncClient"
                )
        found[key] = functions
    result = EventHooks(found.get("request", ()), found.get("response", ()))
    return result if result else None


def is_async_callable(function: Any) -> bool:
    """Whether calling ``function`` gives a coroutine (an ``async def`` or async ``__call__``)."""
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
        getattr(function, "__call__", None)  # noqa: B004 - an object with async __call__
    )


def sync_result(value: Any, what: str) -> Any:
    """The result of a user callable on ``Client``: an awaitable is an error."""
    if inspect.isawaitable(value):
        close = getattr(value, "close", None)
        if close is not None:
            close()  # no "never awaited" warning
        raise InvalidArgumentTypeError(
            f"{what}: returned an awaitable; Client needs plain functions (use AsyncClient)"
        )
    return value


def check_token_value(token: Any) -> str:
    """What a token callable returned: an ASCII str without control characters (never
    shown), as a static token must be."""
    if not isinstance(token, str):
        raise InvalidArgumentTypeError(
            f"token: expected the token callable to return a str, got {type(token).__name__}"
        )
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in token):
        raise InvalidArgumentError(
            "token: expected the token callable to return a token without control characters, "
            "got one with control characters (CR, LF, ...)"
        )
    if not token.isascii():
        raise InvalidArgumentError(
            "token: expected the token callable to return an ASCII token, got one with "
            "non-ASCII characters"
        )
    return token


def check_headers(headers: Any, argument: str) -> tuple[tuple[str, str], ...]:
    """Headers a user adds (``default_headers``, ``extra_headers``) as checked pairs.

    Names must be valid header names, values str without control characters, and none may
    replace a header the client sets itself (Authorization, Host, Content-Type, ...).
    """
    if headers is None:
        return ()
    if not isinstance(headers, Mapping):
        raise InvalidArgumentTypeError(
            f"{argument}: expected a dict of header names to values, got {type(headers).__name__}"
        )
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise InvalidArgumentError(f"{argument}: expected valid header names, got {name!r}")
        low = name.lower()
        if low in _RESERVED_HEADERS:
            raise InvalidArgumentError(
                f"{argument}: {name!r} cannot be set here ({_RESERVED_HEADERS[low]})"
            )
        if low in seen:
            raise InvalidArgumentError(f"{argument}: {name!r} is given twice")
        seen.add(low)
        if not isinstance(value, str):
            raise InvalidArgumentTypeError(
                f"{argument}[{name!r}]: expected a str value, got {type(value).__name__}"
            )
        value = value.strip(" \t")  # surrounding whitespace is not part of a field value
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
            raise InvalidArgumentError(
                f"{argument}[{name!r}]: expected a value without control characters, got one "
                "with control characters (CR, LF, TAB, NUL, ...)"
            )
        if any(ord(ch) > 0xFF for ch in value):
            raise InvalidArgumentError(
                f"{argument}[{name!r}]: expected Latin-1 text (HTTP/1.1 headers), got a value "
                "with characters beyond U+00FF"
            )
        pairs.append((name, value))
    return tuple(pairs)


def merge_headers(
    base: tuple[tuple[str, str], ...], extra: tuple[tuple[str, str], ...]
) -> tuple[tuple[str, str], ...]:
    """``base`` with ``extra`` on top; names compare case-insensitively."""
    replaced = {name.lower() for name, _ in extra}
    return tuple(pair for pair in base if pair[0].lower() not in replaced) + extra


def check_query(query: Any, argument: str) -> tuple[tuple[str, str], ...]:
    """Query parameters added to every request URL, as checked pairs."""
    if query is None:
        return ()
    if not isinstance(query, Mapping):
        raise InvalidArgumentTypeError(
            f"{argument}: expected a dict of parameter names to values, got {type(query).__name__}"
        )
    pairs: list[tuple[str, str]] = []
    for name, value in query.items():
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(
                f"{argument}: expected non-empty str parameter names, got {name!r}"
            )
        if name == "nice":
            raise InvalidArgumentError(f"{argument}: use nice=True instead of a 'nice' parameter")
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (int, float)):
            if value != value or abs(value) == float("inf"):
                raise InvalidArgumentError(
                    f"{argument}[{name!r}]: expected a finite number, got {value}"
                )
            value = str(value)
        elif not isinstance(value, str):
            raise InvalidArgumentTypeError(
                f"{argument}[{name!r}]: expected a str, int, float or bool, "
                f"got {type(value).__name__}"
            )
        pairs.append((name, value))
    return tuple(pairs)


def merge_query(
    base: tuple[tuple[str, str], ...], extra: tuple[tuple[str, str], ...]
) -> tuple[tuple[str, str], ...]:
    """``base`` with ``extra`` on top (a name in ``extra`` replaces it in ``base``)."""
    replaced = {name for name, _ in extra}
    return tuple(pair for pair in base if pair[0] not in replaced) + extra


def needs_token_refresh(request: Any, status: int) -> bool:
    """Whether an answer asks for a fresh token: a 401 to a request that carried one (a
    redirect to another origin drops the token, and a refresh would not help there)."""
    return status == 401 and any(key.lower() == "authorization" for key in request.headers)


def ask_token_sync(provider: Callable[[], Any]) -> str:
    """Ask a ``Client``'s token callable."""
    return check_token_value(sync_result(provider(), "token"))


async def ask_token_async(provider: Callable[[], Any]) -> str:
    """Ask an ``AsyncClient``'s token callable (plain or async)."""
    token = provider()
    if inspect.isawaitable(token):
        token = await token
    return check_token_value(token)


def run_request_hooks_sync(hooks: EventHooks, request: Any, attempt: int) -> RequestEvent:
    """Call the request hooks of ``Client``; the event is kept for the response hooks."""
    event = request_event(request, attempt)
    for hook in hooks.request:
        sync_result(hook(event), "event_hooks['request']")
    return event


def run_response_hooks_sync(hooks: EventHooks, response: Any, event: RequestEvent) -> None:
    """Call the response hooks of ``Client``; the response is closed when one raises."""
    if not hooks.response:
        return
    view = response_event(response.status, response.headers, event)
    try:
        for hook in hooks.response:
            sync_result(hook(view), "event_hooks['response']")
    except BaseException:
        response.close()
        raise


async def run_request_hooks_async(hooks: EventHooks, request: Any, attempt: int) -> RequestEvent:
    """Call the request hooks of ``AsyncClient`` (plain or async)."""
    event = request_event(request, attempt)
    for hook in hooks.request:
        result = hook(event)
        if inspect.isawaitable(result):
            await result
    return event


async def run_response_hooks_async(hooks: EventHooks, response: Any, event: RequestEvent) -> None:
    """Call the response hooks of ``AsyncClient``; the response is closed when one raises."""
    if not hooks.response:
        return
    view = response_event(response.status, response.headers, event)
    try:
        for hook in hooks.response:
            result = hook(view)
            if inspect.isawaitable(result):
                await result
    except BaseException:
        response.close()
        raise
