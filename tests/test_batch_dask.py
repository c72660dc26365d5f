"""Batches over Dask: a bag and a dataframe through a distributed.LocalCluster (started here)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aleph_alpha_client import Client
from aleph_alpha_client.emulator import Emulator
from counting_emulator import CountingEmulator

db = pytest.importorskip("dask.bag", reason="the dask extra is not installed")
distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")

from aleph_alpha_client.batch.dask import run_bag, run_dataframe  # noqa: E402


def line(i: int) -> dict[str, Any]:
    return {
        "custom_id": f"req-{i}",
        "method": "POST",
        "url": "/semantic_embed",
        "body": {"model": "luminous-base", "prompt": f"text {i}", "representation": "symmetric"},
    }


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as local,
        distributed.Client(local) as dask_client,
    ):
        yield dask_client


def test_bag_through_local_cluster(cluster: Any) -> None:
    with Emulator() as emu:
        client = Client("t", host=emu.url, total_retries=0)
        client.models()  # a used client (with pooled sockets) still pickles to the workers
        rows = [line(i) for i in range(40)] + [{"custom_id": "bad", "url": "/nope", "body": {}}]
        bag = db.from_sequence(rows, npartitions=4)
        out = run_bag(bag, client, max_concurrency=8).compute()
        client.close()
        routes = [r.route for r in emu.requests]
    assert sorted(o["custom_id"] for o in out) == sorted(r["custom_id"] for r in rows)
    by_id = {o["custom_id"]: o for o in out}
    assert by_id["req-7"]["response"]["status_code"] == 200 and by_id["req-7"]["error"] is None
    assert by_id["bad"]["error"]["code"] == "invalid_request"
    assert routes.count("semantic_embed") == 40
    json.dumps(out)  # the output lines are JSON data


def test_requests_in_flight_across_the_cluster_stay_within_max_concurrency(
    cluster: Any,
) -> None:
    # two worker processes run partitions at once; the server counts what is in flight
    with CountingEmulator(latency=0.05) as emu:
        client = Client("t", host=emu.url, total_retries=0)
        bag = db.from_sequence([line(i) for i in range(96)], npartitions=8)
        out = run_bag(bag, client, max_concurrency=6).compute()
        peak = emu.peak_in_flight
    assert len(out) == 96 and all(o["error"] is None for o in out)
    assert 1 < peak <= 6


def test_dataframe_partitions_through_local_cluster(cluster: Any, tmp_path: Path) -> None:
    dd = pytest.importorskip("dask.dataframe", reason="dask.dataframe needs pandas")
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow", reason="to_parquet needs pyarrow")
    rows = [line(i) for i in range(60)]
    # Half the bodies are JSON strings; the other half dicts, which Dask turns into their
    # str() (its default dataframe.convert-string), as dd.read_json(lines=True) does too.
    for row in rows[::2]:
        row["body"] = json.dumps(row["body"])
    rows.insert(7, {"custom_id": "bad", "method": "POST", "url": "/nope", "body": "{}"})
    frame = pd.DataFrame(rows, index=range(100, 100 + len(rows)))
    with CountingEmulator(latency=0.02) as emu:
        client = Client("t", host=emu.url, total_retries=0)
        out = run_dataframe(dd.from_pandas(frame, npartitions=4), client, max_concurrency=4)
        out.to_parquet(tmp_path / "results")  # the columns have types Arrow can store
        peak = emu.peak_in_flight
        routes = [r.route for r in emu.requests]
    result = pd.read_parquet(tmp_path / "results")
    assert list(result.columns) == ["custom_id", "ok", "line"]
    # row for row with the input, under its index
    assert list(result.index) == list(frame.index)
    assert list(result["custom_id"]) == list(frame["custom_id"])
    lines = {cid: json.loads(text) for cid, text in zip(result["custom_id"], result["line"])}
    assert lines["req-3"]["response"]["status_code"] == 200 and lines["req-4"]["error"] is None
    assert lines["bad"]["error"]["code"] == "invalid_request"
    assert int(result["ok"].sum()) == 60 and not result.loc[107, "ok"]
    assert routes.count("semantic_embed") == 60
    assert 1 < peak <= 4


def test_total_concurrency_is_split_across_tasks(cluster: Any) -> None:
    bag = db.from_sequence([line(0)], npartitions=1)
    with pytest.raises(ValueError, match="max_concurrency"):
        run_bag(bag, Client("t", host="http://127.0.0.1:1"), max_concurrency=1, parallel_tasks=2)


def test_per_task_share() -> None:
    from aleph_alpha_client.batch._cluster import per_task_concurrency

    assert per_task_concurrency(8, 2) == 4
    assert per_task_concurrency(9, 4) == 2  # the sum (8) stays within the maximum


def test_cap_holds_when_the_cluster_grows_after_the_graph_is_built(cluster: Any) -> None:
    # last in this file: it scales the shared cluster up and back down
    local = cluster.cluster
    with CountingEmulator(latency=0.05) as emu:
        client = Client("t", host=emu.url, total_retries=0)
        bag = db.from_sequence([line(i) for i in range(96)], npartitions=8)
        out = run_bag(bag, client, max_concurrency=4)  # built on 2 threads: 2 per partition
        local.scale(4)  # as an adaptive cluster would
        try:
            cluster.wait_for_workers(4)
            results = out.compute()
        finally:
            local.scale(2)
        peak = emu.peak_in_flight
    assert len(results) == 96 and all(o["error"] is None for o in results)
    assert 1 < peak <= 4


def test_entries_that_are_not_json_data_are_error_lines_not_a_crash() -> None:
    # a dataframe hands back values json cannot write (pd.NA, numpy arrays): our error lines
    from aleph_alpha_client import InvalidArgumentError
    from aleph_alpha_client.batch._cluster import ClientRef, run_partition

    odd = {**line(1), "body": {"model": "luminous-base", "prompt": object()}}
    with Emulator() as emu:
        client = Client("t", host=emu.url, total_retries=0)
        out = run_partition([line(0), odd], ClientRef(client), 2, None)
        with pytest.raises(InvalidArgumentError, match="not JSON data"):
            run_partition([{"custom_id": object()}], ClientRef(client), 2, None)
        client.close()
    by_id = {o["custom_id"]: o for o in out}
    assert by_id["req-0"]["error"] is None
    assert by_id["req-1"]["error"]["code"] == "invalid_request"
    assert "not JSON data" in by_id["req-1"]["error"]["message"]


def test_dataframe_ids_must_be_unique(cluster: Any) -> None:
    dd = pytest.importorskip("dask.dataframe", reason="dask.dataframe needs pandas")
    pd = pytest.importorskip("pandas")
    from aleph_alpha_client import InvalidArgumentError

    rows = [line(0), line(1), line(0)]
    for row in rows:
        row["body"] = json.dumps(row["body"])
    frame = dd.from_pandas(pd.DataFrame(rows), npartitions=1)
    with Emulator() as emu:
        client = Client("t", host=emu.url, total_retries=0)
        with pytest.raises(InvalidArgumentError, match="unique"):
            run_dataframe(frame, client, max_concurrency=2).compute()
