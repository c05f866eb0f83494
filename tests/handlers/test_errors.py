"""Upstream failures: pass-through statuses, unreachable upstreams, timeouts, broken streams."""

from __future__ import annotations

import time
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.conftest import GatewayFactory, Stack
from tests.helpers.error_shape import assert_error_shape
from tests.helpers.manifests import ALICE, MOCK_ONLY, OPENAI_KEY

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello errors"}]
CHAT = {"model": "openai-main/gpt-4o", "messages": MESSAGES}


def chat(stack: Stack, **options: Any) -> Any:
    return stack.gateway.client(stack.alice).chat.completions.create(
        model="openai-main/gpt-4o",
        messages=MESSAGES,
        **options,
    )


# -- upstream error statuses pass through -----------------------------------------------------------


def upstream_fails(
    stack: Stack, status: int, message: str, error: type[openai.APIStatusError]
) -> openai.APIStatusError:
    """Make the upstream answer `status` with `message`; a chat call must raise `error` carrying that message."""
    stack.openai.fail_next(status, message=message, count=10)
    with pytest.raises(error) as caught:
        chat(stack)
    assert message in caught.value.message
    return caught.value


def test_upstream_429_passes_through(stack: Stack) -> None:
    caught = upstream_fails(stack, 429, "Rate limit reached for gpt-4o (mock)", openai.RateLimitError)
    assert caught.status_code == 429


def test_upstream_500_passes_through(stack: Stack) -> None:
    caught = upstream_fails(stack, 500, "The server had an error (mock)", openai.InternalServerError)
    assert caught.status_code == 500


def test_upstream_400_passes_through(stack: Stack) -> None:
    upstream_fails(stack, 400, "Invalid 'messages[0].content' (mock)", openai.BadRequestError)


def test_upstream_error_body_keeps_openai_shape(stack: Stack) -> None:
    stack.openai.fail_next(429, message="slow down (mock)", count=10)
    result = stack.gateway.request("POST", "/api/llm/chat/completions", token=stack.alice, json=CHAT)
    assert result.status == 429
    assert assert_error_shape(result.json())["message"] == "slow down (mock)"
    assert result.headers.get("x-request-id")


def test_upstream_error_never_reveals_the_upstream_key(stack: Stack) -> None:
    stack.openai.fail_next(401, message=f"Incorrect API key provided: {OPENAI_KEY}.", count=10)
    result = stack.gateway.request("POST", "/api/llm/chat/completions", token=stack.alice, json=CHAT)
    assert result.status >= 400
    assert OPENAI_KEY.encode() not in result.body


# -- gateway-made upstream errors -------------------------------------------------------------------


def test_unreachable_upstream_is_502(stack: Stack) -> None:
    result = stack.gateway.request(
        "POST", "/api/llm/chat/completions", token=stack.alice, json={**CHAT, "model": "unreachable/gpt-4o"}
    )
    assert result.status == 502, result.body
    assert_error_shape(result.json())
    assert result.headers.get("x-request-id")


def test_unreachable_upstream_raises_sdk_status_error(stack: Stack) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        stack.gateway.client(stack.alice).chat.completions.create(model="unreachable/gpt-4o", messages=MESSAGES)
    assert caught.value.status_code == 502


def test_upstream_slower_than_request_timeout_is_504(stack: Stack) -> None:
    stack.openai.delay_next(2.0, count=10)
    started = time.monotonic()
    result = stack.gateway.request(
        "POST", "/api/llm/chat/completions", token=stack.alice, json=CHAT, headers={"x-tfy-request-timeout": "200"}
    )
    elapsed = time.monotonic() - started
    assert result.status == 504, result.body
    assert_error_shape(result.json())
    assert elapsed < 1.5, f"the 200 ms timeout took {elapsed:.2f}s"


