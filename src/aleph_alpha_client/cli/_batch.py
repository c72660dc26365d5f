"""The ``batch`` command: an OpenAI Batch API JSONL file through the batch runner."""

from __future__ import annotations

import os
import time

from ._app import EXIT_API, EXIT_OK, App, UsageError

__all__ = ["run_batch_command"]


def _tqdm_available() -> bool:
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


def run_batch_command(app: App) -> int:
    """The ``batch`` command."""
    from ..batch import BatchSummary, read_jsonl, run_batch

    args = app.args
    if not os.path.isfile(args.input):
        raise UsageError(f"INPUT: {args.input!r} is not a readable file")
    if not args.resume and os.path.exists(args.output) and os.path.getsize(args.output):
        raise UsageError(
            f"--output: {args.output!r} exists and is not empty (add --resume to continue it)"
        )
    summary = BatchSummary()
    use_bar = not args.no_progress and _tqdm_available()
    last = 0.0
    with app.client() as client:
        results = run_batch(
            client,
            read_jsonl(args.input),
            output=args.output,
            resume=args.resume,
            concurrency=args.concurrency,
            max_concurrency=args.max_concurrency or args.concurrency,
            rps=args.rps,
            model=args.model,
            summary=summary,
            progress=use_bar,
        )
        try:
            for _ in results:
                now = time.monotonic()
                if not use_bar and not args.no_progress and now - last >= 2.0:
                    last = now
                    app.info(
                        f"{summary.items} done ({summary.failed} failed), "
                        f"concurrency {summary.concurrency}"
                    )
        except KeyboardInterrupt:
            results.close()
            app.info(f"interrupted after {summary.items} items; {summary}")
            app.info("run the same command with --resume to continue")
            raise
    app.info(f"done: {summary}")
    return EXIT_OK if summary.failed == 0 else EXIT_API
