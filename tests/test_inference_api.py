"""The API past 11.5.1, end to end: model settings, transcription, error codes, and the
emulator's reasoning models, ``n`` choices and logprobs, with both clients."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from aleph_alpha_client import (
    BadRequestError,
    BusyError,
    ChatRequest,
    ChatStreamChunk,
    FinishReason,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    Message,
    ModelNotFoundError,
    ModelSettings,
    NotFoundError,
    ReasoningChunk,
    Role,
    StreamOptions,
    TranscriptionResponse,
)
from aleph_alpha_client._multipart import FormPart, encode_multipart
from aleph_alpha_client.emulator import Emulator
from conftest import run_client
from scripted_server import Reply, ScriptedServer

MODES = ["sync", "async"]
AUDIO = b"RIFF\x00\x01\x02\x03WAVEfmt \xff\xfe" * 100


@pytest.fixture(scope="module")
def emu() -> Any:
    with Emulator() as emulator:
        yield emulator


def _stream(mode: str, url: str, request: ChatRequest, model: str) -> tuple[list[Any], Any]:
    def call(c: Any) -> Any:
        stream = c.chat_with_streaming(request, model)
        if mode == "sync":
            return list(stream), stream.get_final_response()

        async def go() -> Any:
            items = [item async for item in stream]
            return items, await stream.get_final_response()

        return go()

    return run_client(mode, url, call)


# --------------------------------------------------------------------------- model settings


@pytest.mark.parametrize("mode", MODES)
def test_model_settings_are_typed(emu: Emulator, mode: str) -> None:
    settings = run_client(mode, emu.url, lambda c: c.model_settings())
    by_name = {s.name: s for s in settings}
    chat = by_name["llama-3.1-8b-instruct"]
    assert isinstance(chat, ModelSettings)
    assert (chat.status, chat.chat, chat.multimodal, chat.max_context_size) == (
        "available",
        True,
        False,
        8192,
    )
    assert chat.maximum_completion_tokens == 8192 and chat.aligned and chat.prompt_template
    base = by_name["luminous-base"]
    assert (base.chat, base.multimodal, base.completion_type, base.embedding_type) == (
        False,
        True,
        "full",
        "semantic",
    )
    assert by_name["pharia-1-embedding-4608-control"].embedding_type == "instructable"
    assert emu.last_request is not None and emu.last_request.path == "/model-settings"


def test_model_settings_tolerate_unknown_fields_and_reject_wrong_shapes(
    server: ScriptedServer,
) -> None:
    server.add(Reply.json([{"name": "m", "chat": True, "new_flag": 1}]))
    (setting,) = run_client("sync", server.url, lambda c: c.model_settings())
    assert setting == ModelSettings("m", chat=True)
    assert setting.raw["new_flag"] == 1
    server.add(Reply.json({"name": "m"}))
    with pytest.raises(Exception, match="expected a JSON list"):
        run_client("sync", server.url, lambda c: c.model_settings())


@pytest.mark.parametrize("mode", MODES)
def test_missing_capability_says_what_the_model_can_do(emu: Emulator, mode: str) -> None:
    request = ChatRequest("x", [Message(Role.User, "hi")])

    async def both(c: Any) -> Any:
        errors = []
        for fetch_settings in (False, True):
            if fetch_settings:
                await c.model_settings()
            try:
                await c.chat(request, "luminous-base")
            except BadRequestError as err:
                errors.append(err)
        return errors

    def sync_both(c: Any) -> Any:
        errors = []
        for fetch_settings in (False, True):
            if fetch_settings:
                c.model_settings()
            try:
                c.chat(request, "luminous-base")
            except BadRequestError as err:
                errors.append(err)
        return errors

    before, after = run_client(mode, emu.url, sync_both if mode == "sync" else both)
    assert before.code == after.code == "MISSING_CAPABILITY"
    assert before.args == after.args  # the server's error is kept as it is
    assert "can:" not in str(before)
    assert "model 'luminous-base' can: image, complete, embed:semantic" in str(after)
    assert "not chat" in str(after)
    assert after.model_settings.name == "luminous-base"  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("mode", MODES)
def test_unknown_model_is_model_not_found(emu: Emulator, mode: str) -> None:
    request = ChatRequest("x", [Message(Role.User, "hi")])
    with pytest.raises(ModelNotFoundError) as info:
        run_client(mode, emu.url, lambda c: c.chat(request, "no-such-model"))
    err = info.value
    assert isinstance(err, NotFoundError) and isinstance(err, ValueError)
    assert err.code == "UNKNOWN_MODEL" and err.status_code == 400


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(("code", "full"), [("QUEUE_FULL", True), ("OVERLOADED", False)])
def test_busy_error_keeps_its_code(
    server: ScriptedServer, mode: str, code: str, full: bool
) -> None:
    server.add(Reply.json({"error": "busy", "code": code}, status=503))
    with pytest.raises(BusyError) as info:
        run_client(mode, server.url, lambda c: c.get_version())
    assert info.value.code == code and info.value.queue_full is full


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_every_status_error_keeps_the_body_code(server: ScriptedServer, mode: str) -> None:
    server.add(Reply.json({"error": "nope", "code": "UNKNOWN_MODEL"}, status=404))
    with pytest.raises(ModelNotFoundError) as info:
        run_client(mode, server.url, lambda c: c.get_version())
    assert info.value.status_code == 404 and info.value.code == "UNKNOWN_MODEL"
    server.add(Reply.json({"error": "x", "code": "SOMETHING"}, status=409))
    with pytest.raises(Exception) as other:
        run_client(mode, server.url, lambda c: c.get_version())
    assert other.value.code == "SOMETHING"  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- transcription


def _audio_sources(tmp_path: Path) -> list[Any]:
    path = tmp_path / "talk.wav"
    path.write_bytes(AUDIO)
    return [str(path), path, AUDIO, io.BytesIO(AUDIO)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", range(4))
def test_transcribe_path_bytes_and_file(
    emu: Emulator, mode: str, kind: int, tmp_path: Path
) -> None:
    audio = _audio_sources(tmp_path)[kind]
    result = run_client(
        mode, emu.url, lambda c: c.transcribe(audio, "whisper-large-v3-turbo", language="de")
    )
    assert isinstance(result, TranscriptionResponse)
    assert result.transcription.startswith(
        f"This is the offline emulator's transcription of {len(AUDIO)} bytes"
    )
    assert result.language == "de"
    assert len(result.segments) == 2
    assert " ".join(s.text for s in result.segments) == result.transcription
    assert result.segments[0].start == 0.0 and result.segments[-1].end > result.segments[0].end
    assert result.segments[0].tokens


def test_transcribe_wire_body_is_exact(server: ScriptedServer) -> None:
    server.add(
        Reply.json(
            {
                "transcription": "Hallo.",
                "segments": [{"start": 0.0, "end": 1.5, "text": "Hallo.", "tokens": [1, 2]}],
                "language": "de",
                "num_tokens_prompt_total": 0,
                "num_tokens_generated": 2,
            }
        )
    )
    result = run_client(
        "async", server.url, lambda c: c.transcribe(b"abc", "whisper", language="de")
    )
    assert result.segments[0].end == 1.5 and result.num_tokens_generated == 2
    sent = server.received[-1]
    assert sent.method == "POST" and sent.path == "/transcribe"
    content_type = sent.headers["content-type"]
    boundary = content_type.split("boundary=")[1]
    assert content_type == f"multipart/form-data; boundary={boundary}"
    assert (
        sent.body
        == (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="audiofile"; filename="audio"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
            "abc\r\n"
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="metadata"\r\n'
            "Content-Type: application/json\r\n\r\n"
            '{"model": "whisper", "language": "de"}\r\n'
            f"--{boundary}--\r\n"
        ).encode()
    )


def test_transcribe_file_name_and_type_from_the_path(
    server: ScriptedServer, tmp_path: Path
) -> None:
    path = tmp_path / "talk.mp3"
    path.write_bytes(b"ID3...")
    server.add(Reply.json({"transcription": "", "segments": [], "language": "en"}))
    run_client("sync", server.url, lambda c: c.transcribe(path, "whisper"))
    body = server.received[-1].body
    assert b'filename="talk.mp3"\r\nContent-Type: audio/mpeg\r\n' in body
    assert b'{"model": "whisper"}' in body


@pytest.mark.parametrize(
    ("audio", "model", "language", "error", "names"),
    [
        (b"", "w", None, InvalidArgumentError, "audio"),
        ("/no/such/file.wav", "w", None, InvalidArgumentError, "audio"),
        (12, "w", None, InvalidArgumentTypeError, "audio"),
        (io.StringIO("text"), "w", None, InvalidArgumentTypeError, "audio"),
        (b"x", "", None, InvalidArgumentError, "model"),
        (b"x", "w", "german", InvalidArgumentError, "language"),
        (b"x", "w", 7, InvalidArgumentTypeError, "language"),
    ],
)
def test_transcribe_bad_input_is_refused_before_sending(
    server: ScriptedServer, audio: Any, model: Any, language: Any, error: type, names: str
) -> None:
    with pytest.raises(error, match=f"^{names}:"):
        run_client("sync", server.url, lambda c: c.transcribe(audio, model, language=language))
    assert server.received == []


def test_transcribe_to_a_model_that_cannot(emu: Emulator) -> None:
    with pytest.raises(BadRequestError) as info:
        run_client("sync", emu.url, lambda c: c.transcribe(b"x", "llama-3.1-8b-instruct"))
    assert info.value.code == "MISSING_CAPABILITY"


def test_multipart_encoder() -> None:
    parts = [FormPart('a"b', b"1"), FormPart("f", b"\x00\xff", "x\ny.bin", "application/x")]
    body, content_type = encode_multipart(parts, boundary="B")
    assert content_type == "multipart/form-data; boundary=B"
    assert body == (
        b'--B\r\nContent-Disposition: form-data; name="a%22b"\r\n\r\n1\r\n'
        b'--B\r\nContent-Disposition: form-data; name="f"; filename="x%0Ay.bin"\r\n'
        b"Content-Type: application/x\r\n\r\n\x00\xff\r\n--B--\r\n"
    )
    assert encode_multipart(parts)[0] == encode_multipart(parts)[0]  # deterministic
    with pytest.raises(ValueError, match="boundary"):
        encode_multipart([FormPart("a", b"--B\r\n")], boundary="B")


# --------------------------------------------------------------------------- emulator chat


@pytest.mark.parametrize("mode", MODES)
def test_emulator_reasoning_content_model(emu: Emulator, mode: str) -> None:
    request = ChatRequest("x", [Message(Role.User, "capital of Spain?")], reasoning_effort="high")
    response = run_client(mode, emu.url, lambda c: c.chat(request, "qwen3-32b-reasoning"))
    assert response.content == "The capital of Spain is Madrid."
    assert response.reasoning_content.startswith('The user wrote: "capital of Spain?".')
    low = ChatRequest("x", request.messages, reasoning_effort="low")
    short = run_client(mode, emu.url, lambda c: c.chat(low, "qwen3-32b-reasoning"))
    assert len(short.reasoning_content) < len(response.reasoning_content)
    items, final = _stream(mode, emu.url, request, "qwen3-32b-reasoning")
    reasoning = "".join(i.content for i in items if isinstance(i, ReasoningChunk))
    content = "".join(i.content for i in items if isinstance(i, ChatStreamChunk))
    assert (reasoning, content) == (response.reasoning_content, response.content)
    assert final.message == response.message


@pytest.mark.parametrize("mode", MODES)
def test_emulator_think_tag_model(emu: Emulator, mode: str) -> None:
    request = ChatRequest("x", [Message(Role.User, "capital of France?")])
    response = run_client(mode, emu.url, lambda c: c.chat(request, "deepseek-r1-distill-llama-8b"))
    assert response.content == "The capital of France is Paris."
    assert "<think>" not in response.content and response.reasoning_content
    raw = emu.last_request
    assert raw is not None
    items, final = _stream(mode, emu.url, request, "deepseek-r1-distill-llama-8b")
    content = "".join(i.content for i in items if isinstance(i, ChatStreamChunk))
    assert content == response.content
    assert final.message.reasoning_content == response.reasoning_content


@pytest.mark.parametrize("mode", MODES)
def test_emulator_n_choices_and_logprobs(emu: Emulator, mode: str) -> None:
    request = ChatRequest(
        "x",
        [Message(Role.User, "capital of Italy?")],
        n=3,
        logprobs=True,
        top_logprobs=2,
        stream_options=StreamOptions(include_usage=True),
    )
    model = "llama-3.1-8b-instruct"
    response = run_client(mode, emu.url, lambda c: c.chat(request, model))
    assert [c.index for c in response.choices] == [0, 1, 2]
    assert response.choices[1].message.content == "The capital of Italy is Rome. (Answer 2.)"
    logprobs = response.logprobs
    assert logprobs is not None
    assert "".join(t.token for t in logprobs) == "The capital of Italy is Rome."
    assert all(len(t.top_logprobs) == 2 and t.top_logprobs[0].token == t.token for t in logprobs)
    assert all(t.top_logprobs[1].logprob < t.logprob <= 0 for t in logprobs)
    assert bytes(logprobs[0].bytes or []) == logprobs[0].token.encode()
    items, final = _stream(mode, emu.url, request, model)
    assert {i.index for i in items if isinstance(i, ChatStreamChunk)} == {0, 1, 2}
    assert [i for i in items if isinstance(i, FinishReason)] == [FinishReason.Stop] * 3
    assert [c.message.content for c in final.choices] == [
        c.message.content for c in response.choices
    ]
    assert [c.logprobs for c in final.choices] == [c.logprobs for c in response.choices]
    assert final.usage == response.usage
    body = json.loads(emu.requests[-1].body)
    assert (body["n"], body["logprobs"], body["top_logprobs"]) == (3, True, 2)


@pytest.mark.parametrize("mode", MODES)
def test_missing_capability_in_a_stream_says_what_the_model_can_do(
    emu: Emulator, mode: str
) -> None:
    request = ChatRequest("x", [Message(Role.User, "hi")])

    async def run_async(c: Any) -> Any:
        await c.model_settings()
        try:
            async for _ in c.chat_with_streaming(request, "luminous-base"):
                pass
        except BadRequestError as err:
            return err

    def run_sync(c: Any) -> Any:
        c.model_settings()
        try:
            list(c.chat_with_streaming(request, "luminous-base"))
        except BadRequestError as err:
            return err

    err = run_client(mode, emu.url, run_sync if mode == "sync" else run_async)
    assert err.code == "MISSING_CAPABILITY"
    assert "model 'luminous-base' can: image, complete" in str(err)


def test_image_to_a_text_model_says_it_takes_no_images(emu: Emulator) -> None:
    from aleph_alpha_client import Image

    png = (
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
        b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N"
        b"\x00\x00\x00\x00IEND\xaeB`\x82"
    )
    request = ChatRequest("x", [Message(Role.User, ["What is this?", Image.from_bytes(png)])])

    def call(c: Any) -> Any:
        c.model_settings()
        try:
            c.chat(request, "llama-3.1-8b-instruct")
        except BadRequestError as err:
            return err

    err = run_client("sync", emu.url, call)
    assert err.code == "MISSING_CAPABILITY" and "does not support images" in str(err)
    assert "model 'llama-3.1-8b-instruct' can: chat, complete; no images" in str(err)


@pytest.mark.parametrize("mode", ["sync-httpx", "async-httpx", "sync-requests", "async-aiohttp"])
def test_transcribe_over_every_transport(emu: Emulator, mode: str) -> None:
    result = run_client(
        mode, emu.url, lambda c: c.transcribe(b"One. Two.", "whisper-large-v3-turbo")
    )
    assert [s.text for s in result.segments] == ["One.", "Two."]
    assert result.language == "en"
