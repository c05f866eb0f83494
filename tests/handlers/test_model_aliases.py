"""Model aliases and slashed model names through a real gateway: Claude Code's bare model names with the real
`anthropic` SDK (ANTHROPIC_BASE_URL + token), the OpenAI routes, access and limits by the model an alias names,
and `together/meta-llama/Meta-Llama-3.1-70B`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.helpers.gateway import render
from tests.helpers.gateway_thread import GatewayThread
from tests.helpers.manifests import ALICE, BOB
from tests.upstreams.anthropic_mock import AnthropicMock
from tests.upstreams.openai_mock import OpenAIMock, chat_reply

ANTHROPIC_KEY = "sk-ant-alias-upstream-secret"
TOGETHER_KEY = "together-alias-upstream-secret"
SONNET_ID = "claude-sonnet-4-5-20250929"
HAIKU_ID = "claude-haiku-4-5-20251001"
CONFIG = """\
type: provider-account/anthropic
name: claude
base_url: http://127.0.0.1:{anthropic_port}
auth_data: {type: api-key, api_key: "${ANTHROPIC_KEY}"}
integrations:
  - {name: sonnet, type: integration/model/anthropic, model_id: claude-sonnet-4-5-20250929, model_types: [chat],
     aliases: [claude-sonnet-4-5-20250929, claude-sonnet-4-5]}
  - {name: haiku, type: integration/model/anthropic, model_id: claude-haiku-4-5-20251001, model_types: [chat],
     aliases: [claude-haiku-4-5-20251001, claude-3-5-haiku-20241022]}
---
type: provider-account/mock
name: mock
collaborators: [{subject: "user:bob@example.com", role_id: provider-account-access}]
integrations:
  - {name: echo, type: integration/model/mock, model_id: echo-1, model_types: [chat, completion, embedding],
     aliases: [gpt-4o-mini, text-embedding-3-small]}
---
type: provider-account/together
name: together
base_url: http://127.0.0.1:{together_port}/v1
auth_data: {type: api-key, api_key: "${TOGETHER_KEY}"}
integrations:
  - {name: meta-llama/Meta-Llama-3.1-70B, type: integration/model/together,
     model_id: meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo, model_types: [chat]}
---
type: gateway-rate-limiting-config
name: limits
rules:
  - {id: haiku-cap, when: {models: [claude/haiku]}, limit_to: 2, unit: requests_per_minute}
  - {id: llama-cap, when: {models: [together/meta-llama/Meta-Llama-3.1-70B]}, limit_to: 2, unit: requests_per_minute}
