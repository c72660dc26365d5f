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
    assert set(examples()) >= {
        "weather tool loop",
        "pydantic answer streamed as partial objects",
        "reasoning stream",
        "logprobs and n",
    }


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
    elif name == "reasoning stream":
        (line,) = printed
        thinking, _, answer = line.rpartition("\x1b[0m")
        assert thinking.startswith("\x1b[2m")
        plain = thinking.replace("\x1b[0m", "").replace("\x1b[2m", "")
        assert plain.startswith('The user wrote: "Why is the sky blue?".')
        assert plain.endswith("I look at it once more from another side before I answer.")
        assert (
            answer == 'You said: "Why is the sky blue?". This is the offline Aleph Alpha emulator.'
        )

    elif name == "logprobs and n":
        assert printed[-1] == "3 The capital of France is Paris."
        assert "'The capital of France is Paris.'" in printed[-2]
        assert "(Answer 3.)" in printed[-2]
        assert printed[0].startswith("'The' -")
    else:
        assert printed[0].startswith("{")
        assert len(printed) > 3
        assert printed[-1].startswith("name=")
