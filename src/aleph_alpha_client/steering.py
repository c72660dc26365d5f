"""Steering concepts (``POST steering_concepts``), usable in completion and chat requests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Optional

from ._exceptions import InvalidArgumentError, InvalidArgumentTypeError
from ._validation import check_str, got

__all__ = [
    "SteeringConceptCreationRequest",
    "SteeringConceptCreationResponse",
    "SteeringPairedExample",
]


@dataclass(frozen=True)
class SteeringPairedExample:
    """A pair of texts: ``negative`` without the concept, ``positive`` with it."""

    negative: str
    positive: str

    def to_json(self) -> dict[str, Any]:
        """``{"negative": ..., "positive": ...}``."""
        return {"negative": self.negative, "positive": self.positive}

    def _asdict(self) -> dict[str, Any]:
        return self.to_json()


@dataclass(frozen=True)
class SteeringConceptCreationRequest:
    """Create a steering concept from paired examples.

    Examples:
        >>> SteeringConceptCreationRequest(
        ...     examples=[
        ...         SteeringPairedExample(
        ...             negative="I appreciate your valuable feedback on this matter.",
        ...             positive="Thanks for the real talk, fam.",
        ...         )
        ...     ]
        ... )
    """

    examples: list[SteeringPairedExample]

    def to_json(self) -> dict[str, Any]:
        """The request body ``{"examples": [...]}`` (no model)."""
        return {"examples": [e.to_json() for e in self.examples]}

    def _asdict(self) -> dict[str, Any]:
        return self.to_json()

    def _validate(self) -> None:
        """Raise ``InvalidArgumentError`` naming the first invalid field."""
        examples = self.examples
        if not isinstance(examples, (list, tuple)):
            raise InvalidArgumentTypeError(
                f"examples: expected a non-empty list of SteeringPairedExample, got {got(examples)}"
            )
        if not examples:
            raise InvalidArgumentError(
                "examples: expected a non-empty list of SteeringPairedExample, got an empty list"
            )
        for i, example in enumerate(examples):
            if not isinstance(example, SteeringPairedExample):
                raise InvalidArgumentTypeError(
                    f"examples[{i}]: expected a SteeringPairedExample, got {got(example)}"
                )
            check_str(f"examples[{i}].negative", example.negative)
            check_str(f"examples[{i}].positive", example.positive)


@dataclass(frozen=True)
class SteeringConceptCreationResponse:
    """The created concept's ``id``, to pass in ``steering_concepts``."""

    #: The request id the server sent with this answer (not a field: never compared).
    request_id: ClassVar[Optional[str]] = None

    id: str

    @classmethod
    def from_json(cls, json: Mapping[str, Any]) -> SteeringConceptCreationResponse:
        """Parse the API's JSON (HTTP 201)."""
        return cls(id=json["id"])
