"""Client configuration: host, token, timeouts, retries, logging. Pure, no I/O.

Precedence: constructor arguments, then environment variables, then defaults.

==========================  =====================================================
``ALEPH_ALPHA_API_KEY``     the token (``AA_TOKEN`` is the fallback)
``ALEPH_ALPHA_BASE_URL``    the host, when the constructor gets none
``ALEPH_ALPHA_LOG``         ``debug`` or ``info``: log to stderr
==========================  =====================================================
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Union
from urllib.parse import quote, urlsplit

from ._exceptions import AlephAlphaError, InvalidArgumentError, InvalidArgumentTypeError
from ._hooks import check_event_hooks, check_headers, is_async_callable
from ._request import DEFAULT_MAX_RESPONSE_SIZE, redact_headers
from ._retry import RetryPolicy
from ._sse import DEFAULT_MAX_EVENT_SIZE
from ._validation import (
    check_hosting,
    check_int,
    check_max_retry_after,
    check_retries,
    check_tags,
    got,
)

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_MAX_RESPONSE_SIZE",
    "DEFAULT_MAX_EVENT_SIZE",
    "DEFAULT_REQUEST_TIMEOUT",
    "ClientConfig",
    "check_max_retry_after",
    "Timeout",
    "make_config",
    "redact_headers",
]

#: The host used when neither ``host`` nor ``ALEPH_ALPHA_BASE_URL`` is given.
DEFAULT_HOST = "https://api.aleph-alpha.com"
#: Seconds an attempt may take, as in the official client.
DEFAULT_REQUEST_TIMEOUT = 305
#: Seconds to open a connection.
DEFAULT_CONNECT_TIMEOUT = 10.0

logger = logging.getLogger("aleph_alpha_client")


@dataclass(frozen=True)
class Timeout:
    """Timeouts of one attempt, in seconds (``None``: no limit).

    * ``total``: a whole non-streaming attempt, request and full answer.
    * ``connect``: opening the connection (default 10 s; ``None`` would wait forever).
    * ``idle``: the longest silence while reading an answer; the whole response head (1xx
      answers included) must arrive within it; in a stream, the longest time between two
      *events* (bytes trickling in without completing an event do not count). Defaults to
      ``total``.
    * ``stream``: the longest a stream may run in all (default ``None``: a healthy long
      stream is never cut; set it with ``stream_timeout=``).
    """

    total: float | None = DEFAULT_REQUEST_TIMEOUT
    connect: float | None = DEFAULT_CONNECT_TIMEOUT
    idle: float | None = None
    stream: float | None = None

    def __post_init__(self) -> None:
        for name in ("total", "connect", "idle", "stream"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidArgumentTypeError(
                    f"Timeout.{name}: expected seconds as a number or None, got {got(value)}"
                )
            if not 0 < value < float("inf"):
                raise InvalidArgumentError(
                    f"Timeout.{name}: expected a finite number of seconds > 0 (None for no "
                    f"limit), got {value}"
                )

    @property
    def read(self) -> float | None:
        """The idle limit in effect (``idle``, else ``total``)."""
        return self.idle if self.idle is not None else self.total

    @staticmethod
    def coerce(value: Union[Timeout, float, int, None], name: str = "timeout") -> Timeout:
        """Build a Timeout from a number of seconds, ``None`` or a Timeout."""
        if isinstance(value, Timeout):
            return value
        if value is None:
            return Timeout(total=None, connect=DEFAULT_CONNECT_TIMEOUT, idle=None)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidArgumentTypeError(
                f"{name}: expected seconds as a number, a Timeout or None, got {got(value)}"
            )
        if not 0 < value < float("inf"):
            raise InvalidArgumentError(
                f"{name}: expected a finite number of seconds > 0 (None for no limit), got {value}"
            )
        seconds = float(value)
        return Timeout(total=seconds, connect=min(DEFAULT_CONNECT_TIMEOUT, seconds), idle=None)


@dataclass(frozen=True)
class ClientConfig:
    """Everything a client needs to build and send requests. The token is hidden in repr."""

    token: str = field(repr=False)
    host: str
    hosting: str | None = None
    tags: tuple[str, ...] | None = None
    nice: bool = False
    timeout: Timeout = field(default_factory=Timeout)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    verify_ssl: bool = True
    max_event_size: int = DEFAULT_MAX_EVENT_SIZE
    max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE
    extra_headers: tuple[tuple[str, str], ...] = ()
    #: Query parameters added to every URL (``with_options(extra_query=...)``).
    extra_query: tuple[tuple[str, str], ...] = ()
    #: A token callable, asked before each request (then ``token`` is ``""``).
    token_provider: Any = field(default=None, repr=False, compare=False)
    #: The checked ``event_hooks`` (an ``EventHooks``), or None.
    hooks: Any = field(default=None, repr=False, compare=False)

    def url(self, path: str) -> str:
        """The URL of an endpoint path."""
        return self.host + path

    def with_changes(self, **changes: Any) -> ClientConfig:
        """A copy with some fields replaced."""
        return replace(self, **changes)


def has_control(text: str) -> bool:
    """Whether ``text`` holds a control character (C0 such as CR, LF, TAB, NUL; DEL; C1)."""
    return any(ch < " " or "\x7f" <= ch <= "\x9f" for ch in text)


def safe_url(url: str) -> str:
    """``url`` for a message: any ``user:password@`` replaced by ``***@``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    return f"{scheme}://{authority}{slash}{path}"


