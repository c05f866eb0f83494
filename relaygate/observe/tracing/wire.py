"""OTLP protobuf encoding of finished spans, written by hand for speed.

The exporter package's encoder builds a protobuf message object per span, attribute and value: ~70 µs
a span, which at 100% sampling cost a third of a chat request's CPU. The wire format of the few
messages a trace export needs is small and stable (opentelemetry-proto `trace/v1/trace.proto`,
`common/v1/common.proto`, `collector/trace/v1/trace_service.proto`); this writes it directly, and
the tests decode it with the official messages.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import StatusCode

_FIXED64 = struct.Struct("<Q")
_DOUBLE = struct.Struct("<d")
_SMALL = [bytes((i,)) for i in range(128)]
_MASK64 = 0xFFFFFFFFFFFFFFFF
# Encoded `KeyValue`s of pairs that repeat from request to request (method, route, operation, provider,
# model, status...): most attributes of a span are then one dict lookup. Bounded: cleared when full.
_PAIRS: dict[tuple[str, Any], bytes] = {}
# Apart by type: (key, True) and (key, 1) are equal dict keys.
_INT_PAIRS: dict[tuple[str, Any], bytes] = {}
_BOOL_PAIRS: dict[tuple[str, Any], bytes] = {}
_CACHED_INT = 1 << 20
_PAIRS_MAX = 8192
_CACHED_STR_LEN = 128
# Values that differ on every request: encoding them once would only churn the cache.
_UNIQUE = frozenset({"relaygate.request_id", "url.path", "relaygate.applied_configurations"})


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _SMALL[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (strings, bytes, messages) with a one-byte tag (field numbers < 16)."""
    size = len(payload)
    return _SMALL[number << 3 | 2] + (_SMALL[size] if size < 0x80 else _varint(size)) + payload


def _any_value(value: Any) -> bytes:
    """An `AnyValue` message."""
    kind = type(value)
    if kind is str:
        return _field(1, value.encode("utf-8", "replace"))
    if kind is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if kind is int:
        return b"\x18" + _varint(value & _MASK64)
    if kind is float:
        return b"\x21" + _DOUBLE.pack(value)
    if isinstance(value, Sequence) and not isinstance(value, bytes | str):
        return _field(5, b"".join(_field(1, _any_value(item)) for item in value))
    return _field(1, str(value).encode("utf-8", "replace"))


def _key_value(key: str, value: Any) -> bytes:
    """A `KeyValue` message."""
    return _field(1, key.encode("utf-8", "replace")) + _field(2, _any_value(value))


def _attributes(number: int, attributes: Mapping[str, Any] | None) -> bytes:
    """Repeated `KeyValue` field `number`."""
    if not attributes:
        return b""
    parts = []
    for key, value in attributes.items():
        kind = type(value)
        if kind is str and len(value) <= _CACHED_STR_LEN and key not in _UNIQUE:
            cache = _PAIRS
        elif kind is int and -_CACHED_INT < value < _CACHED_INT:  # status codes, attempt numbers, token counts
            cache = _INT_PAIRS
        elif kind is bool:
            cache = _BOOL_PAIRS
        else:
            parts.append(_field(number, _key_value(key, value)))
            continue
        pair = (key, value)
        encoded = cache.get(pair)
        if encoded is None:
            if len(cache) >= _PAIRS_MAX:
                cache.clear()
            encoded = cache[pair] = _field(number, _key_value(key, value))
        parts.append(encoded)
    return b"".join(parts)


def encode_span(span: ReadableSpan) -> bytes:
    """One `Span` message (without its field tag)."""
    context = span.context
    assert context is not None
    out = [
        b"\x0a\x10" + context.trace_id.to_bytes(16, "big"),  # field 1, 16 bytes
        b"\x12\x08" + context.span_id.to_bytes(8, "big"),  # field 2, 8 bytes
    ]
    if context.trace_state:
        out.append(_field(3, context.trace_state.to_header().encode()))
    if span.parent is not None:
        out.append(b"\x22\x08" + span.parent.span_id.to_bytes(8, "big"))  # field 4, 8 bytes
    out.append(_field(5, span.name.encode("utf-8", "replace")))
    out.append(b"\x30" + _varint(span.kind.value + 1))  # proto SpanKind = API SpanKind + 1 (0 is UNSPECIFIED)
    out.append(b"\x39" + _FIXED64.pack(span.start_time or 0))
    out.append(b"\x41" + _FIXED64.pack(span.end_time or 0))
    out.append(_attributes(9, span.attributes))
    if span.status.status_code is StatusCode.ERROR:
        out.append(_field(15, b"\x18\x02"))
    flags = 0x100 | int(context.trace_flags)  # HAS_IS_REMOTE (parent not remote unless noted) + W3C flags
    if span.parent is not None and span.parent.is_remote:
        flags |= 0x200
    out.append(b"\x85\x01" + struct.pack("<I", flags))
    return b"".join(out)


def encode_request(resource: Resource, scope: InstrumentationScope, spans: Iterable[ReadableSpan]) -> bytes:
    """An `ExportTraceServiceRequest` of spans that share one resource and instrumentation scope."""
    return encode_batch(resource, scope, [encode_span(span) for span in spans])


def encode_batch(resource: Resource, scope: InstrumentationScope, spans: Iterable[bytes]) -> bytes:
    """An `ExportTraceServiceRequest` of spans already encoded by `encode_span`."""
    scope_message = _field(1, scope.name.encode()) + (_field(2, scope.version.encode()) if scope.version else b"")
    scope_spans = _field(1, scope_message) + b"".join(_field(2, span) for span in spans)
    resource_spans = _field(1, _attributes(1, resource.attributes)) + _field(2, scope_spans)
    if resource.schema_url:
        resource_spans += _field(3, resource.schema_url.encode())
    return _field(1, resource_spans)
