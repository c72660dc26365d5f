"""Batches over Ray Data (extra ``ray``): ``map_batches`` with one reusable client per actor.

    import ray
    from aleph_alpha_client.batch.ray import run_dataset

    ds = ray.data.read_json("requests.jsonl")  # OpenAI Batch API input lines
    out = run_dataset(ds, Client(token), max_concurrency=64, actors=4)
    out.write_json("results/")

The result has the columns ``custom_id``, ``ok`` and ``line`` (the OpenAI Batch API output line
as a JSON string). ``max_concurrency`` is the total over the cluster: each of the ``actors``
runs its batches with ``max_concurrency // actors`` requests in flight.
"""

from __future__ import annotations

from typing import Any

from .._exceptions import MissingDependencyError
from ._cluster import (
    INPUT_COLUMNS,
    ClientRef,
    line_from_row,
    output_columns,
    per_task_concurrency,
    run_partition,
)

__all__ = ["run_dataset"]


class _Runner:
    """A Ray Data actor: keeps its client (and its connections) across batches."""

    def __init__(self, ref: ClientRef, concurrency: int, model: str | None) -> None:
        self.ref = ref
        self.concurrency = concurrency
        self.model = model

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        size = len(batch["custom_id"])
        columns = [name for name in INPUT_COLUMNS if name in batch]
        rows = [line_from_row({name: batch[name][i] for name in columns}) for i in range(size)]
        return output_columns(run_partition(rows, self.ref, self.concurrency, self.model))


def run_dataset(
    dataset: Any,
    client: Any,
    *,
    max_concurrency: int = 16,
    actors: int = 2,
    batch_size: int = 256,
    model: str | None = None,
) -> Any:
    """A Ray Dataset with one output row per input row (see the module docs for the columns)."""
    try:
        import ray.data  # noqa: F401
    except ImportError:
        raise MissingDependencyError("ray", "ray", "aleph_alpha_client.batch.ray") from None
    per = per_task_concurrency(max_concurrency, actors)
    return dataset.map_batches(
        _Runner,
        fn_constructor_args=(ClientRef(client), per, model),
        concurrency=actors,
        batch_size=batch_size,
        batch_format="numpy",
    )
