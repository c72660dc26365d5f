"""What the Ray and Dask integrations share: one client per worker, inputs in many shapes."""

from __future__ import annotations

import ast
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .._exceptions import InvalidArgumentError
from ._format import BatchItem, item_from_line
from ._runner import InvalidInput, _custom_id, run_batch

__all__ = [
    "INPUT_COLUMNS",
    "OUTPUT_COLUMNS",
    "ClientRef",
    "line_from_row",
    "output_columns",
    "per_task_concurrency",
    "run_partition",
]

#: The columns of a table of input lines (a Ray Dataset, a dataframe).
INPUT_COLUMNS = ("custom_id", "method", "url", "body")
#: The columns of a table of results: the id, whether it succeeded, the output line as JSON.
OUTPUT_COLUMNS = ("custom_id", "ok", "line")

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


def _python_literal(text: str | bytes) -> Any:
    """A dict written as a Python literal (``str(dict)``), else None."""
    try:
        value = ast.literal_eval(text.decode() if isinstance(text, bytes) else text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def line_from_row(row: Mapping[str, Any], *, python_bodies: bool = False) -> dict[str, Any]:
    """An input line from a table row: its input columns, a JSON-string ``body`` read as a dict.

    With ``python_bodies``, a ``body`` written as a Python dict literal is read too: Dask turns
    a column of dicts into such strings (``str(dict)``, its default ``dataframe.convert-string``),
    e.g. in ``dd.read_json(..., lines=True)``. A ``body`` that is none of these is kept as it
    is: the item is then answered with an ``invalid_request`` error line under its id.
    """
    line = {name: row[name] for name in INPUT_COLUMNS if name in row}
    body = line.get("body")
    if isinstance(body, (str, bytes)):
        try:
            line["body"] = json.loads(body)
        except ValueError:
            literal = _python_literal(body) if python_bodies else None
            if literal is not None:
                line["body"] = literal
    elif body is not None and not isinstance(body, dict):
        try:  # a mapping the table gave back (e.g. from a struct column)
            line["body"] = dict(body)
        except (TypeError, ValueError):
            pass
    return line


def output_columns(lines: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Output lines as the columns of :data:`OUTPUT_COLUMNS`."""
    return {
        "custom_id": [line["custom_id"] for line in lines],
        "ok": [line["error"] is None for line in lines],
        "line": [json.dumps(line, separators=(",", ":")) for line in lines],
    }


def _item(entry: Any, number: int) -> Any:
    if isinstance(entry, Mapping):  # an OpenAI Batch API input line as a dict
        try:
            line = json.dumps(dict(entry))
        except (TypeError, ValueError) as err:  # e.g. pd.NA or a numpy array from a dataframe
            message = f"line {number}: the input is not JSON data ({err})"
            custom_id = entry.get("custom_id")
            if isinstance(custom_id, str):
                return BatchItem(custom_id, InvalidInput(message))
            raise InvalidArgumentError(message) from None
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
