"""``Document``: a docx file, a prompt or a text, in the API's document format.

No endpoint uses it any more (it belonged to the removed Q&A and summarization endpoints);
it is kept so that code importing it keeps working.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Union

from ._exceptions import InvalidArgumentError
from .prompt import Image, Prompt, Text, Tokens, _item_to_json

__all__ = ["Document"]


@dataclass
class Document:
    """A document: a base64 docx file, a sequence of prompt items, or a text.

    Use the constructors :meth:`from_docx_bytes`, :meth:`from_docx_file`,
    :meth:`from_prompt` and :meth:`from_text`.
    """

    docx: str | None = None
    prompt: Sequence[Union[str, Text, Image, Tokens]] | None = None
    text: str | None = None

    @classmethod
    def from_docx_bytes(cls, bytes: bytes) -> Document:
        """A document from the bytes of a docx file."""
        return cls(docx=base64.b64encode(bytes).decode("ascii"))

    @classmethod
    def from_docx_file(cls, path: str | os.PathLike[str]) -> Document:
        """A document from a docx file on disk."""
        with open(path, "rb") as f:
            return cls.from_docx_bytes(f.read())

    @classmethod
    def from_prompt(cls, prompt: Prompt | Sequence[Union[str, Image]]) -> Document:
        """A document from a :class:`Prompt` or a sequence of strings and images."""
        if isinstance(prompt, Prompt):
            return cls(prompt=prompt.items)
        return cls(prompt=prompt)

    @classmethod
    def from_text(cls, text: str) -> Document:
        """A document from a single text."""
        return cls(text=text)

    def _to_serializable_document(self) -> dict[str, Any]:
        """``{"docx": b64}``, ``{"prompt": [items]}`` or ``{"text": text}``."""
        if self.docx is not None:
            return {"docx": self.docx}
        if self.prompt is not None:
            return {
                "prompt": [
                    Text.from_text(item).to_json() if isinstance(item, str) else _item_to_json(item)
                    for item in self.prompt
                ]
            }
        if self.text is not None:
            return {"text": self.text}
        raise InvalidArgumentError(
            "Document: expected one of docx, prompt or text, got none of them"
        )
