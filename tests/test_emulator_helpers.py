"""Helpers shared by the emulator tests: a tiny stdlib HTTP client and an SSE splitter."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any

from aleph_alpha_client.emulator import Emulator


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def events(self) -> list[str]:
        """The ``data:`` payloads of an SSE body (asserting the exact framing)."""
        text = self.body.decode()
        assert text.endswith("\n\n"), text[-50:]
        blocks = text[:-2].split("\n\n")
        payloads = []
        for block in blocks:
            assert block.startswith("data: "), block
            assert "\n" not in block, block
            payloads.append(block[len("data: ") :])
        return payloads

    def json_events(self) -> list[Any]:
        return [json.loads(e) for e in self.events() if e != "[DONE]"]


class Http:
    """One keep-alive connection to an emulator."""

    def __init__(self, emu: Emulator, timeout: float = 30.0, token: str | None = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=timeout)
        self.token = token

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Reply:
        all_headers = {"Content-Type": "application/json"} if method == "POST" else {}
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        all_headers.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        self.conn.request(method, path, body=data, headers=all_headers)
        response = self.conn.getresponse()
        payload = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, payload)

    def post(self, path: str, body: Any, **kwargs: Any) -> Reply:
        return self.request("POST", path, body, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def close(self) -> None:
        self.conn.close()


def chat_body(text: str, model: str = "llama-3.1-8b-instruct", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def text_prompt(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "data": text, "controls": []}]


def compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
