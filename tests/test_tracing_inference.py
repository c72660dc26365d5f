"""Spans of ``transcribe()`` and ``model_settings()`` on both clients, against the emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from aleph_alpha_client import NotFoundError
from aleph_alpha_client.emulator import Emulator
from conftest import run_client

MODES = ["sync", "async"]
_EXPORTER = InMemorySpanExporter()


def _provider() -> TracerProvider:
    """The SDK provider in use (test_tracing.py may have set it: a process has one)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    return provider


_provider().add_span_processor(SimpleSpanProcessor(_EXPORTER))


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


@pytest.mark.parametrize("mode", MODES)
def test_transcribe_has_a_span(emu: Emulator, spans: InMemorySpanExporter, mode: str) -> None:
    audio = b"hello from the tracing test"
    model = "whisper-large-v3-turbo"
    result = run_client(mode, emu.url, lambda c: c.transcribe(audio, model, language="en"))
    assert result.transcription
    (span,) = spans.get_finished_spans()
    attrs = dict(span.attributes or {})
    assert span.name == f"transcribe {model}" and span.kind == trace.SpanKind.CLIENT
    assert attrs["gen_ai.operation.name"] == "transcribe"
    assert attrs["gen_ai.request.model"] == model
    assert attrs["aleph_alpha.attempts"] == 1
    assert "hello" not in str(attrs)  # the content is never recorded


@pytest.mark.parametrize("mode", MODES)
def test_failed_transcribe_span_has_the_error(
    emu: Emulator, spans: InMemorySpanExporter, mode: str
) -> None:
    with pytest.raises(NotFoundError):
        run_client(mode, emu.url, lambda c: c.transcribe(b"x", "no-such-model"))
    (span,) = spans.get_finished_spans()
    assert span.status.status_code == trace.StatusCode.ERROR
    assert dict(span.attributes or {})["error.type"] == "ModelNotFoundError"


@pytest.mark.parametrize("mode", MODES)
def test_model_settings_has_a_span(emu: Emulator, spans: InMemorySpanExporter, mode: str) -> None:
    settings = run_client(mode, emu.url, lambda c: c.model_settings())
    assert settings
    (span,) = spans.get_finished_spans()
    attrs = dict(span.attributes or {})
    assert span.name == "model-settings" and span.kind == trace.SpanKind.CLIENT
    assert attrs["gen_ai.operation.name"] == "model-settings"
    assert "gen_ai.request.model" not in attrs
