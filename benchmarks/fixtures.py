"""Canned API answers served by nginx during the benchmarks.

Writes a document root whose file paths are the API routes, so that a client
whose ``host`` is ``http://127.0.0.1:PORT/`` finds:

* ``complete``                  completion response (reference §3.1)
* ``chat/completions``          chat response (§3.2)
* ``embed``                     embedding response with one 5120-float vector (§3.4)
* ``stream/chat/completions``   chat SSE stream with ``--stream-events`` events (§3.3)
* ``stream-cl/chat/completions``  the same bytes (server.py frames them differently)
* ``warm/chat/completions``     the same stream shape with 100 events (warm-up)

Streaming and non-streaming chat share one API path, so the stream lives under
a host prefix: a client built with ``host=http://127.0.0.1:PORT/stream/``
posts to ``/stream/chat/completions`` and gets the event stream. server.py
sends ``stream/`` and ``warm/`` with chunked transfer encoding, one HTTP chunk
per event on average (like the real API, which flushes every event), and
``stream-cl/`` as one Content-Length body.

Stdlib only; run it with any Python >= 3.10.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

EMBEDDING_SIZE = 5120
WARM_STREAM_EVENTS = 100
MODEL = "llama-3.1-8b-instruct"
CHAT_ID = "chatcmpl-3f1c2b9e8d7a4c5b9e0f1a2b3c4d5e6f"
CREATED = 1754484237

CHAT_TEXT = (
    "I'm just a computer program, so I don't have feelings, but I'm functioning "
    "properly and ready to help. How can I assist you today? Whether you have a "
    "question, need an explanation or want to talk something through, I'm here."
)

# Words the content deltas cycle through, like a tokenizer's output pieces.
_PIECES = CHAT_TEXT.replace(" ", " \x00").split("\x00")


def _compact(obj: object) -> str:
    """Serialize like the API does: compact separators."""
    return json.dumps(obj, separators=(",", ":"))


def completion_body() -> bytes:
    """A completion response in the shape of the `complete` endpoint."""
    body = {
        "completions": [
            {
                "index": 0,
                "completion": " " + CHAT_TEXT[:120],
                "raw_completion": " " + CHAT_TEXT[:120],
                "finish_reason": "maximum_tokens",
            }
        ],
        "model_version": "2022-04",
        "num_tokens_prompt_total": 4,
        "num_tokens_generated": 32,
    }
    return _compact(body).encode()


def chat_body() -> bytes:
    """A non-streaming chat response."""
    body = {
        "id": CHAT_ID,
        "choices": [
            {
                "finish_reason": "stop",
                "index": 0,
                "message": {"role": "assistant", "content": CHAT_TEXT},
                "logprobs": None,
            }
        ],
        "created": CREATED,
        "model": MODEL,
        "system_fingerprint": ".unknown.",
        "object": "chat.completion",
        "usage": {"prompt_tokens": 16, "completion_tokens": 50, "total_tokens": 66},
    }
    return _compact(body).encode()


def embed_body(size: int = EMBEDDING_SIZE) -> bytes:
    """An `embed` response for layers=[-1], pooling=["mean"] with `size` floats."""
    rng = random.Random(5120)
    # Values like a float32 model output printed by the API: ~9 significant digits.
    vector = [float(f"{rng.gauss(0.0, 0.05):.9g}") for _ in range(size)]
    body = {
        "model_version": "2022-04",
        "embeddings": {"layer_40": {"mean": vector}},
        "tokens": None,
        "num_tokens_prompt_total": 1,
    }
    return _compact(body).encode()


def _chunk(delta: dict[str, object], finish: str | None, fingerprint: str | None) -> str:
    return _compact(
        {
            "id": CHAT_ID,
            "choices": [{"finish_reason": finish, "index": 0, "delta": delta, "logprobs": None}],
            "created": CREATED,
            "model": MODEL,
            "system_fingerprint": fingerprint,
            "object": "chat.completion.chunk",
            "usage": None,
        }
    )


def chat_stream_body(events: int) -> bytes:
    """A chat SSE stream of exactly `events` data events, then ``data: [DONE]``.

    Event 1 is the role chunk, the last two are the finish chunk and the usage
    chunk, everything between is a content delta. A client that yields one item
    per event (role chunk, deltas, FinishReason, Usage) yields `events` items.
    """
    if events < 4:
        raise ValueError("a stream needs at least 4 events")
    lines = [_chunk({"role": "assistant", "content": ""}, None, None)]
    for i in range(events - 3):
        lines.append(_chunk({"content": _PIECES[i % len(_PIECES)]}, None, None))
    lines.append(_chunk({}, "stop", ".unknown."))
    lines.append(
        _compact(
            {
                "id": CHAT_ID,
                "choices": [],
                "created": CREATED,
                "model": MODEL,
                "system_fingerprint": ".unknown.",
                "object": "chat.completion.chunk",
                "usage": {
                    "prompt_tokens": 16,
                    "completion_tokens": events - 3,
                    "total_tokens": events + 13,
                },
            }
        )
    )
    lines.append("[DONE]")
    return "".join(f"data: {line}\n\n" for line in lines).encode()


def write_fixtures(root: Path, stream_events: int) -> dict[str, int]:
    """Write every canned answer under `root`; return {route: size in bytes}."""
    files = {
        "complete": completion_body(),
        "chat/completions": chat_body(),
        "embed": embed_body(),
        "stream/chat/completions": chat_stream_body(stream_events),
        "stream-cl/chat/completions": chat_stream_body(stream_events),
        "warm/chat/completions": chat_stream_body(WARM_STREAM_EVENTS),
    }
    sizes: dict[str, int] = {}
    for route, data in files.items():
        path = root / route
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        sizes[route] = len(data)
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="document root to write")
    parser.add_argument("--stream-events", type=int, default=20_000)
    args = parser.parse_args()
    for route, size in write_fixtures(args.root, args.stream_events).items():
        print(f"{size:>10}  {route}")


if __name__ == "__main__":
    main()
