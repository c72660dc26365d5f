"""Batches over Dask (extra ``dask``): a bag of inputs in, a bag of output lines out.

    import dask.bag as db
    from aleph_alpha_client.batch.dask import run_bag

    lines = db.read_text("requests-*.jsonl").map(json.loads)
    run_bag(lines, Client(token), max_concurrency=64).map(json.dumps).to_textfiles("out-*.jsonl")

Each bag element is an OpenAI Batch API input line (a dict), a :class:`BatchItem` or a
``(custom_id, request)`` tuple. The client is pickled to the workers once per worker process
and reused. ``max_concurrency`` is the total over the cluster: each of the tasks that run at
once (the cluster's worker threads, or ``parallel_tasks``) gets an equal share. With a
distributed client, a cluster-wide semaphore lets only that many partitions run at once, so
the total holds even when the cluster grows after the graph was built (adaptive scaling).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from .._exceptions import MissingDependencyError
from ._cluster import ClientRef, per_task_concurrency, run_partition

__all__ = ["run_bag"]


def _cluster_threads() -> int:
    try:
        from distributed import get_client
    except ImportError:
        return 1
    try:
        client: Any = get_client()
    except ValueError:  # no distributed client: the local scheduler, one task per core
        import os

        return os.cpu_count() or 1
    return int(max(1, sum(client.nthreads().values())))


def _partition_lease(tasks: int) -> Any:
    """A cluster-wide semaphore of ``tasks`` leases (None without a distributed client)."""
    try:
        from distributed import Semaphore, get_client
    except ImportError:
        return None
    try:
        get_client()
    except ValueError:  # the local scheduler: its thread count is fixed, no lease needed
        return None
    name = f"aleph-alpha-batch-{uuid.uuid4().hex}"
    return Semaphore(max_leases=tasks, name=name)  # type: ignore[no-untyped-call]


def _run_leased(
    entries: Iterable[Any], ref: ClientRef, concurrency: int, model: str | None, lease: Any
) -> list[dict[str, Any]]:
    if lease is None:
        return run_partition(entries, ref, concurrency, model)
    with lease:  # at most `tasks` partitions run at once, however many threads the cluster has
        return run_partition(entries, ref, concurrency, model)


def run_bag(
    bag: Any,
    client: Any,
    *,
    max_concurrency: int = 16,
    parallel_tasks: int | None = None,
    model: str | None = None,
) -> Any:
    """A Dask bag of output lines (dicts in the OpenAI Batch API format), one per input."""
    try:
        import dask.bag  # noqa: F401
    except ImportError:
        raise MissingDependencyError("dask", "dask", "aleph_alpha_client.batch.dask") from None
    tasks = (
        parallel_tasks if parallel_tasks is not None else min(bag.npartitions, _cluster_threads())
    )
    per = per_task_concurrency(max_concurrency, tasks)
    ref = ClientRef(client)
    return bag.map_partitions(_run_leased, ref, per, model, _partition_lease(tasks))
