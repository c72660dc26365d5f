"""``aleph-alpha chat --tool module:function``: local functions as tools, one-shot and REPL."""

from __future__ import annotations

import io
import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aleph_alpha_client.cli import main
from aleph_alpha_client.emulator import Emulator

WEATHER = '''
calls = []

def get_weather(city: str) -> dict:
    """Current weather of a city."""
    calls.append(city)
    return {"city": city, "temperature": 21}

def broken(x: object) -> None:
    """Not expressible."""
'''


class FakeStdin(io.StringIO):
    def isatty(self) -> bool:
        return False


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def weather_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    (tmp_path / "cli_weather_tool.py").write_text(textwrap.dedent(WEATHER))
    monkeypatch.syspath_prepend(str(tmp_path))
    import cli_weather_tool

    yield cli_weather_tool
    sys.modules.pop("cli_weather_tool", None)


def chat_requests(emu: Emulator) -> list[Any]:
    return [r.json for r in emu.requests if r.route == "chat/completions"]


@pytest.mark.parametrize("stream", [True, False])
def test_one_shot_runs_the_tool(
    capsys: pytest.CaptureFixture[str], emu: Emulator, weather_module: Any, stream: bool
) -> None:
    argv = ["--host", emu.url, "--token", "t", "chat", "--tool", "cli_weather_tool:get_weather"]
    if not stream:
        argv.append("--no-stream")
    code = main([*argv, "Weather in Berlin?"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert weather_module.calls == ["Berlin"]
    assert '"temperature": 21' in out
    assert "[tool] get_weather(" in err
    requests = chat_requests(emu)
    assert len(requests) == 2
    assert requests[0]["tools"][0]["function"]["name"] == "get_weather"
    assert requests[1]["messages"][-1]["role"] == "tool"


def test_repl_keeps_the_tool_turns_in_the_history(
    capsys: pytest.CaptureFixture[str],
    emu: Emulator,
    weather_module: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdin", FakeStdin("Weather in Berlin?\nAnd now?\n/exit\n"))
    argv = ["--host", emu.url, "--token", "t", "chat", "-i"]
    code = main([*argv, "--tool", "cli_weather_tool:get_weather"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.count('"temperature": 21') == 2
    assert weather_module.calls == ["Berlin", "Berlin"]
    last = chat_requests(emu)[-1]["messages"]
    turn = ["user", "assistant", "tool"]
    assert [m["role"] for m in last] == [*turn, "assistant", *turn]  # the 2nd turn's tool step
    assert json.loads(last[2]["content"]) == {"city": "Berlin", "temperature": 21}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nocolon", "expected MODULE:FUNCTION"),
        ("no_such_module_xyz:f", "cannot import no_such_module_xyz"),
        ("cli_weather_tool:missing", "cli_weather_tool has no missing"),
        ("cli_weather_tool:broken", "parameter 'x'"),
    ],
)
def test_bad_tool_options_are_usage_errors(
    capsys: pytest.CaptureFixture[str], weather_module: Any, spec: str, message: str
) -> None:
    code = main(["chat", "--emulator", "--tool", spec, "Hi"])
    _out, err = capsys.readouterr()
    assert code == 2
    assert message in err
