"""The hand-written OTLP encoder writes what the official protobuf messages (and the SDK's encoder) say."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from relaygate.observe.tracing.wire import encode_request

RESOURCE = Resource.create({"service.name": "relaygate", "deployment.environment": "test"})
SCOPE = InstrumentationScope("relaygate")
TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
ATTRIBUTES = {
    "text": "plain",
    "long": "é" * 300,  # lengths over 127 bytes take a two-byte varint
    "yes": True,
    "no": False,
    "count": 123456789012,
    "negative": -5,
    "ratio": 0.25,
    "reasons": ["stop", "length"],
    "numbers": [1, 2, 3],
}


def spans() -> list[ReadableSpan]:
    root = SpanContext(TRACE, 0x1, False, TraceFlags(1), TraceState([("vendor", "x")]))
    remote = SpanContext(TRACE, 0xABCDEF, True, TraceFlags(1))
    child = SpanContext(TRACE, 0xFFFFFFFFFFFFFFFF, False, TraceFlags(1))
    return [
        ReadableSpan(
            "POST /x",
            root,
            remote,
            RESOURCE,
            {"a": "b"},
            kind=SpanKind.SERVER,
            start_time=1,
            end_time=2**63,
            instrumentation_scope=SCOPE,
        ),
        ReadableSpan(
            "chat m",
            child,
            root,
            RESOURCE,
            ATTRIBUTES,
            kind=SpanKind.CLIENT,
            status=Status(StatusCode.ERROR),
            start_time=10,
            end_time=20,
            instrumentation_scope=SCOPE,
        ),
        ReadableSpan(
            "relaygate.auth", child, root, RESOURCE, {}, start_time=5, end_time=6, instrumentation_scope=SCOPE
        ),
    ]


def test_decodes_as_the_sdk_encoder_encodes() -> None:
    ours = ExportTraceServiceRequest()
    ours.ParseFromString(encode_request(RESOURCE, SCOPE, spans()))
    theirs = encode_spans(spans())
    assert ours.resource_spans[0].resource == theirs.resource_spans[0].resource
    assert ours.resource_spans[0].scope_spans[0].scope == theirs.resource_spans[0].scope_spans[0].scope
    for mine, sdk in zip(
        ours.resource_spans[0].scope_spans[0].spans, theirs.resource_spans[0].scope_spans[0].spans, strict=True
    ):
        for span in (mine, sdk):
            span.ClearField("flags")  # the SDK leaves the W3C flag bits out; we write them (next test)
            if span.status.code == 0:
                span.ClearField("status")  # an unset status: the SDK writes an empty one, we none
        assert mine == sdk


def test_flags_say_whether_the_parent_is_remote() -> None:
    decoded = ExportTraceServiceRequest()
    decoded.ParseFromString(encode_request(RESOURCE, SCOPE, spans()))
    root, child, _ = decoded.resource_spans[0].scope_spans[0].spans
    assert root.flags == 0x301 and child.flags == 0x101  # HAS_IS_REMOTE | IS_REMOTE | sampled