#: What a path may hold unencoded (RFC 3986 pchar and ``/``); ``%`` keeps existing escapes.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"


def _normalise_host(host: str) -> str:
    if not isinstance(host, str):
        raise InvalidArgumentTypeError(f"host: expected a URL string, got {got(host)}")
    host = host.strip(" ")
    if not host:
        raise InvalidArgumentError(
            "host: expected an http(s) URL like 'https://api.aleph-alpha.com', got ''"
        )
    if has_control(host):
        # urlsplit would silently drop CR, LF and TAB: refuse instead
        raise InvalidArgumentError(
            "host: expected a URL without control characters (CR, LF, TAB, NUL, ...), got "
            f"{safe_url(host)!r}"
        )
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidArgumentError(
            "host: expected an http(s) URL like 'https://api.aleph-alpha.com', got "
            f"{safe_url(host)!r}"
        )
    if "@" in parts.netloc:
        raise InvalidArgumentError(
            "host: expected a URL without credentials, got one with user:password@; pass "
            "the API token as token= instead"
        )
    if parts.query or parts.fragment:
        raise InvalidArgumentError(f"host: expected a URL without query or fragment, got {host!r}")
    try:
        parts.port  # noqa: B018 - a bad port raises here, not in the middle of a call
    except ValueError:
        raise InvalidArgumentError(f"host: expected a valid port, got {host!r}") from None
    if not parts.netloc.isascii():
        raise InvalidArgumentError(
            f"host: expected an ASCII host name (use its IDNA 'xn--' form), got {host!r}"
        )
    if not parts.path.isascii() or " " in parts.path:
        # a non-ASCII path is sent as UTF-8 percent-escapes, never as raw latin-1 bytes
        host = f"{parts.scheme}://{parts.netloc}{quote(parts.path, safe=_PATH_SAFE)}"
    return host if host.endswith("/") else host + "/"


def path_segment(value: str) -> str:
    """``value`` percent-encoded as one path segment: ``/``, ``?``, ``#``, ``%`` and non-ASCII
    are escaped, and ``.``/``..`` cannot climb out of their place in the path."""
    segment = quote(value, safe="")
    if segment in (".", ".."):
        segment = segment.replace(".", "%2E")
    return segment


def resolve_token(token: Any, *, sync: bool = True) -> tuple[str, Any]:
    """The token from the argument, ``ALEPH_ALPHA_API_KEY`` or ``AA_TOKEN``, and the token
    callable when ``token`` is one (never called here).

    An empty string passed explicitly is kept, as the official client keeps it (it is sent as
    ``Authorization: Bearer `` and the API answers 401).
    """
    if callable(token) and not isinstance(token, str):
        if sync and is_async_callable(token):
            raise InvalidArgumentTypeError(
                "token: Client takes a plain function returning the token; "
                "an async one needs AsyncClient"
            )
        return "", token
    return _static_token(token), None


