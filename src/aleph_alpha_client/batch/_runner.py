"""The batch runner: an async core with adaptive concurrency, resume and JSONL output."""

from __future__ import annotations

import asyncio
import collections
import inspect
import json
import math
import os
import queue as _queue
import random
import sys
import threading
import time
from collections.abc import AsyncIterator, Generator, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .._exceptions import (
    AlephAlphaError,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    InvalidArgumentError,
    MissingDependencyError,
)
from .._retry import parse_retry_after
from ._format import ENDPOINTS, BatchItem, BatchResult, item_from_line, url_for

__all__ = ["AdaptiveLimit", "BatchSummary", "arun_batch", "read_jsonl", "run_batch"]

_RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
_OVERLOAD_STATUSES = frozenset({429, 503})
#: The sliding window of ``tokens_per_minute``, in seconds.
_TOKEN_WINDOW = 60.0


class AdaptiveLimit:
    """AIMD concurrency: +1 per window of successes, halved on overload, within [1, maximum]."""

    def __init__(self, start: int, maximum: int) -> None:
        self.maximum = maximum
        self.value = float(min(start, maximum))
        self.paused_until = 0.0
        self._last_cut = 0.0

    @property
    def current(self) -> int:
        """The number of requests that may be in flight now."""
        return max(1, int(self.value))

    def success(self) -> None:
        """An answer came back fine: grow additively."""
        self.value = min(float(self.maximum), self.value + 1.0 / max(1.0, self.value))

    def overload(self, retry_after: float | None, now: float) -> None:
        """A 429 / 503: halve (at most once per pause window) and pause for ``retry_after``."""
        if now >= self._last_cut:
            self.value = max(1.0, self.value / 2.0)
            self._last_cut = now + (retry_after or 0.5)
        if retry_after:
            self.paused_until = max(self.paused_until, now + retry_after)


@dataclass
class BatchSummary:
    """What a batch did: items, failures by kind, tokens, wall time."""

    items: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    retries: int = 0
    tokens: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    concurrency: int = 0
    lowest_concurrency: int = 0

    def __str__(self) -> str:
        kinds = ", ".join(f"{k}: {v}" for k, v in sorted(self.failures.items())) or "none"
        return (
            f"{self.items} items ({self.succeeded} ok, {self.failed} failed, {self.skipped} "
            f"already done), failures by kind: {kinds}; {self.retries} retries, "
            f"{self.tokens} tokens, {self.seconds:.1f} s"
        )


