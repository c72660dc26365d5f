"""The emulator's HTTP/1.1 server: framing, keep-alive, concurrency, lifecycle, fixtures, CLI."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable

import pytest

from aleph_alpha_client.emulator import Emulator, Fault
from conftest import default_sigint
from test_emulator_helpers import Http, chat_body


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def raw_request(body: bytes, path: str = "/chat/completions", extra: str = "") -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


def test_stream_wire_framing_is_one_event_per_chunk(aleph_alpha_emulator: Emulator) -> None:
    body = json.dumps(chat_body("frame me", stream=True)).encode()
    with socket.create_connection(("127.0.0.1", aleph_alpha_emulator.port), timeout=10) as sock:
        sock.sendall(raw_request(body))
        data = read_until(sock, b"\r\n0\r\n\r\n")
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 200 OK"
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
    assert headers["transfer-encoding"] == "chunked"
    assert headers["content-type"] == "text/event-stream"
    assert "content-length" not in headers
    events = []
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            assert rest == b"\r\n"
            break
        chunk, rest = rest[:size], rest[size:]
        assert rest.startswith(b"\r\n")
        rest = rest[2:]
        assert chunk.startswith(b"data: ") and chunk.endswith(b"\n\n")
        assert chunk.count(b"\n") == 2
        events.append(chunk[6:-2])
    assert events[-1] == b"[DONE]"
    assert all(json.loads(e) for e in events[:-1])


def test_json_has_content_length(aleph_alpha_emulator: Emulator) -> None:
    body = json.dumps(chat_body("len")).encode()
    with socket.create_connection(("127.0.0.1", aleph_alpha_emulator.port), timeout=10) as sock:
        sock.sendall(raw_request(body, extra="Connection: close\r\n"))
        data = read_until(sock, b"\x00never")
    head, _, payload = data.partition(b"\r\n\r\n")
    headers = {
        k.lower(): v for k, v in (line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
    }
    assert int(headers["content-length"]) == len(payload)
    assert headers["connection"] == "close"
    assert "transfer-encoding" not in headers
    json.loads(payload)


def test_keep_alive_reuses_one_connection(aleph_alpha_emulator: Emulator) -> None:
    conn = Http(aleph_alpha_emulator)
    try:
        assert conn.post("/chat/completions", chat_body("one")).status == 200
        sock = conn.conn.sock
        assert sock is not None
        assert conn.post("/chat/completions", chat_body("two", stream=True)).status == 200
        assert conn.get("/version").status == 200
        assert conn.post("/v1/complete", {"prompt": "x", "model": "luminous-base"}).status == 200
        assert conn.conn.sock is sock
    finally:
        conn.close()


def test_pipelined_requests_on_raw_socket(aleph_alpha_emulator: Emulator) -> None:
    first = raw_request(json.dumps(chat_body("alpha")).encode())
    second = raw_request(json.dumps(chat_body("beta")).encode(), extra="Connection: close\r\n")
    with socket.create_connection(("127.0.0.1", aleph_alpha_emulator.port), timeout=10) as sock:
        sock.sendall(first + second)
        data = read_until(sock, b"\x00never")
    assert data.count(b"HTTP/1.1 200 OK") == 2
    assert data.index(b"alpha") < data.index(b"beta")


def test_http_1_0_closes_after_response(aleph_alpha_emulator: Emulator) -> None:
    with socket.create_connection(("127.0.0.1", aleph_alpha_emulator.port), timeout=10) as sock:
        sock.sendall(b"GET /version HTTP/1.0\r\n\r\n")
        data = read_until(sock, b"\x00never")  # returns on EOF: the server closed
    assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"1.19.0")


def test_chunked_request_body_and_expect_continue(aleph_alpha_emulator: Emulator) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", aleph_alpha_emulator.port, timeout=10)
    try:
        parts = [
            b'{"model": "llama-3.1-8b-instruct", ',
            b'"messages": [{"role": "user", ',
            b'"content": "chunky"}]}',
        ]
        conn.request("POST", "/chat/completions", body=iter(parts), encode_chunked=True)
        response = conn.getresponse()
        assert response.status == 200
        assert "chunky" in json.loads(response.read())["choices"][0]["message"]["content"]
    finally:
        conn.close()
    body = json.dumps(chat_body("patient")).encode()
    with socket.create_connection(("127.0.0.1", aleph_alpha_emulator.port), timeout=10) as sock:
        sock.sendall(
            raw_request(b"", extra="Expect: 100-continue\r\n").replace(
                b"Content-Length: 0", f"Content-Length: {len(body)}".encode()
            )
        )
        interim = read_until(sock, b"\r\n\r\n")
        assert interim.startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body)
        data = read_until(sock, b"emulator.")
    assert b"HTTP/1.1 200 OK" in data and b"patient" in data


def test_bad_request_line_gets_400(aleph_alpha_emulator: Emulator) -> None:
    with socket.create_connection(("127.0.0.1", aleph_alpha_emulator.port), timeout=10) as sock:
        sock.sendall(b"NONSENSE\r\n\r\n")
        data = read_until(sock, b"\x00never")
    assert data.startswith(b"HTTP/1.1 400 Bad Request")
    assert b"BAD_HTTP_REQUEST" in data


def test_request_log(aleph_alpha_emulator: Emulator) -> None:
    conn = Http(aleph_alpha_emulator, token="tkn")
    try:
        conn.post("/v1/chat/completions?nice=true", chat_body("logged"), headers={"X-Custom": "1"})
        conn.get("/version")
    finally:
        conn.close()
    first, second = aleph_alpha_emulator.requests
    assert first.method == "POST"
    assert first.path == "/v1/chat/completions"
    assert first.route == "chat/completions"
    assert first.versioned is True
    assert first.query == {"nice": "true"}
    assert first.headers["authorization"] == "Bearer tkn"
    assert first.headers["X-CUSTOM"] == "1"
    assert ("X-Custom", "1") in first.headers.raw
    assert first.json == chat_body("logged")
    assert json.loads(first.body) == first.json
    assert second.method == "GET" and second.json is None and second.versioned is False
    assert aleph_alpha_emulator.last_request == second
    aleph_alpha_emulator.clear()
    assert aleph_alpha_emulator.requests == []


def test_concurrent_clients_each_get_their_own_answer(aleph_alpha_emulator: Emulator) -> None:
    failures: list[str] = []

    def worker(worker_id: int) -> None:
        conn = Http(aleph_alpha_emulator)
        try:
            for i in range(20):
                text = f"worker {worker_id} request {i}"
                stream = i % 3 == 0
                reply = conn.post("/chat/completions", chat_body(text, stream=stream))
                if stream:
                    chunks = reply.json_events()
                    content = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
                else:
                    content = reply.json()["choices"][0]["message"]["content"]
                if text not in content:
                    failures.append(f"{text!r} -> {content!r}")
        except Exception as err:
            failures.append(repr(err))
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(aleph_alpha_emulator.requests) == 2000


async def test_usable_from_async_code(aleph_alpha_emulator: Emulator) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", aleph_alpha_emulator.port)
    try:
        writer.write(b"GET /v1/version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await writer.drain()
        data = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"1.19.0")


def test_stop_closes_everything_and_refuses_connections() -> None:
    emu = Emulator().start()
    port = emu.port
    idle = Http(emu)
    assert idle.get("/version").status == 200
    emu.script([Fault.stream_latency(30)])
    slow = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    slow.request("POST", "/chat/completions", body=json.dumps(chat_body("x", stream=True)))
    response = slow.getresponse()
    assert response.read1().startswith(b"data: ")
    emu.stop()
    emu.stop()  # idempotent
    assert not emu.running
    with pytest.raises((ConnectionError, http.client.IncompleteRead)):
        response.read()
    slow.close()
    idle.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    with pytest.raises(RuntimeError):
        _ = emu.url


def test_restart_and_fixed_port() -> None:
    with Emulator() as emu:
        port = emu.port
        assert repr(emu) == f"<Emulator http://127.0.0.1:{port}>"
    with Emulator(port=port) as again:
        assert again.url == f"http://127.0.0.1:{port}"
        with pytest.raises(OSError):
            Emulator(port=port).start()


def test_factory_and_session_fixtures(
    aleph_alpha_emulator_factory: Callable[..., Emulator],
    aleph_alpha_emulator_session: Emulator,
) -> None:
    secured = aleph_alpha_emulator_factory(token="abc")
    assert secured.token == "abc" and secured.running
    conn = Http(aleph_alpha_emulator_session)
    try:
        assert conn.get("/version").status == 200
    finally:
        conn.close()


@pytest.mark.aleph_alpha_emulator(faults="503")
def test_marker_configures_fixture(aleph_alpha_emulator: Emulator) -> None:
    conn = Http(aleph_alpha_emulator)
    try:
        assert conn.get("/version").status == 503
    finally:
        conn.close()


def test_run_server_serves_until_interrupted(tmp_path: object) -> None:
    code = (
        "from aleph_alpha_client.emulator import run_server\n"
        "run_server('127.0.0.1', 0, token='t', faults='latency=0')\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
        preexec_fn=default_sigint,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        if not line.startswith("Aleph Alpha emulator listening on http://127.0.0.1:"):
            pytest.fail(line + proc.stderr.read())
        port = int(line.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/models_available", headers={"Authorization": "Bearer t"})
        assert conn.getresponse().status == 200
        conn.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        rest = proc.stderr.read()
        assert "stopped" in rest and "Traceback" not in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def test_module_entry_point_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aleph_alpha_client.emulator",
            "--port",
            "0",
            "--api-version",
            "1.20.0",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        if "listening" not in line:
            pytest.fail(line + proc.stderr.read())
        port = int(line.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/version")
        assert conn.getresponse().read() == b"1.20.0"
        conn.close()
        proc.terminate()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
