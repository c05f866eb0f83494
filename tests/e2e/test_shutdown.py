"""SIGTERM: stop accepting, let in-flight requests finish, flush the log, then exit.

A stream still running when the drain period (RELAYGATE_SHUTDOWN_GRACE_SECONDS) ends is not cut
silently: it ends with its dialect's error event (no `[DONE]` / `message_stop`) and is logged truncated.
"""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import orjson
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.conftest import GatewayFactory
from tests.helpers.gateway import GatewayProcess, HttpResult, free_port
from tests.helpers.manifests import ALICE, STANDARD
from tests.upstreams.anthropic_mock import AnthropicMock
from tests.upstreams.openai_mock import OpenAIMock, chat_reply

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "finish me"}]
# A clean exit after SIGTERM: 0, or the signal re-raised after the graceful shutdown (uvicorn does that).
CLEAN_EXIT = (0, -signal.SIGTERM, 128 + signal.SIGTERM)


def start(gateway_factory: GatewayFactory, upstream: OpenAIMock, vllm: OpenAIMock) -> tuple[GatewayProcess, str]:
    gateway = gateway_factory(STANDARD, port=upstream.port, vllm_port=vllm.port, closed_port=free_port())
    return gateway, gateway.create_token(user=ALICE)


def in_background(
    gateway: GatewayProcess, token: str, body: dict[str, Any]
) -> tuple[threading.Thread, list[HttpResult]]:
    results: list[HttpResult] = []

    def run() -> None:
        results.append(gateway.request("POST", "/api/llm/chat/completions", token=token, json=body, timeout=30))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, results


def test_sigterm_lets_inflight_request_finish_and_logs_it(
    gateway_factory: GatewayFactory, openai_upstream: OpenAIMock, vllm_upstream: OpenAIMock
) -> None:
    gateway, token = start(gateway_factory, openai_upstream, vllm_upstream)
    openai_upstream.delay_next(2.0)
    thread, results = in_background(gateway, token, {"model": "openai-main/gpt-4o", "messages": MESSAGES})
    openai_upstream.wait_for_request(timeout=5)

    gateway.terminate()
    thread.join(30)
    assert results, "the in-flight request never completed"
    result = results[0]
    assert result.status == 200, result.body
    assert result.json()["choices"][0]["message"]["content"] == chat_reply(MESSAGES)

    assert gateway.wait(40) in CLEAN_EXIT, gateway.output()
    request_id = str(result.headers.get("x-request-id"))
    rows = [r for r in gateway.logs(limit=100) if r["request_id"] == request_id]
    assert len(rows) == 1, "the log row was lost at shutdown"
    assert rows[0]["status"] == 200
    assert rows[0]["output_tokens"] == openai_upstream.last("/chat/completions").usage["completion_tokens"]  # type: ignore[index]


def test_sigterm_lets_inflight_stream_finish(
    gateway_factory: GatewayFactory, openai_upstream: OpenAIMock, vllm_upstream: OpenAIMock
) -> None:
    gateway, token = start(gateway_factory, openai_upstream, vllm_upstream)
    openai_upstream.chunk_delay = 0.2
    body = {"model": "openai-main/gpt-4o", "messages": MESSAGES, "stream": True}
    thread, results = in_background(gateway, token, body)
    openai_upstream.wait_for_request(timeout=5)
    time.sleep(0.3)

    gateway.terminate()
    thread.join(30)
    assert results and results[0].status == 200
    assert results[0].body.rstrip().endswith(b"data: [DONE]"), results[0].body[-200:]
    assert gateway.wait(40) in CLEAN_EXIT
    request_id = str(results[0].headers.get("x-request-id"))
    assert [r["streaming"] for r in gateway.logs(limit=100) if r["request_id"] == request_id] == [True]


def test_sigterm_stops_accepting_new_requests(
    gateway_factory: GatewayFactory, openai_upstream: OpenAIMock, vllm_upstream: OpenAIMock
) -> None:
    gateway, token = start(gateway_factory, openai_upstream, vllm_upstream)
    openai_upstream.delay_next(2.0)
    thread, _ = in_background(gateway, token, {"model": "openai-main/gpt-4o", "messages": MESSAGES})
    openai_upstream.wait_for_request(timeout=5)
    gateway.terminate()
    time.sleep(0.5)
    assert gateway.running, "the process must wait for the in-flight request"
    assert gateway.http_status("/health") is None, "a new connection was accepted after SIGTERM"
    thread.join(30)
    assert gateway.wait(40) in CLEAN_EXIT


def test_idle_gateway_exits_promptly_on_sigterm(
    gateway_factory: GatewayFactory, openai_upstream: OpenAIMock, vllm_upstream: OpenAIMock
) -> None:
    gateway, _ = start(gateway_factory, openai_upstream, vllm_upstream)
    started = time.monotonic()
    gateway.terminate()
    assert gateway.wait(20) in CLEAN_EXIT
    assert time.monotonic() - started < 5


# -- a stream still running when the drain period ends --------------------------------------------

LONG_PROMPT = " ".join(f"word{i}" for i in range(40))  # echoed word by word: a stream of ~40 events
GRACE = {"RELAYGATE_SHUTDOWN_GRACE_SECONDS": "1"}
ANTHROPIC_ACCOUNT = """\
---
type: provider-account/anthropic
name: claude
base_url: http://127.0.0.1:{anthropic_port}
auth_data: {type: api-key, api_key: sk-ant-shutdown-key}
integrations:
  - {name: sonnet, type: integration/model/anthropic, model_id: claude-sonnet-4-5, model_types: [chat]}
"""


