"""Detokenization: token ids to text (``POST detokenize``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Optional

from ._validation import check_int_list

__all__ = ["DetokenizationRequest", "DetokenizationResponse"]


@dataclass(frozen=True)
class DetokenizationRequest:
    """Turn ``token_ids`` back into text.

    Examples:
        >>> DetokenizationRequest(token_ids=[1730, 387, 300, 4377, 17])
    """

    token_ids: Sequence[int]

    def to_json(self) -> dict[str, Any]:
        """The request body (without ``model``)."""
        return {"token_ids": list(self.token_ids)}

    def _validate(self) -> None:
        """Raise ``InvalidArgumentError`` naming the first invalid field."""
        check_int_list("token_ids", self.token_ids)


@dataclass(frozen=True)
class DetokenizationResponse:
    """The answer to a :class:`DetokenizationRequest`: the text."""

    #: The request id the server sent with this answer (not a field: never compared).
    request_id: ClassVar[Optional[str]] = None

    result: str

    @classmethod
    def from_json(cls, json: Mapping[str, Any]) -> DetokenizationResponse:
        """Parse the API's JSON."""
        return cls(result=json["result"])
