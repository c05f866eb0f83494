"""One traced gateway per test module over real upstreams (OpenAI, Anthropic, a custom-endpoint pool),
exporting to a real OTLP/HTTP receiver (tests/helpers/otlp_receiver.py).

Models: `openai-main/gpt-4o` (STANDARD), `claude/sonnet` (Anthropic), `vmod/fallback` (the unreachable
`unreachable/gpt-4o` first, then `openai-main/gpt-4o`), `limited/gpt-4o` (a rate-limit rule `trace-rpm`),
`guarded/gpt-4o` (input guardrails `safety/pii` masking and `safety/words` auditing);
the custom-endpoint pool `/proxy-api/pool/lb/...` tries `down` (a closed port) before `up` (the OpenAI mock).

A `GatewayThread` applies its non-RELAYGATE variables to `os.environ` until it stops, and the gateway
reads the OTEL_* variables there at start: a module holds at most one traced gateway at a time, so no
gateway starts under another one's variables.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from relaygate.gateway import Gateway
from tests.conftest import _factory
from tests.helpers import manifests
from tests.helpers.gateway import free_port
from tests.helpers.gateway_thread import GatewayThread
from tests.helpers.otlp_receiver import OTLPReceiver
from tests.upstreams.anthropic_mock import AnthropicMock
from tests.upstreams.openai_mock import OpenAIMock

ANTHROPIC_KEY = "sk-ant-upstream-secret-321"
POOL_KEY = "sk-upstream-secret-123"  # the OpenAI mock's key, injected by the pool's auth_data

CONFIG = (
    manifests.STANDARD
    + """
---
type: provider-account/anthropic
name: claude
base_url: http://127.0.0.1:{anthropic_port}
auth_data: {type: api-key, api_key: sk-ant-upstream-secret-321}
integrations:
  - {name: sonnet, type: integration/model/anthropic, model_id: claude-sonnet-4-5, model_types: [chat]}
---
type: provider-account/openai
name: limited
base_url: http://127.0.0.1:{port}/v1
auth_data: {type: api-key, api_key: sk-upstream-secret-123}
integrations:
  - {name: gpt-4o, type: integration/model/openai, model_id: gpt-4o, model_types: [chat]}
---
name: trace-limits
type: gateway-rate-limiting-config
rules:
  - {id: trace-rpm, when: {models: [limited/gpt-4o]}, limit_to: 1000, unit: requests_per_minute}
---
type: provider-account/openai
name: guarded
base_url: http://127.0.0.1:{port}/v1
auth_data: {type: api-key, api_key: sk-upstream-secret-123}
integrations:
  - {name: gpt-4o, type: integration/model/openai, model_id: gpt-4o, model_types: [chat]}
---
type: provider-account/guardrail-config-group
name: safety
integrations:
  - {name: pii, type: pii, operation: mutate, config: {entities: [email], action: mask}}
  - {name: words, type: keywords, enforcing_strategy: audit, config: {words: [tracewatch]}}
---
type: gateway-guardrails-config
name: guardrails
rules:
  - {id: guarded, when: {models: [guarded/gpt-4o]}, llm_input_guardrails: [safety/pii, safety/words]}
---
type: provider-account/virtual-model
name: vmod
integrations:
  - name: fallback
    type: integration/model/virtual
    model_types: [chat]
    routing_config:
      type: priority-based-routing
      load_balance_targets: [{target: unreachable/gpt-4o, priority: 0}, {target: openai-main/gpt-4o, priority: 1}]
---
type: provider-account/custom-endpoint
name: pool
routing_type: priority
slug: lb
auth_data: {type: header, headers: {Authorization: "Bearer sk-upstream-secret-123"}}
integrations:
  - type: integration/model/custom-endpoint
    name: down
    base_url: "http://127.0.0.1:{closed_port}/v1"
    loadbalancing_config: {priority: 0}
  - type: integration/model/custom-endpoint
    name: up
    base_url: "http://127.0.0.1:{port}/v1"
    loadbalancing_config: {priority: 1}
"""
)


@dataclass
class Traced:
    """The gateway, its collector and upstreams, and a token."""

    gateway: GatewayThread
    receiver: OTLPReceiver
    openai: OpenAIMock
    claude: AnthropicMock
    alice: str

    @property
    def state(self) -> Gateway:
        """The running gateway's long-lived state (it runs in this process)."""
        return gateway_state(self.gateway)


def gateway_state(gateway: GatewayThread) -> Gateway:
    server: Any = gateway._server
    state: Gateway = server.config.app.gateway
    return state


def tracing_env(endpoint: str, **extra: str) -> dict[str, str]:
    """Tracing on towards `endpoint`, exported every 20 ms (not every 5 s) so tests see spans quickly."""
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_BSP_SCHEDULE_DELAY": "20", **extra}


def running(root: Path, receiver: OTLPReceiver, env: dict[str, str]) -> Iterator[Traced]:
    openai_mock = OpenAIMock(manifests.OPENAI_KEY, manifests.AZURE_KEY).start_in_thread()
    claude = AnthropicMock(ANTHROPIC_KEY).start_in_thread()
    vllm = OpenAIMock().start_in_thread()
    factory, started = _factory(root)
    try:
        gateway = factory(
            CONFIG,
            env=env,
            port=openai_mock.port,
            vllm_port=vllm.port,
            anthropic_port=claude.port,
            closed_port=free_port(),
        )
        assert isinstance(gateway, GatewayThread)
        yield Traced(gateway, receiver, openai_mock, claude, gateway.create_token(user=manifests.ALICE))
    finally:
        for gateway in started:
            gateway.stop()
        openai_mock.stop_thread()
        claude.stop_thread()
        vllm.stop_thread()


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traced]:
    with OTLPReceiver() as receiver:
        yield from running(tmp_path_factory.mktemp("traced"), receiver, tracing_env(receiver.endpoint))
