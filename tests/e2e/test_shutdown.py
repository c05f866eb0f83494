"""SIGTERM: stop accepting, let in-flight requests finish, flush the log, then exit."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

from openai.types.chat import ChatCompletionMessageParam

from tests.conftest import GatewayFactory
from tests.helpers.gateway import Gateway, HttpResult, free_port
from tests.helpers.manifests import ALICE, STANDARD
from tests.upstreams.openai_mock import OpenAIMock, chat_reply

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "finish me"}]
# A clean exit after SIGTERM: 0, or the signal re-raised after the graceful shutdown (uvicorn does that).
CLEAN_EXIT = (0, -signal.SIGTERM, 128 + signal.SIGTERM)


def start(gateway_factory: GatewayFactory, upstream: OpenAIMock, vllm: OpenAIMock) -> tuple[Gateway, str]:
    gateway = gateway_factory(STANDARD, port=upstream.port, vllm_port=vllm.port, closed_port=free_port())
    return gateway, gateway.create_token(user=ALICE)


def in_background(gateway: Gateway, token: str, body: dict[str, Any]) -> tuple[threading.Thread, list[HttpResult]]:
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
