"""Token callables with a refresh on 401, default and extra headers, extra query parameters
and request/response event hooks, on both clients, against the emulator over loopback."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import pickle
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from aleph_alpha_client import (
    AsyncClient,
    AuthenticationError,
    ChatRequest,
    Client,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    Message,
    RequestEvent,
    ResponseEvent,
)
from aleph_alpha_client.emulator import Emulator, Fault
from conftest import TRANSPORT_MODES, make_transport

MODEL = "llama-3.1-8b-instruct"
MODES = ["sync", "async"]
SECRET = "rotating-SECRET-token"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(token=f"{SECRET}-1") as emulator:
        yield emulator


def set_token(emu: Emulator, token: str) -> None:
    """The emulator accepts only ``token`` from now on (a key rotation)."""
    emu.config = dataclasses.replace(emu.config, token=token)


def chat_request(text: str = "hi") -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content=text)], model=MODEL)


def make(mode: str, emu: Emulator, token: Any, **kwargs: Any) -> Any:
    """A client of ``mode`` ("sync", "async", or one over another transport: "sync-httpx")."""
    kwargs.setdefault("total_retries", 0)
    kwargs.setdefault("request_timeout_seconds", 10)
    transport = make_transport(mode)
    if transport is not None:
        kwargs["transport"] = transport
    cls = Client if mode.startswith("sync") else AsyncClient
    return cls(token, host=emu.url, **kwargs)


def run(mode: str, client: Any, call: Callable[[Any], Any]) -> Any:
    """``call(client)`` (awaited on AsyncClient, in a fresh loop); closes the client."""
    if mode.startswith("sync"):
        try:
            return call(client)
        finally:
            client.close()

    async def main() -> Any:
        try:
            result = call(client)
            if inspect.isawaitable(result):
                result = await result
            return result
        finally:
            await client.close()

    return asyncio.run(main())


async def _collect_async(stream: Any) -> list[Any]:
    return [item async for item in stream]


def chat_text(mode: str) -> Callable[[Any], Any]:
    """A call that chats and returns the answer's text."""
    if mode.startswith("sync"):
        return lambda c: c.chat(chat_request(), MODEL).message.content

    async def call(c: Any) -> str:
        return (await c.chat(chat_request(), MODEL)).message.content

    return call


def stream_items(mode: str) -> Callable[[Any], Any]:
    """A call that streams a chat and returns the items."""
    if mode.startswith("sync"):
        return lambda c: list(c.chat_with_streaming(chat_request(), MODEL))
    return lambda c: _collect_async(c.chat_with_streaming(chat_request(), MODEL))


class Tokens:
    """A token callable (picklable) that hands out the tokens it is given, then the last."""

    def __init__(self, *tokens: str) -> None:
        self.tokens = list(tokens)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return self.tokens[min(self.calls, len(self.tokens)) - 1]


def auth_headers(emu: Emulator) -> list[str]:
    return [r.headers.get("authorization", "") for r in emu.requests]


# ------------------------------------------------------------------ token callables


@pytest.mark.parametrize("mode", MODES)
def test_token_callable_is_asked_before_each_request_never_at_construction(
    mode: str, emu: Emulator
) -> None:
    tokens = Tokens(f"{SECRET}-1", f"{SECRET}-2")
    client = make(mode, emu, tokens)
    assert tokens.calls == 0  # construction asks nothing
    assert client.token is tokens

    def calls(c: Any) -> Any:
        first = chat_text(mode)(c)
        if inspect.isawaitable(first):

            async def rest() -> list[str]:
                one = await first
                set_token(emu, f"{SECRET}-2")  # rotated between requests
                return [one, await chat_text(mode)(c)]

            return rest()
        set_token(emu, f"{SECRET}-2")
        return [first, chat_text(mode)(c)]

    assert all(run(mode, client, calls))
    assert tokens.calls == 2
    assert auth_headers(emu) == [f"Bearer {SECRET}-1", f"Bearer {SECRET}-2"]


