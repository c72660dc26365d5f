"""Deployments: proxies (HTTP, HTTPS, SOCKS5) chosen per request target, NO_PROXY, CONNECT
under the connect deadline, TLS inside TLS, private CAs, mTLS, certificate failures that are
not retried, the token on redirects. Every test talks to scripted servers on loopback, with
certificates made at test time by the openssl CLI (tests/certs.py); both clients.
"""

from __future__ import annotations

import base64
import pickle
import socket
import ssl
import struct
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aleph_alpha_client import AsyncClient, Client, CompletionRequest, Prompt, _tls
from aleph_alpha_client._exceptions import (
    APIConnectionError,
    APITimeoutError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
)
from aleph_alpha_client._net import split_url
from aleph_alpha_client._proxy import ProxyRules, bypass_proxy, parse_proxy
from aleph_alpha_client._transport import HTTPRequest
from aleph_alpha_client._wire import redirect
from aleph_alpha_client.chat import ChatRequest, Message, Role
from certs import Certs, have_openssl
from conftest import TOKEN
from raw_server import RawServer

MODES = ["sync", "async"]
REQUEST = ChatRequest(model="m", messages=[Message(role=Role.User, content="hi")])
CHAT_OK = (
    b'{"choices":[{"index":0,"finish_reason":"stop",'
    b'"message":{"role":"assistant","content":"ok"}}]}'
)
PASSWORD = "pr0xy-S3CRET"


def answer(body: bytes = CHAT_OK, status: str = "200 OK", extra: str = "") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n"
    head += "Content-Type: application/json\r\n" + extra + "\r\n"
    return head.encode() + body


def chat(c: Any) -> Any:
    return c.chat(REQUEST, "m")


def run(mode: str, host: str, call: Callable[[Any], Any] = chat, **kwargs: Any) -> Any:
    """``call(client)`` on a Client or AsyncClient for ``host`` (no retries unless asked)."""
    kwargs.setdefault("total_retries", 0)
    kwargs.setdefault("request_timeout_seconds", 10)
    if mode == "sync":
        with Client(TOKEN, host=host, **kwargs) as c:
            return call(c)

    async def main() -> Any:
        async with AsyncClient(TOKEN, host=host, **kwargs) as c:
            return await call(c)

    import asyncio

    return asyncio.run(main())


def head_of(request: bytes) -> dict[str, str]:
    lines = request.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}


def api_handler(conn: socket.socket, index: int, server: RawServer) -> None:
    buf = bytearray()
    while server.next_request(conn, buf) is not None:
        conn.sendall(answer())


