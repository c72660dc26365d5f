"""The ``aleph-alpha`` command line: in-process ``main([...])`` runs against the emulator, and
real subprocess runs of ``python -m aleph_alpha_client`` and the installed script."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import aleph_alpha_client
from aleph_alpha_client import Client
from aleph_alpha_client.cli import main
from aleph_alpha_client.emulator import Emulator, Fault
from aleph_alpha_client.version import __version__
from conftest import default_sigint

QUESTION = "What is the capital of Spain?"
MADRID = "The capital of Spain is Madrid."
PERSON_SCHEMA = {
    "title": "Person",
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


def tiny_png() -> bytes:
    """A valid 1x1 RGB PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


def at(emu: Emulator) -> list[str]:
    """Global options pointing at a running emulator."""
    return ["--host", emu.url, "--token", "t"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def chat_requests(emu: Emulator) -> list[Any]:
    return [r.json for r in emu.requests if r.route == "chat/completions"]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def single_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("aleph-alpha: error: "), err
    assert "Traceback" not in err
    return lines[0]


class FakeStdin(io.StringIO):
    def __init__(self, text: str, tty: bool = False) -> None:
        super().__init__(text)
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


# -- import, help, version, usage errors ------------------------------------------------------


def test_package_import_does_not_load_the_cli() -> None:
    code = (
        "import sys, aleph_alpha_client\n"
        "print(sorted(m for m in sys.modules if m.startswith('aleph_alpha_client.cli')"
        " or m.startswith('aleph_alpha_client.emulator') or m == 'argparse'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "aleph_alpha_client.cli" not in out
    assert "aleph_alpha_client.emulator" not in out
    assert aleph_alpha_client.__name__ == "aleph_alpha_client"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.strip() == f"aleph-alpha {__version__} (aleph_alpha_client)"


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        ([], ["chat", "complete", "embed", "tokenize", "models", "serve", "--emulator"]),
        (["chat"], ["--system", "/reset", "--schema", "--image", "--no-stream", "--emulator"]),
        (["complete"], ["--max-tokens", "--stop", "luminous-base"]),
        (["embed"], ["--representation", "--compress-to-size", "--normalize"]),
        (["tokenize"], ["--detokenize"]),
        (["detokenize"], ["ID"]),
        (["models"], ["--json"]),
        (["serve"], ["--port", "--faults", "503:0.1", "listen"]),
    ],
)
def test_help_everywhere(
    capsys: pytest.CaptureFixture[str], argv: list[str], needles: list[str]
) -> None:
    code, out, _ = run(capsys, *argv, "--help")
    assert code == 0
    for needle in needles:
        assert needle in out


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys)
    assert code == 2
    assert out == ""
    assert "commands:" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["frobnicate"],
        ["chat", "--temperature", "hot", "x"],
        ["chat", "--max-tokens", "0", "x"],
        ["embed"],
        ["complete", "--timeout", "-1", "x"],
        ["embed", "--representation", "sideways", "x"],
    ],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert "aleph-alpha" in err and "error:" in err
    assert "Traceback" not in err


# -- chat -------------------------------------------------------------------------------------


def test_chat_with_in_process_emulator(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "chat", "--emulator", QUESTION)
    assert (code, out, err) == (0, MADRID + "\n", "")


def test_chat_against_a_running_emulator_streams(
    capsys: pytest.CaptureFixture[str], emu: Emulator
) -> None:
    code, out, err = run(capsys, *at(emu), "chat", QUESTION)
    assert (code, out, err) == (0, MADRID + "\n", "")
    (request,) = emu.requests
    assert request.headers["authorization"] == "Bearer t"
    assert request.json["stream"] is True
    assert request.json["model"] == "llama-3.1-8b-instruct"
    assert request.json["messages"] == [{"role": "user", "content": QUESTION}]


