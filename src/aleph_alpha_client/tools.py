"""Python functions and pydantic models as chat tools, and the pure logic of the tool loop.

:func:`tool` turns a function (type hints and a docstring) or a pydantic model class into a
:class:`Tool`, whose ``to_json()`` is the OpenAI-style dict a hand-written tool would be.
``ChatRequest(tools=[...])`` accepts functions, models, :class:`Tool` objects and dicts side by
side. :class:`ToolLoop` holds the decisions of ``run_tools`` (what to send, which calls to run,
which messages to append, when to stop) so that ``Client`` and ``AsyncClient`` only do I/O.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional, Union

from ._exceptions import (
    InvalidArgumentError,
    InvalidArgumentTypeError,
    ToolArgumentsError,
    ToolLoopLimitError,
)
from ._validation import check_int

if TYPE_CHECKING:  # pragma: no cover
    from .chat import (
        ChatRequest,
        ChatResponse,
        ChatStreamChunk,
        Message,
        ReasoningChunk,
        TextMessage,
        ToolCall,
    )

__all__ = [
    "Tool",
    "ToolLoop",
    "ToolResult",
    "ToolRunResult",
    "json_schema_for",
    "strict_schema",
    "tool",
]


class _Unsupported(Exception):
    """A type the schema builder cannot express (turned into InvalidArgumentTypeError)."""


def _is_pydantic_class(obj: object) -> bool:
    return isinstance(obj, type) and callable(getattr(obj, "model_json_schema", None))


def _is_typeddict(obj: object) -> bool:
    return isinstance(obj, type) and issubclass(obj, dict) and hasattr(obj, "__total__")


def json_schema_for(annotation: Any, defs: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """The JSON schema of a Python type annotation.

    Covers str, int, float, bool, None, Any, Optional/Union, Literal, Enum, list/tuple/dict
    (and their abstract forms), TypedDict, dataclasses and pydantic models. Definitions of
    nested pydantic models go into ``defs`` (``$defs`` of the root). Raises
    :class:`InvalidArgumentTypeError` for anything else.
    """
    try:
        return _schema(annotation, {} if defs is None else defs)
    except _Unsupported as err:
        raise InvalidArgumentTypeError(f"cannot express {err} as a JSON schema") from None


_SIMPLE: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
    None: {"type": "null"},
}


def _name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or repr(annotation)


def _schema(
    annotation: Any, defs: dict[str, Any], seen: Optional[dict[Any, bool]] = None
) -> dict[str, Any]:
    seen = {} if seen is None else seen
    if annotation is Any or annotation is inspect.Parameter.empty:
        return {}
    if annotation in _SIMPLE:
        return dict(_SIMPLE[annotation])
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _schema(args[0], defs, seen)
    if origin is Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        return {"anyOf": [_schema(arg, defs, seen) for arg in args]}
    if origin is typing.Literal:
        schema: dict[str, Any] = {"enum": list(args)}
        kinds = {type(arg) for arg in args}
        if len(kinds) == 1 and next(iter(kinds)) in _SIMPLE:
            schema = {**_SIMPLE[next(iter(kinds))], **schema}
        return schema
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        values = [member.value for member in annotation]
        schema = {"enum": values}
        kinds = {type(value) for value in values}
        if len(kinds) == 1 and next(iter(kinds)) in _SIMPLE:
            schema = {**_SIMPLE[next(iter(kinds))], **schema}
        return schema
    if origin in (list, set, frozenset, Sequence, typing.Sequence) or annotation in (list, set):
        items = _schema(args[0], defs, seen) if args else {}
        return {"type": "array", "items": items}
    if origin is tuple or annotation is tuple:
        if not args or (len(args) == 2 and args[1] is Ellipsis):
            return {"type": "array", "items": _schema(args[0], defs, seen) if args else {}}
        prefix = [_schema(arg, defs, seen) for arg in args]
        return {
            "type": "array",
            "prefixItems": prefix,
            "minItems": len(prefix),
            "maxItems": len(prefix),
        }
    if origin in (dict, Mapping, typing.Mapping) or annotation is dict:
        if args and args[0] is not str:
            raise _Unsupported(f"{_name(annotation)} (JSON object keys are strings)")
        value = _schema(args[1], defs, seen) if args else {}
        return {"type": "object", "additionalProperties": value}
    if _is_pydantic_class(annotation):
        model_schema = dict(annotation.model_json_schema())
        defs.update(model_schema.pop("$defs", {}))
        defs[annotation.__name__] = model_schema
        return {"$ref": f"#/$defs/{annotation.__name__}"}
    if _is_typeddict(annotation) or (
        dataclasses.is_dataclass(annotation) and isinstance(annotation, type)
    ):
        return _named_object(annotation, defs, seen)
    raise _Unsupported(f"the type {_name(annotation)}")


def _named_object(annotation: Any, defs: dict[str, Any], seen: dict[Any, bool]) -> dict[str, Any]:
    """A TypedDict or dataclass inline; one that contains itself goes to ``$defs`` by name."""
    ref = {"$ref": f"#/$defs/{annotation.__name__}"}
    if annotation in seen:
        seen[annotation] = True  # recursive: the outer expansion moves into $defs
        return ref
    seen[annotation] = False
    try:
        hints = typing.get_type_hints(annotation)
        if _is_typeddict(annotation):
            required = getattr(annotation, "__required_keys__", set(hints))
            properties = {k: _schema(v, defs, seen) for k, v in hints.items()}
            schema = _object(properties, list(required), hints)
        else:
            properties = {}
            required_fields: list[str] = []
            for f in dataclasses.fields(annotation):
                properties[f.name] = _schema(hints.get(f.name, Any), defs, seen)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    required_fields.append(f.name)
            schema = _object(properties, required_fields, properties)
    finally:
        recursive = seen.pop(annotation)
    if recursive:
        defs[annotation.__name__] = schema
        return ref
    return schema


def _object(
    properties: dict[str, Any], required: list[str], order: Mapping[str, Any]
) -> dict[str, Any]:
    ordered = [name for name in order if name in required]
    return {"type": "object", "properties": properties, "required": ordered}


def strict_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` normalised for strict mode.

    Every object gets ``additionalProperties: false`` and lists all its properties as
    required (a property that was optional becomes nullable: ``null`` then stands for "use the
    default"), and ``default`` values are dropped; ``$defs`` are normalised too. The walk
    follows the schema keywords, so a property named ``default`` or ``properties`` is a
    property like any other. An object with free keys (``dict[str, X]``) has no strict form:
    :class:`InvalidArgumentTypeError` names where it is.
    """
    return _strict(dict(schema), "schema")  # type: ignore[no-any-return]