def sse_events(body: bytes) -> list[tuple[str | None, bytes]]:
    """(event name, data) of every event of an SSE body."""
    events = []
    for block in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        name = None
        data = b""
        for line in block.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                data = line[5:].strip()
        if data:
            events.append((name, data))
    return events


def cut_by_shutdown(
    gateway: GatewayProcess, path: str, token: str, body: dict[str, Any], wait_started: Any
) -> tuple[HttpResult, dict[str, Any]]:
    """Start a slow stream, SIGTERM the gateway (1 s drain), and return the whole answer and its log row."""
    results: list[HttpResult] = []
    thread = threading.Thread(
        target=lambda: results.append(
            gateway.request(
                "POST", path, token=token, json=body, headers={"anthropic-version": "2023-06-01"}, timeout=30
            )
        ),
        daemon=True,
    )
    thread.start()
    wait_started(timeout=5)
    time.sleep(0.5)  # some content is relayed
    gateway.terminate()
    thread.join(30)
    assert results, "the stream did not end as a complete HTTP answer (cut silently)"
    assert gateway.wait(40) in CLEAN_EXIT, gateway.output()
    rows = [r for r in gateway.logs(limit=100) if r["request_id"] == results[0].headers.get("x-request-id")]
    assert len(rows) == 1, "the log row of the cut stream was lost"
    return results[0], rows[0]


def assert_logged_as_cut_by_shutdown(row: dict[str, Any]) -> None:
    assert row["status"] == 200
    assert row["truncated"] is True
    assert row["error_type"] == "service_unavailable", row


def test_stream_running_past_the_drain_period_ends_with_an_openai_error_event(
    gateway_factory: GatewayFactory, openai_upstream: OpenAIMock, vllm_upstream: OpenAIMock
) -> None:
    gateway = gateway_factory(
        STANDARD, env=GRACE, port=openai_upstream.port, vllm_port=vllm_upstream.port, closed_port=free_port()
    )
    token = gateway.create_token(user=ALICE)
    openai_upstream.chunk_delay = 0.25
    body = {"model": "openai-main/gpt-4o", "stream": True, "messages": [{"role": "user", "content": LONG_PROMPT}]}
    result, row = cut_by_shutdown(gateway, "/api/llm/chat/completions", token, body, openai_upstream.wait_for_request)

    assert result.status == 200
    events = sse_events(result.body)
    assert b"[DONE]" not in [data for _, data in events], "a cut stream must not end with [DONE]"
    contents = [orjson.loads(data) for _, data in events]
    assert any(c.get("choices") for c in contents[:-1]), "content was relayed before the cut"
    error = contents[-1]["error"]
    assert error["code"] == "server_shutting_down" and error["type"] == "service_unavailable", contents[-1]
    assert_logged_as_cut_by_shutdown(row)


@pytest.mark.parametrize("native", [True, False], ids=["native", "translated"])
def test_stream_running_past_the_drain_period_ends_with_a_messages_error_event(
    gateway_factory: GatewayFactory, openai_upstream: OpenAIMock, vllm_upstream: OpenAIMock, native: bool
) -> None:
    with AnthropicMock("sk-ant-shutdown-key").running() as claude:
        gateway = gateway_factory(
            STANDARD + ANTHROPIC_ACCOUNT,
            env=GRACE,
            port=openai_upstream.port,
            vllm_port=vllm_upstream.port,
            closed_port=free_port(),
            anthropic_port=claude.port,
        )
        token = gateway.create_token(user=ALICE)
        upstream: Any = claude if native else openai_upstream
        upstream.chunk_delay = 0.25
        body = {
            "model": "claude/sonnet" if native else "openai-main/gpt-4o",
            "stream": True,
            "max_tokens": 400,
            "messages": [{"role": "user", "content": LONG_PROMPT}],
        }
        result, row = cut_by_shutdown(gateway, "/api/llm/messages", token, body, upstream.wait_for_request)

    assert result.status == 200
    events = sse_events(result.body)
    names = [name for name, _ in events]
    assert "content_block_delta" in names, "content was relayed before the cut"
    assert "message_stop" not in names, "a cut stream must not end with message_stop"
    assert names[-1] == "error", names
    payload = orjson.loads(events[-1][1])
    assert payload["type"] == "error" and payload["error"]["type"] == "overloaded_error", payload
    assert "shutting down" in payload["error"]["message"]
    assert_logged_as_cut_by_shutdown(row)


def test_request_without_an_answer_when_the_drain_period_ends_gets_a_503(
    gateway_factory: GatewayFactory, openai_upstream: OpenAIMock, vllm_upstream: OpenAIMock
) -> None:
    gateway = gateway_factory(
        STANDARD, env=GRACE, port=openai_upstream.port, vllm_port=vllm_upstream.port, closed_port=free_port()
    )
    token = gateway.create_token(user=ALICE)
    openai_upstream.delay_next(10.0)
    thread, results = in_background(gateway, token, {"model": "openai-main/gpt-4o", "messages": MESSAGES})
    openai_upstream.wait_for_request(timeout=5)
    gateway.terminate()
    thread.join(30)
    assert results, "no answer at all"
    result = results[0]
    assert result.status == 503, result.body
    assert result.headers.get("x-request-id")
    assert result.json()["error"]["code"] == "server_shutting_down"
    assert gateway.wait(40) in CLEAN_EXIT
    rows = [r for r in gateway.logs(limit=100) if r["request_id"] == result.headers.get("x-request-id")]
    assert [r["status"] for r in rows] == [503]