def test_chat_writes_and_flushes_each_chunk(monkeypatch: pytest.MonkeyPatch, emu: Emulator) -> None:
    class Recorder(io.StringIO):
        def __init__(self) -> None:
            super().__init__()
            self.writes: list[str] = []
            self.flushes = 0

        def write(self, text: str) -> int:
            self.writes.append(text)
            return super().write(text)

        def flush(self) -> None:
            self.flushes += 1

    out = Recorder()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert main([*at(emu), "chat", QUESTION]) == 0
    assert out.getvalue() == MADRID + "\n"
    pieces = [w for w in out.writes if w != "\n"]
    assert len(pieces) >= 3  # the emulator sends 3 tokens per event
    assert "".join(pieces) == MADRID
    assert out.flushes >= len(pieces)


def test_global_options_before_or_after_the_command(
    capsys: pytest.CaptureFixture[str], emu: Emulator
) -> None:
    code, out, _ = run(capsys, "chat", QUESTION, "--host", emu.url, "--token", "late")
    assert (code, out) == (0, MADRID + "\n")
    code, out, _ = run(capsys, "--host", emu.url, "chat", "--token", "mixed", QUESTION)
    assert (code, out) == (0, MADRID + "\n")
    tokens = [r.headers["authorization"] for r in emu.requests]
    assert tokens == ["Bearer late", "Bearer mixed"]


def test_host_and_token_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with Emulator(token="env-secret") as emu:
        monkeypatch.setenv("ALEPH_ALPHA_BASE_URL", emu.url)
        monkeypatch.setenv("AA_TOKEN", "env-secret")
        code, out, _ = run(capsys, "chat", QUESTION)
        assert (code, out) == (0, MADRID + "\n")
        monkeypatch.setenv("ALEPH_ALPHA_API_KEY", "wins")
        code, out, err = run(capsys, "chat", QUESTION)
        assert code == 1
        assert out == ""
        line = single_error_line(err)
        assert "401" in line and "--token" in line
        assert [r.headers["authorization"] for r in emu.requests] == [
            "Bearer env-secret",
            "Bearer wins",
        ]


def test_chat_options_reach_the_request(capsys: pytest.CaptureFixture[str], emu: Emulator) -> None:
    code, out, err = run(
        capsys,
        *at(emu),
        "chat",
        "--model",
        "llama-3.3-70b-instruct",
        "--system",
        "Be brief.",
        "--temperature",
        "0.5",
        "--max-tokens",
        "3",
        "--usage",
        QUESTION,
    )
    assert code == 0
    assert out == "The capital of\n"
    assert "cut at --max-tokens" in err
    assert re.search(r"usage: \d+ prompt \+ 3 completion = \d+ tokens", err)
    body = emu.requests[-1].json
    assert body["model"] == "llama-3.3-70b-instruct"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": QUESTION},
    ]
    assert body["temperature"] == 0.5
    assert body["maximum_tokens"] == 3
    assert body["stream_options"] == {"include_usage": True}


def test_chat_no_stream(capsys: pytest.CaptureFixture[str], emu: Emulator) -> None:
    code, out, err = run(capsys, *at(emu), "chat", "--no-stream", QUESTION)
    assert (code, out, err) == (0, MADRID + "\n", "")
    assert "stream" not in emu.requests[-1].json


