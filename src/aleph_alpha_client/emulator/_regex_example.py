"""A short deterministic string that a regular expression (JSON schema ``pattern``) matches.

Built from Python's own regex parser: literals are kept, classes give their first member,
repeats their minimum count, alternations their first branch; anchors and lookarounds are
skipped. :func:`regex_example` returns ``None`` when the result does not match after all.
"""

from __future__ import annotations

import importlib
import re
import string
from typing import Any, Optional

__all__ = ["regex_example"]

try:
    _parser: Any = importlib.import_module("re._parser")
    _constants: Any = importlib.import_module("re._constants")
except ImportError:  # pragma: no cover - Python < 3.11
    _parser = importlib.import_module("sre_parse")
    _constants = importlib.import_module("sre_constants")

_CATEGORY_CHARS = {
    "CATEGORY_DIGIT": "0",
    "CATEGORY_NOT_DIGIT": "a",
    "CATEGORY_SPACE": " ",
    "CATEGORY_NOT_SPACE": "a",
    "CATEGORY_WORD": "a",
    "CATEGORY_NOT_WORD": "-",
}
_CANDIDATES = string.ascii_lowercase + string.digits + string.ascii_uppercase + " -_.@"


def regex_example(pattern: str) -> Optional[str]:
    """A string ``re.search(pattern, s)`` accepts, or ``None`` if none was found."""
    try:
        parsed = _parser.parse(pattern)
        groups: dict[int, str] = {}
        result = _emit(list(parsed), groups)
        return result if re.search(pattern, result) else None
    except (re.error, RecursionError, ValueError, TypeError, IndexError, OverflowError):
        return None


def _emit(items: list[Any], groups: dict[int, str]) -> str:
    out: list[str] = []
    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            out.append(chr(arg))
        elif name == "NOT_LITERAL":
            out.append(next(c for c in _CANDIDATES if ord(c) != arg))
        elif name == "ANY":
            out.append("a")
        elif name == "IN":
            out.append(_in(arg))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, _high, sub = arg
            out.append(_emit(list(sub), groups) * min(int(low), 1000))
        elif name == "SUBPATTERN":
            group, _add, _del, sub = arg
            text = _emit(list(sub), groups)
            if group is not None:
                groups[group] = text
            out.append(text)
        elif name == "ATOMIC_GROUP":
            out.append(_emit(list(arg), groups))
        elif name == "BRANCH":
            out.append(_emit(list(arg[1][0]), groups))
        elif name == "GROUPREF":
            out.append(groups.get(arg, ""))
        elif name == "CATEGORY":
            out.append(_CATEGORY_CHARS.get(str(arg), "a"))
        elif name in ("AT", "ASSERT", "ASSERT_NOT"):
            continue
        else:
            raise ValueError(f"unsupported regex element {name}")
    return "".join(out)


def _in(members: list[Any]) -> str:
    negate = any(str(op) == "NEGATE" for op, _ in members)
    if not negate:
        op, arg = members[0]
        name = str(op)
        if name == "LITERAL":
            return chr(arg)
        if name == "RANGE":
            return chr(arg[0])
        if name == "CATEGORY":
            return _CATEGORY_CHARS.get(str(arg), "a")
    body = "".join(_member_regex(op, arg) for op, arg in members if str(op) != "NEGATE")
    char_class = re.compile(("[^" if negate else "[") + body + "]")
    return next((c for c in _CANDIDATES if char_class.fullmatch(c)), "a")


def _member_regex(op: Any, arg: Any) -> str:
    name = str(op)
    if name == "LITERAL":
        return re.escape(chr(arg))
    if name == "RANGE":
        return re.escape(chr(arg[0])) + "-" + re.escape(chr(arg[1]))
    if name == "CATEGORY":
        return {
            "CATEGORY_DIGIT": r"\d",
            "CATEGORY_NOT_DIGIT": r"\D",
            "CATEGORY_SPACE": r"\s",
            "CATEGORY_NOT_SPACE": r"\S",
            "CATEGORY_WORD": r"\w",
            "CATEGORY_NOT_WORD": r"\W",
        }.get(str(arg), "")
    return ""
