"""Spans and W3C trace context of API calls, with the OpenTelemetry SDK's in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tests.conftest import TOKEN, run_client
from tests.scripted_server import Reply, ScriptedServer

from aleph_alpha_client import ChatRequest, Message, Role

_EXPORTER = InMemorySpanExporter()
_PROVIDER = TracerProvider()
_PROVIDER.add_span_processor(SimpleSpanProcessor(_EXPORTER))
trace.set_tracer_provider(_PROVIDER)

CHAT_REPLY = {
    "id": "chat-1",
    "model": "m-v1",
    "created": 1,
    "object": "chat.completion",
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": "hi"},
        }
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_chat_span_and_traceparent(
    mode: str, server: ScriptedServer, spans: InMemorySpanExporter
) -> None:
    server.add(Reply(503), Reply.json(CHAT_REPLY))
    request = ChatRequest(
        messages=[Message(role=Role.User, content="secret prompt")], model="m", temperature=0.5
    )
    run_client(mode, server.url, lambda c: c.chat(request, model="m"), total_retries=2)
    (span,) = spans.get_finished_spans()
    attrs = dict(span.attributes or {})
    assert span.name == "chat m"
    assert span.kind == trace.SpanKind.CLIENT
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "aleph_alpha"
    assert attrs["gen_ai.request.model"] == "m"
    assert attrs["gen_ai.request.temperature"] == 0.5
    assert attrs["gen_ai.response.id"] == "chat-1"
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert attrs["gen_ai.usage.input_tokens"] == 3
    assert attrs["gen_ai.usage.output_tokens"] == 1
    assert attrs["aleph_alpha.attempts"] == 2
    assert [e.name for e in span.events] == ["gen_ai.client.attempt"] * 2
    text = repr(attrs) + repr([e.attributes for e in span.events])
    assert TOKEN not in text and "secret prompt" not in text
    ctx = span.get_span_context()
    expected = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
    assert [r.headers.get("traceparent") for r in server.received] == [expected] * 2


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_failed_call_sets_error_type(
    mode: str, server: ScriptedServer, spans: InMemorySpanExporter
) -> None:
    server.add(Reply.json({"error": "bad"}, status=400))
    request = ChatRequest(messages=[Message(role=Role.User, content="x")], model="m")
    with pytest.raises(Exception) as info:
        run_client(mode, server.url, lambda c: c.chat(request, model="m"))
    (span,) = spans.get_finished_spans()
    assert (span.attributes or {})["error.type"] == type(info.value).__name__
    assert span.status.status_code == trace.StatusCode.ERROR
    assert trace.get_current_span() is trace.INVALID_SPAN
