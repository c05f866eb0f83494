"""A captured trace as the OpenTelemetry SDK's finished spans, for the SDK's own exporters (the gRPC
one) and the tests; the HTTP exporter encodes captured traces directly (`wire.py`). The attributes
come from the same `*_attributes` functions of `spans.py`, so both paths export the same spans.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from relaygate.observe.tracing.spans import (
    AUTH_SPAN,
    LIMITS_SPAN,
    CapturedTrace,
    attempt_attributes,
    attempt_failed,
    attempt_name,
    attempt_request_attributes,
    limits_attributes,
    root_attributes,
    root_name,
    root_request_attributes,
)

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_ERROR = Status(StatusCode.ERROR)
_UNSET = Status(StatusCode.UNSET)


def readable_spans(
    captured: CapturedTrace, span_id: Callable[[], int], resource: Resource, scope: InstrumentationScope
) -> list[ReadableSpan]:
    """The trace as the SDK's finished spans (the gRPC exporter's input), span ids drawn from `span_id`
    in the order wire.py draws them: root, auth, limits, features, attempts."""
    trace_id = int(captured.trace_id, 16)
    parent = None
    if captured.parent is not None:
        parent = SpanContext(trace_id, int(captured.parent, 16), True, _SAMPLED)
    root = SpanContext(trace_id, span_id(), False, _SAMPLED, captured.trace_state)

    def span(
        name: str, context: SpanContext, parent: SpanContext | None, attributes: dict[str, Any], **options: Any
    ) -> ReadableSpan:
        return ReadableSpan(name, context, parent, resource, attributes, instrumentation_scope=scope, **options)

    def child(given: int | None = None) -> SpanContext:
        return SpanContext(trace_id, given or span_id(), False, _SAMPLED, captured.trace_state)

    out = [
        span(
            root_name(captured.root),
            root,
            parent,
            {**root_attributes(captured.root), **root_request_attributes(captured)},
            kind=SpanKind.SERVER,
            status=_ERROR if captured.root[2] >= 500 else _UNSET,
            start_time=captured.start,
            end_time=captured.end,
        )
    ]
    if captured.auth_end is not None:
        out.append(span(AUTH_SPAN, child(), root, {}, start_time=captured.start, end_time=captured.auth_end))
    if captured.limits is not None:
        shape, start, end = captured.limits
        out.append(span(LIMITS_SPAN, child(), root, limits_attributes(shape), start_time=start, end_time=end))
    for feature in captured.features:
        out.append(
            span(
                feature.name,
                child(feature.span_id),
                root,
                dict(feature.attributes),
                kind=SpanKind.CLIENT if feature.client else SpanKind.INTERNAL,
                status=_ERROR if feature.failed else _UNSET,
                start_time=feature.start,
                end_time=feature.end,
            )
        )
    for attempt in captured.attempts:
        out.append(
            span(
                attempt_name(attempt.shape),
                child(),
                root,
                {**attempt_attributes(attempt.shape), **attempt_request_attributes(attempt)},
                kind=SpanKind.CLIENT,
                status=_ERROR if attempt_failed(attempt.shape) else _UNSET,
                start_time=attempt.start,
                end_time=attempt.end,
            )
        )
    return out
