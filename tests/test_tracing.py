"""Spans, metrics and W3C trace context of API calls, with the OpenTelemetry SDK's in-memory
exporters; raw responses, request ids and log lines of a call."""

from __future__ import annotations

import gc
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import baggage, context, metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tests.conftest import TOKEN, run_client
from tests.scripted_server import Reply, ScriptedServer

from aleph_alpha_client import (
    AsyncClient,
    BatchSemanticEmbeddingRequest,
    ChatRequest,
    ChatResponse,
    CompletionRequest,
    EmbeddingV2Request,
    IncompleteStreamError,
    Message,
    Prompt,
    Role,
    SemanticRepresentation,
    _tracing,
)
from aleph_alpha_client.chat import ChatStreamChunk, StreamOptions

_EXPORTER = InMemorySpanExporter()
_PROVIDER = TracerProvider()
_PROVIDER.add_span_processor(SimpleSpanProcessor(_EXPORTER))
trace.set_tracer_provider(_PROVIDER)
_READER = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[_READER]))

MODES = ["sync", "async"]

CHAT_REPLY = {
    "id": "chat-1",
    "model": "m-v1",
    "created": 1,
    "object": "chat.completion",
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": "secret answer"},
        }
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}
COMPLETION_REPLY = {
    "model_version": "m-v2",
    "completions": [{"completion": "secret answer", "finish_reason": "maximum_tokens"}],
    "num_tokens_prompt_total": 5,
    "num_tokens_generated": 2,
}
EMBEDDINGS_REPLY = {
    "object": "list",
    "data": [{"object": "embedding", "embedding": [0.5, 0.25], "index": 0}],
    "model": "e-v1",
    "usage": {"prompt_tokens": 7, "total_tokens": 7},
}


def chat_request(**kwargs: Any) -> ChatRequest:
    return ChatRequest(
        messages=[Message(role=Role.User, content="secret prompt")], model="m", **kwargs
    )


