"""The Cohere mock checks requests the way Cohere does and frames streams the way Cohere does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from tests.upstreams.cohere_mock import CohereMock, argument_fragments, tool_arguments

KEY = "co-mock-key-42"
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
    },
}


@pytest.fixture
async def mock() -> AsyncIterator[CohereMock]:
    async with CohereMock(KEY) as server:
        yield server


async def _post(mock: CohereMock, path: str, body: Any, key: str = KEY) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session:
        async with session.post(
            mock.url + path, data=orjson.dumps(body), headers={"Authorization": f"Bearer {key}"}
        ) as response:
            return response.status, await response.read()


async def test_missing_or_wrong_key_is_cohere_401(mock: CohereMock) -> None:
    status, body = await _post(mock, "/v2/chat", {}, key="nope")
    assert status == 401
    assert orjson.loads(body)["message"] == "invalid api token"


async def test_openai_fields_are_refused(mock: CohereMock) -> None:
    status, body = await _post(
        mock, "/v2/chat", {"model": "c", "messages": [{"role": "user", "content": "x"}], "top_p": 0.5}
    )
    assert status == 400
    assert "top_p" in orjson.loads(body)["message"]


async def test_tool_result_must_answer_an_earlier_call(mock: CohereMock) -> None:
    messages = [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "nope", "content": "1"}]
    status, body = await _post(mock, "/v2/chat", {"model": "c", "messages": messages})
    assert (status, orjson.loads(body)["message"]) == (400, "tool call id not found in previous tool calls")


async def test_stream_uses_cohere_event_framing_and_splits_tool_arguments(mock: CohereMock) -> None:
    status, raw = await _post(
        mock,
        "/v2/chat",
        {"model": "c", "stream": True, "tools": [TOOL], "messages": [{"role": "user", "content": "Madrid"}]},
    )
    assert status == 200
    blocks = raw.split(b"\n\n")[:-1]
    types = []
    for block in blocks:
        event_line, data_line = block.split(b"\n")
        event = orjson.loads(data_line.removeprefix(b"data: "))
        assert event_line == b"event: " + event["type"].encode()
        types.append(event["type"])
    fragments = argument_fragments(tool_arguments(TOOL, "Madrid"))
    assert len(fragments) > 2
    assert types[0] == "message-start" and types[-1] == "message-end"
    assert types.count("tool-call-delta") == len(fragments)
    assert orjson.loads(blocks[-1].split(b"\n")[1][6:])["delta"]["finish_reason"] == "TOOL_CALL"


async def test_embed_requires_input_type_and_embedding_types(mock: CohereMock) -> None:
    status, body = await _post(mock, "/v2/embed", {"model": "e", "texts": ["a"], "embedding_types": ["float"]})
    assert (status, orjson.loads(body)["message"]) == (
        400,
        "invalid request: valid input_type must be provided with the provided model",
    )
    status, body = await _post(mock, "/v2/embed", {"model": "e", "texts": ["a"], "input_type": "search_query"})
    assert (status, orjson.loads(body)["message"]) == (400, "embedding_types parameter is required")
