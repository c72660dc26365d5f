"""Parse a prefix of a JSON text into the largest complete JSON value it implies.

``parse_partial('{"a": [1, 2')`` is ``{"a": [1, 2]}``: open strings, arrays and objects are
closed, a key without its value and an unfinished number or literal are left out. The result
is always a valid JSON value (or ``None`` when nothing is there yet).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["parse_partial"]

_MISSING = object()


def parse_partial(text: str) -> Any:
    """The value a JSON prefix implies so far (``None`` before anything arrived)."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    parser = _Parser(text)
    value = parser.value()
    return None if value is _MISSING else value


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def _ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def _end(self) -> bool:
        self._ws()
        return self.pos >= len(self.text)

    def value(self) -> Any:
        if self._end():
            return _MISSING
        char = self.text[self.pos]
        if char == "{":
            return self._object()
        if char == "[":
            return self._array()
        if char == '"':
            string, _closed = self._string()
            return string
        return self._scalar()

    def _object(self) -> Any:
        self.pos += 1
        result: dict[str, Any] = {}
        while True:
            if self._end():
                return result
            if self.text[self.pos] == "}":
                self.pos += 1
                return result
            if self.text[self.pos] == ",":
                self.pos += 1
                continue
            if self.text[self.pos] != '"':
                raise ValueError(f"unexpected {self.text[self.pos]!r} at {self.pos}")
            key, closed = self._string()
            if not closed or self._end() or self.text[self.pos] != ":":
                return result
            self.pos += 1
            start = self.pos
            value = self.value()
            if value is _MISSING:
                return result
            if self.pos >= len(self.text) and not self._complete(start):
                if isinstance(value, str):  # a string that is still growing: show it
                    result[key] = value
                elif isinstance(value, (dict, list)):
                    result[key] = value
                return result
            result[key] = value

    def _complete(self, start: int) -> bool:
        """Whether the text from ``start`` holds a complete JSON value."""
        try:
            json.loads(self.text[start:])
        except ValueError:
            return False
        return True

    def _array(self) -> Any:
        self.pos += 1
        result: list[Any] = []
        while True:
            if self._end():
                return result
            if self.text[self.pos] == "]":
                self.pos += 1
                return result
            if self.text[self.pos] == ",":
                self.pos += 1
                continue
            start = self.pos
            value = self.value()
            if value is _MISSING:
                return result
            if self.pos >= len(self.text) and not self._complete(start):
                if isinstance(value, (str, dict, list)):
                    result.append(value)
                return result
            result.append(value)

    def _string(self) -> tuple[str, bool]:
        start = self.pos
        self.pos += 1
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\":
                self.pos += 2
                continue
            if char == '"':
                self.pos += 1
                return json.loads(self.text[start : self.pos]), True
            self.pos += 1
        self.pos = len(self.text)
        body = self.text[start + 1 :]
        # drop an unfinished escape sequence at the end
        for cut in range(0, min(len(body), 6) + 1):
            try:
                return json.loads('"' + body[: len(body) - cut] + '"'), False
            except ValueError:
                continue
        return "", False

    def _scalar(self) -> Any:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in ",]} \t\r\n":
            self.pos += 1
        token = self.text[start : self.pos]
        if self.pos >= len(self.text):  # may still grow: "12" -> "123", "tr" -> "true"
            return _MISSING
        return json.loads(token)
