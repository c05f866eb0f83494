"""OpenAI-compatible vendor presets (one registry row each): `base_url` overrides the public default.

One gateway serves an account of every preset, all pointed at one OpenAI mock; each account has its own
key, so the mock's recorded `Authorization` proves the right key went with the right vendor. Ollama
needs no key: a second, keyless account calls a keyless mock.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from relaygate.providers.registry import PROVIDERS
from tests.conftest import _factory
from tests.helpers.gateway import GatewayHandle
from tests.helpers.manifests import ALICE
from tests.upstreams.openai_mock import OpenAIMock, chat_reply, embedding_vector

PRESETS = {
    "groq": "llama-3.1-70b-versatile",
    "mistral": "mistral-large-latest",
    "together": "meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo",
    "deepseek": "deepseek-chat",
    "fireworks": "accounts/fireworks/models/llama-v3p1-8b-instruct",
    "openrouter": "openai/gpt-4o-mini",
    "xai": "grok-3-mini",
    "perplexity": "sonar",
    "cerebras": "llama-3.3-70b",
    "nvidia": "meta/llama-3.1-8b-instruct",
    "ollama": "llama3:8b",
}
ACCOUNT = """\
type: provider-account/{kind}
name: {kind}-main
base_url: http://127.0.0.1:{port}/v1
auth_data: {type: api-key, api_key: {key}}
integrations:
  - {name: chat-model, type: integration/model/{kind}, model_id: "{model_id}", model_types: [chat, embedding]}
"""
KEYLESS_OLLAMA = """\
type: provider-account/ollama
name: ollama-local
base_url: http://127.0.0.1:{keyless_port}/v1
integrations:
  - {name: llama3, type: integration/model/ollama, model_id: "llama3:8b", model_types: [chat]}
"""
# A token limit makes the gateway estimate tokens, which is where `max_choices` bounds `n`.
TOKEN_LIMIT = """\
type: gateway-rate-limiting-config
name: preset-limits
rules:
  - {id: tpm, when: {}, limit_to: 10000000, unit: tokens_per_minute}
"""
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello vendor"}]


def key_of(kind: str) -> str:
    return f"sk-{kind}-vendor-key-314"


@dataclass
class PresetStack:
    gateway: GatewayHandle
    upstream: OpenAIMock  # checks no key itself: each request's Authorization is asserted per vendor
    keyless: OpenAIMock
    token: str


@pytest.fixture(scope="module")
def presets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PresetStack]:
    upstream = OpenAIMock().start_in_thread()
    keyless = OpenAIMock().start_in_thread()
    factory, started = _factory(tmp_path_factory.mktemp("presets"))
    config = "---\n".join(
        [
            ACCOUNT.replace("{kind}", kind).replace("{model_id}", model_id).replace("{key}", key_of(kind))
            for kind, model_id in PRESETS.items()
        ]
        + [KEYLESS_OLLAMA, TOKEN_LIMIT]
    )
    try:
        gateway = factory(config, port=upstream.port, keyless_port=keyless.port)
        yield PresetStack(gateway, upstream, keyless, gateway.create_token(user=ALICE))
    finally:
        for gateway in started:
            gateway.stop()
        upstream.stop_thread()
        keyless.stop_thread()


@pytest.fixture
def stack(presets: PresetStack) -> PresetStack:
    presets.upstream.reset()
    presets.keyless.reset()
    return presets


@pytest.mark.parametrize("kind", PRESETS)
def test_preset_chat_goes_to_the_overridden_base_url_with_its_key(stack: PresetStack, kind: str) -> None:
    client = stack.gateway.client(stack.token)
    completion = client.chat.completions.create(model=f"{kind}-main/chat-model", messages=MESSAGES)
    assert completion.choices[0].message.content == chat_reply(MESSAGES)
    recorded = stack.upstream.last("/chat/completions")
    assert recorded.path == "/v1/chat/completions"
    assert recorded.json["model"] == PRESETS[kind]
    assert recorded.header("Authorization") == f"Bearer {key_of(kind)}"


@pytest.mark.parametrize("kind", PRESETS)
def test_preset_stream_relays_every_chunk(stack: PresetStack, kind: str) -> None:
    raw = stack.gateway.client(stack.token).chat.completions.with_raw_response.create(
        model=f"{kind}-main/chat-model", messages=MESSAGES, stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == chat_reply(MESSAGES)
    assert raw.headers["x-tfy-provider-model"] == PRESETS[kind]
    recorded = stack.upstream.last("/chat/completions")
    assert recorded.json["model"] == PRESETS[kind] and recorded.json["stream"] is True
    assert recorded.header("Authorization") == f"Bearer {key_of(kind)}"


@pytest.mark.parametrize("kind", PRESETS)
def test_preset_n_above_one_is_refused_unless_the_vendor_returns_several(stack: PresetStack, kind: str) -> None:
    """Under a token limit, `n` > 1 to a vendor that returns one choice is a 400 before anything is reserved."""
    client = stack.gateway.client(stack.token)
    if PROVIDERS[kind].max_choices > 1:
        client.chat.completions.create(model=f"{kind}-main/chat-model", messages=MESSAGES, n=2)
        assert stack.upstream.last("/chat/completions").json["n"] == 2
        return
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=f"{kind}-main/chat-model", messages=MESSAGES, n=2)
    assert refused.value.param == "n" and kind in refused.value.message
    assert stack.upstream.requests == []


def test_presets_log_their_provider_kind(stack: PresetStack) -> None:
    client = stack.gateway.client(stack.token)
    metadata = {"x-tfy-metadata": json.dumps({"case": "preset-kinds"})}
    for kind in PRESETS:
        client.chat.completions.create(model=f"{kind}-main/chat-model", messages=MESSAGES, extra_headers=metadata)
    rows = stack.gateway.wait_for_logs(len(PRESETS), metadata={"case": "preset-kinds"})
    assert {row["resolved_model"]: row["provider"] for row in rows} == {
        f"{kind}-main/chat-model": kind for kind in PRESETS
    }


def test_ollama_without_a_key_sends_no_authorization(stack: PresetStack) -> None:
    completion = stack.gateway.client(stack.token).chat.completions.create(
        model="ollama-local/llama3", messages=MESSAGES
    )
    assert completion.choices[0].message.content == chat_reply(MESSAGES)
    recorded = stack.keyless.last("/chat/completions")
    assert recorded.json["model"] == "llama3:8b"
    assert recorded.header("Authorization") is None


def test_presets_embeddings(stack: PresetStack) -> None:
    result = stack.gateway.client(stack.token).embeddings.create(model="mistral-main/chat-model", input="v")
    assert result.data[0].embedding == embedding_vector("v")
    assert stack.upstream.last("/embeddings").json["model"] == PRESETS["mistral"]
