"""OpenTelemetry spans, metrics and W3C trace context of API calls (a leaf module).

Everything here is a no-op unless ``opentelemetry-api`` is importable (extra ``otel``), and
spans and metrics cost nothing until the application configures an SDK (a tracer or meter
provider). The shells make a few small calls:

* :func:`start` per non-streamed API call: an observer (its span made current) or ``None``;
  the shell reports the end with :meth:`CallObserver.done` or :meth:`CallObserver.fail`.
* :func:`start_stream` per stream: an observer that the stream object drives (the span begins
  with the first read, ends when the stream is exhausted, fails, is closed or is dropped).
* :func:`on_attempt` before each HTTP attempt: an event on the call's span, and the
  ``traceparent``/``tracestate``/``baggage`` headers of the current context on the request.

Attributes and metrics follow the OpenTelemetry GenAI semantic conventions. Prompt and
completion content is recorded only when the user opts in (environment variable
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`` or :func:`set_capture_content`).
The token is never recorded.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from ._exceptions import InvalidArgumentTypeError
from .version import __version__

__all__ = [
    "CallObserver",
    "capture_content_enabled",
    "on_attempt",
    "set_capture_content",
    "start",
    "start_stream",
]

_OPERATIONS = {
    "chat/completions": "chat",
    "complete": "text_completion",
    "embed": "embeddings",
    "embeddings": "embeddings",
    "semantic_embed": "embeddings",
    "batch_semantic_embed": "embeddings",
    "instructable_embed": "embeddings",
}
_REQUEST_PARAMS = {
    "maximum_tokens": "gen_ai.request.max_tokens",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "seed": "gen_ai.request.seed",
}
#: Span attributes that metrics carry too (the conventions' metric attributes).
_METRIC_KEYS = (
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "server.address",
    "server.port",
)
_DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48]
_DURATION_BUCKETS += [40.96, 81.92]
_TOKEN_BUCKETS = [4**i for i in range(14)]  # 1, 4, 16, ... 67108864
CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

_otel: Any = None  # (trace, context, propagate, metrics or None) once imported; False without
_KEY: Any = None  # the context key under which the current call's observer lives
_capture_override: bool | None = None
_tracer_cache: list[Any] = [None, None]  # [provider, tracer or None]
_meter_cache: list[Any] = [None, None]  # [provider, _Instruments or None]
_servers: dict[str, tuple[str | None, int | None]] = {}


_params: dict[type, list[tuple[str, str, Any]]] = {}
_SUPPRESS: Any = None


def _params_of(cls: type) -> list[tuple[str, str, Any]]:
    """The sampling parameters a request type has: (field, attribute, default). Parameters
    left at their default are not recorded (one attribute less per call)."""
    found = _params.get(cls)
    if found is None:
        import dataclasses

        defaults: dict[str, Any] = {}
        if dataclasses.is_dataclass(cls):
            for f in dataclasses.fields(cls):
                defaults[f.name] = f.default
        found = [
            (name, key, defaults.get(name, dataclasses.MISSING))
            for name, key in _REQUEST_PARAMS.items()
            if name in defaults
        ]
        _params[cls] = found
    return found


def _api() -> Any:
    global _otel, _KEY, _SUPPRESS
    if _otel is None:
        try:
            from opentelemetry import context, propagate, trace
        except ImportError:
            _otel = False
        else:
            metrics: Any
            try:
                from opentelemetry import metrics
            except ImportError:  # pragma: no cover - the API ships both
                metrics = None
            _KEY = context.create_key("aleph_alpha_client.call")
            _SUPPRESS = getattr(context, "_SUPPRESS_INSTRUMENTATION_KEY", None)
            _otel = (trace, context, propagate, metrics)
            _unset[0] = _unset_check(
                trace,
                "_TRACER_PROVIDER",
                trace,
                "get_tracer_provider",
                "OTEL_PYTHON_TRACER_PROVIDER",
            )
            _unset[1] = _unset_check(
                sys.modules.get("opentelemetry.metrics._internal"),
                "_METER_PROVIDER",
                metrics,
                "get_meter_provider",
                "OTEL_PYTHON_METER_PROVIDER",
            )
    return _otel


#: Per kind (tracer, meter): how to tell cheaply that the application has set no provider of
#: that kind yet (see :func:`_unset_check`), or None: ask the API's getter every call.
_unset: list[Any] = [None, None]


def _unset_check(module: Any, name: str, getters: Any, getter: str, variable: str) -> Any:
    """The API's getter (``getters.getter()``) costs 1 µs when no provider is set (it looks up
    ``variable`` in the environment), half of what a call costs without an SDK. While its
    global ``module.name`` is None, the getter is the API's own (not patched by a test) and
    ``variable`` is not in the environment, the answer is the same: no provider."""
    environ = getattr(os.environ, "_data", None)
    encode = getattr(os.environ, "encodekey", None)
    original = getattr(getters, getter, None)
    if module is None or not isinstance(environ, dict) or encode is None or original is None:
        return None
    return (module, name, getters, getter, original, environ, encode(variable))


def _provider_unset(kind: int) -> bool:
    """True if the application has set no provider of ``kind`` (0 tracer, 1 meter) yet."""
    check = _unset[kind]
    if check is None:
        return False
    module, name, getters, getter, original, environ, key = check
    if getattr(module, name, 0) is not None:
        _unset[kind] = None  # set, and the API allows that once: ask the getter from now on
        return False
    return getattr(getters, getter, None) is original and key not in environ


def set_capture_content(enabled: bool | None) -> None:
    """Record prompt and completion content on spans (``True``), never (``False``), or as
    ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` says (``None``, the default)."""
    global _capture_override
    if enabled is not None and not isinstance(enabled, bool):
        raise InvalidArgumentTypeError(f"enabled: expected a bool or None, got {enabled!r}")
    _capture_override = enabled


def capture_content_enabled() -> bool:
    """Whether prompt and completion content goes on spans (off unless opted in)."""
    if _capture_override is not None:
        return _capture_override
    return os.environ.get(CAPTURE_ENV, "").strip().lower() == "true"


def _tracer(trace: Any) -> Any:
    if _provider_unset(0):
        return None
    provider = trace.get_tracer_provider()
    cache = _tracer_cache
    if provider is not cache[0]:
        tracer = None
        if not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
            tracer = provider.get_tracer("aleph_alpha_client", __version__)
        cache[0], cache[1] = provider, tracer
    return cache[1]


class _Instruments:
    __slots__ = ("duration", "first_chunk", "tokens")

    def __init__(self, meter: Any) -> None:
        self.duration = _histogram(
            meter, "gen_ai.client.operation.duration", "s", "GenAI operation duration",
            _DURATION_BUCKETS,
        )  # fmt: skip
        self.tokens = _histogram(
            meter, "gen_ai.client.token.usage", "{token}",
            "Number of input and output tokens used", _TOKEN_BUCKETS,
        )  # fmt: skip
        self.first_chunk = _histogram(
            meter, "gen_ai.client.operation.time_to_first_chunk", "s",
            "Time to receive the first chunk of a streamed response", _DURATION_BUCKETS,
        )  # fmt: skip


def _histogram(meter: Any, name: str, unit: str, description: str, buckets: list[Any]) -> Any:
    try:
        return meter.create_histogram(
            name, unit=unit, description=description, explicit_bucket_boundaries_advisory=buckets
        )
    except TypeError:  # opentelemetry-api before 1.23 has no bucket advice
        return meter.create_histogram(name, unit=unit, description=description)


def _instruments(metrics: Any) -> _Instruments | None:
    if metrics is None or _provider_unset(1):
        return None
    provider = metrics.get_meter_provider()
    cache = _meter_cache
    if provider is not cache[0]:
        instruments = None
        if type(provider).__name__ not in ("_ProxyMeterProvider", "NoOpMeterProvider"):
            instruments = _Instruments(provider.get_meter("aleph_alpha_client", __version__))
        cache[0], cache[1] = provider, instruments
    result: _Instruments | None = cache[1]
    return result


def _server(host: str | None) -> tuple[str | None, int | None]:
    if host is None:
        return None, None
    found = _servers.get(host)
    if found is None:
        try:
            parts = urlsplit(host)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            found = (parts.hostname, port)
        except ValueError:
            found = (None, None)
        if len(_servers) < 64:
            _servers[host] = found
    return found


class CallObserver:
    """The span and metrics of one API call (streamed or not)."""

    __slots__ = (
        "_attempts",
        "_attrs",
        "_capture",
        "_ended",
        "_first",
        "_first_attempt_ns",
        "_instruments",
        "_late",
        "_name",
        "_parent",
        "_recording",
        "_request",
        "_span",
        "_start",
        "_token",
        "_tracer",
    )

    def __init__(
        self, tracer: Any, instruments: _Instruments | None, name: str, attrs: dict[str, Any]
    ) -> None:
        self._tracer = tracer
        self._instruments = instruments
        self._name = name
        self._attrs = attrs
        self._span: Any = None
        self._token: object = None
        self._request: Any = None
        self._attempts = 0
        self._first_attempt_ns = 0
        self._capture = False
        self._late: dict[str, Any] = {}  # attributes set at the end, in one call
        self._parent: Any = None  # a stream's: the context it was made in
        self._recording = False  # a span that records (not sampled out)
        self._start = 0.0
        self._first: float | None = None
        self._ended = False

    # ------------------------------------------------------------ lifecycle

    def _begin(self) -> None:
        trace = _otel[0]
        self._start = time.perf_counter()
        if self._tracer is not None:
            attrs = self._attrs
            self._capture = capture_content_enabled()
            if self._capture and self._request is not None:
                text = _input_messages(self._request)
                if text is not None:
                    attrs = {**attrs, "gen_ai.input.messages": text}
            self._span = self._tracer.start_span(
                self._name, context=self._parent, kind=trace.SpanKind.CLIENT, attributes=attrs
            )
            self._parent = None
            self._recording = self._span.is_recording()
        self._request = None

    def _context(self) -> Any:
        trace, context = _otel[0], _otel[1]
        ctx = context.set_value(_KEY, self)
        if self._span is not None:
            ctx = trace.set_span_in_context(self._span, ctx)
        return ctx

    def enter(self) -> object:
        """Make this call current (the first time: begin its span); returns a token.

        Once a stream has handed out its first item it sends nothing more (a stream is only
        re-sent before its first token), so later reads skip the context switch."""
        if self._first is not None:
            return None
        if self._span is None and self._start == 0.0:
            self._begin()
        return _otel[1].attach(self._context())

    def exit(self, token: object) -> None:
        """Undo :meth:`enter`."""
        if token is not None:
            _otel[1].detach(token)

    def attempt(self, attempt: int) -> None:
        """Attempt ``attempt`` (0-based) is about to be sent."""
        self._attempts = attempt + 1
        span = self._span
        if not self._recording:
            return
        # An event per attempt once there is more than one (a call that succeeds at once,
        # the common case, pays for none); the first one keeps its own time.
        if attempt == 0:
            self._first_attempt_ns = time.time_ns()
            return
        if attempt == 1 and self._first_attempt_ns:
            span.add_event(
                "gen_ai.client.attempt", {"aleph_alpha.attempt": 1}, self._first_attempt_ns
            )
        span.add_event("gen_ai.client.attempt", {"aleph_alpha.attempt": attempt + 1})

    def first_item(self) -> None:
        """A stream handed out its first item: record the time to the first chunk."""
        if self._first is None and not self._ended:
            self._first = seconds = time.perf_counter() - self._start
            self._late["gen_ai.response.time_to_first_chunk"] = seconds
            if self._instruments is not None:
                self._instruments.first_chunk.record(seconds, self._metric_attrs())

    # ------------------------------------------------------------ ends

    def done(self, result: Any, request_id: str | None = None) -> None:
        """The call succeeded with ``result`` (a parsed response object)."""
        if self._ended:
            return
        self._record(result, request_id)
        self._end(None)

    def fail(
        self, error: BaseException, partial: Any = None, request_id: str | None = None
    ) -> None:
        """The call raised ``error`` (``partial``: what a broken stream had accumulated;
        ``request_id``: the answer's, when its head had come)."""
        if self._ended:
            return
        if partial is None:
            partial = getattr(error, "partial", None)
        request_id = request_id or getattr(error, "request_id", None)
        self._record(partial, request_id)
        name = type(error).__name__
        span = self._span
        if span is not None and self._recording:
            trace = _otel[0]
            self._late["error.type"] = name
            span.set_status(trace.Status(trace.StatusCode.ERROR, name))
        self._end(name)

    def closed(self, partial: Any = None, request_id: str | None = None) -> None:
        """A stream was closed, dropped or cancelled before its end."""
        if self._ended or self._start == 0.0:
            self._ended = True
            return
        self._record(partial, request_id)
        self._late["aleph_alpha.stream.closed_early"] = True
        self._end(None)

    def _record(self, result: Any, request_id: str | None) -> None:
        if not self._recording and self._instruments is None:
            return
        if result is None:  # a call that failed before an answer: only its request id
            if self._recording and isinstance(request_id, str):
                self._late["aleph_alpha.request_id"] = request_id
            return
        response_id = getattr(result, "id", None)
        model = getattr(result, "model_version", None) or getattr(result, "model", None)
        reasons: list[str] = []
        finish = getattr(result, "finish_reason", None)
        choices = getattr(result, "choices", None) or ()
        if choices:  # a chat answer: every choice's reason (n > 1)
            finish = None
        if finish is not None:
            reasons.append(str(getattr(finish, "value", finish)))
        for item in [*choices, *(getattr(result, "completions", None) or ())]:
            reason = getattr(item, "finish_reason", None)
            if reason is not None:
                reasons.append(str(getattr(reason, "value", reason)))
        usage = getattr(result, "usage", None)
        prompt = getattr(usage, "prompt_tokens", None)
        completion = getattr(usage, "completion_tokens", None)
        if prompt is None:
            prompt = getattr(result, "num_tokens_prompt_total", None)
            completion = getattr(result, "num_tokens_generated", completion)
        if isinstance(model, str) and model:
            self._attrs["gen_ai.response.model"] = model
        if self._recording:
            late = self._late
            if isinstance(response_id, str):
                late["gen_ai.response.id"] = response_id
            if isinstance(model, str) and model:
                late["gen_ai.response.model"] = model
            if reasons:
                late["gen_ai.response.finish_reasons"] = reasons
            if isinstance(prompt, int):
                late["gen_ai.usage.input_tokens"] = prompt
            if isinstance(completion, int):
                late["gen_ai.usage.output_tokens"] = completion
            request_id = request_id or getattr(result, "request_id", None)
            if isinstance(request_id, str):
                late["aleph_alpha.request_id"] = request_id
            if self._capture:
                text = _output_messages(result)
                if text is not None:
                    late["gen_ai.output.messages"] = text
        instruments = self._instruments
        if instruments is not None:
            attrs = self._metric_attrs()
            if isinstance(prompt, int):
                instruments.tokens.record(prompt, {**attrs, "gen_ai.token.type": "input"})
            if isinstance(completion, int):
                instruments.tokens.record(completion, {**attrs, "gen_ai.token.type": "output"})

    def _metric_attrs(self) -> dict[str, Any]:
        attrs = self._attrs
        out = {key: attrs[key] for key in _METRIC_KEYS if key in attrs}
        model = attrs.get("gen_ai.response.model")
        if model is not None:
            out["gen_ai.response.model"] = model
        return out

    def _end(self, error_type: str | None) -> None:
        self._ended = True
        if self._instruments is not None:
            attrs = self._metric_attrs()
            if error_type is not None:
                attrs["error.type"] = error_type
            self._instruments.duration.record(time.perf_counter() - self._start, attrs)
        span = self._span
        if span is not None:
            if self._recording:
                late = self._late
                late["aleph_alpha.attempts"] = max(self._attempts, 1)
                span.set_attributes(late)
            span.end()
        token = self._token
        if token is not None:
            self._token = None
            _otel[1].detach(token)


def _observer(path: str, model: str | None, request: Any, host: str | None) -> Any:
    api = _api()
    if not api:
        return None
    tracer = _tracer(api[0])
    instruments = _instruments(api[3])
    if tracer is None and instruments is None:
        return None
    if _SUPPRESS is not None and api[1].get_value(_SUPPRESS):
        return None  # OpenTelemetry's "suppress instrumentation" switch
    operation = _OPERATIONS.get(path, path.replace("/", "."))
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": "aleph_alpha",
    }
    if model:
        attrs["gen_ai.request.model"] = model
    address, port = _server(host)
    if address:
        attrs["server.address"] = address
        attrs["server.port"] = port
    for name, key, default in _params_of(type(request)):
        value = getattr(request, name, None)
        if (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and (value != default or type(value) is not type(default))
        ):
            attrs[key] = value
    observer = CallObserver(
        tracer, instruments, f"{operation} {model}" if model else operation, attrs
    )
    observer._request = request
    return observer


def start(
    path: str, model: str | None, request: Any, host: str | None = None
) -> CallObserver | None:
    """Begin the span of a non-streamed call to ``path`` (made current), or ``None``."""
    observer: CallObserver | None = _observer(path, model, request, host)
    if observer is not None:
        observer._token = observer.enter()
    return observer


def start_stream(
    path: str, model: str | None, request: Any, host: str | None = None
) -> CallObserver | None:
    """An observer for a stream (its span begins on the first :meth:`CallObserver.enter`)."""
    observer: CallObserver | None = _observer(path, model, request, host)
    if observer is not None:
        observer._attrs["aleph_alpha.stream"] = True
        # the span begins at the first read, but belongs where the stream was made (a
        # framework may read it later, in another task or thread)
        observer._parent = _otel[1].get_current()
    return observer


def on_attempt(headers: dict[str, str], attempt: int) -> None:
    """Before attempt ``attempt`` (0-based): an event on the call's span, trace headers out."""
    api = _otel if _otel is not None else _api()
    if not api:
        return
    context = api[1]
    current = context.get_current()
    if not current:  # nothing to propagate, no call observed
        return
    if _SUPPRESS is not None and current.get(_SUPPRESS):
        return  # instrumentation suppressed: no span, and no trace headers either
    observer = current.get(_KEY)
    if observer is not None:
        observer.attempt(attempt)
    api[2].inject(headers, current)


# ---------------------------------------------------------------- content (opt-in only)


def _parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}] if content else []
    parts: list[dict[str, Any]] = []
    for item in content:
        if isinstance(item, str):
            if item:
                parts.append({"type": "text", "content": item})
        else:  # an image: its kind only, never its bytes
            parts.append({"type": "blob", "modality": "image"})
    return parts


def _tool_call_parts(calls: Any) -> list[dict[str, Any]]:
    parts = []
    for call in calls or ():
        function = getattr(call, "function", None)
        parts.append(
            {
                "type": "tool_call",
                "id": getattr(call, "id", None),
                "name": getattr(function, "name", None),
                "arguments": getattr(function, "arguments", None),
            }
        )
    return parts


def _input_messages(request: Any) -> str | None:
    messages = getattr(request, "messages", None)
    out: list[dict[str, Any]] = []
    if messages is not None:
        for message in messages:
            role = getattr(message, "role", None)
            role = str(getattr(role, "value", role))
            tool_call_id = getattr(message, "tool_call_id", None)
            if role == "tool" and tool_call_id is not None:
                parts: list[dict[str, Any]] = [
                    {
                        "type": "tool_call_response",
                        "id": tool_call_id,
                        "response": getattr(message, "content", None),
                    }
                ]
            else:
                parts = _parts(getattr(message, "content", None))
                parts += _tool_call_parts(getattr(message, "tool_calls", None))
            out.append({"role": role, "parts": parts})
    else:
        prompt = getattr(request, "prompt", None)
        if prompt is None:
            return None
        items = getattr(prompt, "items", None)
        if isinstance(prompt, str):
            parts = [{"type": "text", "content": prompt}]
        elif items is not None:
            parts = [
                {"type": "text", "content": item.text}
                if isinstance(getattr(item, "text", None), str)
                else {"type": "blob", "modality": "image"}
                for item in items
            ]
        else:
            return None
        out.append({"role": "user", "parts": parts})
    return json.dumps(out, ensure_ascii=False, default=str)


def _output_messages(result: Any) -> str | None:
    message = getattr(result, "message", None)
    if message is not None:
        finish = getattr(result, "finish_reason", None)
        parts = _parts(getattr(message, "content", None))
        parts += _tool_call_parts(getattr(message, "tool_calls", None))
        role = getattr(message, "role", None)
        out = [
            {
                "role": str(getattr(role, "value", role)),
                "parts": parts,
                "finish_reason": None if finish is None else str(getattr(finish, "value", finish)),
            }
        ]
    elif getattr(result, "completions", None) is not None:
        out = [
            {
                "role": "assistant",
                "parts": _parts(getattr(item, "completion", None)),
                "finish_reason": getattr(item, "finish_reason", None),
            }
            for item in result.completions
        ]
    else:
        return None
    return json.dumps(out, ensure_ascii=False, default=str)
