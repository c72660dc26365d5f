"""Small helpers to load files and URLs as base64 (for image prompt items)."""

from __future__ import annotations

import base64
import os
from typing import Any, Union

from ._exceptions import (
    APIConnectionError,
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

        transport = sync_mock_transport(route, verify_ssl=True, pool_size=1)
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
            body: bytes = response.read()
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
