"""Start and stop the nginx that serves the canned answers (see fixtures.py).

nginx's static handler refuses POST with 405; ``error_page 405 =200 $uri``
turns that into an internal GET of the same file answered with status 200.
The request body is read and discarded first, so keep-alive connections stay
usable. gzip stays off (the default), so no client pays for decompression.
Event streams under /stream/ and /warm/ are sent chunked, about one HTTP chunk
per SSE event, like the real API; /stream-cl/ sends the same bytes as one
Content-Length body.

Usage: ``python server.py start [--cpu 0]`` prints the base URL,
``python server.py stop`` stops it. run.py uses `start`/`stop` directly.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from fixtures import write_fixtures

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"

CONFIG = """\
worker_processes 1;
{affinity}
daemon on;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 4096; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {work}/nginx-tmp/body;
    proxy_temp_path {work}/nginx-tmp/proxy;
    fastcgi_temp_path {work}/nginx-tmp/fastcgi;
    uwsgi_temp_path {work}/nginx-tmp/uwsgi;
    scgi_temp_path {work}/nginx-tmp/scgi;
    types {{ }}
    sendfile on;
    tcp_nopush off;
    tcp_nodelay on;
    etag off;
    keepalive_requests 10000000;
    keepalive_timeout 600s;
    client_max_body_size 16m;
    client_body_buffer_size 1m;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {www};
        # Chunked, one chunk per output buffer of about one event: the addition
        # filter (an empty add_after_body) drops Content-Length, sendfile off and
        # a single small output buffer make nginx read and send the file in
        # event-sized pieces, postpone_output 0 sends each piece at once.
        location ~ ^/(stream|warm)/ {{
            default_type text/event-stream;
            add_header Cache-Control no-cache;
            error_page 405 =200 $uri;
            add_after_body /empty;
            addition_types text/event-stream;
            sendfile off;
            output_buffers 1 {event_size};
            postpone_output 0;
        }}
        location /stream-cl/ {{
            default_type text/event-stream;
            add_header Cache-Control no-cache;
            error_page 405 =200 $uri;
        }}
        location = /empty {{
            default_type text/event-stream;
        }}
        location / {{
            default_type application/json;
            error_page 405 =200 $uri;
        }}
    }}
}}
"""


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def nginx_binary() -> str:
    """Path of nginx (PATH or /usr/sbin), or raise with the setup hint."""
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
    )
    if not found:
        raise SystemExit("nginx not found: run benchmarks/setup.sh first")
    return found


def _wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def start(stream_events: int = 20_000, cpu: int | None = None) -> str:
    """Write fixtures and config, start nginx, return the base URL."""
    stop()
    WORK.mkdir(exist_ok=True)
    www = WORK / "www"
    if www.exists():
        shutil.rmtree(www)
    sizes = write_fixtures(www, stream_events)
    (www / "empty").write_bytes(b"")
    event_size = sizes["stream/chat/completions"] // (stream_events + 1)
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (WORK / "nginx-tmp" / sub).mkdir(parents=True, exist_ok=True)
    port = free_port()
    affinity = ""
    if cpu is not None:
        affinity = "worker_cpu_affinity " + format(1 << cpu, "b") + ";"
    conf = WORK / "nginx.conf"
    conf.write_text(
        CONFIG.format(affinity=affinity, work=WORK, www=www, port=port, event_size=event_size),
        encoding="utf-8",
    )
    cmd = [nginx_binary(), "-p", str(WORK), "-e", str(WORK / "nginx-error.log"), "-c", str(conf)]
    if cpu is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(cpu), *cmd]
    subprocess.run(cmd, check=True)
    _wait_port(port)
    (WORK / "nginx.url").write_text(f"http://127.0.0.1:{port}/", encoding="utf-8")
    return f"http://127.0.0.1:{port}/"


def stop() -> None:
    """Stop the nginx started by `start` (found by its pid file), if running."""
    pid_file = WORK / "nginx.pid"
    if not pid_file.exists():
        return
    try:
        pid = int(pid_file.read_text().strip())
    except ValueError:
        pid_file.unlink(missing_ok=True)
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        cmdline = b""
    if b"nginx" not in cmdline or str(WORK).encode() not in cmdline:
        # gone, or the pid was reused by something that is not our nginx: leave it alone
        pid_file.unlink(missing_ok=True)
        return
    try:
        os.kill(pid, signal.SIGQUIT)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGTERM)
    pid_file.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="benchmark nginx control")
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("--stream-events", type=int, default=20_000)
    parser.add_argument("--cpu", type=int, default=None, help="pin nginx to this CPU")
    args = parser.parse_args()
    if args.action == "start":
        print(start(args.stream_events, args.cpu))
    else:
        stop()


if __name__ == "__main__":
    main()
