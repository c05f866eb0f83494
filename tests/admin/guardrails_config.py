"""Guardrail and cache manifests the admin tests add to `admin_config.CONFIG`: a masking mutator, a
blocking validator, an audit flagger and a webhook (whose `auth_data` and header are secrets from
`admin_config.SECRETS`) that fails, because nothing listens on its port."""

from __future__ import annotations

GUARDRAILS = """---
type: provider-account/guardrail-config-group
name: safety
integrations:
  - name: no-secrets
    type: integration/guardrail-config/secrets
    config: {kinds: [aws_access_key]}
  - name: pii-mask
    type: pii
    operation: mutate
    priority: 1
    config: {entities: [email], action: mask}
  - name: watch
    type: keywords
    enforcing_strategy: audit
    timeout_ms: 1500
    config: {words: [watchlist]}
  - name: hook
    type: webhook
    enforcing_strategy: enforce_but_ignore_on_error
    auth_data: {X-Hook-Key: "${ADMIN_TEST_ENDPOINT_SECRET}"}
    config:
      url: "http://127.0.0.1:{closed_port}/hook"
      headers: {Authorization: "Bearer literal-header-secret-0004"}
---
type: gateway-guardrails-config
name: guardrails
match: all
rules:
  - id: echo-input
    when:
      target: {operator: or, conditions: {model: {values: [mock/echo], condition: in}}}
      subjects: {operator: and, conditions: {in: [team:everyone], not_in: [user:nobody@example.com]}}
    llm_input_guardrails: [safety/pii-mask, safety/no-secrets, safety/watch]
  - id: hooked
    when: {models: [mock/priced]}
    llm_input_guardrails: [safety/hook]
    stream_mode: window
  - id: listed-only
    when: {models: ["nowhere/*"], metadata: {env: prod}}
    llm_output_guardrails: [safety/watch]
    stream_mode: post_hoc
"""

CACHE = """---
type: gateway-cache-config
name: cache
rules:
  - id: echo
    when: {models: [mock/echo]}
    ttl: 600
"""

SECRET = "AKIAIOSFODNN7EXAMPLE"
EMAIL = "carol.jones@corp.example.com"
