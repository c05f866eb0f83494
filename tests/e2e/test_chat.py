"""Chat completions through the gateway to OpenAI, Azure OpenAI and a self-hosted server."""

from __future__ import annotations

import time

import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.conftest import Stack
from tests.helpers.gateway import token_secret_of
from tests.helpers.manifests import AZURE_API_VERSION, AZURE_KEY, OPENAI_KEY
from tests.upstreams.openai_mock import RecordedRequest, chat_reply

MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "hello gateway"},
]


def assert_token_not_forwarded(recorded: RecordedRequest, token: str) -> None:
    """Neither the caller's token nor its secret part reaches the upstream (headers, query or body)."""
    for secret in (token, token_secret_of(token)):
        for name, value in recorded.headers.items():
            assert secret not in value, f"caller token leaked upstream in header {name}"
        assert secret not in str(recorded.query)
        assert secret.encode() not in recorded.body


# -- OpenAI -----------------------------------------------------------------------------------------


def test_openai_chat_returns_upstream_answer(stack: Stack) -> None:
    completion = stack.gateway.client(stack.alice).chat.completions.create(
        model="openai-main/gpt-4o",
        messages=MESSAGES,
    )
    assert completion.choices[0].message.content == chat_reply(MESSAGES)
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    recorded = stack.openai.last("/chat/completions")
    assert recorded.usage is not None
    assert completion.usage.prompt_tokens == recorded.usage["prompt_tokens"]
    assert completion.usage.completion_tokens == recorded.usage["completion_tokens"]


def test_openai_upstream_receives_provider_model_id(stack: Stack) -> None:
    stack.gateway.client(stack.alice).chat.completions.create(model="openai-main/gpt-4o", messages=MESSAGES)
    recorded = stack.openai.last("/chat/completions")
    assert recorded.path == "/v1/chat/completions"
    assert recorded.json["model"] == "gpt-4o"
    assert recorded.json["messages"] == MESSAGES


def test_openai_upstream_gets_provider_key_not_caller_token(stack: Stack) -> None:
    stack.gateway.client(stack.alice).chat.completions.create(model="openai-main/gpt-4o", messages=MESSAGES)
    recorded = stack.openai.last("/chat/completions")
    assert recorded.header("Authorization") == f"Bearer {OPENAI_KEY}"
    assert_token_not_forwarded(recorded, stack.alice)


def test_openai_chat_stream_relays_content(stack: Stack) -> None:
    chunks = list(
        stack.gateway.client(stack.alice).chat.completions.create(
            model="openai-main/gpt-4o",
            messages=MESSAGES,
            stream=True,
        )
    )
    with_choices = [c for c in chunks if c.choices]
    assert with_choices[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in with_choices) == chat_reply(MESSAGES)
    assert with_choices[-1].choices[0].finish_reason == "stop"


def test_stream_upstream_is_always_asked_for_usage(stack: Stack) -> None:
    list(
        stack.gateway.client(stack.alice).chat.completions.create(
            model="openai-main/gpt-4o",
            messages=MESSAGES,
            stream=True,
        )
    )
    recorded = stack.openai.last("/chat/completions")
    assert recorded.json["stream"] is True
    assert recorded.json["stream_options"]["include_usage"] is True


def test_stream_without_include_usage_sends_client_no_usage_chunk(stack: Stack) -> None:
    chunks = list(
        stack.gateway.client(stack.alice).chat.completions.create(
            model="openai-main/gpt-4o",
            messages=MESSAGES,
            stream=True,
        )
    )
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks), "the usage-only chunk (choices: []) must not reach this client"


