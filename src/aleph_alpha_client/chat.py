"""Chat: role-based messages with text and images, tools, structured output, streaming.

The models mirror the official client's ``aleph_alpha_client.chat`` (same names, field order
and wire format) with these additions: ``ChatResponse`` keeps ``usage``, ``id``, ``model`` and
``created``; ``Message`` content accepts :class:`aleph_alpha_client.Image` (sent as a data URI
of its own type, not re-encoded) next to PIL images; ``ChatResponse.parsed`` validates a
structured answer into a pydantic model.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum, EnumMeta
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Optional, TypeVar, Union

from ._exceptions import (
    APIResponseValidationError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
)
from ._validation import check_bool, check_int, check_number, got
from .structured_output import JSONSchema, ResponseFormat, response_format_to_json

if TYPE_CHECKING:  # pragma: no cover
    from pydantic import BaseModel

    from .prompt import Image

__all__ = [
    "ChatChoice",
    "ChatRequest",
    "ChatResponse",
    "ChatStreamChunk",
    "ChoiceFinishReason",
    "FinishReason",
    "FunctionCall",
    "JSONSchema",
    "Message",
    "ReasoningChunk",
    "ResponseFormat",
    "Role",
    "StreamOptions",
    "TextMessage",
    "TokenLogprob",
    "ToolCall",
    "ToolFunction",
    "TopLogprob",
    "Usage",
    "process_chat_stream",
    "split_think",
    "stream_chat_item_from_json",
]

_M = TypeVar("_M", bound="BaseModel")


class Role(str, Enum):
    """The author of a message."""

    User = "user"
    Assistant = "assistant"
    System = "system"
    Tool = "tool"


class _FinishReasonType(EnumMeta):
    """``isinstance(x, FinishReason)`` also holds for a :class:`ChoiceFinishReason`."""

    def __instancecheck__(cls, instance: Any) -> bool:
        return type.__instancecheck__(cls, instance) or (
            cls is FinishReason and isinstance(instance, ChoiceFinishReason)
        )


class FinishReason(str, Enum, metaclass=_FinishReasonType):
    """Why the model stopped generating."""

    Stop = "stop"
    Length = "length"
    ContentFilter = "content_filter"
    ToolCalls = "tool_calls"

    @classmethod
    def from_json(cls, value: Any) -> FinishReason:
        """Parse a wire value; unknown values raise a typed error naming them."""
        try:
            return cls(value)
        except ValueError:
            raise APIResponseValidationError(f"unknown finish_reason {value!r}") from None


class ChoiceFinishReason(str):
    """The finish item of one choice in an ``n`` > 1 stream: which choice (``index``)
    finished and why (``reason``, a :class:`FinishReason`).

    It stands in for the bare :class:`FinishReason` that an ``n`` = 1 stream yields:
    ``isinstance(item, FinishReason)`` holds, it equals (and hashes as) ``reason``
    (``item == FinishReason.Stop``, ``item == "stop"``), and has ``value`` and ``name``.
    Only ``item is FinishReason.Stop`` tells them apart. ``index`` is the choice index (it
    hides ``str.index``).
    """

    reason: FinishReason
    index: int  # type: ignore[assignment]  # the choice, as on ChatStreamChunk

    def __new__(cls, reason: FinishReason, index: int) -> ChoiceFinishReason:
        self = super().__new__(cls, FinishReason(reason).value)
        self.reason = FinishReason(reason)
        self.index = index
        return self

    @property
    def value(self) -> str:
        """The wire value, as ``FinishReason.value``."""
        return self.reason.value

    @property
    def name(self) -> str:
        """The member name, as ``FinishReason.name``."""
        return self.reason.name

    def __repr__(self) -> str:
        return f"ChoiceFinishReason({self.reason!s}, index={self.index})"

    def __str__(self) -> str:
        return str(self.reason)

    def __format__(self, spec: str) -> str:
        return format(self.reason, spec)

    def __reduce__(self) -> tuple[Any, ...]:
        return (ChoiceFinishReason, (self.reason, self.index))


@dataclass(frozen=True)
class FunctionCall:
    """A function the model wants called; ``arguments`` is a JSON string."""

    name: str
    arguments: str

    def to_json(self) -> dict[str, Any]:
        """Wire form."""
        return {"name": self.name, "arguments": self.arguments}

    @staticmethod
    def from_json(json: Mapping[str, Any]) -> FunctionCall:
        """Parse the wire form."""
        return FunctionCall(name=json["name"], arguments=json.get("arguments") or "")

    def parsed_arguments(self, *, tools: Optional[Sequence[Any]] = None) -> Any:
        """The arguments decoded from JSON.

        With ``tools`` (the request's tools), the arguments of a tool built from a function or
        a pydantic model are validated against it (:class:`ToolArgumentsError` names the bad
        argument); a model tool gives the validated instance.
        """
        if tools is not None:
            from .tools import tools_by_name

            found = tools_by_name(tools).get(self.name)
            if found is not None:
                return found.parse_arguments(self.arguments)
        return json.loads(self.arguments) if self.arguments else {}


@dataclass(frozen=True)
class ToolCall:
    """One tool call of an assistant message."""

    id: str
    type: str
    function: FunctionCall

    def to_json(self) -> dict[str, Any]:
        """Wire form."""
        return {"id": self.id, "type": self.type, "function": self.function.to_json()}

    @staticmethod
    def from_json(json: Mapping[str, Any]) -> ToolCall:
        """Parse the wire form."""
        return ToolCall(
            id=json["id"],
            type=json.get("type") or "function",
            function=FunctionCall.from_json(json["function"]),
        )


@dataclass(frozen=True)
class ToolFunction:
    """A specific function for ``tool_choice``: ``ToolFunction("function", {"name": ...})``."""

    type: Literal["function"]
    function: Any

    def to_json(self) -> dict[str, Any]:
        """Wire form."""
        return {"type": self.type, "function": _plain(self.function)}


def _plain(value: Any) -> Any:
    """A JSON-ready copy of a value that may hold dataclasses with ``to_json``."""
    to_json = getattr(value, "to_json", None)
    if callable(to_json):
        return to_json()
    return value


def _role_value(role: Any, where: str) -> str:
    if isinstance(role, Role):
        return role.value
    if isinstance(role, str):
        try:
            return Role(role).value
        except ValueError:
            pass
    raise InvalidArgumentError(
        f"{where}.role: expected one of {[r.value for r in Role]}, got {role!r}"
    )


def _pil_data_uri(image: Any) -> str:
    """PNG data URI of a PIL image (modes PNG cannot hold are converted to RGB(A))."""
    if image.mode not in ("1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _content_item_to_json(item: Any, where: str) -> dict[str, Any]:
    if isinstance(item, str):
        return {"type": "text", "text": item}
    from .prompt import Image

    if isinstance(item, Image):
        return {"type": "image_url", "image_url": {"url": item.to_data_uri()}}
    module = type(item).__module__
    if module.startswith("PIL.") and hasattr(item, "save"):
        return {"type": "image_url", "image_url": {"url": _pil_data_uri(item)}}
    raise InvalidArgumentTypeError(
        f"{where}: expected a str, an aleph_alpha_client.Image or a PIL image, "
        f"got {type(item).__name__}"
    )


def _content_to_json(content: Any, where: str) -> Any:
    if isinstance(content, str):
        return content
    if content is None:
        return None
    if isinstance(content, Sequence):
        return [
            _content_item_to_json(item, f"{where}.content[{i}]") for i, item in enumerate(content)
        ]
    raise InvalidArgumentTypeError(
        f"{where}.content: expected a str or a list of str and images, got {type(content).__name__}"
    )


@dataclass(frozen=True)
class Message:
    """A message of a chat request.

    ``content`` is a string, or a list of strings and images (:class:`aleph_alpha_client.Image`
    or PIL images) for multimodal messages. Assistant messages may carry ``tool_calls``; tool
    messages answer one of them through ``tool_call_id``.
    """

    role: Role
    content: Union[str, list[Union[str, Image, Any]]]
    tool_call_id: Optional[str] = None
    tool_calls: Optional[list[ToolCall]] = None

    def to_json(self, _where: str = "Message") -> dict[str, Any]:
        """Wire form: role, content, then tool_calls and tool_call_id when set."""
        result: dict[str, Any] = {
            "role": _role_value(self.role, _where),
            "content": _content_to_json(self.content, _where),
        }
        if self.tool_calls is not None:
            result["tool_calls"] = [_plain(call) for call in self.tool_calls]
        if self.tool_call_id is not None:
            result["tool_call_id"] = self.tool_call_id
        return result


_THINK_OPEN = "<think>"
_THINK_CLOSE = "</think>"


def split_think(content: str) -> tuple[Optional[str], str]:
    """Split a leading ``<think>...</think>`` off an answer: ``(reasoning, rest)``.

    Without a leading tag the reasoning is ``None`` and the content comes back unchanged; a
    tag that is never closed (the answer was cut) makes the whole rest reasoning. Whitespace
    around the reasoning and before the answer is dropped.
    """
    stripped = content.lstrip()
    if not stripped.startswith(_THINK_OPEN):
        return None, content
    body = stripped[len(_THINK_OPEN) :]
    end = body.find(_THINK_CLOSE)
    if end < 0:
        return body.strip(), ""
    return body[:end].strip(), body[end + len(_THINK_CLOSE) :].lstrip()


def _reasoning_of(json: Mapping[str, Any]) -> Any:
    """The reasoning field of a message or delta (``reasoning_content``, or vLLM's ``reasoning``)."""
    value = json.get("reasoning_content")
    if value is None:
        value = json.get("reasoning")
    if value is not None and not isinstance(value, str):
        raise APIResponseValidationError(f"reasoning_content is not a string: {value!r:.100}")
    return value


@dataclass(frozen=True)
class TextMessage:
    """A text message, as the API answers it; can be appended to the history as it is.

    ``reasoning_content`` holds a reasoning model's thinking: the ``reasoning_content`` (or
    ``reasoning``) field, or a leading ``<think>...</think>`` split off the content. It is not
    sent back when the message goes into the next request's history.
    """

    role: Role
    content: str
    tool_calls: Optional[list[ToolCall]] = None
    reasoning_content: Optional[str] = None

    @staticmethod
    def from_json(json: Mapping[str, Any]) -> TextMessage:
        """Parse the wire form (``content`` may be null)."""
        raw_calls = json.get("tool_calls")
        content = json["content"]
        reasoning = _reasoning_of(json)
        if reasoning is None and isinstance(content, str):
            reasoning, content = split_think(content)
        return TextMessage(
            role=Role(json["role"]),
            content=content,
            tool_calls=None
            if raw_calls is None
            else [ToolCall.from_json(call) for call in raw_calls],
            reasoning_content=reasoning,
        )

    def to_json(self, _where: str = "TextMessage") -> dict[str, Any]:
        """Wire form: role, content, then tool_calls when set (never the reasoning)."""
        result: dict[str, Any] = {
            "role": _role_value(self.role, _where),
            "content": self.content,
        }
        if self.tool_calls is not None:
            result["tool_calls"] = [_plain(call) for call in self.tool_calls]
        return result


@dataclass(frozen=True)
class TopLogprob:
    """One of the most likely tokens at a position, with its log probability."""

    token: str
    logprob: float
    bytes: Optional[list[int]] = None

    @staticmethod
    def from_json(json: Mapping[str, Any]) -> TopLogprob:
        """Parse the wire form."""
        return TopLogprob(
            token=json["token"], logprob=float(json["logprob"]), bytes=_bytes_of(json)
        )

    def to_json(self) -> dict[str, Any]:
        """Wire form."""
        return {"token": self.token, "logprob": self.logprob, "bytes": self.bytes}


@dataclass(frozen=True)
class TokenLogprob:
    """A generated token: its text, log probability, UTF-8 bytes and the top alternatives."""

    token: str
    logprob: float
    bytes: Optional[list[int]] = None
    top_logprobs: list[TopLogprob] = field(default_factory=list)

    @staticmethod
    def from_json(json: Mapping[str, Any]) -> TokenLogprob:
        """Parse the wire form."""
        return TokenLogprob(
            token=json["token"],
            logprob=float(json["logprob"]),
            bytes=_bytes_of(json),
            top_logprobs=[TopLogprob.from_json(t) for t in json.get("top_logprobs") or ()],
        )

    def to_json(self) -> dict[str, Any]:
        """Wire form."""
        return {
            "token": self.token,
            "logprob": self.logprob,
            "bytes": self.bytes,
            "top_logprobs": [t.to_json() for t in self.top_logprobs],
        }


def _bytes_of(json: Mapping[str, Any]) -> Optional[list[int]]:
    raw = json.get("bytes")
    return None if raw is None else [int(b) for b in raw]


def logprobs_from_json(value: Any) -> Optional[list[TokenLogprob]]:
    """The per-token log probabilities of a choice's ``logprobs`` object (None when absent)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise APIResponseValidationError(f"logprobs is not an object: {value!r:.100}")
    content = value.get("content")
    if content is None:
        return None
    return [TokenLogprob.from_json(token) for token in content]


@dataclass(frozen=True)
class StreamOptions:
    """Options of a streamed chat; ``include_usage`` adds a usage chunk at the end."""

    include_usage: bool

    def to_json(self) -> dict[str, Any]:
        """Wire form."""
        return {"include_usage": self.include_usage}


@dataclass(frozen=True)
class Usage:
    """Token counts of a chat answer."""

    completion_tokens: int
    prompt_tokens: int
    total_tokens: int

    @staticmethod
    def from_json(json: Mapping[str, Any]) -> Usage:
        """Parse the wire form."""
        return Usage(
            completion_tokens=json["completion_tokens"],
            prompt_tokens=json["prompt_tokens"],
            total_tokens=json["total_tokens"],
        )

    def to_json(self) -> dict[str, Any]:
        """Wire form."""
        return {
            "completion_tokens": self.completion_tokens,
            "prompt_tokens": self.prompt_tokens,
            "total_tokens": self.total_tokens,
        }


_TOOL_CHOICES = ("auto", "required", "none")


@dataclass(frozen=True)
class ChatRequest:
    """A chat request. ``model`` is overwritten by the client method's ``model`` argument.

    ``response_format`` takes a :class:`JSONSchema`, a pydantic model class or a raw mapping;
    ``tools`` are OpenAI-style tool dicts, Python functions, pydantic model classes or
    :class:`~aleph_alpha_client.Tool` objects (see ``docs/tools.md``); ``tool_choice`` is ``"auto"``, ``"required"``,
    ``"none"`` or a :class:`ToolFunction`.

    The fields after ``parallel_tool_calls`` are newer than the official 11.5.1 client and are
    sent only when set: ``stop``, ``n``, the penalties (-2..2), ``logit_bias`` (token id ->
    bias, -100..100; ids go as string keys), ``logprobs``, ``top_logprobs`` (0..20), ``seed``,
    ``reasoning_effort`` (``"low"``, ``"medium"``, ``"high"``), ``max_completion_tokens`` and
    ``extra_body``: a mapping merged into the top level of the JSON body for fields this client
    does not know; a key the client sets itself (a field above, ``hosting``, ``tags``,
    ``stream``) is rejected rather than silently overridden.
    """

    model: str
    messages: Sequence[Union[Message, TextMessage]]
    maximum_tokens: Optional[int] = None
    temperature: Optional[float] = None
    top_k: Optional[int] = None
    top_p: Optional[float] = None
    stream_options: Optional[StreamOptions] = None
    steering_concepts: Optional[list[str]] = None
    response_format: Optional[ResponseFormat] = None
    tools: Optional[list[Any]] = None
    tool_choice: Optional[Union[Literal["auto", "required", "none"], ToolFunction]] = None
    parallel_tool_calls: Optional[bool] = None
    stop: Optional[Union[str, list[str]]] = None
    n: Optional[int] = None
    frequency_penalty: Optional[float] = None
    presence_penalty: Optional[float] = None
    logit_bias: Optional[Mapping[int, float]] = None
    logprobs: Optional[bool] = None
    top_logprobs: Optional[int] = None
    seed: Optional[int] = None
    reasoning_effort: Optional[Literal["low", "medium", "high"]] = None
    max_completion_tokens: Optional[int] = None
    extra_body: Optional[Mapping[str, Any]] = None

    def _validate(self) -> None:
        """Check the request before anything is sent; errors name the field."""
        if not isinstance(self.messages, Sequence) or isinstance(self.messages, (str, bytes)):
            raise InvalidArgumentTypeError(
                f"ChatRequest.messages: expected a list of Message, got "
                f"{type(self.messages).__name__}"
            )
        if len(self.messages) == 0:
            raise InvalidArgumentError(
                "ChatRequest.messages: expected at least one message, got an empty list"
            )
        for i, message in enumerate(self.messages):
            if not isinstance(message, (Message, TextMessage)):
                raise InvalidArgumentTypeError(
                    f"ChatRequest.messages[{i}]: expected a Message or TextMessage, "
                    f"got {type(message).__name__}"
                )
        check_int("ChatRequest.maximum_tokens", self.maximum_tokens, minimum=1, optional=True)
        check_number("ChatRequest.temperature", self.temperature, minimum=0.0, optional=True)
        check_int("ChatRequest.top_k", self.top_k, minimum=0, optional=True)
        check_number("ChatRequest.top_p", self.top_p, minimum=0.0, maximum=1.0, optional=True)
        if self.stream_options is not None and not isinstance(self.stream_options, StreamOptions):
            raise InvalidArgumentTypeError(
                "ChatRequest.stream_options: expected StreamOptions(include_usage=...), "
                f"got {type(self.stream_options).__name__}"
            )
        if self.steering_concepts is not None and (
            isinstance(self.steering_concepts, (str, bytes))
            or not isinstance(self.steering_concepts, Iterable)
            or not all(isinstance(c, str) for c in self.steering_concepts)
        ):
            raise InvalidArgumentTypeError(
                "ChatRequest.steering_concepts: expected a list of concept id strings or None, "
                f"got {got(self.steering_concepts)}"
            )
        if self.tools is not None:
            if isinstance(self.tools, (str, bytes, Mapping)) or not isinstance(
                self.tools, Sequence
            ):
                raise InvalidArgumentTypeError(
                    "ChatRequest.tools: expected a list of tool definitions (dicts) or None, "
                    f"got {type(self.tools).__name__}"
                )
            from .tools import check_tool

            for i, tool in enumerate(self.tools):
                check_tool(tool, f"ChatRequest.tools[{i}]")
        if self.tool_choice is not None and not isinstance(
            self.tool_choice, (ToolFunction, Mapping)
        ):
            if self.tool_choice not in _TOOL_CHOICES:
                raise InvalidArgumentError(
                    f"ChatRequest.tool_choice: expected one of {list(_TOOL_CHOICES)}, a "
                    f"ToolFunction or a dict, got {self.tool_choice!r}"
                )
        check_bool("ChatRequest.parallel_tool_calls", self.parallel_tool_calls, optional=True)
        self._validate_sampling()

    def _validate_sampling(self) -> None:
        """Check the fields added after 11.5.1 (the spec's ranges)."""
        if self.stop is not None and not isinstance(self.stop, str):
            if isinstance(self.stop, (bytes, Mapping)) or not (
                isinstance(self.stop, Sequence) and all(isinstance(s, str) for s in self.stop)
            ):
                raise InvalidArgumentTypeError(
                    "ChatRequest.stop: expected a str or a list of str, "
                    f"got {type(self.stop).__name__}"
                )
        check_int("ChatRequest.n", self.n, minimum=1, optional=True)
        check_number(
            "ChatRequest.frequency_penalty",
            self.frequency_penalty,
            minimum=-2.0,
            maximum=2.0,
            optional=True,
        )
        check_number(
            "ChatRequest.presence_penalty",
            self.presence_penalty,
            minimum=-2.0,
            maximum=2.0,
            optional=True,
        )
        if self.logit_bias is not None:
            if not isinstance(self.logit_bias, Mapping):
                raise InvalidArgumentTypeError(
                    "ChatRequest.logit_bias: expected a dict of token id (int) to bias, "
                    f"got {type(self.logit_bias).__name__}"
                )
            for token, bias in self.logit_bias.items():
                if isinstance(token, bool) or not isinstance(token, int) or token < 0:
                    raise InvalidArgumentTypeError(
                        "ChatRequest.logit_bias: expected token ids (int >= 0) as keys, "
                        f"got {token!r}"
                    )
                check_number(
                    f"ChatRequest.logit_bias[{token}]", bias, minimum=-100.0, maximum=100.0
                )
        check_bool("ChatRequest.logprobs", self.logprobs, optional=True)
        check_int(
            "ChatRequest.top_logprobs", self.top_logprobs, minimum=0, maximum=20, optional=True
        )
        check_int("ChatRequest.seed", self.seed, minimum=-(2**63), maximum=2**64 - 1, optional=True)
        if self.reasoning_effort is not None and self.reasoning_effort not in _REASONING_EFFORTS:
            raise InvalidArgumentError(
                f"ChatRequest.reasoning_effort: expected one of {list(_REASONING_EFFORTS)}, "
                f"got {self.reasoning_effort!r}"
            )
        check_int(
            "ChatRequest.max_completion_tokens",
            self.max_completion_tokens,
            minimum=1,
            optional=True,
        )
        if self.extra_body is not None:
            if not isinstance(self.extra_body, Mapping):
                raise InvalidArgumentTypeError(
                    f"ChatRequest.extra_body: expected a dict, got {type(self.extra_body).__name__}"
                )
            for key in self.extra_body:
                if not isinstance(key, str):
                    raise InvalidArgumentTypeError(
                        f"ChatRequest.extra_body: expected str keys, got {key!r}"
                    )
                if key in _KNOWN_BODY_KEYS:
                    raise InvalidArgumentError(
                        "ChatRequest.extra_body: expected fields the client does not set "
                        f"itself, got the known field {key!r}; set it on the request (or the "
                        "client) instead"
                    )

    def to_json(self) -> dict[str, Any]:
        """Wire form: fields in declaration order, ``None`` values left out."""
        result: dict[str, Any] = {
            "model": self.model,
            "messages": [
                message.to_json(f"ChatRequest.messages[{i}]")
                for i, message in enumerate(self.messages)
            ],
        }
        if self.maximum_tokens is not None:
            result["maximum_tokens"] = self.maximum_tokens
        if self.temperature is not None:
            result["temperature"] = self.temperature
        if self.top_k is not None:
            result["top_k"] = self.top_k
        if self.top_p is not None:
            result["top_p"] = self.top_p
        if self.stream_options is not None:
            result["stream_options"] = _plain(self.stream_options)
        if self.steering_concepts is not None:
            result["steering_concepts"] = list(self.steering_concepts)
        if self.response_format:
            result["response_format"] = response_format_to_json(self.response_format)
        if self.tools is not None:
            from .tools import tool_to_json

            result["tools"] = [
                tool_to_json(tool, f"ChatRequest.tools[{i}]") for i, tool in enumerate(self.tools)
            ]
        if self.tool_choice is not None:
            choice = self.tool_choice
            result["tool_choice"] = dict(choice) if isinstance(choice, Mapping) else _plain(choice)
        if self.parallel_tool_calls is not None:
            result["parallel_tool_calls"] = self.parallel_tool_calls
        if self.stop is not None:
            result["stop"] = self.stop if isinstance(self.stop, str) else list(self.stop)
        if self.n is not None:
            result["n"] = self.n
        if self.frequency_penalty is not None:
            result["frequency_penalty"] = self.frequency_penalty
        if self.presence_penalty is not None:
            result["presence_penalty"] = self.presence_penalty
        if self.logit_bias is not None:
            # JSON has no integer keys: token ids go as strings, as the spec says
            result["logit_bias"] = {str(k): v for k, v in self.logit_bias.items()}
        if self.logprobs is not None:
            result["logprobs"] = self.logprobs
        if self.top_logprobs is not None:
            result["top_logprobs"] = self.top_logprobs
        if self.seed is not None:
            result["seed"] = self.seed
        if self.reasoning_effort is not None:
            result["reasoning_effort"] = self.reasoning_effort
        if self.max_completion_tokens is not None:
            result["max_completion_tokens"] = self.max_completion_tokens
        if self.extra_body:
            result.update(self.extra_body)
        return result


_REASONING_EFFORTS = ("low", "medium", "high")

# Body keys this client sets itself (request fields and the client's own); ``extra_body``
# may not override them silently.
_KNOWN_BODY_KEYS = frozenset(
    {
        "model",
        "messages",
        "maximum_tokens",
        "temperature",
        "top_k",
        "top_p",
        "stream_options",
        "steering_concepts",
        "response_format",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "stop",
        "n",
        "frequency_penalty",
        "presence_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "seed",
        "reasoning_effort",
        "max_completion_tokens",
        "hosting",
        "tags",
        "stream",
    }
)


@dataclass(frozen=True)
class ChatChoice:
    """One of the answers of a chat request (``n`` > 1 gives several)."""

    index: int
    message: TextMessage
    finish_reason: Optional[FinishReason]
    logprobs: Optional[list[TokenLogprob]] = None

    @staticmethod
    def from_json(json: Mapping[str, Any], position: int = 0) -> ChatChoice:
        """Parse one ``choices[i]`` of an answer."""
        index = json.get("index", position)
        if isinstance(index, bool) or not isinstance(index, int):
            raise APIResponseValidationError(f"choice index is not an int: {index!r:.100}")
        finish = json.get("finish_reason")
        return ChatChoice(
            index=index,
            message=TextMessage.from_json(json["message"]),
            finish_reason=None if finish is None else FinishReason.from_json(finish),
            logprobs=logprobs_from_json(json.get("logprobs")),
        )


@dataclass(frozen=True)
class ChatResponse:
    """The answer to a chat request.

    ``finish_reason`` and ``message`` (those of the first choice) as in the official client;
    ``usage``, ``id``, ``model`` and ``created`` are kept too (the official client dropped
    them), ``choices`` holds every choice (index, message, finish reason, log probabilities)
    and ``system_fingerprint`` the backend version when it is sent.
    """

    #: The request id the server sent with this answer (not a field: never compared).
    request_id: ClassVar[Optional[str]] = None

    finish_reason: FinishReason
    message: TextMessage
    usage: Optional[Usage] = None
    id: Optional[str] = None
    model: Optional[str] = None
    created: Optional[int] = field(default=None, compare=False)
    choices: list[ChatChoice] = field(default_factory=list, compare=False)
    system_fingerprint: Optional[str] = field(default=None, compare=False)

    @staticmethod
    def from_json(json: Mapping[str, Any]) -> ChatResponse:
        """Parse the wire form (``message`` and ``finish_reason`` from ``choices[0]``)."""
        raw = json["choices"]
        if not raw:
            raise APIResponseValidationError("chat response has no choices")
        choices = sorted(
            (ChatChoice.from_json(choice, i) for i, choice in enumerate(raw)),
            key=lambda c: c.index,
        )
        first = choices[0]
        if first.finish_reason is None:
            raise APIResponseValidationError("chat response choice has no finish_reason")
        usage = json.get("usage")
        fingerprint = json.get("system_fingerprint")
        return ChatResponse(
            finish_reason=first.finish_reason,
            message=first.message,
            usage=None if usage is None else Usage.from_json(usage),
            id=json.get("id"),
            model=json.get("model"),
            created=json.get("created"),
            choices=choices,
            system_fingerprint=fingerprint if isinstance(fingerprint, str) else None,
        )

    @property
    def logprobs(self) -> Optional[list[TokenLogprob]]:
        """The log probabilities of the first choice's tokens (requested with ``logprobs``)."""
        return self.choices[0].logprobs if self.choices else None

    @property
    def reasoning_content(self) -> Optional[str]:
        """The first choice's reasoning (``None`` when the model did not reason)."""
        return self.message.reasoning_content

    @property
    def content(self) -> str:
        """The answer's text (``""`` when the model only called tools)."""
        return self.message.content or ""

    @property
    def tool_calls(self) -> list[ToolCall]:
        """The tool calls of the answer (empty when there are none)."""
        return list(self.message.tool_calls or [])

    def parsed(self, model_class: type[_M]) -> _M:
        """Validate the answer's JSON content into a pydantic model (structured output).

        Raises :class:`StructuredOutputError` (``reason`` ``"length"``, ``"invalid_json"`` or
        ``"validation"``, raw ``text`` kept) when the answer cannot be the model.
        """
        from .structured import parse_structured

        return parse_structured(self.content, model_class, self.finish_reason)

    def json(self) -> Any:
        """The answer's content decoded as JSON (structured output without pydantic)."""
        try:
            return json.loads(self.content)
        except ValueError as err:
            raise APIResponseValidationError(
                f"the answer is not valid JSON: {err}", text=self.content
            ) from None


@dataclass(frozen=True)
class ChatStreamChunk:
    """A piece of a streamed answer: a content delta (the first one carries the role).

    ``index`` says which choice it belongs to (``n`` > 1); ``logprobs`` holds the log
    probabilities of its tokens when they were requested.
    """

    content: str
    role: Optional[Role] = None
    tool_calls: Optional[list[ToolCall]] = None
    index: int = 0
    logprobs: Optional[list[TokenLogprob]] = None

    @staticmethod
    def from_json(choice: Mapping[str, Any]) -> ChatStreamChunk:
        """Parse one ``choices[i]`` of a stream chunk."""
        delta = choice["delta"]
        role = delta.get("role")
        raw_calls = delta.get("tool_calls")
        return ChatStreamChunk(
            content=delta.get("content") or "",
            role=None if role is None else Role(role),
            tool_calls=None
            if raw_calls is None
            else [ToolCall.from_json(call) for call in raw_calls if "id" in call],
            index=choice.get("index") or 0,
            logprobs=logprobs_from_json(choice.get("logprobs")),
        )


@dataclass(frozen=True)
class ReasoningChunk:
    """A piece of a reasoning model's thinking in a stream (never part of the answer text).

    It comes from the delta's ``reasoning_content`` / ``reasoning`` field or from a leading
    ``<think>...</think>`` of the content; ``index`` says which choice it belongs to.
    """

    content: str
    index: int = 0


ChatStreamItem = Union[
    ChatStreamChunk, ReasoningChunk, ToolCall, Usage, FinishReason, ChoiceFinishReason
]


def stream_chat_item_from_json(
    chunk: Mapping[str, Any],
) -> Union[Usage, FinishReason, ChatStreamChunk]:
    """Classify one decoded stream chunk as the official client does (no tool assembly)."""
    usage = chunk.get("usage")
    if usage is not None:
        return Usage.from_json(usage)
    first = chunk["choices"][0]
    if first.get("finish_reason") is not None:
        return FinishReason.from_json(first["finish_reason"])
    return ChatStreamChunk.from_json(first)


async def process_chat_stream(
    stream: AsyncIterable[Mapping[str, Any]],
) -> AsyncIterator[ChatStreamItem]:
    """Turn decoded chat stream chunks into items, assembling tool calls by index.

    The chunks come without ``[DONE]``, so a source that ends before the finish chunk raises
    :class:`IncompleteStreamError` (after the items that did arrive), never ends short.
    """
    from ._streaming import ChatStreamState

    state = ChatStreamState(include_usage=False)
    async for chunk in stream:
        for item in state.feed(chunk):
            yield item
    state.check_complete()  # no finish chunk: IncompleteStreamError with .partial
    for item in state.done():
        yield item
