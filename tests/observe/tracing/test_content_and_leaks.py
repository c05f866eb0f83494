"""Content capture is opt-in and yields to `x-tfy-logging-config`; no token, upstream key or disabled
content ever reaches an exported byte, retries and fallbacks included."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.helpers import manifests
from tests.helpers.gateway import token_secret_of
from tests.helpers.otlp_receiver import OTLPReceiver, ReceivedSpan
from tests.observe.tracing.conftest import ANTHROPIC_KEY, POOL_KEY, Traced, running, tracing_env

SECRET_PROMPT = "the-disabled-prompt-7c1e"
OFF = {"x-tfy-logging-config": orjson.dumps({"enabled": False}).decode()}


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traced]:
    env = tracing_env("", OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true")
    with OTLPReceiver() as receiver:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint
        yield from running(tmp_path_factory.mktemp("captured"), receiver, env)


def root(traced: Traced, trace_id: str, count: int) -> ReceivedSpan:
    (found,) = [s for s in traced.receiver.trace(trace_id, count=count) if s.kind == "SERVER"]
    return found


def chat(traced: Traced, text: str, **options: Any) -> Any:
    client = traced.gateway.client(traced.alice)
    messages = [{"role": "system", "content": "answer in one word"}, {"role": "user", "content": text}]
    return client.chat.completions.with_raw_response.create(model="openai-main/gpt-4o", messages=messages, **options)


def test_opted_in_content_is_in_the_semconv_message_shape(captured: Traced) -> None:
    raw = chat(captured, "what is tracing")
    attributes = root(captured, raw.headers["x-relaygate-trace-id"], 2).attributes
    assert orjson.loads(attributes["gen_ai.system_instructions"]) == [{"type": "text", "content": "answer in one word"}]
    assert orjson.loads(attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "what is tracing"}]}
    ]
    (output,) = orjson.loads(attributes["gen_ai.output.messages"])
    assert output["role"] == "assistant" and output["finish_reason"] == "stop"
    assert output["parts"][0]["content"] == raw.parse().choices[0].message.content


def test_opted_in_stream_content_is_the_text_sent(captured: Traced) -> None:
    client = captured.gateway.client(captured.alice)
    with client.chat.completions.with_streaming_response.create(
        model="openai-main/gpt-4o", messages=[{"role": "user", "content": "stream it"}], stream=True
    ) as response:
        trace_id = response.headers["x-relaygate-trace-id"]
        text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
    (output,) = orjson.loads(root(captured, trace_id, 2).attributes["gen_ai.output.messages"])
    assert output["parts"] == [{"type": "text", "content": text}]


def test_logging_disabled_request_carries_no_content(captured: Traced) -> None:
    raw = chat(captured, SECRET_PROMPT, extra_headers=OFF)
    attributes = root(captured, raw.headers["x-relaygate-trace-id"], 2).attributes
    assert not any(key in attributes for key in ("gen_ai.input.messages", "gen_ai.output.messages"))


def test_no_token_key_or_disabled_content_in_any_exported_byte(captured: Traced) -> None:
    """Every kind of request, retries and fallbacks too, then a scan of everything the collector got."""
    client = captured.gateway.client(captured.alice)
    streamed = client.chat.completions.create(
        model="openai-main/gpt-4o",
        messages=[{"role": "user", "content": SECRET_PROMPT}],
        stream=True,
        extra_headers=OFF,
    )
    list(streamed)
    traces = [
        chat(captured, SECRET_PROMPT, extra_headers=OFF).headers["x-relaygate-trace-id"],
        client.chat.completions.with_raw_response.create(
            model="vmod/fallback", messages=[{"role": "user", "content": SECRET_PROMPT}], extra_headers=OFF
        ).headers["x-relaygate-trace-id"],
        captured.gateway.request(
            "POST",
            "/proxy-api/pool/lb/chat/completions",
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": SECRET_PROMPT}]},
            token=captured.alice,
            headers=OFF,
        ).headers.get("x-relaygate-trace-id"),
        captured.gateway.request(
            "POST",
            "/api/llm/v1/messages",
            json={"model": "claude/sonnet", "max_tokens": 8, "messages": [{"role": "user", "content": SECRET_PROMPT}]},
            headers={"x-api-key": captured.alice, **OFF},
        ).headers.get("x-relaygate-trace-id"),
        captured.gateway.request("POST", "/api/llm/chat/completions", json={}, token="rg-not-a-real-token").headers.get(
            "x-relaygate-trace-id"
        ),
    ]
    for trace_id in traces:
        captured.receiver.trace(trace_id, count=1)
    exported = captured.receiver.raw()
    assert exported and b"vmod/fallback" in exported  # the scan reads real span data
    for secret in (
        captured.alice,
        token_secret_of(captured.alice),
        "rg-",
        manifests.OPENAI_KEY,
        manifests.AZURE_KEY,
        ANTHROPIC_KEY,
        POOL_KEY,
        SECRET_PROMPT,
        "Bearer",
        "authorization",
    ):
        assert secret.encode() not in exported, f"{secret!r} reached an exported span"
    assert all("authorization" not in key.lower() for h in captured.receiver.headers for key in h if key != "host")
