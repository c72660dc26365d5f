"""Batches over Dask (extra ``dask``): a bag or a dataframe of inputs in, output lines out.

    import dask.bag as db
    from aleph_alpha_client.batch.dask import run_bag, run_dataframe

    lines = db.read_text("requests-*.jsonl").map(json.loads)
    run_bag(lines, Client(token), max_concurrency=64).map(json.dumps).to_textfiles("out-*.jsonl")

    frame = dd.read_parquet("requests/")  # columns custom_id, method, url, body
    run_dataframe(frame, Client(token), max_concurrency=64).to_parquet("results/")

Each bag element is an OpenAI Batch API input line (a dict), a :class:`BatchItem` or a
``(custom_id, request)`` tuple; a dataframe has the columns of an input line (``body`` a dict,
a JSON string, or the ``str()`` of a dict that Dask makes of a dict column) and gives a dataframe with the columns ``custom_id``, ``ok`` and ``line``
(the output line as a JSON string), row for row and with the input's index. The client is pickled to the workers once per worker process
and reused. ``max_concurrency`` is the total over the cluster: each of the tasks that run at
once (the cluster's worker threads, or ``parallel_tasks``) gets an equal share. With a
distributed client, a cluster-wide semaphore lets only that many partitions run at once, so
the total holds even when the cluster grows after the graph was built (adaptive scaling).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from .._exceptions import InvalidArgumentError, MissingDependencyError
from ._cluster import (
    OUTPUT_COLUMNS,
    ClientRef,
    line_from_row,
    output_columns,
    per_task_concurrency,
    run_partition,
)

__all__ = ["run_bag", "run_dataframe"]


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
    return Semaphore(max_leases=tasks, name=name)  # type: ignore[no-untyped-call,unused-ignore]


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


def _frame(lines: Sequence[dict[str, Any]], index: Any = None) -> Any:
    """Output lines as a pandas DataFrame (no lines: the empty frame, Dask's ``meta``)."""
    import pandas as pd

    columns = output_columns(lines)
    dtypes = {"custom_id": "string", "ok": "bool", "line": "string"}
    return pd.DataFrame(
        {name: pd.Series(columns[name], dtype=dtypes[name], index=index) for name in OUTPUT_COLUMNS}
    )


def _run_frame(frame: Any, ref: ClientRef, concurrency: int, model: str | None, lease: Any) -> Any:
    rows = [line_from_row(row, python_bodies=True) for row in frame.to_dict("records")]
    lines = _run_leased(rows, ref, concurrency, model, lease)
    # back in input order, so that the output keeps the input's index (and divisions)
    positions: dict[Any, int] = {}
    for position, row in enumerate(rows):
        custom_id = row["custom_id"]
        if custom_id in positions:  # results are matched to rows by id
            raise InvalidArgumentError(f"custom_id: expected unique ids, got {custom_id!r} twice")
        positions[custom_id] = position
    ordered: list[Any] = [None] * len(rows)
    for line in lines:
        ordered[positions[line["custom_id"]]] = line
    return _frame(ordered, frame.index)


def run_dataframe(
    frame: Any,
    client: Any,
    *,
    max_concurrency: int = 16,
    parallel_tasks: int | None = None,
    model: str | None = None,
) -> Any:
    """A Dask dataframe of results (``custom_id``, ``ok``, ``line``), row for row with ``frame``.

    ``frame`` has the columns ``custom_id``, ``method``, ``url`` and ``body``; concurrency as
    in :func:`run_bag`, over the dataframe's partitions.
    """
    try:
        import dask.dataframe  # noqa: F401
    except ImportError:
        raise MissingDependencyError("dask", "dask", "aleph_alpha_client.batch.dask") from None
    tasks = (
        parallel_tasks if parallel_tasks is not None else min(frame.npartitions, _cluster_threads())
    )
    per = per_task_concurrency(max_concurrency, tasks)
    return frame.map_partitions(
        _run_frame, ClientRef(client), per, model, _partition_lease(tasks), meta=_frame([])
    )