def pump(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until one side closes."""

    def one_way(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    back = threading.Thread(target=one_way, args=(b, a), daemon=True)
    back.start()
    one_way(a, b)
    back.join(5)


class Proxy:
    """A scripted HTTP proxy: CONNECT tunnels to ``routes`` (host:port -> loopback port);
    absolute-form requests are answered by ``forward(request)``."""

    def __init__(
        self,
        make_server: Any,
        routes: dict[str, int] | None = None,
        forward: Callable[[bytes], bytes] | None = None,
        wrap: ssl.SSLContext | None = None,
        trickle: bool = False,
    ) -> None:
        self.routes = routes or {}
        self.forward = forward or (lambda request: answer())
        self.trickle = trickle
        self.seen: list[bytes] = []
        self.server = make_server(self.handle, wrap=wrap)
        self.port = self.server.port

    def handle(self, conn: socket.socket, index: int, server: RawServer) -> None:
        buf = bytearray()
        first = server.next_request(conn, buf)
        while first is not None:
            self.seen.append(first)
            if not first.startswith(b"CONNECT "):
                conn.sendall(self.forward(first))
                first = server.next_request(conn, buf)
                continue
            if self.trickle:  # a head that never ends, one byte every 0.5 s
                conn.sendall(b"H")
                for byte in b"TTP/1.1 200 OK\r\n" + b"X-Slow: y\r\n" * 100:
                    time.sleep(0.5)
                    conn.sendall(bytes([byte]))
                return
            authority = first.split(b" ")[1].decode()
            port = self.routes.get(authority)
            if port is None:
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            upstream = socket.create_connection(("127.0.0.1", port))
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            pump(conn, upstream)
            upstream.close()
            return


class Socks5:
    """A scripted SOCKS5 server (RFC 1928/1929) that records what each CONNECT asked for."""

    def __init__(
        self, make_server: Any, routes: dict[str, int], credentials: tuple[str, str] | None
    ) -> None:
        self.routes = routes
        self.credentials = credentials
        self.asked: list[tuple[int, str, int]] = []  # (address type, host, port)
        self.server = make_server(self.handle)
        self.port = self.server.port

    @staticmethod
    def exact(conn: socket.socket, size: int) -> bytes:
        data = b""
        while len(data) < size:
            piece = conn.recv(size - len(data))
            if not piece:
                raise ConnectionError("closed")
            data += piece
        return data

    def handle(self, conn: socket.socket, index: int, server: RawServer) -> None:
        version, count = self.exact(conn, 2)
        methods = self.exact(conn, count)
        assert version == 5
        if self.credentials is not None:
            if 2 not in methods:
                conn.sendall(b"\x05\xff")
                return
            conn.sendall(b"\x05\x02")
            self.exact(conn, 1)
            user = self.exact(conn, self.exact(conn, 1)[0]).decode()
            password = self.exact(conn, self.exact(conn, 1)[0]).decode()
            if (user, password) != self.credentials:
                conn.sendall(b"\x01\x01")
                return
            conn.sendall(b"\x01\x00")
        else:
            conn.sendall(b"\x05\x00")
        _, command, _, atyp = self.exact(conn, 4)
        if atyp == 1:
            host = socket.inet_ntop(socket.AF_INET, self.exact(conn, 4))
        elif atyp == 4:
            host = socket.inet_ntop(socket.AF_INET6, self.exact(conn, 16))
        else:
            host = self.exact(conn, self.exact(conn, 1)[0]).decode()
        (port,) = struct.unpack(">H", self.exact(conn, 2))
        self.asked.append((atyp, host, port))
        target = self.routes.get(f"{host}:{port}")
        if command != 1 or target is None:
            conn.sendall(b"\x05\x04\x00\x01" + bytes(6))  # host unreachable
            return
        upstream = socket.create_connection(("127.0.0.1", target))
        conn.sendall(b"\x05\x00\x00\x01\x7f\x00\x00\x01" + struct.pack(">H", target))
        pump(conn, upstream)
        upstream.close()


# ------------------------------------------------------------------ certificates


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A private CA, server certificates (good, wrong name, expired), a client certificate,
    and a second CA the servers do not know."""
    if not have_openssl():
        pytest.skip("no openssl CLI to make test certificates")
    folder = tmp_path_factory.mktemp("pki")
    ca = Certs(folder / "ca")
    other = Certs(folder / "other", name="Other CA")
    return {
        "ca": ca.ca,
        "server": ca.leaf("server", "DNS:localhost,DNS:api.example.test,IP:127.0.0.1"),
        "wrong_name": ca.leaf("wrong", "DNS:other.example.test"),
        "expired": ca.leaf("old", expired=True),
        "client": ca.leaf("client", "", client=True),
        "stranger": other.leaf("stranger", "", client=True),
    }


def server_context(pki: dict[str, Any], which: str = "server", mtls: bool = False) -> Any:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*pki[which])
    if mtls:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=str(pki["ca"]))
    return context


# ------------------------------------------------------------------ NO_PROXY and parsing


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "bypass"),
    [
        ("10.1.2.3", 443, "10.0.0.0/8", True),
        ("11.1.2.3", 443, "10.0.0.0/8", False),
        ("192.168.1.7", 80, "192.168.1.0/24, example.com", True),
        ("::1", 443, "::1", True),
        ("fd00::5", 443, "fd00::/8", True),
        ("api.example.com", 443, "example.com", True),
        ("api.example.com", 443, ".example.com", True),
        ("example.com", 443, ".example.com", True),
        ("notexample.com", 443, "example.com", False),
        ("api.example.com", 443, "*", True),
        ("api.example.com", 8443, "api.example.com:8443", True),
        ("api.example.com", 443, "api.example.com:8443", False),
        ("127.0.0.1", 80, "localhost", False),
        ("API.Example.COM", 443, "example.com", True),
        ("10.0.0.1", 443, "", False),
    ],
)
def test_no_proxy_rules(host: str, port: int, no_proxy: str, bypass: bool) -> None:
    assert bypass_proxy(host, port, no_proxy) is bypass


