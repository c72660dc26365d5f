"""Explanations: how much each part of a prompt contributed to a target (``POST explain``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, Optional, Union

from ._exceptions import (
    APIResponseValidationError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
)
from ._validation import check_bool, check_number, check_str, got
from .prompt import ControlTokenOverlap, Image, Prompt, PromptItem, Text, _check_prompt

__all__ = [
    "CustomGranularity",
    "Explanation",
    "ExplanationPostprocessing",
    "ExplanationRequest",
    "ExplanationResponse",
    "ImagePromptItemExplanation",
    "ImageScore",
    "PromptGranularity",
    "TargetGranularity",
    "TargetPromptItemExplanation",
    "TargetScore",
    "TargetScoreWithRaw",
    "TextPromptItemExplanation",
    "TextScore",
    "TextScoreWithRaw",
    "TokenPromptItemExplanation",
    "TokenScore",
    "prompt_granularity_to_json",
]


class ExplanationPostprocessing(Enum):
    """Postprocessing of the scores: ``Square`` squares them, ``Absolute`` takes their
    absolute value."""

    Square = "square"
    Absolute = "absolute"

    def to_json(self) -> str:
        """The wire value."""
        return self.value


@dataclass(frozen=True)
class CustomGranularity:
    """Explain the prompt by the pieces between occurrences of ``delimiter``."""

    delimiter: str

    def to_json(self) -> dict[str, Any]:
        """``{"type": "custom", "delimiter": delimiter}``."""
        return {"type": "custom", "delimiter": self.delimiter}


class PromptGranularity(Enum):
    """The unit the prompt is explained in (for images: 12x12, 6x6, 3x3 or 1 tiles)."""

    Token = "token"
    Word = "word"
    Sentence = "sentence"
    Paragraph = "paragraph"

    def to_json(self) -> dict[str, Any]:
        """``{"type": value}``."""
        return {"type": self.value}


def prompt_granularity_to_json(
    prompt_granularity: PromptGranularity | str | CustomGranularity,
) -> dict[str, Any]:
    """The wire form of a prompt granularity; a plain ``str`` becomes ``{"type": str}``."""
    if isinstance(prompt_granularity, str):
        return {"type": prompt_granularity}
    return prompt_granularity.to_json()


class TargetGranularity(Enum):
    """``Complete``: one explanation for the whole target. ``Token``: one per target token."""

    Complete = "complete"
    Token = "token"

    def to_json(self) -> str:
        """The wire value."""
        return self.value


def _enum_json(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _check_enum(name: str, value: Any, enum: type[Enum]) -> None:
    if value is None or isinstance(value, enum):
        return
    allowed = [member.value for member in enum]
    if isinstance(value, str):
        if value in allowed:
            return
        raise InvalidArgumentError(f"{name}: expected one of {allowed} or None, got {value!r}")
    raise InvalidArgumentTypeError(
        f"{name}: expected a {enum.__name__}, one of {allowed} or None, got {got(value)}"
    )


@dataclass(frozen=True)
class ExplanationRequest:
    """Explain how much the parts of ``prompt`` contribute to the model producing ``target``.

    Parameters:
        prompt: The prompt to explain.
        target: The completion to explain.
        contextual_control_threshold: Apply controls to tokens at least this similar too.
        control_factor: How much attention is suppressed for an explained part (API
            default 0.1).
        control_token_overlap: How partially covered tokens are treated.
        control_log_additive: Apply controls by adding ``log(factor)`` (API default True).
        prompt_granularity: :class:`PromptGranularity`, :class:`CustomGranularity` or a str;
            ``None`` lets the API choose (about 30 explanations).
        target_granularity: One explanation for the whole target or per token.
        postprocessing: Square or take the absolute value of the scores.
        normalize: Scale the scores to 0..1 (after postprocessing).

    ``to_json`` only sends fields that are set.
    """

    prompt: Prompt
    target: str
    contextual_control_threshold: float | None = None
    control_factor: float | None = None
    control_token_overlap: ControlTokenOverlap | None = None
    control_log_additive: bool | None = None
    prompt_granularity: Union[PromptGranularity, str, CustomGranularity] | None = None
    target_granularity: TargetGranularity | None = None
    postprocessing: ExplanationPostprocessing | None = None
    normalize: bool | None = None

    def to_json(self) -> dict[str, Any]:
        """The request body (without ``model``), in the official key order."""
        payload: dict[str, Any] = {"prompt": self.prompt.to_json(), "target": self.target}
        if self.contextual_control_threshold is not None:
            payload["contextual_control_threshold"] = self.contextual_control_threshold
        if self.control_token_overlap is not None:
            payload["control_token_overlap"] = _enum_json(self.control_token_overlap)
        if self.postprocessing is not None:
            payload["postprocessing"] = _enum_json(self.postprocessing)
        if self.control_log_additive is not None:
            payload["control_log_additive"] = self.control_log_additive
        if self.prompt_granularity is not None:
            payload["prompt_granularity"] = prompt_granularity_to_json(self.prompt_granularity)
        if self.target_granularity is not None:
            payload["target_granularity"] = _enum_json(self.target_granularity)
        if self.normalize is not None:
            payload["normalize"] = self.normalize
        if self.control_factor is not None:
            payload["control_factor"] = self.control_factor
        return payload

    def _validate(self) -> None:
        """Raise ``InvalidArgumentError`` naming the first invalid field."""
        _check_prompt("prompt", self.prompt)
        check_str("target", self.target)
        check_number(
            "contextual_control_threshold", self.contextual_control_threshold, optional=True
        )
        check_number("control_factor", self.control_factor, optional=True)
        _check_enum("control_token_overlap", self.control_token_overlap, ControlTokenOverlap)
        check_bool("control_log_additive", self.control_log_additive, optional=True)
        granularity = self.prompt_granularity
        if isinstance(granularity, CustomGranularity):
            check_str("prompt_granularity.delimiter", granularity.delimiter)
        elif granularity is not None:
            _check_enum("prompt_granularity", granularity, PromptGranularity)
        _check_enum("target_granularity", self.target_granularity, TargetGranularity)
        _check_enum("postprocessing", self.postprocessing, ExplanationPostprocessing)
        check_bool("normalize", self.normalize, optional=True)


@dataclass(frozen=True)
class TextScore:
    """The score of ``length`` characters of a text item starting at ``start``."""

    start: int
    length: int
    score: float

    @classmethod
    def from_json(cls, score: Any) -> TextScore:
        """Parse ``{"start", "length", "score"}``."""
        return cls(start=score["start"], length=score["length"], score=score["score"])


@dataclass(frozen=True)
class TextScoreWithRaw:
    """A :class:`TextScore` with the ``text`` it covers."""

    start: int
    length: int
    score: float
    text: str

    @staticmethod
    def from_text_score(score: TextScore, prompt: Text) -> TextScoreWithRaw:
        """Add the covered text of ``prompt`` to ``score``."""
        return TextScoreWithRaw(
            start=score.start,
            length=score.length,
            score=score.score,
            text=prompt.text[score.start : score.start + score.length],
        )


@dataclass(frozen=True)
class ImageScore:
    """The score of a rectangle of an image (fractions 0..1, or pixels after
    :meth:`ImagePromptItemExplanation.in_pixels`)."""

    left: float
    top: float
    width: float
    height: float
    score: float

    @classmethod
    def from_json(cls, score: Any) -> ImageScore:
        """Parse ``{"rect": {"left", "top", "width", "height"}, "score"}``."""
        rect = score["rect"]
        return cls(
            left=rect["left"],
            top=rect["top"],
            width=rect["width"],
            height=rect["height"],
            score=score["score"],
        )


@dataclass(frozen=True)
class TargetScore:
    """The score of ``length`` characters of the target starting at ``start``."""

    start: int
    length: int
    score: float

    @classmethod
    def from_json(cls, score: Any) -> TargetScore:
        """Parse ``{"start", "length", "score"}``."""
        return cls(start=score["start"], length=score["length"], score=score["score"])


@dataclass(frozen=True)
class TargetScoreWithRaw:
    """A :class:`TargetScore` with the ``text`` it covers."""

    start: int
    length: int
    score: float
    text: str

    @staticmethod
    def from_target_score(score: TargetScore, target: str) -> TargetScoreWithRaw:
        """Add the covered text of ``target`` to ``score``."""
        return TargetScoreWithRaw(
            start=score.start,
            length=score.length,
            score=score.score,
            text=target[score.start : score.start + score.length],
        )


@dataclass(frozen=True)
class TokenScore:
    """The score of one token of a token-id item."""

    score: float

    @classmethod
    def from_json(cls, score: Any) -> TokenScore:
        """Parse a bare number (or ``{"score": x}``)."""
        if isinstance(score, Mapping):
            return cls(score=score["score"])
        return cls(score=score)


@dataclass(frozen=True)
class ImagePromptItemExplanation:
    """Scores of the tiles of an image prompt item (rectangles as fractions 0..1 of the
    image size)."""

    scores: list[ImageScore]

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> ImagePromptItemExplanation:
        """Parse an ``image`` item."""
        return cls(scores=[ImageScore.from_json(s) for s in item["scores"]])

    def in_pixels(self, prompt_item: PromptItem) -> ImagePromptItemExplanation:
        """Scale the rectangles to whole pixels of ``prompt_item`` (an :class:`Image`;
        needs Pillow)."""
        if not isinstance(prompt_item, Image):
            raise InvalidArgumentTypeError(
                "prompt_item: expected an Image to scale to pixels, "
                f"got {type(prompt_item).__name__}"
            )
        width, height = prompt_item.dimensions()
        return ImagePromptItemExplanation(
            [
                ImageScore(
                    left=int(s.left * width),
                    top=int(s.top * height),
                    width=int(s.width * width),
                    height=int(s.height * height),
                    score=s.score,
                )
                for s in self.scores
            ]
        )


@dataclass(frozen=True)
class TextPromptItemExplanation:
    """Scores of the parts of a text prompt item."""

    scores: list[Union[TextScore, TextScoreWithRaw]]

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> TextPromptItemExplanation:
        """Parse a ``text`` item."""
        return cls(scores=[TextScore.from_json(s) for s in item["scores"]])

    def with_text(self, prompt: Text) -> TextPromptItemExplanation:
        """Add the covered text of ``prompt`` to each score."""
        return TextPromptItemExplanation(
            scores=[
                TextScoreWithRaw.from_text_score(s, prompt) if isinstance(s, TextScore) else s
                for s in self.scores
            ]
        )


@dataclass(frozen=True)
class TargetPromptItemExplanation:
    """Scores of the parts of the target before the explained target token."""

    scores: list[Union[TargetScore, TargetScoreWithRaw]]

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> TargetPromptItemExplanation:
        """Parse a ``target`` item."""
        return cls(scores=[TargetScore.from_json(s) for s in item["scores"]])

    def with_text(self, prompt: str) -> TargetPromptItemExplanation:
        """Add the covered text of the target ``prompt`` to each score."""
        return TargetPromptItemExplanation(
            scores=[
                TargetScoreWithRaw.from_target_score(s, prompt) if isinstance(s, TargetScore) else s
                for s in self.scores
            ]
        )


@dataclass(frozen=True)
class TokenPromptItemExplanation:
    """One score per token of a token-id prompt item, in prompt order."""

    scores: list[TokenScore]

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> TokenPromptItemExplanation:
        """Parse a ``token_ids`` item."""
        return cls(scores=[TokenScore.from_json(s) for s in item["scores"]])


PromptItemExplanation = Union[
    TextPromptItemExplanation,
    TargetPromptItemExplanation,
    TokenPromptItemExplanation,
    ImagePromptItemExplanation,
]

_ITEM_PARSERS: dict[str, Callable[[Mapping[str, Any]], PromptItemExplanation]] = {
    "text": TextPromptItemExplanation.from_json,
    "target": TargetPromptItemExplanation.from_json,
    "image": ImagePromptItemExplanation.from_json,
    "token_ids": TokenPromptItemExplanation.from_json,
}


@dataclass(frozen=True)
class Explanation:
    """The explanation of (a part of) the target.

    Parameters:
        target: The whole target, or one target token with ``TargetGranularity.Token``.
        items: One explanation per prompt item, in order, then one for the target.
    """

    target: str
    items: list[PromptItemExplanation]

    @staticmethod
    def prompt_item_from_json(item: Any) -> PromptItemExplanation:
        """Parse one item by its ``type``; an unknown type raises
        ``APIResponseValidationError`` (the items are positional, so none may be dropped)."""
        parse = _ITEM_PARSERS.get(item["type"])
        if parse is None:
            raise APIResponseValidationError(f"unsupported explanation item type: {item['type']!r}")
        return parse(item)

    @classmethod
    def from_json(cls, json: Mapping[str, Any]) -> Explanation:
        """Parse one entry of ``explanations``."""
        return cls(
            target=json["target"],
            items=[Explanation.prompt_item_from_json(item) for item in json["items"]],
        )

    def with_image_prompt_items_in_pixels(self, prompt: Prompt) -> Explanation:
        """Scale the image scores to pixels of the matching image items of ``prompt``."""
        return Explanation(
            target=self.target,
            items=[
                item.in_pixels(prompt.items[index])
                if isinstance(item, ImagePromptItemExplanation)
                else item
                for index, item in enumerate(self.items)
            ],
        )

    def with_text_from_prompt(self, prompt: Prompt, target: str) -> Explanation:
        """Add the covered text to the text and target scores."""
        items: list[PromptItemExplanation] = []
        for index, item in enumerate(self.items):
            if isinstance(item, TextPromptItemExplanation):
                prompt_item = prompt.items[index] if index < len(prompt.items) else None
                items.append(item.with_text(prompt_item) if isinstance(prompt_item, Text) else item)
            elif isinstance(item, TargetPromptItemExplanation):
                items.append(item.with_text(target))
            else:
                items.append(item)
        return Explanation(target=self.target, items=items)


@dataclass(frozen=True)
class ExplanationResponse:
    """The answer to an :class:`ExplanationRequest`: one :class:`Explanation` per part of the
    target."""

    #: The request id the server sent with this answer (not a field: never compared).
    request_id: ClassVar[Optional[str]] = None

    model_version: str
    explanations: list[Explanation]

    @classmethod
    def from_json(cls, json: Mapping[str, Any]) -> ExplanationResponse:
        """Parse the API's JSON."""
        return cls(
            model_version=json["model_version"],
            explanations=[Explanation.from_json(e) for e in json["explanations"]],
        )

    def with_image_prompt_items_in_pixels(self, prompt: Prompt) -> ExplanationResponse:
        """Scale every image score to pixels of the images in ``prompt`` (needs Pillow)."""
        return ExplanationResponse(
            self.model_version,
            [e.with_image_prompt_items_in_pixels(prompt) for e in self.explanations],
        )

    def with_text_from_prompt(self, request: ExplanationRequest) -> ExplanationResponse:
        """Add the covered text of ``request``'s prompt and target to the scores."""
        return ExplanationResponse(
            self.model_version,
            [e.with_text_from_prompt(request.prompt, request.target) for e in self.explanations],
        )
