"""Embedding requests and responses: ``embed``, ``semantic_embed``, ``batch_semantic_embed``,
``instructable_embed`` and the OpenAI-compatible ``embeddings``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, Literal, Optional, Union

from ._exceptions import InvalidArgumentError, InvalidArgumentTypeError
from ._validation import (
    check_bool,
    check_int,
    check_int_list,
    check_number,
    check_str,
    check_str_list,
    got,
    is_int,
)
from .prompt import Prompt, _check_prompt

__all__ = [
    "BatchSemanticEmbeddingRequest",
    "BatchSemanticEmbeddingResponse",
    "EmbeddingRequest",
    "EmbeddingResponse",
    "EmbeddingV2Request",
    "EmbeddingV2Response",
    "EmbeddingV2ResponseData",
    "EmbeddingVector",
    "InstructableEmbeddingRequest",
    "InstructableEmbeddingResponse",
    "SemanticEmbeddingRequest",
    "SemanticEmbeddingResponse",
    "SemanticRepresentation",
    "Usage",
]

EmbeddingVector = list[float]
"""An embedding: a list of floats."""


def _check_controls_tail(request: Any) -> None:
    check_bool("normalize", request.normalize)
    check_number(
        "contextual_control_threshold", request.contextual_control_threshold, optional=True
    )
    check_bool("control_log_additive", request.control_log_additive, optional=True)


@dataclass(frozen=True)
class EmbeddingRequest:
    """Embed a prompt and return the embeddings of the chosen layers and poolings.

    Parameters:
        prompt: The text and/or images to embed.
        layers: Layer indices to return: 0 is the word embedding, 1 the output of the first
            transformer layer, -1 the last transformer layer, ...
        pooling: Pooling operations: ``mean``, ``max``, ``last_token``, ``abs_max``.
        type: Type of the embedding (e.g. symmetric or asymmetric).
        tokens: Also return the tokenized prompt.
        normalize: Return normalized embeddings.
        contextual_control_threshold: Apply controls to tokens at least this similar too.
        control_log_additive: Apply controls by adding ``log(factor)`` to attention scores.

    ``to_json`` sends every field, ``None`` as ``null``.

    Examples:
        >>> prompt = Prompt.from_text("This is an example.")
        >>> EmbeddingRequest(prompt=prompt, layers=[-1], pooling=["mean"])
    """

    prompt: Prompt
    layers: list[int]
    pooling: list[str]
    type: str | None = None
    tokens: bool = False
    normalize: bool = False
    contextual_control_threshold: float | None = None
    control_log_additive: bool | None = True

    def to_json(self) -> dict[str, Any]:
        """The request body (without ``model``)."""
        return {
            "prompt": self.prompt.to_json(),
            "layers": self.layers,
            "pooling": self.pooling,
            "type": self.type,
            "tokens": self.tokens,
            "normalize": self.normalize,
            "contextual_control_threshold": self.contextual_control_threshold,
            "control_log_additive": self.control_log_additive,
        }

    def _validate(self) -> None:
        """Raise ``InvalidArgumentError`` naming the first invalid field."""
        _check_prompt("prompt", self.prompt)
        check_int_list("layers", self.layers, non_empty=True)
        check_str_list("pooling", self.pooling, non_empty=True)
        check_str("type", self.type, optional=True)
        check_bool("tokens", self.tokens)
        _check_controls_tail(self)


@dataclass(frozen=True)
class EmbeddingResponse:
    """The answer to an :class:`EmbeddingRequest`.

    ``embeddings`` maps ``(layer_name, pooling)`` such as ``("layer_40", "mean")`` to the
    vector; layer names are absolute (``-1`` is ``layer_40`` for a 40-layer model).
    """

    #: The request id the server sent with this answer (not a field: never compared).
    request_id: ClassVar[Optional[str]] = None

    model_version: str
    num_tokens_prompt_total: int
    embeddings: dict[tuple[str, str], list[float]] | None
    tokens: list[str] | None
    message: str | None = None

    @classmethod
    def from_json(cls, json: Mapping[str, Any]) -> EmbeddingResponse:
        """Parse the API's JSON, flattening ``{"layer_0": {"mean": [...]}}``."""
        raw = json["embeddings"]
        embeddings = (
            None
            if raw is None
            else {
                (layer, pooling): vector
                for layer, by_pooling in raw.items()
                for pooling, vector in by_pooling.items()
            }
        )
        return cls(
            model_version=json["model_version"],
            num_tokens_prompt_total=json["num_tokens_prompt_total"],
            embeddings=embeddings,
            tokens=json.get("tokens"),
            message=json.get("message"),
        )