def chat_events(n: int = 3, usage: bool = True) -> list[Any]:
    events: list[Any] = [
        {"id": "s-1", "model": "m-v1", "choices": [{"index": 0, "delta": {"role": "assistant"}}]}
    ]
    events += [
        {"id": "s-1", "choices": [{"index": 0, "delta": {"content": f"tok{i} "}}]} for i in range(n)
    ]
    events.append({"id": "s-1", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if usage:
        events.append(
            {
                "id": "s-1",
                "choices": [],
                "usage": {"prompt_tokens": 4, "completion_tokens": n, "total_tokens": 4 + n},
            }
        )
    return events


def stream_reply(events: list[Any], **kwargs: Any) -> Reply:
    reply = Reply.sse(events, **kwargs)
    reply.headers["x-request-id"] = "req-7"
    return reply


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    _tracing.set_capture_content(None)
    _EXPORTER.clear()
    _READER.get_metrics_data()  # drop what earlier tests recorded (delta not needed: we diff)
    yield _EXPORTER
    _tracing.set_capture_content(None)
    _EXPORTER.clear()


def only_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    (span,) = exporter.get_finished_spans()
    return span


def attrs_of(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def points(name: str) -> list[Any]:
    """Histogram points of metric ``name`` (cumulative since the start of the process)."""
    data = _READER.get_metrics_data()
    found: list[Any] = []
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    found.extend(metric.data.data_points)
    return found


def count(name: str, **attributes: Any) -> int:
    return sum(
        p.count
        for p in points(name)
        if all(p.attributes.get(k) == v for k, v in attributes.items())
    )


def total(name: str, **attributes: Any) -> float:
    return sum(
        p.sum for p in points(name) if all(p.attributes.get(k) == v for k, v in attributes.items())
    )


def assert_no_secrets(span: ReadableSpan) -> None:
    text = repr(attrs_of(span)) + repr([e.attributes for e in span.events])
    assert TOKEN not in text
    assert "secret prompt" not in text and "secret answer" not in text


def traceparent_of(span: ReadableSpan) -> str:
    ctx = span.get_span_context()
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


# ---------------------------------------------------------------- non-streamed calls


@pytest.mark.parametrize("mode", MODES)
def test_chat_span_metrics_and_traceparent_of_a_retried_call(
    mode: str, server: ScriptedServer, spans: InMemorySpanExporter
) -> None:
    before_duration = count("gen_ai.client.operation.duration", **{"gen_ai.request.model": "m"})
    before_input = total("gen_ai.client.token.usage", **{"gen_ai.token.type": "input"})
    server.add(Reply(503), Reply.json(CHAT_REPLY, headers={"x-request-id": "req-1"}))
    request = chat_request(temperature=0.5)
    result = run_client(mode, server.url, lambda c: c.chat(request, model="m"), total_retries=2)
    assert result.request_id == "req-1"
    span = only_span(spans)
    attrs = attrs_of(span)
    assert span.name == "chat m"
    assert span.kind == trace.SpanKind.CLIENT
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "aleph_alpha"
    assert attrs["gen_ai.request.model"] == "m"
    assert attrs["gen_ai.request.temperature"] == 0.5
    assert attrs["gen_ai.response.id"] == "chat-1"
    assert attrs["gen_ai.response.model"] == "m-v1"
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert attrs["gen_ai.usage.input_tokens"] == 3
    assert attrs["gen_ai.usage.output_tokens"] == 1
    assert attrs["server.address"] == "127.0.0.1"
    assert attrs["server.port"] == server.port
    assert attrs["aleph_alpha.request_id"] == "req-1"
    assert attrs["aleph_alpha.attempts"] == 2
    assert [e.name for e in span.events] == ["gen_ai.client.attempt"] * 2
    assert [e.attributes["aleph_alpha.attempt"] for e in span.events] == [1, 2]  # type: ignore[index]
    assert "gen_ai.input.messages" not in attrs and "gen_ai.output.messages" not in attrs
    assert_no_secrets(span)
    assert [r.headers.get("traceparent") for r in server.received] == [traceparent_of(span)] * 2
    # Metrics: one duration point, input and output token usage.
    assert (
        count("gen_ai.client.operation.duration", **{"gen_ai.request.model": "m"})
        == before_duration + 1
    )
    assert total("gen_ai.client.token.usage", **{"gen_ai.token.type": "input"}) == before_input + 3
    found = [
        p
        for p in points("gen_ai.client.token.usage")
        if p.attributes.get("gen_ai.token.type") == "output"
        and p.attributes.get("gen_ai.response.model") == "m-v1"
        and p.attributes.get("gen_ai.operation.name") == "chat"
        and p.attributes.get("server.port") == server.port
    ]
    (point,) = found
    assert point.attributes["gen_ai.provider.name"] == "aleph_alpha"
    assert trace.get_current_span() is trace.INVALID_SPAN


@pytest.mark.parametrize("mode", MODES)
def test_failed_call_sets_error_type(
    mode: str, server: ScriptedServer, spans: InMemorySpanExporter
) -> None:
    server.add(Reply.json({"error": "bad"}, status=400))
    before = count("gen_ai.client.operation.duration", **{"error.type": "BadRequestError"})
    with pytest.raises(Exception) as info:
        run_client(mode, server.url, lambda c: c.chat(chat_request(), model="m"))
    span = only_span(spans)
    assert type(info.value).__name__ == "BadRequestError"
    assert attrs_of(span)["error.type"] == "BadRequestError"
    assert span.status.status_code == trace.StatusCode.ERROR
    assert trace.get_current_span() is trace.INVALID_SPAN
    after = count("gen_ai.client.operation.duration", **{"error.type": "BadRequestError"})
    assert after == before + 1


@pytest.mark.parametrize("mode", MODES)
def test_completion_span(mode: str, server: ScriptedServer, spans: InMemorySpanExporter) -> None:
    server.add(Reply.json(COMPLETION_REPLY))
    request = CompletionRequest(prompt=Prompt.from_text("secret prompt"), maximum_tokens=2)
    run_client(mode, server.url, lambda c: c.complete(request, model="m"))
    span = only_span(spans)
    attrs = attrs_of(span)
    assert span.name == "text_completion m"
    assert attrs["gen_ai.operation.name"] == "text_completion"
    assert attrs["gen_ai.request.max_tokens"] == 2
    assert attrs["gen_ai.response.model"] == "m-v2"
    assert attrs["gen_ai.response.finish_reasons"] == ("maximum_tokens",)
    assert attrs["gen_ai.usage.input_tokens"] == 5
    assert attrs["gen_ai.usage.output_tokens"] == 2
    assert_no_secrets(span)


@pytest.mark.parametrize("mode", MODES)
def test_embeddings_span(mode: str, server: ScriptedServer, spans: InMemorySpanExporter) -> None:
    server.add(Reply.json(EMBEDDINGS_REPLY))
    before = total("gen_ai.client.token.usage", **{"gen_ai.operation.name": "embeddings"})
    run_client(mode, server.url, lambda c: c.embeddings(EmbeddingV2Request(input="x"), model="e"))
    span = only_span(spans)
    attrs = attrs_of(span)
    assert span.name == "embeddings e"
    assert attrs["gen_ai.operation.name"] == "embeddings"
    assert attrs["gen_ai.response.model"] == "e-v1"
    assert attrs["gen_ai.usage.input_tokens"] == 7
    assert "gen_ai.usage.output_tokens" not in attrs
    assert total("gen_ai.client.token.usage", **{"gen_ai.operation.name": "embeddings"}) == (
        before + 7
    )


@pytest.mark.parametrize("mode", MODES)
def test_trace_context_and_baggage_reach_the_server(
    mode: str, server: ScriptedServer, spans: InMemorySpanExporter
) -> None:
    server.add(Reply.json(CHAT_REPLY))
    tracer = trace.get_tracer("test")
    token = context.attach(baggage.set_baggage("tenant", "acme"))
    try:
        with tracer.start_as_current_span("outer") as outer:
            run_client(mode, server.url, lambda c: c.chat(chat_request(), model="m"))
    finally:
        context.detach(token)
    chat, parent = spans.get_finished_spans()
    assert parent is not None and chat.parent is not None
    assert chat.parent.span_id == outer.get_span_context().span_id
    assert chat.context.trace_id == outer.get_span_context().trace_id
    (received,) = server.received
    assert received.headers["traceparent"] == traceparent_of(chat)
    assert received.headers["baggage"] == "tenant=acme"


@pytest.mark.parametrize("mode", MODES)
def test_tracestate_of_a_remote_parent_reaches_the_server(
    mode: str, server: ScriptedServer, spans: InMemorySpanExporter
) -> None:
    server.add(Reply.json(CHAT_REPLY))
    remote = trace.SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
        trace_state=trace.TraceState([("vendor", "v1")]),
    )
    token = context.attach(trace.set_span_in_context(trace.NonRecordingSpan(remote)))
    try:
        run_client(mode, server.url, lambda c: c.chat(chat_request(), model="m"))
    finally:
        context.detach(token)
    span = only_span(spans)
    assert span.context.trace_id == remote.trace_id
    (received,) = server.received
    assert received.headers["traceparent"] == traceparent_of(span)
    assert received.headers["tracestate"] == "vendor=v1"


class _TenantPropagator:
    """An application's own propagator: one header of its own, no W3C headers."""

    fields = frozenset({"x-tenant-trace"})

    def inject(self, carrier: Any, context: Any = None, setter: Any = None) -> None:
        span_context = trace.get_current_span(context).get_span_context()
        carrier["x-tenant-trace"] = f"{span_context.trace_id:x}"

    def extract(self, carrier: Any, context: Any = None, getter: Any = None) -> Any:
        return context


@pytest.mark.parametrize("mode", MODES)
def test_the_applications_own_propagators_are_used(
    mode: str, server: ScriptedServer, spans: InMemorySpanExporter
) -> None:
    from opentelemetry import propagate
    from opentelemetry.propagators.composite import CompositePropagator
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    default = propagate.get_global_textmap()
    server.add(Reply.json(CHAT_REPLY), Reply.json(CHAT_REPLY))
    try:
        propagate.set_global_textmap(_TenantPropagator())  # type: ignore[arg-type]
        run_client(mode, server.url, lambda c: c.chat(chat_request(), model="m"))
        # the default's parts in another order: baggage would be written first
        propagate.set_global_textmap(
            CompositePropagator([TraceContextTextMapPropagator(), _TenantPropagator()])  # type: ignore[list-item]
        )
        run_client(mode, server.url, lambda c: c.chat(chat_request(), model="m"))
    finally:
        propagate.set_global_textmap(default)
    first, second = spans.get_finished_spans()
    own, both = server.received
    assert own.headers["x-tenant-trace"] == f"{first.context.trace_id:x}"
    assert "traceparent" not in own.headers and "baggage" not in own.headers
    assert both.headers["x-tenant-trace"] == f"{second.context.trace_id:x}"
    assert both.headers["traceparent"] == traceparent_of(second)


@pytest.mark.parametrize(
    "flags, state, bag",
    [
        (1, [], None),
        (0, [("vendor", "v1"), ("other", "x=y")], None),
        (1, [("vendor", "v1")], {"tenant": "acme", "user": "a b;c"}),
        (None, [], {"tenant": "acme"}),  # no span, baggage only
        (None, [], None),  # nothing at all
    ],
)
def test_trace_headers_are_what_opentelemetrys_propagators_write(
    flags: int | None, state: list[tuple[str, str]], bag: dict[str, str] | None
) -> None:
    from opentelemetry import propagate

    ctx = context.get_current()
    if flags is not None:
        remote = trace.SpanContext(
            0x0AF7651916CD43DD8448EB211C80319C,
            0x00AD6B7169203331,
            is_remote=True,
            trace_flags=trace.TraceFlags(flags),
            trace_state=trace.TraceState(state),
        )
        ctx = trace.set_span_in_context(trace.NonRecordingSpan(remote), ctx)
    for key, value in (bag or {}).items():
        ctx = baggage.set_baggage(key, value, ctx)
    expected: dict[str, str] = {}
    propagate.inject(expected, ctx)
    ours: dict[str, str] = {}
    token = context.attach(ctx)
    try:
        _tracing.on_attempt(ours, 0)
    finally:
        context.detach(token)
    assert ours == expected
    assert bool(ours) == (flags is not None or bag is not None)


@pytest.mark.parametrize("mode", MODES)
def test_batch_semantic_embed_makes_a_span_per_batch_in_the_callers_trace(
    mode: str, server: ScriptedServer, spans: InMemorySpanExporter
) -> None:
    answer = {"model_version": "v", "embeddings": [[0.5]], "num_tokens_prompt_total": 2}
    server.add(*[Reply.json(answer)] * 3)
    request = BatchSemanticEmbeddingRequest(
        prompts=[Prompt.from_text(t) for t in ("a", "b", "c")],
        representation=SemanticRepresentation.Symmetric,
    )
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("outer") as outer:
        run_client(
            mode,
            server.url,
            lambda c: c.batch_semantic_embed(
                request, model="e", num_concurrent_requests=3, batch_size=1
            ),
        )
    batches = [s for s in spans.get_finished_spans() if s.name != "outer"]
    assert [s.name for s in batches] == ["embeddings e"] * 3
    for span in batches:
        assert span.parent is not None
        assert span.parent.span_id == outer.get_span_context().span_id
    sent = sorted(r.headers.get("traceparent") or "" for r in server.received)
    assert sent == sorted(traceparent_of(s) for s in batches)  # threads carry the context


# ---------------------------------------------------------------- streams


def stream_of(client: Any, request: ChatRequest | None = None) -> Any:
    request = request or chat_request(stream_options=StreamOptions(include_usage=True))
    return client.chat_with_streaming(request, model="m")


@pytest.mark.parametrize("mode", MODES)
def test_streamed_chat_span_ends_when_the_stream_completes(
    mode: str, server: ScriptedServer, spans: InMemorySpanExporter
) -> None:
    server.add(Reply(503), stream_reply(chat_events(3), pieces=4))
    before = count("gen_ai.client.operation.time_to_first_chunk")
    unfinished: list[int] = []

    def consume(c: Any) -> Any:
        stream = stream_of(c)
        if mode == "sync":
            for _item in stream:
                unfinished.append(len(spans.get_finished_spans()))
            return stream.get_final_response()

        async def run() -> Any:
            async for _item in stream:
                unfinished.append(len(spans.get_finished_spans()))
            return await stream.get_final_response()

        return run()

    final = run_client(mode, server.url, consume, total_retries=1)
    assert final.request_id == "req-7"
    assert unfinished and set(unfinished) == {0}  # open while items come
    span = only_span(spans)
    attrs = attrs_of(span)
    assert span.name == "chat m"
    assert attrs["aleph_alpha.stream"] is True
    assert attrs["gen_ai.response.id"] == "s-1"
    assert attrs["gen_ai.response.model"] == "m-v1"
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert attrs["gen_ai.usage.input_tokens"] == 4
    assert attrs["gen_ai.usage.output_tokens"] == 3
    assert attrs["aleph_alpha.request_id"] == "req-7"
    assert attrs["aleph_alpha.attempts"] == 2
    assert attrs["gen_ai.response.time_to_first_chunk"] >= 0
    assert span.status.status_code == trace.StatusCode.UNSET
    assert_no_secrets(span)
    assert [r.headers.get("traceparent") for r in server.received] == [traceparent_of(span)] * 2
    assert count("gen_ai.client.operation.time_to_first_chunk") == before + 1
    assert trace.get_current_span() is trace.INVALID_SPAN


@pytest.mark.parametrize("mode", MODES)
def test_streamed_chat_span_of_a_broken_stream(
    mode: str, server: ScriptedServer, spans: InMemorySpanExporter
) -> None:
    events = chat_events(3)
    server.add(stream_reply(events[:3], done=False))  # ends after two content chunks

    def consume(c: Any) -> Any:
        stream = stream_of(c)
        if mode == "sync":
            return list(stream)

        async def run() -> Any:
            return [item async for item in stream]

        return run()

    with pytest.raises(IncompleteStreamError):
        run_client(mode, server.url, consume)
    span = only_span(spans)
    attrs = attrs_of(span)
    assert attrs["error.type"] == "IncompleteStreamError"
    assert span.status.status_code == trace.StatusCode.ERROR
    assert "gen_ai.response.time_to_first_chunk" in attrs
    assert attrs["gen_ai.response.id"] == "s-1"
    assert "gen_ai.response.finish_reasons" not in attrs


@pytest.mark.parametrize("how", ["close", "with", "gc"])
@pytest.mark.parametrize("mode", MODES)
def test_streamed_chat_span_of_a_stream_closed_early(
    mode: str, how: str, server: ScriptedServer, spans: InMemorySpanExporter
) -> None:
    server.add(stream_reply(chat_events(50), pieces=50, pause=0.01))
    seen: list[int] = []

    def consume(c: Any) -> Any:
        if mode == "sync":
            if how == "with":
                with stream_of(c) as stream:
                    next(stream)
                    next(stream)
            else:
                stream = stream_of(c)
                next(stream)
                next(stream)
                if how == "close":
                    stream.close()
                else:
                    del stream
                    gc.collect()
            seen.append(len(spans.get_finished_spans()))
            return None

        async def run() -> None:
            if how == "with":
                async with stream_of(c) as stream:
                    await stream.__anext__()
                    await stream.__anext__()
            else:
                stream = stream_of(c)
                await stream.__anext__()
                await stream.__anext__()
                if how == "close":
                    await stream.aclose()
                else:
                    del stream
                    gc.collect()
            seen.append(len(spans.get_finished_spans()))

        return run()

    run_client(mode, server.url, consume)
    assert seen == [1]  # ended at close, not later
    span = only_span(spans)
    attrs = attrs_of(span)
    assert attrs["aleph_alpha.stream.closed_early"] is True
    assert span.status.status_code == trace.StatusCode.UNSET
    assert "error.type" not in attrs
    assert "gen_ai.response.time_to_first_chunk" in attrs
    assert "gen_ai.usage.input_tokens" not in attrs  # the usage chunk never came


@pytest.mark.parametrize("mode", MODES)
def test_a_stream_never_read_makes_no_span(
    mode: str, server: ScriptedServer, spans: InMemorySpanExporter
) -> None:
    def consume(c: Any) -> Any:
        stream = stream_of(c)
        if mode == "sync":
            stream.close()
            return None
        return stream.aclose()

    run_client(mode, server.url, consume)
    assert spans.get_finished_spans() == ()
    assert server.received == []


@pytest.mark.parametrize("mode", MODES)
def test_streamed_completion_span(
    mode: str, server: ScriptedServer, spans: InMemorySpanExporter
) -> None:
    events = [
        {"type": "stream_chunk", "index": 0, "completion": "ab"},
        {"type": "stream_summary", "index": 0, "model_version": "m-v2", "finish_reason": "stop"},
        {"type": "completion_summary", "num_tokens_prompt_total": 2, "num_tokens_generated": 1},
    ]
    server.add(stream_reply(events, done=False))
    request = CompletionRequest(prompt=Prompt.from_text("x"), maximum_tokens=3)

    def consume(c: Any) -> Any:
        stream = c.complete_with_streaming(request, model="m")
        return stream.get_final_response()

    run_client(mode, server.url, consume)
    span = only_span(spans)
    attrs = attrs_of(span)
    assert span.name == "text_completion m"
    assert attrs["gen_ai.response.model"] == "m-v2"
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert attrs["gen_ai.usage.input_tokens"] == 2
    assert attrs["gen_ai.usage.output_tokens"] == 1


# ---------------------------------------------------------------- content capture (opt-in)


@pytest.mark.parametrize("switch", ["env", "api"])
@pytest.mark.parametrize("mode", MODES)
def test_content_is_captured_only_when_opted_in(
    mode: str,
    switch: str,
    server: ScriptedServer,
    spans: InMemorySpanExporter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if switch == "env":
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    else:
        _tracing.set_capture_content(True)
    server.add(Reply.json(CHAT_REPLY), stream_reply(chat_events(2)))
    run_client(mode, server.url, lambda c: c.chat(chat_request(), model="m"))

    def consume(c: Any) -> Any:
        stream = stream_of(c)
        return stream.get_final_response()

    run_client(mode, server.url, consume)
    plain, streamed = spans.get_finished_spans()
    for span in (plain, streamed):
        attrs = attrs_of(span)
        assert json.loads(str(attrs["gen_ai.input.messages"])) == [
            {"role": "user", "parts": [{"type": "text", "content": "secret prompt"}]}
        ]
        assert TOKEN not in repr(attrs)
    assert json.loads(str(attrs_of(plain)["gen_ai.output.messages"])) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "secret answer"}],
            "finish_reason": "stop",
        }
    ]
    output = json.loads(str(attrs_of(streamed)["gen_ai.output.messages"]))
    assert output[0]["parts"] == [{"type": "text", "content": "tok0 tok1 "}]
    if switch == "api":  # the programmatic switch wins over the environment
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
        _tracing.set_capture_content(False)
        spans.clear()
        server.add(Reply.json(CHAT_REPLY))
        run_client(mode, server.url, lambda c: c.chat(chat_request(), model="m"))
        assert_no_secrets(only_span(spans))


