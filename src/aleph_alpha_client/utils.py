"""Small helpers to load files and URLs as base64 (for image prompt items)."""

from __future__ import annotations

import base64
import os
import sys
from typing import Any, Union

from ._exceptions import (
    AlephAlphaError,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    status_error,
)
from ._validation import got

__all__ = ["DEFAULT_DOWNLOAD_TIMEOUT", "load_base64_from_file", "load_base64_from_url"]

#: Seconds to wait for a download (connect and each read) before giving up.
DEFAULT_DOWNLOAD_TIMEOUT = 30.0

_StrPath = Union[str, "os.PathLike[str]"]


def _download(url: str, timeout: float | None = DEFAULT_DOWNLOAD_TIMEOUT) -> bytes:
    """GET ``url`` and return its body; raise a typed error on a status >= 400.

    Follows up to 5 redirects and retries a refused connection twice. Errors:
    :class:`~aleph_alpha_client._exceptions.APIStatusError` subclasses (status and URL in the
    message), :class:`APITimeoutError` or :class:`APIConnectionError`.
    """
    if not isinstance(url, str):
        raise InvalidArgumentTypeError(f"url: expected a str, got {got(url)}")
    from urllib.parse import urlsplit

    from ._config import Timeout, has_control, safe_url
    from ._mocks import sync_route
    from ._request import HTTPRequest
    from ._transport import SyncTransport
    from ._wire import MAX_REDIRECTS, redirect
    from .version import user_agent_headers

    if has_control(url):
        # urlsplit would silently drop CR, LF and TAB: refuse instead
        raise InvalidArgumentError(
            "url: expected a URL without control characters (CR, LF, TAB, NUL, ...), got "
            f"{safe_url(url)!r}"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgumentError(f"url: expected an http(s) URL, got {safe_url(url)!r}")
    if not url.isascii() or " " in url:
        from urllib.parse import quote

        # non-ASCII goes out as UTF-8 percent-escapes, never as raw bytes
        url = parts._replace(
            path=quote(parts.path, safe="/%:@!$&'()*+,;=-._~"),
            query=quote(parts.query, safe="/%:@!$&'()*+,;=-._~?"),
        ).geturl()
    limits = Timeout.coerce(timeout, "timeout")
    request = HTTPRequest("GET", url, {**user_agent_headers(), "Accept-Encoding": "gzip, deflate"})
    route = sync_route()  # while an HTTP mock is active, the download goes through it too
    if route == "default":
        transport: Any = SyncTransport(pool_size=1, verify_ssl=True, host=url)
    else:
        from ._compat_transport import sync_mock_transport

        transport = sync_mock_transport(route, verify_ssl=True, pool_size=1, downloads=True)
    try:
        refused = 0
        redirects = 0
        while True:
            try:
                response = transport.send(request, limits)
            except APITimeoutError as err:
                raise _also_requests_error(
                    APITimeoutError(
                        f"downloading {url} timed out after {timeout} s", url=url, phase=err.phase
                    )
                ) from err
            except APIConnectionError as err:
                if err.__class__ is APIConnectionError and refused < 2 and redirects == 0:
                    refused += 1
                    continue
                raise _also_requests_error(
                    APIConnectionError(f"downloading {url} failed: {err}", url=url)
                ) from err
            follow = redirect(request, response.status, response.headers)
            if follow is not None and redirects < MAX_REDIRECTS:
                response.close()
                request = follow
                redirects += 1
                continue
            body: bytes = response.read()
            if response.status >= 400:
                text = body.decode("utf-8", errors="replace")
                raise _also_requests_error(
                    status_error(response.status, text, headers=response.headers, url=url)
                )
            return body
    finally:
        transport.close()


_REQUESTS_KINDS = (
    (APITimeoutError, "Timeout"),
    (APIConnectionError, "ConnectionError"),
    (APIStatusError, "HTTPError"),
)
_MIXED: dict[tuple[type, type], type] = {}


def _also_requests_error(error: AlephAlphaError) -> AlephAlphaError:
    """``error``, also an instance of the requests error the official client let out of a
    download (it used ``requests.get(...).raise_for_status()``), so ``except
    requests.RequestException`` keeps working. Only when the caller has imported requests."""
    exceptions = sys.modules.get("requests.exceptions")
    if exceptions is None:
        return error
    for ours, name in _REQUESTS_KINDS:
        if isinstance(error, ours):
            theirs = getattr(exceptions, name, None)
            break
    else:  # pragma: no cover - every download error is one of the kinds above
        return error
    if not isinstance(theirs, type) or isinstance(error, theirs):
        return error
    cls = type(error)
    mixed = _MIXED.get((cls, theirs))
    if mixed is None:
        try:
            namespace = {"__module__": cls.__module__, "__reduce__": _reduce_to_ours}
            mixed = type(cls.__name__, (cls, theirs), namespace)
        except TypeError:  # pragma: no cover - an instance layout requests' class cannot share
            return error
        _MIXED[(cls, theirs)] = mixed
    # requests' errors are OSErrors: OSError is the base whose constructor makes the instance
    both: AlephAlphaError = OSError.__new__(mixed, *error.args)
    both.__dict__.update(error.__dict__)
    both.args = error.args
    both.__dict__.setdefault("response", None)  # what requests' errors carry
    both.__dict__.setdefault("request", None)
    return both


def _reduce_to_ours(error: BaseException) -> tuple[Any, ...]:
    """Pickle a mixed error as our own class (the mixed class exists in this process only)."""
    ours = type(error).__mro__[1]
    state = {k: v for k, v in error.__dict__.items() if k not in ("response", "request")}
    return _rebuild, (ours, error.args, state)


def _rebuild(cls: type, args: tuple[Any, ...], state: dict[str, Any]) -> BaseException:
    error: BaseException = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


def load_base64_from_url(url: str, timeout: float | None = DEFAULT_DOWNLOAD_TIMEOUT) -> str:
    """Download ``url`` and return its body base64-encoded.

    Unlike the official client this has a timeout (``timeout`` seconds, ``None`` waits forever)
    and raises a typed status error (``NotFoundError`` for 404, ...) when the server answers
    with a status >= 400, instead of encoding the error page.
    """
    return base64.b64encode(_download(url, timeout)).decode("ascii")


def load_base64_from_file(path_and_filename: _StrPath) -> str:
    """Read a file from disk and return its content base64-encoded."""
    with open(path_and_filename, "rb") as f:
        return base64.b64encode(f.read()).decode("ascii")
