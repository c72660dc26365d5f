"""Completion requests and responses (``POST complete``), including the stream items."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Optional, Union

from ._exceptions import APIResponseValidationError, InvalidArgumentTypeError
from ._validation import (
    check_bool,
    check_int,
    check_number,
    check_str,
    check_str_list,
    got,
    is_int,
)
from .prompt import Prompt, _check_prompt

__all__ = [
    "CompletionRequest",
    "CompletionResponse",
    "CompletionResponseStreamItem",
    "CompletionResult",
    "CompletionSummary",
    "StreamChunk",
    "StreamSummary",
    "stream_item_from_json",
]


def _plain(value: Any) -> Any:
    """What ``dataclasses.asdict`` gives for ``value``, without deep-copying leaves."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value


# Fields of CompletionRequest that hold lists of strings.
_SEQUENCE_FIELDS = (
    "penalty_exceptions",
    "stop_sequences",
    "completion_bias_inclusion",
    "completion_bias_exclusion",
    "steering_concepts",
)


@dataclass(frozen=True)
class CompletionRequest:
    """A completion request.

    Parameters:
        prompt: The prompt to complete.
        maximum_tokens: Upper limit of generated tokens; ``None`` lets the model stop on its
            own (end of text or a stop sequence).
        temperature: Sampling temperature; 0 is greedy.
        top_k: Sample only from the k most likely tokens; 0 disables it.
        top_p: Nucleus sampling probability mass; 0 disables it.
        presence_penalty: Penalty for tokens that already occurred (once or more).
        frequency_penalty: Penalty proportional to how often a token already occurred.
        repetition_penalties_include_prompt: Whether the penalties also count the prompt.
        use_multiplicative_presence_penalty: Multiply instead of subtract the presence
            penalty (default ``False``).
        penalty_bias: Text whose tokens are penalised additionally.
        penalty_exceptions: Strings that may repeat without penalty.
        penalty_exceptions_include_stop_sequences: Whether stop sequences are exceptions
            too; ``None`` leaves the API default.
        best_of: Generate this many completions server side and return the ``n`` best.
        n: Number of completions to return.
        logit_bias: Token id to additive logit bias (sent with string keys).
        log_probs: Number of top log probabilities to return per token; ``None`` for none.
        stop_sequences: Stop generating when one of these strings is produced.
        tokens: Return the generated tokens as strings too.
        disable_optimizations: Turn off prompt optimizations.
        minimum_tokens: Generate at least this many tokens.
        echo: Also return the prompt (with log probs if requested).
        use_multiplicative_frequency_penalty: Multiply instead of subtract the frequency
            penalty.
        sequence_penalty: Penalty for repeating token sequences.
        sequence_penalty_min_length: Minimum length of a penalised sequence.
        use_multiplicative_sequence_penalty: Multiply instead of subtract the sequence
            penalty.
        completion_bias_inclusion: Only generate one of these strings.
        completion_bias_inclusion_first_token_only: Apply the inclusion bias to the first
            token only.
        completion_bias_exclusion: Never generate these strings.
        completion_bias_exclusion_first_token_only: Apply the exclusion bias to the first
            token only.
        contextual_control_threshold: Controls also apply to tokens whose attention
            similarity to a controlled token is above this threshold.
        control_log_additive: Add ``log(factor)`` to the attention scores (``True``) or
            multiply the attention by ``factor``.
        repetition_penalties_include_completion: Whether the penalties count the completion.
        raw_completion: Also return the completion as the model produced it, unoptimized.
        steering_concepts: Ids of steering concepts to apply.

    ``to_json`` omits fields that are ``None``; all other fields, defaults included, are sent
    in this order.

    Examples:
        >>> prompt = Prompt.from_text("Provide a short description of AI:")
        >>> request = CompletionRequest(prompt=prompt, maximum_tokens=20)
    """

    prompt: Prompt
    maximum_tokens: int | None = None
    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 0.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalties_include_prompt: bool = False
    use_multiplicative_presence_penalty: bool = False
    penalty_bias: str | None = None
    penalty_exceptions: list[str] | None = None
    penalty_exceptions_include_stop_sequences: bool | None = None
    best_of: int | None = None
    n: int = 1
    logit_bias: dict[int, float] | None = None
    log_probs: int | None = None
    stop_sequences: list[str] | None = None
    tokens: bool = False
    disable_optimizations: bool = False
    minimum_tokens: int = 0
    echo: bool = False
    use_multiplicative_frequency_penalty: bool = False
    sequence_penalty: float = 0.0
    sequence_penalty_min_length: int = 2
    use_multiplicative_sequence_penalty: bool = False
    completion_bias_inclusion: Sequence[str] | None = None
    completion_bias_inclusion_first_token_only: bool = False
    completion_bias_exclusion: Sequence[str] | None = None
    completion_bias_exclusion_first_token_only: bool = False
    contextual_control_threshold: float | None = None
    control_log_additive: bool | None = True
    repetition_penalties_include_completion: bool = True
    raw_completion: bool = False
    steering_concepts: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        """The request body (without ``model``): every field that is not ``None``."""
        payload: dict[str, Any] = {"prompt": self.prompt.to_json()}
        for name in _FIELD_NAMES:
            value = getattr(self, name)
            if value is None:
                continue
            if name == "logit_bias":
                value = {_bias_key(k): v for k, v in value.items()}
            payload[name] = value
        return payload

    def _asdict(self) -> dict[str, Any]:
        return _plain(self)  # type: ignore[no-any-return]

    def _validate(self) -> None:
        """Raise ``InvalidArgumentError`` naming the first invalid field.

        Every field but ``prompt`` may be ``None``: ``to_json`` leaves it out and the API
        uses its default, as with the official client (LangChain passes ``None`` for some).
        """
        _check_prompt("prompt", self.prompt)
        # 0 is valid: with echo=True it scores the prompt without generating
        check_int("maximum_tokens", self.maximum_tokens, minimum=0, optional=True)
        check_number("temperature", self.temperature, minimum=0, optional=True)
        check_int("top_k", self.top_k, minimum=0, optional=True)
        check_number("top_p", self.top_p, minimum=0, maximum=1, optional=True)
        check_number("presence_penalty", self.presence_penalty, optional=True)
        check_number("frequency_penalty", self.frequency_penalty, optional=True)
        check_number("sequence_penalty", self.sequence_penalty, optional=True)
        check_int(
            "sequence_penalty_min_length",
            self.sequence_penalty_min_length,
            minimum=1,
            optional=True,
        )
        check_str("penalty_bias", self.penalty_bias, optional=True)
        for name in _SEQUENCE_FIELDS:
            check_str_list(name, getattr(self, name), optional=True)
        check_int("best_of", self.best_of, minimum=1, optional=True)
        check_int("n", self.n, minimum=1, optional=True)
        check_int("log_probs", self.log_probs, minimum=0, optional=True)
        check_int("minimum_tokens", self.minimum_tokens, minimum=0, optional=True)
        check_number(
            "contextual_control_threshold", self.contextual_control_threshold, optional=True
        )
        for name in _BOOL_FIELDS:
            check_bool(name, getattr(self, name), optional=True)
        check_bool(
            "penalty_exceptions_include_stop_sequences",
            self.penalty_exceptions_include_stop_sequences,
            optional=True,
        )
        check_bool("control_log_additive", self.control_log_additive, optional=True)
        bias = self.logit_bias
        if bias is not None:
            if not isinstance(bias, Mapping):
                raise InvalidArgumentTypeError(
                    f"logit_bias: expected a dict of token id to float or None, got {got(bias)}"
                )
            for key, value in bias.items():
                if not (is_int(key) or (isinstance(key, str) and key.isdigit())):
                    raise InvalidArgumentTypeError(
                        f"logit_bias: expected token ids (int) as keys, got {got(key)}"
                    )
                check_number(f"logit_bias[{key!r}]", value)