# Keywords whose value is a map of subschemas, a list of subschemas or one subschema.
_SUBSCHEMA_MAPS = frozenset({"properties", "$defs", "definitions", "patternProperties"})
_SUBSCHEMA_LISTS = frozenset({"anyOf", "oneOf", "allOf", "prefixItems"})
_SUBSCHEMA_ONE = frozenset({"items", "not", "contains", "if", "then", "else"})


def _strict(node: Any, where: str) -> Any:
    if not isinstance(node, Mapping):
        return node
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key == "default":
            continue
        if key in _SUBSCHEMA_MAPS and isinstance(value, Mapping):
            result[key] = {name: _strict(sub, f"{where}.{name}") for name, sub in value.items()}
        elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
            result[key] = [_strict(sub, where) for sub in value]
        elif key in _SUBSCHEMA_ONE and isinstance(value, Mapping):
            result[key] = _strict(value, f"{where}[]" if key == "items" else where)
        else:
            result[key] = value  # data (enum, const, required, description, ...) as it is
    if node.get("type") == "object" or isinstance(node.get("properties"), Mapping):
        extra = node.get("additionalProperties", False)
        if extra is not False:
            raise InvalidArgumentTypeError(
                f"strict mode: {where} is an object with free keys (a dict), which strict mode "
                "cannot express; use named fields (a TypedDict, dataclass or model) or strict=False"
            )
        properties = dict(result.get("properties") or {})
        required = set(node.get("required") or [])
        for name, prop in properties.items():
            if name not in required and not _nullable(prop):
                properties[name] = {"anyOf": [prop, {"type": "null"}]}
        result["properties"] = properties
        result["required"] = list(properties)
        result["additionalProperties"] = False
    return result


