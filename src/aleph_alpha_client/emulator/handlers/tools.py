"""Which tool the emulator calls: the one whose name the user's message mentions most."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["pick_tool"]

_IGNORED = {"get", "set", "the", "fetch", "tool", "function", "current"}


def _words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [
        w.lower()
        for w in re.split(r"[^A-Za-z0-9]+", spaced)
        if len(w) >= 3 and w.lower() not in _IGNORED
    ]


def pick_tool(tools: list[dict[str, Any]], text: str) -> int:
    """Index of the tool whose name words occur most in ``text`` (the first one on a tie)."""
    lowered = text.lower()
    best, best_score = 0, 0
    for i, tool in enumerate(tools):
        name = tool["function"].get("name") or ""
        score = sum(1 for word in _words(name) if word in lowered)
        if score > best_score:
            best, best_score = i, score
    return best
