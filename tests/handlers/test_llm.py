"""The chat route driven in-process: the ASGI driver in front, the OpenAI mock in the same event loop behind.

No server and no thread: `AsgiDriver` runs the app's lifespan and requests in the test's loop, the
real `openai` SDK talks to it through `AsgiTransport`, and upstream traffic reaches the in-loop
`OpenAIMock` either by its address or, for a host name that resolves nowhere, through the upstream
session's `connector_factory` seam (a resolver that maps the name to the mock).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import TCPConnector
from aiohttp.abc import AbstractResolver, ResolveResult
from openai import AsyncOpenAI

from relaygate.app import build_app
from relaygate.auth.open_store import open_token_store
from relaygate.auth.store import KIND_PERSONAL
from relaygate.observe.store import open_log_store
from relaygate.settings import Settings
from relaygate.upstream.resolver import HostAllowed
from tests.helpers import manifests
from tests.helpers.asgi_driver import AsgiDriver, StartupFailed
from tests.helpers.gateway import render
from tests.upstreams.openai_mock import OpenAIMock, chat_reply

NAMED_HOST = "openai.upstream.test"  # resolves nowhere: only the test's connector knows it
NAMED_ACCOUNT = f"""\
type: provider-account/openai
name: openai-named
base_url: http://{NAMED_HOST}/v1
auth_data: {{type: api-key, api_key: {manifests.OPENAI_KEY}}}
collaborators: [{{subject: "team:everyone", role_id: provider-account-access}}]
integrations:
  - {{name: gpt-4o, type: integration/model/openai, model_id: gpt-4o, model_types: [chat]}}
"""
MESSAGES: list[Any] = [{"role": "user", "content": "say something in process"}]


class MappedResolver(AbstractResolver):
    """Answers every name in `hosts` with 127.0.0.1 and the mapped port; refuses the rest."""

    def __init__(self, hosts: dict[str, int]) -> None:
        self.hosts = hosts

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host not in self.hosts:
            raise OSError(f"{host} is not an in-process upstream")
        return [
            ResolveResult(
                hostname=host, host="127.0.0.1", port=self.hosts[host], family=socket.AF_INET, proto=0, flags=0
            )
        ]

    async def close(self) -> None:
        pass


@dataclass
class Rig:
    driver: AsgiDriver
    openai: OpenAIMock
    alice: str
    settings: Settings

    def sdk(self, **options: Any) -> AsyncOpenAI:
        return AsyncOpenAI(
            api_key=self.alice,
            base_url=self.driver.base_url + "/api/llm",
            http_client=self.driver.http_client(),
            max_retries=0,
            **options,
        )

    async def log_rows_of(self, request_id: str, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The log rows of one request, once the sink has written them (it writes in batches)."""
        store = open_log_store(self.settings.database_url)
        deadline = time.monotonic() + timeout
        try:
            while True:
                rows = [row for row in store.query(limit=100) if row["request_id"] == request_id]
                if rows or time.monotonic() > deadline:
                    return rows
                await asyncio.sleep(0.05)
        finally:
            store.close()


def _settings(tmp_path: Path, config: str) -> Settings:
    path = tmp_path / "relaygate.yaml"
    path.write_text(config, encoding="utf-8")
    return Settings(config_path=str(path), database_url=f"sqlite:///{tmp_path / 'relaygate.db'}", watch_config=False)


def _token(settings: Settings) -> str:
    store = open_token_store(settings.database_url)
    try:
        return store.create(KIND_PERSONAL, f"user:{manifests.ALICE}", None, None)[0]
    finally:
        store.close()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with OpenAIMock(manifests.OPENAI_KEY) as mock:
        config = render(manifests.OPENAI_ACCOUNT, port=mock.port) + "---\n" + NAMED_ACCOUNT
        settings = _settings(tmp_path, config)
        alice = _token(settings)

        def connector(allowed: HostAllowed) -> TCPConnector:
            return TCPConnector(resolver=MappedResolver({NAMED_HOST: mock.port}))

        app = build_app(settings, connector_factory=connector)
        async with AsgiDriver(app) as driver:
            yield Rig(driver, mock, alice, settings)


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
    settings = _settings(tmp_path, "type: provider-account/openai\nname: broken\n")
    with pytest.raises(StartupFailed, match="broken"):
        async with AsgiDriver(build_app(settings)):
            pass
