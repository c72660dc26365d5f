"""Review findings on the client shells, config and chat models: each test failed before its fix."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from aleph_alpha_client import (
    AsyncClient,
    ChatRequest,
    Client,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    Message,
    Role,
    Timeout,
)
from conftest import TOKEN
from scripted_server import Reply, ScriptedServer

CHAT_ANSWER = {
    "id": "c1",
    "choices": [
        {"finish_reason": "stop", "index": 0, "message": {"role": "assistant", "content": "ok"}}
    ],
    "model": "m",
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


def chat_request(**kw: Any) -> ChatRequest:
    return ChatRequest(model="m", messages=[Message(role=Role.User, content="hi")], **kw)


# ------------------------------------------------------------------ with_options validation


@pytest.mark.parametrize("make", [Client, AsyncClient])
def test_with_options_rejects_a_string_for_tags(make: Any, server: ScriptedServer) -> None:
    # The constructor rejects tags="abc"; with_options used to send ["a", "b", "c"].
    client = make(TOKEN, host=server.url)
    with pytest.raises(InvalidArgumentTypeError, match="tags"):
        client.with_options(tags="abc")
    with pytest.raises(InvalidArgumentTypeError, match="tags"):
        client.with_options(tags=["ok", 3])
    assert client.with_options(tags=("a", "b")).tags == ["a", "b"]
    assert client.with_options(tags=None).tags is None


@pytest.mark.parametrize("make", [Client, AsyncClient])
def test_with_options_rejects_a_hosting_that_is_not_a_string(
    make: Any, server: ScriptedServer
) -> None:
    client = make(TOKEN, host=server.url)
    with pytest.raises(InvalidArgumentTypeError, match="hosting"):
        client.with_options(hosting=5)
    assert client.with_options(hosting="aleph-alpha").hosting == "aleph-alpha"
    assert client.with_options(hosting=None).hosting is None


def test_with_options_tags_reach_the_wire_as_given(server: ScriptedServer) -> None:
    server.default = Reply.json(CHAT_ANSWER)
    with Client(TOKEN, host=server.url, total_retries=0) as client:
        client.with_options(tags=("t1", "t2")).chat(chat_request(), "m")
    assert server.received[0].json()["tags"] == ["t1", "t2"]


# ------------------------------------------------------------------ Timeout validation


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"total": -1}, InvalidArgumentError, "total"),
        ({"total": 0}, InvalidArgumentError, "total"),
        ({"connect": 0.0}, InvalidArgumentError, "connect"),
        ({"idle": -2}, InvalidArgumentError, "idle"),
        ({"total": float("nan")}, InvalidArgumentError, "total"),
        ({"idle": float("inf")}, InvalidArgumentError, "idle"),
        ({"connect": "3"}, InvalidArgumentTypeError, "connect"),
        ({"idle": True}, InvalidArgumentTypeError, "idle"),
    ],
)
def test_a_bad_timeout_is_rejected_when_it_is_built(
    kwargs: dict[str, Any], error: type[Exception], name: str
) -> None:
    # Used to surface as urllib3's bare ValueError at the first call (sync) or as an
    # immediate timeout (async).
    with pytest.raises(error, match=f"Timeout.{name}"):
        Timeout(**kwargs)


@pytest.mark.parametrize("make", [Client, AsyncClient])
def test_an_infinite_request_timeout_is_rejected_naming_the_argument(make: Any) -> None:
    # Used to raise OverflowError from the socket layer at the first call (sync).
    with pytest.raises(InvalidArgumentError, match="request_timeout_seconds"):
        make(TOKEN, host="http://127.0.0.1:9", request_timeout_seconds=float("inf"))


def test_good_timeouts_still_build() -> None:
    assert Timeout(total=None, connect=None, idle=None).read is None
    assert Timeout(total=5, connect=1, idle=2.5).read == 2.5
    assert Timeout().total == 305


# ------------------------------------------------------------------ verify_ssl warning location


@pytest.mark.parametrize("make", [Client, AsyncClient])
def test_verify_ssl_warning_points_at_the_line_that_builds_the_client(make: Any) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make(TOKEN, host="http://127.0.0.1:9", verify_ssl=False)  # the warned line
    assert len(caught) == 1
    assert caught[0].filename == __file__
    with open(__file__, encoding="utf-8") as source:
        line = source.read().splitlines()[caught[0].lineno - 1]
    assert "the warned line" in line


# ------------------------------------------------------------------ chat tool_choice as a dict


def test_tool_choice_as_an_openai_dict_is_sent_as_the_official_client_did(
    client: Client, server: ScriptedServer
) -> None:
    # The official to_json (asdict) sent a dict tool_choice unchanged; it used to be rejected.
    server.default = Reply.json(CHAT_ANSWER)
    choice = {"type": "function", "function": {"name": "get_weather"}}
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    client.chat(chat_request(tools=tools, tool_choice=choice), "m")
    assert server.received[0].json()["tool_choice"] == choice


def test_tool_choice_still_rejects_unknown_strings() -> None:
    with pytest.raises(InvalidArgumentError, match="tool_choice"):
        chat_request(tool_choice="sometimes")._validate()


# ------------------------------------------------------------------ batch error notes


def _batch_request(count: int) -> Any:
    from aleph_alpha_client import BatchSemanticEmbeddingRequest, Prompt, SemanticRepresentation

    return BatchSemanticEmbeddingRequest(
        prompts=[Prompt.from_text(str(i)) for i in range(count)],
        representation=SemanticRepresentation.Symmetric,
    )


BATCH_OK = {"model_version": "v", "embeddings": [[0.0]] * 100, "num_tokens_prompt_total": 1}


def test_note_of_a_failing_last_batch_names_its_real_prompts(server: ScriptedServer) -> None:
    # 150 prompts: the second batch holds prompts 100 to 149 (the note said "100 to 199").
    server.add(Reply.json(BATCH_OK), Reply.json({"error": "bad", "code": "X"}, status=400))
    with Client(TOKEN, host=server.url, total_retries=0) as client:
        with pytest.raises(ValueError) as info:
            client.batch_semantic_embed(_batch_request(150), "m")
    assert info.value.__notes__ == [
        "batch_semantic_embed: batch 2 of 2 failed (prompts 100 to 149)"
    ]


async def test_async_note_of_a_failing_last_batch_names_its_real_prompts(
    server: ScriptedServer,
) -> None:
    server.add(Reply.json(BATCH_OK), Reply.json({"error": "bad", "code": "X"}, status=400))
    async with AsyncClient(TOKEN, host=server.url, total_retries=0) as client:
        with pytest.raises(ValueError) as info:
            await client.batch_semantic_embed(_batch_request(150), "m")
    assert info.value.__notes__ == [
        "batch_semantic_embed: batch 2 of 2 failed (prompts 100 to 149)"
    ]
