"""The spans a traced gateway exports, as a real collector receives them: the tree of each request, its
parent links, `traceparent` continuation and the GenAI / HTTP / custom-endpoint attributes."""

from __future__ import annotations

import os
import time
from typing import Any

import anthropic
import orjson

from tests.helpers.otlp_receiver import ReceivedSpan
from tests.observe.tracing.conftest import Traced
from tests.upstreams.openai_mock import chat_reply

HELLO = [{"role": "user", "content": "hello trace"}]


def one(spans: list[ReceivedSpan], name: str) -> ReceivedSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, f"expected one {name!r} span, got {[s.name for s in spans]}"
    return found[0]


def root_of(spans: list[ReceivedSpan]) -> ReceivedSpan:
    (root,) = [s for s in spans if s.kind == "SERVER"]
    return root


def chat(traced: Traced, model: str = "openai-main/gpt-4o", **options: Any) -> Any:
    client = traced.gateway.client(traced.alice)
    return client.chat.completions.with_raw_response.create(model=model, messages=HELLO, **options)


def test_chat_root_and_attempt_spans(traced: Traced) -> None:
    raw = chat(traced)
    answer = raw.parse()
    trace_id = raw.headers["x-relaygate-trace-id"]
    assert raw.headers["x-tfy-trace-id"] == trace_id
    spans = traced.receiver.trace(trace_id, count=2)
    root = root_of(spans)
    assert root.name == "POST /api/llm/chat/completions"
    assert root.parent_span_id == ""
    assert root.resource["service.name"] == "relaygate"
    assert root.attributes["http.request.method"] == "POST"
    assert root.attributes["http.route"] == "/api/llm/chat/completions"
    assert root.attributes["url.path"] == "/api/llm/chat/completions"
    assert root.attributes["http.response.status_code"] == 200
    assert root.attributes["relaygate.request_id"] == raw.headers["x-request-id"]
    assert root.attributes["relaygate.subject"] == "user:alice@example.com"
    assert root.attributes["relaygate.requested_model"] == "openai-main/gpt-4o"
    assert root.attributes["relaygate.resolved_model"] == "openai-main/gpt-4o"
    assert not root.error
    attempt = one(spans, "chat gpt-4o")
    assert attempt.kind == "CLIENT"
    assert attempt.parent_span_id == root.span_id
    assert root.start_ns <= attempt.start_ns <= attempt.end_ns <= root.end_ns
    attributes = attempt.attributes
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.request.model"] == "gpt-4o"
    assert attributes["gen_ai.response.model"] == "gpt-4o"
    assert attributes["gen_ai.usage.input_tokens"] == answer.usage.prompt_tokens
    assert attributes["gen_ai.usage.output_tokens"] == answer.usage.completion_tokens
    assert attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["server.port"] == traced.openai.port
    assert attributes["relaygate.attempt"] == 0
    assert attributes["relaygate.attempt.outcome"] == "success"
    assert "error.type" not in attributes and "gen_ai.request.stream" not in attributes
    assert not any(key in attributes for key in ("gen_ai.system", "gen_ai.usage.prompt_tokens"))


def test_trace_id_matches_the_log_row_and_logs_filter(traced: Traced) -> None:
    raw = chat(traced)
    trace_id = raw.headers["x-relaygate-trace-id"]
    root = root_of(traced.receiver.trace(trace_id, count=2))
    row = traced.gateway.wait_for_log(raw.headers["x-request-id"])
    assert row["trace_id"] == root.trace_id == trace_id
    result = traced.gateway.cli_in_process(
        "logs", "--json", "--trace-id", trace_id, "--database-url", traced.gateway.database_url
    )
    rows = [orjson.loads(line) for line in result.splitlines()]
    assert [r["request_id"] for r in rows] == [raw.headers["x-request-id"]]


def test_incoming_traceparent_is_continued(traced: Traced) -> None:
    trace_id, parent = os.urandom(16).hex(), os.urandom(8).hex()
    raw = chat(traced, extra_headers={"traceparent": f"00-{trace_id}-{parent}-01"})
    assert raw.headers["x-relaygate-trace-id"] == trace_id
    spans = traced.receiver.trace(trace_id, count=2)
    root = root_of(spans)
    assert root.parent_span_id == parent
    assert one(spans, "chat gpt-4o").parent_span_id == root.span_id


def test_unsampled_traceparent_exports_nothing(traced: Traced) -> None:
    trace_id = os.urandom(16).hex()
    raw = chat(traced, extra_headers={"traceparent": f"00-{trace_id}-{os.urandom(8).hex()}-00"})
    assert raw.headers["x-relaygate-trace-id"] == trace_id
    later = chat(traced).headers["x-relaygate-trace-id"]  # exported after the first would have been
    traced.receiver.trace(later, count=2)
    time.sleep(0.1)
    assert [s for s in traced.receiver.spans if s.trace_id == trace_id] == []