class SemanticRepresentation(Enum):
    """How a prompt is embedded semantically.

    ``Symmetric``: compare texts with each other (clustering, classification, similarity).
    ``Document`` and ``Query``: search, comparing short queries with longer documents.
    """

    Symmetric = "symmetric"
    Document = "document"
    Query = "query"


def _representation_json(value: Any) -> Any:
    return value.value if isinstance(value, SemanticRepresentation) else value


def _check_representation(value: Any) -> None:
    if isinstance(value, SemanticRepresentation):
        return
    allowed = [r.value for r in SemanticRepresentation]
    if isinstance(value, str):
        if value in allowed:
            return
        raise InvalidArgumentError(
            f"representation: expected a SemanticRepresentation or one of {allowed}, got {value!r}"
        )
    raise InvalidArgumentTypeError(
        f"representation: expected a SemanticRepresentation or one of {allowed}, got {got(value)}"
    )


@dataclass(frozen=True)
class SemanticEmbeddingRequest:
    """Embed a prompt into one vector for semantic comparison.

    Parameters:
        prompt: The text and/or images to embed.
        representation: See :class:`SemanticRepresentation`.
        compress_to_size: Return a compressed embedding of this size (e.g. 128).
        normalize: Return a normalized embedding.
        contextual_control_threshold: Apply controls to tokens at least this similar too.
        control_log_additive: Apply controls by adding ``log(factor)`` to attention scores.

    ``to_json`` sends every field, ``None`` as ``null``.
    """

    prompt: Prompt
    representation: SemanticRepresentation
    compress_to_size: int | None = None
    normalize: bool = False
    contextual_control_threshold: float | None = None
    control_log_additive: bool | None = True

    def to_json(self) -> dict[str, Any]:
        """The request body (without ``model``)."""
        return {
            "prompt": self.prompt.to_json(),
            "representation": _representation_json(self.representation),
            "compress_to_size": self.compress_to_size,
            "normalize": self.normalize,
            "contextual_control_threshold": self.contextual_control_threshold,
            "control_log_additive": self.control_log_additive,
        }

    def _validate(self) -> None:
        """Raise ``InvalidArgumentError`` naming the first invalid field."""
        _check_prompt("prompt", self.prompt)
        _check_representation(self.representation)
        check_int("compress_to_size", self.compress_to_size, minimum=1, optional=True)
        _check_controls_tail(self)


@dataclass(frozen=True)
class BatchSemanticEmbeddingRequest:
    """Embed several prompts semantically; the embeddings come back in the same order.

    The client splits large batches into requests of at most 100 prompts. Fields as in
    :class:`SemanticEmbeddingRequest`; ``to_json`` sends ``"prompts"`` as a list of prompt
    lists and every field, ``None`` as ``null``.
    """

    prompts: Sequence[Prompt]
    representation: SemanticRepresentation
    compress_to_size: int | None = None
    normalize: bool = False
    contextual_control_threshold: float | None = None
    control_log_additive: bool | None = True

    def to_json(self) -> dict[str, Any]:
        """The request body (without ``model``)."""
        return {
            "prompts": [prompt.to_json() for prompt in self.prompts],
            "representation": _representation_json(self.representation),
            "compress_to_size": self.compress_to_size,
            "normalize": self.normalize,
            "contextual_control_threshold": self.contextual_control_threshold,
            "control_log_additive": self.control_log_additive,
        }

    def _validate(self) -> None:
        """Raise ``InvalidArgumentError`` naming the first invalid field (an empty batch is
        allowed)."""
        prompts = self.prompts
        if isinstance(prompts, (str, bytes, Prompt)) or not isinstance(prompts, Sequence):
            raise InvalidArgumentTypeError(
                f"prompts: expected a list of Prompt, got {got(prompts)}"
            )
        for i, prompt in enumerate(prompts):
            _check_prompt(f"prompts[{i}]", prompt)
        _check_representation(self.representation)
        check_int("compress_to_size", self.compress_to_size, minimum=1, optional=True)
        _check_controls_tail(self)