def test_stream_with_include_usage_sends_client_usage_chunk(stack: Stack) -> None:
    chunks = list(
        stack.gateway.client(stack.alice).chat.completions.create(
            model="openai-main/gpt-4o",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1
    assert usage_chunks[0] is chunks[-1] and chunks[-1].choices == []
    sent = stack.openai.last("/chat/completions").usage
    assert sent is not None
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == sent["prompt_tokens"]
    assert chunks[-1].usage.completion_tokens == sent["completion_tokens"]


def test_stream_chunks_are_relayed_as_they_arrive(stack: Stack) -> None:
    stack.openai.chunk_delay = 0.3
    started = time.monotonic()
    first_content_at: float | None = None
    for chunk in stack.gateway.client(stack.alice).chat.completions.create(
        model="openai-main/gpt-4o",
        messages=[{"role": "user", "content": "one two three four five six"}],
        stream=True,
    ):
        if first_content_at is None and chunk.choices and chunk.choices[0].delta.content:
            first_content_at = time.monotonic() - started
    ended_at = time.monotonic() - started
    assert first_content_at is not None
    assert ended_at >= 2.0, "the mock paces ~10 chunks 300 ms apart"
    assert first_content_at < 1.0, f"first content after {first_content_at:.2f}s: the stream was buffered"
    assert ended_at - first_content_at > 1.5


def test_client_disconnect_cancels_upstream_and_logs_499(stack: Stack) -> None:
    stack.openai.chunk_delay = 0.3
    raw = stack.gateway.client(stack.alice).chat.completions.with_raw_response.create(
        model="openai-main/gpt-4o",
        messages=[{"role": "user", "content": "one two three four five six"}],
        stream=True,
    )
    stream = raw.parse()
    started = time.monotonic()
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    stream.close()
    # the paced upstream stream would complete ~3 s after it started unless the gateway cancels it
    time.sleep(max(0.0, 3.6 - (time.monotonic() - started)))
    assert stack.openai.last("/chat/completions").completed is False, "the upstream call was not cancelled"
    row = stack.gateway.wait_for_log(str(raw.headers["x-request-id"]))
    assert row["status"] == 499


async def test_async_client_streams_chat(stack: Stack) -> None:
    client = stack.gateway.async_client(stack.alice)
    stream = await client.chat.completions.create(
        model="openai-main/gpt-4o",
        messages=MESSAGES,
        stream=True,
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    await client.close()
    assert text == chat_reply(MESSAGES)


@pytest.mark.parametrize("prefix", ["/api/llm", "/v1", "/api/llm/v1"])
def test_chat_works_under_every_api_prefix(stack: Stack, prefix: str) -> None:
    completion = stack.gateway.client(stack.alice, prefix=prefix).chat.completions.create(
        model="openai-main/gpt-4o",
        messages=MESSAGES,
    )
    assert completion.choices[0].message.content == chat_reply(MESSAGES)


# -- Azure OpenAI -----------------------------------------------------------------------------------


def test_azure_chat_calls_deployment_url_with_api_key(stack: Stack) -> None:
    completion = stack.gateway.client(stack.alice).chat.completions.create(
        model="azure-main/gpt4o-deploy",
        messages=MESSAGES,
    )
    assert completion.choices[0].message.content == chat_reply(MESSAGES)
    recorded = stack.openai.last("/chat/completions")
    assert recorded.path == "/openai/deployments/my-deployment/chat/completions"
    assert recorded.query.get("api-version") == AZURE_API_VERSION
    assert recorded.header("api-key") == AZURE_KEY
    assert_token_not_forwarded(recorded, stack.alice)


def test_azure_chat_stream(stack: Stack) -> None:
    chunks = list(
        stack.gateway.client(stack.alice).chat.completions.create(
            model="azure-main/gpt4o-deploy",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == chat_reply(MESSAGES)
    assert chunks[-1].usage is not None
    recorded = stack.openai.last("/chat/completions")
    assert recorded.path == "/openai/deployments/my-deployment/chat/completions"
    assert recorded.json["stream_options"]["include_usage"] is True


# -- self-hosted ------------------------------------------------------------------------------------


def test_self_hosted_chat_sends_hosted_model_name(stack: Stack) -> None:
    completion = stack.gateway.client(stack.alice).chat.completions.create(
        model="vllm-local/llama",
        messages=MESSAGES,
    )
    assert completion.choices[0].message.content == chat_reply(MESSAGES)
    recorded = stack.vllm.last("/chat/completions")
    assert recorded.path == "/v1/chat/completions"
    assert recorded.json["model"] == "meta-llama/Llama-3.1-8B"
    assert_token_not_forwarded(recorded, stack.alice)
    assert not stack.openai.requests, "the self-hosted model went to the wrong upstream"


def test_self_hosted_chat_stream(stack: Stack) -> None:
    chunks = list(
        stack.gateway.client(stack.alice).chat.completions.create(
            model="vllm-local/llama",
            messages=MESSAGES,
            stream=True,
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == chat_reply(MESSAGES)
    recorded = stack.vllm.last("/chat/completions")
    assert recorded.json["model"] == "meta-llama/Llama-3.1-8B"
    assert recorded.json["stream_options"]["include_usage"] is True