def test_streaming_attempt_spans_the_whole_stream(traced: Traced) -> None:
    client = traced.gateway.client(traced.alice)
    with client.chat.completions.with_streaming_response.create(
        model="openai-main/gpt-4o", messages=HELLO, stream=True, stream_options={"include_usage": True}
    ) as response:
        trace_id = response.headers["x-relaygate-trace-id"]
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == chat_reply(HELLO)
    spans = traced.receiver.trace(trace_id, count=2)
    root = root_of(spans)
    attempt = one(spans, "chat gpt-4o")
    assert attempt.attributes["gen_ai.request.stream"] is True
    assert 0 < attempt.attributes["gen_ai.response.time_to_first_chunk"] < 5
    usage = next(c.usage for c in chunks if c.usage is not None)
    assert attempt.attributes["gen_ai.usage.output_tokens"] == usage.completion_tokens
    assert attempt.attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert attempt.end_ns <= root.end_ns
    assert attempt.end_ns - attempt.start_ns >= attempt.attributes["gen_ai.response.time_to_first_chunk"] * 1e9 - 1e6


def test_virtual_model_fallback_has_one_span_per_attempt(traced: Traced) -> None:
    raw = chat(traced, model="vmod/fallback")
    assert raw.headers["x-tfy-resolved-model"] == "openai-main/gpt-4o"
    spans = traced.receiver.trace(raw.headers["x-relaygate-trace-id"], count=3)
    root = root_of(spans)
    attempts = sorted((s for s in spans if s.kind == "CLIENT"), key=lambda s: s.attributes["relaygate.attempt"])
    assert [s.name for s in attempts] == ["chat gpt-4o", "chat gpt-4o"]
    assert all(s.parent_span_id == root.span_id for s in attempts)
    first, second = (s.attributes for s in attempts)
    assert first["relaygate.target"] == "unreachable/gpt-4o" and second["relaygate.target"] == "openai-main/gpt-4o"
    assert first["relaygate.attempt.outcome"] == "fallback" and attempts[0].error
    assert first["error.type"]
    assert "gen_ai.usage.input_tokens" not in first
    assert second["relaygate.attempt.outcome"] == "success" and not attempts[1].error
    assert second["gen_ai.usage.input_tokens"] > 0
    assert attempts[0].end_ns <= attempts[1].start_ns
    applied = orjson.loads(root.attributes["relaygate.applied_configurations"])
    assert applied["load_balancing"]["virtual_model"] == "vmod/fallback"
    assert root.attributes["relaygate.requested_model"] == "vmod/fallback"


def test_messages_api_attempt_is_an_anthropic_chat(traced: Traced) -> None:
    client = anthropic.Anthropic(base_url=traced.gateway.url + "/api/llm", api_key=traced.alice, max_retries=0)
    try:
        raw = client.messages.with_raw_response.create(
            model="claude/sonnet", max_tokens=64, system="be brief", messages=[{"role": "user", "content": "hi"}]
        )
        message = raw.parse()
    finally:
        client.close()
    spans = traced.receiver.trace(raw.headers["x-relaygate-trace-id"], count=2)
    root = root_of(spans)
    assert root.name == "POST /api/llm/v1/messages"
    attempt = one(spans, "chat claude-sonnet-4-5")
    assert attempt.parent_span_id == root.span_id
    assert attempt.attributes["gen_ai.provider.name"] == "anthropic"
    assert attempt.attributes["gen_ai.operation.name"] == "chat"
    assert attempt.attributes["gen_ai.usage.input_tokens"] == message.usage.input_tokens
    assert attempt.attributes["gen_ai.usage.output_tokens"] == message.usage.output_tokens
    assert attempt.attributes["gen_ai.response.finish_reasons"] == [message.stop_reason]


def test_custom_endpoint_pool_carries_the_reference_attributes(traced: Traced) -> None:
    answer = traced.gateway.request(
        "POST",
        "/proxy-api/pool/lb/chat/completions",
        data=orjson.dumps({"model": "gpt-4o", "messages": HELLO}),
        token=traced.alice,
        headers={"content-type": "application/json"},
    )
    assert answer.status == 200
    spans = traced.receiver.trace(answer.headers.get("x-relaygate-trace-id"), count=3)
    root = root_of(spans)
    assert root.name == "POST /proxy-api/{account}/{endpoint}/{path}"
    assert root.attributes["tfy.span_type"] == "CustomEndpoint"
    assert {key: root.attributes[key] for key in root.attributes if key.startswith(("custom_", "loadbalance_"))} == {
        "custom_proxy_routing_type": "priority",
        "custom_proxy_slug": "lb",
        "custom_proxy_endpoint_name": "up",
        "custom_proxy_target_was_cooled_down": False,
        "loadbalance_target_attempt_count": 2,
        "loadbalance_first_target": "down",
        "loadbalance_final_target": "up",
    }
    down, up = one(spans, "proxy down"), one(spans, "proxy up")
    assert down.kind == up.kind == "CLIENT"
    assert down.parent_span_id == up.parent_span_id == root.span_id
    assert down.attributes["tfy.span_type"] == "CustomEndpoint" and down.error
    assert up.attributes["http.response.status_code"] == 200
    assert up.attributes["server.port"] == traced.openai.port
    assert not any(key.startswith("gen_ai.") for key in up.attributes)