def test_set_capture_content_checks_its_argument() -> None:
    from aleph_alpha_client import InvalidArgumentTypeError

    with pytest.raises(InvalidArgumentTypeError, match="enabled"):
        _tracing.set_capture_content("yes")  # type: ignore[arg-type]


# ---------------------------------------------------------------- raw responses, request ids


@pytest.mark.parametrize("mode", MODES)
def test_raw_response_of_chat(mode: str, server: ScriptedServer) -> None:
    server.add(Reply(503), Reply.json(CHAT_REPLY, headers={"X-Request-Id": "req-2"}))
    raw = run_client(
        mode, server.url, lambda c: c.with_raw_response.chat(chat_request(), "m"), total_retries=1
    )
    assert raw.status_code == 200
    assert raw.request_id == "req-2"
    assert raw.headers["content-type"] == "application/json"
    assert raw.attempts == 2
    answer = raw.parse()
    assert isinstance(answer, ChatResponse)
    assert answer.request_id == "req-2"
    assert answer == ChatResponse.from_json(CHAT_REPLY)  # the request id is not compared
    assert "req-2" not in repr(answer)
    assert ChatResponse.from_json(CHAT_REPLY).request_id is None


@pytest.mark.parametrize("mode", MODES)
def test_raw_response_of_a_stream(mode: str, server: ScriptedServer) -> None:
    server.add(stream_reply(chat_events(2)))
    collected: list[Any] = []

    def call(c: Any) -> Any:
        if mode == "sync":
            raw = c.with_raw_response.chat_with_streaming(chat_request(), "m")
            collected.append((raw.status_code, raw.request_id))
            collected.extend(raw.parse())
            return raw.parse().get_final_response()

        async def run() -> Any:
            raw = await c.with_raw_response.chat_with_streaming(chat_request(), "m")
            collected.append((raw.status_code, raw.request_id))
            collected.extend([item async for item in raw.parse()])
            return await raw.parse().get_final_response()

        return run()

    final = run_client(mode, server.url, call)
    assert collected[0] == (200, "req-7")
    chunks = [item for item in collected[1:] if isinstance(item, ChatStreamChunk)]
    assert [chunk.content for chunk in chunks] == ["", "tok0 ", "tok1 "]  # nothing lost
    assert final.request_id == "req-7"


