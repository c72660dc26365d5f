"""Every promise of docs/compat.md, encoded against a real loopback server.

Each test names the compat.md row it keeps and the projects whose call shapes it copies
(LangChain, LlamaIndex, OpenLLMetry, Intelligence Layer, the official README). A change that
breaks one of these call shapes fails here.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import io
import json
import socket
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

# Row 1: the names every project imports from the top level.
from aleph_alpha_client import (
    AsyncClient,
    BatchSemanticEmbeddingRequest,
    BusyError,
    Client,
    CompletionRequest,
    DetokenizationRequest,
    EmbeddingRequest,
    EvaluationRequest,
    ExplanationRequest,
    Prompt,
    SemanticEmbeddingRequest,
    SemanticRepresentation,
    TokenizationRequest,
)
from conftest import TOKEN
from scripted_server import Received, Reply, ScriptedServer

# ------------------------------------------------------------------------------- helpers

COMPLETION_ANSWER = {
    "completions": [
        {
            "index": 0,
            "log_probs": [{" Paris": -0.1}],
            "completion": " Paris",
            "raw_completion": " Paris",
            "completion_tokens": [" Paris"],
            "finish_reason": "maximum_tokens",
        }
    ],
    "model_version": "2022-04",
    "num_tokens_prompt_total": 5,
    "num_tokens_generated": 1,
}

SEMANTIC_ANSWER = {
    "model_version": "2022-04",
    "embedding": [0.5, 0.25],
    "num_tokens_prompt_total": 1,
}
BATCH_ANSWER = {"model_version": "2022-04", "embeddings": [[0.5]], "num_tokens_prompt_total": 1}


def prompt_text() -> Prompt:
    return Prompt.from_text("The capital of France is")


def completion_request(**fields: Any) -> CompletionRequest:
    return CompletionRequest(prompt=prompt_text(), maximum_tokens=1, **fields)


def sync_client(server: ScriptedServer, **options: Any) -> Client:
    options.setdefault("total_retries", 0)
    options.setdefault("request_timeout_seconds", 10)
    return Client(TOKEN, host=server.url, **options)


def async_client(server: ScriptedServer, **options: Any) -> AsyncClient:
    options.setdefault("total_retries", 0)
    options.setdefault("request_timeout_seconds", 10)
    return AsyncClient(TOKEN, host=server.url, **options)


def run_async(server: ScriptedServer, method: str, *args: Any, **kwargs: Any) -> Any:
    """Call an AsyncClient method in a fresh event loop."""

    async def go() -> Any:
        async with async_client(server) as client:
            return await getattr(client, method)(*args, **kwargs)

    return asyncio.run(go())


def bodies(received: list[Received]) -> list[Any]:
    return [r.json() if r.body else None for r in received]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Make every attempt to resolve or connect fail loudly, and record it."""
    attempts: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(repr(args))
        raise AssertionError(f"network I/O attempted: {args!r}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    yield attempts


# -------------------------------------------------------- row 1: top-level names (all)


def test_row1_every_name_the_projects_import_is_a_class_from_the_top_level() -> None:
    import aleph_alpha_client

    for name in (
        "Client",
        "AsyncClient",
        "CompletionRequest",
        "Prompt",
        "SemanticEmbeddingRequest",
        "SemanticRepresentation",
        "BatchSemanticEmbeddingRequest",
        "BusyError",
    ):
        assert inspect.isclass(getattr(aleph_alpha_client, name)), name
    assert issubclass(BusyError, Exception)


# ---------------------------- row 2: the constructor with keywords (LangChain, LlamaIndex, IL)


def test_row2_langchain_constructor_shape(server: ScriptedServer) -> None:
    # langchain_community AlephAlpha: token positional or keyword, every option by keyword.
    server.default = Reply.json(COMPLETION_ANSWER)
    with Client(
        TOKEN,
        host=server.url,
        hosting="aleph-alpha",
        request_timeout_seconds=30,
        total_retries=2,
        nice=True,
        verify_ssl=True,
    ) as client:
        client.complete(request=completion_request(), model="luminous-base")
    (request,) = server.received
    assert request.path == "/complete?nice=true"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    body = request.json()
    assert list(body)[-2:] == ["model", "hosting"]
    assert body["model"] == "luminous-base"
    assert body["hosting"] == "aleph-alpha"


def test_row2_official_positional_constructor_shapes(server: ScriptedServer) -> None:
    # Client(token, host, hosting, request_timeout_seconds, total_retries, nice, verify_ssl,
    # tags, pool_size); AsyncClient has limit third (official-client-reference.md §2.1).
    server.default = Reply.json(COMPLETION_ANSWER)
    with Client(TOKEN, server.url, "aleph-alpha", 30, 0, True, True, ["t"], 2) as client:
        assert client.hosting == "aleph-alpha"
        assert client.tags == ["t"]
        client.complete(completion_request(), "m")

    async def go() -> None:
        async with AsyncClient(TOKEN, server.url, 5, "aleph-alpha", 30, 0, True) as client:
            assert client.hosting == "aleph-alpha"
            await client.complete(completion_request(), "m")

    asyncio.run(go())
    sync_request, async_request = server.received
    assert sync_request.path == async_request.path == "/complete?nice=true"
    assert sync_request.json()["tags"] == ["t"]
    assert sync_request.json()["hosting"] == async_request.json()["hosting"] == "aleph-alpha"


def test_row2_request_timeout_none_is_accepted(server: ScriptedServer) -> None:
    server.default = Reply.json(COMPLETION_ANSWER)
    with Client(TOKEN, host=server.url, request_timeout_seconds=None) as client:
        assert client.complete(completion_request(), "m").completions[0].completion == " Paris"
    assert run_async(server, "complete", completion_request(), "m").model_version == "2022-04"

    async def with_none() -> None:
        async with AsyncClient(TOKEN, host=server.url, request_timeout_seconds=None) as client:
            await client.complete(completion_request(), "m")

    asyncio.run(with_none())
    assert len(server.received) == 3


def test_row2_verify_ssl_false_is_accepted(server: ScriptedServer) -> None:
    server.default = Reply.json(COMPLETION_ANSWER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it may warn that certificates are not checked
        client = Client(TOKEN, host=server.url, verify_ssl=False, total_retries=0)
    with client:
        client.complete(completion_request(), "m")
    assert len(server.received) == 1


def test_row2_llamaindex_async_constructor_shape(server: ScriptedServer) -> None:
    server.default = Reply.json(COMPLETION_ANSWER)

    async def go() -> Any:
        async with AsyncClient(
            token=TOKEN,
            host=server.url,
            hosting="aleph-alpha",
            request_timeout_seconds=30,
            total_retries=1,
            nice=False,
        ) as client:
            return await client.complete(request=completion_request(), model="luminous-base")

    response = asyncio.run(go())
    assert response.completions[0].completion == " Paris"
    (request,) = server.received
    assert request.path == "/complete"
    assert request.json()["hosting"] == "aleph-alpha"


# --------------------------------------------- row 3: no network I/O in constructors (LangChain)


def test_row3_constructors_do_no_network_io(no_network: list[str]) -> None:
    # LangChain's unit tests build clients offline, also for unresolvable hosts.
    client = Client("token", host="https://api.invalid.example:1234")
    AsyncClient("token", host="https://api.invalid.example:1234")
    client.with_options(max_retries=0)
    client.close()
    assert no_network == []


def test_row3_constructor_does_not_connect_to_the_server(server: ScriptedServer) -> None:
    Client(TOKEN, host=server.url)
    AsyncClient(TOKEN, host=server.url)
    with Client(TOKEN, host=server.url):
        pass
    assert server.connections == 0


def test_row3_default_host_without_io(no_network: list[str]) -> None:
    # The seed: Client(token=...) without a host uses a documented default host.
    from aleph_alpha_client import DEFAULT_HOST

    assert DEFAULT_HOST == "https://api.aleph-alpha.com"
    assert Client("token").host == "https://api.aleph-alpha.com/"
    assert Client(token="token").host == "https://api.aleph-alpha.com/"
    assert AsyncClient(token="token").host == "https://api.aleph-alpha.com/"
    assert no_network == []


def test_row3_the_no_network_fixture_can_fail(no_network: list[str]) -> None:
    with pytest.raises(AssertionError, match="network I/O"):
        socket.getaddrinfo("localhost", 80)
    assert len(no_network) == 1


# ----------------------- row 4: methods called positionally and by keyword (all projects)

# (method, request, model, answer) for every method of the row; tokenizer is tested below.
CALLS: list[tuple[str, Any, Any]] = [
    ("complete", completion_request(), Reply.json(COMPLETION_ANSWER)),
    (
        "semantic_embed",
        SemanticEmbeddingRequest(prompt=prompt_text(), representation=SemanticRepresentation.Query),
        Reply.json(SEMANTIC_ANSWER),
    ),
    (
        "batch_semantic_embed",
        BatchSemanticEmbeddingRequest(
            prompts=[prompt_text()], representation=SemanticRepresentation.Document
        ),
        Reply.json(BATCH_ANSWER),
    ),
    (
        "tokenize",
        TokenizationRequest(prompt="Hello", tokens=True, token_ids=True),
        Reply.json({"tokens": ["ĠHello"], "token_ids": [49222]}),
    ),
    ("detokenize", DetokenizationRequest(token_ids=[49222]), Reply.json({"result": " Hello"})),
    (
        "embed",
        EmbeddingRequest(prompt=prompt_text(), layers=[-1], pooling=["mean"]),
        Reply.json(
            {
                "model_version": "2022-04",
                "embeddings": {"layer_40": {"mean": [0.5]}},
                "tokens": None,
                "num_tokens_prompt_total": 1,
            }
        ),
    ),
    (
        "evaluate",
        EvaluationRequest(prompt=prompt_text(), completion_expected=" Paris"),
        Reply.json(
            {
                "model_version": "2022-04",
                "result": {"log_probability": -0.1},
                "num_tokens_prompt_total": 5,
            }
        ),
    ),
    (
        "explain",
        ExplanationRequest(prompt=prompt_text(), target=" Paris"),
        Reply.json({"model_version": "2022-04", "explanations": []}),
    ),
]


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize(("method", "request_", "answer"), CALLS, ids=[c[0] for c in CALLS])
def test_row4_request_model_positionally_and_by_keyword(
    server: ScriptedServer, kind: str, method: str, request_: Any, answer: Reply
) -> None:
    server.default = answer
    shapes: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        ((request_, "luminous-base"), {}),
        ((), {"request": request_, "model": "luminous-base"}),
        ((request_,), {"model": "luminous-base"}),
        ((), {"model": "luminous-base", "request": request_}),
    ]
    results = []
    for args, kwargs in shapes:
        if kind == "sync":
            with sync_client(server) as client:
                results.append(getattr(client, method)(*args, **kwargs))
        else:
            results.append(run_async(server, method, *args, **kwargs))
    assert all(result == results[0] for result in results)
    sent = bodies(server.received)
    assert len(sent) == len(shapes)
    assert all(body == sent[0] for body in sent)
    assert sent[0]["model"] == "luminous-base"
    assert all(r.path == "/" + method for r in server.received)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_row4_models_and_get_version_take_no_arguments(server: ScriptedServer, kind: str) -> None:
    server.add(
        Reply.json([{"name": "luminous-base"}]),
        Reply(200, {"Content-Type": "text/plain"}, [b"1.19.0"]),
    )
    if kind == "sync":
        with sync_client(server) as client:
            models, version = client.models(), client.get_version()
    else:

        async def go() -> tuple[Any, Any]:
            async with async_client(server) as client:
                return await client.models(), await client.get_version()

        models, version = asyncio.run(go())
    assert models == [{"name": "luminous-base"}]
    assert version == "1.19.0"
    assert [(r.method, r.path) for r in server.received] == [
        ("GET", "/models_available"),
        ("GET", "/version"),
    ]


# ---------------------------------------- row 5: Client.complete is wrappable (OpenLLMetry)


def _openllmetry_style_wrapper(original: Any, seen: list[Any]) -> Any:
    """What OpenLLMetry's wrapt wrapper does: read the prompt, call through, read the
    response."""

    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        request = kwargs.get("request") or args[0]
        seen.append(("prompt", request.prompt.to_json()[0]["data"]))
        response = original(self, *args, **kwargs)
        seen.append(("response", response.to_json()))
        return response

    return wrapper


def test_row5_complete_is_a_real_class_attribute() -> None:
    for cls in (Client, AsyncClient):
        assert "complete" in vars(cls), f"{cls.__name__}.complete must be defined on the class"
        assert inspect.isfunction(vars(cls)["complete"])
    params = list(inspect.signature(Client.complete).parameters)
    assert params == ["self", "request", "model"]


def test_row5_complete_wrapped_on_the_class_is_used_by_every_instance(
    server: ScriptedServer,
) -> None:
    server.default = Reply.json(COMPLETION_ANSWER)
    early = sync_client(server)  # made before the patch: must go through it too
    original = Client.__dict__["complete"]
    seen: list[Any] = []
    setattr(Client, "complete", _openllmetry_style_wrapper(original, seen))  # noqa: B010
    try:
        late = sync_client(server)
        early.complete(completion_request(), "luminous-base")
        late.complete(request=completion_request(), model="luminous-base")
        late.with_options(max_retries=1).complete(completion_request(), model="luminous-base")
    finally:
        setattr(Client, "complete", original)  # noqa: B010
        early.close()
        late.close()
    assert Client.__dict__["complete"] is original
    assert [kind for kind, _ in seen] == ["prompt", "response"] * 3
    assert seen[0] == ("prompt", "The capital of France is")
    response_json = seen[1][1]
    assert response_json["completions"][0]["completion"] == " Paris"
    assert response_json["model_version"] == "2022-04"
    json.dumps(response_json)  # OpenLLMetry serializes it
    assert len(server.received) == 3


def test_row5_async_complete_wrapped_on_the_class(server: ScriptedServer) -> None:
    server.default = Reply.json(COMPLETION_ANSWER)
    original = AsyncClient.__dict__["complete"]
    seen: list[str] = []

    @functools.wraps(original)
    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append((kwargs.get("request") or args[0]).prompt.to_json()[0]["data"])
        return await original(self, *args, **kwargs)

    setattr(AsyncClient, "complete", wrapper)  # noqa: B010
    try:
        response = run_async(server, "complete", request=completion_request(), model="m")
    finally:
        setattr(AsyncClient, "complete", original)  # noqa: B010
    assert seen == ["The capital of France is"]
    assert response.num_tokens_generated == 1


# ------------------------------- row 6: CompletionRequest with all official fields (LangChain)

ALL_FIELDS: dict[str, Any] = {
    "maximum_tokens": 64,
    "temperature": 0.7,
    "top_k": 5,
    "top_p": 0.9,
    "presence_penalty": 0.1,
    "frequency_penalty": 0.2,
    "repetition_penalties_include_prompt": True,
    "use_multiplicative_presence_penalty": True,
    "penalty_bias": "bias",
    "penalty_exceptions": ["\n"],
    "penalty_exceptions_include_stop_sequences": False,
    "best_of": 2,
    "n": 1,
    "logit_bias": {42: -1.5},
    "log_probs": 3,
    "stop_sequences": ["###"],
    "tokens": True,
    "disable_optimizations": True,
    "minimum_tokens": 1,
    "echo": True,
    "use_multiplicative_frequency_penalty": True,
    "sequence_penalty": 0.3,
    "sequence_penalty_min_length": 3,
    "use_multiplicative_sequence_penalty": True,
    "completion_bias_inclusion": ["Paris", "Lyon"],
    "completion_bias_inclusion_first_token_only": True,
    "completion_bias_exclusion": ["Berlin"],
    "completion_bias_exclusion_first_token_only": True,
    "contextual_control_threshold": 0.5,
    "control_log_additive": False,
    "repetition_penalties_include_completion": False,
    "raw_completion": True,
    "steering_concepts": ["concept-1"],
}


def test_row6_all_34_official_fields_as_keywords(server: ScriptedServer) -> None:
    assert len(ALL_FIELDS) + 1 == 34  # with prompt
    request = CompletionRequest(prompt=prompt_text(), **ALL_FIELDS)
    server.default = Reply.json(COMPLETION_ANSWER)
    with sync_client(server) as client:
        client.complete(request=request, model="luminous-base")
    run_async(server, "complete", request=request, model="luminous-base")
    sync_body, async_body = (r.body for r in server.received)
    assert sync_body == async_body
    body = json.loads(sync_body)
    expected = {"prompt": prompt_text().to_json(), **ALL_FIELDS, "model": "luminous-base"}
    expected["logit_bias"] = {"42": -1.5}
    assert list(body) == list(expected)  # official field order, model last
    assert body == expected


def test_row6_langchain_passes_none_for_optional_fields(server: ScriptedServer) -> None:
    # LangChain's AlephAlpha declares several of these Optional and forwards them as they
    # are; the official client leaves None fields out of the body.
    none_fields = {
        "maximum_tokens": None,
        "repetition_penalties_include_prompt": None,
        "use_multiplicative_presence_penalty": None,
        "penalty_bias": None,
        "penalty_exceptions": None,
        "penalty_exceptions_include_stop_sequences": None,
        "best_of": None,
        "logit_bias": None,
        "log_probs": None,
        "disable_optimizations": None,
        "minimum_tokens": None,
        "completion_bias_inclusion": None,
        "completion_bias_exclusion": None,
        "contextual_control_threshold": None,
        "control_log_additive": None,
        "stop_sequences": None,
    }
    request = CompletionRequest(prompt=prompt_text(), **none_fields)
    server.default = Reply.json(COMPLETION_ANSWER)
    with sync_client(server) as client:
        client.complete(request=request, model="luminous-base")
    body = server.received[0].json()
    assert not set(none_fields) & set(body)
    assert None not in body.values()
    assert body["temperature"] == 0.0


def test_row6_fields_keep_official_order_and_defaults() -> None:
    import dataclasses

    fields = dataclasses.fields(CompletionRequest)
    assert [f.name for f in fields] == ["prompt", *ALL_FIELDS]
    request = CompletionRequest(prompt_text())
    assert request.control_log_additive is True
    assert request.use_multiplicative_presence_penalty is False
    assert request.repetition_penalties_include_completion is True


# ------------------------------ row 7: SemanticRepresentation names (LangChain, LlamaIndex)


def test_row7_semantic_representation_members() -> None:
    assert SemanticRepresentation.Symmetric.value == "symmetric"
    assert SemanticRepresentation.Document.value == "document"
    assert SemanticRepresentation.Query.value == "query"
    assert [m.name for m in SemanticRepresentation] == ["Symmetric", "Document", "Query"]


def test_row7_langchain_embedding_shapes(server: ScriptedServer) -> None:
    # langchain AlephAlphaAsymmetricSemanticEmbedding / SymmetricSemanticEmbedding.
    server.add(Reply.json(SEMANTIC_ANSWER), Reply.json(SEMANTIC_ANSWER))
    with sync_client(server) as client:
        for representation in (SemanticRepresentation.Document, SemanticRepresentation.Query):
            request = SemanticEmbeddingRequest(
                prompt=Prompt.from_text("a document"),
                representation=representation,
                compress_to_size=128,
                normalize=True,
                contextual_control_threshold=None,
                control_log_additive=True,
            )
            response = client.semantic_embed(request=request, model="luminous-base")
            assert response.embedding == [0.5, 0.25]
    assert [b["representation"] for b in bodies(server.received)] == ["document", "query"]


# -------------------------- row 8: response attributes and to_json (LangChain, LlamaIndex, OTel)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_row8_completion_response_attributes_and_to_json(server: ScriptedServer, kind: str) -> None:
    server.default = Reply.json(COMPLETION_ANSWER)
    if kind == "sync":
        with sync_client(server) as client:
            response = client.complete(completion_request(log_probs=1), "luminous-base")
    else:
        response = run_async(server, "complete", completion_request(log_probs=1), "luminous-base")
    completion = response.completions[0]
    assert completion.completion == " Paris"
    assert completion.finish_reason == "maximum_tokens"
    assert completion.log_probs == [{" Paris": -0.1}]
    assert completion.raw_completion == " Paris"
    assert response.model_version == "2022-04"
    assert response.num_tokens_prompt_total == 5
    assert response.num_tokens_generated == 1
    as_json = response.to_json()
    assert as_json == {
        "model_version": "2022-04",
        "completions": [
            {
                "log_probs": [{" Paris": -0.1}],
                "completion": " Paris",
                "completion_tokens": [" Paris"],
                "finish_reason": "maximum_tokens",
                "raw_completion": " Paris",
            }
        ],
        "num_tokens_prompt_total": 5,
        "num_tokens_generated": 1,
        "optimized_prompt": None,
    }
    assert json.loads(json.dumps(as_json)) == as_json


# ------------------------------------------ row 9: request.prompt.to_json()[0]["data"] (OTel)


def test_row9_prompt_to_json_data_is_the_text() -> None:
    for prompt in (
        Prompt.from_text("Hello there"),
        Prompt("Hello there"),
        Prompt.from_text("Hello there", controls=[]),
    ):
        request = CompletionRequest(prompt=prompt, maximum_tokens=1)
        assert request.prompt.to_json()[0]["data"] == "Hello there"
        assert request.prompt.to_json()[0]["type"] == "text"


# ------------------------ row 10: client.tokenizer(model) (LlamaIndex, Intelligence Layer)


@pytest.fixture(scope="module")
def tokenizer_json() -> str:
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import models, pre_tokenizers

    vocab = {"[UNK]": 0, "hello": 1, "world": 2, "!": 3}
    tokenizer = tokenizers.Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    text: str = tokenizer.to_str()
    return text


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("keyword", [False, True], ids=["positional", "keyword"])
def test_row10_tokenizer_encodes_and_decodes(
    server: ScriptedServer, tokenizer_json: str, kind: str, keyword: bool
) -> None:
    server.default = Reply(200, {"Content-Type": "application/json"}, [tokenizer_json.encode()])
    args: tuple[Any, ...] = () if keyword else ("luminous-base",)
    kwargs: dict[str, Any] = {"model": "luminous-base"} if keyword else {}
    if kind == "sync":
        with sync_client(server) as client:
            tokenizer = client.tokenizer(*args, **kwargs)
    else:
        tokenizer = run_async(server, "tokenizer", *args, **kwargs)
    encoding = tokenizer.encode("hello world !")
    assert encoding.ids == [1, 2, 3]
    assert encoding.tokens == ["hello", "world", "!"]
    assert tokenizer.decode([1, 2]) == "hello world"
    assert type(tokenizer).__module__.startswith("tokenizers")
    ((method, path),) = [(r.method, r.path) for r in server.received]
    assert (method, path) == ("GET", "/models/luminous-base/tokenizer")


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_row10_tokenizer_without_the_extra_fails_before_sending(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    import sys

    from aleph_alpha_client import MissingDependencyError

    monkeypatch.setitem(sys.modules, "tokenizers", None)  # import tokenizers -> ImportError
    server.default = Reply(200, {"Content-Type": "application/json"}, [b"{}"])
    with pytest.raises(MissingDependencyError, match="tokenizers") as info:
        if kind == "sync":
            with sync_client(server) as client:
                client.tokenizer("luminous-base")
        else:
            run_async(server, "tokenizer", "luminous-base")
    assert isinstance(info.value, ImportError)
    assert server.received == []


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_row10_an_invalid_tokenizer_document_is_a_typed_error(
    server: ScriptedServer, tokenizer_json: str, kind: str
) -> None:
    from aleph_alpha_client import APIResponseValidationError

    server.default = Reply(200, {"Content-Type": "application/json"}, [b'{"not": "a tokenizer"}'])
    with pytest.raises(APIResponseValidationError, match="tokenizer"):
        if kind == "sync":
            with sync_client(server) as client:
                client.tokenizer("luminous-base")
        else:
            run_async(server, "tokenizer", "luminous-base")


# ------------------------------------ row 11: BusyError on 503 after retries (Intelligence Layer)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_row11_busy_error_once_retries_are_spent(server: ScriptedServer, kind: str) -> None:
    server.default = Reply.json(
        {"error": "busy", "code": "BUSY"}, status=503, headers={"Retry-After": "0"}
    )
    with pytest.raises(BusyError) as info:
        if kind == "sync":
            with sync_client(server, total_retries=2) as client:
                client.complete(completion_request(), "luminous-base")
        else:

            async def go() -> None:
                async with async_client(server, total_retries=2) as client:
                    await client.complete(completion_request(), "luminous-base")

            asyncio.run(go())
    assert len(server.received) == 3  # total_retries + 1 attempts
    assert info.value.args[0] == 503
    assert json.loads(info.value.args[1]) == {"error": "busy", "code": "BUSY"}


def test_row11_busy_error_is_caught_by_intelligence_layer_style_except(
    server: ScriptedServer,
) -> None:
    # Intelligence Layer retries on (BusyError, TimeoutError, ConnectionError): a busy API
    # answer, a 408 and a refused connection all land in that clause.
    server.add(
        Reply.json({"error": "busy"}, status=503),
        Reply.json({"error": "timeout"}, status=408),
    )
    caught: list[str] = []
    with sync_client(server) as client:
        for _ in range(2):
            try:
                client.complete(completion_request(), "m")
            except (BusyError, TimeoutError, ConnectionError) as err:
                caught.append(type(err).__name__)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    with Client(TOKEN, host=f"http://127.0.0.1:{port}", total_retries=0) as closed:
        try:
            closed.complete(completion_request(), "m")
        except (BusyError, TimeoutError, ConnectionError) as err:
            caught.append("connection:" + type(err).__name__)
    assert len(caught) == 3
    assert caught[0] == "BusyError"
    assert caught[2].startswith("connection:")


# ------------------------------------------------ row 12: async with, entered again (LlamaIndex)


def test_row12_async_with_entered_again_and_in_a_second_event_loop(server: ScriptedServer) -> None:
    server.default = Reply.json(COMPLETION_ANSWER)
    client = AsyncClient(TOKEN, host=server.url, total_retries=0)  # built outside any loop

    async def use_twice() -> list[str]:
        texts = []
        async with client as entered:
            assert entered is client
            texts.append((await client.complete(completion_request(), "m")).completions[0])
        async with client:
            texts.append((await client.complete(completion_request(), "m")).completions[0])
        return [t.completion for t in texts]

    assert asyncio.run(use_twice()) == [" Paris", " Paris"]
    assert asyncio.run(use_twice()) == [" Paris", " Paris"]  # a second asyncio.run
    assert len(server.received) == 4


def test_row12_async_client_used_after_close(server: ScriptedServer) -> None:
    server.default = Reply.json(COMPLETION_ANSWER)

    async def go() -> None:
        client = AsyncClient(TOKEN, host=server.url, total_retries=0)
        await client.complete(completion_request(), "m")
        await client.close()
        await client.complete(completion_request(), "m")
        await client.close()

    asyncio.run(go())
    assert len(server.received) == 2


def test_row12_plain_with_on_async_client_is_refused() -> None:
    client = AsyncClient(TOKEN, host="http://127.0.0.1:9")
    with pytest.raises(TypeError, match="async with"):
        with client:  # type: ignore[attr-defined]
            pass


# --------------------------------- row 13: async for over streams with no await (README)


def _chat_event(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "c",
        "choices": [{"finish_reason": finish, "index": 0, "delta": delta}],
        "created": 1,
        "model": "m",
        "object": "chat.completion.chunk",
        "usage": None,
    }


async def test_row13_async_for_chat_with_streaming_without_await(
    server: ScriptedServer, async_client: AsyncClient
) -> None:
    from aleph_alpha_client import ChatRequest, ChatStreamChunk, FinishReason, Message, Role

    server.default = Reply.sse(
        [
            _chat_event({"role": "assistant", "content": ""}),
            _chat_event({"content": "Hello"}),
            _chat_event({}, finish="stop"),
        ]
    )
    request = ChatRequest(messages=[Message(role=Role.User, content="Hi")], model="m")
    items = []
    async for item in async_client.chat_with_streaming(request, "m"):
        items.append(item)
    assert items == [
        ChatStreamChunk(content="", role=Role.Assistant, tool_calls=None),
        ChatStreamChunk(content="Hello", role=None, tool_calls=None),
        FinishReason.Stop,
    ]
    assert server.received[0].json()["stream"] is True


async def test_row13_async_for_complete_with_streaming_without_await(
    server: ScriptedServer, async_client: AsyncClient
) -> None:
    from aleph_alpha_client.completion import CompletionSummary, StreamChunk, StreamSummary

    server.default = Reply.sse(
        [
            {"type": "stream_chunk", "index": 0, "completion": " Paris"},
            {
                "type": "stream_summary",
                "index": 0,
                "model_version": "2022-04",
                "finish_reason": "maximum_tokens",
            },
            {"type": "completion_summary", "num_tokens_prompt_total": 5, "num_tokens_generated": 1},
        ],
        done=False,
    )
    items = [
        item
        async for item in async_client.complete_with_streaming(
            request=completion_request(), model="m"
        )
    ]
    assert [type(i) for i in items] == [StreamChunk, StreamSummary, CompletionSummary]
    assert isinstance(items[0], StreamChunk) and items[0].completion == " Paris"
    assert server.received[0].body.endswith(b', "model": "m", "stream": true}')


# ---------------------------------- row 14: ALEPH_ALPHA_API_KEY (LangChain), AA_TOKEN (others)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"ALEPH_ALPHA_API_KEY": "key-langchain"}, "key-langchain"),
        ({"AA_TOKEN": "key-llamaindex"}, "key-llamaindex"),
        ({"ALEPH_ALPHA_API_KEY": "key-first", "AA_TOKEN": "key-second"}, "key-first"),
    ],
    ids=["ALEPH_ALPHA_API_KEY", "AA_TOKEN", "both"],
)
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_row14_token_from_the_environment(
    server: ScriptedServer,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    expected: str,
    kind: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    server.default = Reply.json(COMPLETION_ANSWER)
    if kind == "sync":
        with Client(host=server.url, total_retries=0) as client:
            assert client.token == expected
            client.complete(completion_request(), "m")
    else:

        async def go() -> None:
            async with AsyncClient(host=server.url, total_retries=0) as client:
                await client.complete(completion_request(), "m")

        asyncio.run(go())
    assert server.received[0].headers["authorization"] == f"Bearer {expected}"


def test_row14_explicit_token_wins_over_the_environment(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALEPH_ALPHA_API_KEY", "from-env")
    monkeypatch.setenv("AA_TOKEN", "from-env-2")
    assert Client("explicit", host=server.url).token == "explicit"
    assert AsyncClient(token="explicit", host=server.url).token == "explicit"


def test_row14_no_token_anywhere_is_an_error_naming_the_variables() -> None:
    from aleph_alpha_client import AlephAlphaError

    with pytest.raises(AlephAlphaError, match="ALEPH_ALPHA_API_KEY"):
        Client(host="http://127.0.0.1:9")


# ------------------------- seed: chat with aleph_alpha_client.Image next to PIL images


def test_seed_chat_message_accepts_aleph_alpha_image_and_pil_image(server: ScriptedServer) -> None:
    import base64

    pil = pytest.importorskip("PIL.Image")
    from aleph_alpha_client import ChatRequest, Image, Message, Role

    picture = pil.new("RGB", (2, 2), (255, 0, 0))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    png = buffer.getvalue()
    request = ChatRequest(
        model="m",
        messages=[
            Message(
                role=Role.User,
                content=["Describe these.", Image.from_bytes(png), picture],
            )
        ],
    )
    server.default = Reply.json(
        {
            "choices": [
                {
                    "finish_reason": "stop",
                    "index": 0,
                    "message": {"role": "assistant", "content": "Two red squares."},
                }
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6},
        }
    )
    with sync_client(server) as client:
        response = client.chat(request, "pixtral")
    assert response.message.content == "Two red squares."
    content = server.received[0].json()["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": "Describe these."}
    # aleph_alpha_client.Image: sent as it is, not re-encoded.
    assert content[1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64," + base64.b64encode(png).decode()},
    }
    # A PIL image: a PNG data URI of the same pixels.
    url = content[2]["image_url"]["url"]
    assert content[2]["type"] == "image_url"
    assert url.startswith("data:image/png;base64,")
    decoded = pil.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert decoded.size == (2, 2)
    assert decoded.convert("RGB").getpixel((0, 0)) == (255, 0, 0)


def test_seed_chat_names_at_the_top_level() -> None:
    import aleph_alpha_client
    from aleph_alpha_client import chat

    for name in (
        "TextMessage",
        "Role",
        "FinishReason",
        "StreamOptions",
        "ChatStreamChunk",
        "Usage",
        "ToolCall",
        "FunctionCall",
        "ToolFunction",
    ):
        assert getattr(aleph_alpha_client, name) is getattr(chat, name)
    from aleph_alpha_client import JSONSchema
    from aleph_alpha_client.structured_output import JSONSchema as Original

    assert JSONSchema is Original


# ------------------------------- LlamaIndex / Intelligence Layer: batch embedding shapes


def test_llamaindex_batch_semantic_embed_without_model_keyword(server: ScriptedServer) -> None:
    server.default = Reply.json(BATCH_ANSWER)
    request = BatchSemanticEmbeddingRequest(
        prompts=[prompt_text()], representation=SemanticRepresentation.Symmetric
    )
    with sync_client(server) as client:
        response = client.batch_semantic_embed(request=request, model="luminous-base")
        client.batch_semantic_embed(request)  # model is optional
    assert response.embeddings == [[0.5]]
    first, second = bodies(server.received)
    assert first["model"] == "luminous-base"
    assert "model" not in second