"""
HELLO: Any = [{"role": "user", "content": "hello alias"}]


@dataclass
class Rig:
    gateway: GatewayThread
    anthropic_mock: AnthropicMock
    together: OpenAIMock
    alice: str
    bob: str

    def claude_code(self, *, api_key_header: bool = False) -> Any:
        """The client Claude Code builds from ANTHROPIC_BASE_URL and ANTHROPIC_AUTH_TOKEN (or ANTHROPIC_API_KEY)."""
        base_url = self.gateway.url + "/api/llm"
        if api_key_header:
            return anthropic.Anthropic(api_key=self.alice, base_url=base_url, max_retries=0)
        return anthropic.Anthropic(auth_token=self.alice, base_url=base_url, max_retries=0)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    anthropic_mock = AnthropicMock(ANTHROPIC_KEY).start_in_thread()
    together = OpenAIMock(TOGETHER_KEY).start_in_thread()
    config = render(CONFIG, anthropic_port=anthropic_mock.port, together_port=together.port)
    gateway = GatewayThread(
        tmp_path_factory.mktemp("aliases"), config, env={"ANTHROPIC_KEY": ANTHROPIC_KEY, "TOGETHER_KEY": TOGETHER_KEY}
    )
    try:
        gateway.start()
        yield Rig(gateway, anthropic_mock, together, gateway.create_token(user=ALICE), gateway.create_token(user=BOB))
    finally:
        gateway.stop()
        anthropic_mock.stop_thread()
        together.stop_thread()


def test_claude_code_bare_model_name_reaches_the_configured_model(rig: Rig) -> None:
    message = rig.claude_code().messages.create(model=SONNET_ID, max_tokens=64, messages=HELLO)
    assert message.content[0].text
    sent = rig.anthropic_mock.last("/v1/messages")
    assert sent.json["model"] == SONNET_ID
    assert sent.header("x-api-key") == ANTHROPIC_KEY  # the configured credential, never the caller's token
    row = rig.gateway.wait_for_log(str(message._request_id))  # the gateway's `request-id` header
    assert row["requested_model"] == SONNET_ID
    assert row["resolved_model"] == "claude/sonnet"
    assert row["extra"]["alias_of"] == "claude/sonnet"


def test_claude_code_with_api_key_header_streams_through_an_alias(rig: Rig) -> None:
    client = rig.claude_code(api_key_header=True)
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=64, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
    assert text
    assert rig.anthropic_mock.last("/v1/messages").json["model"] == SONNET_ID


def test_claude_code_small_model_and_count_tokens_by_alias(rig: Rig) -> None:
    client = rig.claude_code()
    counted = client.messages.count_tokens(model="claude-3-5-haiku-20241022", messages=HELLO)
    assert counted.input_tokens > 0
    assert rig.anthropic_mock.last("/v1/messages/count_tokens").json["model"] == HAIKU_ID


def test_openai_chat_completions_and_embeddings_by_alias(rig: Rig) -> None:
    client = rig.gateway.client(rig.bob)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert reply.choices[0].message.content == "hello alias"
    assert client.completions.create(model="gpt-4o-mini", prompt="hello").choices
    assert client.embeddings.create(model="text-embedding-3-small", input="hello").data
    chat = rig.gateway.client(rig.alice).chat.completions.create(model="claude-sonnet-4-5", messages=HELLO)
    assert chat.choices[0].message.content
    assert rig.anthropic_mock.last("/v1/messages").json["model"] == SONNET_ID


def test_access_applies_to_the_model_an_alias_names(rig: Rig) -> None:
    # mock/* is open to bob only: alice may not reach it by its alias either.
    with pytest.raises(openai.PermissionDeniedError) as caught:
        rig.gateway.client(rig.alice).chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert "gpt-4o-mini" in caught.value.message


def test_limits_count_alias_calls_against_the_model_they_name(rig: Rig) -> None:
    client = rig.claude_code()
    client.messages.create(model="claude-3-5-haiku-20241022", max_tokens=16, messages=HELLO)
    rig.gateway.client(rig.alice).chat.completions.create(model="claude/haiku", messages=HELLO)
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model=HAIKU_ID, max_tokens=16, messages=HELLO)
    assert "haiku-cap" in str(caught.value.body)


def test_an_unknown_bare_name_is_still_404(rig: Rig) -> None:
    with pytest.raises(anthropic.NotFoundError):
        rig.claude_code().messages.create(model="claude-opus-9", max_tokens=16, messages=HELLO)


def test_a_slashed_integration_name_is_callable_listed_and_limited(rig: Rig) -> None:
    client = rig.gateway.client(rig.alice)
    name = "together/meta-llama/Meta-Llama-3.1-70B"
    reply = client.chat.completions.create(model=name, messages=HELLO)
    assert reply.choices[0].message.content == chat_reply(HELLO)
    sent = rig.together.last("/chat/completions")
    assert sent.json["model"] == "meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo"
    assert sent.header("Authorization") == f"Bearer {TOGETHER_KEY}"
    assert client.models.retrieve(name).id == name
    client.chat.completions.create(model=name, messages=HELLO)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=name, messages=HELLO)
    assert "llama-cap" in caught.value.message


def test_the_claude_code_example_serves_the_names_claude_code_sends(tmp_path: Path) -> None:
    """examples/claude-code.yaml as the README runs it, its Anthropic base URL pointed at the mock."""
    example = (Path(__file__).resolve().parents[2] / "examples" / "claude-code.yaml").read_text()
    with AnthropicMock("sk-ant-example-key").running() as upstream:
        config = example.replace("name: anthropic\n", f"name: anthropic\nbase_url: {upstream.url}\n", 1)
        gateway = GatewayThread(tmp_path / "gw", config, env={"UPSTREAM_ANTHROPIC_API_KEY": "sk-ant-example-key"})
        try:
            gateway.start()
            assert "literal credential" not in gateway.output()
            client = anthropic.Anthropic(
                auth_token=gateway.create_token(user=ALICE), base_url=gateway.url + "/api/llm", max_retries=0
            )
            for sent, model_id in (
                (SONNET_ID, SONNET_ID),
                ("claude-3-5-haiku-20241022", HAIKU_ID),
                ("claude-opus-4-1", "claude-opus-4-1-20250805"),
            ):
                assert client.messages.create(model=sent, max_tokens=32, messages=HELLO).content
                assert upstream.last("/v1/messages").json["model"] == model_id
        finally:
            gateway.stop()