def read_jsonl(path: str | os.PathLike[str]) -> Iterator[BatchItem]:
    """Lazily read an OpenAI Batch API input file as :class:`BatchItem` objects."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    yield item_from_line(line, number)
                except InvalidArgumentError as err:
                    custom_id = _custom_id(line)
                    if custom_id is None:
                        raise
                    yield BatchItem(custom_id, InvalidInput(str(err)))


class InvalidInput:
    """An input line that could not be read: answered with an ``invalid_request`` error line."""

    def __init__(self, message: str) -> None:
        self.message = message


def _custom_id(line: bytes) -> str | None:
    try:
        value = json.loads(line).get("custom_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and value else None


def _done_ids(path: str | os.PathLike[str]) -> set[str]:
    """The ids already answered in an output file; a torn last line is cut off."""
    done: set[str] = set()
    try:
        handle = open(path, "r+b")
    except FileNotFoundError:
        return done
    with handle:
        good = 0
        for line in handle:
            if not line.endswith(b"\n"):
                break
            try:
                done.add(json.loads(line)["custom_id"])
            except (ValueError, KeyError, TypeError):
                break
            good += len(line)
        handle.truncate(good)
    return done


def _coerce(entry: Any, model: str | None) -> BatchItem:
    if isinstance(entry, BatchItem):
        item = entry
    elif isinstance(entry, tuple) and len(entry) in (2, 3):
        item = BatchItem(*entry)
    else:
        raise InvalidArgumentError(
            f"inputs: expected BatchItem or (custom_id, request[, model]) tuples, got {entry!r}"
        )
    if item.model is None and model is not None:
        item = BatchItem(item.custom_id, item.request, model)
    return item


def _tokens(response: Any) -> int:
    usage = getattr(response, "usage", None)
    total = getattr(usage, "total_tokens", None)
    if isinstance(total, int):
        return total
    count = 0
    for name in ("num_tokens_prompt_total", "num_tokens_generated"):
        value = getattr(response, name, None)
        if isinstance(value, int):
            count += value
    return count


def _error(kind: str, err: BaseException) -> dict[str, Any]:
    return {"code": kind, "message": str(err)}


class _Reservation:
    """The tokens an item holds in the ``tokens_per_minute`` window from its start."""

    __slots__ = ("in_window", "probe", "started", "tokens", "url")

    def __init__(self, started: float, tokens: float, url: str, probe: bool) -> None:
        self.started = started
        self.tokens = tokens
        self.url = url
        self.probe = probe
        self.in_window = True


class _TokenCeiling:
    """``tokens_per_minute``: the tokens of the items started in the last window stay within it.

    An item reserves an estimate when it starts (the mean of the answers so far to its
    endpoint), which its answer's usage then replaces. Until an endpoint has answered once,
    one item at a time probes it. So what is in flight counts, not only what has answered.
    """

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.log: collections.deque[_Reservation] = collections.deque()
        self.total = 0.0
        self.answers: dict[str, tuple[int, int]] = {}  # url -> (answers, tokens)
        self.probing: set[str] = set()

    def _expire(self, now: float) -> None:
        while self.log and self.log[0].started <= now - _TOKEN_WINDOW:
            entry = self.log.popleft()
            entry.in_window = False
            self.total -= entry.tokens

    def _estimate(self, url: str) -> float | None:
        answers, tokens = self.answers.get(url, (0, 0))
        return tokens / answers if answers else None

    def wait(self, url: str, now: float) -> float:
        """Seconds until an item of ``url`` may start (inf: after the next answer)."""
        estimate = self._estimate(url)
        if estimate is None and url in self.probing:
            return math.inf
        self._expire(now)
        if self.log and self.total + (1.0 if estimate is None else estimate) > self.limit:
            return self.log[0].started + _TOKEN_WINDOW - now
        return 0.0

    def reserve(self, url: str, now: float) -> _Reservation:
        estimate = self._estimate(url)
        entry = _Reservation(now, estimate or 0.0, url, estimate is None)
        if entry.probe:
            self.probing.add(url)
        self.log.append(entry)
        self.total += entry.tokens
        return entry

    def settle(self, entry: _Reservation, tokens: int | None) -> None:
        """The item ended: ``tokens`` used (None: it failed, it used none)."""
        if entry.probe:
            self.probing.discard(entry.url)
        used = float(tokens or 0)
        if entry.in_window:
            self.total += used - entry.tokens
        entry.tokens = used
        if tokens is not None:
            answers, total = self.answers.get(entry.url, (0, 0))
            self.answers[entry.url] = (answers + 1, total + tokens)


class _Job:
    def __init__(
        self,
        client: Any,
        *,
        concurrency: int,
        max_concurrency: int | None,
        rps: float | None,
        tokens_per_minute: int | None,
        model: str | None,
    ) -> None:
        for name, value in (("concurrency", concurrency), ("max_concurrency", max_concurrency)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise InvalidArgumentError(f"{name}: expected an int >= 1, got {value!r}")
        for name, rate in (("rps", rps), ("tokens_per_minute", tokens_per_minute)):
            if rate is not None and (not isinstance(rate, (int, float)) or not rate > 0):
                raise InvalidArgumentError(f"{name}: expected a number > 0, got {rate!r}")
        self.limit = AdaptiveLimit(concurrency, max_concurrency or concurrency)
        self.rps = rps
        self.tokens = _TokenCeiling(tokens_per_minute) if tokens_per_minute is not None else None
        self.model = model
        self.budget = client.max_retries
        self.client = client.with_options(max_retries=0)
        self.is_async = inspect.iscoroutinefunction(self.client.complete)
        self.executor: ThreadPoolExecutor | None = None
        self.next_start = 0.0

    async def _call(self, method: str, item: BatchItem) -> Any:
        bound = getattr(self.client, method)
        model = item.model
        if model is None:
            model = getattr(item.request, "model", None)
        if model is None:
            raise InvalidArgumentError(
                f"model: item {item.custom_id!r} names no model (pass model=)"
            )
        if self.is_async:
            return await bound(item.request, model=model)
        if self.executor is None:
            self.executor = ThreadPoolExecutor(self.limit.maximum, "aleph-alpha-batch")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, lambda: bound(item.request, model=model))

    async def run_item(self, item: BatchItem, reservation: _Reservation | None) -> BatchResult:
        used: int | None = None
        try:
            result = await self._run_item(item)
            if result.ok:
                used = result.tokens
            return result
        finally:
            if reservation is not None and self.tokens is not None:
                self.tokens.settle(reservation, used)

    async def _run_item(self, item: BatchItem) -> BatchResult:
        try:
            if isinstance(item.request, InvalidInput):
                raise InvalidArgumentError(item.request.message)
            url = url_for(item.request)
        except InvalidArgumentError as err:
            return BatchResult(item.custom_id, "", error=_error("invalid_request", err))
        method = ENDPOINTS[url][0]
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._call(method, item)
            except APIStatusError as err:
                retry_after = parse_retry_after(err.headers)
                if err.status_code in _OVERLOAD_STATUSES:
                    self.limit.overload(retry_after, time.monotonic())
                if err.status_code in _RETRY_STATUSES and attempt <= self.budget:
                    await asyncio.sleep(retry_after or self._backoff(attempt))
                    continue
                return BatchResult(
                    item.custom_id,
                    url,
                    status_code=err.status_code,
                    request_id=err.request_id,
                    body=err.body if err.body is not None else err.text,
                    error=_error(err.code or f"http_{err.status_code}", err),
                    attempts=attempt,
                )
            except APIConnectionError as err:
                # A read timeout is not re-sent (the server may still be running the request),
                # as the client's own default policy.
                read_timeout = isinstance(err, APITimeoutError) and err.phase == "read"
                if attempt <= self.budget and not read_timeout:
                    await asyncio.sleep(self._backoff(attempt))
                    continue
                kind = "timeout" if isinstance(err, TimeoutError) else "connection_error"
                return BatchResult(item.custom_id, url, error=_error(kind, err), attempts=attempt)
            except AlephAlphaError as err:
                kind = type(err).__name__
                return BatchResult(item.custom_id, url, error=_error(kind, err), attempts=attempt)
            self.limit.success()
            tokens = _tokens(response)
            return BatchResult(
                item.custom_id,
                url,
                status_code=200,
                request_id=getattr(response, "request_id", None),
                response=response,
                attempts=attempt,
                tokens=tokens,
            )

    def _backoff(self, attempt: int) -> float:
        return float(min(8.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.0))

    def wait_before_start(self, item: BatchItem, now: float) -> float:
        """Seconds to wait before ``item`` may start (0: now; inf: after the next answer)."""
        wait = self.limit.paused_until - now
        if self.rps is not None:
            wait = max(wait, self.next_start - now)
        url = _url_or_none(item) if self.tokens is not None else None
        if self.tokens is not None and url is not None:
            wait = max(wait, self.tokens.wait(url, now))
        return max(0.0, wait)

    def start(self, item: BatchItem, now: float) -> _Reservation | None:
        """``item`` starts now: count it for ``rps``, reserve its tokens."""
        if self.rps is not None:
            self.next_start = max(now, self.next_start) + 1.0 / self.rps
        url = _url_or_none(item) if self.tokens is not None else None
        if self.tokens is None or url is None:
            return None
        return self.tokens.reserve(url, now)


def _url_or_none(item: BatchItem) -> str | None:
    """The endpoint an item goes to (None: it is answered without a request)."""
    if isinstance(item.request, InvalidInput):
        return None
    try:
        return url_for(item.request)
    except InvalidArgumentError:
        return None


class _Writer:
    """Appends whole lines with one write each: a kill leaves no torn line behind."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, result: BatchResult) -> None:
        data = json.dumps(result.to_json(), separators=(",", ":")).encode() + b"\n"
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def close(self) -> None:
        os.close(self.fd)