def _bias_key(key: Any) -> Any:
    # json.dumps turns int keys into their decimal string; do it here so every encoder agrees.
    if isinstance(key, int) and not isinstance(key, bool):
        return str(key)
    return key


# Fields of CompletionRequest after ``prompt``, in declaration (= JSON key) order.
_FIELD_NAMES: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(CompletionRequest) if f.name != "prompt"
)
_BOOL_FIELDS: tuple[str, ...] = tuple(
    f.name
    for f in dataclasses.fields(CompletionRequest)
    if f.type in ("bool", bool) and f.name != "prompt"
)


@dataclass(frozen=True)
class CompletionResult:
    """One completion of a :class:`CompletionResponse`."""

    log_probs: Sequence[Mapping[str, float | None]] | None = None
    completion: str | None = None
    completion_tokens: Sequence[str] | None = None
    finish_reason: str | None = None
    raw_completion: str | None = None

    @classmethod
    def from_json(cls, json: Mapping[str, Any]) -> CompletionResult:
        """Parse one entry of the response's ``completions``; every key is optional."""
        get = json.get
        return cls(
            log_probs=get("log_probs"),
            completion=get("completion"),
            completion_tokens=get("completion_tokens"),
            finish_reason=get("finish_reason"),
            raw_completion=get("raw_completion"),
        )

    def _asdict(self) -> dict[str, Any]:
        return {
            "log_probs": _plain(self.log_probs),
            "completion": self.completion,
            "completion_tokens": _plain(self.completion_tokens),
            "finish_reason": self.finish_reason,
            "raw_completion": self.raw_completion,
        }


def _optional_prompt(json: Mapping[str, Any]) -> Prompt | None:
    raw = json.get("optimized_prompt")
    return Prompt.from_json(raw) if raw else None


