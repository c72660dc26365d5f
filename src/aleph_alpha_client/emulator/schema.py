"""Deterministic example values for JSON schemas (structured output and tool arguments).

:func:`example_for_schema` builds a value that validates against the schema, covering what
pydantic's ``model_json_schema()`` and hand-written OpenAI tool schemas use: ``type`` (also a
list of types), ``properties``/``required``, ``items``/``prefixItems``/``minItems``/
``maxItems``, ``enum``, ``const``, ``anyOf``/``oneOf`` (the first non-null branch), ``allOf``
(merged), ``$ref`` into ``$defs``/``definitions``, string ``format``\\s (date, date-time, time,
email, uri, uuid), ``minLength``/``maxLength``, ``pattern`` (see :mod:`._regex_example`) and numeric bounds.
Every property of an object is filled in, not only the required ones; deeper than six levels
only required parts are (null branches win, arrays get minItems), so recursive schemas end.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

__all__ = ["example_for_schema", "place_in"]

_MAX_DEPTH = 40
# Below this depth, optional parts (null branches, non-required properties, optional array
# items) are left out, so recursive schemas end.
_SOFT_DEPTH = 6
_MAX_ITEMS = 1000  # caps keep absurd schemas from exhausting memory
_MAX_LENGTH = 100_000

_FORMATS = {
    "date-time": "2024-01-01T12:00:00Z",
    "date": "2024-01-01",
    "time": "12:00:00",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "127.0.0.1",
    "hostname": "example.com",
}

_NAMED_STRINGS = {
    "location": "Paris, France",
    "city": "Paris",
    "country": "France",
    "name": "Nemo",
    "unit": "celsius",
    "language": "en",
}


#: A place named in the user's question ("... in Berlin?"): the value of ``city`` and
#: ``location`` strings while :func:`example_for_schema` runs with ``place=``.
_PLACE: ContextVar[str | None] = ContextVar("_PLACE", default=None)
_PLACE_PATTERN = re.compile(r"\b(?:in|for|at)\s+((?:[A-Z][\w'-]*)(?:\s+[A-Z][\w'-]*){0,2})")


def place_in(text: str) -> str | None:
    """The place a question names ("What's the weather in New York?" -> "New York")."""
    match = _PLACE_PATTERN.search(text or "")
    return match.group(1) if match else None


def example_for_schema(schema: Any, name: str = "value", *, place: str | None = None) -> Any:
    """A deterministic value valid against the JSON schema ``schema`` (``name`` flavours strings;
    ``place``, when given, is the value of ``city`` and ``location`` strings)."""
    root = schema if isinstance(schema, Mapping) else {}
    token = _PLACE.set(place)
    try:
        return _example(schema, root, name, 0)
    finally:
        _PLACE.reset(token)


def _resolve(ref: str, root: Mapping[str, Any]) -> Any:
    if not ref.startswith("#"):
        return {}
    node: Any = root
    for part in ref.lstrip("#").split("/"):
        if not part:
            continue
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            return {}
    return node


def _example(schema: Any, root: Mapping[str, Any], name: str, depth: int) -> Any:
    if schema is True or schema is None or not isinstance(schema, Mapping):
        return f"example {name}"
    if depth > _MAX_DEPTH:
        return None
    if "$ref" in schema:
        target = _resolve(str(schema["$ref"]), root)
        extra = {k: v for k, v in schema.items() if k != "$ref"}
        if isinstance(target, Mapping):
            merged = {**target, **extra}
            return _example(merged, root, name, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            non_null = [
                o for o in options if not (isinstance(o, Mapping) and o.get("type") == "null")
            ]
            chosen = non_null[0] if non_null else options[0]
            return _example(chosen, root, name, depth + 1)
    if isinstance(schema.get("allOf"), list) and schema["allOf"]:
        merged_all: dict[str, Any] = {}
        for part in schema["allOf"]:
            if isinstance(part, Mapping) and "$ref" in part:
                part = _resolve(str(part["$ref"]), root)
            if isinstance(part, Mapping):
                for k, v in part.items():
                    if k == "properties" and isinstance(v, Mapping):
                        merged_all.setdefault("properties", {}).update(v)
                    elif k == "required" and isinstance(v, list):
                        merged_all.setdefault("required", []).extend(v)
                    else:
                        merged_all.setdefault(k, v)
        rest = {k: v for k, v in schema.items() if k != "allOf"}
        return _example({**merged_all, **rest}, root, name, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        non_null_types = [t for t in kind if t != "null"]
        if not non_null_types or ("null" in kind and depth > _SOFT_DEPTH):
            return None
        kind = non_null_types[0]
    if kind is None:
        if "properties" in schema:
            kind = "object"
        elif "items" in schema or "prefixItems" in schema:
            kind = "array"
        else:
            kind = "string"
    if kind == "object":
        return _object(schema, root, depth)
    if kind == "array":
        return _array(schema, root, name, depth)
    if kind == "string":
        return _string(schema, name)
    if kind == "integer":
        return int(_number(schema, integer=True))
    if kind == "number":
        return _number(schema, integer=False)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return f"example {name}"


def _object(schema: Mapping[str, Any], root: Mapping[str, Any], depth: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    properties = schema.get("properties")
    required = schema.get("required")
    required_names = set(required) if isinstance(required, list) else set()
    if isinstance(properties, Mapping):
        for key, sub in properties.items():
            if depth > _SOFT_DEPTH and key not in required_names:
                continue
            result[str(key)] = _example(sub, root, str(key), depth + 1)
    if isinstance(required, list):
        for key in required:
            if isinstance(key, str) and key not in result:
                additional = schema.get("additionalProperties")
                result[key] = _example(additional, root, key, depth + 1)
    return result


def _array(schema: Mapping[str, Any], root: Mapping[str, Any], name: str, depth: int) -> list[Any]:
    prefix = schema.get("prefixItems")
    values: list[Any] = []
    if isinstance(prefix, list):
        values = [_example(sub, root, name, depth + 1) for sub in prefix]
    items = schema.get("items")
    min_items = schema.get("minItems")
    max_items = schema.get("maxItems")
    wanted = 1 if items is not False and depth <= _SOFT_DEPTH else 0
    count = max(int(min_items) if isinstance(min_items, int) else 0, wanted)
    if isinstance(max_items, int):
        count = min(count, max_items)
    count = min(count, _MAX_ITEMS)
    while len(values) < count and items is not False:
        values.append(_example(items, root, name, depth + 1))
    return values


def _string(schema: Mapping[str, Any], name: str) -> str:
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS:
        return _FORMATS[fmt]
    key = name.lower()
    place = _PLACE.get() if key in ("city", "location") else None
    value = place or _NAMED_STRINGS.get(key, f"example {name}")
    min_length = schema.get("minLength")
    max_length = schema.get("maxLength")
    if isinstance(min_length, int) and len(value) < min_length:
        value = value + "x" * (min(min_length, _MAX_LENGTH) - len(value))
    if isinstance(max_length, int) and len(value) > max_length:
        value = value[:max_length]
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        value = _matching(pattern, value)
    return value


def _matching(pattern: str, value: str) -> str:
    """``value`` when ``pattern`` accepts it, else an example built from the pattern."""
    import re

    try:
        if re.search(pattern, value):
            return value
    except re.error:
        return value
    from ._regex_example import regex_example

    example = regex_example(pattern)
    return value if example is None else example


def _number(schema: Mapping[str, Any], *, integer: bool) -> float:
    low = -math.inf
    high = math.inf
    for key, strict in (("minimum", False), ("exclusiveMinimum", True)):
        bound = schema.get(key)
        if isinstance(bound, (int, float)) and not isinstance(bound, bool):
            candidate = (math.floor(bound) + 1 if integer else bound + 0.5) if strict else bound
            low = max(low, candidate)
    for key, strict in (("maximum", False), ("exclusiveMaximum", True)):
        bound = schema.get(key)
        if isinstance(bound, (int, float)) and not isinstance(bound, bool):
            candidate = (math.ceil(bound) - 1 if integer else bound - 0.5) if strict else bound
            high = min(high, candidate)
    value: float = 42 if integer else 42.5
    if value < low:
        value = math.ceil(low) if integer else low
    if value > high:
        value = math.floor(high) if integer else high
    multiple = schema.get("multipleOf")
    if isinstance(multiple, (int, float)) and not isinstance(multiple, bool) and multiple > 0:
        value = math.ceil(value / multiple) * multiple
        if value > high:
            value -= multiple
        if integer:
            value = round(value)
    return value
