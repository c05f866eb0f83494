"""OpenAI-compatible vendor presets (groq, mistral, together): `base_url` overrides the public default."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.conftest import GatewayFactory
from tests.helpers.gateway import GatewayProcess
from tests.helpers.manifests import ALICE
from tests.upstreams.openai_mock import OpenAIMock, chat_reply, embedding_vector

KEY = "sk-preset-vendor-key-314"
PRESETS = {
    "groq": "llama-3.1-70b-versatile",
    "mistral": "mistral-large-latest",
    "together": "meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo",
}
ACCOUNT = """\
type: provider-account/{kind}
name: {kind}-main
base_url: http://127.0.0.1:{port}/v1
auth_data: {type: api-key, api_key: sk-preset-vendor-key-314}
integrations:
  - {name: chat-model, type: integration/model/{kind}, model_id: "{model_id}", model_types: [chat, embedding]}
"""
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello vendor"}]


@dataclass
class PresetStack:
    gateway: GatewayProcess
    upstream: OpenAIMock
    token: str


@pytest.fixture(scope="module")
def preset_upstream() -> Iterator[OpenAIMock]:
    with OpenAIMock(KEY).running() as mock:
        yield mock


@pytest.fixture
def presets(gateway_factory: GatewayFactory, preset_upstream: OpenAIMock) -> PresetStack:
    preset_upstream.reset()
    config = "---\n".join(
        ACCOUNT.replace("{kind}", kind).replace("{model_id}", model_id) for kind, model_id in PRESETS.items()
    )
    gateway = gateway_factory(config, port=preset_upstream.port)
    return PresetStack(gateway, preset_upstream, gateway.create_token(user=ALICE))


def test_presets_chat_through_overridden_base_url(presets: PresetStack) -> None:
    client = presets.gateway.client(presets.token)
    for kind, model_id in PRESETS.items():
        completion = client.chat.completions.create(model=f"{kind}-main/chat-model", messages=MESSAGES)
        assert completion.choices[0].message.content == chat_reply(MESSAGES), kind
        recorded = presets.upstream.last("/chat/completions")
        assert recorded.path == "/v1/chat/completions", kind
        assert recorded.json["model"] == model_id, kind
        assert recorded.header("Authorization") == f"Bearer {KEY}", kind


def test_presets_stream_and_log_provider(presets: PresetStack) -> None:
    client = presets.gateway.client(presets.token)
    for kind in PRESETS:
        raw = client.chat.completions.with_raw_response.create(
            model=f"{kind}-main/chat-model",
            messages=MESSAGES,
            stream=True,
        )
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
        assert text == chat_reply(MESSAGES), kind
        row = presets.gateway.wait_for_log(str(raw.headers["x-request-id"]))
        assert row["provider"] == kind
        assert row["resolved_model"] == f"{kind}-main/chat-model"


def test_presets_embeddings(presets: PresetStack) -> None:
    result = presets.gateway.client(presets.token).embeddings.create(model="mistral-main/chat-model", input="v")
    assert result.data[0].embedding == embedding_vector("v")
    assert presets.upstream.last("/embeddings").json["model"] == PRESETS["mistral"]
