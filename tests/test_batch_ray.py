"""Batches over Ray Data: a dataset through a local Ray instance (started and stopped here)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from aleph_alpha_client import Client
from aleph_alpha_client.emulator import Emulator
from counting_emulator import CountingEmulator

ray = pytest.importorskip("ray", reason="the ray extra is not installed")
pytest.importorskip("ray.data", reason="the ray extra is not installed")

from aleph_alpha_client.batch.ray import run_dataset  # noqa: E402

# Ray warns about its own deprecated settings; that is not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # no token file written to ~/.ray
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def row(i: int) -> dict[str, Any]:
    return {
        "custom_id": f"req-{i}",
        "method": "POST",
        "url": "/semantic_embed",
        "body": json.dumps(
            {"model": "luminous-base", "prompt": f"text {i}", "representation": "symmetric"}
        ),
    }


def test_dataset_through_local_ray(local_ray: None) -> None:
    rows = [row(i) for i in range(30)]
    rows.append({"custom_id": "bad", "method": "POST", "url": "/nope", "body": "{}"})
    with Emulator() as emu:
        client = Client("t", host=emu.url, total_retries=0)
        client.models()  # a used client still pickles to the actors
        ds = ray.data.from_items(rows)
        out = run_dataset(ds, client, max_concurrency=4, actors=2, batch_size=8).take_all()
        client.close()
        routes = [r.route for r in emu.requests]
    assert sorted(r["custom_id"] for r in out) == sorted(r["custom_id"] for r in rows)
    lines = {r["custom_id"]: json.loads(r["line"]) for r in out}
    assert lines["req-3"]["response"]["status_code"] == 200
    assert lines["bad"]["error"]["code"] == "invalid_request"
    assert sum(1 for r in out if r["ok"]) == 30
    assert routes.count("semantic_embed") == 30


def test_requests_in_flight_across_the_cluster_stay_within_max_concurrency(
    local_ray: None,
) -> None:
    # two actors run batches at once; the server counts what is in flight
    with CountingEmulator(latency=0.05) as emu:
        client = Client("t", host=emu.url, total_retries=0)
        ds = ray.data.from_items([row(i) for i in range(96)], override_num_blocks=8)
        out = run_dataset(ds, client, max_concurrency=6, actors=2, batch_size=12).take_all()
        peak = emu.peak_in_flight
    assert len(out) == 96 and all(r["ok"] for r in out)
    assert 1 < peak <= 6