def test_chat_json(capsys: pytest.CaptureFixture[str], emu: Emulator) -> None:
    code, out, err = run(capsys, *at(emu), "chat", "--json", QUESTION)
    assert code == 0 and err == ""
    data = json.loads(out)
    assert data["content"] == MADRID
    assert data["finish_reason"] == "stop"
    assert data["tool_calls"] == []
    usage = data["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    assert list(data)[:4] == ["content", "finish_reason", "usage", "tool_calls"]


def test_chat_schema(capsys: pytest.CaptureFixture[str], emu: Emulator, tmp_path: Path) -> None:
    schema_file = tmp_path / "person.schema.json"
    schema_file.write_text(json.dumps(PERSON_SCHEMA))
    code, out, err = run(capsys, *at(emu), "chat", "--schema", str(schema_file), "Invent one")
    assert code == 0, err
    answer = json.loads(out)
    assert isinstance(answer["name"], str) and isinstance(answer["age"], int)
    response_format = emu.requests[-1].json["response_format"]
    assert response_format == {
        "type": "json_schema",
        "json_schema": {
            "schema": PERSON_SCHEMA,
            "name": "Person",
            "description": None,
            "strict": True,
        },
    }


def test_chat_schema_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, out, err = run(capsys, "chat", "--emulator", "--schema", str(bad), "x")
    assert code == 2 and out == ""
    assert "not valid JSON" in single_error_line(err)
    code, _, err = run(capsys, "chat", "--emulator", "--schema", str(tmp_path / "nope"), "x")
    assert code == 2
    assert "no such file" in single_error_line(err)


def test_chat_image(capsys: pytest.CaptureFixture[str], emu: Emulator, tmp_path: Path) -> None:
    image = tmp_path / "pixel.png"
    image.write_bytes(tiny_png())
    code, out, err = run(
        capsys, *at(emu), "chat", "--model", "dummy-model", "--image", str(image), "What is it?"
    )
    assert code == 0, err
    assert "You sent 1 image" in out
    (message,) = emu.requests[-1].json["messages"]
    text, picture = message["content"]
    assert text == {"type": "text", "text": "What is it?"}
    assert picture["type"] == "image_url"
    assert picture["image_url"]["url"].startswith("data:image/png;base64,")


def test_chat_image_on_a_text_model_is_one_api_error_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    image = tmp_path / "pixel.png"
    image.write_bytes(tiny_png())
    code, out, err = run(capsys, "chat", "--emulator", "--image", str(image), "What is it?")
    assert code == 1 and out == ""
    line = single_error_line(err)
    assert "400 [MISSING_CAPABILITY]" in line
    assert "aleph-alpha models" in line


def test_chat_prompt_from_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, emu: Emulator
) -> None:
    monkeypatch.setattr(sys, "stdin", FakeStdin("  What is the capital\nof Spain?\n"))
    code, out, _ = run(capsys, *at(emu), "chat")
    assert (code, out) == (0, MADRID + "\n")
    assert emu.requests[-1].json["messages"][-1]["content"] == "What is the capital\nof Spain?"
    monkeypatch.setattr(sys, "stdin", FakeStdin("capital of france"))
    code, out, _ = run(capsys, *at(emu), "chat", "-")
    assert (code, out) == (0, "The capital of France is Paris.\n")
    monkeypatch.setattr(sys, "stdin", FakeStdin("   \n"))
    code, out, err = run(capsys, *at(emu), "chat")
    assert code == 2 and out == ""
    assert "stdin was empty" in single_error_line(err)


