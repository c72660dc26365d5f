"""OpenTelemetry spans and W3C trace context for API calls (a leaf module).

Everything here is a no-op unless ``opentelemetry-api`` is importable (extra ``otel``).
The shells make three small calls: :func:`start` per API call (returns an observer or
``None``), :func:`on_attempt` before each HTTP attempt (adds an event and injects the
``traceparent``/``tracestate``/``baggage`` headers of the current context).

Attributes follow the OpenTelemetry GenAI semantic conventions. Prompt and completion
content is never recorded; the token is never recorded.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CallObserver", "on_attempt", "start"]

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
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "seed": "gen_ai.request.seed",
}

_otel: Any = None  # (trace, context, propagate) once imported; False when unavailable


def _api() -> Any:
    global _otel
    if _otel is None:
        try:
            from opentelemetry import context, propagate, trace
        except ImportError:
            _otel = False
        else:
            _otel = (trace, context, propagate)
    return _otel


class CallObserver:
    """The span of one API call; the shell reports its end with :meth:`done` or :meth:`fail`."""

    __slots__ = ("_attempts", "_span", "_token")

    def __init__(self, span: Any, token: object) -> None:
        self._span = span
        self._token = token
        self._attempts = 0

    def done(self, result: Any) -> None:
        """The call succeeded with ``result`` (a parsed response object)."""
        span = self._span
        response_id = getattr(result, "id", None)
        if isinstance(response_id, str):
            span.set_attribute("gen_ai.response.id", response_id)
        model = getattr(result, "model_version", None) or getattr(result, "model", None)
        if isinstance(model, str):
            span.set_attribute("gen_ai.response.model", model)
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
        if reasons:
            span.set_attribute("gen_ai.response.finish_reasons", reasons)
        usage = getattr(result, "usage", None)
        prompt = getattr(usage, "prompt_tokens", None)
        completion = getattr(usage, "completion_tokens", None)
        if prompt is None:
            prompt = getattr(result, "num_tokens_prompt_total", None)
            completion = getattr(result, "num_tokens_generated", completion)
        if isinstance(prompt, int):
            span.set_attribute("gen_ai.usage.input_tokens", prompt)
        if isinstance(completion, int):
            span.set_attribute("gen_ai.usage.output_tokens", completion)
        self._end()

    def fail(self, error: BaseException) -> None:
        """The call raised ``error``."""
        trace = _otel[0]
        self._span.set_attribute("error.type", type(error).__name__)
        self._span.set_status(trace.Status(trace.StatusCode.ERROR, type(error).__name__))
        self._end()

    def _end(self) -> None:
        self._span.set_attribute("aleph_alpha.attempts", max(self._attempts, 1))
        _OBSERVERS.pop(id(self._span), None)
        _otel[1].detach(self._token)
        self._span.end()


def start(path: str, model: str | None, request: Any) -> CallObserver | None:
    """Start the span of a call to ``path`` (made current) or return ``None`` without OTel."""
    api = _api()
    if not api:
        return None
    trace, context, _ = api
    operation = _OPERATIONS.get(path, path.replace("/", "."))
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": "aleph_alpha",
        "gen_ai.system": "aleph_alpha",
    }
    if model:
        attributes["gen_ai.request.model"] = model
    for name, key in _REQUEST_PARAMS.items():
        value = getattr(request, name, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            attributes[key] = value
    tracer = trace.get_tracer("aleph_alpha_client")
    name = f"{operation} {model}" if model else operation
    span = tracer.start_span(name, kind=trace.SpanKind.CLIENT, attributes=attributes)
    token = context.attach(trace.set_span_in_context(span))
    observer = CallObserver(span, token)
    _OBSERVERS[id(span)] = observer
    return observer


_OBSERVERS: dict[int, CallObserver] = {}


def on_attempt(headers: dict[str, str], attempt: int) -> None:
    """Before attempt ``attempt`` (0-based): an event on the call's span, trace headers out."""
    api = _api()
    if not api:
        return
    trace, _, propagate = api
    span = trace.get_current_span()
    observer = _OBSERVERS.get(id(span))
    if observer is not None:
        observer._attempts = attempt + 1
        span.add_event("gen_ai.client.attempt", {"aleph_alpha.attempt": attempt + 1})
    propagate.inject(headers)
