"""Prompts and their items: text, token ids and images, with attention controls."""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union
from urllib.parse import urlparse

from ._exceptions import InvalidArgumentTypeError, MissingDependencyError
from .utils import DEFAULT_DOWNLOAD_TIMEOUT, _download

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

__all__ = [
    "ControlTokenOverlap",
    "Cropping",
    "Image",
    "ImageControl",
    "Prompt",
    "PromptItem",
    "Text",
    "TextControl",
    "TokenControl",
    "Tokens",
]


class ControlTokenOverlap(Enum):
    """How a control that only partly covers a token applies to it.

    ``Partial``: the factor is scaled by the covered share of the token.
    ``Complete``: the full factor applies to every token the control touches.
    """

    Partial = "partial"
    Complete = "complete"

    def to_json(self) -> str:
        """The wire value."""
        return self.value


def _overlap_from_json(value: Any) -> ControlTokenOverlap | None:
    if value is None:
        return None
    return ControlTokenOverlap(value)


@dataclass(frozen=True)
class TokenControl:
    """Scale the attention to the token at position ``pos`` of a :class:`Tokens` item by
    ``factor``. ``pos`` is sent as ``"index"``."""

    pos: int
    factor: float

    def to_json(self) -> dict[str, Any]:
        """The wire form ``{"index": pos, "factor": factor}``."""
        return {"index": self.pos, "factor": self.factor}

    @classmethod
    def from_json(cls, json: Mapping[str, Any]) -> TokenControl:
        """Parse the wire form."""
        return cls(pos=json["index"], factor=json["factor"])


@dataclass(frozen=True)
class Tokens:
    """A prompt item made of token ids, with optional :class:`TokenControl` s."""

    tokens: Sequence[int]
    controls: Sequence[TokenControl]

    def to_json(self) -> dict[str, Any]:
        """The wire form ``{"type": "token_ids", "data": [...], "controls": [...]}``."""
        return {
            "type": "token_ids",
            "data": list(self.tokens),
            "controls": [c.to_json() for c in self.controls],
        }

    @classmethod
    def from_json(cls, json: Mapping[str, Any]) -> Tokens:
        """Parse the wire form; controls that parse are kept."""
        return cls(list(json["data"]), _parse_controls(json, TokenControl.from_json))

    @staticmethod
    def from_token_ids(token_ids: Sequence[int]) -> Tokens:
        """A :class:`Tokens` item without controls."""
        return Tokens(token_ids, [])


@dataclass(frozen=True)
class TextControl:
    """Scale the attention to ``length`` characters of a :class:`Text` item starting at
    character ``start`` by ``factor``."""

    start: int
    length: int
    factor: float
    token_overlap: ControlTokenOverlap | None = None

    def to_json(self) -> dict[str, Any]:
        """The wire form; ``token_overlap`` only when it is set."""
        out: dict[str, Any] = {"start": self.start, "length": self.length, "factor": self.factor}
        if self.token_overlap is not None:
            out["token_overlap"] = self.token_overlap.to_json()
        return out

    @classmethod
    def from_json(cls, json: Mapping[str, Any]) -> TextControl:
        """Parse the wire form."""
        return cls(
            start=json["start"],
            length=json["length"],
            factor=json["factor"],
            token_overlap=_overlap_from_json(json.get("token_overlap")),
        )


@dataclass(frozen=True)
class Text:
    """A text prompt item with optional :class:`TextControl` s."""

    text: str
    controls: Sequence[TextControl]

    def to_json(self) -> dict[str, Any]:
        """The wire form ``{"type": "text", "data": text, "controls": [...]}``."""
        return {
            "type": "text",
            "data": self.text,
            "controls": [c.to_json() for c in self.controls],
        }

    @classmethod
    def from_json(cls, json: Mapping[str, Any]) -> Text:
        """Parse the wire form; controls that parse are kept."""
        return cls(json["data"], _parse_controls(json, TextControl.from_json))

    @staticmethod
    def from_text(text: str) -> Text:
        """A :class:`Text` item without controls."""
        return Text(text, [])


@dataclass(frozen=True)
class Cropping:
    """A square crop of an image: upper left corner and edge length, in pixels."""

    upper_left_x: int
    upper_left_y: int
    size: int