@pytest.mark.parametrize("mode", TRANSPORT_MODES)
def test_a_401_asks_the_callable_once_more_and_sends_once_more(mode: str, emu: Emulator) -> None:
    set_token(emu, f"{SECRET}-2")  # the cached token has expired
    tokens = Tokens(f"{SECRET}-1", f"{SECRET}-2")
    assert run(mode, make(mode, emu, tokens), chat_text(mode))
    assert tokens.calls == 2
    assert auth_headers(emu) == [f"Bearer {SECRET}-1", f"Bearer {SECRET}-2"]


@pytest.mark.parametrize("mode", MODES)
def test_a_second_401_is_raised_after_one_refresh(mode: str, emu: Emulator) -> None:
    tokens = Tokens("wrong-a", "wrong-b", "wrong-c")
    client = make(mode, emu, tokens, total_retries=3)
    with pytest.raises(AuthenticationError) as info:
        run(mode, client, chat_text(mode))
    assert info.value.status_code == 401
    assert tokens.calls == 2 and len(emu.requests) == 2
    assert "wrong" not in str(info.value) and "wrong" not in repr(info.value)


@pytest.mark.parametrize("mode", MODES)
def test_a_static_token_is_not_sent_again_after_a_401(mode: str, emu: Emulator) -> None:
    with pytest.raises(AuthenticationError):
        run(mode, make(mode, emu, "wrong", total_retries=3), chat_text(mode))
    assert len(emu.requests) == 1


@pytest.mark.parametrize("mode", TRANSPORT_MODES)
def test_a_401_before_a_stream_starts_refreshes_the_token(mode: str, emu: Emulator) -> None:
    set_token(emu, f"{SECRET}-2")
    tokens = Tokens(f"{SECRET}-1", f"{SECRET}-2")
    items = run(mode, make(mode, emu, tokens), stream_items(mode))
    assert items and tokens.calls == 2
    assert auth_headers(emu) == [f"Bearer {SECRET}-1", f"Bearer {SECRET}-2"]


def test_async_client_takes_an_async_token_callable(emu: Emulator) -> None:
    calls: list[int] = []
    set_token(emu, f"{SECRET}-2")

    async def token() -> str:
        calls.append(1)
        await asyncio.sleep(0)
        return f"{SECRET}-{len(calls)}"

    client = AsyncClient(token, host=emu.url, total_retries=0)
    assert run("async", client, chat_text("async"))
    assert len(calls) == 2  # the first token was refused, the second taken


def test_client_refuses_an_async_token_callable() -> None:
    async def token() -> str:
        return "t"

    with pytest.raises(InvalidArgumentTypeError, match="token"):
        Client(token, host="http://127.0.0.1:9")


@pytest.mark.parametrize("mode", MODES)
def test_a_bad_token_from_the_callable_fails_before_sending(mode: str, emu: Emulator) -> None:
    with pytest.raises(
        InvalidArgumentTypeError,
        match="token: expected the token callable to return a str, got int",
    ):
        run(mode, make(mode, emu, lambda: 42), chat_text(mode))
    with pytest.raises(InvalidArgumentError, match="control characters"):
        run(mode, make(mode, emu, lambda: "a\r\nX-Evil: 1"), chat_text(mode))
    with pytest.raises(InvalidArgumentError, match="non-ASCII"):
        run(mode, make(mode, emu, lambda: "tok\u201d"), chat_text(mode))
    assert emu.requests == []


def test_client_refuses_a_token_callable_that_returns_an_awaitable(emu: Emulator) -> None:
    async def token() -> str:
        return "t"

    with pytest.raises(InvalidArgumentTypeError, match="awaitable"):
        run("sync", make("sync", emu, lambda: token()), chat_text("sync"))
    assert emu.requests == []


@pytest.mark.parametrize("mode", MODES)
def test_a_failing_token_callable_propagates_its_error_unsent(mode: str, emu: Emulator) -> None:
    class IdPDown(Exception):
        pass

    def token() -> str:
        raise IdPDown("identity provider unreachable")

    with pytest.raises(IdPDown):
        run(mode, make(mode, emu, token), chat_text(mode))
    assert emu.requests == []


