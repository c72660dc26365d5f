"""Transcription: ``POST transcribe`` (multipart ``audiofile`` + JSON ``metadata``)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from .. import tokenizer
from .common import Response, _APIError, _bad, _Context, _header, json_response

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.I)
_NAME = re.compile(r'\bname="([^"]*)"', re.I)
#: Bytes of audio per second the fake transcription assumes (16 kHz, 16 bit, mono).
_BYTES_PER_SECOND = 32000


def parse_multipart(body: bytes, content_type: str) -> dict[str, bytes]:
    """The fields of a ``multipart/form-data`` body by name (the last one wins)."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise _bad("the body must be multipart/form-data with `audiofile` and `metadata`")
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise _bad("multipart/form-data without a boundary")
    marker = b"--" + match.group(1).encode("latin-1")
    fields: dict[str, bytes] = {}
    pieces = body.split(marker)
    if len(pieces) < 3 or not pieces[-1].startswith(b"--"):
        raise _bad("the multipart body is not terminated by its closing boundary")
    for piece in pieces[1:-1]:
        if not piece.startswith(b"\r\n") or not piece.endswith(b"\r\n"):
            raise _bad("a multipart part is not framed by CRLF")
        head, sep, data = piece[2:-2].partition(b"\r\n\r\n")
        if not sep:
            raise _bad("a multipart part has no header block")
        name = _NAME.search(head.decode("utf-8", "replace"))
        if name is None:
            raise _bad("a multipart part has no name")
        fields[name.group(1)] = data
    return fields


def _transcription_of(audio: bytes) -> str:
    try:
        text = audio.decode("ascii")
    except UnicodeDecodeError:
        text = ""
    if text and text.isprintable():
        return " ".join(text.split())  # "audio" that is text is read out as it is
    digest = hashlib.sha256(audio).hexdigest()[:8]
    return (
        f"This is the offline emulator's transcription of {len(audio)} bytes of audio. "
        f"Its fingerprint is {digest}."
    )


def _segments(text: str, duration: float) -> list[dict[str, Any]]:
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if s] or [text]
    total = sum(len(s) for s in sentences) or 1
    segments: list[dict[str, Any]] = []
    start = 0.0
    for sentence in sentences:
        end = round(start + duration * len(sentence) / total, 2)
        segments.append(
            {
                "start": start,
                "end": end,
                "text": sentence,
                "tokens": tokenizer.encode(sentence),
            }
        )
        start = end
    return segments


def transcribe(headers: Mapping[str, str], body: bytes, ctx: _Context) -> Response:
    """Answer a transcription upload deterministically (the same audio, the same text)."""
    fields = parse_multipart(body, _header(headers, "Content-Type") or "")
    if "audiofile" not in fields:
        raise _bad("missing multipart field `audiofile`")
    if "metadata" not in fields:
        raise _bad("missing multipart field `metadata`")
    try:
        metadata = json.loads(fields["metadata"])
    except (ValueError, UnicodeDecodeError):
        raise _APIError(400, "field `metadata` is not valid JSON", "INVALID_JSON") from None
    if not isinstance(metadata, dict):
        raise _bad("field `metadata` must be a JSON object")
    ctx.model(metadata, "transcribe", what="transcription")
    language = metadata.get("language")
    if language is not None and (not isinstance(language, str) or not language.isalpha()):
        raise _bad("field `metadata.language` must be an ISO 639-1 code like 'de'")
    audio = fields["audiofile"]
    if not audio:
        raise _bad("field `audiofile` is empty")
    text = _transcription_of(audio)
    duration = max(1.0, round(len(audio) / _BYTES_PER_SECOND, 2))
    segments = _segments(text, duration)
    return json_response(
        200,
        {
            "transcription": text,
            "segments": segments,
            "language": language or "en",
            "num_tokens_prompt_total": 0,
            "num_tokens_generated": sum(len(s["tokens"]) for s in segments),
        },
    )