def test_proxy_rules_per_scheme_and_fallback() -> None:
    rules = ProxyRules({"https": "http://s:1", "all": "socks5h://a:2"}, "direct.test")
    https = rules.for_target(split_url("https://x.test/"))
    http = rules.for_target(split_url("http://x.test/"))
    assert https is not None and (https.scheme, https.host, https.port) == ("http", "s", 1)
    assert http is not None and (http.scheme, http.port) == ("socks5h", 2)
    assert rules.for_target(split_url("https://api.direct.test/")) is None


@pytest.mark.parametrize("scheme", ["socks4", "socks4a", "ftp"])
def test_unsupported_proxy_scheme_is_a_clear_error(scheme: str) -> None:
    with pytest.raises(InvalidArgumentError, match=r"ALL_PROXY.*socks5") as info:
        parse_proxy(f"{scheme}://user:{PASSWORD}@p:1080", "ALL_PROXY")
    assert PASSWORD not in str(info.value)


def test_proxy_repr_and_control_characters() -> None:
    proxy = parse_proxy(f"http://user:{PASSWORD}@proxy.test:3128")
    assert PASSWORD not in repr(proxy) and proxy.shown == "http://proxy.test:3128"
    with pytest.raises(InvalidArgumentError, match="control characters") as info:
        parse_proxy(f"http://user:{PASSWORD}\r\n@proxy.test:3128")
    assert PASSWORD not in str(info.value)


