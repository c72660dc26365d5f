"""Small helpers to load files and URLs as base64 (for image prompt items)."""

from __future__ import annotations

import base64
import os
from typing import Union

from ._exceptions import (
    APIConnectionError,
    APITimeoutError,
    InvalidArgumentTypeError,
    status_error,
)

__all__ = ["DEFAULT_DOWNLOAD_TIMEOUT", "load_base64_from_file", "load_base64_from_url"]

#: Seconds to wait for a download (connect and each read) before giving up.
DEFAULT_DOWNLOAD_TIMEOUT = 30.0

_StrPath = Union[str, "os.PathLike[str]"]


def _download(url: str, timeout: float | None = DEFAULT_DOWNLOAD_TIMEOUT) -> bytes:
    """GET ``url`` and return its body; raise a typed error on a status >= 400.

    Errors: :class:`~aleph_alpha_client._exceptions.APIStatusError` subclasses (status and URL
    in the message), :class:`APITimeoutError` or :class:`APIConnectionError`.
    """
    if not isinstance(url, str):
        raise InvalidArgumentTypeError(f"url must be a str, got {type(url).__name__}")
    import urllib3

    retries = urllib3.Retry(total=5, connect=2, read=0, redirect=5, status=0)
    try:
        response = urllib3.request("GET", url, timeout=timeout, retries=retries)
    except urllib3.exceptions.MaxRetryError as err:
        reason = err.reason
        if isinstance(reason, urllib3.exceptions.TimeoutError):
            raise APITimeoutError(
                f"downloading {url} timed out after {timeout} s", url=url
            ) from err
        raise APIConnectionError(f"downloading {url} failed: {reason}", url=url) from err
    except urllib3.exceptions.TimeoutError as err:
        raise APITimeoutError(f"downloading {url} timed out after {timeout} s", url=url) from err
    except urllib3.exceptions.LocationValueError as err:
        raise APIConnectionError(f"cannot download {url!r}: {err}", url=url) from err
    except urllib3.exceptions.HTTPError as err:
        raise APIConnectionError(f"downloading {url} failed: {err}", url=url) from err
    if response.status >= 400:
        text = response.data.decode("utf-8", errors="replace")
        raise status_error(response.status, text, headers=dict(response.headers), url=url)
    return bytes(response.data)


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
