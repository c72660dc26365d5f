"""What the Ray and Dask integrations share: one client per worker, inputs in many shapes."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from .._exceptions import InvalidArgumentError
from ._format import BatchItem, item_from_line
from ._runner import InvalidInput, _custom_id, run_batch

__all__ = ["ClientRef", "per_task_concurrency", "run_partition"]

#: Clients unpickled on this worker process, by the key of their :class:`ClientRef`.
_WORKER_CLIENTS: dict[str, Any] = {}


class ClientRef:
    """A client shipped to workers by pickling; each worker process keeps one and reuses it."""

    def __init__(self, client: Any) -> None:
        if not hasattr(client, "with_options") or not hasattr(client, "semantic_embed"):
            raise InvalidArgumentError(f"client: expected a Client, got {type(client).__name__}")
        self.key = uuid.uuid4().hex
        self.client = client

    def get(self) -> Any:
        """This worker's client (the first one unpickled here for this key)."""
        return _WORKER_CLIENTS.setdefault(self.key, self.client)


def per_task_concurrency(max_concurrency: int, parallel_tasks: int) -> int:
    """Concurrency of each of ``parallel_tasks`` tasks so that their sum stays within the maximum."""
    if (
        isinstance(max_concurrency, bool)
        or not isinstance(max_concurrency, int)
        or max_concurrency < 1
    ):
        raise InvalidArgumentError(
            f"max_concurrency: expected an int >= 1, got {max_concurrency!r}"
        )
    if parallel_tasks > max_concurrency:
        raise InvalidArgumentError(
            f"max_concurrency: {max_concurrency} is below the {parallel_tasks} tasks that run at "
            "once; raise it or run fewer tasks in parallel"
        )
    return max(1, max_concurrency // max(1, parallel_tasks))


def _item(entry: Any, number: int) -> Any:
    if isinstance(entry, Mapping):  # an OpenAI Batch API input line as a dict
        import json

        line = json.dumps(dict(entry))
        try:
            return item_from_line(line, number)
        except InvalidArgumentError as err:
            custom_id = _custom_id(line.encode())
            if custom_id is None:
                raise
            return BatchItem(custom_id, InvalidInput(str(err)))
    return entry


def run_partition(
    entries: Iterable[Any], ref: ClientRef, concurrency: int, model: str | None
) -> list[dict[str, Any]]:
    """Run one partition with this worker's client; the output lines as dicts."""
    items = (_item(entry, number) for number, entry in enumerate(entries, 1))
    return [
        result.to_json()
        for result in run_batch(ref.get(), items, concurrency=concurrency, model=model)
    ]
