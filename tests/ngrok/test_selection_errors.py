"""What a caller and `check` are told by the ngrok dialect: strategies that choose nothing for a configured model
(not "is not configured"), and `http://*.internal` base URLs accepted without any setting."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.helpers.error_shape import assert_error_shape
from tests.helpers.gateway import render, run_cli, subprocess_env
from tests.helpers.gateway_thread import GatewayThread
from tests.upstreams.openai_mock import OpenAIMock

CONFIG = """\
on_http_request:
  - type: ai-gateway
    config:
      only_allow_configured_models: true
      providers:
        - id: local
          base_url: http://127.0.0.1:{port}/v1
          models:
            - {id: llama3, metadata: {tier: bronze}}
            - {id: qwen2, metadata: {tier: gold}}
      model_selection:
        strategy:
          - "ai.models.filter(m, m.metadata.tier == 'gold')"
"""


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayThread, OpenAIMock, str]]:
    upstream = OpenAIMock().start_in_thread()
    gateway = GatewayThread(tmp_path_factory.mktemp("ngrok-selection"), render(CONFIG, port=upstream.port))
    try:
        gateway.start()
        yield gateway, upstream, gateway.create_token(user="alice@example.com")
    finally:
        gateway.stop()
        upstream.stop_thread()


def test_strategies_choosing_nothing_say_so(rig: tuple[GatewayThread, OpenAIMock, str]) -> None:
    gateway, upstream, token = rig
    with pytest.raises(openai.NotFoundError) as caught:
        gateway.client(token).chat.completions.create(model="llama3", messages=[{"role": "user", "content": "hi"}])
    body = caught.value.body
    assert isinstance(body, dict)
    assert "no model matched the selection strategies" in body["message"]
    assert "is not configured" not in body["message"]
    assert body["code"] == "no_model_matched"
    raw = gateway.request(
        "POST",
        "/api/llm/chat/completions",
        token=token,
        json={"model": "llama3", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert raw.status == 404 and raw.headers.get("x-request-id")
    assert_error_shape(raw.json())
    assert upstream.requests == []


def test_a_model_the_strategies_choose_is_served(rig: tuple[GatewayThread, OpenAIMock, str]) -> None:
    gateway, upstream, token = rig
    reply = gateway.client(token).chat.completions.create(model="qwen2", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content
    assert upstream.last("/chat/completions").json["model"] == "qwen2"


def test_an_unconfigured_model_is_still_not_configured(rig: tuple[GatewayThread, OpenAIMock, str]) -> None:
    gateway, _, token = rig
    with pytest.raises(openai.NotFoundError) as caught:
        gateway.client(token).chat.completions.create(model="mistral", messages=[{"role": "user", "content": "hi"}])
    assert "is not configured" in caught.value.message


def test_check_accepts_http_internal_endpoints_and_refuses_other_http(tmp_path: Path) -> None:
    path = tmp_path / "ngrok.yaml"
    path.write_text(CONFIG.replace("http://127.0.0.1:{port}/v1", "http://my-service.internal"))
    result = run_cli("check", "-f", str(path), env=subprocess_env())
    assert result.returncode == 0, result.stdout + result.stderr
    path.write_text(CONFIG.replace("http://127.0.0.1:{port}/v1", "http://my-service.example.com"))
    result = run_cli("check", "-f", str(path), env=subprocess_env())
    assert result.returncode == 1 and "must use https://" in result.stdout, result.stdout + result.stderr
