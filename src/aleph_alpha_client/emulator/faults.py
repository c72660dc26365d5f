"""Fault injection for the emulator: error statuses, resets, latency, broken streams.

A :class:`Fault` says what goes wrong with one response. Faults reach requests in two ways:

* **Scripted**, consumed one per request in order: ``emulator.script([Fault.status(503),
  Fault.reset(), None])`` answers the next three requests with a 503, a connection reset and a
  normal answer. An entry may also be a list of faults (e.g. a latency plus a cut stream).
  ``script(..., path="chat/completions")`` consumes entries only on matching routes; an entry
  whose faults all carry a non-matching ``path=`` is left for a later request as well.
* **By rate**, drawn per request from a seeded RNG (:class:`FaultPlan`), e.g. 10 % 503s.
  Scripted entries win over rates.

Fault kinds (``Fault.<constructor>``):

=======================================  ===================================================
``status(503, retry_after=1)``           an error status with ``{"error","code"}`` body and
                                         optional ``Retry-After`` / ``retry-after-ms``
``reset()``                              the socket is closed abruptly (RST), no response
``reset(mid_body=True, after_events=1)`` headers and part of the body (a stream's first
                                         events, half of a JSON body) are sent, then RST
``latency(0.5)``                         wait before the first byte, then answer normally
``stream_latency(0.1)``                  wait between stream events
``cut(after_events=1)``                  the stream ends cleanly after N events without its
                                         end (no ``[DONE]``/summary); a JSON body is cut in
                                         half (with a matching Content-Length)
``error_event("OVERLOADED", after_events=1)``  after N events the stream sends
                                         ``data: {"error":...,"code":"OVERLOADED"}`` and
                                         ends; a JSON request gets that object as a 200 body
``malformed()``                          200 with a non-JSON ``text/html`` body
``content_type("text/plain")``           the normal body with a wrong ``Content-Type``
=======================================  ===================================================

Every constructor takes ``path=`` (an ``fnmatch`` pattern on the route without ``/v1``, e.g.
``"chat/completions"`` or ``"embed*"``); the fault then only hits matching requests.

**Spec strings** (CLI ``--faults`` and ``Emulator(faults="...")``), comma-separated items::

    spec    := item ("," item)*
    item    := setting | fault
    setting := ("latency" | "stream_latency" | "seed") "=" NUMBER
    fault   := KIND [":" PROBABILITY] (":" KEY "=" VALUE)*
    KIND    := HTTP status 400-599 | reset | cut | error | malformed | content_type
               | latency | stream_latency
    KEY     := retry_after | retry_after_ms | code | message | after | mid_body
               | seconds | content_type | path

Examples: ``"503:0.1,reset:0.05,latency=0.2"`` (10 % 503, 5 % resets, 0.2 s before every
answer); ``"429:0.2:retry_after=1"``; ``"error:0.1:code=OVERLOADED:after=2:path=chat/*"``;
``"reset:0.1:mid_body=1:after=3"``; ``"latency:0.5:seconds=2"`` (half the requests wait 2 s).
A fault without a probability hits every (matching) request. The probabilities of one spec
must add up to at most 1: one draw per request picks at most one of them. ``latency=`` and
``stream_latency=`` apply to every request on top; ``seed=`` seeds the RNG (default 0).
"""

from __future__ import annotations

import http
import random
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Union

__all__ = ["Fault", "FaultPlan", "ScriptEntry", "parse_fault_spec"]

_TERMINAL = {"status", "reset", "cut", "error_event", "malformed", "content_type"}


