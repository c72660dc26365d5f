"""Users' HTTP mocks keep working with our client: vcrpy, pytest-recording, responses,
requests-mock, aioresponses, respx.

The cassettes in tests/cassettes were recorded with the official client 11.5.1 through vcrpy
against our emulator (tests/official/record_cassettes.py; re-recorded live when
``AA_OFFICIAL_PYTHON`` is set). Replaying them, nothing listens on the recorded port: a request
that escaped the mock would fail to connect, so each passing replay proves it went through
the mock.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aleph_alpha_client import (
    APIConnectionError,
    AsyncClient,
    ChatRequest,
    Client,
    CompletionRequest,
    EmbeddingRequest,
    Message,
    Prompt,
    TokenizationRequest,
)
from aleph_alpha_client._mocks import async_route, patched_libraries, sync_route
from aleph_alpha_client.chat import Role

vcr = pytest.importorskip("vcr")
responses = pytest.importorskip("responses")
requests_mock = pytest.importorskip("requests_mock")
aioresponses = pytest.importorskip("aioresponses")
respx = pytest.importorskip("respx")
httpx = pytest.importorskip("httpx")

CASSETTES = Path(__file__).parent / "cassettes"
OFFICIAL = os.environ.get("AA_OFFICIAL_PYTHON")


def _official_has_vcr() -> bool:
    if not OFFICIAL:
        return False
    probe = subprocess.run([OFFICIAL, "-c", "import vcr"], capture_output=True, timeout=60)
    return probe.returncode == 0


OFFICIAL_WITH_VCR = _official_has_vcr()
HOST = "http://127.0.0.1:18765"  # the recorded emulator; nothing listens there now
CHAT = ChatRequest(
    model="llama-3.1-8b-instruct",
    messages=[Message(role=Role.User, content="What is the capital of Spain?")],
)
COMPLETION = CompletionRequest(prompt=Prompt.from_text("An apple a day"), maximum_tokens=8)
FAST = {"total_retries": 0, "request_timeout_seconds": 5}


def _recorder() -> Any:
    return vcr.VCR(record_mode="none", match_on=["method", "uri", "body"])


def _expected() -> dict[str, Any]:
    return dict(json.loads((CASSETTES / "official_results.json").read_text()))


def _sync_calls(c: Client) -> dict[str, Any]:
    return {
        "sync_chat": c.chat(CHAT, model="llama-3.1-8b-instruct").message.content,
        "sync_complete": c.complete(COMPLETION, model="luminous-base").completions[0].completion,
        "sync_tokens": c.tokenize(
            TokenizationRequest(prompt="Hello world", tokens=True, token_ids=True),
            model="luminous-base",
        ).token_ids,
        "sync_embed_keys": len(
            c.embed(
                EmbeddingRequest(prompt=Prompt.from_text("hi"), layers=[-1], pooling=["mean"]),
                model="luminous-base",
            ).embeddings
        ),
        "sync_version": c.get_version(),
    }


async def _async_calls(ac: AsyncClient) -> dict[str, Any]:
    results: dict[str, Any] = {
        "async_chat": (await ac.chat(CHAT, model="llama-3.1-8b-instruct")).message.content,
        "async_complete": (await ac.complete(COMPLETION, model="luminous-base"))
        .completions[0]
        .completion,
    }
    items = [i async for i in ac.chat_with_streaming(CHAT, model="llama-3.1-8b-instruct")]
    results["async_chat_stream"] = "".join(getattr(i, "content", "") or "" for i in items)
    items = [i async for i in ac.complete_with_streaming(COMPLETION, model="luminous-base")]
    results["async_complete_stream_len"] = len(items)
    return results


def test_no_mock_active_means_our_own_transport() -> None:
    assert patched_libraries() == []
    assert sync_route() == "default"
    assert async_route() == "default"


def test_vcr_replays_official_sync_cassette() -> None:
    with _recorder().use_cassette(str(CASSETTES / "official_sync.yaml")) as cassette:
        assert sync_route() == "requests"
        with Client("cassette-token", host=HOST, **FAST) as c:
            got = _sync_calls(c)
        assert cassette.all_played
    expected = _expected()
    assert got == {k: v for k, v in expected.items() if k.startswith("sync_")}


def test_vcr_replays_official_async_cassette_with_streams() -> None:
    async def main() -> dict[str, Any]:
        async with AsyncClient("cassette-token", host=HOST, **FAST) as ac:
            return await _async_calls(ac)

    with _recorder().use_cassette(str(CASSETTES / "official_async.yaml")) as cassette:
        assert async_route() == "aiohttp"
        got = asyncio.run(main())
        assert cassette.all_played
    expected = _expected()
    assert got == {k: v for k, v in expected.items() if k.startswith("async_")}


def test_vcr_unknown_request_is_an_error_not_a_network_call() -> None:
    with _recorder().use_cassette(str(CASSETTES / "official_sync.yaml")):
        with Client("cassette-token", host=HOST, **FAST) as c:
            with pytest.raises(APIConnectionError) as info:
                c.complete(
                    CompletionRequest(prompt=Prompt.from_text("new"), maximum_tokens=1), model="m"
                )
    # vcrpy's words differ by version ("Can't play back ...", "Can't overwrite existing cassette")
    assert "Can't play back" in str(info.value) or "Can't overwrite" in str(info.value)
    assert type(info.value.__cause__).__name__ == "CannotOverwriteExistingCassetteException"


def test_vcr_records_our_client_and_replays_it(tmp_path: Path, aleph_alpha_emulator: Any) -> None:
    path = str(tmp_path / "ours.yaml")
    host = aleph_alpha_emulator.url
    with vcr.VCR(record_mode="once").use_cassette(path):
        with Client("t", host=host, **FAST) as c:
            first = c.complete(COMPLETION, model="luminous-base").completions[0].completion
    aleph_alpha_emulator.stop()
    with vcr.VCR(record_mode="none").use_cassette(path) as cassette:
        with Client("t", host=host, **FAST) as c:
            assert c.complete(COMPLETION, model="luminous-base").completions[0].completion == first
        assert cassette.play_count == 1


@pytest.mark.skipif(
    not OFFICIAL_WITH_VCR,
    reason="set AA_OFFICIAL_PYTHON to a Python with official 11.5.1 and vcrpy",
)
def test_cassettes_recorded_live_by_the_official_client(tmp_path: Path) -> None:
    """Record fresh cassettes with the official client against a new emulator, replay with ours."""
    assert OFFICIAL is not None
    script = Path(__file__).parent / "official" / "record_cassettes.py"
    server = subprocess.Popen(
        [sys.executable, "-m", "aleph_alpha_client", "serve", "--port", "18765"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import socket
        import time

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", 18765), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        out = subprocess.run(
            [OFFICIAL, str(script), HOST, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
    finally:
        server.terminate()
        server.wait(10)
    expected = json.loads(out.stdout.strip().splitlines()[-1])
    with vcr.VCR(record_mode="none", match_on=["method", "uri", "body"]).use_cassette(
        str(tmp_path / "official_sync.yaml")
    ):
        with Client("cassette-token", host=HOST, **FAST) as c:
            assert _sync_calls(c) == {k: v for k, v in expected.items() if k.startswith("sync_")}


# ---------------------------------------------------------------------- responses


BODY = {
    "completions": [{"completion": " mocked", "finish_reason": "maximum_tokens"}],
    "model_version": "1",
    "num_tokens_prompt_total": 4,
    "num_tokens_generated": 1,
}
URL = "https://api.example.invalid/complete"


def test_responses_mock_is_used_by_both_clients() -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, URL, json=BODY)
        rsps.add(responses.POST, URL, json=BODY)
        assert sync_route() == "requests"
        with Client("t", host="https://api.example.invalid", **FAST) as c:
            assert c.complete(COMPLETION, model="m").completions[0].completion == " mocked"

        async def main() -> str | None:
            async with AsyncClient("t", host="https://api.example.invalid", **FAST) as ac:
                return (await ac.complete(COMPLETION, model="m")).completions[0].completion

        assert async_route() == "requests"  # only a sync library is mocked: via a thread
        assert asyncio.run(main()) == " mocked"
        assert len(rsps.calls) == 2
        assert rsps.calls[0].request.headers["Authorization"] == "Bearer t"


def test_responses_unmatched_request_fails_and_never_leaves() -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False):
        with Client("t", host="https://api.example.invalid", **FAST) as c:
            with pytest.raises(APIConnectionError) as info:
                c.complete(COMPLETION, model="m")
    assert "Connection refused by Responses" in str(info.value)


def test_responses_decorator_style_and_status_errors_are_ours() -> None:
    from aleph_alpha_client import BadRequestError

    @responses.activate
    def run() -> None:
        responses.add(responses.POST, URL, json={"error": "bad", "code": "BAD"}, status=400)
        with Client("t", host="https://api.example.invalid", **FAST) as c:
            with pytest.raises(BadRequestError):
                c.complete(COMPLETION, model="m")

    run()


# ------------------------------------------------------------------ requests-mock


def test_requests_mock_is_used() -> None:
    with requests_mock.Mocker() as m:
        m.post(URL, json=BODY)
        assert sync_route() == "requests"
        with Client("t", host="https://api.example.invalid", **FAST) as c:
            assert c.complete(COMPLETION, model="m").completions[0].completion == " mocked"
        assert m.call_count == 1
        assert m.request_history[0].json()["maximum_tokens"] == 8
        assert m.request_history[0].headers["Authorization"] == "Bearer t"


# ------------------------------------------------------------------- aioresponses


def test_aioresponses_is_used_including_streams() -> None:
    sse = (
        'data: {"type":"stream_chunk","index":0,"completion":" mock"}\n\n'
        'data: {"type":"stream_summary","index":0,"model_version":"1","finish_reason":"maximum_tokens"}\n\n'
        'data: {"type":"completion_summary","num_tokens_prompt_total":1,"num_tokens_generated":1}\n\n'
    )

    async def main() -> tuple[str | None, int]:
        with aioresponses.aioresponses() as m:
            m.post(URL, payload=BODY)
            m.post(URL, body=sse, headers={"Content-Type": "text/event-stream"})
            assert async_route() == "aiohttp"
            async with AsyncClient("t", host="https://api.example.invalid", **FAST) as ac:
                first = (await ac.complete(COMPLETION, model="m")).completions[0].completion
                items = [i async for i in ac.complete_with_streaming(COMPLETION, model="m")]
            return first, len(items)

    first, n = asyncio.run(main())
    assert first == " mocked"
    assert n >= 2


def test_aioresponses_unmatched_request_fails() -> None:
    async def main() -> None:
        with aioresponses.aioresponses():
            async with AsyncClient("t", host="https://api.example.invalid", **FAST) as ac:
                await ac.complete(COMPLETION, model="m")

    with pytest.raises(APIConnectionError):
        asyncio.run(main())


# -------------------------------------------------------------------------- respx


def test_respx_with_default_and_own_httpx_clients() -> None:
    with respx.mock(assert_all_called=False) as router:
        router.post(URL).mock(return_value=httpx.Response(200, json=BODY))
        assert sync_route() == "httpx"
        with Client("t", host="https://api.example.invalid", **FAST) as c:
            assert c.complete(COMPLETION, model="m").completions[0].completion == " mocked"
        with httpx.Client() as hc:
            with Client("t", host="https://api.example.invalid", http_client=hc, **FAST) as c:
                assert c.complete(COMPLETION, model="m").completions[0].completion == " mocked"

        async def main() -> str | None:
            async with httpx.AsyncClient() as hc:
                async with AsyncClient(
                    "t", host="https://api.example.invalid", http_client=hc, **FAST
                ) as ac:
                    return (await ac.complete(COMPLETION, model="m")).completions[0].completion

        assert asyncio.run(main()) == " mocked"
        assert router.calls.call_count == 3


def test_detection_ends_with_the_mock() -> None:
    with responses.RequestsMock():
        assert "requests" in patched_libraries()
    assert patched_libraries() == []
    with aioresponses.aioresponses():
        assert patched_libraries() == ["aiohttp"]
    assert patched_libraries() == []


@pytest.mark.parametrize(
    "target",
    [
        "aiohttp.client.ClientSession._request",  # async def: mock.patch makes an AsyncMock
        "httpx._client.AsyncClient._send_single_request",
        "httpx._client.Client._send_single_request",
    ],
)
def test_a_bare_mock_of_a_library_method_ends_as_our_error(guard: _Guard, target: str) -> None:
    # a bare mock answers with a mock, not a response: our typed error, never a TypeError
    # (an AsyncMock also fakes a __code__, which the detection read as a function's)
    from unittest import mock

    async def main() -> None:
        async with AsyncClient("SECRET-TOKEN", host=guard.url, **FAST) as ac:
            await ac.complete(COMPLETION, model="m")

    # (httpx itself trips over the mock's Location header first: its error, mapped to ours)
    with mock.patch(target) as patched:
        with pytest.raises(APIConnectionError, match=None if "httpx" in target else "HTTP status"):
            if ".Client." in target:
                with Client("SECRET-TOKEN", host=guard.url, **FAST) as c:
                    c.complete(COMPLETION, model="m")
            else:
                asyncio.run(main())
    assert patched.called
    assert guard.connections == 0


@pytest.mark.parametrize(
    ("target", "sync", "async_"),
    [
        ("http.client.HTTPConnection", "requests", "requests"),
        ("http.client.HTTPSConnection", "requests", "requests"),
        ("urllib3.connectionpool.HTTPConnectionPool.urlopen", "requests", "requests"),
        ("urllib3.connectionpool.HTTPConnectionPool.ConnectionCls", "requests", "requests"),
        ("urllib3.connectionpool.HTTPSConnectionPool.ConnectionCls", "requests", "requests"),
        ("requests.adapters.HTTPAdapter.send", "requests", "requests"),
        ("requests.sessions.Session.get_adapter", "requests", "requests"),
        ("requests.sessions.Session.request", "requests", "requests"),
        ("requests.sessions.Session.post", "requests", "requests"),
        ("requests.sessions.Session", "requests", "requests"),
        ("aiohttp.client.ClientSession._request", "default", "aiohttp"),
        ("aiohttp.client.ClientSession.post", "default", "aiohttp"),
        ("httpx._transports.default.HTTPTransport.handle_request", "httpx", "httpx"),
        ("httpx._client.AsyncClient._send_single_request", "httpx", "httpx"),
        ("httpcore.AsyncConnectionPool.handle_async_request", "httpx", "httpx"),
    ],
)
def test_every_patch_point_is_seen_after_a_cached_verdict(
    target: str, sync: str, async_: str
) -> None:
    from unittest import mock

    assert (sync_route(), async_route()) == ("default", "default")  # the verdict is cached
    with mock.patch(target):
        assert (sync_route(), async_route()) == (sync, async_)
    assert (sync_route(), async_route()) == ("default", "default")


def test_an_inherited_connection_class_patched_on_a_base_is_seen() -> None:
    # getattr reads ConnectionCls along the MRO: a pool class that does not define it itself
    # sees a patch on the base that does
    from unittest import mock

    import urllib3.connectionpool as pool

    class Base(pool.HTTPSConnectionPool):
        ConnectionCls = pool.HTTPSConnectionPool.ConnectionCls

    class Pool(Base):
        pass

    for cls in (Base, Pool):  # as if urllib3 defined them
        cls.__module__ = "urllib3.connectionpool"
    with mock.patch.object(pool, "HTTPSConnectionPool", Pool):
        assert sync_route() == "default"
        with mock.patch.object(Base, "ConnectionCls"):
            assert sync_route() == "requests"
        assert sync_route() == "default"


def test_a_verdict_is_never_about_other_values_than_it_caches() -> None:
    # Another thread unpatches and patches again (the same stub, as vcrpy does) while the
    # verdict is worked out: the verdict must be about the values it keeps, else "default"
    # would stay cached under an active patch and requests would leave.
    from unittest import mock

    import httpx  # noqa: F401  (its check comes after requests')
    import requests.adapters

    from aleph_alpha_client import _mocks

    stub = mock.MagicMock()
    real = requests.adapters.HTTPAdapter.send
    steps: list[str] = []
    judge = _mocks.not_from

    def racing(value: Any, package: Any) -> bool:
        if not steps:  # the other thread unpatches ...
            steps.append("unpatched")
            requests.adapters.HTTPAdapter.send = real  # type: ignore[method-assign]
        elif package in ("httpx", "httpcore", "aiohttp") and len(steps) == 1:
            steps.append("patched again")  # ... and patches again
            requests.adapters.HTTPAdapter.send = stub  # type: ignore[method-assign]
        return judge(value, package)

    assert sync_route() == "default"
    try:
        requests.adapters.HTTPAdapter.send = stub  # type: ignore[method-assign]
        with mock.patch.object(_mocks, "not_from", racing):
            first = sync_route()
        assert (first, sync_route()) == ("requests", "requests")
        assert steps == ["unpatched", "patched again"]  # the race did happen
    finally:
        requests.adapters.HTTPAdapter.send = real  # type: ignore[method-assign]
    assert sync_route() == "default"


# ---------------------------------------------------------------- pytest-recording


@pytest.fixture
def vcr_config() -> dict[str, Any]:
    return {"match_on": ["method", "uri", "body"]}


@pytest.mark.vcr(str(CASSETTES / "official_sync.yaml"))
def test_pytest_recording_replays_official_cassette() -> None:
    with Client("cassette-token", host=HOST, **FAST) as c:
        got = _sync_calls(c)
    assert got == {k: v for k, v in _expected().items() if k.startswith("sync_")}


# ------------------------------------------------------------------ nothing mocked leaves


class _Guard:
    """A listening socket that counts connections: a request that escaped a mock lands here."""

    def __init__(self) -> None:
        import socket
        import threading

        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()


@pytest.fixture
def guard() -> Any:
    g = _Guard()
    yield g
    g.close()


def test_downloads_go_through_the_mock_too(guard: _Guard) -> None:
    from aleph_alpha_client import Image
    from aleph_alpha_client.utils import load_base64_from_url

    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{guard.url}/a.bin", body=b"\x01\x02")
        assert load_base64_from_url(f"{guard.url}/a.bin") == "AQI="
        with pytest.raises(APIConnectionError, match="Connection refused by Responses"):
            Image.from_url(f"{guard.url}/unregistered.png")
    assert guard.connections == 0


def test_a_patched_session_post_sees_the_sync_call(guard: _Guard) -> None:
    from unittest import mock

    with mock.patch("requests.Session.post") as post:
        post.return_value.status_code = 200
        post.return_value.json.return_value = BODY
        assert sync_route() == "requests"
        with Client("SECRET-TOKEN", host=guard.url, **FAST) as c:
            answer = c.complete(COMPLETION, model="m")
    assert answer.completions[0].completion == " mocked"
    assert guard.connections == 0
    (call,) = post.call_args_list
    assert call.args[0] == f"{guard.url}/complete"
    assert call.kwargs["json"]["prompt"] == COMPLETION.to_json()["prompt"]  # as the official
    # the token sits on the session, as the official client keeps it: a failed
    # assert_called_with prints the call without it
    assert "SECRET-TOKEN" not in repr(post.call_args_list)


def test_a_patched_client_session_post_sees_the_async_call(guard: _Guard) -> None:
    from unittest import mock

    async def main() -> None:
        async with AsyncClient("SECRET-TOKEN", host=guard.url, **FAST) as ac:
            await ac.complete(COMPLETION, model="m")

    with mock.patch("aiohttp.ClientSession.post") as post:
        assert async_route() == "aiohttp"
        with pytest.raises(APIConnectionError):  # a bare MagicMock is no answer, but a typed one
            asyncio.run(main())
    assert post.called
    assert guard.connections == 0


def test_vcr_records_and_replays_sync_streams(tmp_path: Path, aleph_alpha_emulator: Any) -> None:
    path = str(tmp_path / "streams.yaml")
    host = aleph_alpha_emulator.url

    def streams(c: Client) -> tuple[str, int]:
        chat = "".join(
            getattr(i, "content", "") or ""
            for i in c.chat_with_streaming(CHAT, model="llama-3.1-8b-instruct")
        )
        return chat, len(list(c.complete_with_streaming(COMPLETION, model="luminous-base")))

    with vcr.VCR(record_mode="once").use_cassette(path):
        with Client("t", host=host, **FAST) as c:
            recorded = streams(c)
    aleph_alpha_emulator.stop()
    with vcr.VCR(record_mode="none").use_cassette(path) as cassette:
        with Client("t", host=host, **FAST) as c:
            assert streams(c) == recorded
        assert cassette.play_count == 2
    assert recorded[0] and recorded[1] > 1


def test_clients_used_under_mocks_pickle_and_the_copy_uses_the_mock_where_it_lands() -> None:
    import pickle

    async def main() -> AsyncClient:
        with aioresponses.aioresponses() as m:
            m.post(URL, payload=BODY)
            m.post(URL, payload=BODY)
            async with AsyncClient("t", host="https://api.example.invalid", **FAST) as ac:
                await ac.complete(COMPLETION, model="m")
                copy: AsyncClient = pickle.loads(pickle.dumps(ac))
                assert copy._mock_transports == {}
                answer = await copy.complete(COMPLETION, model="m")
                assert answer.completions[0].completion == " mocked"
                await copy.close()
                return copy

    asyncio.run(main())
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, URL, json=BODY)
        with Client("t", host="https://api.example.invalid", **FAST) as c:
            c.complete(COMPLETION, model="m")
            assert pickle.loads(pickle.dumps(c))._mock_transports == {}


def test_a_client_with_an_unpicklable_http_client_says_why() -> None:
    import pickle

    from aleph_alpha_client import InvalidArgumentTypeError

    with httpx.Client() as http, Client("t", host="http://127.0.0.1:1", http_client=http) as c:
        with pytest.raises(InvalidArgumentTypeError, match=r"transport.*cannot be pickled"):
            pickle.dumps(c)


def test_download_errors_still_match_requests_except_clauses() -> None:
    # The official client let requests' errors out of Image.from_url (raise_for_status):
    # `except requests.RequestException` around it keeps working, and the errors stay ours.
    import pickle

    import requests

    from aleph_alpha_client import AlephAlphaError, Image, PermissionDeniedError
    from aleph_alpha_client.utils import load_base64_from_url

    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, "http://images.example.invalid/x.png", body="html", status=403)
        with pytest.raises(requests.HTTPError) as info:
            Image.from_url("http://images.example.invalid/x.png")
    err = info.value
    assert isinstance(err, PermissionDeniedError) and err.status_code == 403
    assert err.response is None and "403" in str(err)
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is PermissionDeniedError and again.status_code == 403
    with pytest.raises(requests.ConnectionError) as refused:
        load_base64_from_url("http://127.0.0.1:1/x", timeout=2)
    assert isinstance(refused.value, AlephAlphaError)


# ---------------------------------------------------------------- found trying users' tools


def test_a_fake_from_a_module_named_like_the_library_is_still_a_fake(guard: _Guard) -> None:
    # pook keeps its urllib3 interceptor in pook/interceptors/urllib3.py, and a user's fake
    # may live in tests/requests/...: the file name alone said "urllib3's own"
    from unittest import mock

    import urllib3.connectionpool as pool

    namespace: dict[str, Any] = {"__name__": "pook.interceptors.urllib3"}
    code = "def urlopen(self, *args, **kwargs):\n    raise RuntimeError('intercepted')\n"
    exec(compile(code, "/site-packages/pook/interceptors/urllib3.py", "exec"), namespace)
    with mock.patch.object(pool.HTTPConnectionPool, "urlopen", namespace["urlopen"]):
        assert sync_route() == "requests"
        with Client("SECRET-TOKEN", host=guard.url, **FAST) as c:
            with pytest.raises(APIConnectionError, match="intercepted"):
                c.complete(COMPLETION, model="m")
    assert guard.connections == 0


def test_a_patched_client_session_request_sees_the_async_call(guard: _Guard) -> None:
    # the official AsyncClient reaches ClientSession.request (through aiohttp_retry)
    from unittest import mock

    async def main() -> None:
        async with AsyncClient("SECRET-TOKEN", host=guard.url, **FAST) as ac:
            await ac.complete(COMPLETION, model="m")

    with mock.patch("aiohttp.ClientSession.request") as request:
        with pytest.raises(APIConnectionError):
            asyncio.run(main())
    assert request.called and request.call_args.args[:2] == ("POST", f"{guard.url}/complete")
    assert guard.connections == 0


@pytest.mark.parametrize("target", ["requests.get", "requests.Session"])
def test_patches_at_the_top_of_requests_are_seen(guard: _Guard, target: str) -> None:
    from unittest import mock

    from aleph_alpha_client.utils import load_base64_from_url

    with mock.patch(target) as patched:
        fake = patched.return_value if target == "requests.get" else patched.return_value.get()
        fake.status_code = 200
        fake.headers = {"Content-Type": "image/png"}
        fake.raw.read.side_effect = [b"\x01\x02", b""]
        fake.iter_content.return_value = iter([b"\x01\x02"])
        fake.content = b"\x01\x02"
        assert sync_route() == "requests"
        try:
            load_base64_from_url(f"{guard.url}/a.png")
        except APIConnectionError:
            pass  # a stand-in the transport cannot read is our error: what counts is below
    assert patched.called
    assert guard.connections == 0


def test_a_patched_httpx_client_send_is_seen(guard: _Guard) -> None:
    from unittest import mock

    with mock.patch("httpx.Client.send") as send:
        assert sync_route() == "httpx"
        with Client("SECRET-TOKEN", host=guard.url, **FAST) as c:
            with pytest.raises(APIConnectionError):
                c.complete(COMPLETION, model="m")
    assert send.called
    assert guard.connections == 0


def test_httpretty_answers_both_clients(guard: _Guard) -> None:
    httpretty = pytest.importorskip("httpretty")
    import requests

    async def main() -> Any:
        async with AsyncClient("SECRET-TOKEN", host=guard.url, **FAST) as ac:
            return await ac.complete(COMPLETION, model="m")

    with httpretty.enabled(allow_net_connect=False):
        httpretty.register_uri(
            httpretty.POST,
            f"{guard.url}/complete",
            body=json.dumps(BODY),
            content_type="application/json",
        )
        assert sync_route() == "requests"
        try:  # httpretty 1.1 cannot serve urllib3 >= 2.3 (no socket.shutdown), whoever asks
            requests.post(f"{guard.url}/complete", json={}, timeout=5)
            served = True
        except httpretty.errors.UnmockedError:
            served = False
        with Client("SECRET-TOKEN", host=guard.url, **FAST) as c:
            if served:
                assert c.complete(COMPLETION, model="m").completions[0].completion == " mocked"
            else:
                with pytest.raises(APIConnectionError, match="real socket does not exist"):
                    c.complete(COMPLETION, model="m")
        if served:
            assert asyncio.run(main()).completions[0].completion == " mocked"
    assert sync_route() == "default"
    assert guard.connections == 0


def test_a_blocked_socket_is_our_connection_error(guard: _Guard) -> None:
    # pytest-socket's disable_socket() puts a guard class in place of socket.socket
    import socket
    from unittest import mock

    class GuardedSocket(socket.socket):
        def __new__(cls, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("A test tried to use socket.socket.")

    GuardedSocket.__module__ = "pytest_socket"
    with mock.patch("socket.socket", GuardedSocket):
        with Client("SECRET-TOKEN", host=guard.url, **FAST) as c:
            with pytest.raises(APIConnectionError, match="tried to use socket"):
                c.complete(COMPLETION, model="m")
    assert guard.connections == 0