def test_interactive_keeps_history_and_resets(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, emu: Emulator
) -> None:
    lines = "hello\nWhat is the capital of France?\n/reset\nagain\n/exit\nnever sent\n"
    monkeypatch.setattr(sys, "stdin", FakeStdin(lines))
    code, out, err = run(capsys, *at(emu), "chat", "-i", "--system", "Be brief.")
    assert code == 0, err
    hello = 'You said: "hello". This is the offline Aleph Alpha emulator.'
    again = 'You said: "again". This is the offline Aleph Alpha emulator.'
    assert out == f"{hello}\nThe capital of France is Paris.\n{again}\n"
    assert "conversation reset" in err
    system = {"role": "system", "content": "Be brief."}
    first, second, third = (body["messages"] for body in chat_requests(emu))
    assert first == [system, {"role": "user", "content": "hello"}]
    assert second == [
        system,
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": hello},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    assert third == [system, {"role": "user", "content": "again"}]


def test_interactive_exact_brief_input(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, emu: Emulator
) -> None:
    monkeypatch.setattr(sys, "stdin", FakeStdin("hello\n/reset\nagain\n/exit\n"))
    code, out, _ = run(capsys, *at(emu), "chat", "-i")
    assert code == 0
    assert out.count("\n") == 2
    assert [b["messages"] for b in chat_requests(emu)] == [
        [{"role": "user", "content": "hello"}],
        [{"role": "user", "content": "again"}],
    ]


def test_interactive_prompt_argument_is_the_first_message_and_eof_ends(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, emu: Emulator
) -> None:
    monkeypatch.setattr(sys, "stdin", FakeStdin("\n/bogus\n//slash\n"))  # EOF, no /exit
    code, out, err = run(capsys, *at(emu), "chat", "-i", QUESTION)
    assert code == 0
    assert out.startswith(MADRID + "\n")
    assert "unknown command /bogus" in err
    last = chat_requests(emu)[-1]["messages"]
    assert [m["content"] for m in last] == [QUESTION, MADRID, "/slash"]


def test_interactive_failed_turn_is_reported_and_forgotten(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, emu: Emulator
) -> None:
    monkeypatch.setattr(sys, "stdin", FakeStdin("first\nsecond\n"))
    emu.script([None, Fault.status(400)])
    code, out, err = run(capsys, *at(emu), "--retries", "0", "chat", "-i")
    assert code == 1
    assert out.count("\n") == 1
    assert "400" in single_error_line(err)
    monkeypatch.setattr(sys, "stdin", FakeStdin("third\n"))
    emu.clear()
    code, _, _ = run(capsys, *at(emu), "chat", "-i")
    assert code == 0


def test_interactive_ctrl_c_at_the_prompt_exits_130(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, emu: Emulator
) -> None:
    class InterruptingStdin(FakeStdin):
        def readline(self, size: int | None = -1) -> str:
            raise KeyboardInterrupt

    monkeypatch.setattr(sys, "stdin", InterruptingStdin(""))
    code, out, err = run(capsys, *at(emu), "chat", "-i")
    assert code == 130
    assert out == ""
    assert "Traceback" not in err


def test_ctrl_c_while_streaming_exits_130(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, emu: Emulator
) -> None:
    def interrupted(self: Client, request: Any, model: str) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(Client, "chat_with_streaming", interrupted)
    code, out, err = run(capsys, *at(emu), "chat", QUESTION)
    assert code == 130
    assert out == ""
    assert "Traceback" not in err


# -- errors -----------------------------------------------------------------------------------


def test_no_token(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "chat", QUESTION)
    assert code == 2 and out == ""
    line = single_error_line(err)
    for needle in ("no API token", "--token", "ALEPH_ALPHA_API_KEY", "--emulator"):
        assert needle in line


def test_connection_refused_names_the_host(capsys: pytest.CaptureFixture[str]) -> None:
    host = f"http://127.0.0.1:{closed_port()}"
    code, out, err = run(capsys, "--host", host, "--token", "t", "--retries", "0", "models")
    assert code == 1 and out == ""
    line = single_error_line(err)
    assert f"cannot connect to {host}: connection refused" in line


def test_unknown_model_is_the_emulators_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "chat", "--emulator", "--model", "no-such-model", QUESTION)
    assert code == 1 and out == ""
    line = single_error_line(err)
    assert "400 [UNKNOWN_MODEL]" in line
    assert "no-such-model" in line


def test_missing_image_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "cat.jpg"
    code, out, err = run(capsys, "chat", "--emulator", "--image", str(missing), "What?")
    assert code == 2 and out == ""
    assert single_error_line(err) == f"aleph-alpha: error: --image {missing}: no such file"


def test_timeout_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with Emulator(latency=5) as emu:
        code, out, err = run(
            capsys, *at(emu), "--timeout", "0.2", "--retries", "0", "chat", "--no-stream", "x"
        )
    assert code == 1 and out == ""
    assert "timed out waiting for" in single_error_line(err)


