"""An upstream answering with a status outside 100-599 is a broken upstream: a 502 the router falls back from.

uvicorn cannot send such a status to the caller (it used to fail with a KeyError and an empty reply), so
the gateway must never relay it: on chat (streaming and not), completions, the Messages API (native
to Anthropic and translated) and the provider-account resources (files), the caller gets a 502 with
`x-request-id` in its route's error shape, and a virtual model falls back to its next target as it
would after a connection reset.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.conftest import _factory
from tests.handlers.proxy.raw_upstream import RawUpstream
from tests.helpers.error_shape import assert_error_shape
from tests.helpers.gateway_thread import GatewayThread

GOOD_ANSWER = orjson.dumps(
    {
        "id": "chatcmpl-good",
        "object": "chat.completion",
        "created": 1,
        "model": "good-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
)


def bad_status(status: int) -> bytes:
    return (
        f"HTTP/1.1 {status} Strange\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
        "Connection: close\r\n\r\n{}"
    ).encode("latin-1")


SCRIPT = {
    **{
        f"/s{status}/v1/{op}": bad_status(status) for status in (600, 999) for op in ("chat/completions", "completions")
    },
    **{f"/s{status}/v1/messages": bad_status(status) for status in (600, 999)},
    "/s600/v1/files": bad_status(600),
    "/good/v1/chat/completions": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(GOOD_ANSWER)).encode()
    + b"\r\nConnection: close\r\n\r\n"
    + GOOD_ANSWER,
}

CONFIG = """\
type: provider-account/openai
name: odd600
base_url: http://127.0.0.1:{port}/s600/v1
auth_data: {type: api-key, api_key: sk-odd-key}
integrations:
  - {name: model, type: integration/model/openai, model_id: odd-model, model_types: [chat, completion]}
---
type: provider-account/openai
name: odd999
base_url: http://127.0.0.1:{port}/s999/v1
auth_data: {type: api-key, api_key: sk-odd-key}
integrations:
  - {name: model, type: integration/model/openai, model_id: odd-model, model_types: [chat, completion]}
---
type: provider-account/anthropic
name: claude600
base_url: http://127.0.0.1:{port}/s600
auth_data: {type: api-key, api_key: sk-ant-odd-key}
integrations:
  - {name: sonnet, type: integration/model/anthropic, model_id: claude-odd, model_types: [chat]}
---
type: provider-account/openai
name: good
base_url: http://127.0.0.1:{port}/good/v1
auth_data: {type: api-key, api_key: sk-good-key}
integrations:
  - {name: model, type: integration/model/openai, model_id: good-model, model_types: [chat]}
---
type: provider-account/virtual-model
name: vmod
integrations:
  - name: odd-then-good
    type: integration/model/virtual
    model_types: [chat]
    routing_config:
      type: priority-based-routing
      load_balance_targets: [{target: odd600/model, priority: 0}, {target: good/model, priority: 1}]
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayThread, str]]:
    factory, started = _factory(tmp_path_factory.mktemp("invalid-status"))
    with RawUpstream(SCRIPT).running() as upstream:
        try:
            gw = factory(CONFIG, port=upstream.port)
            yield gw, gw.create_token(user="alice@example.com")
        finally:
            for gw in started:
                gw.stop()


def chat(model: str, stream: bool) -> dict[str, Any]:
    return {"model": model, "stream": stream, "messages": [{"role": "user", "content": "hello"}]}


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
@pytest.mark.parametrize("account", ["odd600", "odd999"])
def test_chat_upstream_status_outside_range_is_a_502(
    gateway: tuple[GatewayThread, str], account: str, stream: bool
) -> None:
    gw, token = gateway
    result = gw.request("POST", "/api/llm/chat/completions", token=token, json=chat(f"{account}/model", stream))
    assert result.status == 502, result.body
    assert result.headers.get("x-request-id")
    error = assert_error_shape(result.json())
    assert error["code"] == "invalid_upstream_status"
    assert gw.wait_for_log(str(result.headers["x-request-id"]))["status"] == 502


def test_completions_upstream_status_outside_range_is_a_502(gateway: tuple[GatewayThread, str]) -> None:
    gw, token = gateway
    result = gw.request("POST", "/api/llm/completions", token=token, json={"model": "odd600/model", "prompt": "hello"})
    assert result.status == 502, result.body
    assert result.headers.get("x-request-id")
    assert assert_error_shape(result.json())["code"] == "invalid_upstream_status"


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
@pytest.mark.parametrize("model", ["claude600/sonnet", "odd600/model"], ids=["native", "translated"])
def test_messages_upstream_status_outside_range_is_an_anthropic_502(
    gateway: tuple[GatewayThread, str], model: str, stream: bool
) -> None:
    gw, token = gateway
    body = {**chat(model, stream), "max_tokens": 32}
    result = gw.request("POST", "/api/llm/messages", token=token, json=body)
    assert result.status == 502, result.body
    assert result.headers.get("x-request-id")
    payload = result.json()
    assert payload["type"] == "error" and payload["error"]["type"] == "api_error", payload


def test_resources_upstream_status_outside_range_is_a_502(gateway: tuple[GatewayThread, str]) -> None:
    gw, token = gateway
    result = gw.request("GET", "/api/llm/files", token=token, headers={"x-tfy-provider-name": "odd600"})
    assert result.status == 502, result.body
    assert result.headers.get("x-request-id")
    assert assert_error_shape(result.json())["code"] == "invalid_upstream_status"


def test_virtual_model_falls_back_from_an_upstream_status_outside_range(gateway: tuple[GatewayThread, str]) -> None:
    gw, token = gateway
    result = gw.request("POST", "/api/llm/chat/completions", token=token, json=chat("vmod/odd-then-good", False))
    assert result.status == 200, result.body
    assert result.json()["choices"][0]["message"]["content"] == "fine"
    assert result.headers.get("x-tfy-resolved-model") == "good/model"