def test_request_timeout_raises_sdk_gateway_timeout(stack: Stack) -> None:
    stack.openai.delay_next(2.0, count=10)
    with pytest.raises(openai.APIStatusError) as caught:
        chat(stack, extra_headers={"x-tfy-request-timeout": "200"})
    assert caught.value.status_code == 504


def test_request_timeout_longer_than_upstream_succeeds(stack: Stack) -> None:
    stack.openai.delay_next(0.3)
    result = stack.gateway.request(
        "POST", "/api/llm/chat/completions", token=stack.alice, json=CHAT, headers={"x-tfy-request-timeout": "5000"}
    )
    assert result.status == 200


# -- broken streams ---------------------------------------------------------------------------------


def test_stream_upstream_error_after_content_reaches_client_as_error(stack: Stack) -> None:
    stack.openai.fail_stream_after(3, message="upstream broke mid-stream (mock)")
    received: list[str] = []
    with pytest.raises(openai.APIError):
        for chunk in chat(stack, stream=True):
            if chunk.choices:
                received.append(chunk.choices[0].delta.content or "")
    assert "".join(received), "content sent before the failure must reach the client"


def test_stream_upstream_drop_does_not_end_cleanly(stack: Stack) -> None:
    stack.openai.drop_stream_after(3)
    result = stack.gateway.request(
        "POST", "/api/llm/chat/completions", token=stack.alice, json={**CHAT, "stream": True}
    )
    # whatever the gateway relays, a broken upstream stream must not look complete
    assert b"data: [DONE]" not in result.body


def test_stream_upstream_error_before_content_is_an_http_error(stack: Stack) -> None:
    stack.openai.fail_next(503, count=10)
    with pytest.raises(openai.APIStatusError) as caught:
        list(chat(stack, stream=True))
    assert caught.value.status_code == 503


def test_stream_dropped_after_content_is_logged_truncated(stack: Stack) -> None:
    stack.openai.drop_stream_after(3)
    result = stack.gateway.request(
        "POST", "/api/llm/chat/completions", token=stack.alice, json={**CHAT, "stream": True}
    )
    assert b"data: [DONE]" not in result.body
    row = stack.gateway.wait_for_log(str(result.headers.get("x-request-id")))
    assert row["streaming"] is True
    assert row.get("truncated") is True, row


def test_stream_error_event_after_content_is_logged_truncated(stack: Stack) -> None:
    stack.openai.fail_stream_after(3, message="upstream broke mid-stream (mock)")
    result = stack.gateway.request(
        "POST", "/api/llm/chat/completions", token=stack.alice, json={**CHAT, "stream": True}
    )
    assert b"data: [DONE]" not in result.body
    row = stack.gateway.wait_for_log(str(result.headers.get("x-request-id")))
    assert row["streaming"] is True
    assert row.get("truncated") is True, row


def test_ttft_timeout_is_408(stack: Stack) -> None:
    stack.openai.delay_next(2.0, count=10)
    started = time.monotonic()
    result = stack.gateway.request(
        "POST",
        "/api/llm/chat/completions",
        token=stack.alice,
        json={**CHAT, "stream": True},
        headers={"x-tfy-ttft-timeout-ms": "300"},
    )
    assert result.status == 408, result.body
    assert_error_shape(result.json())
    assert time.monotonic() - started < 1.8


def test_body_over_limit_is_413(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(MOCK_ONLY, env={"RELAYGATE_MAX_REQUEST_BODY_BYTES": "4096"})
    token = gateway.create_token(user=ALICE)
    small = {"model": "mock/echo", "messages": [{"role": "user", "content": "x" * 100}]}
    big = {"model": "mock/echo", "messages": [{"role": "user", "content": "x" * 20_000}]}
    assert gateway.request("POST", "/api/llm/chat/completions", token=token, json=small).status == 200
    result = gateway.request("POST", "/api/llm/chat/completions", token=token, json=big)
    assert result.status == 413, result.body
    assert_error_shape(result.json())
