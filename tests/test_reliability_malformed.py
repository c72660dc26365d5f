"""Malformed answers become typed errors that name the status and show the body's start.

Guarantees (docs/reliability.md), for ``Client`` and ``AsyncClient``:

* A 2xx answer that is not JSON, is JSON of the wrong shape, is empty, is not UTF-8, or has a
  non-JSON content type (``text/html`` from a proxy) raises ``APIResponseValidationError``
  whose message holds ``HTTP <status>`` and the start of the body.
* A stream request answered with ``application/json`` raises ``StreamEventError`` when the
  body is an API error object, else ``APIResponseValidationError`` naming the content type.
* An error status with an HTML body keeps its typed status error; its text is the body.
* A redirect without ``Location`` and a redirect loop end in ``APIResponseValidationError``.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Any

import pytest

from aleph_alpha_client._exceptions import (
    AlephAlphaError,
    APIConnectionError,
    APIResponseValidationError,
    BadRequestError,
    InternalServerError,
    StreamEventError,
)
from aleph_alpha_client._streaming import AsyncStream
from aleph_alpha_client.chat import ChatRequest, Message, Role
from conftest import TRANSPORT_MODES, run_client
from scripted_server import Reply, ScriptedServer

MODES = TRANSPORT_MODES
REQUEST = ChatRequest(model="m", messages=[Message(role=Role.User, content="hi")])
HTML = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


def run(mode: str, host: str, call: Callable[[Any], Any], **kwargs: Any) -> Any:
    """Run ``call`` on a client of ``mode`` (see conftest.run_client)."""
    return run_client(mode, host, call, **kwargs)


def chat(c: Any) -> Any:
    return c.chat(REQUEST, "m")


def stream_all(c: Any) -> Any:
    stream = c.chat_with_streaming(REQUEST, "m")
    if isinstance(stream, AsyncStream):

        async def go() -> list[Any]:
            return [item async for item in stream]

        return go()
    return list(stream)


def raw(body: bytes, content_type: str | None = "application/json", status: int = 200) -> Reply:
    headers = {} if content_type is None else {"Content-Type": content_type}
    return Reply(status, headers, [body])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("reply", "shown", "said"),
    [
        (raw(b"this is not json {"), "this is not json {", "not valid JSON"),
        (raw(b""), "", "not valid JSON"),
        (raw(b'{"choices": [{"message": '), '{"choices": [{"message":', "not valid JSON"),
        (raw(b'{"result": "\xff\xfe"}'), '{"result": ', "not valid JSON"),
        (raw(b'{"foo": 1}'), '{"foo": 1}', "expected shape"),
        (raw(b"[1, 2, 3]"), "[1, 2, 3]", "expected shape"),
        (raw(b'{"choices": []}'), '{"choices": []}', "no choices"),
        (
            raw(b'{"choices": [{"finish_reason": "exploded", "message": {}}]}'),
            "exploded",
            "",
        ),
        (raw(HTML, "text/html"), "<html><head><title>502", "text/html"),
        (raw(b"", "text/html; charset=utf-8"), "", "text/html"),
    ],
    ids=[
        "not-json",
        "empty",
        "half-json",
        "not-utf8",
        "wrong-shape",
        "list",
        "no-choices",
        "unknown-finish-reason",
        "html",
        "empty-html",
    ],
)
def test_bad_2xx_answer(
    server: ScriptedServer, mode: str, reply: Reply, shown: str, said: str
) -> None:
    server.default = reply
    with pytest.raises(APIResponseValidationError) as info:
        run(mode, server.url, chat, total_retries=3)
    message = str(info.value)
    assert "HTTP 200" in message
    assert info.value.status_code == 200
    assert shown in message
    assert said in message
    # A malformed 2xx answer is the server's final word: it is not retried.
    assert len(server.received) == 1


@pytest.mark.parametrize("mode", MODES)
def test_body_preview_is_bounded(server: ScriptedServer, mode: str) -> None:
    server.default = raw(b"<html>" + b"x" * 100_000 + b"</html>", "text/html")
    with pytest.raises(APIResponseValidationError) as info:
        run(mode, server.url, chat)
    assert len(str(info.value)) < 1000
    assert "<html>xxx" in str(info.value)
    assert info.value.text is not None and len(info.value.text) > 100_000


@pytest.mark.parametrize("mode", MODES)
def test_error_status_with_html_body(server: ScriptedServer, mode: str) -> None:
    server.default = raw(HTML, "text/html", status=502)
    with pytest.raises(InternalServerError) as info:
        run(mode, server.url, chat)
    assert info.value.args == (502, HTML.decode())
    assert info.value.body is None
    assert "502 Bad Gateway" in str(info.value)


@pytest.mark.parametrize("mode", MODES)
def test_error_status_with_json_of_another_shape(server: ScriptedServer, mode: str) -> None:
    body = b'{"detail": [{"loc": ["body", "messages"], "msg": "field required"}]}'
    server.default = raw(body, status=400)
    with pytest.raises(BadRequestError) as info:
        run(mode, server.url, chat)
    assert info.value.args == (400, body.decode())
    assert info.value.message is None
    assert "field required" in str(info.value)


@pytest.mark.parametrize("mode", MODES)
def test_stream_answered_with_json_error(server: ScriptedServer, mode: str) -> None:
    server.default = Reply.json({"error": "the model is gone", "code": "MODEL_NOT_FOUND"})
    with pytest.raises(StreamEventError) as info:
        run(mode, server.url, stream_all)
    assert info.value.code == "MODEL_NOT_FOUND"
    assert "the model is gone" in str(info.value)


@pytest.mark.parametrize("mode", MODES)
def test_stream_answered_with_plain_json(server: ScriptedServer, mode: str) -> None:
    server.default = Reply.json({"choices": [{"message": {"role": "assistant", "content": "x"}}]})
    with pytest.raises(APIResponseValidationError) as info:
        run(mode, server.url, stream_all)
    message = str(info.value)
    assert "HTTP 200" in message
    assert "application/json" in message
    assert '{"choices"' in message


@pytest.mark.parametrize("mode", MODES)
def test_stream_answered_with_html(server: ScriptedServer, mode: str) -> None:
    server.default = raw(HTML, "text/html")
    with pytest.raises(APIResponseValidationError) as info:
        run(mode, server.url, stream_all)
    assert "text/html" in str(info.value)
    assert "<html>" in str(info.value)


@pytest.mark.parametrize("mode", MODES)
def test_models_answered_with_an_object(server: ScriptedServer, mode: str) -> None:
    server.default = Reply.json({"models": []})
    with pytest.raises(APIResponseValidationError) as info:
        run(mode, server.url, lambda c: c.models())
    assert '{"models":[]}' in str(info.value)


@pytest.mark.parametrize("mode", MODES)
def test_version_not_utf8(server: ScriptedServer, mode: str) -> None:
    server.default = raw(b"1.\xff\xfe", "text/plain")
    with pytest.raises(APIResponseValidationError) as info:
        run(mode, server.url, lambda c: c.get_version())
    assert "UTF-8" in str(info.value)


@pytest.mark.parametrize("mode", MODES)
def test_gzip_answer_is_decoded(server: ScriptedServer, mode: str) -> None:
    body = b'{"choices":[{"finish_reason":"stop","message":{"role":"assistant","content":"zip"}}]}'
    server.default = Reply(
        200, {"Content-Type": "application/json", "Content-Encoding": "gzip"}, [gzip.compress(body)]
    )
    assert run(mode, server.url, chat).message.content == "zip"


@pytest.mark.parametrize("mode", MODES)
def test_broken_gzip_is_a_typed_error(server: ScriptedServer, mode: str) -> None:
    server.default = Reply(
        200, {"Content-Type": "application/json", "Content-Encoding": "gzip"}, [b"not gzip at all"]
    )
    with pytest.raises(AlephAlphaError) as info:
        run(mode, server.url, chat)
    assert isinstance(info.value, (APIConnectionError, APIResponseValidationError))


@pytest.mark.parametrize("mode", MODES)
def test_redirect_without_location(server: ScriptedServer, mode: str) -> None:
    server.default = Reply(307, {"Content-Length": "0"}, [])
    with pytest.raises(APIResponseValidationError) as info:
        run(mode, server.url, chat)
    assert "redirect" in str(info.value)
    assert "307" in str(info.value)


@pytest.mark.parametrize("mode", MODES)
def test_redirect_loop(server: ScriptedServer, mode: str) -> None:
    server.default = Reply(307, {"Location": "/chat/completions"}, [])
    with pytest.raises(APIResponseValidationError) as info:
        run(mode, server.url, chat)
    assert "redirect" in str(info.value)
    assert 2 <= len(server.received) <= 10
