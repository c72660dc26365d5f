"""Prompt items, Image loading (files, bytes, PIL, loopback URLs), utils, PromptTemplate and
Document."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image as PILImageModule

from aleph_alpha_client._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    NotFoundError,
    PermissionDeniedError,
)
from aleph_alpha_client.document import Document
from aleph_alpha_client.prompt import (
    ControlTokenOverlap,
    Cropping,
    Image,
    ImageControl,
    Prompt,
    Text,
    TextControl,
    TokenControl,
    Tokens,
)
from aleph_alpha_client.prompt_template import PromptTemplate
from aleph_alpha_client.utils import load_base64_from_file, load_base64_from_url


def _encode(fmt: str, mode: str = "RGB", size: tuple[int, int] = (7, 5)) -> bytes:
    buffer = io.BytesIO()
    PILImageModule.new(mode, size, color=(200, 30, 40) if mode == "RGB" else None).save(
        buffer, format=fmt
    )
    return buffer.getvalue()


@pytest.fixture(scope="module")
def jpeg_bytes() -> bytes:
    return _encode("JPEG", size=(40, 30))


# --------------------------------------------------------------------------- items


def test_text_item_with_controls_serialises_in_wire_order() -> None:
    text = Text(
        "Hello, World!",
        [TextControl(1, 5, 0.5), TextControl(1, 5, 0.5, ControlTokenOverlap.Complete)],
    )
    assert json.dumps(text.to_json()) == (
        '{"type": "text", "data": "Hello, World!", "controls": [{"start": 1, "length": 5, '
        '"factor": 0.5}, {"start": 1, "length": 5, "factor": 0.5, "token_overlap": "complete"}]}'
    )


def test_token_control_pos_is_sent_as_index() -> None:
    tokens = Tokens([1, 2, 3], [TokenControl(pos=2, factor=0.25)])
    assert tokens.to_json() == {
        "type": "token_ids",
        "data": [1, 2, 3],
        "controls": [{"index": 2, "factor": 0.25}],
    }
    assert Tokens.from_token_ids([4]).controls == []


def test_image_with_cropping_uses_official_key_order() -> None:
    image = Image("QUJD", Cropping(300, 0, 600), [ImageControl(0.5, 0.0, 0.25, 1.0, 0.0)])
    assert json.dumps(image.to_json()) == (
        '{"type": "image", "data": "QUJD", "x": 300, "y": 0, "size": 600, "controls": '
        '[{"rect": {"left": 0.5, "top": 0.0, "width": 0.25, "height": 1.0}, "factor": 0.0}]}'
    )
    control = ImageControl(0, 0, 1, 1, 2.0, ControlTokenOverlap.Partial)
    assert control.to_json()["token_overlap"] == "partial"


def test_image_without_cropping() -> None:
    assert Image("QUJD", None, []).to_json() == {"type": "image", "data": "QUJD", "controls": []}


def test_prompt_from_str_and_constructors() -> None:
    assert Prompt("hi") == Prompt([Text("hi", [])])
    assert Prompt.from_text("hi", [TextControl(0, 1, 2.0)]).items == [
        Text("hi", [TextControl(0, 1, 2.0)])
    ]
    assert Prompt.from_tokens([1, 2]).to_json() == [
        {"type": "token_ids", "data": [1, 2], "controls": []}
    ]
    image = Image("QUJD", None, [])
    assert Prompt.from_image(image).items == [image]
    # compat users read the text like this (OpenLLMetry)
    assert Prompt.from_text("abc").to_json()[0]["data"] == "abc"


def test_prompt_is_mutable_like_the_official_one() -> None:
    prompt = Prompt("a")
    prompt.items = [Text.from_text("b")]
    assert prompt.to_json()[0]["data"] == "b"


def test_bare_str_and_list_items_are_backwards_compatible() -> None:
    prompt = Prompt(["plain", [1, 2]])  # type: ignore[list-item]
    assert prompt.to_json() == [
        {"type": "text", "data": "plain"},
        {"type": "token_ids", "data": [1, 2]},
    ]


def test_unknown_prompt_item_raises_typed_error() -> None:
    with pytest.raises(InvalidArgumentTypeError, match=r"prompt.items: expected .* got int"):
        Prompt([42]).to_json()  # type: ignore[list-item]


def test_prompt_from_json_keeps_controls_and_cropping_and_skips_unknown_items() -> None:
    wire = [
        {
            "type": "text",
            "data": "Hello",
            "add_prefix_space": True,
            "controls": [
                {"start": 0, "length": 2, "factor": 3.0, "token_overlap": "complete"},
                {"start": 0},  # malformed: skipped
            ],
        },
        {"type": "audio", "data": "..."},
        "not an object",
        {
            "type": "image",
            "data": "QUJD",
            "x": 1,
            "y": 2,
            "size": 3,
            "controls": [
                {
                    "rect": {"left": 0.1, "top": 0.2, "width": 0.3, "height": 0.4},
                    "factor": 0.5,
                    "token_overlap": "partial",
                }
            ],
        },
        {"type": "image", "data": "REVG", "x": None, "y": None, "size": None},
        {"type": "token_ids", "data": [5, 6], "controls": [{"index": 1, "factor": 2.0}]},
        {"type": "text"},  # malformed: skipped
    ]
    prompt = Prompt.from_json(wire)  # type: ignore[arg-type]
    assert prompt.items == [
        Text("Hello", [TextControl(0, 2, 3.0, ControlTokenOverlap.Complete)]),
        Image(
            "QUJD",
            Cropping(1, 2, 3),
            [ImageControl(0.1, 0.2, 0.3, 0.4, 0.5, ControlTokenOverlap.Partial)],
        ),
        Image("REVG", None, []),
        Tokens([5, 6], [TokenControl(1, 2.0)]),
    ]


def test_prompt_round_trips_through_json() -> None:
    prompt = Prompt(
        [
            Text("a b", [TextControl(0, 1, 0.5)]),
            Image("QUJD", Cropping(0, 0, 10), [ImageControl(0, 0, 1, 1, 0.1)]),
            Tokens([1], [TokenControl(0, 2.0)]),
        ]
    )
    assert Prompt.from_json(prompt.to_json()) == prompt


# --------------------------------------------------------------------------- Image


def test_from_file_and_from_bytes_keep_the_original_bytes(
    tmp_path: Path, jpeg_bytes: bytes
) -> None:
    path = tmp_path / "picture.jpg"
    path.write_bytes(jpeg_bytes)
    expected = base64.b64encode(jpeg_bytes).decode()
    assert Image.from_file(path).base_64 == expected
    assert Image.from_file(str(path)).base_64 == expected
    assert Image.from_bytes(jpeg_bytes).base_64 == expected
    cropped = Image.from_file_with_cropping(path, 1, 2, 3, [ImageControl(0, 0, 1, 1, 2.0)])
    assert cropped.base_64 == expected
    assert cropped.cropping == Cropping(1, 2, 3)
    assert cropped.controls == [ImageControl(0, 0, 1, 1, 2.0)]
    assert Image.from_file(path).controls == []


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [
        ("PNG", "image/png"),
        ("JPEG", "image/jpeg"),
        ("GIF", "image/gif"),
        ("WEBP", "image/webp"),
        ("BMP", "image/bmp"),
    ],
)
def test_mime_type_is_sniffed_from_the_bytes(fmt: str, mime: str) -> None:
    image = Image.from_bytes(_encode(fmt))
    assert image.mime_type == mime
    assert image.to_data_uri() == f"data:{mime};base64,{image.base_64}"


@pytest.mark.parametrize("b64", ["", "AAAA", "not base64 at all!!"])
def test_mime_type_defaults_to_png(b64: str) -> None:
    assert Image(b64, None, []).mime_type == "image/png"


def test_from_image_encodes_png_and_converts_cmyk() -> None:
    image = Image.from_image(PILImageModule.new("RGB", (3, 2)))
    assert image.mime_type == "image/png"
    assert image.dimensions() == (3, 2)
    cmyk = Image.from_image(PILImageModule.new("CMYK", (4, 4)), controls=[])
    assert cmyk.mime_type == "image/png"
    assert cmyk.to_image().mode == "RGB"


def test_to_image_and_dimensions(jpeg_bytes: bytes) -> None:
    image = Image.from_bytes(jpeg_bytes)
    assert image.dimensions() == (40, 30)
    assert image.to_image().format == "JPEG"


def test_from_image_source_dispatch(tmp_path: Path, jpeg_bytes: bytes) -> None:
    path = tmp_path / "x.jpg"
    path.write_bytes(jpeg_bytes)
    expected = base64.b64encode(jpeg_bytes).decode()
    assert Image.from_image_source(path).base_64 == expected
    assert Image.from_image_source(str(path)).base_64 == expected
    assert Image.from_image_source(jpeg_bytes).base_64 == expected
    pil = PILImageModule.open(io.BytesIO(jpeg_bytes))
    assert Image.from_image_source(pil).mime_type == "image/png"
    with pytest.raises(TypeError, match="image_source: expected"):
        Image.from_image_source(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentTypeError):
        Image.from_image_source(3)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- loopback URLs


class _Server:
    def __init__(self, body: bytes) -> None:
        self.body = body
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/image.jpg":
                    self._send(200, server.body)
                elif self.path == "/forbidden":
                    self._send(403, b"no access here")
                elif self.path == "/slow":
                    server.release.wait(10)
                    self._send(200, server.body)
                else:
                    self._send(404, b"")

            def _send(self, status: int, body: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up (timeout test)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}{path}"


@pytest.fixture
def server(jpeg_bytes: bytes) -> Iterator[_Server]:
    srv = _Server(jpeg_bytes)
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.release.set()
        srv.httpd.shutdown()
        srv.httpd.server_close()
        srv.thread.join()


def test_from_url_downloads_the_bytes(server: _Server, jpeg_bytes: bytes) -> None:
    expected = base64.b64encode(jpeg_bytes).decode()
    image = Image.from_url(server.url("/image.jpg"))
    assert image.base_64 == expected
    assert image.cropping is None
    cropped = Image.from_url_with_cropping(server.url("/image.jpg"), 1, 2, 3, timeout=5)
    assert cropped.cropping == Cropping(1, 2, 3)
    assert Image.from_image_source(server.url("/image.jpg")).base_64 == expected
    assert load_base64_from_url(server.url("/image.jpg")) == expected


def test_from_url_status_error_names_url_and_status(server: _Server) -> None:
    url = server.url("/missing.png")
    with pytest.raises(NotFoundError) as info:
        Image.from_url(url)
    assert info.value.status_code == 404
    assert "404" in str(info.value) and url in str(info.value)
    with pytest.raises(PermissionDeniedError, match="no access here"):
        load_base64_from_url(server.url("/forbidden"))


def test_from_image_source_does_not_swallow_url_errors(server: _Server) -> None:
    with pytest.raises(APIStatusError) as info:
        Image.from_image_source(server.url("/missing.png"))
    assert not isinstance(info.value, FileNotFoundError)


def test_from_url_times_out(server: _Server) -> None:
    with pytest.raises(APITimeoutError, match="timed out"):
        Image.from_url(server.url("/slow"), timeout=0.2)


def test_from_url_connection_refused() -> None:
    probe = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = probe.server_address[1]
    probe.server_close()
    with pytest.raises(APIConnectionError) as info:
        Image.from_url(f"http://127.0.0.1:{port}/x.png", timeout=2)
    assert not isinstance(info.value, APITimeoutError)


def test_load_base64_from_file(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"\x00\x01abc")
    assert load_base64_from_file(str(path)) == base64.b64encode(b"\x00\x01abc").decode()


# --------------------------------------------------------------------------- PromptTemplate


def test_template_renders_text() -> None:
    template = PromptTemplate("{%- for name in names -%}\nHello {{name}}!\n{% endfor -%}")
    assert template.to_prompt(names=["World", "Rutger"]) == Prompt.from_text(
        "Hello World!\nHello Rutger!\n"
    )


def test_template_renders_twice_with_the_same_placeholders() -> None:
    image = Image("QUJD", None, [])
    template = PromptTemplate("Some Text.\n{{whatever}}\nMore Text {{n}}")
    placeholder = template.placeholder(image)
    first = template.to_prompt(whatever=placeholder, n=1)
    second = template.to_prompt(whatever=placeholder, n=2)
    assert first == Prompt([Text.from_text("Some Text.\n"), image, Text.from_text("\nMore Text 1")])
    assert second == Prompt(
        [Text.from_text("Some Text.\n"), image, Text.from_text("\nMore Text 2")]
    )


def test_template_mixed_modalities_and_unused_placeholder() -> None:
    image = Image("QUJD", None, [])
    tokens = Tokens([1, 2], [])
    template = PromptTemplate("{{image}}{{name}}{{tokens}}{{image}}")
    prompt = template.to_prompt(
        image=template.placeholder(image), name="whatever", tokens=template.placeholder(tokens)
    )
    assert prompt == Prompt([image, Text.from_text("whatever"), tokens, image])
    unused = PromptTemplate("cool")
    assert unused.to_prompt(images=unused.placeholder(image)) == Prompt.from_text("cool")


def test_template_leaves_foreign_uuids_as_text() -> None:
    template = PromptTemplate("id {{x}}")
    template.placeholder(Image("QUJD", None, []))
    text = "id 123e4567-e89b-12d3-a456-426614174000"
    assert template.to_prompt(x=text[3:]) == Prompt.from_text(text)


def test_embed_prompt_joins_text_and_keeps_items() -> None:
    image = Image("QUJD", None, [])
    template = PromptTemplate("{{user_prompt}}")
    user_prompt = Prompt(
        [
            Text.from_text("start "),
            Text.from_text("middle"),
            Text.from_text(""),
            Text.from_text("end"),
            image,
            Text.from_text("Cool"),
        ]
    )
    prompt = template.to_prompt(user_prompt=template.embed_prompt(user_prompt))
    assert prompt == Prompt([Text.from_text("start middle end"), image, Text.from_text("Cool")])


# --------------------------------------------------------------------------- Document


def test_document_serialisation(tmp_path: Path) -> None:
    path = tmp_path / "a.docx"
    path.write_bytes(b"PK\x03\x04")
    assert Document.from_docx_file(str(path))._to_serializable_document() == {
        "docx": base64.b64encode(b"PK\x03\x04").decode()
    }
    image = Image("QUJD", None, [])
    assert Document.from_prompt(
        Prompt([Text.from_text("a"), image])
    )._to_serializable_document() == {
        "prompt": [
            {"type": "text", "data": "a", "controls": []},
            {"type": "image", "data": "QUJD", "controls": []},
        ]
    }
    assert Document.from_prompt(["plain", image])._to_serializable_document()["prompt"][0] == {
        "type": "text",
        "data": "plain",
        "controls": [],
    }
    assert Document.from_text("t")._to_serializable_document() == {"text": "t"}
    with pytest.raises(InvalidArgumentError):
        Document()._to_serializable_document()


# --------------------------------------------------------------------------- import weight


def test_model_modules_do_not_import_heavy_dependencies() -> None:
    code = (
        "import sys\n"
        "import aleph_alpha_client.prompt, aleph_alpha_client.completion, "
        "aleph_alpha_client.embedding, aleph_alpha_client.explanation, "
        "aleph_alpha_client.prompt_template, aleph_alpha_client.document, "
        "aleph_alpha_client.utils\n"
        "heavy = [m for m in ('PIL', 'liquid', 'tokenizers', 'pydantic') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
