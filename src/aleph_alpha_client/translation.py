"""Translation (``POST translate``); the model travels in the request body."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Optional

from ._validation import check_str

__all__ = ["TranslationRequest", "TranslationResponse", "TranslationSegment"]


@dataclass(frozen=True)
class TranslationRequest:
    """Translate ``source`` into ``target_language``.

    Parameters:
        model: The translation model; it is sent in the body (first key).
        source: The text to translate.
        target_language: An ISO 639 language code such as ``"en"``, ``"de"``, ``"fr"``.
    """

    model: str
    source: str
    target_language: str

    def to_json(self) -> dict[str, Any]:
        """The request body, ``model`` included."""
        return {
            "model": self.model,
            "source": self.source,
            "target_language": self.target_language,
        }

    def _validate(self) -> None:
        """Raise ``InvalidArgumentError`` naming the first invalid field."""
        check_str("model", self.model)
        check_str("source", self.source)
        check_str("target_language", self.target_language)


@dataclass(frozen=True)
class TranslationSegment:
    """A translated segment with its source text and a quality score (0..1)."""

    source: str
    translation: str
    score: float

    @classmethod
    def from_json(cls, json: Mapping[str, Any]) -> TranslationSegment:
        """Parse one entry of ``segments``."""
        return cls(source=json["source"], translation=json["translation"], score=json["score"])


@dataclass(frozen=True)
class TranslationResponse:
    """The answer to a :class:`TranslationRequest`.

    Parameters:
        translation: The whole translated text.
        score: Estimated quality of the translation (0..1).
        segments: The translated segments, or ``None``.
        num_tokens_prompt_total: Prompt tokens (may be 0 for translation models).
        num_tokens_generated: Generated tokens (may be 0 for translation models).
    """

    #: The request id the server sent with this answer (not a field: never compared).
    request_id: ClassVar[Optional[str]] = None

    translation: str
    score: float
    segments: list[TranslationSegment] | None
    num_tokens_prompt_total: int
    num_tokens_generated: int

    @classmethod
    def from_json(cls, json: Mapping[str, Any]) -> TranslationResponse:
        """Parse the API's JSON."""
        raw = json.get("segments")
        segments = None if raw is None else [TranslationSegment.from_json(s) for s in raw]
        return cls(
            translation=json["translation"],
            score=json["score"],
            segments=segments,
            num_tokens_prompt_total=json["num_tokens_prompt_total"],
            num_tokens_generated=json["num_tokens_generated"],
        )
