"""Small helpers to load files and URLs as base64 (for image prompt items)."""

from __future__ import annotations

import base64
import math
import os
from typing import Union

from ._exceptions import (
    APIConnectionError,
    APITimeoutError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    status_error,
)

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
        raise InvalidArgumentTypeError(f"url must be a str, got {type(url).__name__}")
    from urllib.parse import urlsplit

    from ._config import Timeout, has_control, safe_url
    from ._request import HTTPRequest
    from ._transport import SyncTransport
    from ._wire import MAX_REDIRECTS, redirect
    from .version import user_agent_headers

    if has_control(url):
        # urlsplit would silently drop CR, LF and TAB: refuse instead
        raise InvalidArgumentError(
            "url: must not contain control characters (CR, LF, TAB, NUL, ...), got "
            f"{safe_url(url)!r}"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgumentError(f"url must be an http(s) URL, got {safe_url(url)!r}")
    if not url.isascii() or " " in url:
        from urllib.parse import quote

        # non-ASCII goes out as UTF-8 percent-escapes, never as raw bytes
        url = parts._replace(
            path=quote(parts.path, safe="/%:@!$&'()*+,;=-._~"),
            query=quote(parts.query, safe="/%:@!$&'()*+,;=-._~?"),
        ).geturl()
    limits = Timeout.coerce(timeout, "timeout")
    request = HTTPRequest("GET", url, {**user_agent_headers(), "Accept-Encoding": "gzip, deflate"})
    transport = SyncTransport(pool_size=1, verify_ssl=True, host=url)
    try:
        refused = 0
        redirects = 0
        while True:
            try:
                response = transport.send(request, limits)
            except APITimeoutError as err:
                raise APITimeoutError(
                    f"downloading {url} timed out after {timeout} s", url=url, phase=err.phase
                ) from err
            except APIConnectionError as err:
                if err.__class__ is APIConnectionError and refused < 2 and redirects == 0:
                    refused += 1
                    continue
                raise APIConnectionError(f"downloading {url} failed: {err}", url=url) from err
            follow = redirect(request, response.status, response.headers)
            if follow is not None and redirects < MAX_REDIRECTS:
                response.close()
                request = follow
                redirects += 1
                continue
            body = response.read()
            if response.status >= 400:
                text = body.decode("utf-8", errors="replace")
                raise status_error(response.status, text, headers=response.headers, url=url)
            return body
    finally:
        transport.close()


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


# --- argument validation helpers shared by the request models (private) -----------------


def _brief(value: object, limit: int = 60) -> str:
    text = repr(value)
    if len(text) > limit:
        text = text[:limit] + "..."
    return text


def _got(value: object) -> str:
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    return f"{type(value).__name__} {_brief(value)}"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_int(
    name: str, value: object, *, minimum: int | None = None, optional: bool = False
) -> None:
    """Raise unless ``value`` is an int (not a bool) >= ``minimum`` (or None if optional)."""
    if value is None and optional:
        return
    if minimum == 1:
        what = "a positive int"
    elif minimum is not None:
        what = f"an int >= {minimum}"
    else:
        what = "an int"
    if optional:
        what += " or None"
    if not _is_int(value):
        raise InvalidArgumentTypeError(f"{name} must be {what}, got {_got(value)}")
    if minimum is not None and value < minimum:  # type: ignore[operator]
        raise InvalidArgumentError(f"{name} must be {what}, got {value!r}")


def _check_number(
    name: str,
    value: object,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    optional: bool = False,
) -> None:
    """Raise unless ``value`` is a finite int or float (not a bool) within the bounds."""
    if value is None and optional:
        return
    what = "a number"
    if minimum is not None and maximum is not None:
        what = f"a number between {minimum} and {maximum}"
    elif minimum is not None:
        what = f"a number >= {minimum}"
    elif maximum is not None:
        what = f"a number <= {maximum}"
    if optional:
        what += " or None"
    if not _is_number(value):
        raise InvalidArgumentTypeError(f"{name} must be {what}, got {_got(value)}")
    number = float(value)  # type: ignore[arg-type]
    if (
        math.isnan(number)
        or math.isinf(number)
        or (minimum is not None and number < minimum)
        or (maximum is not None and number > maximum)
    ):
        if math.isnan(number) or math.isinf(number):
            what = "a finite " + what[2:]
        raise InvalidArgumentError(f"{name} must be {what}, got {value!r}")


def _check_bool(name: str, value: object, *, optional: bool = False) -> None:
    """Raise unless ``value`` is a bool (or None if optional)."""
    if value is None and optional:
        return
    if not isinstance(value, bool):
        what = "a bool or None" if optional else "a bool"
        raise InvalidArgumentTypeError(f"{name} must be {what}, got {_got(value)}")


def _check_str(name: str, value: object, *, optional: bool = False) -> None:
    """Raise unless ``value`` is a str (or None if optional)."""
    if value is None and optional:
        return
    if not isinstance(value, str):
        what = "a str or None" if optional else "a str"
        raise InvalidArgumentTypeError(f"{name} must be {what}, got {_got(value)}")


def _check_str_list(
    name: str, value: object, *, optional: bool = False, non_empty: bool = False
) -> None:
    """Raise unless ``value`` is a list or tuple of str (a bare str is refused)."""
    if value is None and optional:
        return
    what = "a list of str" + (" or None" if optional else "")
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise InvalidArgumentTypeError(f"{name} must be {what}, got {_got(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise InvalidArgumentTypeError(f"{name}[{i}] must be a str, got {_got(item)}")
    if non_empty and not value:
        raise InvalidArgumentError(f"{name} must not be empty")


def _check_int_list(name: str, value: object, *, non_empty: bool = False) -> None:
    """Raise unless ``value`` is a list or tuple of ints."""
    if not isinstance(value, (list, tuple)):
        raise InvalidArgumentTypeError(f"{name} must be a list of int, got {_got(value)}")
    for i, item in enumerate(value):
        if not _is_int(item):
            raise InvalidArgumentTypeError(f"{name}[{i}] must be an int, got {_got(item)}")
    if non_empty and not value:
        raise InvalidArgumentError(f"{name} must not be empty")
