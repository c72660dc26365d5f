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
        # NewConnectionError subclasses ConnectTimeoutError in urllib3 2 (refused != timeout)
        if isinstance(reason, urllib3.exceptions.TimeoutError) and not isinstance(
            reason, urllib3.exceptions.NewConnectionError
        ):
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