@dataclass(frozen=True)
class InstructableEmbeddingRequest:
    """Embed a prompt according to an instruction (``POST instructable_embed``).

    Parameters:
        input: The text and/or images to embed (sent as ``"input"``).
        instruction: What aspect of the input the embedding should capture.
        normalize: Return a normalized embedding.
        contextual_control_threshold: Apply controls to tokens at least this similar too.
        control_log_additive: Apply controls by adding ``log(factor)`` to attention scores.

    ``to_json`` sends every field, ``None`` as ``null``.
    """

    input: Prompt
    instruction: str
    normalize: bool = False
    contextual_control_threshold: float | None = None
    control_log_additive: bool | None = True

    def to_json(self) -> dict[str, Any]:
        """The request body (without ``model``)."""
        return {
            "input": self.input.to_json(),
            "instruction": self.instruction,
            "normalize": self.normalize,
            "contextual_control_threshold": self.contextual_control_threshold,
            "control_log_additive": self.control_log_additive,
        }

    def _validate(self) -> None:
        """Raise ``InvalidArgumentError`` naming the first invalid field."""
        _check_prompt("input", self.input)
        check_str("instruction", self.instruction)
        _check_controls_tail(self)


@dataclass(frozen=True)
class SemanticEmbeddingResponse:
    """The answer to a :class:`SemanticEmbeddingRequest`. ``message`` is no longer used."""

    #: The request id the server sent with this answer (not a field: never compared).
    request_id: ClassVar[Optional[str]] = None

    model_version: str
    embedding: EmbeddingVector
    num_tokens_prompt_total: int
    message: str | None = None

    @classmethod
    def from_json(cls, json: Mapping[str, Any]) -> SemanticEmbeddingResponse:
        """Parse the API's JSON."""
        return cls(
            model_version=json["model_version"],
            embedding=json["embedding"],
            num_tokens_prompt_total=json["num_tokens_prompt_total"],
            message=json.get("message"),
        )


@dataclass(frozen=True)
class BatchSemanticEmbeddingResponse:
    """The answer to a :class:`BatchSemanticEmbeddingRequest` (merged over all requests
    the client made for it)."""

    #: The request id the server sent with this answer (not a field: never compared).
    request_id: ClassVar[Optional[str]] = None

    model_version: str
    embeddings: Sequence[EmbeddingVector]
    num_tokens_prompt_total: int

    @classmethod
    def from_json(cls, json: Mapping[str, Any]) -> BatchSemanticEmbeddingResponse:
        """Parse the API's JSON."""
        return cls(
            model_version=json["model_version"],
            embeddings=json["embeddings"],
            num_tokens_prompt_total=json["num_tokens_prompt_total"],
        )

    def to_json(self) -> dict[str, Any]:
        """A plain dict of the three fields."""
        return {
            "model_version": self.model_version,
            "embeddings": list(self.embeddings),
            "num_tokens_prompt_total": self.num_tokens_prompt_total,
        }

    @staticmethod
    def _from_model_version_and_embeddings(
        model_version: str,
        embeddings: Sequence[EmbeddingVector],
        num_tokens_prompt_total: int,
    ) -> BatchSemanticEmbeddingResponse:
        return BatchSemanticEmbeddingResponse(
            model_version=model_version,
            embeddings=embeddings,
            num_tokens_prompt_total=num_tokens_prompt_total,
        )


