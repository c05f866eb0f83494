"""OTLP protobuf encoding of captured traces, written by hand for speed, on the export thread.

The exporter package's encoder builds a protobuf message object per span, attribute and value: ~70 µs
a span, which at 100% sampling cost a third of a chat request's CPU. The wire format of the few
messages a trace export needs is small and stable (opentelemetry-proto `trace/v1/trace.proto`,
`common/v1/common.proto`, `collector/trace/v1/trace_service.proto`); this writes it directly from the
`CapturedTrace`s of spans.py, and the tests decode it with the official messages and compare it to the
SDK encoder's output for the same spans.

Most attributes of a span are the same from request to request: the route, status and caller of a
root, the target, model, provider and outcome of an attempt. spans.py captures them as a *shape*
tuple; here each shape's attributes (and the span's name and kind) are encoded once and kept, so a
span costs its ids, times, a dict look-up and the few values that change on every request (request id,
path, cost, token counts). The caches are bounded (emptied when full) and used by one thread.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from relaygate.observe.tracing.spans import (
    AUTH_SPAN,
    LIMITS_SPAN,
    USAGE_ATTRIBUTES,
    AttemptShape,
    CapturedTrace,
    LimitsShape,
    RootShape,
    attempt_attributes,
    attempt_failed,
    attempt_name,
    limits_attributes,
    root_attributes,
    root_name,
)

_FIXED64 = struct.Struct("<Q")
_DOUBLE = struct.Struct("<d")
_SPAN_ID = struct.Struct(">Q")
_TIMES = struct.Struct("<BQBQ")  # fields 7 and 8 (fixed64 start and end), tags included
_SMALL = [bytes((i,)) for i in range(128)]
_MASK64 = 0xFFFFFFFFFFFFFFFF
_SHAPES_MAX = 4096  # encoded shapes kept per kind of span (a cache that fills is emptied)
# proto SpanKind = API SpanKind + 1 (0 is UNSPECIFIED): INTERNAL 1, SERVER 2, CLIENT 3
_INTERNAL, _SERVER, _CLIENT = b"\x30\x01", b"\x30\x02", b"\x30\x03"
_STATUS_ERROR = b"\x7a\x02\x18\x02"  # field 15, Status{code: ERROR}
# field 16 (fixed32): HAS_IS_REMOTE, plus IS_REMOTE for a root continuing a caller's span, plus sampled
_FLAGS_LOCAL_PARENT = b"\x85\x01" + struct.pack("<I", 0x101)
_FLAGS_REMOTE_PARENT = b"\x85\x01" + struct.pack("<I", 0x301)


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _SMALL[value]
    if value < 0x4000:
        return bytes((value & 0x7F | 0x80, value >> 7))
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
    return b"".join(_field(number, _key_value(key, value)) for key, value in attributes.items())


def _length(size: int) -> bytes:
    return _SMALL[size] if size < 0x80 else _varint(size)


def _key(key: str) -> bytes:
    """`KeyValue.key` (field 1), to which a value is appended by the functions below."""
    return _field(1, key.encode())


def _string_attribute(key: bytes, value: str) -> bytes:
    """A `Span.attributes` field (9) of a string value; `key` from `_key`."""
    data = value.encode("utf-8", "replace")
    size = len(data)
    if size < 0x7D and len(key) + size < 0x7A:  # every length fits one byte
        return b"".join(
            (b"\x4a", _SMALL[len(key) + size + 4], key, b"\x12", _SMALL[size + 2], b"\x0a", _SMALL[size], data)
        )
    any_value = b"\x0a" + _varint(size) + data
    pair = key + b"\x12" + _varint(len(any_value)) + any_value
    return b"\x4a" + _varint(len(pair)) + pair


def _int_attribute(key: bytes, value: int) -> bytes:
    data = _varint(value & _MASK64)
    size = len(data) + 1  # AnyValue.int_value, field 3
    return b"".join((b"\x4a", _SMALL[len(key) + 2 + size], key, b"\x12", _SMALL[size], b"\x18", data))


def _double_prefix(key: str) -> bytes:
    """A `Span.attributes` field of a double value, but for the 8 bytes of the value."""
    key_field = _key(key)
    return b"\x4a" + _length(len(key_field) + 11) + key_field + b"\x12\x09\x21"


_URL_PATH = _key("url.path")
_REQUEST_ID = _key("relaygate.request_id")
_APPLIED = _key("relaygate.applied_configurations")
_COST = _double_prefix("relaygate.cost_usd")
_FIRST_CHUNK = _double_prefix("gen_ai.response.time_to_first_chunk")
_USAGE = tuple(_key(key) for key in USAGE_ATTRIBUTES)
_AUTH = _field(5, AUTH_SPAN.encode()) + _INTERNAL
_LIMITS = _field(5, LIMITS_SPAN.encode()) + _INTERNAL


class TraceEncoder:
    """Encodes captured traces as `ScopeSpans.spans` fields, drawing span ids from `span_id` (root
    first, then the auth, limits, feature and attempt spans, as `readable.readable_spans` does). One thread only."""

    def __init__(self, span_id: Callable[[], int]) -> None:
        self._span_id = span_id
        # shape -> (name and kind fields, attribute fields)
        self._roots: dict[RootShape, tuple[bytes, bytes]] = {}
        self._attempts: dict[AttemptShape, tuple[bytes, bytes]] = {}
        self._limits: dict[LimitsShape, bytes] = {}
        self._paths: dict[str, bytes] = {}  # url.path: the route itself on model routes

    def encode(self, captured: CapturedTrace) -> bytes:
        """The spans of one trace, each as a length-delimited field 2 of `ScopeSpans`."""
        head = b"\x0a\x10" + bytes.fromhex(captured.trace_id)  # field 1, 16 bytes
        root_id = _SPAN_ID.pack(self._span_id())
        state = b""
        if captured.trace_state:
            state = _field(3, captured.trace_state.to_header().encode())
        named = self._roots.get(captured.root)
        if named is None:
            named = self._root_shape(captured.root)
        parts = [head, b"\x12\x08", root_id, state]
        if captured.parent is not None:
            parts += (b"\x22\x08", bytes.fromhex(captured.parent))  # field 4, 8 bytes
        parts += (
            named[0],
            _TIMES.pack(0x39, captured.start, 0x41, captured.end),
            named[1],
            self._paths.get(captured.path) or self._path(captured.path),
            _string_attribute(_REQUEST_ID, captured.request_id),
        )
        if captured.cost is not None:
            parts.append(_COST + _DOUBLE.pack(captured.cost))
        if captured.applied is not None:
            parts.append(_string_attribute(_APPLIED, captured.applied))
        if captured.extra:
            parts.append(_attributes(9, captured.extra))
        if captured.root[2] >= 500:
            parts.append(_STATUS_ERROR)
        parts.append(_FLAGS_LOCAL_PARENT if captured.parent is None else _FLAGS_REMOTE_PARENT)
        out = [_span(parts)]
        child = b"".join((head, b"\x12\x08"))
        parent = b"".join((state, b"\x22\x08", root_id))
        if captured.auth_end is not None:
            times = _TIMES.pack(0x39, captured.start, 0x41, captured.auth_end)
            out.append(_span([child, _SPAN_ID.pack(self._span_id()), parent, _AUTH, times, _FLAGS_LOCAL_PARENT]))
        if captured.limits is not None:
            shape, start, end = captured.limits
            attributes = self._limits.get(shape)
            if attributes is None:
                if len(self._limits) >= _SHAPES_MAX:
                    self._limits.clear()
                attributes = self._limits[shape] = _attributes(9, limits_attributes(shape))
            times = _TIMES.pack(0x39, start, 0x41, end)
            span_id = _SPAN_ID.pack(self._span_id())
            out.append(_span([child, span_id, parent, _LIMITS, times, attributes, _FLAGS_LOCAL_PARENT]))
        for feature in captured.features:
            parts = [
                child,
                _SPAN_ID.pack(feature.span_id or self._span_id()),
                parent,
                _field(5, feature.name.encode("utf-8", "replace")) + (_CLIENT if feature.client else _INTERNAL),
                _TIMES.pack(0x39, feature.start, 0x41, feature.end),
                _attributes(9, dict(feature.attributes)),
            ]
            if feature.failed:
                parts.append(_STATUS_ERROR)
            parts.append(_FLAGS_LOCAL_PARENT)
            out.append(_span(parts))
        for attempt in captured.attempts:
            named = self._attempts.get(attempt.shape)
            if named is None:
                named = self._attempt_shape(attempt.shape)
            parts = [
                child,
                _SPAN_ID.pack(self._span_id()),
                parent,
                named[0],
                _TIMES.pack(0x39, attempt.start, 0x41, attempt.end),
                named[1],
            ]
            if attempt.usage is not None:
                for key, count in zip(_USAGE, attempt.usage, strict=True):
                    if count is not None:
                        parts.append(_int_attribute(key, count))
            if attempt.time_to_first_chunk is not None:
                parts.append(_FIRST_CHUNK + _DOUBLE.pack(attempt.time_to_first_chunk))
            if attempt_failed(attempt.shape):
                parts.append(_STATUS_ERROR)
            parts.append(_FLAGS_LOCAL_PARENT)
            out.append(_span(parts))
        return b"".join(out)

    def _path(self, path: str) -> bytes:
        if len(self._paths) >= _SHAPES_MAX:
            self._paths.clear()
        encoded = self._paths[path] = _string_attribute(_URL_PATH, path)
        return encoded

    def _root_shape(self, shape: RootShape) -> tuple[bytes, bytes]:
        """A root's name, kind and constant attributes, encoded and kept."""
        if len(self._roots) >= _SHAPES_MAX:
            self._roots.clear()
        name = _field(5, root_name(shape).encode("utf-8", "replace")) + _SERVER
        named = self._roots[shape] = (name, _attributes(9, root_attributes(shape)))
        return named

    def _attempt_shape(self, shape: AttemptShape) -> tuple[bytes, bytes]:
        """An attempt's name, kind and constant attributes, encoded and kept."""
        if len(self._attempts) >= _SHAPES_MAX:
            self._attempts.clear()
        name = _field(5, attempt_name(shape).encode("utf-8", "replace")) + _CLIENT
        named = self._attempts[shape] = (name, _attributes(9, attempt_attributes(shape)))
        return named


def _span(parts: list[bytes]) -> bytes:
    """`ScopeSpans.spans` (field 2) of one span's fields."""
    body = b"".join(parts)
    return b"\x12" + _length(len(body)) + body


def encode_batch(resource: Resource, scope: InstrumentationScope, spans: Iterable[bytes]) -> bytes:
    """An `ExportTraceServiceRequest` of spans already encoded by `TraceEncoder.encode`."""
    scope_message = _field(1, scope.name.encode()) + (_field(2, scope.version.encode()) if scope.version else b"")
    scope_spans = _field(1, scope_message) + b"".join(spans)
    resource_spans = _field(1, _attributes(1, resource.attributes)) + _field(2, scope_spans)
    if resource.schema_url:
        resource_spans += _field(3, resource.schema_url.encode())
    return _field(1, resource_spans)
