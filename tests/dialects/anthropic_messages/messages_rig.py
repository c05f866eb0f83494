"""The end-to-end rig for the inbound Messages API (tests/e2e/test_messages_api.py).

One `relaygate serve` over: the built-in mock (`mock/echo`), the OpenAI mock (`oai/*`), a scripted
tool-calling OpenAI upstream (`tools/gpt-4o`), the Anthropic mock (`claude/*`), an Anthropic account at
a closed port (`claude-dead/sonnet`) and virtual models mixing them. Fallback tests each get their own
primary integration, so one test's failures never cool down another's target; error tests that cool a
target down (a 429 with retry-after) use `oai/gpt-4o-limited` and `claude/sonnet-errors`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic

from tests.conftest import _factory
from tests.dialects.anthropic_messages.tool_upstream import ToolUpstream
from tests.helpers.gateway import free_port
from tests.helpers.gateway_thread import GatewayThread
from tests.helpers.manifests import OPENAI_KEY
from tests.upstreams.anthropic_mock import AnthropicMock
from tests.upstreams.openai_mock import OpenAIMock

TOOLS_KEY = "sk-tools-upstream-789"
ANTHROPIC_KEY = "sk-ant-upstream-secret-321"
ALICE = "alice@example.com"


def _priority(name: str, first: str, second: str) -> str:
    return f"""\
  - name: {name}
    type: integration/model/virtual
    model_types: [chat]
    routing_config:
      type: priority-based-routing
      load_balance_targets: [{{target: {first}, priority: 0}}, {{target: {second}, priority: 1}}]
"""


CONFIG = """\
type: provider-account/mock
name: mock
integrations:
  - {name: echo, type: integration/model/mock, model_id: echo-1, model_types: [chat]}
  - {name: limited, type: integration/model/mock, model_id: echo-1, model_types: [chat]}
---
name: messages-limits
type: gateway-rate-limiting-config
rules:
  - {id: one-per-minute, when: {models: [mock/limited]}, limit_to: 1, unit: requests_per_minute}
---
type: provider-account/openai
name: oai
base_url: http://127.0.0.1:{oai_port}/v1
auth_data: {type: api-key, api_key: sk-upstream-secret-123}
integrations:
  - {name: gpt-4o, type: integration/model/openai, model_id: gpt-4o, model_types: [chat]}
  - {name: gpt-4o-fb, type: integration/model/openai, model_id: gpt-4o, model_types: [chat]}
  - {name: gpt-4o-slow, type: integration/model/openai, model_id: gpt-4o, model_types: [chat]}
  - {name: gpt-4o-limited, type: integration/model/openai, model_id: gpt-4o, model_types: [chat]}
---
type: provider-account/openai
name: tools
base_url: http://127.0.0.1:{tools_port}/v1
auth_data: {type: api-key, api_key: sk-tools-upstream-789}
integrations:
  - {name: gpt-4o, type: integration/model/openai, model_id: gpt-4o-tools, model_types: [chat]}
---
type: provider-account/anthropic
name: claude
base_url: http://127.0.0.1:{anthropic_port}
auth_data: {type: api-key, api_key: sk-ant-upstream-secret-321}
integrations:
  - {name: sonnet, type: integration/model/anthropic, model_id: claude-sonnet-4-5, model_types: [chat]}
  - {name: sonnet-fb-529, type: integration/model/anthropic, model_id: claude-sonnet-4-5, model_types: [chat]}
  - {name: sonnet-fb-stream, type: integration/model/anthropic, model_id: claude-sonnet-4-5, model_types: [chat]}
  - {name: sonnet-errors, type: integration/model/anthropic, model_id: claude-sonnet-4-5, model_types: [chat]}
---
type: provider-account/anthropic
name: claude-dead
base_url: http://127.0.0.1:{closed_port}
auth_data: {type: api-key, api_key: sk-ant-dead-000}
integrations:
  - {name: sonnet, type: integration/model/anthropic, model_id: claude-sonnet-4-5, model_types: [chat]}
---
type: provider-account/virtual-model
name: vmod
integrations:
""" + "".join(
    [
        _priority("claude-then-gpt", "claude-dead/sonnet", "oai/gpt-4o"),
        _priority("gpt-then-echo", "oai/gpt-4o-fb", "mock/echo"),
        _priority("slow-then-echo", "oai/gpt-4o-slow", "mock/echo"),
        _priority("overloaded-then-gpt", "claude/sonnet-fb-529", "oai/gpt-4o"),
        _priority("stream-error-then-gpt", "claude/sonnet-fb-stream", "oai/gpt-4o"),
    ]
)


@dataclass
class Rig:
    gateway: GatewayThread
    openai: OpenAIMock
    tools: ToolUpstream
    claude: AnthropicMock  # the Anthropic upstream
    token: str

    def client(self, prefix: str = "/api/llm", **options: Any) -> Any:
        """A real anthropic SDK client aimed at the gateway (SDK retries off: tests count requests).

        Typed Any: tests read content blocks and events without narrowing the SDK's wide unions.
        """
        options.setdefault("api_key", self.token)
        return anthropic.Anthropic(base_url=self.gateway.url + prefix, max_retries=0, timeout=30.0, **options)

    def reset(self) -> Rig:
        self.openai.reset()
        self.tools.reset()
        self.claude.reset()
        return self


def running_rig(root: Path) -> Iterator[Rig]:
    """Start the upstreams and the gateway; stop everything when the generator is closed."""
    openai_mock = OpenAIMock(OPENAI_KEY).start_in_thread()
    tools = ToolUpstream(TOOLS_KEY).start_in_thread()
    anthropic_mock = AnthropicMock(ANTHROPIC_KEY).start_in_thread()
    factory, started = _factory(root)
    try:
        gateway = factory(
            CONFIG,
            oai_port=openai_mock.port,
            tools_port=tools.port,
            anthropic_port=anthropic_mock.port,
            closed_port=free_port(),
        )
        yield Rig(gateway, openai_mock, tools, anthropic_mock, gateway.create_token(user=ALICE))
    finally:
        for gateway in started:
            gateway.stop()
        openai_mock.stop_thread()
        tools.stop_thread()
        anthropic_mock.stop_thread()