@dataclass(frozen=True)
class Fault:
    """One injected fault (build it with the class-method constructors)."""

    kind: str
    status_code: int = 503
    retry_after: float | None = None
    retry_after_ms: int | None = None
    message: str | None = None
    code: str | None = None
    seconds: float = 0.0
    after_events: int = 1
    mid_body: bool = False
    content_type_value: str = "text/plain"
    path: str | None = None

    @classmethod
    def status(
        cls,
        status_code: int = 503,
        *,
        retry_after: float | None = None,
        retry_after_ms: int | None = None,
        message: str | None = None,
        code: str | None = None,
        path: str | None = None,
    ) -> Fault:
        """An error status with an API error body and optional Retry-After headers."""
        if not 400 <= status_code <= 599:
            raise ValueError(f"status_code must be 400-599, not {status_code}")
        return cls(
            "status",
            status_code=status_code,
            retry_after=retry_after,
            retry_after_ms=retry_after_ms,
            message=message,
            code=code,
            path=path,
        )

    @classmethod
    def reset(
        cls, *, mid_body: bool = False, after_events: int = 1, path: str | None = None
    ) -> Fault:
        """Close the connection abruptly: before any byte, or (``mid_body``) mid-response."""
        return cls("reset", mid_body=mid_body, after_events=after_events, path=path)

    @classmethod
    def latency(cls, seconds: float, *, path: str | None = None) -> Fault:
        """Wait ``seconds`` before the first byte of the response."""
        return cls("latency", seconds=seconds, path=path)

    @classmethod
    def stream_latency(cls, seconds: float, *, path: str | None = None) -> Fault:
        """Wait ``seconds`` between stream events."""
        return cls("stream_latency", seconds=seconds, path=path)

    @classmethod
    def cut(cls, after_events: int = 1, *, path: str | None = None) -> Fault:
        """End the stream cleanly after ``after_events`` events, without its terminator."""
        return cls("cut", after_events=after_events, path=path)

    @classmethod
    def error_event(
        cls,
        code: str = "OVERLOADED",
        message: str = "The model is overloaded, please try again later.",
        *,
        after_events: int = 1,
        path: str | None = None,
    ) -> Fault:
        """Send ``data: {"error": message, "code": code}`` after ``after_events`` events."""
        return cls("error_event", code=code, message=message, after_events=after_events, path=path)

    @classmethod
    def malformed(cls, *, path: str | None = None) -> Fault:
        """Answer 200 with a non-JSON ``text/html`` body."""
        return cls("malformed", path=path)

    @classmethod
    def content_type(cls, value: str = "text/plain", *, path: str | None = None) -> Fault:
        """Answer normally but with a wrong ``Content-Type``."""
        return cls("content_type", content_type_value=value, path=path)

    @property
    def is_terminal(self) -> bool:
        """Whether the fault replaces or breaks the response (latencies only delay it)."""
        return self.kind in _TERMINAL

    def matches(self, route: str) -> bool:
        """Whether the fault applies to ``route`` (the path without ``/v1`` and ``/``)."""
        return self.path is None or fnmatchcase(route, self.path.strip("/"))

    def error_code(self) -> str:
        """The ``code`` of the error body (a status's phrase in CAPS unless given)."""
        if self.code:
            return self.code
        try:
            return http.HTTPStatus(self.status_code).phrase.upper().replace(" ", "_")
        except ValueError:
            return f"HTTP_{self.status_code}"

    def error_message(self) -> str:
        """The ``error`` text of the error body."""
        if self.message:
            return self.message
        return f"Injected fault: HTTP {self.status_code} {self.error_code()}"

    def retry_headers(self) -> list[tuple[str, str]]:
        """``Retry-After`` / ``retry-after-ms`` headers as configured."""
        headers: list[tuple[str, str]] = []
        if self.retry_after is not None:
            value = self.retry_after
            headers.append(("Retry-After", str(int(value)) if value == int(value) else str(value)))
        if self.retry_after_ms is not None:
            headers.append(("retry-after-ms", str(self.retry_after_ms)))
        return headers


#: A script entry: a normal answer (None), one fault, or several faults for one request.
ScriptEntry = Union[Fault, Sequence[Fault], None]