def test_invalid_host(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--host", "ftp://nowhere", "--token", "t", "models")
    assert code == 2
    assert "host" in single_error_line(err)


# -- complete, embed, tokenize, models --------------------------------------------------------


def test_complete_streams(capsys: pytest.CaptureFixture[str], emu: Emulator) -> None:
    code, out, err = run(capsys, *at(emu), "complete", QUESTION, "--usage")
    assert code == 0
    assert out == " " + MADRID + "\n"
    assert re.search(r"usage: \d+ prompt \+ \d+ generated tokens", err)
    body = emu.requests[-1].json
    assert emu.requests[-1].route == "complete"
    assert body["model"] == "luminous-base"
    assert body["stream"] is True
    assert body["prompt"] == [{"type": "text", "data": QUESTION, "controls": []}]


def test_complete_options_and_json(capsys: pytest.CaptureFixture[str], emu: Emulator) -> None:
    code, out, err = run(
        capsys, *at(emu), "complete", "--max-tokens", "2", "--json", "--stop", "!", QUESTION
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["finish_reason"] == "maximum_tokens"
    assert data["num_tokens_generated"] == 2
    assert data["completion"] and MADRID.startswith(data["completion"].strip())
    body = emu.requests[-1].json
    assert body["maximum_tokens"] == 2
    assert body["stop_sequences"] == ["!"]
    assert "stream" not in body


def test_embed_summary_and_json(capsys: pytest.CaptureFixture[str], emu: Emulator) -> None:
    code, out, _ = run(capsys, *at(emu), "embed", "hello", "hi there", "--compress-to-size", "128")
    assert code == 0
    assert [r.route for r in emu.requests] == ["batch_semantic_embed"]  # one request, two texts
    assert len(emu.requests[0].json["prompts"]) == 2
    lines = out.splitlines()
    assert lines[0].startswith("[1] 'hello': 128 dimensions, norm ")
    assert lines[1].startswith("[2] 'hi there': 128 dimensions")
    assert lines[2] == "cosine similarity:"
    assert re.fullmatch(r"  \[1\] ~ \[2\]: -?\d\.\d{4}", lines[3])
    code, out, _ = run(
        capsys,
        *at(emu),
        "embed",
        "--json",
        "--normalize",
        "--representation",
        "query",
        "--compress-to-size",
        "128",
        "hello",
    )
    assert code == 0
    (item,) = json.loads(out)
    assert item["text"] == "hello"
    assert len(item["embedding"]) == 128
    assert abs(sum(x * x for x in item["embedding"]) - 1.0) < 1e-3
    body = emu.requests[-1].json
    assert emu.requests[-1].route == "batch_semantic_embed"
    assert body["representation"] == "query"
    assert body["compress_to_size"] == 128
    assert body["normalize"] is True


def test_tokenize_and_detokenize_round_trip(
    capsys: pytest.CaptureFixture[str], emu: Emulator
) -> None:
    code, out, err = run(capsys, *at(emu), "tokenize", "--json", "Hello world")
    assert code == 0
    data = json.loads(out)
    assert len(data["tokens"]) == len(data["token_ids"]) >= 2
    ids = [str(i) for i in data["token_ids"]]
    code, out, err = run(capsys, *at(emu), "tokenize", "Hello world")
    assert code == 0
    table = [line.split(None, 1) for line in out.splitlines()]
    assert [row[0] for row in table] == ids
    assert [json.loads(row[1]) for row in table] == data["tokens"]
    assert err.strip() == f"{len(ids)} tokens"
    code, out, _ = run(capsys, *at(emu), "tokenize", "--detokenize", *ids)
    assert (code, out) == (0, "Hello world\n")
    code, out, _ = run(capsys, *at(emu), "detokenize", *ids, "--json")
    assert (code, json.loads(out)) == (0, {"result": "Hello world"})
    code, _, err = run(capsys, *at(emu), "tokenize", "x", "--detokenize", "1")
    assert code == 2
    assert "not both" in single_error_line(err)


def test_models_table_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "models", "--emulator")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "CONTEXT", "FEATURES", "DESCRIPTION"]
    names = [line.split()[0] for line in lines[1:]]
    assert "llama-3.1-8b-instruct" in names and "luminous-base" in names
    code, out, _ = run(capsys, "--emulator", "models", "--json")
    assert code == 0
    models = json.loads(out)
    assert [m["name"] for m in models] == names


