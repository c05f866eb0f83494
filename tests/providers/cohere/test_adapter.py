"""The adapter wired up: config compile (URL, auth, operations) and real HTTP against the Cohere mock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import aiohttp
import orjson
import pytest

from relaygate.config.compile import compile_manifests
from relaygate.config.loader import load_text
from relaygate.config.problems import ConfigError
from relaygate.providers.base import OPERATIONS, UpstreamCall
from relaygate.providers.cohere import CohereAdapter
from relaygate.runtime.targets import Target
from tests.helpers.sse import sse_events
from tests.upstreams.cohere_mock import CohereMock, chat_reply

KEY = "co-test-key-123"
ACCOUNT = """
type: provider-account/cohere
name: cohere-main
{base_url}
auth_data: {auth}
integrations:
  - {{name: command, type: integration/model/cohere, model_id: command-a-03-2025, model_types: [chat]}}
  - {{name: embed, type: integration/model/cohere, model_id: embed-v4.0, model_types: [embedding]}}
  - {{name: rerank, type: integration/model/cohere, model_id: rerank-v3.5, model_types: [rerank]}}
"""
OPS = {op.name: op for op in OPERATIONS}
USER = {"role": "user", "content": "x"}


def _targets(base_url: str = "", auth: str = f"{{type: api-key, api_key: {KEY}}}") -> dict[str, Target]:
    text = ACCOUNT.format(base_url=f"base_url: {base_url}" if base_url else "", auth=auth)
    return compile_manifests(load_text(text)).models


def test_compiled_target_uses_cohere_default_base_and_bearer_key() -> None:
    target = _targets()["cohere-main/command"]
    assert target.base_url == "https://api.cohere.com"
    assert dict(target.headers)["Authorization"] == f"Bearer {KEY}"
    assert KEY.encode() in target.secrets


def test_bearer_auth_is_accepted() -> None:
    target = _targets(auth="{type: bearer-auth, bearer_token: tok-abcdef}")["cohere-main/embed"]
    assert dict(target.headers)["Authorization"] == "Bearer tok-abcdef"


def test_unusable_auth_is_refused_by_configure() -> None:
    aws = SimpleNamespace(type="aws")
    with pytest.raises(ValueError, match="Cohere takes api-key or bearer-auth credentials, not aws"):
        CohereAdapter().configure(None, aws)
    with pytest.raises(ValueError, match="needs auth_data"):
        CohereAdapter().configure(None, None)


def test_unserved_model_type_is_refused_at_load() -> None:
    text = ACCOUNT.format(base_url="", auth="{type: api-key, api_key: k1234}").replace(
        "model_types: [rerank]", "model_types: [image]"
    )
    with pytest.raises(ConfigError) as raised:
        compile_manifests(load_text(text))
    assert "cohere does not serve image" in str(raised.value)


def test_header_auth_is_sent_as_given() -> None:
    adapter = CohereAdapter()
    auth = SimpleNamespace(type="header", headers={"X-Api-Key": "abc"})
    assert adapter.configure(None, auth) == ({"X-Api-Key": "abc"}, {})


@pytest.fixture
async def mock() -> AsyncIterator[CohereMock]:
    async with CohereMock(KEY) as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def _call(target: Target, operation: str, payload: dict[str, Any], stream: bool = False) -> UpstreamCall:
    return UpstreamCall(
        target, OPS[operation], {**payload, "model": target.model_id}, b"", b"application/json", stream, 30.0, "req-1"
    )


async def test_chat_goes_to_v2_chat_and_comes_back_openai_shaped(
    mock: CohereMock, session: aiohttp.ClientSession
) -> None:
    target = _targets(mock.url)["cohere-main/command"]
    messages = [{"role": "user", "content": "hello cohere"}]
    response = await CohereAdapter().open(session, _call(target, "chat", {"messages": messages, "top_p": 0.5}))
    body = orjson.loads(await response.read())
    response.close()
    assert response.status == 200 and response.content_type == "application/json"
    assert body["choices"][0]["message"]["content"] == chat_reply(messages)
    recorded = mock.last("/v2/chat")
    assert recorded.headers["Authorization"] == f"Bearer {KEY}"
    assert recorded.json == {"model": "command-a-03-2025", "messages": messages, "p": 0.5, "stream": False}


async def test_chat_stream_is_translated_chunk_by_chunk(mock: CohereMock, session: aiohttp.ClientSession) -> None:
    target = _targets(mock.url)["cohere-main/command"]
    payload = {
        "messages": [{"role": "user", "content": "one two three"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    response = await CohereAdapter().open(session, _call(target, "chat", payload, stream=True))
    raw = b"".join([chunk async for chunk in response.iter_chunks()])
    response.close()
    assert response.content_type == "text/event-stream"
    events = sse_events(raw)
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e != "[DONE]" and e["choices"])
    assert text == "echo: one two three"
    assert events[-1] == "[DONE]"
    assert mock.last("/v2/chat").headers["Accept"] == "text/event-stream"


async def test_embeddings_and_rerank_use_their_v2_paths(mock: CohereMock, session: aiohttp.ClientSession) -> None:
    targets = _targets(mock.url)
    adapter = CohereAdapter()
    embedded = await adapter.open(session, _call(targets["cohere-main/embed"], "embeddings", {"input": ["a b", "c"]}))
    assert orjson.loads(await embedded.read())["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    embedded.close()
    ranked = await adapter.open(
        session, _call(targets["cohere-main/rerank"], "rerank", {"query": "fox", "documents": ["a fox", "a dog"]})
    )
    answer = orjson.loads(await ranked.read())
    ranked.close()
    assert [r["index"] for r in answer["results"]] == [0, 1]
    assert answer["results"][0]["document"] == {"text": "a fox"}
    assert [r.path for r in mock.requests] == ["/v2/embed", "/v2/rerank"]


async def test_rerank_return_documents_false_is_honoured_not_forwarded(
    mock: CohereMock, session: aiohttp.ClientSession
) -> None:
    target = _targets(mock.url)["cohere-main/rerank"]
    payload = {"query": "fox", "documents": ["a dog", "a fox"], "return_documents": False}
    response = await CohereAdapter().open(session, _call(target, "rerank", payload))
    answer = orjson.loads(await response.read())
    response.close()
    assert response.status == 200, answer
    assert answer["results"] == [{"index": 1, "relevance_score": 1.0}, {"index": 0, "relevance_score": 0.0}]
    assert "return_documents" not in mock.last("/v2/rerank").json


async def test_upstream_error_is_classified_before_the_body_is_read(
    mock: CohereMock, session: aiohttp.ClientSession
) -> None:
    target = _targets(mock.url)["cohere-main/command"]
    mock.fail_next(499, message="request cancelled")
    response = await CohereAdapter().open(session, _call(target, "chat", {"messages": [USER]}))
    assert response.status == 502  # what the router sees
    body = orjson.loads(await response.read())
    response.close()
    assert body == {
        "error": {"message": "request cancelled", "type": "upstream_error", "code": "upstream_cancelled", "param": None}
    }


async def test_wrong_key_is_a_401_with_cohere_message(mock: CohereMock, session: aiohttp.ClientSession) -> None:
    target = _targets(mock.url, auth="{type: api-key, api_key: wrong-key-99}")["cohere-main/command"]
    response = await CohereAdapter().open(session, _call(target, "chat", {"messages": [USER]}))
    body = orjson.loads(await response.read())
    response.close()
    assert response.status == 401
    assert body["error"]["message"] == "invalid api token"