@pytest.mark.parametrize("mode", MODES)
def test_raw_response_of_other_methods(mode: str, server: ScriptedServer) -> None:
    server.add(
        Reply.json(EMBEDDINGS_REPLY, headers={"request-id": "req-3"}),
        Reply(200, {"Content-Type": "text/plain"}, [b"1.2.3"]),
    )

    def call(c: Any) -> Any:
        if mode == "sync":
            return (
                c.with_raw_response.embeddings(EmbeddingV2Request(input="x"), "e"),
                c.with_raw_response.get_version(),
            )

        async def run() -> Any:
            return (
                await c.with_raw_response.embeddings(EmbeddingV2Request(input="x"), "e"),
                await c.with_raw_response.get_version(),
            )

        return run()

    embeddings, version = run_client(mode, server.url, call)
    assert embeddings.request_id == "req-3" and embeddings.parse().request_id == "req-3"
    assert version.parse() == "1.2.3" and version.request_id is None
    assert version.status_code == 200


def test_with_raw_response_names_only_api_methods(server: ScriptedServer) -> None:
    def call(c: Any) -> None:
        for name in ("close", "_send", "nope", "with_options"):
            with pytest.raises(AttributeError, match=name):
                getattr(c.with_raw_response, name)

    run_client("sync", server.url, call)