@pytest.mark.parametrize("mode", MODES)
def test_socks4_in_the_environment_fails_instead_of_going_direct(
    mode: str, make_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = make_server(api_handler)
    monkeypatch.setenv("ALL_PROXY", f"socks4://user:{PASSWORD}@127.0.0.1:1")
    with pytest.raises(InvalidArgumentError, match="socks5") as info:
        run(mode, f"http://127.0.0.1:{api.port}")
    assert PASSWORD not in str(info.value)
    assert api.requests == []  # nothing went out directly


# ------------------------------------------------------------------ per-target choice


@pytest.mark.parametrize("mode", MODES)
def test_a_redirect_to_another_host_goes_through_the_proxy(
    mode: str, make_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NO_PROXY covers the configured host, not the host it redirects to."""
    target = "http://moved.example.test/v1/chat/completions"

    def redirecting(conn: socket.socket, index: int, server: RawServer) -> None:
        buf = bytearray()
        while server.next_request(conn, buf) is not None:
            conn.sendall(answer(b"", "307 Temporary Redirect", f"Location: {target}\r\n"))

    api = make_server(redirecting)
    proxy = Proxy(make_server)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.0/8")
    assert run(mode, f"http://127.0.0.1:{api.port}").message.content == "ok"
    assert len(api.requests) == 1  # direct
    (through,) = proxy.seen
    assert through.startswith(b"POST " + target.encode() + b" HTTP/1.1\r\n")
    assert "authorization" not in head_of(through)  # another origin: no token


@pytest.mark.parametrize("mode", MODES)
def test_no_proxy_cidr_goes_direct(
    mode: str, make_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = make_server(api_handler)
    proxy = Proxy(make_server)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.setenv("NO_PROXY", "example.com,127.0.0.0/8")
    assert run(mode, f"http://127.0.0.1:{api.port}").message.content == "ok"
    assert proxy.seen == [] and len(api.requests) == 1
    monkeypatch.setenv("NO_PROXY", "10.0.0.0/8")
    assert run(mode, f"http://127.0.0.1:{api.port}").message.content == "ok"
    assert len(proxy.seen) == 1 and len(api.requests) == 1


# ------------------------------------------------------------------ CONNECT


@pytest.mark.parametrize("mode", MODES)
def test_a_trickling_connect_answer_is_cut_by_the_connect_timeout(
    mode: str, make_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = Proxy(make_server, trickle=True)
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
    from aleph_alpha_client import Timeout

    with pytest.raises(APITimeoutError) as info:
        run(
            mode,
            "https://api.example.test",
            request_timeout_seconds=Timeout(total=30, connect=1.5, idle=30),
        )
    assert info.value.phase == "connect"
    assert len(proxy.seen) == 1


@pytest.mark.parametrize("mode", MODES)
def test_proxy_credentials_never_in_messages(
    mode: str, make_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(conn: socket.socket, index: int, server: RawServer) -> None:
        server.next_request(conn, bytearray())
        conn.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")

    proxy = make_server(refuse)
    monkeypatch.setenv("HTTPS_PROXY", f"http://user:{PASSWORD}@127.0.0.1:{proxy.port}")
    with pytest.raises(APIConnectionError, match="407") as info:
        run(mode, "https://api.example.test", total_retries=8)
    assert PASSWORD not in str(info.value) and PASSWORD not in repr(info.value)
    assert info.value.retryable is False and proxy.accepted == 1  # wrong credentials: once
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    monkeypatch.setenv("HTTPS_PROXY", f"http://user:{PASSWORD}@127.0.0.1:{port}")
    with pytest.raises(APIConnectionError) as info:
        run(mode, "https://api.example.test")
    assert PASSWORD not in str(info.value)


@pytest.mark.parametrize("mode", MODES)
def test_https_proxy_in_front_of_an_https_api(
    mode: str, make_server: Any, pki: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """TLS to the proxy, and TLS to the API inside it (sync: [SSL: UNEXPECTED_MESSAGE] before)."""
    if mode == "async" and sys.version_info < (3, 11):
        pytest.skip(
            "asyncio's start_tls over a TLS transport needs Python 3.11; before, AsyncClient "
            "refuses it (test_async_client_refuses_tls_in_tls_before_python_3_11)"
        )
    api = make_server(api_handler, wrap=server_context(pki))
    proxy = Proxy(
        make_server, routes={f"api.example.test:{api.port}": api.port}, wrap=server_context(pki)
    )
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki["ca"]))
    monkeypatch.setenv("HTTPS_PROXY", f"https://user:{PASSWORD}@localhost:{proxy.port}")

    def two(c: Any) -> Any:
        if mode == "sync":
            return [chat(c), chat(c)]

        async def both() -> Any:
            return [await chat(c), await chat(c)]

        return both()

    results = run(mode, f"https://api.example.test:{api.port}", two)
    assert [r.message.content for r in results] == ["ok", "ok"]
    assert proxy.seen[0].startswith(b"CONNECT api.example.test:%d HTTP/1.1\r\n" % api.port)
    auth = base64.b64encode(f"user:{PASSWORD}".encode()).decode()
    assert head_of(proxy.seen[0])["proxy-authorization"] == f"Basic {auth}"
    assert head_of(api.requests[0])["authorization"] == f"Bearer {TOKEN}"
    assert api.accepted == 1 and len(api.requests) == 2  # the tunnel was kept alive


def test_the_tls_in_tls_error_names_the_limit_and_the_alternatives() -> None:
    error = _tls.async_tls_in_tls_error(
        "https://localhost:1", "https://api.example.test/chat/completions", supported=False
    )
    assert isinstance(error, InvalidArgumentError)
    text = str(error)
    assert "https://localhost:1" in text and "api.example.test" in text
    assert "Python 3.11" in text and "http:// proxy" in text and "sync Client" in text
    assert _tls.async_tls_in_tls_error("https://localhost:1", "https://x", supported=True) is None
    assert _tls.ASYNC_TLS_IN_TLS == (sys.version_info >= (3, 11))


def test_async_client_refuses_tls_in_tls_before_python_3_11(
    make_server: Any, pki: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python 3.10 (simulated on later ones): an https:// proxy in front of an https:// API is
    refused with our error before any connection (it was a bare TypeError from start_tls
    after the proxy had been sent CONNECT and the proxy credentials)."""
    monkeypatch.setattr(_tls, "ASYNC_TLS_IN_TLS", False)
    proxy = Proxy(make_server, wrap=server_context(pki))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki["ca"]))
    monkeypatch.setenv("HTTPS_PROXY", f"https://user:{PASSWORD}@localhost:{proxy.port}")
    with pytest.raises(InvalidArgumentError) as info:
        run("async", "https://api.example.test", total_retries=3)
    assert "Python 3.11" in str(info.value) and PASSWORD not in str(info.value)
    assert proxy.server.accepted == 0
    # an http:// proxy (CONNECT, one TLS session to the API) is not refused
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
    with pytest.raises(APIConnectionError):  # the scripted proxy speaks TLS only
        run("async", "https://api.example.test")


