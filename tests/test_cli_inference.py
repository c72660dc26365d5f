"""The CLI's reasoning output, --reasoning-effort, transcribe and models over model-settings."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aleph_alpha_client.cli import main
from aleph_alpha_client.emulator import Emulator
from scripted_server import Reply, ScriptedServer

QUESTION = "What is the capital of Spain?"
MADRID = "The capital of Spain is Madrid."


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


def at(url: str) -> list[str]:
    return ["--host", url, "--token", "t", "--retries", "0"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


class TtyOut(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("model", ["qwen3-32b-reasoning", "deepseek-r1-distill-llama-8b"])
@pytest.mark.parametrize("stream", [True, False])
def test_reasoning_goes_to_stderr_when_stdout_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str], emu: Emulator, model: str, stream: bool
) -> None:
    extra = [] if stream else ["--no-stream"]
    code, out, err = run(capsys, *at(emu.url), "chat", "--model", model, *extra, QUESTION)
    assert (code, out) == (0, MADRID + "\n")
    assert err.startswith('The user wrote: "What is the capital of Spain?".')
    assert "<think>" not in out + err and "\x1b[" not in out + err


def test_no_reasoning_hides_it(capsys: pytest.CaptureFixture[str], emu: Emulator) -> None:
    argv = [*at(emu.url), "chat", "--model", "qwen3-32b-reasoning", "--no-reasoning", QUESTION]
    assert run(capsys, *argv) == (0, MADRID + "\n", "")


def test_reasoning_is_dimmed_on_a_terminal(monkeypatch: pytest.MonkeyPatch, emu: Emulator) -> None:
    out = TtyOut()
    monkeypatch.setattr(sys, "stdout", out)
    code = main([*at(emu.url), "chat", "--model", "deepseek-r1-distill-llama-8b", QUESTION])
    assert code == 0
    text = out.getvalue()
    assert text.startswith('\x1b[2mThe user wrote: "What is the capital of Spain?".')
    assert text.endswith("\x1b[0m\n" + MADRID + "\n")


def test_json_includes_reasoning_and_effort_is_sent(
    capsys: pytest.CaptureFixture[str], emu: Emulator
) -> None:
    argv = [*at(emu.url), "chat", "--model", "qwen3-32b-reasoning", "--json"]
    code, out, err = run(capsys, *argv, "--reasoning-effort", "low", QUESTION)
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert data["content"] == MADRID
    assert data["reasoning_content"] == (
        'The user wrote: "What is the capital of Spain?". I recall what I know about it.'
    )
    assert json.loads(emu.requests[-1].body)["reasoning_effort"] == "low"
    code, out, _ = run(capsys, *at(emu.url), "chat", "--json", QUESTION)
    assert json.loads(out)["reasoning_content"] is None


def test_bad_reasoning_effort_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "chat", "--emulator", "--reasoning-effort", "max", "hi")
    assert code == 2 and "--reasoning-effort" in err


def test_transcribe(capsys: pytest.CaptureFixture[str], emu: Emulator, tmp_path: Path) -> None:
    audio = tmp_path / "talk.wav"
    audio.write_bytes(b"Hello there. How are you?")
    code, out, err = run(capsys, *at(emu.url), "transcribe", str(audio), "--language", "en")
    assert (code, out, err) == (0, "Hello there. How are you?\n", "")
    code, out, _ = run(capsys, *at(emu.url), "transcribe", str(audio), "--segments")
    assert out.splitlines() == [
        "[   0.00 ->    0.50] Hello there.",
        "[   0.50 ->    1.00] How are you?",
    ]
    code, out, _ = run(capsys, *at(emu.url), "transcribe", str(audio), "--json")
    data = json.loads(out)
    assert data["language"] == "en" and len(data["segments"]) == 2
    code, _, err = run(capsys, *at(emu.url), "transcribe", str(tmp_path / "none.wav"))
    assert code == 2 and "no such file" in err


def test_models_uses_model_settings(capsys: pytest.CaptureFixture[str], emu: Emulator) -> None:
    code, out, _ = run(capsys, *at(emu.url), "models")
    assert code == 0
    assert emu.requests[-1].path == "/model-settings"
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "chat,image,complete" in rows["dummy-model"]
    code, out, _ = run(capsys, *at(emu.url), "models", "--json")
    assert json.loads(out)[0]["completion_type"] == "full"


def test_models_falls_back_to_models_available(
    capsys: pytest.CaptureFixture[str], server: ScriptedServer
) -> None:
    old: list[dict[str, Any]] = [
        {"name": "old-model", "max_context_size": 2048, "aligned": True, "description": "d"}
    ]
    server.add(Reply.json({"error": "no route", "code": "NOT_FOUND"}, status=404))
    server.add(Reply.json(old))
    code, out, _ = run(capsys, *at(server.url), "models")
    assert code == 0
    assert [r.path for r in server.received] == ["/model-settings", "/models_available"]
    assert out.splitlines()[1].split() == ["old-model", "2048", "chat", "d"]
