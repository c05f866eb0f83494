"""The chat route driven in-process: the ASGI driver in front, the OpenAI mock in the same event loop behind.

No server and no thread: `AsgiDriver` runs the app's lifespan and requests in the test's loop, the
real `openai` SDK talks to it through `AsgiTransport`, and upstream traffic reaches the in-loop
`OpenAIMock` either by its address or, for a host name that resolves nowhere, through the upstream
session's `connector_factory` seam (a resolver that maps the name to the mock).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from relaygate.app import build_app
from tests.helpers import manifests
from tests.helpers.asgi_driver import AsgiDriver, StartupFailed
from tests.helpers.inprocess import MESSAGES, NAMED_HOST, Rig, settings_for
from tests.upstreams.openai_mock import chat_reply


async def test_chat_answer_reaches_the_sdk_with_the_upstream_key_injected(rig: Rig) -> None:
    async with rig.sdk() as client:
        raw = await client.chat.completions.with_raw_response.create(model="openai-main/gpt-4o", messages=MESSAGES)
    answer = raw.parse()
    assert answer.choices[0].message.content == chat_reply(MESSAGES)
    assert raw.headers.get("x-request-id")
    (seen,) = rig.openai.requests
    assert seen.header("authorization") == f"Bearer {manifests.OPENAI_KEY}"
    assert seen.json is not None and seen.json["model"] == "gpt-4o"


async def test_stream_arrives_in_pieces_through_the_sdk(rig: Rig) -> None:
    async with rig.sdk() as client:
        stream = await client.chat.completions.create(model="openai-main/gpt-4o", messages=MESSAGES, stream=True)
        deltas = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
    assert len([d for d in deltas if d]) > 1
    assert "".join(deltas) == chat_reply(MESSAGES)


async def test_an_upstream_host_name_reaches_the_mock_through_the_connector_seam(rig: Rig) -> None:
    answer = await rig.driver.request(
        "POST",
        "/api/llm/chat/completions",
        token=rig.alice,
        json={"model": "openai-named/gpt-4o", "messages": MESSAGES},
    )
    assert answer.status == 200, answer.body
    assert answer.json()["choices"][0]["message"]["content"] == chat_reply(MESSAGES)
    assert rig.openai.requests[-1].header("host") == NAMED_HOST


async def test_a_bad_token_is_an_openai_shaped_401(rig: Rig) -> None:
    answer = await rig.driver.request(
        "POST", "/api/llm/chat/completions", token="rg-nope", json={"model": "openai-main/gpt-4o", "messages": MESSAGES}
    )
    assert answer.status == 401
    assert answer.json()["error"]["type"]
    assert answer.header("x-request-id")
    assert rig.openai.requests == []


async def test_a_client_leaving_mid_stream_is_logged_as_499(rig: Rig) -> None:
    rig.openai.chunk_delay = 0.2
    body = {"model": "openai-main/gpt-4o", "messages": MESSAGES, "stream": True}
    async with rig.driver.stream(
        "POST", "/api/llm/chat/completions", token=rig.alice, json=body, headers={"x-request-id": "left-early"}
    ) as answer:
        assert answer.status == 200
        first = await anext(answer.chunks())
        assert first.startswith(b"data: ")
        await answer.disconnect()
        assert not answer.complete
    assert [row["status"] for row in await rig.log_rows_of("left-early")] == [499]


async def test_an_invalid_config_fails_startup_with_the_reason(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "type: provider-account/openai\nname: broken\n")
    with pytest.raises(StartupFailed, match="broken"):
        async with AsgiDriver(build_app(settings)):
            pass