# ------------------------------------------------------------------ SOCKS5


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
@pytest.mark.parametrize("tls", [False, True])
@pytest.mark.parametrize("auth", [False, True])
def test_socks5_proxy(
    mode: str,
    scheme: str,
    tls: bool,
    auth: bool,
    make_server: Any,
    pki: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api = make_server(api_handler, wrap=server_context(pki) if tls else None)
    routes = {f"localhost:{api.port}": api.port, f"127.0.0.1:{api.port}": api.port}
    socks = Socks5(make_server, routes, ("alice", PASSWORD) if auth else None)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki["ca"]))
    userinfo = f"alice:{PASSWORD}@" if auth else ""
    monkeypatch.setenv("ALL_PROXY", f"{scheme}://{userinfo}127.0.0.1:{socks.port}")
    host = f"{'https' if tls else 'http'}://localhost:{api.port}"
    assert run(mode, host).message.content == "ok"
    ((atyp, asked, port),) = socks.asked
    assert port == api.port
    if scheme == "socks5h":
        assert (atyp, asked) == (3, "localhost")  # the proxy resolves the name
    else:
        assert atyp in (1, 4) and asked in ("127.0.0.1", "::1")
    request_line = api.requests[0].split(b"\r\n", 1)[0]
    assert request_line == b"POST /chat/completions HTTP/1.1"  # origin-form through SOCKS


@pytest.mark.parametrize("mode", MODES)
def test_socks5_refusals_are_clear(
    mode: str, make_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    socks = Socks5(make_server, {}, ("alice", "right"))
    monkeypatch.setenv("ALL_PROXY", f"socks5h://alice:{PASSWORD}@127.0.0.1:{socks.port}")
    with pytest.raises(APIConnectionError, match="authentication failed") as info:
        run(mode, "http://api.example.test", total_retries=8)
    assert PASSWORD not in str(info.value)
    assert socks.server.accepted == 1  # not retried
    monkeypatch.setenv("ALL_PROXY", f"socks5h://127.0.0.1:{socks.port}")
    with pytest.raises(APIConnectionError, match="username and password"):
        run(mode, "http://api.example.test")
    open_socks = Socks5(make_server, {}, None)
    monkeypatch.setenv("ALL_PROXY", f"socks5h://127.0.0.1:{open_socks.port}")
    with pytest.raises(APIConnectionError, match="host unreachable"):
        run(mode, "http://api.example.test")


# ------------------------------------------------------------------ TLS: private CA, mTLS


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("which", "trust", "words"),
    [
        ("wrong_name", True, "mismatch"),
        ("server", False, "unknown CA"),
        ("expired", True, "expired"),
    ],
)
def test_certificate_failures_fail_at_once_saying_which_check(
    mode: str,
    which: str,
    trust: bool,
    words: str,
    make_server: Any,
    pki: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api = make_server(api_handler, wrap=server_context(pki, which))
    if trust:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki["ca"]))
    with pytest.raises(APIConnectionError, match=words) as info:
        run(mode, f"https://localhost:{api.port}", total_retries=8)
    assert info.value.retryable is False
    assert api.accepted == 1 and api.requests == []  # not retried, nothing sent