@pytest.mark.parametrize("mode", MODES)
def test_a_callable_token_never_shows_in_repr_errors_or_logs(
    mode: str, emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = Tokens(f"{SECRET}-wrong", f"{SECRET}-also-wrong")
    client = make(mode, emu, tokens, total_retries=2)
    with caplog.at_level(logging.DEBUG, logger="aleph_alpha_client"):
        with pytest.raises(AuthenticationError) as info:
            run(mode, client, chat_text(mode))
    assert tokens.calls == 2
    for text in (repr(client), str(client), repr(client._config), str(info.value), caplog.text):
        assert SECRET not in text
    assert "Bearer ***" in caplog.text  # the debug log shows the redacted header


@pytest.mark.parametrize("mode", MODES)
def test_with_options_and_pickle_keep_the_token_callable(mode: str, emu: Emulator) -> None:
    client = make(mode, emu, Tokens(f"{SECRET}-1"))
    copy = client.with_options(max_retries=1)
    assert copy.token is client.token
    clone = pickle.loads(pickle.dumps(copy))  # the pickle carries the callable
    assert isinstance(clone.token, Tokens) and clone.token is not client.token
    assert run(mode, clone, chat_text(mode))
    assert clone.token.calls == 1 and client.token.calls == 0
    assert auth_headers(emu) == [f"Bearer {SECRET}-1"]
    run(mode, client, lambda c: None)


def test_a_client_with_an_unpicklable_token_callable_fails_to_pickle_without_the_token() -> None:
    client = Client(lambda: SECRET, host="http://127.0.0.1:9")
    with pytest.raises((pickle.PicklingError, AttributeError)) as info:
        pickle.dumps(client)
    assert SECRET not in str(info.value)


# ------------------------------------------------------------------ headers and query


@pytest.mark.parametrize("mode", TRANSPORT_MODES)
def test_default_headers_and_extra_headers_are_sent(mode: str, emu: Emulator) -> None:
    client = make(
        mode,
        emu,
        f"{SECRET}-1",
        default_headers={"X-Team": "search", "User-Agent": "my-app/1.0"},
    )
    copy = client.with_options(extra_headers={"x-team": "ranking", "X-Request-Source": "job"})

    def calls(c: Any) -> Any:
        if mode.startswith("sync"):
            return [c.chat(chat_request(), MODEL), copy.chat(chat_request(), MODEL)]

        async def both() -> list[Any]:
            return [await c.chat(chat_request(), MODEL), await copy.chat(chat_request(), MODEL)]

        return both()

    run(mode, client, calls)
    first, second = emu.requests
    assert first.headers["x-team"] == "search" and first.headers["user-agent"] == "my-app/1.0"
    assert "x-request-source" not in first.headers
    names = [name.lower() for name, _ in second.headers.raw]
    assert names.count("x-team") == 1 and second.headers["x-team"] == "ranking"
    assert second.headers["x-request-source"] == "job"
    assert names.count("user-agent") == 1 and second.headers["user-agent"] == "my-app/1.0"
    assert second.headers["authorization"] == f"Bearer {SECRET}-1"


@pytest.mark.parametrize("mode", MODES)
def test_whitespace_around_a_header_value_is_dropped(mode: str, emu: Emulator) -> None:
    client = make(mode, emu, f"{SECRET}-1", default_headers={"X-Tags": "\t a b \t"})
    run(mode, client, lambda c: c.chat(chat_request(), MODEL))
    assert emu.requests[0].headers["x-tags"] == "a b"


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"X-A": "ok\r\nX-Injected: 1"}, "control characters"),
        ({"X-A": "nul\x00"}, "control characters"),
        # a TAB inside too (the send path refuses it: said here, naming the argument)
        ({"X-A": "a\tb"}, "control characters"),
        ({"Bad Name": "v"}, "expected valid header names"),
        ({"X-A:": "v"}, "expected valid header names"),
        ({"Authorization": "Bearer other"}, "token="),
        ({"content-length": "3"}, "frames the body"),
        ({"Host": "elsewhere"}, "host="),
        ({"Expect": "100-continue"}, "at once"),
        ({"Content-Type": "text/plain"}, "sends JSON"),
        ({"X-A": 1}, "expected a str value"),
        ({"X-A": "€"}, "Latin-1"),
        (["X-A", "v"], "expected a dict"),
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_bad_headers_are_refused_naming_the_argument(
    mode: str, emu: Emulator, headers: Any, message: str
) -> None:
    with pytest.raises((InvalidArgumentError, InvalidArgumentTypeError), match=message) as info:
        make(mode, emu, "t", default_headers=headers)
    assert str(info.value).startswith("default_headers")
    client = make(mode, emu, "t")
    with pytest.raises((InvalidArgumentError, InvalidArgumentTypeError), match=message) as info:
        client.with_options(extra_headers=headers)
    assert str(info.value).startswith("extra_headers")
    assert emu.requests == []
    run(mode, client, lambda c: None)


