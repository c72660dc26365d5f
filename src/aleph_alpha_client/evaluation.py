"""Evaluation: how likely a model is to produce an expected completion (``POST evaluate``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Optional

from ._validation import check_bool, check_number, check_str
from .prompt import Prompt, _check_prompt

__all__ = ["EvaluationRequest", "EvaluationResponse"]


@dataclass(frozen=True)
class EvaluationRequest:
    """Evaluate the likelihood of ``completion_expected`` following ``prompt``.

    Parameters:
        prompt: The prompt the completion follows.
        completion_expected: The ground-truth completion.
        contextual_control_threshold: Apply controls to tokens at least this similar too.
        control_log_additive: Apply controls by adding ``log(factor)`` to attention scores.

    ``to_json`` sends every field, ``None`` as ``null``.

    Examples:
        >>> request = EvaluationRequest(
        ...     prompt=Prompt.from_text("The api works"), completion_expected=" well"
        ... )
    """

    prompt: Prompt
    completion_expected: str
    contextual_control_threshold: float | None = None
    control_log_additive: bool | None = True

    def to_json(self) -> dict[str, Any]:
        """The request body (without ``model``)."""
        return {
            "prompt": self.prompt.to_json(),
            "completion_expected": self.completion_expected,
            "contextual_control_threshold": self.contextual_control_threshold,
            "control_log_additive": self.control_log_additive,
        }

    def _validate(self) -> None:
        """Raise ``InvalidArgumentError`` naming the first invalid field."""
        _check_prompt("prompt", self.prompt)
        check_str("completion_expected", self.completion_expected)
        check_number(
            "contextual_control_threshold", self.contextual_control_threshold, optional=True
        )
        check_bool("control_log_additive", self.control_log_additive, optional=True)


@dataclass(frozen=True)
class EvaluationResponse:
    """The answer to an :class:`EvaluationRequest`.

    ``result`` holds the API's metrics, e.g. ``log_probability``, ``log_perplexity``,
    ``correct_greedy``, ``token_count``.
    """

    #: The request id the server sent with this answer (not a field: never compared).
    request_id: ClassVar[Optional[str]] = None

    model_version: str
    message: str | None
    result: dict[str, Any]
    num_tokens_prompt_total: int

    @classmethod
    def from_json(cls, json: Mapping[str, Any]) -> EvaluationResponse:
        """Parse the API's JSON."""
        return cls(
            model_version=json["model_version"],
            message=json.get("message"),
            result=json["result"],
            num_tokens_prompt_total=json["num_tokens_prompt_total"],
        )