# ---------------------------------------------------------------- log lines of a call


@pytest.mark.parametrize("mode", MODES)
def test_log_lines_carry_request_id_and_attempt(
    mode: str, server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.add(
        Reply.json({"error": "busy"}, 503, {"x-request-id": "req-a"}),
        Reply.json(CHAT_REPLY, headers={"x-request-id": "req-b"}),
    )
    with caplog.at_level(logging.DEBUG, logger="aleph_alpha_client"):
        run_client(mode, server.url, lambda c: c.chat(chat_request(), "m"), total_retries=1)
    records = [r for r in caplog.records if r.name == "aleph_alpha_client"]
    assert records
    for record in records:
        assert hasattr(record, "attempt") and hasattr(record, "request_id"), record.getMessage()
        assert record.getMessage().startswith(
            f"[attempt {record.attempt}, request id {record.request_id or '-'}] "
        )
    by_id = {(r.request_id, r.attempt) for r in records}
    assert ("req-a", 1) in by_id and ("req-b", 2) in by_id
    assert all(TOKEN not in r.getMessage() for r in records)


# ---------------------------------------------------------------- without an SDK


def test_without_an_sdk_no_span_and_no_cost() -> None:
    code = (
        "from aleph_alpha_client import _tracing\n"
        "assert _tracing.start('chat/completions', 'm', None, 'http://h/') is None\n"
        "assert _tracing.start_stream('chat/completions', 'm', None) is None\n"
        "headers = {}\n"
        "_tracing.on_attempt(headers, 0)\n"
        "assert headers == {}, headers\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_providers_set_after_the_first_call_are_used() -> None:
    # without a provider the client skips the API's getters; one set later must be seen
    code = (
        "from opentelemetry import metrics, trace\n"
        "from opentelemetry.sdk.metrics import MeterProvider\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from aleph_alpha_client import _tracing\n"
        "assert _tracing.start('chat/completions', 'm', None, 'http://h/') is None\n"
        "metrics.set_meter_provider(MeterProvider())\n"
        "observer = _tracing.start('chat/completions', 'm', None, 'http://h/')\n"
        "assert observer is not None and observer._span is None, 'a meter, no tracer'\n"
        "observer.done(None)\n"
        "trace.set_tracer_provider(TracerProvider())\n"
        "observer = _tracing.start('chat/completions', 'm', None, 'http://h/')\n"
        "assert observer is not None and observer._span.is_recording()\n"
        "observer.done(None)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_tracer_provider_named_by_the_environment_is_used() -> None:
    code = (
        "from aleph_alpha_client import _tracing\n"
        "observer = _tracing.start('chat/completions', 'm', None, 'http://h/')\n"
        "assert observer is not None and observer._span.is_recording()\n"
        "observer.done(None)\n"
    )
    env = {**os.environ, "OTEL_PYTHON_TRACER_PROVIDER": "sdk_tracer_provider"}
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, env=env)


def test_a_patched_getter_or_a_provider_variable_set_later_is_honoured() -> None:
    # what tests do: patch the API's getter, or monkeypatch the environment, after the client
    # was used once without a provider
    code = (
        "import os\n"
        "from unittest import mock\n"
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from aleph_alpha_client import _tracing\n"
        "assert _tracing.start('chat/completions', 'm', None, 'http://h/') is None\n"
        "with mock.patch('opentelemetry.trace.get_tracer_provider', "
        "return_value=TracerProvider()):\n"
        "    observer = _tracing.start('chat/completions', 'm', None, 'http://h/')\n"
        "    assert observer is not None and observer._span.is_recording(), 'patched getter'\n"
        "    observer.done(None)\n"
        "assert _tracing.start('chat/completions', 'm', None, 'http://h/') is None\n"
        "os.environ['OTEL_PYTHON_TRACER_PROVIDER'] = 'sdk_tracer_provider'\n"
        "observer = _tracing.start('chat/completions', 'm', None, 'http://h/')\n"
        "assert observer is not None and observer._span.is_recording(), 'variable'\n"
        "observer.done(None)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_without_opentelemetry_nothing_is_imported() -> None:
    code = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None\n"
        "from aleph_alpha_client import _tracing, Client\n"
        "assert _tracing.start('chat/completions', 'm', None) is None\n"
        "_tracing.on_attempt({}, 0)\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry.')]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("mode", MODES)
def test_suppress_instrumentation_makes_no_span(
    mode: str, server: ScriptedServer, spans: InMemorySpanExporter
) -> None:
    key = getattr(context, "_SUPPRESS_INSTRUMENTATION_KEY", None)
    if key is None:
        pytest.skip("this opentelemetry-api has no suppress-instrumentation key")
    server.add(Reply.json(CHAT_REPLY))
    token = context.attach(context.set_value(key, True))
    try:
        run_client(mode, server.url, lambda c: c.chat(chat_request(), model="m"))
    finally:
        context.detach(token)
    assert spans.get_finished_spans() == ()


# ---------------------------------------------------------------- OpenLLMetry side by side

OPENLLMETRY = """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.instrumentation.alephalpha import AlephAlphaInstrumentor
from aleph_alpha_client import ChatRequest, Client, CompletionRequest, Message, Prompt, Role
from aleph_alpha_client.emulator import Emulator

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
AlephAlphaInstrumentor().instrument()
model = "llama-3.1-8b-instruct"
with Emulator() as emu, Client("t", host=emu.url) as client:
    answer = client.complete(CompletionRequest(prompt=Prompt.from_text("Hi"), maximum_tokens=3), model)
    assert answer.completions[0].completion
    names = sorted(s.name for s in exporter.get_finished_spans())
    assert names == ["alephalpha.completion", "text_completion " + model], names
    assert all(s.parent is None for s in exporter.get_finished_spans())  # siblings
    exporter.clear()
    client.chat(ChatRequest(messages=[Message(role=Role.User, content="Hi")], model=model), model)
    assert [s.name for s in exporter.get_finished_spans()] == ["chat " + model]
AlephAlphaInstrumentor().uninstrument()
print("ok")
"""


def test_openllmetry_instrumentation_side_by_side() -> None:
    pytest.importorskip("opentelemetry.instrumentation.alephalpha")
    done = subprocess.run(
        [sys.executable, "-c", OPENLLMETRY], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")


@pytest.mark.parametrize("mode", MODES)
def test_a_sampled_out_call_still_propagates_its_context(
    mode: str, server: ScriptedServer, spans: InMemorySpanExporter
) -> None:
    server.add(Reply(503), Reply.json(CHAT_REPLY))
    tracer = trace.get_tracer("test")
    parent = trace.NonRecordingSpan(
        trace.SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=trace.TraceFlags(0))
    )
    with trace.use_span(parent):
        assert not tracer.start_span("probe").is_recording()  # the SDK's parent-based sampler
        run_client(mode, server.url, lambda c: c.chat(chat_request(), model="m"), total_retries=1)
    assert spans.get_finished_spans() == ()
    headers = [r.headers["traceparent"] for r in server.received]
    assert len(headers) == 2 and all(h.startswith(f"00-{0xABC:032x}-") for h in headers)
    assert all(h.endswith("-00") for h in headers)


# ---------------------------------------------------------------- found by a walk through the docs


@pytest.mark.parametrize("mode", MODES)
def test_a_failed_call_and_a_broken_stream_carry_the_request_id(
    mode: str, server: ScriptedServer, spans: InMemorySpanExporter
) -> None:
    server.add(Reply.json({"error": "bad"}, status=400, headers={"x-request-id": "req-400"}))
    server.add(stream_reply(chat_events(3)[:3], done=False))  # x-request-id req-7, cut short

    def calls(c: Any) -> Any:
        def read(stream: Any) -> Any:
            if mode == "sync":
                return list(stream)

            async def run() -> Any:
                return [item async for item in stream]

            return run()

        async def both() -> None:
            with pytest.raises(Exception, match="400"):
                await c.chat(chat_request(), model="m")
            with pytest.raises(IncompleteStreamError):
                await read(stream_of(c))

        if mode == "async":
            return both()
        with pytest.raises(Exception, match="400"):
            c.chat(chat_request(), model="m")
        with pytest.raises(IncompleteStreamError):
            read(stream_of(c))
        return None

    run_client(mode, server.url, calls)
    failed, broken = spans.get_finished_spans()
    assert attrs_of(failed)["aleph_alpha.request_id"] == "req-400"
    assert attrs_of(broken)["aleph_alpha.request_id"] == "req-7"
    assert attrs_of(broken)["error.type"] == "IncompleteStreamError"


@pytest.mark.parametrize("mode", MODES)
def test_a_stream_read_later_belongs_to_the_span_it_was_made_in(
    mode: str, server: ScriptedServer, spans: InMemorySpanExporter
) -> None:
    server.add(stream_reply(chat_events(2)))
    tracer = trace.get_tracer("test")

    def calls(c: Any) -> Any:
        with tracer.start_as_current_span("handler"):
            stream = stream_of(c)  # read after the handler's span ended, as a framework does
        if mode == "sync":
            return list(stream)

        async def run() -> Any:
            return [item async for item in stream]

        return run()

    run_client(mode, server.url, calls)
    handler = next(s for s in spans.get_finished_spans() if s.name == "handler")
    chat = next(s for s in spans.get_finished_spans() if s.name == "chat m")
    assert chat.parent is not None and chat.parent.span_id == handler.context.span_id
    assert server.received[0].headers["traceparent"] == traceparent_of(chat)


def test_a_cancelled_stream_reader_closes_the_span_without_an_error(
    server: ScriptedServer, spans: InMemorySpanExporter
) -> None:
    import asyncio

    server.add(stream_reply(chat_events(3), pieces=5, pause=5.0))
    got: list[Any] = []

    async def main() -> None:
        async with AsyncClient(TOKEN, host=server.url, total_retries=0) as c:
            stream = stream_of(c)

            async def read() -> None:
                async for item in stream:
                    got.append(item)

            task = asyncio.ensure_future(read())
            while not got:
                await asyncio.sleep(0.01)
            task.cancel()  # an ASGI server does this when the browser goes away
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(main())
    span = only_span(spans)
    attrs = attrs_of(span)
    assert attrs["aleph_alpha.stream.closed_early"] is True
    assert "error.type" not in attrs
    assert span.status.status_code == trace.StatusCode.UNSET
    assert attrs["aleph_alpha.request_id"] == "req-7"


@pytest.mark.parametrize("mode", MODES)
def test_every_api_call_has_a_span_with_its_server_and_model(
    mode: str, spans: InMemorySpanExporter
) -> None:
    from aleph_alpha_client.emulator import Emulator
    from aleph_alpha_client.translation import TranslationRequest

    model = "llama-3.1-8b-instruct"

    def calls(c: Any) -> Any:
        steps = [
            lambda: c.get_version(),
            lambda: c.models(),
            lambda: c.model_settings(),
            lambda: c.translate(
                TranslationRequest(model="pharia-1-mt", source="Hallo", target_language="en")
            ),
            lambda: c.transcribe(b"RIFF....WAVEfmt ", model="whisper"),
        ]
        if mode == "sync":
            for step in steps:
                try:
                    step()
                except Exception:  # the span is what counts here, not the answer
                    pass
            return None

        async def run() -> None:
            for step in steps:
                try:
                    await step()
                except Exception:
                    pass

        return run()

    with Emulator() as emu:
        run_client(mode, emu.url, calls)
        port = int(emu.url.rsplit(":", 1)[1].strip("/"))
    by_name = {s.name: attrs_of(s) for s in spans.get_finished_spans()}
    assert set(by_name) == {
        "version",
        "models_available",
        "model-settings",
        "translate pharia-1-mt",
        "transcribe whisper",
    }, set(by_name)
    for attrs in by_name.values():
        assert attrs["server.address"] == "127.0.0.1" and attrs["server.port"] == port
    assert by_name["translate pharia-1-mt"]["gen_ai.request.model"] == "pharia-1-mt"
    del model


@pytest.mark.parametrize("mode", MODES)
def test_suppressed_instrumentation_sends_no_trace_headers(
    mode: str, server: ScriptedServer, spans: InMemorySpanExporter
) -> None:
    key = getattr(context, "_SUPPRESS_INSTRUMENTATION_KEY", None)
    if key is None:
        pytest.skip("this opentelemetry-api has no suppress-instrumentation key")
    server.add(Reply.json(CHAT_REPLY))
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("outer"):
        token = context.attach(context.set_value(key, True))
        try:
            run_client(mode, server.url, lambda c: c.chat(chat_request(), model="m"))
        finally:
            context.detach(token)
    assert "traceparent" not in server.received[0].headers
    assert [s.name for s in spans.get_finished_spans()] == ["outer"]


def test_max_completion_tokens_is_the_max_tokens_attribute(
    server: ScriptedServer, spans: InMemorySpanExporter
) -> None:
    server.add(Reply.json(CHAT_REPLY))
    run_client("sync", server.url, lambda c: c.chat(chat_request(max_completion_tokens=7), "m"))
    assert attrs_of(only_span(spans))["gen_ai.request.max_tokens"] == 7


def test_captured_tool_calls_have_no_empty_text_part(
    server: ScriptedServer, spans: InMemorySpanExporter
) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    reply = json.loads(json.dumps(CHAT_REPLY))
    reply["choices"][0]["message"] = {"role": "assistant", "content": "", "tool_calls": [call]}
    reply["choices"][0]["finish_reason"] = "tool_calls"
    server.add(Reply.json(reply))
    _tracing.set_capture_content(True)
    run_client("sync", server.url, lambda c: c.chat(chat_request(), model="m"))
    (message,) = json.loads(attrs_of(only_span(spans))["gen_ai.output.messages"])
    assert [part["type"] for part in message["parts"]] == ["tool_call"]


@pytest.mark.parametrize("mode", MODES)
def test_every_api_error_after_an_answer_head_names_its_request_id(
    mode: str, server: ScriptedServer
) -> None:
    from aleph_alpha_client import APIConnectionError, APIResponseValidationError

    server.add(stream_reply(chat_events(3)[:3], done=False))  # x-request-id req-7, cut short
    server.add(
        Reply(200, {"Content-Type": "application/json", "x-request-id": "req-j"}, [b"{not json"])
    )
    errors: list[Any] = []

    def calls(c: Any) -> Any:
        async def run() -> None:
            try:
                async for _ in stream_of(c):
                    pass
            except IncompleteStreamError as err:
                errors.append(err)
            try:
                await c.chat(chat_request(), model="m")
            except APIResponseValidationError as err:
                errors.append(err)

        if mode == "async":
            return run()
        try:
            list(stream_of(c))
        except IncompleteStreamError as err:
            errors.append(err)
        try:
            c.chat(chat_request(), model="m")
        except APIResponseValidationError as err:
            errors.append(err)
        return None

    run_client(mode, server.url, calls)
    broken, not_json = errors
    assert broken.request_id == "req-7" and str(broken).endswith(" request_id=req-7")
    assert not_json.request_id == "req-j" and "request_id=req-j" in str(not_json)
    refused = APIConnectionError("connection refused")  # no answer: no id, no AttributeError
    assert refused.request_id is None and str(refused) == "connection refused"


@pytest.mark.parametrize("mode", MODES)
def test_headers_are_found_in_any_case(mode: str, server: ScriptedServer) -> None:
    import pickle

    from aleph_alpha_client import BadRequestError

    server.add(Reply.json(CHAT_REPLY, headers={"X-Request-Id": "req-2"}))
    server.add(stream_reply(chat_events(2)))
    server.add(Reply.json({"error": "no"}, status=400, headers={"Retry-After": "3"}))
    seen: dict[str, Any] = {}

    def calls(c: Any) -> Any:
        async def run() -> None:
            seen["raw"] = await c.with_raw_response.chat(chat_request(), "m")
            stream = stream_of(c)
            async for _ in stream:
                pass
            seen["stream"] = stream
            try:
                await c.chat(chat_request(), "m")
            except BadRequestError as err:
                seen["error"] = err

        if mode == "async":
            return run()
        seen["raw"] = c.with_raw_response.chat(chat_request(), "m")
        seen["stream"] = stream = stream_of(c)
        list(stream)
        try:
            c.chat(chat_request(), "m")
        except BadRequestError as err:
            seen["error"] = err
        return None

    run_client(mode, server.url, calls)
    raw, stream, error = seen["raw"], seen["stream"], seen["error"]
    assert raw.headers["Content-Type"] == raw.headers["content-type"] == "application/json"
    assert "X-REQUEST-ID" in raw.headers and raw.headers.get("x-request-id") == "req-2"
    assert "content-type" in list(raw.headers)  # iterated in lower case
    assert stream.headers["Content-Type"] == "text/event-stream"
    assert stream.headers["X-Request-Id"] == stream.request_id == "req-7"
    assert error.headers["Retry-After"] == "3" and error.headers == {**error.headers}
    again = pickle.loads(pickle.dumps(error))
    assert again.headers["retry-after"] == "3" and again.status_code == 400