@pytest.mark.parametrize("mode", MODES)
def test_extra_query_is_added_to_every_url(mode: str, emu: Emulator) -> None:
    client = make(mode, emu, f"{SECRET}-1", nice=True)
    copy = client.with_options(extra_query={"trace": "abc", "debug": True}).with_options(
        extra_query={"n": 2}
    )

    def calls(c: Any) -> Any:
        if mode == "sync":
            return [copy.chat(chat_request(), MODEL), copy.models()]

        async def both() -> list[Any]:
            return [await copy.chat(chat_request(), MODEL), await copy.models()]

        return both()

    run(mode, client, calls)
    post, get = emu.requests
    assert post.query == {"nice": "true", "trace": "abc", "debug": "true", "n": "2"}
    assert get.query == {"trace": "abc", "debug": "true", "n": "2"}


@pytest.mark.parametrize("mode", MODES)
def test_extra_query_and_default_headers_reach_the_multipart_transcribe(
    mode: str, emu: Emulator
) -> None:
    client = make(mode, emu, f"{SECRET}-1", default_headers={"X-Team": "audio"})
    copy = client.with_options(extra_query={"trace": "t1"})
    run(mode, client, lambda c: copy.transcribe(b"RIFF-not-really", "whisper-large-v3-turbo"))
    [sent] = emu.requests
    assert sent.route == "transcribe" and sent.query == {"trace": "t1"}
    assert sent.headers["x-team"] == "audio"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"nice": "false"}, "nice=True"),
        ({"a": None}, "expected a str"),
        ({"": "v"}, "name"),
        ({"a": float("nan")}, "finite"),
        (["a"], "expected a dict"),
    ],
)
def test_bad_extra_query_is_refused_naming_the_argument(query: Any, message: str) -> None:
    client = Client("t", host="http://127.0.0.1:9")
    with pytest.raises((InvalidArgumentError, InvalidArgumentTypeError), match=message) as info:
        client.with_options(extra_query=query)
    assert str(info.value).startswith("extra_query")


# ------------------------------------------------------------------ event hooks


@pytest.mark.parametrize("mode", TRANSPORT_MODES)
def test_hooks_see_every_attempt_read_only_with_the_token_redacted(
    mode: str, emu: Emulator
) -> None:
    seen: list[Any] = []
    hooks = {"request": [seen.append], "response": [seen.append]}
    emu.script([Fault.status(503, retry_after=0), None])
    client = make(mode, emu, Tokens(f"{SECRET}-1"), total_retries=2, event_hooks=hooks)
    run(mode, client, chat_text(mode))
    kinds = [(type(e).__name__, getattr(e, "status", None)) for e in seen]
    assert kinds == [
        ("RequestEvent", None),
        ("ResponseEvent", 503),
        ("RequestEvent", None),
        ("ResponseEvent", 200),
    ]
    first, _, second, ok = seen
    assert isinstance(first, RequestEvent) and isinstance(ok, ResponseEvent)
    assert (first.attempt, second.attempt) == (0, 1)
    assert first.method == "POST" and first.url == emu.url + "/chat/completions"
    assert first.headers["Authorization"] == "Bearer ***"
    assert b'"messages"' in (first.body or b"") and not first.stream
    assert ok.request is second and ok.headers["content-type"].startswith("application/json")
    assert all(SECRET not in repr(event) for event in seen)
    with pytest.raises(TypeError):
        first.headers["Authorization"] = "x"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.url = "http://elsewhere"  # type: ignore[misc]


