"""The retry policy: pure decisions, no sleeping and no I/O.

Both clients ask :meth:`RetryPolicy.delay_for_status`, :meth:`delay_for_exception` and
:meth:`delay_for_stream_error` after a failed attempt; ``None`` means "do not retry", a float
is the number of seconds to wait before the next attempt.

* Statuses 408, 409, 429, 500, 502, 503, 504 and connection failures are retried.
* The wait is exponential with jitter: ``min(max_backoff, initial_backoff * 2**attempt)``
  scaled by a random factor in ``[0.5, 1]``.
* A server-asked wait (``retry-after-ms``, then ``Retry-After`` in seconds or as an HTTP date)
  replaces it, capped at ``max_retry_after`` seconds.
* A read timeout is not retried unless ``retry_read_timeouts`` is set: the server may still be
  running the inference, and a retry would run it again.
* A stream that fails before its first content token (an overload error event, a broken
  connection, a body that ends) is sent again; the caller has seen nothing yet. After the
  first token its error is raised.
* ``max_retries`` is the official ``total_retries``: at most ``max_retries + 1`` attempts.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

from ._exceptions import (
    APIConnectionError,
    APITimeoutError,
    IncompleteStreamError,
    StreamEventError,
)

__all__ = ["RETRY_STATUS_CODES", "RetryPolicy", "parse_retry_after"]

#: Statuses a request is retried on.
RETRY_STATUS_CODES = frozenset({408, 409, 429, 500, 502, 503, 504})

#: Error codes / words of an error event inside a stream that mean "try again".
_RETRYABLE_STREAM_WORDS = ("overload", "busy", "rate limit", "rate_limit", "too many", "capacity")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    for key, val in headers.items():
        if key.lower() == name:
            return val
    return None


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asks us to wait, from ``retry-after-ms`` or ``Retry-After``."""
    raw_ms = _header(headers, "retry-after-ms")
    if raw_ms is not None:
        try:
            ms = float(raw_ms)
        except ValueError:
            ms = -1.0
        if ms >= 0 and ms == ms and ms != float("inf"):
            return ms / 1000.0
    raw = _header(headers, "retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        import email.utils

        try:
            parsed = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if parsed is None:
            return None
        if parsed.tzinfo is None:  # "-0000": UTC, not local time
            import datetime

            parsed = parsed.replace(tzinfo=datetime.timezone.utc)
        seconds = parsed.timestamp() - (time.time() if now is None else now)
        return max(0.0, seconds)
    if seconds != seconds or seconds == float("inf"):
        return None
    return max(0.0, seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """When to retry and how long to wait. Immutable; share it freely."""

    max_retries: int = 8
    initial_backoff: float = 0.25
    max_backoff: float = 8.0
    max_retry_after: float = 60.0
    retry_read_timeouts: bool = False
    retry_statuses: frozenset[int] = RETRY_STATUS_CODES

    def _backoff(self, attempt: int) -> float:
        base = min(self.max_backoff, self.initial_backoff * (2.0 ** min(attempt, 30)))
        return base * (0.5 + random.random() / 2.0)

    def _can_retry(self, attempt: int, retries: int | None) -> bool:
        limit = self.max_retries if retries is None else retries
        return attempt < limit

    def delay_for_status(
        self,
        attempt: int,
        status: int,
        headers: Mapping[str, str],
        retries: int | None = None,
    ) -> float | None:
        """Wait before retrying after ``status`` on attempt ``attempt`` (0-based), or None."""
        if status not in self.retry_statuses or not self._can_retry(attempt, retries):
            return None
        asked = parse_retry_after(headers)
        if asked is not None:
            return min(asked, self.max_retry_after)
        return self._backoff(attempt)

    def delay_for_exception(
        self, attempt: int, error: APIConnectionError, retries: int | None = None
    ) -> float | None:
        """Wait before retrying after a transport failure, or None."""
        if not self._can_retry(attempt, retries):
            return None
        if isinstance(error, APITimeoutError) and getattr(error, "phase", "read") == "read":
            if not self.retry_read_timeouts:
                return None
        return self._backoff(attempt)

    def delay_for_stream_error(
        self,
        attempt: int,
        error: StreamEventError | IncompleteStreamError,
        retries: int | None = None,
    ) -> float | None:
        """Wait before retrying a stream that failed before any content: after an overload
        error event, or a stream that broke or ended (nothing was shown to the caller)."""
        if not self._can_retry(attempt, retries):
            return None
        if isinstance(error, IncompleteStreamError):
            return self._backoff(attempt)
        text = f"{error.code or ''} {error.message}".lower()
        if any(word in text for word in _RETRYABLE_STREAM_WORDS):
            return self._backoff(attempt)
        return None