# -- real processes ---------------------------------------------------------------------------


def clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ALEPH_ALPHA_", "AA_")) and "proxy" not in k.lower()
    }
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def test_python_dash_m_chat_with_emulator() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "aleph_alpha_client", "chat", "--emulator", QUESTION],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert proc.returncode == 0, proc.stderr
    assert "Madrid" in proc.stdout
    assert proc.stdout == MADRID + "\n"
    assert proc.stderr == ""


def installed_script() -> str | None:
    return shutil.which("aleph-alpha", path=os.path.dirname(sys.executable))


@pytest.mark.skipif(installed_script() is None, reason="the aleph-alpha script is not installed")
def test_installed_script_chat_and_errors() -> None:
    script = installed_script()
    assert script is not None
    proc = subprocess.run(
        [script, "chat", "--emulator", QUESTION],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, MADRID + "\n", "")
    proc = subprocess.run(
        [script, "models"], capture_output=True, text=True, timeout=60, env=clean_env()
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert single_error_line(proc.stderr).startswith("aleph-alpha: error: no API token")


def test_subprocess_interactive_chat_with_piped_stdin() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "aleph_alpha_client", "--emulator", "chat", "-i"],
        input="What is the capital of Spain?\n/reset\ncapital of italy\n/exit\n",
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == MADRID + "\nThe capital of Italy is Rome.\n"


def read_pty_until(fd: int, needle: bytes, limit: float = 30.0) -> bytes:
    import select

    data = b""
    while needle not in data:
        ready, _, _ = select.select([fd], [], [], limit)
        if not ready:
            break
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        data += chunk
    return data


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_terminal_without_prompt_is_interactive() -> None:
    main_fd, child_fd = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aleph_alpha_client", "--emulator", "chat", "--system", "Hi"],
        stdin=child_fd,
        stdout=child_fd,
        stderr=child_fd,
        env=clean_env(),
        close_fds=True,
    )
    os.close(child_fd)
    try:
        banner = read_pty_until(main_fd, b"> ")
        assert b"Chatting with llama-3.1-8b-instruct" in banner
        os.write(main_fd, QUESTION.encode() + b"\r")
        answer = read_pty_until(main_fd, b"Madrid.")
        assert b"Madrid." in answer
        read_pty_until(main_fd, b"> ")
        os.write(main_fd, b"\x04")  # Ctrl-D: end of input
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(main_fd)


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_terminal_input_with_piped_output_keeps_stdout_clean() -> None:
    main_fd, child_fd = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aleph_alpha_client", "--emulator", "chat"],
        stdin=child_fd,
        stdout=subprocess.PIPE,
        stderr=child_fd,
        env=clean_env(),
        close_fds=True,
    )
    os.close(child_fd)
    try:
        assert b"> " in read_pty_until(main_fd, b"> ")
        os.write(main_fd, QUESTION.encode() + b"\r")
        assert b"> " in read_pty_until(main_fd, b"> ")  # the next prompt: the answer is done
        os.write(main_fd, b"\x04")
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        os.close(main_fd)
    assert proc.returncode == 0
    assert out == (MADRID + "\n").encode()


def test_serve_runs_until_interrupted() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "aleph_alpha_client", "serve", "--port", "0", "--token", "s3"],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=clean_env(),
        preexec_fn=default_sigint,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = re.search(r"listening on (http://\S+)", line)
        assert match, line
        url = match.group(1)
        with Client(token="s3", host=url, total_retries=0) as client:
            assert any(m["name"] == "luminous-base" for m in client.models())
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert out == ""


def test_serve_bad_fault_spec(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "serve", "--port", "0", "--faults", "teapot:2")
    assert code == 2 and out == ""
    assert "--faults" in single_error_line(err)
