"""Record vcrpy cassettes with the official client 11.5.1 against our emulator.

Run with the official client's interpreter (with vcrpy installed):
``python record_cassettes.py URL DIR``. Writes ``DIR/official_sync.yaml`` (requests) and
``DIR/official_async.yaml`` (aiohttp, streaming included); prints the answers as JSON lines
so the replaying test can compare them with what our client parses.
"""

import asyncio
import json
import sys

import vcr

import aleph_alpha_client
from aleph_alpha_client import (
    AsyncClient,
    ChatRequest,
    Client,
    CompletionRequest,
    EmbeddingRequest,
    Message,
    Prompt,
    TokenizationRequest,
)
from aleph_alpha_client.chat import Role

assert "site-packages" in (aleph_alpha_client.__file__ or "")
url, out = sys.argv[1], sys.argv[2]
recorder = vcr.VCR(record_mode="all", match_on=["method", "uri", "body"])
results = {}
chat = ChatRequest(
    model="llama-3.1-8b-instruct",
    messages=[Message(role=Role.User, content="What is the capital of Spain?")],
)
completion = CompletionRequest(prompt=Prompt.from_text("An apple a day"), maximum_tokens=8)

with recorder.use_cassette(f"{out}/official_sync.yaml"):
    c = Client(token="cassette-token", host=url)
    results["sync_chat"] = c.chat(chat, model="llama-3.1-8b-instruct").message.content
    results["sync_complete"] = (
        c.complete(completion, model="luminous-base").completions[0].completion
    )
    results["sync_tokens"] = c.tokenize(
        TokenizationRequest(prompt="Hello world", tokens=True, token_ids=True),
        model="luminous-base",
    ).token_ids
    results["sync_embed_keys"] = len(
        c.embed(
            EmbeddingRequest(prompt=Prompt.from_text("hi"), layers=[-1], pooling=["mean"]),
            model="luminous-base",
        ).embeddings
    )
    results["sync_version"] = c.get_version()


async def main():
    async with AsyncClient(token="cassette-token", host=url) as ac:
        results["async_chat"] = (await ac.chat(chat, model="llama-3.1-8b-instruct")).message.content
        results["async_complete"] = (
            (await ac.complete(completion, model="luminous-base")).completions[0].completion
        )
        items = [i async for i in ac.chat_with_streaming(chat, model="llama-3.1-8b-instruct")]
        results["async_chat_stream"] = "".join(getattr(i, "content", "") or "" for i in items)
        items = [i async for i in ac.complete_with_streaming(completion, model="luminous-base")]
        results["async_complete_stream_len"] = len(items)


with recorder.use_cassette(f"{out}/official_async.yaml"):
    asyncio.run(main())
print(json.dumps(results))