@dataclass(frozen=True)
class ImageControl:
    """Scale the attention to a rectangle of an image by ``factor``.

    ``left``, ``top``, ``width`` and ``height`` are fractions (0..1) of the image (of the
    cropped part when the image is cropped).
    """

    left: float
    top: float
    width: float
    height: float
    factor: float
    token_overlap: ControlTokenOverlap | None = None

    def to_json(self) -> dict[str, Any]:
        """The wire form ``{"rect": {...}, "factor": f}`` (+ ``token_overlap`` when set)."""
        out: dict[str, Any] = {
            "rect": {
                "left": self.left,
                "top": self.top,
                "width": self.width,
                "height": self.height,
            },
            "factor": self.factor,
        }
        if self.token_overlap is not None:
            out["token_overlap"] = self.token_overlap.to_json()
        return out

    @classmethod
    def from_json(cls, json: Mapping[str, Any]) -> ImageControl:
        """Parse the wire form."""
        rect = json["rect"]
        return cls(
            left=rect["left"],
            top=rect["top"],
            width=rect["width"],
            height=rect["height"],
            factor=json["factor"],
            token_overlap=_overlap_from_json(json.get("token_overlap")),
        )


# Magic numbers of the image formats the API accepts, checked in this order.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)


def _sniff_mime_type(head: bytes) -> str | None:
    for magic, mime in _MAGIC:
        if head.startswith(magic):
            return mime
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def _is_url(text: str) -> bool:
    return urlparse(text).scheme in ("http", "https")


def _pil_image_class() -> Any:
    try:
        from PIL import Image as PILImageModule
    except ImportError as err:
        raise MissingDependencyError("Pillow", "pillow", "Working with PIL images") from err
    return PILImageModule.Image


