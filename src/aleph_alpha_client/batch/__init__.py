"""Batch jobs: many requests with adaptive concurrency, resume and OpenAI Batch API JSONL.

``for result in run_batch(client, items, output="out.jsonl", resume=True): ...``
"""

from ._format import BatchItem, BatchResult
from ._runner import AdaptiveLimit, BatchSummary, arun_batch, read_jsonl, run_batch

__all__ = [
    "AdaptiveLimit",
    "BatchItem",
    "BatchResult",
    "BatchSummary",
    "arun_batch",
    "read_jsonl",
    "run_batch",
]
