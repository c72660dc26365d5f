"""Clients pickle at any time (configuration only, never sockets) and survive os.fork()."""

from __future__ import annotations

import asyncio
import os
import pickle
import sys

import pytest

from aleph_alpha_client import (
    AsyncClient,
    Client,
    CompletionRequest,
    InvalidArgumentTypeError,
    Prompt,
)
from conftest import TOKEN
from scripted_server import Reply, ScriptedServer

COMPLETION = {
    "model_version": "1",
    "completions": [{"completion": "hi", "finish_reason": "x"}],
    "num_tokens_prompt_total": 1,
    "num_tokens_generated": 1,
}


def _request() -> CompletionRequest:
    return CompletionRequest(prompt=Prompt.from_text("x"), maximum_tokens=1)


def test_sync_client_pickles_after_a_request(server: ScriptedServer) -> None:
    server.add(Reply.json(COMPLETION), Reply.json(COMPLETION))
    with Client(TOKEN, host=server.url, total_retries=0, nice=True, tags=["t"]) as client:
        client.complete(_request(), model="m")
        copy = pickle.loads(pickle.dumps(client.with_options(max_retries=2)))
        assert copy.host == client.host and copy.nice and copy.tags == ["t"]
        assert copy.max_retries == 2 and copy.token == TOKEN  # the pickle carries the token
        assert copy._transport_box[0] is None
        assert copy.complete(_request(), model="m").completions[0].completion == "hi"
        assert server.connections == 2  # the copy opened its own connection
        copy.close()


async def test_async_client_pickles_after_a_request(server: ScriptedServer) -> None:
    server.add(Reply.json(COMPLETION), Reply.json(COMPLETION))
    async with AsyncClient(TOKEN, host=server.url, total_retries=0) as client:
        await client.complete(_request(), model="m")
        copy = pickle.loads(pickle.dumps(client))
        assert copy.token == TOKEN and copy._transport_box[0] is None
        result = await copy.complete(_request(), model="m")
        assert result.completions[0].completion == "hi"
        assert server.connections == 2
        await copy.close()


def test_pickle_does_not_show_token_in_repr() -> None:
    client = pickle.loads(pickle.dumps(Client(TOKEN, host="http://127.0.0.1:1")))
    assert TOKEN not in repr(client)


def _wait_child(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is not available")
def test_sync_fork_child_opens_its_own_connection(server: ScriptedServer) -> None:
    server.add(*[Reply.json(COMPLETION)] * 4)
    with Client(TOKEN, host=server.url, total_retries=0) as client:
        client.complete(_request(), model="m")
        assert server.connections == 1
        pool = client._transport_box[0]
        pid = os.fork()
        if pid == 0:  # child: a fresh pool, never the parent's socket
            code = 1
            try:
                ok = client._transport_box[0] is None
                client.complete(_request(), model="m")
                code = 0 if ok and client._transport_box[0] is not pool else 2
            finally:
                os._exit(code)
        assert _wait_child(pid) == 0
        assert server.connections == 2
        assert client._transport_box[0] is pool  # the parent's pool stays
        client.complete(_request(), model="m")
        assert server.connections == 2  # and its kept-alive connection still works


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is not available")
def test_async_fork_child_opens_its_own_connection(server: ScriptedServer) -> None:
    server.add(*[Reply.json(COMPLETION)] * 4)
    client = AsyncClient(TOKEN, host=server.url, total_retries=0)

    async def call() -> None:
        await client.complete(_request(), model="m")

    asyncio.run(call())
    assert server.connections == 1
    pool = client._transport_box[0]
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            ok = client._transport_box[0] is None
            asyncio.run(call())
            code = 0 if ok else 2
        finally:
            os._exit(code)
    assert _wait_child(pid) == 0
    assert server.connections == 2
    assert client._transport_box[0] is pool

    async def again() -> None:
        await call()
        await client.close()

    asyncio.run(again())  # the parent still works (a new loop opens a new connection)
    assert server.connections == 3


def test_with_options_copies_share_the_pool_pickles_do_not(server: ScriptedServer) -> None:
    server.add(*[Reply.json(COMPLETION)] * 3)
    with Client(TOKEN, host=server.url, total_retries=0) as client:
        client.complete(_request(), model="m")
        copy = client.with_options(max_retries=1)
        assert copy._transport_box is client._transport_box
        copy.complete(_request(), model="m")
        assert server.connections == 1  # the copy used the kept-alive connection
        assert pickle.loads(pickle.dumps(client))._transport_box is not client._transport_box


def test_with_options_of_a_client_with_an_ssl_context() -> None:
    import ssl

    client = Client(TOKEN, host="https://127.0.0.1:1", ssl_context=ssl.create_default_context())
    copy = client.with_options(max_retries=1)
    assert copy._ssl_context is client._ssl_context and copy.max_retries == 1
    with pytest.raises(InvalidArgumentTypeError, match="ssl_context"):
        pickle.dumps(copy)