@dataclass(frozen=True)
class Image:
    """An image prompt item: the base64 of the original file bytes, an optional crop and
    optional :class:`ImageControl` s.

    Without a cropping the API center-crops the image to a square.

    Examples:
        >>> image = Image.from_file("cat.jpg")
        >>> image = Image.from_url("https://example.com/cat.png", timeout=10)
    """

    base_64: str
    cropping: Cropping | None
    controls: Sequence[ImageControl]

    @classmethod
    def from_image_source(
        cls,
        image_source: str | Path | bytes | PILImage,
        controls: Sequence[ImageControl] | None = None,
    ) -> Image:
        """Build an image from a path, an ``http(s)`` URL, raw bytes or a PIL image.

        Unlike the official client a failing download raises its error instead of being
        retried as a file path.
        """
        if isinstance(image_source, Path):
            return cls.from_file(path=image_source, controls=controls)
        if isinstance(image_source, str):
            if _is_url(image_source):
                return cls.from_url(url=image_source, controls=controls)
            return cls.from_file(path=image_source, controls=controls)
        if isinstance(image_source, (bytes, bytearray, memoryview)):
            return cls.from_bytes(bytes(image_source), controls=controls)
        try:
            pil_class = _pil_image_class()
        except MissingDependencyError:
            pil_class = None
        if pil_class is not None and isinstance(image_source, pil_class):
            return cls.from_image(image_source, controls=controls)
        raise InvalidArgumentTypeError(
            "image_source: expected a str (path or http(s) URL), a pathlib.Path, bytes or a "
            f"PIL image, got {type(image_source).__name__}"
        )

    @classmethod
    def from_bytes(
        cls,
        bytes: bytes,
        cropping: Cropping | None = None,
        controls: Sequence[ImageControl] | None = None,
    ) -> Image:
        """Wrap the raw bytes of an image file (PNG, JPEG, ...) without re-encoding them."""
        return cls(base64.b64encode(bytes).decode("ascii"), cropping, controls or [])

    @classmethod
    def from_url(
        cls,
        url: str,
        controls: Sequence[ImageControl] | None = None,
        timeout: float | None = DEFAULT_DOWNLOAD_TIMEOUT,
    ) -> Image:
        """Download an image; the API center-crops it to a square.

        Raises a typed status error naming the URL for a status >= 400, and
        ``APITimeoutError`` after ``timeout`` seconds without progress.
        """
        return cls.from_bytes(_download(url, timeout), cropping=None, controls=controls)

    @classmethod
    def from_url_with_cropping(
        cls,
        url: str,
        upper_left_x: int,
        upper_left_y: int,
        crop_size: int,
        controls: Sequence[ImageControl] | None = None,
        timeout: float | None = DEFAULT_DOWNLOAD_TIMEOUT,
    ) -> Image:
        """Download an image and crop the square at (``upper_left_x``, ``upper_left_y``)
        with edge ``crop_size``."""
        cropping = Cropping(upper_left_x=upper_left_x, upper_left_y=upper_left_y, size=crop_size)
        return cls.from_bytes(_download(url, timeout), cropping=cropping, controls=controls)

    @classmethod
    def from_file(cls, path: str | Path, controls: Sequence[ImageControl] | None = None) -> Image:
        """Read an image file; the API center-crops it to a square."""
        with open(path, "rb") as f:
            data = f.read()
        return cls.from_bytes(data, None, controls)

    @classmethod
    def from_file_with_cropping(
        cls,
        path: str | Path,
        upper_left_x: int,
        upper_left_y: int,
        crop_size: int,
        controls: Sequence[ImageControl] | None = None,
    ) -> Image:
        """Read an image file and crop the square at (``upper_left_x``, ``upper_left_y``)
        with edge ``crop_size``."""
        cropping = Cropping(upper_left_x=upper_left_x, upper_left_y=upper_left_y, size=crop_size)
        with open(path, "rb") as f:
            data = f.read()
        return cls.from_bytes(data, cropping=cropping, controls=controls)

    @classmethod
    def from_image(cls, image: PILImage, controls: Sequence[ImageControl] | None = None) -> Image:
        """Encode a PIL image as PNG (CMYK and other modes PNG cannot hold become RGB)."""
        buffer = io.BytesIO()
        try:
            image.save(buffer, format="PNG")
        except OSError:  # a mode PNG cannot hold, e.g. CMYK
            buffer = io.BytesIO()
            image.convert("RGBA" if "A" in image.getbands() else "RGB").save(buffer, format="PNG")
        return cls.from_bytes(buffer.getvalue(), cropping=None, controls=controls)

    def to_json(self) -> dict[str, Any]:
        """The wire form; with a cropping the keys are ``type, data, x, y, size, controls``."""
        controls = [c.to_json() for c in self.controls]
        cropping = self.cropping
        if cropping is None:
            return {"type": "image", "data": self.base_64, "controls": controls}
        return {
            "type": "image",
            "data": self.base_64,
            "x": cropping.upper_left_x,
            "y": cropping.upper_left_y,
            "size": cropping.size,
            "controls": controls,
        }

    @classmethod
    def from_json(cls, json: Mapping[str, Any]) -> Image:
        """Parse the wire form, keeping the cropping (when complete) and parsable controls."""
        x, y, size = json.get("x"), json.get("y"), json.get("size")
        cropping = None
        if isinstance(x, int) and isinstance(y, int) and isinstance(size, int):
            cropping = Cropping(upper_left_x=x, upper_left_y=y, size=size)
        return cls(json["data"], cropping, _parse_controls(json, ImageControl.from_json))

    def _decoded(self) -> bytes:
        return base64.b64decode(self.base_64)

    @property
    def mime_type(self) -> str:
        """The MIME type sniffed from the image bytes (png, jpeg, gif, webp or bmp);
        ``"image/png"`` when unknown."""
        head = self.base_64[:16].strip()
        try:
            raw = base64.b64decode(head + "=" * (-len(head) % 4))
        except (binascii.Error, ValueError):
            return "image/png"
        return _sniff_mime_type(raw) or "image/png"

    def to_data_uri(self) -> str:
        """``data:<mime>;base64,<data>`` of the original bytes (the cropping is not applied)."""
        return f"data:{self.mime_type};base64,{self.base_64}"

    def to_image(self) -> PILImage:
        """Decode into a PIL image (needs Pillow)."""
        try:
            from PIL import Image as PILImageModule
        except ImportError as err:
            raise MissingDependencyError("Pillow", "pillow", "Image.to_image") from err
        return PILImageModule.open(io.BytesIO(self._decoded()))

    def dimensions(self) -> tuple[int, int]:
        """``(width, height)`` of the image in pixels (needs Pillow)."""
        image = self.to_image()
        return (image.width, image.height)