@pytest.mark.parametrize("mode", TRANSPORT_MODES)
def test_hooks_see_the_refresh_attempt_and_a_stream_head(mode: str, emu: Emulator) -> None:
    statuses: list[int] = []
    auths: list[str] = []
    hooks = {
        "request": [lambda e: auths.append(e.headers["Authorization"])],
        "response": [lambda e: statuses.append(e.status)],
    }
    set_token(emu, f"{SECRET}-2")
    client = make(mode, emu, Tokens(f"{SECRET}-1", f"{SECRET}-2"), event_hooks=hooks)
    assert run(mode, client, stream_items(mode))
    assert statuses == [401, 200] and auths == ["Bearer ***", "Bearer ***"]


def test_async_client_awaits_async_hooks(emu: Emulator) -> None:
    seen: list[str] = []

    async def on_request(event: RequestEvent) -> None:
        await asyncio.sleep(0)
        seen.append(f"request {event.method}")

    async def on_response(event: ResponseEvent) -> None:
        seen.append(f"response {event.status}")

    hooks = {"request": [on_request, lambda e: seen.append("plain")], "response": [on_response]}
    client = make("async", emu, f"{SECRET}-1", event_hooks=hooks)
    run("async", client, chat_text("async"))
    assert seen == ["request POST", "plain", "response 200"]


def test_client_refuses_async_hooks() -> None:
    async def hook(event: RequestEvent) -> None:
        pass

    with pytest.raises(InvalidArgumentTypeError, match=r"event_hooks\['request'\]"):
        Client("t", host="http://127.0.0.1:9", event_hooks={"request": [hook]})


