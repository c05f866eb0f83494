"""An in-process gateway for pipeline and handler tests: the ASGI driver in front, mocks in the same loop.

`rig` (a pytest fixture, imported by the test modules that use it) serves the OpenAI mock's account and
one account on a host name that resolves nowhere but through the upstream session's `connector_factory`
seam; `Rig.sdk()` is the real `openai` SDK talking to the app through the driver's transport.
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
from tests.helpers.asgi_driver import AsgiDriver
from tests.helpers.gateway import render
from tests.upstreams.openai_mock import OpenAIMock

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


def settings_for(tmp_path: Path, config: str) -> Settings:
    path = tmp_path / "relaygate.yaml"
    path.write_text(config, encoding="utf-8")
    return Settings(config_path=str(path), database_url=f"sqlite:///{tmp_path / 'relaygate.db'}", watch_config=False)


def token_for(settings: Settings) -> str:
    store = open_token_store(settings.database_url)
    try:
        return store.create(KIND_PERSONAL, f"user:{manifests.ALICE}", None, None)[0]
    finally:
        store.close()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with OpenAIMock(manifests.OPENAI_KEY) as mock:
        config = render(manifests.OPENAI_ACCOUNT, port=mock.port) + "---\n" + NAMED_ACCOUNT
        settings = settings_for(tmp_path, config)
        alice = token_for(settings)

        def connector(allowed: HostAllowed) -> TCPConnector:
            return TCPConnector(resolver=MappedResolver({NAMED_HOST: mock.port}))

        app = build_app(settings, connector_factory=connector)
        async with AsgiDriver(app) as driver:
            yield Rig(driver, mock, alice, settings)