def _progress(enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        raise MissingDependencyError("tqdm", "tqdm", "progress=True") from None
    return tqdm(unit="item", file=sys.stderr, dynamic_ncols=True)


async def arun_batch(
    client: Any,
    inputs: Iterable[Any] | str | os.PathLike[str],
    *,
    output: str | os.PathLike[str] | None = None,
    resume: bool = False,
    concurrency: int = 16,
    max_concurrency: int | None = None,
    rps: float | None = None,
    tokens_per_minute: int | None = None,
    model: str | None = None,
    progress: bool = False,
    summary: BatchSummary | None = None,
) -> AsyncIterator[BatchResult]:
    """Run a batch; yield one :class:`BatchResult` per input, in completion order.

    ``client`` is an :class:`AsyncClient` or a :class:`Client` (its calls then run in
    threads). ``inputs`` is an iterable of :class:`BatchItem` or ``(custom_id, request)``
    tuples, read lazily, or the path of an OpenAI Batch API JSONL file. With ``output`` every
    result is appended there as a JSONL line; with ``resume`` the ids already in ``output``
    are skipped. Concurrency starts at ``concurrency`` and adapts (AIMD on 429/503) up to
    ``max_concurrency``; ``rps`` and ``tokens_per_minute`` are optional ceilings.
    """
    job = _Job(
        client,
        concurrency=concurrency,
        max_concurrency=max_concurrency,
        rps=rps,
        tokens_per_minute=tokens_per_minute,
        model=model,
    )
    stats = summary if summary is not None else BatchSummary()
    if isinstance(inputs, (str, os.PathLike)):
        inputs = read_jsonl(inputs)
    if resume and output is None:
        raise InvalidArgumentError("resume: needs output= (the file to resume from)")
    done = _done_ids(output) if resume and output is not None else set()
    if output is not None and not resume and os.path.exists(output) and os.path.getsize(output):
        raise InvalidArgumentError(
            f"output: {os.fspath(output)!r} exists and is not empty (pass resume=True)"
        )
    writer = _Writer(output) if output is not None else None
    bar = _progress(progress)
    began = time.monotonic()
    source = iter(inputs)
    exhausted = False
    tasks: set[asyncio.Task[BatchResult]] = set()
    # Finished tasks land here (one callback each): O(1) per completion, not O(in flight).
    finished_queue: collections.deque[asyncio.Task[BatchResult]] = collections.deque()
    wake = asyncio.Event()

    def on_done(task: asyncio.Task[BatchResult]) -> None:
        finished_queue.append(task)
        wake.set()

    # The next item to start, read from the source and waiting for its turn (the token
    # ceiling needs to know which endpoint it goes to).
    pending: BatchItem | None = None
    try:
        while tasks or not exhausted or pending is not None:
            now = time.monotonic()
            wait = 0.0
            while len(tasks) < job.limit.current:
                if pending is None:
                    if exhausted:
                        break
                    try:
                        entry = next(source)
                    except StopIteration:
                        exhausted = True
                        break
                    pending = _coerce(entry, model)
                    if pending.custom_id in done:
                        stats.skipped += 1
                        pending = None
                        continue
                wait = job.wait_before_start(pending, now)
                if wait > 0:
                    break
                reservation = job.start(pending, now)
                task = asyncio.ensure_future(job.run_item(pending, reservation))
                task.add_done_callback(on_done)
                tasks.add(task)
                pending = None
            # inf: only an answer can let the pending item start (it waits for a probe)
            timeout = wait if 0 < wait < math.inf else None
            if not tasks:
                if timeout is not None:
                    await asyncio.sleep(timeout)
                continue
            if not finished_queue:
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), timeout)
                except asyncio.TimeoutError:
                    pass
            while finished_queue:
                task = finished_queue.popleft()
                tasks.discard(task)
                result = task.result()
                if writer is not None:
                    writer.write(result)
                stats.items += 1
                stats.retries += result.attempts - 1
                stats.tokens += result.tokens
                if result.ok:
                    stats.succeeded += 1
                else:
                    stats.failed += 1
                    kind = str((result.error or {}).get("code"))
                    stats.failures[kind] = stats.failures.get(kind, 0) + 1
                stats.concurrency = job.limit.current
                stats.lowest_concurrency = min(
                    stats.lowest_concurrency or stats.concurrency, stats.concurrency
                )
                stats.seconds = time.monotonic() - began
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(
                        ok=stats.succeeded,
                        failed=stats.failed,
                        concurrency=job.limit.current,
                        tokens=stats.tokens,
                        refresh=False,
                    )
                yield result
    finally:
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if writer is not None:
            writer.close()
        if bar is not None:
            bar.close()
        if job.executor is not None:
            job.executor.shutdown(wait=False, cancel_futures=True)
        stats.seconds = time.monotonic() - began


