"""``Client`` and ``AsyncClient`` offer the same API: same public methods, same signatures.

Only the calling convention differs: ``AsyncClient``'s request methods are coroutine
functions, its streaming methods are plain functions returning an async iterable (used as
``async for item in client.chat_with_streaming(...)`` with no ``await``).
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from aleph_alpha_client import AsyncClient, Client

# Methods that return a stream object instead of a coroutine, on both clients.
STREAMING = {"chat_with_streaming", "complete_with_streaming", "run_tools_with_streaming"}

# Every API method of the official client 11.5.1 (sync and async together), plus the
# streaming and v2 embedding methods the official client had on one side only.
OFFICIAL_METHODS = {
    "batch_semantic_embed",
    "chat",
    "chat_with_streaming",
    "complete",
    "complete_with_streaming",
    "create_steering_concept",
    "detokenize",
    "embed",
    "embeddings",
    "evaluate",
    "explain",
    "get_version",
    "instructable_embed",
    "models",
    "rerank",
    "semantic_embed",
    "tokenize",
    "tokenizer",
    "translate",
    "validate_version",
}


def public_members(cls: type) -> dict[str, Any]:
    """Public attributes of a class, its bases' included (``object``'s left out)."""
    return {
        name: inspect.getattr_static(cls, name)
        for name in dir(cls)
        if not name.startswith("_") and not hasattr(object, name)
    }


def public_methods(cls: type) -> dict[str, Any]:
    return {
        name: getattr(cls, name)
        for name, member in public_members(cls).items()
        if inspect.isfunction(member)
    }


def comparable(signature: inspect.Signature) -> inspect.Signature:
    """The signature without its return annotation (``Stream`` vs ``AsyncStream`` etc.)."""
    return signature.replace(return_annotation=inspect.Signature.empty)


def test_both_clients_have_every_official_method() -> None:
    assert OFFICIAL_METHODS <= set(public_methods(Client))
    assert OFFICIAL_METHODS <= set(public_methods(AsyncClient))


def test_every_sync_method_has_an_async_twin() -> None:
    missing = set(public_methods(Client)) - set(public_methods(AsyncClient))
    assert not missing, f"AsyncClient lacks {sorted(missing)}"


def test_every_async_method_has_a_sync_twin() -> None:
    missing = set(public_methods(AsyncClient)) - set(public_methods(Client))
    assert not missing, f"Client lacks {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(public_methods(Client)))
def test_twin_methods_have_the_same_signature(name: str) -> None:
    sync_method = getattr(Client, name)
    async_method = getattr(AsyncClient, name)
    sync_signature = comparable(inspect.signature(sync_method))
    async_signature = comparable(inspect.signature(async_method))
    # Parameters: names, kinds, defaults and annotations, in order.
    assert list(sync_signature.parameters.values()) == list(async_signature.parameters.values()), (
        f"{name}: Client{sync_signature} != AsyncClient{async_signature}"
    )


def test_twin_methods_have_the_same_docstring_presence() -> None:
    for name, method in public_methods(Client).items():
        assert method.__doc__, f"Client.{name} has no docstring"
        assert getattr(AsyncClient, name).__doc__, f"AsyncClient.{name} has no docstring"


@pytest.mark.parametrize("name", sorted(public_methods(AsyncClient)))
def test_async_methods_are_coroutines_except_streams_and_options(name: str) -> None:
    method = getattr(AsyncClient, name)
    if name in STREAMING or name == "with_options":
        assert not inspect.iscoroutinefunction(method), f"AsyncClient.{name} must not need await"
    else:
        assert inspect.iscoroutinefunction(method), f"AsyncClient.{name} must be async"


@pytest.mark.parametrize("name", sorted(public_methods(Client)))
def test_sync_methods_are_plain_functions(name: str) -> None:
    method = getattr(Client, name)
    assert not inspect.iscoroutinefunction(method)
    assert not inspect.isasyncgenfunction(method)


def test_both_clients_have_the_same_properties() -> None:
    def properties(cls: type) -> set[str]:
        return {
            name for name, member in public_members(cls).items() if isinstance(member, property)
        }

    assert properties(Client) == properties(AsyncClient)
    # The official client's public attributes.
    assert {"host", "hosting", "nice", "tags", "token", "request_timeout_seconds"} <= properties(
        Client
    )


def test_no_public_members_other_than_methods_and_properties_differ() -> None:
    assert set(public_members(Client)) == set(public_members(AsyncClient))


def test_constructors_keep_the_official_positional_order() -> None:
    def positional(cls: type) -> list[str]:
        return [
            p.name
            for p in inspect.signature(cls).parameters.values()
            if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        ]

    # official-client-reference.md §2.1: ``limit`` is the async client's third parameter.
    assert positional(Client) == [
        "token",
        "host",
        "hosting",
        "request_timeout_seconds",
        "total_retries",
        "nice",
        "verify_ssl",
        "tags",
        "pool_size",
    ]
    assert positional(AsyncClient) == [
        "token",
        "host",
        "limit",
        "hosting",
        "request_timeout_seconds",
        "total_retries",
        "nice",
        "verify_ssl",
        "tags",
    ]


def test_constructors_take_the_same_options_with_the_same_defaults() -> None:
    sync_params = inspect.signature(Client).parameters
    async_params = inspect.signature(AsyncClient).parameters
    assert set(sync_params) == set(async_params)
    # pool_size and limit are the two names of the pool size; each client's own default is
    # the official one (10 connections sync, 100 async), the other name defaults to "unset".
    for name in set(sync_params) - {"pool_size", "limit"}:
        assert sync_params[name].default == async_params[name].default, name
        # a sync protocol for Client, an async one for AsyncClient; a token callable may be
        # async on AsyncClient only
        if name not in ("transport", "token"):
            assert sync_params[name].annotation == async_params[name].annotation, name
    assert sync_params["token"].annotation == "str | Callable[[], str] | None"
    assert async_params["token"].annotation == "str | Callable[[], str | Awaitable[str]] | None"
    assert sync_params["transport"].annotation == "SyncTransportProtocol | None"
    assert async_params["transport"].annotation == "AsyncTransportProtocol | None"
    assert sync_params["pool_size"].default == 10
    assert async_params["limit"].default == 100


def test_official_constructor_defaults() -> None:
    params = inspect.signature(Client).parameters
    assert params["hosting"].default is None
    assert params["request_timeout_seconds"].default == 305
    assert params["total_retries"].default == 8
    assert params["nice"].default is False
    assert params["verify_ssl"].default is True
    assert params["tags"].default is None


def test_with_options_returns_the_same_client_type() -> None:
    sync_client = Client("t", host="http://127.0.0.1:9")
    async_client = AsyncClient("t", host="http://127.0.0.1:9")
    assert type(sync_client.with_options(max_retries=0)) is Client
    assert type(async_client.with_options(max_retries=0)) is AsyncClient
    sync_client.close()


def test_the_parity_check_can_fail() -> None:
    """The comparison used above notices a differing default and a missing method."""

    class A:
        def f(self, request: int, model: str = "a") -> None: ...

        def only_here(self) -> None: ...

    class B:
        async def f(self, request: int, model: str = "b") -> None: ...

    assert comparable(inspect.signature(A.f)) != comparable(inspect.signature(B.f))
    assert set(public_methods(A)) - set(public_methods(B)) == {"only_here"}
