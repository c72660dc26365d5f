"""Drive the official client 11.5.1 against our emulator (run by tests/test_official_client.py).

Run with the official client's interpreter: ``python drive_official_client.py URL``. Every
call must parse; the script asserts on the answers and prints ALL OK at the end.
"""

import asyncio
import sys

import aleph_alpha_client
from aleph_alpha_client import (
    AsyncClient,
    BatchSemanticEmbeddingRequest,
    ChatRequest,
    Client,
    CompletionRequest,
    DetokenizationRequest,
    EmbeddingRequest,
    EvaluationRequest,
    ExplanationRequest,
    Message,
    Prompt,
    RerankRequest,
    SemanticEmbeddingRequest,
    SemanticRepresentation,
    TokenizationRequest,
)
from aleph_alpha_client.chat import Role, StreamOptions
from aleph_alpha_client.embedding import EmbeddingV2Request, InstructableEmbeddingRequest
from aleph_alpha_client.translation import TranslationRequest

assert aleph_alpha_client.__file__ and "site-packages" in aleph_alpha_client.__file__
print("official at", aleph_alpha_client.__file__)
url = sys.argv[1]
c = Client(token="t", host=url)
chat = ChatRequest(
    model="llama-3.1-8b-instruct",
    messages=[Message(role=Role.User, content="What is the capital of Spain?")],
)
answer = c.chat(chat, model="llama-3.1-8b-instruct")
assert answer.message.content == "The capital of Spain is Madrid.", answer
print("chat:", answer)
print(
    "complete:",
    c.complete(
        CompletionRequest(prompt=Prompt.from_text("An apple a day"), maximum_tokens=8),
        model="luminous-base",
    ).completions[0],
)
e = c.embed(
    EmbeddingRequest(prompt=Prompt.from_text("hi"), layers=[0, -1], pooling=["mean", "max"]),
    model="luminous-base",
)
print("embed:", list(e.embeddings), len(next(iter(e.embeddings.values()))))
print(
    "semantic:",
    len(
        c.semantic_embed(
            SemanticEmbeddingRequest(
                prompt=Prompt.from_text("hi"),
                representation=SemanticRepresentation.Symmetric,
                compress_to_size=128,
            ),
            model="luminous-base",
        ).embedding
    ),
)
print(
    "batch:",
    len(
        c.batch_semantic_embed(
            BatchSemanticEmbeddingRequest(
                prompts=[Prompt.from_text(str(i)) for i in range(150)],
                representation=SemanticRepresentation.Query,
            ),
            model="luminous-base",
        ).embeddings
    ),
)
print(
    "instructable:",
    len(
        c.instructable_embed(
            InstructableEmbeddingRequest(input=Prompt.from_text("hi"), instruction="Represent"),
            model="pharia-1-embedding-4608-control",
        ).embedding
    ),
)
print(
    "embeddings v2:",
    c.embeddings(EmbeddingV2Request(input="hello"), model="pharia-1-embedding-4608-control")
    .data[0]
    .embedding[:2],
)
t = c.tokenize(
    TokenizationRequest(prompt="Hello world", tokens=True, token_ids=True), model="luminous-base"
)
print("tokenize:", t)
print(
    "detokenize:", c.detokenize(DetokenizationRequest(token_ids=t.token_ids), model="luminous-base")
)
print(
    "evaluate:",
    c.evaluate(
        EvaluationRequest(prompt=Prompt.from_text("Hello"), completion_expected=" world"),
        model="luminous-base",
    ).result,
)
print(
    "explain:",
    len(
        c.explain(
            ExplanationRequest(
                prompt=Prompt.from_text("I like pizza"),
                target=" with cheese",
                target_granularity=__import__("aleph_alpha_client").TargetGranularity.Token,
            ),
            model="luminous-base",
        ).explanations
    ),
)
print(
    "rerank:",
    c.rerank(
        RerankRequest(query="q", documents=["a", "b", "c"], top_n=2), model="bge-reranker-v2-m3"
    ),
)
print(
    "translate:",
    c.translate(
        TranslationRequest(model="pharia-1-mt-translation", source="Hallo", target_language="en")
    ),
)
print("models:", len(c.models()), "version:", c.get_version())
c.validate_version()
tok = c.tokenizer("luminous-base")
assert tok.encode("Hello world").ids == t.token_ids
print("tokenizer: ok")


async def main():
    async with AsyncClient(token="t", host=url) as ac:
        print("async chat:", (await ac.chat(chat, model="llama-3.1-8b-instruct")).message.content)
        req = ChatRequest(
            model="x", messages=chat.messages, stream_options=StreamOptions(include_usage=True)
        )
        items = [i async for i in ac.chat_with_streaming(req, model="llama-3.1-8b-instruct")]
        print("async chat stream:", items[0], items[-2:], len(items))
        assert type(items[-1]).__name__ == "Usage" and items[-2].value == "stop", items
        tools = [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "w",
                    "parameters": {
                        "type": "object",
                        "properties": {"location": {"type": "string"}},
                        "required": ["location"],
                    },
                },
            }
        ]
        items = [
            i
            async for i in ac.chat_with_streaming(
                ChatRequest(
                    model="x",
                    messages=[Message(role=Role.User, content="Weather in Paris?")],
                    tools=tools,
                ),
                model="qwen3-32b-tool",
            )
        ]
        print("async tool stream:", items[-2:])
        assert type(items[-2]).__name__ == "ToolCall" and items[-1].value == "tool_calls", items
        items = [
            i
            async for i in ac.complete_with_streaming(
                CompletionRequest(prompt=Prompt.from_text("An apple"), maximum_tokens=5),
                model="luminous-base",
            )
        ]
        print("async complete stream:", items[-2:], len(items))
        assert type(items[-1]).__name__ == "CompletionSummary", items


asyncio.run(main())
print("ALL OK")
