"""``aleph-alpha batch`` and its exit statuses, resume and Ctrl-C; in process and as a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aleph_alpha_client.cli import main
from aleph_alpha_client.emulator import Emulator
from conftest import default_sigint


def request_line(i: int, model: str = "luminous-base") -> dict[str, Any]:
    return {
        "custom_id": f"req-{i}",
        "method": "POST",
        "url": "/semantic_embed",
        "body": {"model": model, "prompt": f"text {i}", "representation": "symmetric"},
    }


def write_input(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def output_ids(path: Path) -> list[str]:
    return [json.loads(line)["custom_id"] for line in path.read_text().splitlines()]


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


def test_batch_all_ok_exits_0(
    capsys: pytest.CaptureFixture[str], emu: Emulator, tmp_path: Path
) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_input(src, [request_line(i) for i in range(12)])
    code = main(["--host", emu.url, "--token", "t", "batch", str(src), "-o", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out == ""
    assert "12 items (12 ok, 0 failed" in captured.err
    assert sorted(output_ids(out)) == sorted(f"req-{i}" for i in range(12))


def test_batch_some_failed_exits_1_and_resume_skips_done(
    capsys: pytest.CaptureFixture[str], emu: Emulator, tmp_path: Path
) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    rows = [request_line(i) for i in range(4)] + [request_line(9, model="nope")]
    write_input(src, rows)
    argv = ["--host", emu.url, "--token", "t", "--retries", "0", "batch", str(src), "-o", str(out)]
    assert main(argv) == 1
    assert "1 failed" in capsys.readouterr().err
    assert main(argv) == 2  # the output exists: --resume is needed
    assert "--resume" in capsys.readouterr().err
    write_input(src, [*rows, request_line(5)])
    before = len(emu.requests)
    assert main([*argv, "--resume"]) == 0
    assert len(emu.requests) == before + 1  # only the new line was sent
    assert sorted(output_ids(out)) == sorted(["req-0", "req-1", "req-2", "req-3", "req-9", "req-5"])


def test_batch_missing_input_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(["--emulator", "batch", str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "o")])
    assert code == 2
    assert "INPUT" in capsys.readouterr().err


def test_batch_ctrl_c_stops_cleanly_and_resumes(tmp_path: Path) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_input(src, [request_line(i) for i in range(300)])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALEPH", "AA_"))}
    with Emulator(latency=0.02) as emu:
        argv = [sys.executable, "-m", "aleph_alpha_client", "--host", emu.url, "--token", "t"]
        argv += ["batch", str(src), "-o", str(out), "--concurrency", "4", "--no-progress"]
        proc = subprocess.Popen(
            argv, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=default_sigint
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and (
                not out.exists() or out.read_bytes().count(b"\n") < 20
            ):
                time.sleep(0.01)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 130, err
        assert "Traceback" not in err and "--resume" in err
        raw = out.read_bytes()
        assert raw.endswith(b"\n")
        assert 20 <= raw.count(b"\n") < 300
        resumed = subprocess.run([*argv, "--resume"], capture_output=True, text=True, env=env)
        assert resumed.returncode == 0, resumed.stderr
    ids = output_ids(out)
    assert sorted(ids) == sorted(f"req-{i}" for i in range(300))
