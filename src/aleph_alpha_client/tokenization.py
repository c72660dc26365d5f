"""Tokenization: text to tokens and token ids (``POST tokenize``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Optional

from ._validation import check_bool, check_str

__all__ = ["TokenizationRequest", "TokenizationResponse"]


@dataclass(frozen=True)
class TokenizationRequest:
    """Tokenize ``prompt``.

    Parameters:
        prompt: The text to tokenize.
        tokens: Return the tokens as strings.
        token_ids: Return the token ids.

    Examples:
        >>> request = TokenizationRequest(prompt="This is an example.", tokens=True, token_ids=True)
    """

    prompt: str
    tokens: bool
    token_ids: bool

    def to_json(self) -> dict[str, Any]:
        """The request body (without ``model``)."""
        return {"prompt": self.prompt, "tokens": self.tokens, "token_ids": self.token_ids}

    def _validate(self) -> None:
        """Raise ``InvalidArgumentError`` naming the first invalid field."""
        check_str("prompt", self.prompt)
        check_bool("tokens", self.tokens)
        check_bool("token_ids", self.token_ids)


@dataclass(frozen=True)
class TokenizationResponse:
    """The answer to a :class:`TokenizationRequest`; each field is set when requested."""

    #: The request id the server sent with this answer (not a field: never compared).
    request_id: ClassVar[Optional[str]] = None

    tokens: Sequence[str] | None = None
    token_ids: Sequence[int] | None = None

    @classmethod
    def from_json(cls, json: Mapping[str, Any]) -> TokenizationResponse:
        """Parse the API's JSON."""
        return cls(tokens=json.get("tokens"), token_ids=json.get("token_ids"))
