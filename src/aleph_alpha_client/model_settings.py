"""Model settings: what each model can do (``GET /model-settings``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from ._exceptions import APIResponseValidationError

__all__ = ["ModelSettings", "describe_capabilities"]


def _opt(json: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = json.get(key)
    if value is None:
        return None
    if isinstance(value, bool) and kind is not bool:
        raise APIResponseValidationError(f"model setting {key} has the wrong type: {value!r}")
    if not isinstance(value, kind):
        raise APIResponseValidationError(f"model setting {key} has the wrong type: {value!r:.100}")
    return value


def _int(json: Mapping[str, Any], key: str) -> Optional[int]:
    value = _opt(json, key, (int, float))
    return None if value is None else int(value)


@dataclass(frozen=True)
class ModelSettings:
    """The settings of one model, as ``GET /model-settings`` tells them.

    ``status`` is ``"available"`` or ``"unavailable"``; ``chat`` whether the chat endpoint
    serves it; ``multimodal`` whether it takes images; ``completion_type`` ``"none"`` or
    ``"full"``; ``embedding_type`` ``"none"``, ``"raw"``, ``"semantic"`` or ``"instructable"``.
    ``raw`` keeps the whole object (fields this client does not know yet).
    """

    name: str
    status: Optional[str] = None
    description: Optional[str] = None
    chat: bool = False
    multimodal: bool = False
    max_context_size: Optional[int] = None
    maximum_completion_tokens: Optional[int] = None
    completion_type: Optional[str] = None
    embedding_type: Optional[str] = None
    semantic_embedding: bool = False
    aligned: bool = False
    prompt_template: Optional[str] = None
    model_card: Optional[str] = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @staticmethod
    def from_json(json: Mapping[str, Any]) -> ModelSettings:
        """Parse one entry of the ``model-settings`` list."""
        if not isinstance(json, Mapping):
            raise APIResponseValidationError(f"a model setting is not an object: {json!r:.100}")
        name = json.get("name")
        if not isinstance(name, str):
            raise APIResponseValidationError(f"a model setting has no name: {json!r:.100}")
        return ModelSettings(
            name=name,
            status=_opt(json, "status", str),
            description=_opt(json, "description", str),
            chat=bool(_opt(json, "chat", bool)),
            multimodal=bool(_opt(json, "multimodal", bool)),
            max_context_size=_int(json, "max_context_size"),
            maximum_completion_tokens=_int(json, "maximum_completion_tokens"),
            completion_type=_opt(json, "completion_type", str),
            embedding_type=_opt(json, "embedding_type", str),
            semantic_embedding=bool(_opt(json, "semantic_embedding", bool)),
            aligned=bool(_opt(json, "aligned", bool)),
            prompt_template=_opt(json, "prompt_template", str),
            model_card=_opt(json, "model_card", str),
            raw=dict(json),
        )

    @staticmethod
    def list_from_json(json: Any) -> list[ModelSettings]:
        """Parse the whole ``model-settings`` answer (a JSON list)."""
        if not isinstance(json, list):
            raise APIResponseValidationError(
                f"model-settings: expected a JSON list, got {type(json).__name__}"
            )
        return [ModelSettings.from_json(item) for item in json]

    def abilities(self) -> list[str]:
        """What the model can do, as short words: chat, image, complete, embed:<type>."""
        words: list[str] = []
        if self.chat:
            words.append("chat")
        if self.multimodal:
            words.append("image")
        if self.completion_type == "full":
            words.append("complete")
        if self.embedding_type and self.embedding_type != "none":
            words.append(f"embed:{self.embedding_type}")
        elif self.semantic_embedding:
            words.append("embed:semantic")
        return words

    def describe(self) -> str:
        """One line: the abilities, context size and status of the model."""
        abilities = ", ".join(self.abilities()) or "no known abilities"
        parts = [f"model {self.name!r} can: {abilities}"]
        if not self.chat:
            parts.append("not chat")
        if not self.multimodal:
            parts.append("no images")
        if self.max_context_size is not None:
            parts.append(f"context {self.max_context_size} tokens")
        if self.status and self.status != "available":
            parts.append(f"status {self.status}")
        return "; ".join(parts)


def describe_capabilities(error: BaseException, settings: Optional[ModelSettings]) -> None:
    """Add what the model can do to a ``MISSING_CAPABILITY`` error (known settings only).

    The server's error stays as it is (``args``, ``code``, ``body``); its message gains the
    model's abilities and ``error.model_settings`` holds the settings.
    """
    if settings is None or getattr(error, "code", None) != "MISSING_CAPABILITY":
        return
    if getattr(error, "model_settings", None) is not None:
        return
    message = getattr(error, "message", None) or ""
    error.message = f"{message} ({settings.describe()})" if message else settings.describe()  # type: ignore[attr-defined]
    error.model_settings = settings  # type: ignore[attr-defined]
