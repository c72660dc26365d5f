"""Structured output: ask the model for JSON that follows a JSON schema.

``ChatRequest.response_format`` takes a :class:`JSONSchema`, a pydantic model class, or a raw
``{"type": "json_schema", ...}`` mapping. Pydantic stays optional: it is only imported when a
pydantic class is given or a validated object is asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, TypeGuard, Union

from ._exceptions import InvalidArgumentTypeError

if TYPE_CHECKING:  # pragma: no cover
    from pydantic import BaseModel

__all__ = ["JSONSchema", "ResponseFormat", "response_format_to_json"]


@dataclass(frozen=True)
class JSONSchema:
    """A JSON schema the answer must follow.

    ``strict`` defaults to ``False`` as in the official client; ``from_pydantic`` sets it.
    """

    schema: Mapping[str, Any]
    name: str
    description: Optional[str] = None
    strict: Optional[bool] = False

    def to_json(self) -> dict[str, Any]:
        """The ``response_format`` object as sent on the wire."""
        return {
            "type": "json_schema",
            "json_schema": {
                "schema": self.schema,
                "name": self.name,
                "description": self.description,
                "strict": self.strict,
            },
        }

    @classmethod
    def from_pydantic(
        cls, model_class: type[BaseModel], *, strict: Optional[bool] = None
    ) -> JSONSchema:
        """Build the schema of a pydantic model class (name and docstring as the official).

        By default the schema is pydantic's as it is, marked strict (the official client's
        wire form). ``strict=True`` normalises it for strict mode: ``additionalProperties:
        false`` on every object, every property required (optional ones nullable), no
        ``default``. ``strict=False`` sends it unmarked.
        """
        schema_fn = getattr(model_class, "model_json_schema", None)
        if not callable(schema_fn):
            raise InvalidArgumentTypeError(
                f"response_format: expected a pydantic v2 model class, got {model_class!r}"
            )
        schema = schema_fn()
        if strict is True:
            from .tools import strict_schema

            schema = strict_schema(schema)
        return cls(
            schema=schema,
            name=model_class.__name__,
            description=model_class.__doc__,
            strict=strict is not False,
        )


ResponseFormat = Union[JSONSchema, "type[BaseModel]"]


def _is_pydantic_class(obj: object) -> TypeGuard[type[BaseModel]]:
    return isinstance(obj, type) and callable(getattr(obj, "model_json_schema", None))


def response_format_to_json(value: object) -> Any:
    """Serialise a ``response_format`` value (JSONSchema, pydantic class or raw mapping)."""
    if isinstance(value, JSONSchema):
        return value.to_json()
    if _is_pydantic_class(value):
        return JSONSchema.from_pydantic(value).to_json()
    if isinstance(value, Mapping):
        return dict(value)
    raise InvalidArgumentTypeError(
        "response_format: expected a JSONSchema, a pydantic model class or a mapping, "
        f"got {type(value).__name__}"
    )
