"""Batches over Ray Data: a dataset through a local Ray instance (started and stopped here)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from aleph_alpha_client import Client
from aleph_alpha_client.emulator import Emulator

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


def test_dataset_through_local_ray(local_ray: None) -> None:
    rows: list[dict[str, Any]] = [
        {
            "custom_id": f"req-{i}",
            "method": "POST",
            "url": "/semantic_embed",
            "body": json.dumps(
                {"model": "luminous-base", "prompt": f"text {i}", "representation": "symmetric"}
            ),
        }
        for i in range(30)
    ]
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