def _nullable(schema: Any) -> bool:
    if not isinstance(schema, Mapping):
        return False
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    return any(_nullable(branch) for branch in schema.get("anyOf") or ())


# --------------------------------------------------------------------------------------------
# Docstrings


_PARAM_LINE = re.compile(r"^\s*(?::param\s+)?\*{0,2}(\w+)(?:\s*\([^)]*\))?\s*:\s*(.*)$")


def _parse_docstring(doc: Optional[str]) -> tuple[Optional[str], dict[str, str]]:
    """The summary (text before the first section) and per-parameter descriptions."""
    if not doc:
        return None, {}
    text = inspect.cleandoc(doc)
    summary_lines: list[str] = []
    params: dict[str, str] = {}
    in_args = False
    current: Optional[str] = None
    for line in text.splitlines():
        stripped = line.strip()
        lowered = stripped.lower()
        if lowered in ("args:", "arguments:", "parameters:", "params:"):
            in_args = True
            current = None
            continue
        if stripped.startswith(":param"):
            match = _PARAM_LINE.match(stripped)
            if match:
                params[match.group(1)] = match.group(2).strip()
                current = match.group(1)
            continue
        if stripped.startswith(":") or (
            stripped.endswith(":") and not line.startswith((" ", "\t")) and stripped[:-1].isalpha()
        ):
            in_args = False
            current = None
            continue
        if in_args:
            match = _PARAM_LINE.match(line)
            if match and len(line) - len(line.lstrip()) <= 4:
                current = match.group(1)
                params[current] = match.group(2).strip()
            elif current and stripped:
                params[current] = (params[current] + " " + stripped).strip()
            continue
        if not params:
            summary_lines.append(line)
    summary = "\n".join(summary_lines).strip()
    return summary or None, params


# --------------------------------------------------------------------------------------------
# Tools