@pytest.mark.parametrize(
    ("hooks", "message"),
    [
        ({"requests": []}, "expected the events 'request' and 'response', got 'requests'"),
        ({"request": print}, "expected a list of callables"),
        ({"response": ["x"]}, "expected callables"),
        ([print], "expected a dict"),
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_bad_event_hooks_are_refused(mode: str, hooks: Any, message: str) -> None:
    cls = Client if mode == "sync" else AsyncClient
    with pytest.raises((InvalidArgumentError, InvalidArgumentTypeError), match=message) as info:
        cls("t", host="http://127.0.0.1:9", event_hooks=hooks)
    assert str(info.value).startswith("event_hooks")


class Budget(Exception):
    pass


def _raise(event: Any) -> None:
    raise Budget(f"refused {type(event).__name__}")


@pytest.mark.parametrize("mode", MODES)
def test_a_request_hook_that_raises_stops_the_request_unsent(mode: str, emu: Emulator) -> None:
    client = make(mode, emu, f"{SECRET}-1", total_retries=3, event_hooks={"request": [_raise]})
    with pytest.raises(Budget, match="RequestEvent"):
        run(mode, client, chat_text(mode))
    assert emu.requests == []


@pytest.mark.parametrize("mode", MODES)
def test_a_response_hook_that_raises_propagates_and_is_not_retried(
    mode: str, emu: Emulator
) -> None:
    calls: list[int] = []

    def once(event: ResponseEvent) -> None:
        calls.append(event.status)
        if len(calls) == 1:
            _raise(event)

    client = make(mode, emu, f"{SECRET}-1", total_retries=3, event_hooks={"response": [once]})

    def twice(c: Any) -> Any:
        if mode == "sync":
            with pytest.raises(Budget, match="ResponseEvent"):
                c.chat(chat_request(), MODEL)
            return c.chat(chat_request(), MODEL)  # the client is still usable

        async def both() -> Any:
            with pytest.raises(Budget, match="ResponseEvent"):
                await c.chat(chat_request(), MODEL)
            return await c.chat(chat_request(), MODEL)

        return both()

    assert run(mode, client, twice).message.content
    assert calls == [200, 200] and len(emu.requests) == 2


def test_client_refuses_a_sync_hook_that_returns_an_awaitable(emu: Emulator) -> None:
    async def later(event: Any) -> None:
        pass

    client = make("sync", emu, f"{SECRET}-1", event_hooks={"request": [lambda e: later(e)]})
    with pytest.raises(InvalidArgumentTypeError, match="awaitable"):
        run("sync", client, chat_text("sync"))
    assert emu.requests == []


@pytest.mark.parametrize("mode", MODES)
def test_no_refresh_after_a_redirect_that_dropped_the_token(mode: str) -> None:
    from scripted_server import Reply, ScriptedServer

    server = ScriptedServer()
    try:
        # 127.0.0.1 -> localhost: another origin, so the token is not sent there
        other = f"http://localhost:{server.port}/chat/completions"
        server.add(
            Reply(307, {"Location": other}),
            Reply.json({"error": "no token", "code": "UNAUTHENTICATED"}, status=401),
        )
        tokens = Tokens(f"{SECRET}-1", f"{SECRET}-2")
        cls = Client if mode == "sync" else AsyncClient
        client = cls(tokens, host=server.url, total_retries=0)
        with pytest.raises(AuthenticationError):
            run(mode, client, chat_text(mode))
        assert tokens.calls == 1
        first, second = server.received
        assert first.headers["authorization"] == f"Bearer {SECRET}-1"
        assert "authorization" not in second.headers
    finally:
        server.close()


SEEN_BY_HOOK: list[str] = []


def remember_url(event: RequestEvent) -> None:
    """A module-level hook: it pickles."""
    SEEN_BY_HOOK.append(event.url)


@pytest.mark.parametrize("mode", MODES)
def test_pickle_carries_default_headers_extra_query_and_hooks(mode: str, emu: Emulator) -> None:
    SEEN_BY_HOOK.clear()
    client = make(
        mode,
        emu,
        f"{SECRET}-1",
        default_headers={"X-Team": "search"},
        event_hooks={"request": [remember_url]},
    ).with_options(extra_query={"run": "7"})
    clone = pickle.loads(pickle.dumps(client))
    assert run(mode, clone, chat_text(mode))
    [request] = emu.requests
    assert request.headers["x-team"] == "search" and request.query == {"run": "7"}
    assert SEEN_BY_HOOK == [emu.url + "/chat/completions?run=7"]
    run(mode, client, lambda c: None)


# ------------------------------------------------------------------ the machine's Refresh step


class _Answer:
    def __init__(self, status: int) -> None:
        self.status = status
        self.headers: dict[str, str] = {}

    def close(self) -> None:
        pass


def test_the_attempt_machine_asks_for_one_refresh_only_after_authorize() -> None:
    from aleph_alpha_client._attempt import AttemptDriver, Raise, Read, Refresh, Send
    from aleph_alpha_client._request import HTTPRequest
    from aleph_alpha_client._retry import RetryPolicy

    def request() -> HTTPRequest:
        return HTTPRequest("POST", "http://127.0.0.1:9/chat/completions", {}, b"{}")

    static = AttemptDriver(request(), RetryPolicy(max_retries=3))
    static.request.headers["Authorization"] = "Bearer static"
    static.start()
    assert isinstance(static.received(_Answer(401)), Read)
    assert isinstance(static.read(_Answer(401), b""), Raise)  # a static token: no refresh

    driver = AttemptDriver(request(), RetryPolicy(max_retries=3))
    driver.authorize("one")
    assert isinstance(driver.start(), Send)
    assert isinstance(driver.read(_Answer(401), b""), Refresh)
    step = driver.refreshed("two")
    assert isinstance(step, Send) and step.request.headers["Authorization"] == "Bearer two"
    assert isinstance(driver.read(_Answer(401), b""), Raise)  # only once
    assert driver.attempt == 0  # the refresh is not a retry
