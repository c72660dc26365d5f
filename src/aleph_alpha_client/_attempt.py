"""The attempt machine: one logical request across its attempts, as a series of steps. Pure.

It decides everything between "the user called a method" and "here is a response with status
< 300" (or "raise this"); it never sends and never sleeps. The shells (``_client``,
``_async_client``) drive it in a loop of a few lines, sync or async::

    start() ──> Send(request)
    Send ──transport raised APIConnectionError──> failed(error) ──> Sleep | Raise
    Send ──response──> received(response):
        status < 300                       ──> Done(response)
        a redirect that is followed        ──> Send(the redirected request)
        a redirect that is not followed    ──> Raise(APIResponseValidationError)
        status >= 400                      ──> Read(response)
    Read ──body──> read(response, body)    ──> Sleep (a retried status) | Raise(its typed error)
                                               | Refresh (a 401, once, with a token callable)
    Refresh ──a fresh token──> refreshed(token) ──> Send(request with it)
    Sleep ──slept──> start()               ──> Send(request) again
    Done, a stream that failed before its first token ──> stream_failed(error, started)
                                           ──> Sleep (then start() anew) | Raise(error)

Responses the machine will not hand back (a redirect, one it raises for) are closed by it:
``close()`` never blocks on any transport. Whether and how long to wait is the pure policy of
:mod:`._retry`; what a redirect becomes and which error a status is come from :mod:`._wire`.
Before each attempt :func:`._tracing.on_attempt` records it on the call's span. With a token
callable the shell asks it before driving and hands the token to :meth:`AttemptDriver.authorize`,
which allows one :class:`Refresh` after a 401 to a request that carried the token.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Generic, Protocol, TypeVar, Union

from . import _tracing
from ._exceptions import APIConnectionError, IncompleteStreamError, StreamEventError
from ._hooks import needs_token_refresh
from ._raw import request_id_of
from ._request import HTTPRequest, redact_headers
from ._retry import RetryPolicy
from ._wire import MAX_REDIRECTS, error_for_status, redirect, redirect_error, with_token

__all__ = ["AttemptDriver", "Done", "Raise", "Read", "Refresh", "Send", "Sleep", "Step"]

logger = logging.getLogger("aleph_alpha_client")


def _log_extra(headers: Mapping[str, str] | None, attempt: int) -> dict[str, object]:
    """The ``request_id`` and ``attempt`` (1-based) that every log line of a call carries."""
    return {
        "request_id": None if headers is None else request_id_of(headers),
        "attempt": attempt + 1,
    }


class _Response(Protocol):
    """What the machine needs of a response: its status, headers and ``close()``."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def close(self) -> None: ...


ResponseT = TypeVar("ResponseT", bound=_Response)


class Send:
    """Send ``request`` (one attempt); report ``received(response)`` or ``failed(error)``."""

    __slots__ = ("request",)

    def __init__(self, request: HTTPRequest) -> None:
        self.request = request


class Read(Generic[ResponseT]):
    """Read the whole body of ``response`` (an error status); report ``read(response, body)``."""

    __slots__ = ("response",)

    def __init__(self, response: ResponseT) -> None:
        self.response = response


class Sleep:
    """Wait ``seconds``, then ``start()`` the next attempt."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


class Done(Generic[ResponseT]):
    """``response`` has a status < 300: hand it to the caller (still open)."""

    __slots__ = ("response",)

    def __init__(self, response: ResponseT) -> None:
        self.response = response


class Raise:
    """Give up: raise ``error`` (one of our typed errors)."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class Refresh:
    """A 401: ask the token callable once more and report ``refreshed(token)``."""

    __slots__ = ()


#: What the machine asks the shell to do next.
Step = Union[Send, Read[ResponseT], Sleep, Done[ResponseT], Raise, Refresh]


