"""The config the admin-API tests serve: models, a virtual model, custom endpoints (one a pool), limits,
and credentials both as ${ENV} references and as literals, so every answer can be scanned for them."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import GatewayFactory
from tests.helpers.gateway import GatewayHandle, HttpResult

ENV_KEY = "sk-env-resolved-upstream-key-0001"
ENDPOINT_ENV_SECRET = "endpoint-env-secret-0002"
LITERAL_KEY = "sk-literal-upstream-key-0003"
LITERAL_HEADER = "literal-header-secret-0004"
BOOTSTRAP = "bootstrap-admin-token-0005-abcdef"
SECRETS = (ENV_KEY, ENDPOINT_ENV_SECRET, LITERAL_KEY, LITERAL_HEADER, BOOTSTRAP)
ENV = {"ADMIN_TEST_UPSTREAM_KEY": ENV_KEY, "ADMIN_TEST_ENDPOINT_SECRET": ENDPOINT_ENV_SECRET}

ADMIN = "alice@example.com"
VIEWER = "sam@example.com"
USER = "bob@example.com"
OUTSIDER = "olga@example.com"

CONFIG = """\
type: provider-account/mock
name: mock
integrations:
  - {name: echo, type: integration/model/mock, model_id: echo-1, model_types: [chat, embedding]}
  - name: priced
    type: integration/model/mock
    model_id: echo-2
    model_types: [chat]
    cost: {input_per_million_tokens: 1000, output_per_million_tokens: 2000}
---
type: provider-account/openai
name: closed
base_url: http://127.0.0.1:{closed_port}/v1
auth_data: {type: api-key, api_key: "${ADMIN_TEST_UPSTREAM_KEY}"}
collaborators: [{subject: "team:ml", role_id: provider-account-access}]
integrations:
  - {name: gpt, type: integration/model/openai, model_id: gpt-4o, model_types: [chat]}
---
type: provider-account/openai
name: literal
base_url: http://127.0.0.1:{closed_port}/v1
auth_data: {type: api-key, api_key: sk-literal-upstream-key-0003}
collaborators: [{subject: "user:nobody@example.com", role_id: provider-account-access}]
integrations:
  - {name: gpt, type: integration/model/openai, model_id: gpt-4o, model_types: [chat]}
---
type: provider-account/virtual-model
name: router
integrations:
  - name: chat
    type: integration/model/virtual
    model_types: [chat]
    routing_config:
      type: weight-based-routing
      load_balance_targets:
        - {target: mock/echo, weight: 70}
        - {target: mock/priced, weight: 30}
---
type: provider-account/custom-endpoint
name: tools
headers: {X-Api-Key: "${ADMIN_TEST_ENDPOINT_SECRET}", X-Team: platform}
collaborators: [{subject: "team:everyone", role_id: provider-account-access}]
integrations:
  - type: integration/model/custom-endpoint
    name: search
    base_url: "http://127.0.0.1:{closed_port}/search/v2"
    headers: {Authorization: "Bearer literal-header-secret-0004"}
---
type: provider-account/custom-endpoint
name: pool
routing_type: priority
slug: main
integrations:
  - {type: integration/model/custom-endpoint, name: primary, base_url: "http://127.0.0.1:{closed_port}/a",
     loadbalancing_config: {priority: 0}}
  - {type: integration/model/custom-endpoint, name: backup, base_url: "http://127.0.0.1:{closed_port}/b",
     loadbalancing_config: {priority: 1}}
---
type: team
name: sre
members: [sam@example.com]
---
type: team
name: ml
members: [bob@example.com]
---
type: virtual-account
name: bot
allowed_models: [mock/echo]
---
type: gateway-rate-limiting-config
name: limits
rules:
  - {id: echo-rpm, when: {models: [mock/echo]}, limit_to: 100, unit: requests_per_minute,
     rate_limit_applies_per: [user]}
  - {id: tokens-hour, when: {subjects: ["team:ml"]}, limit_to: 100000, unit: tokens_per_hour}
---
type: gateway-budget-config
name: spend
rules:
  - {id: daily-spend, when: {models: [mock/priced]}, limit_to: 25, unit: cost_per_day}
---
type: gateway-admin-config
admins: [user:alice@example.com]
viewers: [team:sre]
"""


def start(gateway_factory: GatewayFactory, config: str = CONFIG, **env: str) -> GatewayHandle:
    from tests.helpers.gateway import free_port

    return gateway_factory(config, env={"RELAYGATE_ADMIN_TOKEN": BOOTSTRAP, **ENV, **env}, closed_port=free_port())


def assert_no_secret(answer: HttpResult, secrets: tuple[str, ...] = SECRETS) -> None:
    """No configured credential (nor a recognisable part of one) anywhere in an answer."""
    text = answer.body.decode("utf-8", "replace") + json.dumps(dict(answer.headers))
    for secret in secrets:
        assert secret not in text, f"a secret leaked into an admin answer: {secret[:6]}..."
        assert secret[-12:] not in text


def get(gateway: GatewayHandle, path: str, token: str, **kwargs: Any) -> Any:
    answer = gateway.request("GET", "/api/admin/v1" + path, token=token, **kwargs)
    assert answer.status == 200, answer.body
    assert_no_secret(answer)
    return answer.json()