@pytest.mark.parametrize("mode", MODES)
def test_ssl_context_trusts_a_private_ca(mode: str, make_server: Any, pki: dict[str, Any]) -> None:
    api = make_server(api_handler, wrap=server_context(pki))
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    assert run(mode, f"https://localhost:{api.port}", ssl_context=context).message.content == "ok"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("form", ["pair", "one_file", "context"])
def test_mtls_with_a_client_certificate(
    mode: str,
    form: str,
    make_server: Any,
    pki: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api = make_server(api_handler, wrap=server_context(pki, mtls=True))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki["ca"]))
    cert, key = pki["client"]
    kwargs: dict[str, Any]
    if form == "pair":
        kwargs = {"cert": (str(cert), str(key))}
    elif form == "one_file":
        both = tmp_path / "both.pem"
        both.write_bytes(Path(cert).read_bytes() + Path(key).read_bytes())
        kwargs = {"cert": both}
    else:
        context = ssl.create_default_context(cafile=str(pki["ca"]))
        context.load_cert_chain(cert, key)
        kwargs = {"ssl_context": context}
    assert run(mode, f"https://localhost:{api.port}", **kwargs).message.content == "ok"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("which", [None, "stranger"])
def test_mtls_refused_fails_at_once(
    mode: str,
    which: str | None,
    make_server: Any,
    pki: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    context = server_context(pki, mtls=True)

    def refusing(conn: socket.socket, index: int, server: RawServer) -> None:
        """Refuse the client certificate as servers do: send the alert, then a lingering
        close (read what the client sent, so the kernel does not answer with a reset that
        would overtake the alert)."""
        with context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False) as tls:
            try:
                tls.do_handshake()
            except (OSError, ssl.SSLError):
                tls.settimeout(2)
                try:
                    while socket.socket.recv(tls, 65536):
                        pass
                except OSError:
                    pass
                return
            api_handler(tls, index, server)

    api = make_server(refusing)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki["ca"]))
    kwargs = {} if which is None else {"cert": tuple(str(p) for p in pki[which])}
    with pytest.raises(APIConnectionError, match="client certificate") as info:
        run(mode, f"https://localhost:{api.port}", total_retries=8, **kwargs)
    assert info.value.retryable is False
    assert api.accepted == 1


def test_tls_arguments_are_checked(pki: dict[str, Any], tmp_path: Path) -> None:
    for cls in (Client, AsyncClient):
        with pytest.raises(InvalidArgumentTypeError, match="ssl_context"):
            cls(TOKEN, ssl_context="yes")
        with pytest.raises(InvalidArgumentError, match="cert: no such file"):
            cls(TOKEN, cert=str(tmp_path / "missing.pem"))
        with pytest.raises(InvalidArgumentError, match="cert"):
            cls(TOKEN, cert=(str(pki["client"][0]), str(pki["stranger"][1])))  # key mismatch
        with pytest.raises(InvalidArgumentError, match="one of them"):
            cls(TOKEN, cert=pki["client"], ssl_context=ssl.create_default_context())


def test_pickling_and_with_options_keep_tls(make_server: Any, pki: dict[str, Any]) -> None:
    api = make_server(api_handler, wrap=server_context(pki, mtls=True))
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    client = Client(TOKEN, host=f"https://localhost:{api.port}", ssl_context=context)
    with pytest.raises(InvalidArgumentTypeError, match=r"ssl_context.*cannot be pickled"):
        pickle.dumps(client)
    client.close()
    cert = tuple(str(p) for p in pki["client"])
    client = Client(TOKEN, host=f"https://localhost:{api.port}", cert=cert, total_retries=0)
    client = client.with_options(max_retries=0)
    clone = pickle.loads(pickle.dumps(client))
    with pytest.raises(APIConnectionError, match="unknown CA"):  # the CA is not in the pickle
        clone.chat(REQUEST, "m")
    clone.close()
    client.close()


# ------------------------------------------------------------------ redirects and the token


@pytest.mark.parametrize(
    ("old", "new", "keeps"),
    [
        ("http://api.test/v1/chat", "https://api.test/v1/chat", True),
        ("http://api.test:80/v1/chat", "https://api.test:443/v1/chat", True),
        ("http://api.test/v1/chat", "https://api.test:8443/v1/chat", False),
        ("http://api.test:8080/v1/chat", "https://api.test/v1/chat", False),
        ("https://api.test/v1/chat", "http://api.test/v1/chat", False),
        ("http://api.test/v1/chat", "https://other.test/v1/chat", False),
        ("https://api.test/v1/chat", "https://api.test:443/v2/chat", True),
        ("http://api.test/v1/chat", "http://api.test:80/v2", True),
    ],
)
def test_token_on_redirect(old: str, new: str, keeps: bool) -> None:
    request = HTTPRequest("POST", old, {"Authorization": f"Bearer {TOKEN}"}, b"{}")
    follow = redirect(request, 307, {"location": new})
    assert follow is not None and follow.url == new
    assert ("Authorization" in follow.headers) is keeps


