"""The error tree of ``aleph_alpha_client``.

Every error this package raises derives from :class:`AlephAlphaError`. Status errors also
inherit the builtin exception that the official client raised for that status, so old
``except ValueError`` / ``except BusyError`` clauses keep working::

    AlephAlphaError(Exception)
    ├── InvalidArgumentError(ValueError)         bad input, raised before anything is sent
    │   └── InvalidArgumentTypeError(TypeError)
    ├── MissingDependencyError(ImportError)      an optional extra is not installed
    └── APIError
        ├── APIStatusError                       HTTP status >= 400; args == (status, text)
        │   ├── BadRequestError(ValueError)               400
        │   ├── AuthenticationError(PermissionError)      401
        │   ├── QuotaError                                402
        │   ├── PermissionDeniedError(RuntimeError)       403
        │   ├── NotFoundError(RuntimeError)               404
        │   │   └── ModelNotFoundError(BadRequestError)   code UNKNOWN_MODEL (404 or 400)
        │   ├── RequestTimeoutError(TimeoutError)         408
        │   ├── ConflictError(RuntimeError)               409
        │   ├── UnprocessableEntityError(RuntimeError)    422
        │   ├── RateLimitError(RuntimeError)              429
        │   ├── InternalServerError(RuntimeError)         500 and other 5xx
        │   │   └── BusyError                             503 (``code``: QUEUE_FULL, ...)
        │   └── UnknownStatusError(RuntimeError)          any other status >= 400
        ├── APIConnectionError(ConnectionError)  could not connect, connection reset, ...
        │   └── APITimeoutError(TimeoutError)    connect / read / stream-idle timeout
        ├── APIResponseValidationError           a 2xx body that is not what the API sends
        │   ├── ToolArgumentsError               a tool call's arguments do not fit the tool
        │   └── StructuredOutputError            a structured answer cut short or not valid JSON
        ├── ToolLoopLimitError                   run_tools ran out of iterations
        └── StreamError                          a stream broke
            ├── IncompleteStreamError            ended before its finish chunk or [DONE]
            ├── StreamEventError                 an error object inside a 200 stream
            └── EventTooLargeError               an SSE event above the configured limit

The token never appears in any message: messages are built from statuses, bodies and URLs
only, and bodies are the server's, never the request's headers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._headers import Headers, request_id_of

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AlephAlphaError",
    "AuthenticationError",
    "BadRequestError",
    "BusyError",
    "ConflictError",
    "EventTooLargeError",
    "IncompleteStreamError",
    "InternalServerError",
    "InvalidArgumentError",
    "InvalidArgumentTypeError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "NotFoundError",
    "PermissionDeniedError",
    "QuotaError",
    "RateLimitError",
    "RequestTimeoutError",
    "StreamError",
    "StreamEventError",
    "StructuredOutputError",
    "ToolArgumentsError",
    "ToolLoopLimitError",
    "UnknownStatusError",
    "UnprocessableEntityError",
    "status_error",
]

#: How much of a body an error message quotes.
_BODY_PREVIEW = 500


def _preview(text: str, limit: int = _BODY_PREVIEW) -> str:
    text = text.strip()
    if len(text) > limit:
        return text[:limit] + f"... ({len(text)} characters)"
    return text


class AlephAlphaError(Exception):
    """Base class of every error raised by ``aleph_alpha_client``."""


class InvalidArgumentError(AlephAlphaError, ValueError):
    """An argument is invalid; raised before anything is sent. The message names it."""


class InvalidArgumentTypeError(InvalidArgumentError, TypeError):
    """An argument has the wrong type; raised before anything is sent."""


class MissingDependencyError(AlephAlphaError, ImportError):
    """An optional dependency is needed; the message names the extra to install."""

    def __init__(self, package: str, extra: str, feature: str) -> None:
        super().__init__(
            f"{feature} needs the optional package {package!r}: "
            f"pip install 'aleph-alpha-client[{extra}]'"
        )
        self.package = package
        self.extra = extra


class APIError(AlephAlphaError):
    """An error while talking to the API.

    ``request_id`` is the server's id of the answer the error is about (a stream that broke,
    a body that was not JSON, a status error), or None when no answer head had come.
    """

    _request_id: str | None = None

    @property
    def request_id(self) -> str | None:
        """The request id the server sent with the answer this error is about, if any."""
        return self._request_id

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} request_id={self._request_id}" if self._request_id else text


class APIStatusError(APIError):
    """The API answered with an HTTP status >= 400.

    ``args == (status_code, text)`` as in the official client. ``body`` is the parsed JSON
    body when there is one, ``message`` and ``code`` come from the API's error object
    (``{"error": ..., "code": ...}``), ``request_id`` from the response headers.
    """

    def __init__(
        self,
        status_code: int,
        text: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        url: str | None = None,
    ) -> None:
        super().__init__(status_code, text)
        self.status_code = status_code
        self.text = text
        self.headers: Mapping[str, str] = Headers(headers)
        self.body = body
        self.url = url
        message: str | None = None
        code: str | None = None
        if isinstance(body, Mapping):
            err = body.get("error")
            if isinstance(err, str):
                message = err
            elif isinstance(err, Mapping) and isinstance(err.get("message"), str):
                message = err["message"]
            raw_code = body.get("code")
            if raw_code is None and isinstance(err, Mapping):
                raw_code = err.get("code")
            if raw_code is not None:
                code = str(raw_code)
        self.message = message
        self.code = code

    @property
    def request_id(self) -> str | None:
        """The request id the server sent back, if any."""
        return request_id_of(self.headers)

    def __str__(self) -> str:
        detail = self.message if self.message is not None else _preview(self.text)
        parts = [f"HTTP {self.status_code}"]
        if self.code:
            parts.append(f"[{self.code}]")
        text = " ".join(parts) + (f": {detail}" if detail else "")
        if self.url:
            text += f" ({self.url})"
        if self.request_id:
            text += f" request_id={self.request_id}"
        return text


class BadRequestError(APIStatusError, ValueError):
    """HTTP 400: the API rejected the request."""


class AuthenticationError(APIStatusError, PermissionError):
    """HTTP 401: the token is missing, wrong or expired."""


class QuotaError(APIStatusError):
    """HTTP 402: the account has no credits left."""


class PermissionDeniedError(APIStatusError, RuntimeError):
    """HTTP 403: the token may not do this."""


class NotFoundError(APIStatusError, RuntimeError):
    """HTTP 404: unknown endpoint or model."""


class ModelNotFoundError(NotFoundError, BadRequestError):
    """The API does not know the model (error code ``UNKNOWN_MODEL``).

    A :class:`NotFoundError`; also a :class:`BadRequestError` (``ValueError``) because the API
    answers it with HTTP 400, so old ``except ValueError`` clauses keep catching it.
    """


class RequestTimeoutError(APIStatusError, TimeoutError):
    """HTTP 408: the server timed the request out."""


class ConflictError(APIStatusError, RuntimeError):
    """HTTP 409."""


class UnprocessableEntityError(APIStatusError, RuntimeError):
    """HTTP 422: the body did not validate."""


class RateLimitError(APIStatusError, RuntimeError):
    """HTTP 429: too many requests; see ``headers['retry-after']``."""


class InternalServerError(APIStatusError, RuntimeError):
    """HTTP 5xx."""


class BusyError(InternalServerError):
    """HTTP 503: the API is busy. Raised once retries are spent.

    ``code`` tells a full queue (``"QUEUE_FULL"``) from other 503 answers.
    """

    @property
    def queue_full(self) -> bool:
        """Whether the API said its queue is full (code ``QUEUE_FULL``)."""
        return self.code == "QUEUE_FULL"


class UnknownStatusError(APIStatusError, RuntimeError):
    """Any other HTTP status >= 400."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: QuotaError,
    403: PermissionDeniedError,
    404: NotFoundError,
    408: RequestTimeoutError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    503: BusyError,
}