def _static_token(token: str | None) -> str:
    if token is None:
        token = os.environ.get("ALEPH_ALPHA_API_KEY") or os.environ.get("AA_TOKEN")
    if token is None:
        raise AlephAlphaError(
            "no API token: pass Client(token=...) or set ALEPH_ALPHA_API_KEY (or AA_TOKEN)"
        )
    if not isinstance(token, str):
        raise InvalidArgumentTypeError(f"token: expected a str, got {type(token).__name__}")
    if has_control(token):
        raise InvalidArgumentError(
            "token: expected a token without control characters, got one with control "
            "characters (CR, LF, TAB, NUL, ...)"
        )
    if not token.isascii():
        # a token is ASCII; a latin-1 one would go out as raw bytes, anything else fail later
        raise InvalidArgumentError(
            "token: expected an ASCII token, got one with non-ASCII characters (check for a "
            "pasted typographic quote)"
        )
    return token


def check_stream_timeout(value: Any) -> float | None:
    """``stream_timeout`` as seconds > 0 or ``None`` (the bound on a whole stream)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgumentTypeError(
            f"stream_timeout: expected seconds as a number or None, got {type(value).__name__}"
        )
    if not 0 < value < float("inf"):
        raise InvalidArgumentError(
            "stream_timeout: expected a finite number of seconds > 0 (None for no limit), "
            f"got {value}"
        )
    return float(value)


def check_max_response_size(value: Any) -> int:
    """``max_response_size`` as an int >= 1024 (bytes of a decoded non-streaming answer)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1024:
        raise InvalidArgumentError(f"max_response_size: expected an int >= 1024, got {value!r}")
    return value


def make_config(
    *,
    token: Any,
    host: str | None,
    hosting: str | None,
    request_timeout_seconds: Union[Timeout, float, int, None],
    total_retries: int,
    nice: bool,
    verify_ssl: bool,
    tags: Sequence[str] | None,
    max_retry_after: float,
    retry_read_timeouts: bool,
    max_event_size: int,
    default_headers: Any = None,
    event_hooks: Any = None,
    sync: bool = True,
    stream_timeout: float | None = None,
    max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
) -> ClientConfig:
    """Validate constructor arguments and build the config (no I/O)."""
    setup_logging_from_env()
    static_token, token_provider = resolve_token(token, sync=sync)
    extra_headers = check_headers(default_headers, "default_headers")
    hooks = check_event_hooks(event_hooks, sync=sync)
    if host is None:
        host = os.environ.get("ALEPH_ALPHA_BASE_URL") or DEFAULT_HOST
    check_retries("total_retries", total_retries)
    check_int("max_event_size", max_event_size, minimum=1024)
    timeout = Timeout.coerce(request_timeout_seconds, "request_timeout_seconds")
    if stream_timeout is not None:
        timeout = replace(timeout, stream=check_stream_timeout(stream_timeout))
    if not verify_ssl:
        import warnings

        warnings.warn(
            "verify_ssl=False: TLS certificates are not checked; the connection can be intercepted",
            stacklevel=3,
        )
    return ClientConfig(
        token=static_token,
        host=_normalise_host(host),
        hosting=check_hosting(hosting),
        tags=check_tags(tags),
        nice=bool(nice),
        timeout=timeout,
        retry=RetryPolicy(
            max_retries=total_retries,
            max_retry_after=check_max_retry_after(max_retry_after),
            retry_read_timeouts=retry_read_timeouts,
        ),
        verify_ssl=bool(verify_ssl),
        max_event_size=max_event_size,
        extra_headers=extra_headers,
        token_provider=token_provider,
        hooks=hooks,
        max_response_size=check_max_response_size(max_response_size),
    )


_logging_configured = False


def setup_logging_from_env() -> None:
    """Switch on stderr logging when ``ALEPH_ALPHA_LOG`` is ``debug`` or ``info`` (once)."""
    global _logging_configured
    if _logging_configured:
        return
    _logging_configured = True
    level_name = os.environ.get("ALEPH_ALPHA_LOG", "").strip().lower()
    level = {"debug": logging.DEBUG, "info": logging.INFO}.get(level_name)
    if level is None:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