@pytest.mark.parametrize("mode", MODES)
def test_http_to_https_upgrade_keeps_the_token_end_to_end(
    mode: str, make_server: Any, pki: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """http://api.example.test (port 80) answers 301 to https://api.example.test (port 443);
    both default ports are reached through a scripted proxy, so no privileged port is bound."""
    api = make_server(api_handler, wrap=server_context(pki))

    def upgrade(request: bytes) -> bytes:
        location = "https://api.example.test/chat/completions"
        return answer(b"", "308 Permanent Redirect", f"Location: {location}\r\n")

    proxy = Proxy(make_server, routes={"api.example.test:443": api.port}, forward=upgrade)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki["ca"]))
    assert run(mode, "http://api.example.test").message.content == "ok"
    assert head_of(proxy.seen[0])["authorization"] == f"Bearer {TOKEN}"
    assert proxy.seen[1].startswith(b"CONNECT api.example.test:443 ")
    assert head_of(api.requests[0])["authorization"] == f"Bearer {TOKEN}"


# ------------------------------------------------------------------ official-client values


@pytest.mark.parametrize("mode", MODES)
def test_empty_token_is_accepted_as_the_official_client_accepts_it(
    mode: str, make_server: Any
) -> None:
    api = make_server(api_handler)
    for cls in (Client, AsyncClient):
        assert cls(token="").token == ""
    kwargs = {"total_retries": 0}
    if mode == "sync":
        with Client(token="", host=f"http://127.0.0.1:{api.port}", **kwargs) as c:
            c.chat(REQUEST, "m")
    else:
        import asyncio

        async def main() -> None:
            async with AsyncClient(token="", host=f"http://127.0.0.1:{api.port}", **kwargs) as c:
                await c.chat(REQUEST, "m")

        asyncio.run(main())
    assert head_of(api.requests[0])["authorization"] == "Bearer"


@pytest.mark.parametrize("mode", MODES)
def test_scoring_a_prompt_with_maximum_tokens_zero(mode: str, make_server: Any) -> None:
    body = (
        b'{"model_version":"x","num_tokens_prompt_total":3,"num_tokens_generated":0,'
        b'"completions":[{"completion":"","finish_reason":"maximum_tokens"}]}'
    )

    def scoring(conn: socket.socket, index: int, server: RawServer) -> None:
        buf = bytearray()
        while server.next_request(conn, buf) is not None:
            conn.sendall(answer(body))

    api = make_server(scoring)
    request = CompletionRequest(prompt=Prompt.from_text("score me"), maximum_tokens=0, echo=True)
    result = run(mode, f"http://127.0.0.1:{api.port}", lambda c: c.complete(request, "m"))
    assert result.completions[0].completion == ""
    sent = api.requests[0].split(b"\r\n\r\n", 1)[1]
    assert b'"maximum_tokens":0' in sent.replace(b" ", b"") and b'"echo":true' in sent.replace(
        b" ", b""
    )


@pytest.mark.parametrize("mode", MODES)
def test_the_emulator_scores_a_prompt_with_maximum_tokens_zero(mode: str) -> None:
    from aleph_alpha_client import BadRequestError
    from aleph_alpha_client.emulator import Emulator

    scoring = CompletionRequest(
        prompt=Prompt.from_text("score me"), maximum_tokens=0, echo=True, log_probs=0
    )
    with Emulator() as emu:
        result = run(mode, emu.url, lambda c: c.complete(scoring, "luminous-base"))
        assert result.num_tokens_generated == 0
        assert result.completions[0].completion == "score me"  # the echoed prompt only
        assert result.completions[0].log_probs  # one entry per prompt token
        generate_nothing = CompletionRequest(prompt=Prompt.from_text("x"), maximum_tokens=0)
        with pytest.raises(BadRequestError, match="echo"):
            run(mode, emu.url, lambda c: c.complete(generate_nothing, "luminous-base"))