def status_error(
    status_code: int,
    text: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: Any = None,
    url: str | None = None,
) -> APIStatusError:
    """Build the typed error for an HTTP status >= 400 (does not raise it)."""
    cls = _BY_STATUS.get(status_code)
    if (
        isinstance(body, Mapping)
        and body.get("code") == "UNKNOWN_MODEL"
        and status_code in (400, 404)
    ):
        cls = ModelNotFoundError
    if cls is None:
        cls = InternalServerError if 500 <= status_code < 600 else UnknownStatusError
    return cls(status_code, text, headers=headers, body=body, url=url)


class APIConnectionError(APIError, ConnectionError):
    """The request did not get an answer: connection refused, reset, DNS failure, ...

    ``retryable`` is False for failures a retry cannot mend (a TLS certificate that fails
    verification, a client certificate the server refuses): those are raised at once.
    """

    def __init__(self, message: str, *, url: str | None = None, retryable: bool = True) -> None:
        super().__init__(message)
        self.url = url
        self.retryable = retryable


class APITimeoutError(APIConnectionError, TimeoutError):
    """A connect, read or stream-idle timeout expired.

    ``phase`` is ``"connect"`` (nothing was sent: safe to retry), ``"read"`` (waiting for the
    answer) or ``"idle"`` (a stream went silent between events).
    """

    def __init__(self, message: str, *, url: str | None = None, phase: str = "read") -> None:
        super().__init__(message, url=url)
        self.phase = phase