@dataclass(frozen=True)
class Tool:
    """A chat tool: name, description, JSON schema of the parameters and what to run.

    ``function`` is the Python callable (``None`` for a tool built from a pydantic model or
    given as a dict); ``source`` is the function or model it was built from. ``to_json()`` is
    the OpenAI-style wire form.
    """

    name: str
    description: Optional[str]
    parameters: Mapping[str, Any]
    function: Optional[Callable[..., Any]] = field(default=None, compare=False)
    strict: bool = False
    source: Any = field(default=None, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        """``{"type": "function", "function": {name, description, parameters[, strict]}}``."""
        function: dict[str, Any] = {"name": self.name}
        if self.description is not None:
            function["description"] = self.description
        function["parameters"] = dict(self.parameters)
        if self.strict:
            function["strict"] = True
        return {"type": "function", "function": function}

    def parse_arguments(self, arguments: Union[str, Mapping[str, Any]]) -> Any:
        """Decode and validate a call's arguments.

        For a function: a dict of keyword arguments (validated and converted with pydantic
        where installed, else checked for missing and unknown names); for a pydantic model:
        the validated instance. Errors are :class:`ToolArgumentsError` naming the argument.
        """
        if isinstance(arguments, str):
            try:
                decoded = json.loads(arguments) if arguments.strip() else {}
            except ValueError as err:
                raise ToolArgumentsError(
                    f"tool {self.name!r}: the arguments are not valid JSON ({err})",
                    tool=self.name,
                ) from None
        else:
            decoded = dict(arguments)
        if not isinstance(decoded, dict):
            raise ToolArgumentsError(
                f"tool {self.name!r}: the arguments must be a JSON object, got "
                f"{type(decoded).__name__}",
                tool=self.name,
            )
        if _is_pydantic_class(self.source):
            return self._pydantic_validate(self.source, decoded)
        if self.function is None:
            return decoded
        return self._function_arguments(decoded)

    def _pydantic_validate(self, model: Any, decoded: dict[str, Any]) -> Any:
        from pydantic import ValidationError

        if self.strict:  # strict made optional fields nullable: null means the default
            decoded = drop_null_defaults(model, decoded)
        try:
            return model.model_validate(decoded)
        except ValidationError as err:
            raise self._pydantic_error(err) from None

    def _pydantic_error(self, err: Any) -> ToolArgumentsError:
        first = err.errors()[0]
        location = ".".join(str(part) for part in first.get("loc", ()))
        argument = str(first["loc"][0]) if first.get("loc") else None
        return ToolArgumentsError(
            f"tool {self.name!r}: argument {location!r}: {first.get('msg')}",
            tool=self.name,
            argument=argument,
        )

    def _function_arguments(self, decoded: dict[str, Any]) -> dict[str, Any]:
        assert self.function is not None
        signature = inspect.signature(self.function)
        accepted = {
            name: p
            for name, p in signature.parameters.items()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        }
        takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
        for name in decoded:
            if name not in accepted and not takes_kwargs:
                raise ToolArgumentsError(
                    f"tool {self.name!r}: unknown argument {name!r}", tool=self.name, argument=name
                )
        for name, p in accepted.items():
            if p.default is p.empty and name not in decoded:
                raise ToolArgumentsError(
                    f"tool {self.name!r}: missing argument {name!r}", tool=self.name, argument=name
                )
        hints = _hints(self.function)
        if self.strict:  # strict made optional parameters nullable: null means the default
            decoded = {
                name: _drop_nested_nulls(hints.get(name, Any), value)
                for name, value in decoded.items()
                if not (
                    value is None
                    and name in accepted
                    and accepted[name].default is not accepted[name].empty
                    and not admits_none(hints.get(name, Any))
                )
            }
        try:
            import pydantic
        except ImportError:
            return decoded
        fields: dict[str, Any] = {}
        for name in decoded:
            if name in accepted:
                fields[name] = (_validatable(pydantic, hints.get(name, Any)), ...)
        model = pydantic.create_model(f"{self.name}_arguments", **fields)
        try:
            validated = model.model_validate({k: v for k, v in decoded.items() if k in fields})
        except pydantic.ValidationError as err:
            raise self._pydantic_error(err) from None
        result = {name: getattr(validated, name) for name in fields}
        result.update({k: v for k, v in decoded.items() if k not in fields})
        return result


def _drop_nested_nulls(hint: Any, value: Any) -> Any:
    inner = _structured_inside(hint)
    if inner is None:
        return value
    if isinstance(value, list):
        return [drop_null_defaults(inner, item) for item in value]
    return drop_null_defaults(inner, value)


def _validatable(pydantic: Any, hint: Any) -> Any:
    """``hint`` if pydantic can validate it, else ``Any`` (e.g. ``typing.TypedDict`` before
    Python 3.12, which pydantic refuses): such an argument is passed on as decoded."""
    try:
        pydantic.TypeAdapter(hint)
    except pydantic.PydanticUserError:
        return Any
    return hint


def admits_none(hint: Any) -> bool:
    """Whether ``None`` is a valid value of the type ``hint``."""
    if hint is Any or hint is None or hint is type(None):
        return True
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        return admits_none(args[0])
    if origin is Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        return any(admits_none(arg) for arg in args)
    if origin is typing.Literal:
        return None in args
    return False


def drop_null_defaults(model: Any, data: Any) -> Any:
    """``data`` without the ``null`` values of fields that may be left out and do not take
    ``None`` (strict mode's way of leaving an optional field out): fields with a default of a
    pydantic model or dataclass, keys a TypedDict does not require; nested ones included."""
    if not isinstance(data, dict):
        return data
    result = dict(data)
    for keys, hint, optional in _fields_of(model):
        key = next((k for k in keys if k in result), None)
        if key is None:
            continue
        value = result[key]
        if value is None:
            if optional and not admits_none(hint):
                del result[key]
            continue
        inner = _structured_inside(hint)
        if inner is None:
            continue
        if isinstance(value, dict):
            result[key] = drop_null_defaults(inner, value)
        elif isinstance(value, list):
            result[key] = [drop_null_defaults(inner, item) for item in value]
    return result


def _fields_of(model: Any) -> list[tuple[tuple[str, ...], Any, bool]]:
    """(the keys a field may come under, its type, whether it may be left out) per field."""
    fields = getattr(model, "model_fields", None)
    if isinstance(fields, Mapping):  # pydantic: the alias it is validated under, or the name
        found = []
        for name, info in fields.items():
            validation = info.validation_alias
            keys = tuple(
                k
                for k in (validation if isinstance(validation, str) else None, info.alias, name)
                if k
            )
            found.append((keys, info.annotation, not info.is_required()))
        return found
    try:
        hints = typing.get_type_hints(model)
    except Exception:
        return []
    if dataclasses.is_dataclass(model) and isinstance(model, type):
        return [
            (
                (f.name,),
                hints.get(f.name, Any),
                f.default is not dataclasses.MISSING
                or f.default_factory is not dataclasses.MISSING,
            )
            for f in dataclasses.fields(model)
        ]
    if _is_typeddict(model):
        required = getattr(model, "__required_keys__", set(hints))
        return [((name,), hint, name not in required) for name, hint in hints.items()]
    return []


def _structured_inside(hint: Any) -> Any:
    """The model, dataclass or TypedDict of ``M``, ``Optional[M]`` or ``list[M]``, else None."""
    if _is_structured(hint):
        return hint
    for arg in typing.get_args(hint):
        if _is_structured(arg):
            return arg
        found = _structured_inside(arg) if typing.get_args(arg) else None
        if found is not None:
            return found
    return None


def _is_structured(hint: Any) -> bool:
    return (
        _is_pydantic_class(hint)
        or _is_typeddict(hint)
        or (dataclasses.is_dataclass(hint) and isinstance(hint, type))
    )


def _hints(function: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(function, include_extras=True)
    except Exception:
        return dict(getattr(function, "__annotations__", {}))


def tool(
    source: Any,
    *,
    name: Optional[str] = None,
    description: Optional[str] = None,
    strict: bool = False,
) -> Tool:
    """Build a :class:`Tool` from a function (type hints + docstring) or a pydantic model.

    The description is the docstring's summary; parameter descriptions come from an
    ``Args:`` section or ``:param x:`` lines. ``strict=True`` normalises the schema for strict
    mode and sets ``strict`` on the wire. A parameter whose type has no JSON schema raises
    :class:`InvalidArgumentTypeError` naming it.
    """
    if isinstance(source, Tool):
        return source
    if _is_pydantic_class(source):
        schema = dict(source.model_json_schema())
        schema.pop("title", None)
        summary, _ = _parse_docstring(source.__doc__)
        tool_name = name or source.__name__
        return Tool(
            name=tool_name,
            description=description if description is not None else summary,
            parameters=_strict_for(tool_name, schema) if strict else schema,
            strict=strict,
            source=source,
        )
    if not callable(source) or isinstance(source, type):
        raise InvalidArgumentTypeError(
            f"tool: expected a function, a pydantic model class, a Tool or a dict, got "
            f"{type(source).__name__}"
        )
    tool_name = name or getattr(source, "__name__", None)
    if not tool_name or tool_name == "<lambda>":
        raise InvalidArgumentError("tool: a lambda has no name; pass name=...")
    summary, param_docs = _parse_docstring(inspect.getdoc(source))
    hints = _hints(source)
    defs: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    required: list[str] = []
    for pname, parameter in inspect.signature(source).parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        annotation = hints.get(pname, Any)
        try:
            prop = _schema(annotation, defs)
        except _Unsupported as err:
            raise InvalidArgumentTypeError(
                f"tool {tool_name!r}: parameter {pname!r}: cannot express {err} as a JSON schema"
            ) from None
        if pname in param_docs:
            prop = {**prop, "description": param_docs[pname]}
        if parameter.default is parameter.empty:
            required.append(pname)
        elif not strict and _json_safe(parameter.default):
            prop = {**prop, "default": _plain_default(parameter.default)}
        properties[pname] = prop
    parameters: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
    if defs:
        parameters["$defs"] = defs
    if strict:
        parameters = _strict_for(tool_name, parameters)
    return Tool(
        name=tool_name,
        description=description if description is not None else summary,
        parameters=parameters,
        function=source,
        strict=strict,
        source=source,
    )


def _strict_for(tool_name: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return strict_schema(schema)
    except InvalidArgumentTypeError as err:
        raise InvalidArgumentTypeError(f"tool {tool_name!r}: {err}") from None


def _plain_default(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def _json_safe(value: Any) -> bool:
    try:
        json.dumps(_plain_default(value))
    except (TypeError, ValueError):
        return False
    return True


def tool_to_json(value: Any, where: str = "ChatRequest.tools") -> dict[str, Any]:
    """Wire form of one entry of ``ChatRequest.tools`` (dict, Tool, function or model)."""
    if isinstance(value, Mapping):
        return dict(value)
    to_json = getattr(value, "to_json", None)
    if callable(to_json) and not isinstance(value, type):
        result: dict[str, Any] = to_json()
        return result
    if _is_pydantic_class(value) or callable(value):
        return tool(value).to_json()
    raise InvalidArgumentTypeError(
        f"{where}: expected a dict like " + '{"type": "function", "function": {...}}'
        f", a function, a pydantic model class or a Tool, got {type(value).__name__}"
    )


def check_tool(value: Any, where: str) -> None:
    """Raise a typed error naming ``where`` when ``value`` cannot be a tool."""
    tool_to_json(value, where)


def tools_by_name(tools: Optional[Sequence[Any]]) -> dict[str, Tool]:
    """The runnable tools of a request's ``tools`` by name (dict tools have no function)."""
    result: dict[str, Tool] = {}
    for value in tools or ():
        if isinstance(value, Mapping):
            function = value.get("function") or {}
            tool_name = function.get("name")
            if isinstance(tool_name, str):
                result[tool_name] = Tool(tool_name, function.get("description"), {})
            continue
        built = tool(value)
        result[built.name] = built
    return result


# --------------------------------------------------------------------------------------------
# The tool loop


@dataclass(frozen=True)
class ToolResult:
    """What running one tool call gave: ``content`` (sent back) and ``error`` if it failed."""

    call: ToolCall
    content: str
    error: Optional[BaseException] = None


@dataclass(frozen=True)
class ToolRunResult:
    """The end of ``run_tools``: the final answer and the whole conversation."""

    response: ChatResponse
    messages: list[Union[Message, TextMessage]]

    @property
    def content(self) -> str:
        """The final answer's text."""
        return self.response.content


@dataclass
class PlannedCall:
    """One tool call to run: the tool, its validated arguments, or the error text to send."""

    call: ToolCall
    tool: Optional[Tool]
    arguments: Any = None
    error: Optional[BaseException] = None

    @property
    def runnable(self) -> bool:
        """Whether there is a function to call (else ``error`` or the arguments are echoed)."""
        return self.error is None and self.tool is not None and self.tool.function is not None

    def invoke(self) -> Any:
        """Call the function (sync); may return an awaitable for an async function."""
        assert self.tool is not None and self.tool.function is not None
        return self.tool.function(**self.arguments)


def result_content(value: Any) -> str:
    """The text of a tool message for a tool's return value."""
    if isinstance(value, str):
        return value
    dump = getattr(value, "model_dump_json", None)
    if callable(dump):
        return str(dump())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def error_content(error: BaseException) -> str:
    """The text of a tool message for a tool that failed."""
    return f"Error: {type(error).__name__}: {error}"


class ToolLoop:
    """The decisions of ``run_tools``, without any I/O (shared by both clients).

    Use: ``request = loop.next_request()``, send it, ``planned = loop.on_response(resp)``;
    ``None`` means done (``loop.result(resp)``); else run each planned call and hand the
    outcomes to ``loop.add_results([...])``, which raises :class:`ToolLoopLimitError` once
    ``max_iterations`` answers all asked for tools.
    """

    def __init__(self, request: ChatRequest, max_iterations: int = 8) -> None:
        check_int("max_iterations", max_iterations, minimum=1)
        request._validate()
        self.request = request
        self.max_iterations = max_iterations
        self.tools = tools_by_name(request.tools)
        self.messages: list[Union[Message, TextMessage]] = list(request.messages)
        self.iterations = 0

    def next_request(self) -> ChatRequest:
        """The request to send now: the original with the conversation so far."""
        return dataclasses.replace(self.request, messages=list(self.messages))

    def on_response(self, response: ChatResponse) -> Optional[list[PlannedCall]]:
        """Record an answer; the calls to run, or ``None`` when the model is done."""
        self.iterations += 1
        self.messages.append(response.message)
        calls = response.tool_calls
        if not calls:
            return None
        return [self._plan(call) for call in calls]

    def _plan(self, call: ToolCall) -> PlannedCall:
        found = self.tools.get(call.function.name)
        if found is None:
            known = ", ".join(sorted(self.tools)) or "none"
            error = LookupError(f"unknown tool {call.function.name!r} (tools: {known})")
            return PlannedCall(call, None, error=error)
        try:
            arguments = found.parse_arguments(call.function.arguments)
        except ToolArgumentsError as err:
            return PlannedCall(call, found, error=err)
        return PlannedCall(call, found, arguments=arguments)

    def outcome(self, planned: PlannedCall, value: Any = None, error: Any = None) -> ToolResult:
        """The :class:`ToolResult` of a planned call from its return value or exception."""
        error = error if error is not None else planned.error
        if error is not None:
            return ToolResult(planned.call, error_content(error), error)
        if not planned.runnable:  # a model tool or a dict tool: echo the arguments
            return ToolResult(planned.call, result_content(planned.arguments))
        return ToolResult(planned.call, result_content(value))

    def add_results(self, results: Sequence[ToolResult]) -> None:
        """Append the tool messages; raise :class:`ToolLoopLimitError` when out of turns."""
        from .chat import Message, Role

        for result in results:
            self.messages.append(
                Message(role=Role.Tool, content=result.content, tool_call_id=result.call.id)
            )
        if self.iterations >= self.max_iterations:
            raise ToolLoopLimitError(
                f"run_tools: the model still called tools after {self.max_iterations} "
                "iterations (max_iterations)",
                messages=list(self.messages),
            )

    def result(self, response: ChatResponse) -> ToolRunResult:
        """The final result once :meth:`on_response` returned ``None``."""
        return ToolRunResult(response=response, messages=list(self.messages))


# --------------------------------------------------------------------------------------------
# Running planned calls (used by the client shells)


def run_planned_sync(loop: ToolLoop, planned: Sequence[PlannedCall]) -> list[ToolResult]:
    """Run the calls of one turn one after the other; an exception becomes its result."""
    results: list[ToolResult] = []
    for call in planned:
        if not call.runnable:
            results.append(loop.outcome(call))
            continue
        try:
            value = call.invoke()
            if inspect.isawaitable(value):
                close = getattr(value, "close", None)
                if callable(close):
                    close()
                raise InvalidArgumentTypeError(
                    f"tool {call.call.function.name!r} is async; use AsyncClient.run_tools"
                )
        except Exception as err:  # the model sees the error and may recover
            results.append(loop.outcome(call, error=err))
        else:
            results.append(loop.outcome(call, value))
    return results


async def run_planned_async(loop: ToolLoop, planned: Sequence[PlannedCall]) -> list[ToolResult]:
    """Run the calls of one turn concurrently (sync functions in worker threads)."""
    import asyncio

    async def one(call: PlannedCall) -> ToolResult:
        if not call.runnable:
            return loop.outcome(call)
        assert call.tool is not None and call.tool.function is not None
        function = call.tool.function
        try:
            if inspect.iscoroutinefunction(function):
                value = await function(**call.arguments)
            else:
                value = await asyncio.to_thread(call.invoke)
                if inspect.isawaitable(value):
                    value = await value
        except Exception as err:  # the model sees the error and may recover
            return loop.outcome(call, error=err)
        return loop.outcome(call, value)

    return list(await asyncio.gather(*(one(call) for call in planned)))


#: What ``run_tools_with_streaming`` yields (``ReasoningChunk``: a reasoning model's thinking,
#: never part of a ``ChatStreamChunk``).
ToolLoopEvent = Union["ChatStreamChunk", "ReasoningChunk", "ToolCall", ToolResult, ToolRunResult]