@dataclass(frozen=True)
class CompletionResponse:
    """The answer to a :class:`CompletionRequest`.

    Parameters:
        model_version: Name and version of the model used.
        completions: One result per requested completion (see ``n``).
        num_tokens_prompt_total: Prompt tokens summed over all completion tasks.
        num_tokens_generated: Generated tokens summed over all completion tasks.
        optimized_prompt: The prompt after the API's optimizations; only set when they
            changed it.
    """

    #: The request id the server sent with this answer (not a field: never compared).
    request_id: ClassVar[Optional[str]] = None

    model_version: str
    completions: Sequence[CompletionResult]
    num_tokens_prompt_total: int
    num_tokens_generated: int
    optimized_prompt: Prompt | None = None

    @classmethod
    def from_json(cls, json: Mapping[str, Any]) -> CompletionResponse:
        """Parse the API's JSON (unknown keys are ignored)."""
        return cls(
            model_version=json["model_version"],
            completions=[CompletionResult.from_json(item) for item in json["completions"]],
            num_tokens_prompt_total=json["num_tokens_prompt_total"],
            num_tokens_generated=json["num_tokens_generated"],
            optimized_prompt=_optional_prompt(json),
        )

    def to_json(self) -> dict[str, Any]:
        """A plain dict of all fields (as ``dataclasses.asdict``); this is *not* the wire
        format: ``optimized_prompt`` becomes ``{"items": [...]}`` and ``None`` is kept."""
        return {
            "model_version": self.model_version,
            "completions": [c._asdict() for c in self.completions],
            "num_tokens_prompt_total": self.num_tokens_prompt_total,
            "num_tokens_generated": self.num_tokens_generated,
            "optimized_prompt": _plain(self.optimized_prompt),
        }

    def _asdict(self) -> dict[str, Any]:
        return self.to_json()


@dataclass(frozen=True)
class StreamChunk:
    """A piece of a streamed completion.

    Parameters:
        index: Which of the ``n`` completions this chunk belongs to.
        log_probs: Log probabilities of the chunk's tokens, if requested.
        completion: The generated text of this chunk.
        raw_completion: The unoptimized text of this chunk, if requested.
        completion_tokens: The chunk's tokens, if requested.
    """

    index: int
    log_probs: Sequence[Mapping[str, float | None]] | None
    completion: str
    raw_completion: str | None
    completion_tokens: Sequence[str] | None

    @classmethod
    def from_json(cls, json: Mapping[str, Any]) -> StreamChunk:
        """Parse a ``stream_chunk`` event."""
        get = json.get
        return cls(
            index=json["index"],
            log_probs=get("log_probs"),
            completion=json["completion"],
            raw_completion=get("raw_completion"),
            completion_tokens=get("completion_tokens"),
        )

    def to_json(self) -> dict[str, Any]:
        """A plain dict of all fields."""
        return {
            "index": self.index,
            "log_probs": _plain(self.log_probs),
            "completion": self.completion,
            "raw_completion": self.raw_completion,
            "completion_tokens": _plain(self.completion_tokens),
        }


@dataclass(frozen=True)
class StreamSummary:
    """The end of one completion stream (one per ``index``)."""

    index: int
    model_version: str
    finish_reason: str

    @classmethod
    def from_json(cls, json: Mapping[str, Any]) -> StreamSummary:
        """Parse a ``stream_summary`` event."""
        return cls(
            index=json["index"],
            model_version=json["model_version"],
            finish_reason=json["finish_reason"],
        )

    def to_json(self) -> dict[str, Any]:
        """A plain dict of all fields."""
        return {
            "index": self.index,
            "model_version": self.model_version,
            "finish_reason": self.finish_reason,
        }


@dataclass(frozen=True)
class CompletionSummary:
    """The end of all completion streams, with the token counts."""

    optimized_prompt: Prompt | None
    num_tokens_prompt_total: int
    num_tokens_generated: int

    @classmethod
    def from_json(cls, json: Mapping[str, Any]) -> CompletionSummary:
        """Parse a ``completion_summary`` event."""
        return cls(
            optimized_prompt=_optional_prompt(json),
            num_tokens_prompt_total=json["num_tokens_prompt_total"],
            num_tokens_generated=json["num_tokens_generated"],
        )

    def to_json(self) -> dict[str, Any]:
        """A plain dict of all fields (``optimized_prompt`` as ``{"items": [...]}``)."""
        return {
            "optimized_prompt": _plain(self.optimized_prompt),
            "num_tokens_prompt_total": self.num_tokens_prompt_total,
            "num_tokens_generated": self.num_tokens_generated,
        }


CompletionResponseStreamItem = Union[StreamChunk, StreamSummary, CompletionSummary]
"""One item of a completion stream."""

_STREAM_PARSERS: dict[str, Callable[[Mapping[str, Any]], CompletionResponseStreamItem]] = {
    "stream_chunk": StreamChunk.from_json,
    "stream_summary": StreamSummary.from_json,
    "completion_summary": CompletionSummary.from_json,
}


def stream_item_from_json(json: Mapping[str, Any]) -> CompletionResponseStreamItem:
    """Parse one event of a completion stream by its ``type``.

    Raises :class:`~aleph_alpha_client._exceptions.APIResponseValidationError` for an
    unknown or missing ``type``.
    """
    item_type = json.get("type") if isinstance(json, Mapping) else None
    parse = _STREAM_PARSERS.get(item_type) if isinstance(item_type, str) else None
    if parse is None:
        raise APIResponseValidationError(
            f"unknown completion stream item type: {item_type!r}"
            if item_type is not None
            else f"completion stream item without a 'type': {str(json)[:200]}"
        )
    return parse(json)
