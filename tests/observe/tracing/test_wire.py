"""The hand-written OTLP encoder writes what the official protobuf messages (and the SDK's encoder) say,
for the same captured traces as the SDK's spans (`readable_spans`, the gRPC path), span ids included."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import TraceState

from relaygate.observe.tracing.readable import readable_spans
from relaygate.observe.tracing.spans import (
    USAGE_ATTRIBUTES,
    AttemptSpan,
    CapturedTrace,
    FeatureSpan,
    RootShape,
    finish_reasons,
)
from relaygate.observe.tracing.wire import TraceEncoder, encode_batch

RESOURCE = Resource.create({"service.name": "relaygate", "deployment.environment": "test"})
SCOPE = InstrumentationScope("relaygate")
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
T0 = 1_765_000_000_000_000_000
CHAT: RootShape = (
    "POST",
    "/api/llm/chat/completions",
    200,
    None,
    "user:alice@x.com",
    "rg-abc123",
    "openai-main/gpt-4o",
    "openai-main/gpt-4o",
    None,
)


def attempt(index: int, outcome: str = "success", **changes: object) -> AttemptSpan:
    shape = [index, outcome, f"acct-{index}/gpt-4o", None, 200, "chat", "openai", "gpt-4o", False]
    shape += [("api.openai.com", 443), "gpt-4o-2024-08-06", ("stop",)]
    usage = (12, 34, None, None, None) if outcome == "success" else None
    span = AttemptSpan(tuple(shape), T0 + 100 + index, T0 + 900, usage, None)  # type: ignore[arg-type]
    return span._replace(**changes)  # type: ignore[arg-type]


def captured(**changes: object) -> CapturedTrace:
    trace = CapturedTrace(
        TRACE, None, None, T0, T0 + 1000, CHAT, "r" * 24, "/api/llm/chat/completions", None, None, None, None, None, ()
    )
    return trace._replace(attempts=(attempt(0),))._replace(**changes)  # type: ignore[arg-type]


FALLBACK = attempt(0, "fallback")._replace(
    shape=(0, "fallback", "down/gpt-4o", "connect_error", None, "chat", "", "gpt-4o", True, None, None, ())
)
CASES = {
    "chat": captured(cost=0.00123),
    "stream": captured(
        attempts=(attempt(0, shape=attempt(0).shape[:8] + (True,) + attempt(0).shape[9:], time_to_first_chunk=0.25),)
    ),
    "fallback, limits, auth, remote parent": captured(
        parent="00f067aa0ba902b7",
        auth_end=T0 + 50,
        limits=((None, ("rpm", "tpm"), ("monthly",)), T0 + 60, T0 + 100),
        applied='{"rate_limit":{"rule_ids":["rpm"]}}',
        attempts=(FALLBACK, attempt(1)._replace(usage=(10**7, 2, 3, 4, 5))),
    ),
    "denied by a limit, 5xx, no attempts": captured(
        root=("POST", "/api/llm/chat/completions", 503, "upstream_unavailable", None, None, None, None, None),
        limits=(("budget-1", (), ("budget-1",)), T0 + 60, T0 + 100),
        attempts=(),
    ),
    "custom endpoint": captured(
        root=(
            "POST",
            "/proxy-api/{account}/{endpoint}/{path}",
            200,
            None,
            "user:bob",
            "rg-x",
            "pool/lb",
            None,
            (("custom_proxy_slug", "lb"), ("custom_proxy_target_was_cooled_down", False), ("x_count", 2)),
        ),
        path="/proxy-api/pool/lb/chat/completions",
        attempts=(
            AttemptSpan(
                (0, "fallback", "down", None, 502, "proxy", "", None, False, None, None, ()), T0, T0 + 5, None, None
            ),
            AttemptSpan(
                (1, "success", "up", None, 200, "proxy", "", None, False, ("127.0.0.1", 8080), None, ()),
                T0,
                T0,
                None,
                None,
            ),
        ),
    ),
    "feature spans, one with the id the request sent on": captured(
        features=(
            FeatureSpan("apply_guardrail pii", T0 + 10, T0 + 20, True, (("gen_ai.guardrail.name", "pii"),)),
            FeatureSpan("tools/call echo", T0 + 30, T0 + 90, True, (("gen_ai.tool.name", "echo"),), True, 0xC0FFEE),
        ),
    ),
    "no route, trace state, content, long and non-ASCII values": captured(
        root=("GET", "", 404, "not_found", None, None, None, None, None),
        path="/é/" + "x" * 300,  # lengths over 127 bytes take a two-byte varint
        trace_state=TraceState([("vendor", "x")]),
        extra={"gen_ai.input.messages": '[{"role":"user"}]' * 20, "sampler.flag": True, "ratio": 0.5, "n": -5},
        attempts=(),
    ),
}


def draws(seed: int) -> Callable[[], int]:
    rng = random.Random(seed)
    return lambda: rng.getrandbits(64) or 1


def ours(traces: list[CapturedTrace], encoder: TraceEncoder) -> ExportTraceServiceRequest:
    decoded = ExportTraceServiceRequest()
    decoded.ParseFromString(encode_batch(RESOURCE, SCOPE, [encoder.encode(trace) for trace in traces]))
    return decoded


def sdk(traces: list[CapturedTrace], span_id: Callable[[], int]) -> ExportTraceServiceRequest:
    encoded: ExportTraceServiceRequest = encode_spans(
        [span for trace in traces for span in readable_spans(trace, span_id, RESOURCE, SCOPE)]
    )
    return encoded


@pytest.mark.parametrize("name", list(CASES))
def test_decodes_as_the_sdk_encodes_the_same_spans(name: str) -> None:
    trace = CASES[name]
    mine, theirs = ours([trace], TraceEncoder(draws(7))), sdk([trace], draws(7))
    assert mine.resource_spans[0].resource == theirs.resource_spans[0].resource
    assert mine.resource_spans[0].scope_spans[0].scope == theirs.resource_spans[0].scope_spans[0].scope
    assert_same_spans(mine, theirs)


@pytest.mark.parametrize("name", list(CASES))
def test_cached_shapes_encode_as_fresh_ones(name: str) -> None:
    ids = random.Random(5)
    cached = TraceEncoder(lambda: ids.getrandbits(64))
    cached.encode(CASES[name])
    fresh = TraceEncoder(draws(9))
    ids.seed(9)
    assert cached.encode(CASES[name]) == fresh.encode(CASES[name])


def assert_same_spans(mine: ExportTraceServiceRequest, theirs: ExportTraceServiceRequest) -> None:
    for one, other in zip(
        mine.resource_spans[0].scope_spans[0].spans, theirs.resource_spans[0].scope_spans[0].spans, strict=True
    ):
        assert one.flags in (0x101, 0x301)  # HAS_IS_REMOTE, IS_REMOTE for a caller's parent, sampled
        for span in (one, other):
            span.ClearField("flags")  # the SDK leaves the W3C flag bits out; we write them (next test)
            if span.status.code == 0:
                span.ClearField("status")  # an unset status: the SDK writes an empty one, we none
            ordered = sorted(span.attributes, key=lambda pair: pair.key)
            del span.attributes[:]
            span.attributes.extend(ordered)  # constant attributes come first in ours
        assert one == other


def test_a_batch_of_many_traces_keeps_them_all() -> None:
    traces = list(CASES.values()) * 3
    assert_same_spans(ours(traces, TraceEncoder(draws(3))), sdk(traces, draws(3)))
    assert len(ours(traces, TraceEncoder(draws(3))).resource_spans[0].scope_spans[0].spans) == sum(
        trace.span_count for trace in traces
    )


def test_flags_say_whether_the_parent_is_remote() -> None:
    trace = CASES["fallback, limits, auth, remote parent"]
    spans = ours([trace], TraceEncoder(draws(1))).resource_spans[0].scope_spans[0].spans
    root, *children = spans
    assert root.flags == 0x301 and root.parent_span_id.hex() == "00f067aa0ba902b7"
    assert all(child.flags == 0x101 and child.parent_span_id == root.span_id for child in children)
    assert [s.name for s in spans] == ["POST /api/llm/chat/completions", "relaygate.auth", "relaygate.limits"] + [
        "chat gpt-4o"
    ] * 2


def test_a_feature_span_keeps_the_id_the_request_gave_it() -> None:
    """An MCP tool call's span id went upstream in a traceparent: the exported span must have it."""
    trace = CASES["feature spans, one with the id the request sent on"]
    for decoded in (ours([trace], TraceEncoder(draws(2))), sdk([trace], draws(2))):
        spans = {s.name: s for s in decoded.resource_spans[0].scope_spans[0].spans}
        assert spans["tools/call echo"].span_id.hex() == f"{0xC0FFEE:016x}"
        assert spans["apply_guardrail pii"].span_id.hex() != f"{0xC0FFEE:016x}"
        assert spans["tools/call echo"].parent_span_id == spans["POST /api/llm/chat/completions"].span_id


def test_usage_of_the_answering_attempt() -> None:
    spans = ours([CASES["fallback, limits, auth, remote parent"]], TraceEncoder(draws(1)))
    answer = spans.resource_spans[0].scope_spans[0].spans[-1]
    values = {pair.key: pair.value.int_value for pair in answer.attributes if pair.key in USAGE_ATTRIBUTES}
    assert values == dict(zip(USAGE_ATTRIBUTES, (10**7, 2, 3, 4, 5), strict=True))


def test_finish_reasons_in_order_without_null_or_lookalikes() -> None:
    body = (
        b'{"choices":[{"finish_reason": "stop"},{"finish_reason":null},{"finish_reason":"length"},'
        b'{"finish_reason":"stop"}],"x_reason":"nope","content":"say \\"stop_reason\\": \\"fake\\""}'
    )
    assert finish_reasons(body) == ("stop", "length")
    assert finish_reasons(b'{"type":"message","stop_reason":"end_turn"}') == ("end_turn",)
    assert finish_reasons(None) == finish_reasons(b"") == ()
