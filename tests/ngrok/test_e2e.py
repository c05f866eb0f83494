"""The ngrok `ai-gateway` dialect end to end: a real gateway process, mock upstreams, the openai SDK.

Three OpenAI-shaped mocks: `local` (keyless, as my-provider), `backup` (keyless, a second provider
serving llama3) and `cloud` (checks `Authorization: Bearer sk-good-key`, serving two providers: one
with a rejected first key, one with the good key only).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.helpers.gateway import render
from tests.helpers.gateway_thread import GatewayThread
from tests.upstreams.openai_mock import OpenAIMock, chat_reply

GOOD_KEY = "sk-good-key-0123456789"
BAD_KEY = "sk-rejected-key-0123456789"
USER = "alice@example.com"
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello ngrok dialect"}]

CONFIG = """\
type: provider-account/mock
name: mock
integrations:
  - {name: echo, type: integration/model/mock, model_id: echo, model_types: [chat]}
---
on_http_request:
  - type: ai-gateway
    config:
      per_request_timeout: 10s
      total_timeout: 30s
      headers: {X-Gateway: relaygate-e2e}
      providers:
        - id: my-provider
          id_aliases: [mine]
          base_url: http://127.0.0.1:{local_port}/v1
          models:
            - {id: llama3, id_aliases: [llama]}
        - id: backup
          base_url: http://127.0.0.1:{backup_port}/v1
          models:
            - {id: llama3}
            - {id: qwen2}
        - id: keyed
          base_url: http://127.0.0.1:{cloud_port}/v1
          api_keys: [{value: sk-rejected-key-0123456789}, {value: sk-good-key-0123456789}]
          models: [{id: gpt-4o-mini}]
        - id: openai
          base_url: http://127.0.0.1:{cloud_port}/v1
          api_keys: [{value: sk-good-key-0123456789}]
          models: [{id: gpt-4o, id_aliases: [best]}]
"""


@dataclass
class NgrokStack:
    gateway: GatewayThread
    local: OpenAIMock
    backup: OpenAIMock
    cloud: OpenAIMock
    token: str

    def client(self) -> openai.OpenAI:
        return self.gateway.client(self.token)

    def reset(self) -> None:
        for mock in (self.local, self.backup, self.cloud):
            mock.reset()


@pytest.fixture(scope="module")
def ngrok_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NgrokStack]:
    mocks = [OpenAIMock().start_in_thread(), OpenAIMock().start_in_thread(), OpenAIMock(GOOD_KEY).start_in_thread()]
    config = render(CONFIG, local_port=mocks[0].port, backup_port=mocks[1].port, cloud_port=mocks[2].port)
    gateway = GatewayThread(Path(tmp_path_factory.mktemp("ngrok")), config)
    try:
        gateway.start()
        yield NgrokStack(gateway, mocks[0], mocks[1], mocks[2], gateway.create_token(user=USER))
    finally:
        gateway.stop()
        for mock in mocks:
            mock.stop_thread()


@pytest.fixture
def stack(ngrok_stack: NgrokStack) -> NgrokStack:
    ngrok_stack.reset()
    return ngrok_stack


def chat(stack: NgrokStack, model: str, extra_body: dict[str, object] | None = None) -> tuple[str, str | None]:
    """The answer's content and `x-tfy-resolved-model`."""
    raw = stack.client().chat.completions.with_raw_response.create(
        model=model, messages=MESSAGES, extra_body=extra_body
    )
    completion = raw.parse()
    return completion.choices[0].message.content or "", raw.headers.get("x-tfy-resolved-model")


def test_provider_qualified_model_reaches_the_self_hosted_provider(stack: NgrokStack) -> None:
    content, resolved = chat(stack, "my-provider:llama3")
    assert content == chat_reply(MESSAGES)
    assert resolved == "my-provider:llama3"
    sent = stack.local.last("/chat/completions")
    assert sent.model == "llama3"
    assert sent.header("X-Gateway") == "relaygate-e2e"
    assert sent.header("Authorization") is None  # keyless provider: the caller's token never goes upstream
    assert not stack.backup.requests and not stack.cloud.requests


def test_bare_id_goes_to_the_first_provider_serving_it(stack: NgrokStack) -> None:
    _, resolved = chat(stack, "llama3")
    assert resolved == "my-provider:llama3"
    assert stack.local.last("/chat/completions").model == "llama3" and not stack.backup.requests


def test_model_alias_and_provider_alias(stack: NgrokStack) -> None:
    assert chat(stack, "llama")[1] == "my-provider:llama3"
    assert chat(stack, "mine:llama")[1] == "my-provider:llama3"
    assert chat(stack, "best")[1] == "openai:gpt-4o"
    assert stack.cloud.last("/chat/completions").model == "gpt-4o"


def test_key_failover_uses_the_next_key_after_a_401(stack: NgrokStack) -> None:
    content, resolved = chat(stack, "keyed:gpt-4o-mini")
    assert content == chat_reply(MESSAGES) and resolved == "keyed:gpt-4o-mini"
    sent = stack.cloud.requests_to("/chat/completions")
    assert [r.header("Authorization") for r in sent] == [f"Bearer {BAD_KEY}", f"Bearer {GOOD_KEY}"]
    assert [r.status for r in sent] == [401, 200]


def test_provider_failover_when_the_first_provider_fails(stack: NgrokStack) -> None:
    stack.local.fail_next(503)
    content, resolved = chat(stack, "llama3")
    assert content == chat_reply(MESSAGES)
    assert resolved == "backup:llama3"
    assert [r.status for r in stack.local.requests_to("/chat/completions")] == [503]
    assert stack.backup.last("/chat/completions").model == "llama3"


def test_body_models_list_fails_over_to_the_next_model(stack: NgrokStack) -> None:
    stack.cloud.fail_next(500)
    content, resolved = chat(stack, "openai:gpt-4o", extra_body={"models": ["openai:gpt-4o", "backup:qwen2"]})
    assert content == chat_reply(MESSAGES)
    assert resolved == "backup:qwen2"
    sent = stack.backup.last("/chat/completions")
    assert sent.model == "qwen2"
    assert "models" not in sent.json  # the failover list is the gateway's, never sent upstream


def test_body_models_list_skips_unknown_names(stack: NgrokStack) -> None:
    _, resolved = chat(stack, "nobody:nothing", extra_body={"models": ["also:unknown", "backup:qwen2"]})
    assert resolved == "backup:qwen2"


def test_unknown_model_is_404(stack: NgrokStack) -> None:
    with pytest.raises(openai.NotFoundError):
        chat(stack, "nobody:nothing")
    assert not stack.local.requests and not stack.backup.requests and not stack.cloud.requests


def test_streaming_through_a_dialect_model(stack: NgrokStack) -> None:
    chunks = list(stack.client().chat.completions.create(model="backup:qwen2", messages=MESSAGES, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == chat_reply(MESSAGES)
    assert stack.backup.last("/chat/completions").json["stream"] is True


def test_manifest_models_still_work_beside_the_dialect(stack: NgrokStack) -> None:
    completion = stack.client().chat.completions.create(model="mock/echo", messages=MESSAGES)
    assert "hello ngrok dialect" in (completion.choices[0].message.content or "")