class AttemptDriver(Generic[ResponseT]):
    """The decisions of one logical request across its attempts (see the module docstring).

    ``attempt`` counts the attempts made so far (0-based index of the next one); a stream that
    is sent again keeps counting, so ``max_retries`` bounds all its attempts together.
    """

    __slots__ = ("_headers", "_origin", "_redirects", "_refresh", "attempt", "policy", "request")

    def __init__(self, request: HTTPRequest, policy: RetryPolicy, attempt: int = 0) -> None:
        self._origin = request
        self.request = request
        self.policy = policy
        self.attempt = attempt
        self._redirects = 0
        self._headers: Mapping[str, str] | None = None  # of the last response (for logs)
        self._refresh = False

    def authorize(self, token: str) -> None:
        """Put a token callable's token on the request; one refresh after a 401 is allowed."""
        with_token(self.request, token)
        self._refresh = True

    def refreshed(self, token: str) -> Send:
        """The token callable's fresh token: send the request once more with it."""
        with_token(self.request, token)
        return self.start()

    def start(self) -> Send:
        """The next attempt: send the current request."""
        _tracing.on_attempt(self.request.headers, self.attempt)
        return Send(self.request)

    def failed(self, error: APIConnectionError) -> Sleep | Raise:
        """The transport raised ``error``: wait and retry, or raise it."""
        delay = self.policy.delay_for_exception(self.attempt, error)
        if delay is None:
            return Raise(error)
        logger.info(
            "[attempt %d, request id -] %s %s failed (%s); retry %d in %.2fs",
            self.attempt + 1,
            self.request.method,
            self.request.url,
            error,
            self.attempt + 1,
            delay,
            extra=_log_extra(None, self.attempt),
        )
        self.attempt += 1
        return Sleep(delay)

    def received(self, response: ResponseT) -> Step[ResponseT]:
        """A response arrived: done, follow a redirect, read an error body, or raise."""
        status = response.status
        self._headers = response.headers
        if logger.isEnabledFor(logging.DEBUG):
            extra = _log_extra(response.headers, self.attempt)
            logger.debug(
                "[attempt %d, request id %s] %s %s -> %d (request headers %s)",
                self.attempt + 1,
                extra["request_id"] or "-",
                self.request.method,
                self.request.url,
                status,
                redact_headers(self.request.headers),
                extra=extra,
            )
        if status < 300:
            return Done(response)
        if status >= 400:
            return Read(response)
        try:
            follow = redirect(self.request, status, response.headers)
            if follow is None or self._redirects >= MAX_REDIRECTS:
                return Raise(redirect_error(status, response.headers, self.request.url))
        except Exception as error:  # an invalid Location: our typed error from _wire
            return Raise(error)
        finally:
            response.close()
        self.request = follow
        self._redirects += 1
        return self.start()

    def read(self, response: ResponseT, body: bytes) -> Sleep | Raise | Refresh:
        """The body of an error status: wait and retry, or raise the status's typed error; a
        401 asks for a fresh token once (with a token callable)."""
        status, headers = response.status, response.headers
        if self._refresh and needs_token_refresh(self.request, status):
            self._refresh = False  # one fresh token per request, then the 401 is raised
            logger.info(
                "%s %s -> 401; asking the token callable again",
                self.request.method,
                self.request.url,
            )
            return Refresh()
        delay = self.policy.delay_for_status(self.attempt, status, headers)
        if delay is None:
            return Raise(error_for_status(status, headers, body, self.request.url))
        extra = _log_extra(headers, self.attempt)
        logger.info(
            "[attempt %d, request id %s] %s %s -> %d; retry %d in %.2fs",
            self.attempt + 1,
            extra["request_id"] or "-",
            self.request.method,
            self.request.url,
            status,
            self.attempt + 1,
            delay,
            extra=extra,
        )
        self.attempt += 1
        return Sleep(delay)

    def stream_failed(
        self, error: StreamEventError | IncompleteStreamError, started: bool
    ) -> Sleep | Raise:
        """A stream failed: before its first token it is sent again (from the original
        request), after it the error is raised; the caller has seen nothing twice."""
        if started:
            return Raise(error)
        delay = self.policy.delay_for_stream_error(self.attempt, error)
        if delay is None:
            return Raise(error)
        extra = _log_extra(self._headers, self.attempt)
        logger.info(
            "[attempt %d, request id %s] stream error before the first token (%s); "
            "retry %d in %.2fs",
            self.attempt + 1,
            extra["request_id"] or "-",
            error,
            self.attempt + 1,
            delay,
            extra=extra,
        )
        self.attempt += 1
        self.request = self._origin
        self._redirects = 0
        return Sleep(delay)
