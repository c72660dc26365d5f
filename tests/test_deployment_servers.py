"""The deployment cases against real servers on loopback, when their binaries are installed:
nginx (TLS termination with a private CA, mTLS), squid and tinyproxy (HTTP proxies: absolute
form and CONNECT), microsocks and dante (SOCKS5). Each runs in the foreground with a config
in a temporary folder, in front of the emulator; a missing binary skips with a reason.
(.ci/run installs them with apt-get unless AA_CI_DEPLOY_SERVERS=0.)
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aleph_alpha_client import AsyncClient, Client
from aleph_alpha_client.chat import ChatRequest, ChatStreamChunk, Message, Role
from aleph_alpha_client.emulator import Emulator
from certs import Certs, have_openssl

MODES = ["sync", "async"]
MODEL = "llama-3.1-8b-instruct"
REQUEST = ChatRequest(model=MODEL, messages=[Message(role=Role.User, content="hi")])


def binary(*names: str) -> str:
    for name in names:
        for folder in ("", "/usr/sbin/", "/usr/bin/"):
            found = shutil.which(folder + name) if folder else shutil.which(name)
            if found:
                return found
    pytest.skip(f"{names[0]} is not installed (apt-get install {names[0]})")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(args: list[str], port: int, folder: Path) -> subprocess.Popen[bytes]:
    """Start a server and wait until it listens on ``port`` (skip if it cannot start)."""
    with open(folder / "server.log", "wb") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    give_up = time.monotonic() + 15
    while time.monotonic() < give_up:
        if proc.poll() is not None:
            text = (folder / "server.log").read_text(errors="replace")[-600:]
            pytest.skip(f"{Path(args[0]).name} did not start: {text}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    proc.wait()
    pytest.skip(f"{Path(args[0]).name} did not listen on {port} within 15 s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def stream_and_chat(mode: str, host: str, **kwargs: Any) -> tuple[str, str]:
    """A chat and a streamed chat through ``host``; both answers' text."""
    kwargs.setdefault("total_retries", 0)
    kwargs.setdefault("request_timeout_seconds", 20)
    if mode == "sync":
        with Client("token", host=host, **kwargs) as c:
            text = c.chat(REQUEST, MODEL).message.content
            streamed = "".join(
                item.content
                for item in c.chat_with_streaming(REQUEST, MODEL)
                if isinstance(item, ChatStreamChunk)
            )
            return text, streamed

    async def main() -> tuple[str, str]:
        async with AsyncClient("token", host=host, **kwargs) as c:
            text = (await c.chat(REQUEST, MODEL)).message.content
            parts = []
            async for item in c.chat_with_streaming(REQUEST, MODEL):
                if isinstance(item, ChatStreamChunk):
                    parts.append(item.content)
            return text, "".join(parts)

    return asyncio.run(main())


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not have_openssl():
        pytest.skip("no openssl CLI to make test certificates")
    ca = Certs(tmp_path_factory.mktemp("pki"))
    return {
        "ca": ca.ca,
        "server": ca.leaf("server", "DNS:localhost,IP:127.0.0.1"),
        "client": ca.leaf("client", "", client=True),
    }


@pytest.fixture(scope="module")
def nginx(
    tmp_path_factory: pytest.TempPathFactory, emulator: Emulator, pki: dict[str, Any]
) -> Iterator[dict[str, int]]:
    """nginx terminating TLS on one port, and TLS + required client certificate on another."""
    exe = binary("nginx")
    folder = tmp_path_factory.mktemp("nginx")
    tls_port, mtls_port = free_port(), free_port()
    cert, key = pki["server"]
    location = f"""
        location / {{
            proxy_pass {emulator.url};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}"""
    config = f"""
daemon off;
master_process off;
error_log {folder}/error.log;
pid {folder}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    server {{
        listen 127.0.0.1:{tls_port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        {location}
    }}
    server {{
        listen 127.0.0.1:{mtls_port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_client_certificate {pki["ca"]};
        ssl_verify_client on;
        {location}
    }}
}}
"""
    (folder / "nginx.conf").write_text(config)
    proc = start([exe, "-p", str(folder), "-c", str(folder / "nginx.conf")], tls_port, folder)
    try:
        yield {"tls": tls_port, "mtls": mtls_port}
    finally:
        stop(proc)


