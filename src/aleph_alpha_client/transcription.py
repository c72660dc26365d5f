"""Transcription of audio files (``POST /transcribe``, a multipart upload)."""

from __future__ import annotations

import json
import mimetypes
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any, ClassVar, Optional, Union

from ._exceptions import APIResponseValidationError, InvalidArgumentError, InvalidArgumentTypeError
from ._multipart import FormPart

__all__ = ["AudioInput", "TranscriptionResponse", "TranscriptionSegment", "transcription_parts"]

#: What ``transcribe`` takes as audio: a file path, the bytes, or a binary file object.
AudioInput = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes]]


@dataclass(frozen=True)
class TranscriptionSegment:
    """A timed piece of a transcription (seconds from the start of the audio)."""

    start: float
    end: float
    text: str
    tokens: list[int] = field(default_factory=list)

    @staticmethod
    def from_json(json: Mapping[str, Any]) -> TranscriptionSegment:
        """Parse the wire form."""
        return TranscriptionSegment(
            start=float(json["start"]),
            end=float(json["end"]),
            text=json["text"],
            tokens=[int(t) for t in json.get("tokens") or ()],
        )


@dataclass(frozen=True)
class TranscriptionResponse:
    """A transcription: the whole text, its timed segments and the (detected) language."""

    #: The request id the server sent with this answer (not a field: never compared).
    request_id: ClassVar[Optional[str]] = None

    transcription: str
    segments: list[TranscriptionSegment] = field(default_factory=list)
    language: Optional[str] = None
    num_tokens_prompt_total: Optional[int] = None
    num_tokens_generated: Optional[int] = None

    @staticmethod
    def from_json(json: Mapping[str, Any]) -> TranscriptionResponse:
        """Parse the wire form."""
        text = json["transcription"]
        if not isinstance(text, str):
            raise APIResponseValidationError(f"transcription is not a string: {text!r:.100}")
        return TranscriptionResponse(
            transcription=text,
            segments=[TranscriptionSegment.from_json(s) for s in json.get("segments") or ()],
            language=json.get("language"),
            num_tokens_prompt_total=json.get("num_tokens_prompt_total"),
            num_tokens_generated=json.get("num_tokens_generated"),
        )


def _read_audio(audio: Any) -> tuple[bytes, str]:
    """The audio's bytes and a file name for the upload."""
    if isinstance(audio, (bytes, bytearray, memoryview)):
        data = bytes(audio)
        name = "audio"
    elif isinstance(audio, (str, os.PathLike)):
        path = os.fspath(audio)
        try:
            with open(path, "rb") as file:
                data = file.read()
        except OSError as err:
            raise InvalidArgumentError(
                f"audio: cannot read {path!r}: {err.strerror or err}"
            ) from None
        name = os.path.basename(path) or "audio"
    elif callable(getattr(audio, "read", None)):
        data = audio.read()
        if isinstance(data, str):
            raise InvalidArgumentTypeError(
                "audio: expected a binary file object, got one open in text mode (open it "
                "with 'rb')"
            )
        if not isinstance(data, (bytes, bytearray)):
            raise InvalidArgumentTypeError(
                f"audio: expected bytes from the file object's read(), got {type(data).__name__}"
            )
        data = bytes(data)
        raw_name = getattr(audio, "name", None)
        name = os.path.basename(raw_name) if isinstance(raw_name, str) and raw_name else "audio"
    else:
        raise InvalidArgumentTypeError(
            "audio: expected a file path, bytes or a binary file object, "
            f"got {type(audio).__name__}"
        )
    if not data:
        raise InvalidArgumentError("audio: expected non-empty audio, got 0 bytes")
    return data, name


def transcription_parts(audio: Any, model: str, language: Optional[str]) -> list[FormPart]:
    """Check the arguments and build the form: ``audiofile`` and ``metadata`` (JSON)."""
    if not isinstance(model, str) or not model.strip():
        raise InvalidArgumentError(f"model: expected a transcription model name, got {model!r}")
    if language is not None:
        if not isinstance(language, str):
            raise InvalidArgumentTypeError(
                f"language: expected an ISO 639-1 code like 'de' or None, got {language!r}"
            )
        if not (2 <= len(language) <= 3 and language.isalpha() and language.isascii()):
            raise InvalidArgumentError(
                f"language: expected an ISO 639-1 code like 'de' or 'en', got {language!r}"
            )
    data, name = _read_audio(audio)
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    metadata: dict[str, Any] = {"model": model}
    if language is not None:
        metadata["language"] = language
    return [
        FormPart("audiofile", data, filename=name, content_type=content_type),
        FormPart(
            "metadata",
            json.dumps(metadata).encode("utf-8"),
            content_type="application/json",
        ),
    ]
