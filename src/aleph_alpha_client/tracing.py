"""OpenTelemetry switches of the client (see docs/tracing.md).

Spans, metrics and W3C trace context need only ``opentelemetry-api`` (extra ``otel``) and a
configured SDK; nothing here is required for them. Prompt and completion content is recorded
on spans only when opted in, by ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`` or
:func:`set_capture_content`.
"""

from __future__ import annotations

from ._tracing import CAPTURE_ENV, capture_content_enabled, set_capture_content

__all__ = ["CAPTURE_ENV", "capture_content_enabled", "set_capture_content"]
