"""Argument checks shared by the constructors, ``with_options`` and the request models. Pure.

One message style everywhere: ``"argument: expected <what>, got <value>"``. A value of the
wrong type raises :class:`InvalidArgumentTypeError` (also a ``TypeError``), a value out of
range :class:`InvalidArgumentError` (also a ``ValueError``); both before anything is sent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ._exceptions import InvalidArgumentError, InvalidArgumentTypeError

__all__ = [
    "brief",
    "check_bool",
    "check_hosting",
    "check_int",
    "check_int_list",
    "check_max_retry_after",
    "check_number",
    "check_retries",
    "check_str",
    "check_str_list",
    "check_tags",
    "got",
    "is_int",
    "is_number",
]


def brief(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters."""
    text = repr(value)
    if len(text) > limit:
        text = text[:limit] + "..."
    return text


def got(value: object) -> str:
    """How a message shows a wrong value: numbers as they are, others with their type."""
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    return f"{type(value).__name__} {brief(value)}"


def is_int(value: object) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """An int or float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _bounds(kind: str, minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f"{kind} between {minimum} and {maximum}"
    if minimum == 1 and kind == "an int":
        return "a positive int"
    if minimum is not None:
        return f"{kind} >= {minimum}"
    if maximum is not None:
        return f"{kind} <= {maximum}"
    return kind


def check_int(
    name: str,
    value: object,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    optional: bool = False,
) -> None:
    """Raise unless ``value`` is an int (not a bool) within the bounds (or None if optional)."""
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        what = _bounds("an int", minimum, maximum) + (" or None" if optional else "")
        raise InvalidArgumentTypeError(f"{name}: expected {what}, got {got(value)}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        what = _bounds("an int", minimum, maximum) + (" or None" if optional else "")
        raise InvalidArgumentError(f"{name}: expected {what}, got {value!r}")


def check_number(
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
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        what = _bounds("a number", minimum, maximum) + (" or None" if optional else "")
        raise InvalidArgumentTypeError(f"{name}: expected {what}, got {got(value)}")
    number = float(value)
    if (
        math.isnan(number)
        or math.isinf(number)
        or (minimum is not None and number < minimum)
        or (maximum is not None and number > maximum)
    ):
        what = _bounds("a number", minimum, maximum) + (" or None" if optional else "")
        if math.isnan(number) or math.isinf(number):
            what = "a finite " + what[2:]
        raise InvalidArgumentError(f"{name}: expected {what}, got {value!r}")


def check_bool(name: str, value: object, *, optional: bool = False) -> None:
    """Raise unless ``value`` is a bool (or None if optional)."""
    if value is None and optional:
        return
    if not isinstance(value, bool):
        what = "a bool or None" if optional else "a bool"
        raise InvalidArgumentTypeError(f"{name}: expected {what}, got {got(value)}")


def check_str(name: str, value: object, *, optional: bool = False) -> None:
    """Raise unless ``value`` is a str (or None if optional)."""
    if value is None and optional:
        return
    if not isinstance(value, str):
        what = "a str or None" if optional else "a str"
        raise InvalidArgumentTypeError(f"{name}: expected {what}, got {got(value)}")


def check_str_list(
    name: str, value: object, *, optional: bool = False, non_empty: bool = False
) -> None:
    """Raise unless ``value`` is a list or tuple of str (a bare str is refused)."""
    if value is None and optional:
        return
    what = ("a non-empty list of str" if non_empty else "a list of str") + (
        " or None" if optional else ""
    )
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise InvalidArgumentTypeError(f"{name}: expected {what}, got {got(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise InvalidArgumentTypeError(f"{name}[{i}]: expected a str, got {got(item)}")
    if non_empty and not value:
        raise InvalidArgumentError(f"{name}: expected {what}, got an empty list")


def check_int_list(name: str, value: object, *, non_empty: bool = False) -> None:
    """Raise unless ``value`` is a list or tuple of ints."""
    what = "a non-empty list of int" if non_empty else "a list of int"
    if not isinstance(value, (list, tuple)):
        raise InvalidArgumentTypeError(f"{name}: expected {what}, got {got(value)}")
    for i, item in enumerate(value):
        if not is_int(item):
            raise InvalidArgumentTypeError(f"{name}[{i}]: expected an int, got {got(item)}")
    if non_empty and not value:
        raise InvalidArgumentError(f"{name}: expected {what}, got an empty list")


# --- client options: the constructors and with_options share these -----------------------


def check_retries(name: str, value: object) -> int:
    """A retry count: an int >= 0 (``total_retries`` / ``max_retries``)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgumentError(f"{name}: expected an int >= 0, got {got(value)}")
    return value


def check_hosting(value: object) -> str | None:
    """``hosting``: a str or None."""
    if value is not None and not isinstance(value, str):
        raise InvalidArgumentTypeError(f"hosting: expected a str or None, got {got(value)}")
    return value


def check_tags(value: object) -> tuple[str, ...] | None:
    """``tags``: a list of str or None, kept as a tuple."""
    if value is None:
        return None
    wrong = InvalidArgumentTypeError(f"tags: expected a list of str or None, got {got(value)}")
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise wrong
    tags = tuple(value)
    if not all(isinstance(tag, str) for tag in tags):
        raise wrong
    return tags


def check_max_retry_after(value: Any) -> float:
    """``max_retry_after`` as seconds >= 0 (the cap on a server-asked wait)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgumentTypeError(
            f"max_retry_after: expected seconds as a number, got {got(value)}"
        )
    if not value >= 0:
        raise InvalidArgumentError(f"max_retry_after: expected seconds >= 0, got {value}")
    return float(value)
