"""The official client 11.5.1, pointed at `aleph-alpha serve`, parses every answer.

Needs an interpreter with ``aleph-alpha-client==11.5.1`` installed (its own venv: the import
name is the same as ours). ``.ci/run`` makes one and sets ``AA_OFFICIAL_PYTHON``; without it
the test is skipped.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

OFFICIAL = os.environ.get("AA_OFFICIAL_PYTHON")
SCRIPT = Path(__file__).parent / "official" / "drive_official_client.py"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.skipif(
    not OFFICIAL, reason="set AA_OFFICIAL_PYTHON to a python with aleph-alpha-client==11.5.1"
)
def test_official_client_parses_every_emulator_answer(tmp_path: Path) -> None:
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "aleph_alpha_client", "serve", "--port", str(port)],
        stdout=log,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        result = subprocess.run(
            [str(OFFICIAL), str(SCRIPT), f"http://127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env=env,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "ALL OK" in result.stdout
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()
