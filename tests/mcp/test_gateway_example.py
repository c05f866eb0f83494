"""examples/mcp: the notes server and its manifests work as the README says, through a real gateway
and the SDK client (the manifest's URL pointed at a free port instead of 9000)."""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from tests.helpers.gateway import GatewayHandle
from tests.mcp.gateway_client import sdk_session

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mcp"


@pytest.fixture(scope="module")
def notes_url() -> Iterator[str]:
    spec = importlib.util.spec_from_file_location("notes_example", EXAMPLE / "server.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app = module.require_token(module.server.streamable_http_app(streamable_http_path="/mcp"), "notes-secret")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}/mcp"
    server.should_exit = True
    thread.join(10)
    sock.close()


async def test_the_example_through_the_gateway(
    gateway_factory: Any, notes_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTES_TOKEN", "notes-secret")
    config = (EXAMPLE / "relaygate.yaml").read_text().replace("http://127.0.0.1:9000/mcp", notes_url)
    gateway: GatewayHandle = gateway_factory(config)
    token = gateway.create_token(user="you@example.com")
    async with sdk_session(gateway.url + "/mcp/notes", token) as notes:
        names = {tool.name for tool in (await notes.list_tools()).tools}
        assert names == {"add_note", "notes_read"}  # delete_* left out; the dotted name listed model-safe
        assert "saved" in (await notes.call_tool("add_note", {"title": "t", "text": "hello"})).content[0].text  # type: ignore[union-attr]
    async with sdk_session(gateway.url + "/mcp/workspace", token) as workspace:
        names = {tool.name for tool in (await workspace.list_tools()).tools}
        assert names == {"notes__add_note", "notes__notes_read"}
        read = await workspace.call_tool("notes__notes_read", {"title": "t"})
        assert read.content[0].text == "hello"  # type: ignore[union-attr]
