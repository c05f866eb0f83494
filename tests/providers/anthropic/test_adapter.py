"""The adapter's wiring: config compile (URL, auth headers), and `open` against the mock Anthropic API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from relaygate.config.compile import compile_manifests
from relaygate.config.loader import load_text
from relaygate.config.problems import ConfigError
from relaygate.errors import BadRequest
from relaygate.providers.base import MESSAGES, MESSAGES_COUNT_TOKENS, OPERATIONS, UpstreamCall
from relaygate.runtime.targets import Target
from tests.upstreams.anthropic_mock import AnthropicMock, echo_reply

KEY = "sk-ant-adapter-test-key"
CHAT = next(op for op in OPERATIONS if op.name == "chat")
ACCOUNT = """
type: provider-account/anthropic
name: claude
{base_url}
auth_data: {auth}
integrations:
  - {{name: sonnet, type: integration/model/anthropic, model_id: claude-sonnet-4-6, model_types: [chat]}}
"""


def target(auth: str = f"{{type: api-key, api_key: {KEY}}}", base_url: str = "") -> Target:
    text = ACCOUNT.format(auth=auth, base_url=f"base_url: {base_url}" if base_url else "")
    return compile_manifests(load_text(text)).models["claude/sonnet"]


def headers_of(t: Target) -> dict[str, str]:
    return {name.lower(): value for name, value in t.headers}


def test_default_base_url_is_the_sdk_one() -> None:
    assert target().base_url == "https://api.anthropic.com"


def test_api_key_goes_in_x_api_key_with_the_pinned_version() -> None:
    t = target()
    assert headers_of(t) == {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    assert KEY.encode() in t.secrets


def test_bearer_auth_goes_in_authorization() -> None:
    assert headers_of(target("{type: bearer-auth, bearer_token: tok-123456}")) == {
        "authorization": "Bearer tok-123456",
        "anthropic-version": "2023-06-01",
    }


def test_header_auth_is_sent_as_given_and_may_pin_its_own_version() -> None:
    headers = headers_of(target('{type: header, headers: {x-api-key: k-12345, anthropic-version: "2026-10-21"}}'))
    assert headers == {"x-api-key": "k-12345", "anthropic-version": "2026-10-21"}


def test_manifest_base_url_overrides_the_default() -> None:
    assert target(base_url="http://127.0.0.1:9/").base_url == "http://127.0.0.1:9"


def test_embedding_model_type_is_refused_at_compile() -> None:
    text = ACCOUNT.format(auth=f"{{type: api-key, api_key: {KEY}}}", base_url="").replace("[chat]", "[embedding]")
    with pytest.raises(ConfigError) as caught:
        compile_manifests(load_text(text))
    assert "anthropic does not serve embedding" in str(caught.value)


# -- open() against the mock -------------------------------------------------------------------------


@pytest.fixture
async def mock() -> AsyncIterator[AnthropicMock]:
    async with AnthropicMock(KEY) as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def call(
    t: Target,
    payload: dict[str, Any],
    *,
    operation: Any = CHAT,
    stream: bool = False,
    strict: bool = True,
    inbound: tuple[tuple[str, str], ...] = (),
) -> UpstreamCall:
    return UpstreamCall(
        t,
        operation,
        payload,
        b"",
        b"application/json",
        stream,
        30.0,
        "req-test",
        strict_openai=strict,
        inbound_headers=inbound,
    )


def chat_body(text: str = "hello adapter", **fields: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": text}], **fields}


async def test_chat_is_translated_both_ways(mock: AnthropicMock, session: aiohttp.ClientSession) -> None:
    t = target(base_url=mock.url)
    response = await t.adapter.open(session, call(t, chat_body()))
    body = orjson.loads(await response.read())
    response.close()
    assert response.status == 200 and response.content_type == "application/json"
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == echo_reply("hello adapter")
    sent = mock.last()
    assert sent.headers["x-api-key"] == KEY and sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.json == {
        "model": "claude-sonnet-4-6",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "hello adapter"}],
    }


async def test_chat_stream_is_translated(mock: AnthropicMock, session: aiohttp.ClientSession) -> None:
    t = target(base_url=mock.url)
    payload = chat_body(stream=True, stream_options={"include_usage": True})
    response = await t.adapter.open(session, call(t, payload, stream=True))
    assert response.content_type == "text/event-stream"
    data = b"".join([chunk async for chunk in response.iter_chunks()])
    response.close()
    assert data.endswith(b"data: [DONE]\n\n")
    assert b"chat.completion.chunk" in data and b"event:" not in data
    assert "stream_options" not in mock.last().json


async def test_overloaded_is_a_503_before_and_after_the_body(
    mock: AnthropicMock, session: aiohttp.ClientSession
) -> None:
    mock.fail_next(529)
    t = target(base_url=mock.url)
    response = await t.adapter.open(session, call(t, chat_body()))
    assert response.status == 503
    error = orjson.loads(await response.read())["error"]
    response.close()
    assert response.status == 503
    assert error == {"message": "Overloaded", "type": "server_error", "code": "overloaded_error", "param": None}


async def test_untranslatable_request_fails_before_any_upstream_call(
    mock: AnthropicMock, session: aiohttp.ClientSession
) -> None:
    t = target(base_url=mock.url)
    with pytest.raises(BadRequest) as caught:
        await t.adapter.open(session, call(t, chat_body(n=3)))
    assert caught.value.param == "n"
    assert mock.requests == []


async def test_native_messages_are_relayed_untranslated_with_caller_headers(
    mock: AnthropicMock, session: aiohttp.ClientSession
) -> None:
    t = target(base_url=mock.url)
    payload = {"model": "claude-sonnet-4-6", "max_tokens": 50, "messages": [{"role": "user", "content": "native"}]}
    inbound = (
        ("anthropic-version", "2026-10-21"),
        ("anthropic-beta", "context-1m-2025-08-07"),
        ("Anthropic-Beta", "fast-mode-2026-02-01"),
        ("x-api-key", "caller-must-not-pass"),
    )
    response = await t.adapter.open(session, call(t, payload, operation=MESSAGES, inbound=inbound))
    body = orjson.loads(await response.read())
    response.close()
    assert body["type"] == "message" and body["content"] == [{"type": "text", "text": echo_reply("native")}]
    sent = mock.last()
    assert sent.json == payload
    assert sent.headers["anthropic-version"] == "2026-10-21"
    assert sent.headers["anthropic-beta"] == "context-1m-2025-08-07,fast-mode-2026-02-01"
    assert sent.headers["x-api-key"] == KEY


async def test_native_beta_flags_join_the_configured_ones(mock: AnthropicMock, session: aiohttp.ClientSession) -> None:
    text = ACCOUNT.format(auth=f"{{type: api-key, api_key: {KEY}}}", base_url=f"base_url: {mock.url}").replace(
        "model_types: [chat]}", "model_types: [chat], headers: {anthropic-beta: context-1m-2025-08-07}}"
    )
    t = compile_manifests(load_text(text)).models["claude/sonnet"]
    payload = {"model": "claude-sonnet-4-6", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    inbound = (("anthropic-beta", "fast-mode-2026-02-01, context-1m-2025-08-07"),)
    response = await t.adapter.open(session, call(t, payload, operation=MESSAGES, inbound=inbound))
    await response.read()
    response.close()
    assert mock.last().headers["anthropic-beta"] == "context-1m-2025-08-07,fast-mode-2026-02-01"


async def test_native_messages_default_version_and_raw_stream(
    mock: AnthropicMock, session: aiohttp.ClientSession
) -> None:
    t = target(base_url=mock.url)
    payload = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "native stream"}],
    }
    response = await t.adapter.open(session, call(t, payload, operation=MESSAGES, stream=True))
    data = b"".join([chunk async for chunk in response.iter_chunks()])
    response.close()
    assert data.startswith(b"event: message_start\n") and data.rstrip().endswith(b'{"type":"message_stop"}')
    assert mock.last().headers["anthropic-version"] == "2023-06-01"


async def test_native_errors_stay_anthropic_shaped_with_their_status(
    mock: AnthropicMock, session: aiohttp.ClientSession
) -> None:
    mock.fail_next(529)
    t = target(base_url=mock.url)
    payload = {"model": "claude-sonnet-4-6", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    response = await t.adapter.open(session, call(t, payload, operation=MESSAGES))
    body = orjson.loads(await response.read())
    response.close()
    assert response.status == 529
    assert body["type"] == "error" and body["error"]["type"] == "overloaded_error"


async def test_native_count_tokens(mock: AnthropicMock, session: aiohttp.ClientSession) -> None:
    t = target(base_url=mock.url)
    payload = {"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "count these four words"}]}
    response = await t.adapter.open(session, call(t, payload, operation=MESSAGES_COUNT_TOKENS))
    body = orjson.loads(await response.read())
    response.close()
    assert mock.last("/count_tokens").path == "/v1/messages/count_tokens"
    assert isinstance(body["input_tokens"], int) and body["input_tokens"] > 4