PromptItem = Union[Text, Tokens, Image]
"""One item of a :class:`Prompt`."""


def _parse_controls(json: Mapping[str, Any], parse: Any) -> list[Any]:
    raw = json.get("controls")
    if not raw or not isinstance(raw, list):
        return []
    out = []
    for control in raw:
        try:
            out.append(parse(control))
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return out


def _item_to_json(item: Any) -> Mapping[str, Any]:
    cls = type(item)
    if cls is Text or cls is Tokens or cls is Image:
        return item.to_json()  # type: ignore[no-any-return]
    to_json = getattr(item, "to_json", None)
    if to_json is not None:
        return to_json()  # type: ignore[no-any-return]
    # Backwards compatibility: a bare string or a bare list of token ids.
    if isinstance(item, str):
        return {"type": "text", "data": item}
    if isinstance(item, list):
        return {"type": "token_ids", "data": item}
    raise InvalidArgumentTypeError(
        "prompt.items: expected Text, Tokens or Image (or a str / list of token ids), "
        f"got {cls.__name__}"
    )


_ITEM_PARSERS: dict[str, Callable[[Mapping[str, Any]], PromptItem]] = {
    "text": Text.from_json,
    "image": Image.from_json,
    "token_ids": Tokens.from_json,
}


@dataclass(init=False)
class Prompt:
    """A prompt: a sequence of :class:`Text`, :class:`Tokens` and :class:`Image` items.

    A ``str`` becomes a single :class:`Text` item. ``Prompt`` is mutable (as in the
    official client).

    Examples:
        >>> prompt = Prompt.from_text("Provide a short description of AI:")
        >>> prompt = Prompt([Image.from_file("cat.png"), Text.from_text("A picture of")])
    """

    items: Sequence[PromptItem]

    def __init__(self, items: str | Sequence[PromptItem]) -> None:
        if isinstance(items, str):
            items = [Text(items, [])]
        self.items = items

    @staticmethod
    def from_text(text: str, controls: Sequence[TextControl] | None = None) -> Prompt:
        """A prompt of one text item."""
        return Prompt([Text(text, controls or [])])

    @staticmethod
    def from_image(image: Image) -> Prompt:
        """A prompt of one image item."""
        return Prompt([image])

    @staticmethod
    def from_tokens(
        tokens: Sequence[int], controls: Sequence[TokenControl] | None = None
    ) -> Prompt:
        """A prompt of one token-id item.

        Examples:
            >>> prompt = Prompt.from_tokens([1, 2, 3])
        """
        return Prompt([Tokens(tokens, controls or [])])

    def to_json(self) -> list[Mapping[str, Any]]:
        """The wire form: a list of item objects."""
        return [_item_to_json(item) for item in self.items]

    @classmethod
    def from_json(cls, items_json: Sequence[Mapping[str, Any]]) -> Prompt:
        """Parse the wire form.

        Items of unknown type (and malformed items) are skipped, so a newer API does not
        break this client; controls and croppings that parse are kept.
        """
        items: list[PromptItem] = []
        for item in items_json:
            if not isinstance(item, Mapping):
                continue
            parse = _ITEM_PARSERS.get(item.get("type", ""))
            if parse is None:
                continue
            try:
                items.append(parse(item))
            except (KeyError, TypeError, ValueError):
                continue
        return cls(items)


def _check_prompt(name: str, value: object) -> None:
    """Raise unless ``value`` is a :class:`Prompt` whose items can be serialised."""
    if not isinstance(value, Prompt):
        hint = " (wrap text with Prompt.from_text(...))" if isinstance(value, str) else ""
        raise InvalidArgumentTypeError(
            f"{name}: expected a Prompt, got {type(value).__name__}{hint}"
        )
    items = value.items
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise InvalidArgumentTypeError(
            f"{name}.items: expected a sequence of prompt items, got {type(items).__name__}"
        )
    for i, item in enumerate(items):
        if not isinstance(item, (Text, Tokens, Image, str, list)):
            raise InvalidArgumentTypeError(
                f"{name}.items[{i}]: expected Text, Tokens or Image, got {type(item).__name__}"
            )
