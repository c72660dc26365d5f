"""A ``multipart/form-data`` body encoder (RFC 7578). Pure: parts in, bytes out."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

__all__ = ["FormPart", "encode_multipart"]


@dataclass(frozen=True)
class FormPart:
    """One form field: a name, its bytes, and for a file its file name and content type."""

    name: str
    data: bytes
    filename: Optional[str] = None
    content_type: Optional[str] = None


def _quote(value: str) -> str:
    # RFC 7578 4.2: quotes, backslashes and line breaks are percent-encoded in names.
    return value.replace("\\", "%5C").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def encode_multipart(
    parts: Sequence[FormPart], boundary: Optional[str] = None
) -> tuple[bytes, str]:
    """The body and its ``Content-Type`` header value.

    The boundary is derived from the content (deterministic bodies, so retries and tests see
    the same bytes) and is checked not to occur in any part.
    """
    if boundary is None:
        digest = hashlib.sha256()
        for part in parts:
            digest.update(part.name.encode("utf-8") + b"\0" + part.data)
        boundary = "aleph-alpha-" + digest.hexdigest()[:32]
    marker = b"--" + boundary.encode("ascii")
    for part in parts:
        if marker in part.data:
            raise ValueError("multipart boundary occurs in a part; pass another boundary")
    chunks: list[bytes] = []
    for part in parts:
        disposition = f'form-data; name="{_quote(part.name)}"'
        if part.filename is not None:
            disposition += f'; filename="{_quote(part.filename)}"'
        head = [f"Content-Disposition: {disposition}"]
        if part.content_type is not None:
            head.append(f"Content-Type: {part.content_type}")
        chunks.append(marker + b"\r\n" + "\r\n".join(head).encode("utf-8") + b"\r\n\r\n")
        chunks.append(part.data + b"\r\n")
    chunks.append(marker + b"--\r\n")
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"