@pytest.mark.parametrize("mode", MODES)
def test_nginx_tls_termination_with_a_private_ca(
    mode: str, nginx: dict[str, int], pki: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki["ca"]))
    text, streamed = stream_and_chat(mode, f"https://localhost:{nginx['tls']}")
    assert text and streamed


@pytest.mark.parametrize("mode", MODES)
def test_nginx_mtls(
    mode: str, nginx: dict[str, int], pki: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from aleph_alpha_client import BadRequestError

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki["ca"]))
    host = f"https://localhost:{nginx['mtls']}"
    cert = tuple(str(p) for p in pki["client"])
    text, streamed = stream_and_chat(mode, host, cert=cert)
    assert text and streamed
    with pytest.raises(BadRequestError, match="certificate"):  # nginx answers 400 without one
        stream_and_chat(mode, host)


def http_proxy(kind: str, folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    if kind == "squid":
        exe = binary("squid")
        os.chmod(folder, 0o777)
        config = f"""
http_port 127.0.0.1:{port}
http_access allow all
cache deny all
pid_filename {folder}/squid.pid
cache_log {folder}/cache.log
access_log none
coredump_dir {folder}
shutdown_lifetime 0 seconds
"""
        (folder / "squid.conf").write_text(config)
        return start([exe, "-N", "-f", str(folder / "squid.conf")], port, folder), port
    exe = binary("tinyproxy")
    config = f"""
User nobody
Group nogroup
Port {port}
Listen 127.0.0.1
Timeout 60
Allow 127.0.0.1
LogLevel Error
"""
    (folder / "tinyproxy.conf").write_text(config)
    return start([exe, "-d", "-c", str(folder / "tinyproxy.conf")], port, folder), port


@pytest.mark.parametrize("kind", ["squid", "tinyproxy"])
@pytest.mark.parametrize("mode", MODES)
def test_http_proxies(
    kind: str,
    mode: str,
    emulator: Emulator,
    nginx: dict[str, int],
    pki: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """http:// through the proxy (absolute form), https:// through CONNECT to nginx."""
    proc, port = http_proxy(kind, tmp_path)
    try:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki["ca"]))
        before = len(emulator.requests)
        assert all(stream_and_chat(mode, emulator.url))
        assert all(stream_and_chat(mode, f"https://localhost:{nginx['tls']}"))
        assert len(emulator.requests) == before + 4
        monkeypatch.setenv("NO_PROXY", "127.0.0.0/8")
        stop(proc)  # the proxy is gone: a NO_PROXY host still works
        assert all(stream_and_chat(mode, emulator.url))
    finally:
        stop(proc)


def socks_server(kind: str, folder: Path, auth: bool) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    if kind == "microsocks":
        exe = binary("microsocks")
        args = [exe, "-i", "127.0.0.1", "-p", str(port)]
        if auth:
            args += ["-u", "alice", "-P", "s3cret"]
        return start(args, port, folder), port
    exe = binary("danted", "sockd")
    config = f"""
logoutput: stderr
internal: 127.0.0.1 port = {port}
external: 127.0.0.1
socksmethod: none
clientmethod: none
user.privileged: root
user.unprivileged: nobody
client pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}
socks pass {{ from: 0.0.0.0/0 to: 0.0.0.0/0 command: connect }}
"""
    (folder / "danted.conf").write_text(config)
    return start(
        [exe, "-f", str(folder / "danted.conf"), "-p", str(folder / "d.pid")], port, folder
    ), port


@pytest.mark.parametrize(
    ("kind", "scheme", "auth"),
    [
        ("microsocks", "socks5", False),
        ("microsocks", "socks5h", True),
        ("dante", "socks5", False),
        ("dante", "socks5h", False),
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_socks_servers(
    kind: str,
    scheme: str,
    auth: bool,
    mode: str,
    emulator: Emulator,
    nginx: dict[str, int],
    pki: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proc, port = socks_server(kind, tmp_path, auth)
    try:
        userinfo = "alice:s3cret@" if auth else ""
        monkeypatch.setenv("ALL_PROXY", f"{scheme}://{userinfo}127.0.0.1:{port}")
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki["ca"]))
        assert all(stream_and_chat(mode, emulator.url))
        assert all(stream_and_chat(mode, f"https://localhost:{nginx['tls']}"))
        stop(proc)
        # the SOCKS proxy is gone: the call fails, it does not go direct
        from aleph_alpha_client import APIConnectionError

        with pytest.raises(APIConnectionError):
            stream_and_chat(mode, emulator.url)
    finally:
        stop(proc)
