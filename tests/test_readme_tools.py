"""The README's tool-loop and structured-streaming examples run as written against the emulator."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from aleph_alpha_client.emulator import Emulator

README = Path(__file__).resolve().parent.parent / "README.md"


def examples() -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    found = re.findall(r"<!-- example: (.+?) -->\n```python\n(.*?)```", text, re.S)
    return dict(found)


def test_the_examples_are_there() -> None:
    assert set(examples()) >= {"weather tool loop", "pydantic answer streamed as partial objects"}


@pytest.mark.parametrize("name", sorted(examples()))
def test_readme_example_runs(
    name: str, aleph_alpha_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALEPH_ALPHA_BASE_URL", aleph_alpha_emulator.url)
    monkeypatch.setenv("ALEPH_ALPHA_API_KEY", "any")
    out = io.StringIO()
    namespace: dict[str, object] = {"__name__": "readme_example"}
    with contextlib.redirect_stdout(out):
        exec(compile(examples()[name], f"README:{name}", "exec"), namespace)
    printed = out.getvalue().splitlines()
    if name == "weather tool loop":
        assert '"temperature": 21' in printed[0]
        assert printed[1] == "4"
        assert printed[2:4] == ["ToolCall", "ToolResult"]
        assert printed[-1] == "ToolRunResult"
    else:
        assert printed[0].startswith("{")
        assert len(printed) > 3
        assert printed[-1].startswith("name=")