class FaultPlan:
    """Which faults hit which request: a scripted queue and per-request rates (thread-safe)."""

    def __init__(
        self,
        rates: Iterable[tuple[Fault, float]] = (),
        *,
        latency: float = 0.0,
        stream_latency: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.rates: list[tuple[Fault, float]] = list(rates)
        total = sum(p for _f, p in self.rates)
        if any(not 0.0 <= p <= 1.0 for _f, p in self.rates) or total > 1.0 + 1e-9:
            raise ValueError("fault probabilities must be in [0, 1] and add up to at most 1")
        self.latency = latency
        self.stream_latency = stream_latency
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._scripts: list[tuple[str | None, deque[ScriptEntry]]] = []

    @classmethod
    def parse(cls, spec: str, *, seed: int | None = None) -> FaultPlan:
        """Build a plan from a spec string (syntax in the module docstring)."""
        return parse_fault_spec(spec, seed=seed)

    def script(self, entries: Iterable[ScriptEntry], *, path: str | None = None) -> None:
        """Queue entries consumed one per (matching) request."""
        with self._lock:
            self._scripts.append((path, deque(entries)))

    def clear_script(self) -> None:
        """Drop all queued script entries."""
        with self._lock:
            self._scripts.clear()

    @property
    def pending(self) -> int:
        """Number of script entries not consumed yet."""
        with self._lock:
            return sum(len(queue) for _path, queue in self._scripts)

    def choose(self, route: str) -> list[Fault]:
        """The faults for one request to ``route`` (consumes a script entry or draws)."""
        with self._lock:
            for path, queue in self._scripts:
                if not queue or (path is not None and not fnmatchcase(route, path.strip("/"))):
                    continue
                entry = queue[0]
                if entry is None:
                    queue.popleft()
                    return []
                faults = [entry] if isinstance(entry, Fault) else list(entry)
                chosen = [f for f in faults if f.matches(route)]
                if faults and not chosen:
                    continue  # the entry's own path filters skip this request
                queue.popleft()
                return chosen
            self._scripts = [(p, q) for p, q in self._scripts if q]
            candidates = [(f, p) for f, p in self.rates if f.matches(route)]
            if not candidates:
                return []
            draw = self._rng.random()
            cumulative = 0.0
            for fault, probability in candidates:
                cumulative += probability
                if draw < cumulative:
                    return [fault]
            return []


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"fault spec: {what} must be a number, not {text!r}") from None


def parse_fault_spec(spec: str, *, seed: int | None = None) -> FaultPlan:
    """Parse a fault spec string (see the module docstring) into a :class:`FaultPlan`."""
    rates: list[tuple[Fault, float]] = []
    latency = 0.0
    stream_latency = 0.0
    spec_seed = 0
    for raw_item in spec.split(","):
        item = raw_item.strip()
        if not item:
            continue
        head = item.split(":", 1)[0]
        if "=" in head:
            key, _, value = item.partition("=")
            key = key.strip()
            if key == "latency":
                latency = _number(value, "latency")
            elif key == "stream_latency":
                stream_latency = _number(value, "stream_latency")
            elif key == "seed":
                spec_seed = int(_number(value, "seed"))
            else:
                raise ValueError(f"fault spec: unknown setting {key!r}")
            continue
        parts = item.split(":")
        kind = parts[0].strip().lower()
        probability = 1.0
        options: dict[str, str] = {}
        for part in parts[1:]:
            if "=" in part:
                key, _, value = part.partition("=")
                options[key.strip()] = value.strip()
            else:
                probability = _number(part, f"probability of {kind!r}")
        rates.append((_fault_from_spec(kind, options), probability))
    return FaultPlan(
        rates,
        latency=latency,
        stream_latency=stream_latency,
        seed=spec_seed if seed is None else seed,
    )


_OPTIONS = {
    "retry_after",
    "retry_after_ms",
    "code",
    "message",
    "after",
    "mid_body",
    "seconds",
    "content_type",
    "path",
}


def _fault_from_spec(kind: str, options: dict[str, str]) -> Fault:
    unknown = set(options) - _OPTIONS
    if unknown:
        raise ValueError(f"fault spec: unknown option(s) {sorted(unknown)} for {kind!r}")
    path = options.get("path")
    after = int(_number(options.get("after", "1"), "after"))
    if kind.isdigit():
        return Fault.status(
            int(kind),
            retry_after=_number(options["retry_after"], "retry_after")
            if "retry_after" in options
            else None,
            retry_after_ms=int(_number(options["retry_after_ms"], "retry_after_ms"))
            if "retry_after_ms" in options
            else None,
            message=options.get("message"),
            code=options.get("code"),
            path=path,
        )
    if kind == "reset":
        mid_body = options.get("mid_body", "0").lower() in ("1", "true", "yes")
        return Fault.reset(mid_body=mid_body or "after" in options, after_events=after, path=path)
    if kind == "cut":
        return Fault.cut(after, path=path)
    if kind in ("error", "error_event"):
        return Fault.error_event(
            options.get("code", "OVERLOADED"),
            options.get("message", "The model is overloaded, please try again later."),
            after_events=after,
            path=path,
        )
    if kind == "malformed":
        return Fault.malformed(path=path)
    if kind == "content_type":
        return Fault.content_type(options.get("content_type", "text/plain"), path=path)
    if kind == "latency":
        return Fault.latency(_number(options.get("seconds", "1"), "seconds"), path=path)
    if kind == "stream_latency":
        return Fault.stream_latency(_number(options.get("seconds", "0.1"), "seconds"), path=path)
    raise ValueError(f"fault spec: unknown fault kind {kind!r}")