class APIResponseValidationError(APIError):
    """A response that is not what the API sends: not JSON, or JSON of the wrong shape."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        text: str | None = None,
    ) -> None:
        detail = message
        if status_code is not None:
            detail = f"HTTP {status_code}: {message}"
        if text is not None:
            detail += f"; body starts with: {_preview(text, 200)!r}"
        super().__init__(detail)
        self.status_code = status_code
        self.text = text


class ToolArgumentsError(APIResponseValidationError):
    """The arguments of a tool call do not fit the tool; ``argument`` names the bad one."""

    def __init__(self, message: str, *, tool: str, argument: str | None = None) -> None:
        super().__init__(message)
        self.tool = tool
        self.argument = argument


class StructuredOutputError(APIResponseValidationError):
    """A structured answer could not be parsed.

    ``reason`` is ``"length"`` (cut by the token limit), ``"invalid_json"`` or
    ``"validation"``; ``text`` keeps the raw answer.
    """

    def __init__(self, message: str, *, reason: str, text: str) -> None:
        super().__init__(message, text=text)
        self.reason = reason


class ToolLoopLimitError(APIError):
    """``run_tools`` reached ``max_iterations`` while the model still called tools.

    ``messages`` is the conversation so far (tool results included), ready to continue.
    """

    def __init__(self, message: str, *, messages: list[Any]) -> None:
        super().__init__(message)
        self.messages = messages


class StreamError(APIError):
    """A stream of server-sent events broke."""


class IncompleteStreamError(StreamError):
    """The stream ended before its finish chunk or ``[DONE]``: the answer is incomplete.

    ``partial`` holds what was received, so nothing is lost.
    """

    def __init__(self, message: str, *, partial: Any = None) -> None:
        super().__init__(message)
        self.partial = partial


class StreamEventError(StreamError):
    """The server sent an error object inside a 200 stream.

    ``message`` and ``code`` are the API's; ``body`` is the whole error object.
    """

    def __init__(self, message: str, *, code: str | None = None, body: Any = None) -> None:
        text = f"error event in stream: {message}" + (f" [{code}]" if code else "")
        super().__init__(text)
        self.message = message
        self.code = code
        self.body = body


class EventTooLargeError(StreamError):
    """An SSE event exceeded the configured maximum event size."""