def test_auth_span_only_when_the_token_cache_misses(traced: Traced) -> None:
    token = traced.gateway.create_token(user="carol@example.com")
    client = traced.gateway.client(token)
    first = client.chat.completions.with_raw_response.create(model="openai-main/gpt-4o", messages=HELLO)
    second = client.chat.completions.with_raw_response.create(model="openai-main/gpt-4o", messages=HELLO)
    spans = traced.receiver.trace(first.headers["x-relaygate-trace-id"], count=3)
    auth = one(spans, "relaygate.auth")
    assert auth.parent_span_id == root_of(spans).span_id
    assert auth.end_ns >= auth.start_ns
    again = traced.receiver.trace(second.headers["x-relaygate-trace-id"], count=2)
    assert [s for s in again if s.name == "relaygate.auth"] == []


def test_limits_span_names_the_rule_and_decision(traced: Traced) -> None:
    raw = chat(traced, model="limited/gpt-4o")
    spans = traced.receiver.trace(raw.headers["x-relaygate-trace-id"], count=3)
    limits = one(spans, "relaygate.limits")
    assert limits.parent_span_id == root_of(spans).span_id
    assert limits.attributes["relaygate.limits.decision"] == "allow"
    assert limits.attributes["relaygate.limits.rate_limit_rule_ids"] == ["trace-rpm"]
    assert limits.end_ns <= one(spans, "chat gpt-4o").start_ns + 1_000_000


def test_gateway_error_root_carries_error_type(traced: Traced) -> None:
    answer = traced.gateway.request(
        "POST",
        "/api/llm/chat/completions",
        json={"model": "nope/none", "messages": HELLO},
        token=traced.alice,
    )
    assert answer.status == 404
    (root,) = traced.receiver.trace(answer.headers.get("x-relaygate-trace-id"), count=1)
    assert root.attributes["http.response.status_code"] == 404
    assert root.attributes["error.type"]
    assert not root.error  # 4xx is the caller's error, not the server's (HTTP server semconv)


def test_content_is_off_by_default(traced: Traced) -> None:
    client = traced.gateway.client(traced.alice)
    raw = client.chat.completions.with_raw_response.create(
        model="openai-main/gpt-4o", messages=[{"role": "user", "content": "not captured"}]
    )
    spans = traced.receiver.trace(raw.headers["x-relaygate-trace-id"], count=2)
    assert not any(
        key.startswith("gen_ai.input") or key.startswith("gen_ai.output") for s in spans for key in s.attributes
    )


def test_drop_counter_starts_at_zero(traced: Traced) -> None:
    chat(traced)
    tracing = traced.state.tracing
    assert tracing is not None and tracing.dropped == 0
    assert tracing.record in traced.state.recorders


def test_each_guardrail_is_an_apply_guardrail_span_with_genai_attributes(traced: Traced) -> None:
    client = traced.gateway.client(traced.alice)
    raw = client.chat.completions.with_raw_response.create(
        model="guarded/gpt-4o", messages=[{"role": "user", "content": "mail x.y@corp.example about tracewatch"}]
    )
    trace_id = raw.headers["x-relaygate-trace-id"]
    spans = traced.receiver.trace(trace_id, count=4)
    root = root_of(spans)
    pii = one(spans, "apply_guardrail safety/pii")
    words = one(spans, "apply_guardrail safety/words")
    for span in (pii, words):
        assert span.kind == "CLIENT" and span.parent_span_id == root.span_id
        assert root.start_ns <= span.start_ns <= span.end_ns <= root.end_ns
        assert span.attributes["gen_ai.operation.name"] == "apply_guardrail"
        assert span.attributes["gen_ai.guardrail.policy.id"] == "guarded"
        assert span.attributes["gen_ai.guardrail.source"] == "input"
    assert pii.attributes["gen_ai.guardrail.result.value"] == "mutate"
    assert words.attributes["gen_ai.guardrail.result.value"] == "flag"
    assert "x.y@corp.example" not in str([s.attributes for s in spans])  # masked before anything was traced


def test_a_cache_lookup_is_a_span(traced: Traced) -> None:
    client = traced.gateway.client(traced.alice)
    headers = {"x-tfy-cache-config": '{"type": "exact-match"}'}
    client.chat.completions.create(model="openai-main/gpt-4o", messages=HELLO, extra_headers=headers)
    raw = client.chat.completions.with_raw_response.create(
        model="openai-main/gpt-4o", messages=HELLO, extra_headers=headers
    )
    assert raw.headers["x-tfy-cache-status"] == "hit"
    spans = traced.receiver.trace(raw.headers["x-relaygate-trace-id"], count=2)
    lookup = one(spans, "relaygate.cache.lookup")
    assert lookup.kind == "INTERNAL" and lookup.parent_span_id == root_of(spans).span_id
    assert lookup.attributes["relaygate.cache.status"] == "hit"
    assert not [s for s in spans if s.kind == "CLIENT"]  # no upstream attempt