def run_batch(
    client: Any,
    inputs: Iterable[Any] | str | os.PathLike[str],
    **options: Any,
) -> Generator[BatchResult, None, None]:
    """The sync form of :func:`arun_batch` for a :class:`Client`: an iterator of results.

    Runs the async core on its own event loop in a background thread, so it works in plain
    scripts and in notebooks (whose loop is already running). Options as in :func:`arun_batch`.
    """
    if inspect.iscoroutinefunction(getattr(client, "complete", None)):
        raise InvalidArgumentError(
            "client: run_batch takes a Client; use arun_batch for AsyncClient"
        )
    results: _queue.Queue[Any] = _queue.Queue(maxsize=256)
    stop = threading.Event()
    end = object()

    def put(value: Any) -> bool:
        while not stop.is_set():
            try:
                results.put(value, timeout=0.1)
                return True
            except _queue.Full:
                continue
        return False

    box: list[Any] = []

    async def main() -> None:
        box.append((asyncio.get_running_loop(), asyncio.current_task()))
        try:
            async for result in arun_batch(client, inputs, **options):
                if not put(result):
                    return
        except BaseException as err:  # handed to the consumer
            put(err)
            return
        put(end)

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    try:
        while True:
            value = results.get()
            if value is end:
                return
            if isinstance(value, BaseException):
                raise value
            yield value
    finally:
        stop.set()
        if box:
            loop, task = box[0]
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop has already finished
                pass
        thread.join()