@dataclass(frozen=True)
class InstructableEmbeddingResponse:
    """The answer to an :class:`InstructableEmbeddingRequest`."""

    #: The request id the server sent with this answer (not a field: never compared).
    request_id: ClassVar[Optional[str]] = None

    model_version: str
    embedding: EmbeddingVector
    num_tokens_prompt_total: int
    message: str | None = None

    @classmethod
    def from_json(cls, json: Mapping[str, Any]) -> InstructableEmbeddingResponse:
        """Parse the API's JSON (``message`` is kept when the API sends one)."""
        return cls(
            model_version=json["model_version"],
            embedding=json["embedding"],
            num_tokens_prompt_total=json["num_tokens_prompt_total"],
            message=json.get("message"),
        )


@dataclass(frozen=True)
class EmbeddingV2Request:
    """An OpenAI-compatible embedding request (``POST embeddings``).

    Parameters:
        input: A string, a list of strings, a list of token ids or a list of token-id lists.
        dimensions: Size of the output embeddings (not every model supports it).
        encoding_format: ``"float"`` or ``"base64"``.

    ``to_json`` omits ``dimensions`` and ``encoding_format`` when they are ``None``.

    Examples:
        >>> request = EmbeddingV2Request(input="Hello World!", dimensions=64)
    """

    input: Union[str, list[str], list[int], list[list[int]]]
    dimensions: int | None = None
    encoding_format: Literal["float", "base64"] | None = None

    def to_json(self) -> dict[str, Any]:
        """The request body (without ``model``)."""
        body: dict[str, Any] = {"input": self.input}
        if self.dimensions is not None:
            body["dimensions"] = self.dimensions
        if self.encoding_format is not None:
            body["encoding_format"] = self.encoding_format
        return body

    def _validate(self) -> None:
        """Raise ``InvalidArgumentError`` naming the first invalid field."""
        value = self.input
        if not isinstance(value, str):
            what = "a str, a list of str, a list of int or a list of lists of int"
            if not isinstance(value, (list, tuple)):
                raise InvalidArgumentTypeError(f"input: expected {what}, got {got(value)}")
            if not value:
                raise InvalidArgumentError(f"input: expected {what}, got an empty list")
            if not (
                all(isinstance(v, str) for v in value)
                or all(is_int(v) for v in value)
                or all(isinstance(v, (list, tuple)) and all(is_int(t) for t in v) for v in value)
            ):
                raise InvalidArgumentTypeError(f"input: expected {what}, got {got(value)}")
        check_int("dimensions", self.dimensions, minimum=1, optional=True)
        if self.encoding_format not in (None, "float", "base64"):
            raise InvalidArgumentError(
                "encoding_format: expected 'float', 'base64' or None, "
                f"got {got(self.encoding_format)}"
            )


@dataclass(frozen=True)
class Usage:
    """Token usage of an :class:`EmbeddingV2Request` (not :class:`aleph_alpha_client.chat.Usage`)."""

    prompt_tokens: int
    total_tokens: int

    @classmethod
    def from_json(cls, json: Mapping[str, Any]) -> Usage:
        """Parse the ``usage`` object."""
        return cls(prompt_tokens=json["prompt_tokens"], total_tokens=json["total_tokens"])


@dataclass(frozen=True)
class EmbeddingV2ResponseData:
    """One embedding of an :class:`EmbeddingV2Response`.

    ``embedding`` is a list of floats, or a base64 string with ``encoding_format="base64"``.
    """

    #: The request id the server sent with this answer (not a field: never compared).
    request_id: ClassVar[Optional[str]] = None

    object: str
    embedding: list[float]
    index: int

    @classmethod
    def from_json(cls, json: Mapping[str, Any]) -> EmbeddingV2ResponseData:
        """Parse one entry of ``data``."""
        return cls(object=json["object"], embedding=json["embedding"], index=json["index"])


@dataclass(frozen=True)
class EmbeddingV2Response:
    """The answer to an :class:`EmbeddingV2Request`, in OpenAI's format."""

    object: str
    data: list[EmbeddingV2ResponseData]
    model: str
    usage: Usage

    @classmethod
    def from_json(cls, json: Mapping[str, Any]) -> EmbeddingV2Response:
        """Parse the API's JSON."""
        return cls(
            object=json["object"],
            data=[EmbeddingV2ResponseData.from_json(item) for item in json["data"]],
            model=json["model"],
            usage=Usage.from_json(json["usage"]),
        )
