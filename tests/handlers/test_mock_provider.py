"""Health endpoints and the built-in mock provider (no upstream at all)."""

from __future__ import annotations

import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.conftest import GatewayFactory, Stack
from tests.helpers.manifests import ALICE, MOCK_ONLY

MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "sys"},
    {"role": "user", "content": "repeat after me please"},
]


@pytest.mark.parametrize("path", ["/health", "/ready"])
def test_health_endpoints_answer_200(stack: Stack, path: str) -> None:
    assert stack.gateway.http_status(path) == 200


@pytest.mark.parametrize("path", ["/health", "/ready"])
def test_health_endpoints_need_no_token(stack: Stack, path: str) -> None:
    result = stack.gateway.request("GET", path)
    assert result.status == 200


def test_mock_chat_echoes_last_user_message(stack: Stack) -> None:
    completion = stack.gateway.client(stack.alice).chat.completions.create(
        model="mock/echo",
        messages=MESSAGES,
    )
    content = completion.choices[0].message.content or ""
    assert "repeat after me please" in content
    assert completion.choices[0].finish_reason == "stop"
    assert not stack.openai.requests and not stack.vllm.requests


def test_mock_chat_is_deterministic(stack: Stack) -> None:
    client = stack.gateway.client(stack.alice)
    first = client.chat.completions.create(model="mock/echo", messages=MESSAGES)
    second = client.chat.completions.create(model="mock/echo", messages=MESSAGES)
    assert first.choices[0].message.content == second.choices[0].message.content
    assert first.usage == second.usage


def test_mock_chat_reports_realistic_usage(stack: Stack) -> None:
    completion = stack.gateway.client(stack.alice).chat.completions.create(
        model="mock/echo",
        messages=MESSAGES,
    )
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    longer = stack.gateway.client(stack.alice).chat.completions.create(
        model="mock/echo",
        messages=[{"role": "user", "content": "repeat after me please " * 10}],
    )
    assert longer.usage is not None and longer.usage.prompt_tokens > usage.prompt_tokens


def test_mock_chat_stream_matches_non_stream(stack: Stack) -> None:
    client = stack.gateway.client(stack.alice)
    plain = client.chat.completions.create(model="mock/echo", messages=MESSAGES)
    chunks = list(client.chat.completions.create(model="mock/echo", messages=MESSAGES, stream=True))
    text_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(text_chunks) >= 2, "the mock streams its answer in several chunks"
    assert "".join(c.choices[0].delta.content or "" for c in text_chunks) == plain.choices[0].message.content
    assert [c for c in chunks if c.choices][-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)


def test_mock_chat_stream_include_usage(stack: Stack) -> None:
    chunks = list(
        stack.gateway.client(stack.alice).chat.completions.create(
            model="mock/echo",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_mock_stream_is_logged_with_usage(stack: Stack) -> None:
    raw = stack.gateway.client(stack.alice).chat.completions.with_raw_response.create(
        model="mock/echo",
        messages=MESSAGES,
        stream=True,
    )
    list(raw.parse())
    row = stack.gateway.wait_for_log(str(raw.headers["x-request-id"]))
    assert row["provider"] == "mock"
    assert row["streaming"] is True
    assert row["input_tokens"] and row["output_tokens"]


def test_gateway_with_only_the_mock_provider_serves(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(MOCK_ONLY)
    token = gateway.create_token(user=ALICE)
    completion = gateway.client(token).chat.completions.create(
        model="mock/echo",
        messages=[{"role": "user", "content": "standalone"}],
    )
    assert "standalone" in (completion.choices[0].message.content or "")
