"""Manifest rules: each broken rule is one Problem at the right field path.

Every case starts from a valid manifest of its kind, changes one thing, and loads it beside a few
valid companions (so cross-manifest references resolve); the problems must be exactly at the
expected field.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
import yaml

from relaygate.config.loader import ConfigError, load_text
from relaygate.config.schema import Manifests

DELETE = object()

COMPANIONS: list[dict[str, Any]] = [
    {
        "type": "provider-account/openai",
        "name": "openai-main",
        "auth_data": {"type": "api-key", "api_key": "sk-test"},
        "integrations": [
            {"name": "gpt-4o", "type": "integration/model/openai", "model_id": "gpt-4o", "model_types": ["chat"]},
            {"name": "embed", "type": "integration/model/openai", "model_id": "te-3", "model_types": ["embedding"]},
        ],
    },
    {
        "type": "provider-account/custom-endpoint",
        "name": "speech",
        "integrations": [
            {"type": "integration/model/custom-endpoint", "name": "tts", "base_url": "https://tts.example.com"}
        ],
    },
    {
        "type": "provider-account/virtual-model",
        "name": "group",
        "integrations": [
            {
                "name": "chat",
                "type": "integration/model/virtual",
                "model_types": ["chat"],
                "routing_config": {
                    "type": "latency-based-routing",
                    "load_balance_targets": [{"target": "openai-main/gpt-4o"}],
                },
            }
        ],
    },
    {"type": "team", "name": "ml", "members": ["a@example.com"]},
    {"type": "virtual-account", "name": "bot", "allowed_models": ["openai-main/*"]},
]


def _endpoint(name: str, **lb: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "integration/model/custom-endpoint",
        "name": name,
        "base_url": f"https://{name}.example.com",
    }
    if lb:
        out["loadbalancing_config"] = lb
    return out


def _model(kind: str, name: str = "m1", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": f"integration/model/{kind}", "model_id": "x-1", "model_types": ["chat"], **extra}


BASES: dict[str, dict[str, Any]] = {
    "openai": {
        "type": "provider-account/openai",
        "name": "acct",
        "auth_data": {"type": "api-key", "api_key": "k"},
        "collaborators": [{"subject": "team:ml", "role_id": "provider-account-access"}],
        "integrations": [_model("openai")],
    },
    "azure": {
        "type": "provider-account/azure-openai",
        "name": "acct",
        "base_url": "https://res.openai.azure.com",
        "auth_data": {"type": "api-key", "api_key": "k"},
        "integrations": [_model("azure-openai")],
    },
    "bedrock": {
        "type": "provider-account/aws-bedrock",
        "name": "acct",
        "auth_data": {"type": "aws", "access_key_id": "AK", "secret_access_key": "s", "region": "us-east-1"},
        "integrations": [_model("aws-bedrock")],
    },
    "vertex": {
        "type": "provider-account/google-vertex",
        "name": "acct",
        "auth_data": {"type": "gcp-service-account", "key_json": '{"project_id": "p"}'},
        "integrations": [_model("google-vertex")],
    },
    "self-hosted": {
        "type": "provider-account/self-hosted-model",
        "name": "acct",
        "integrations": [
            {
                "name": "m1",
                "type": "integration/model/self-hosted-model",
                "hosted_model_name": "llama",
                "url": "http://10.0.0.5:8000/v1",
                "model_types": ["chat"],
            }
        ],
    },
    "mock": {"type": "provider-account/mock", "name": "acct", "integrations": [_model("mock", latency_ms=5)]},
    "custom": {
        "type": "provider-account/custom-endpoint",
        "name": "acct",
        "routing_type": "weight",
        "slug": "pool",
        "integrations": [_endpoint("ep-a", weight=60), _endpoint("ep-b", weight=40)],
    },
    "custom-priority": {
        "type": "provider-account/custom-endpoint",
        "name": "acct",
        "routing_type": "priority",
        "slug": "pool",
        "integrations": [_endpoint("ep-a", priority=0), _endpoint("ep-b", priority=1)],
    },
    "virtual": {
        "type": "provider-account/virtual-model",
        "name": "acct",
        "integrations": [
            {
                "name": "vm",
                "type": "integration/model/virtual",
                "model_types": ["chat"],
                "routing_config": {
                    "type": "weight-based-routing",
                    "load_balance_targets": [
                        {"target": "openai-main/gpt-4o", "weight": 70},
                        {"target": "openai-main/gpt-4o", "weight": 30, "metadata_match": {"region": "eu"}},
                    ],
                },
            }
        ],
    },
    "team": {"type": "team", "name": "team-b", "members": ["x@example.com"]},
    "va": {
        "type": "virtual-account",
        "name": "va-b",
        "allowed_models": ["openai-main/gpt-4o"],
        "allowed_endpoints": ["speech/tts"],
    },
    "ratelimit": {
        "type": "gateway-rate-limiting-config",
        "name": "rl",
        "rules": [
            {"id": "r1", "when": {"models": ["openai-main/gpt-4o"]}, "limit_to": 10, "unit": "requests_per_minute"},
            {"id": "r2", "limit_to": 1000, "unit": "tokens_per_hour"},
        ],
    },
    "budget": {
        "type": "gateway-budget-config",
        "name": "bg",
        "rules": [
            {"id": "b1", "limit_to": 5, "unit": "cost_per_day"},
            {"id": "b2", "limit_to": 5, "unit": "cost_per_week"},
        ],
    },
    "ngrok": {
        "on_http_request": [
            {
                "type": "ai-gateway",
                "config": {
                    "providers": [
                        {"id": "p1", "base_url": "https://p1.example.com", "models": [{"id": "m"}]},
                        {"id": "p2", "api_keys": [{"value": "k"}]},
                    ]
                },
            }
        ]
    },
}

_PART = re.compile(r"[^.\[\]]+|\[\d+\]")


def _edit(doc: dict[str, Any], path: str, value: Any) -> None:
    parts: list[Any] = [int(p[1:-1]) if p.startswith("[") else p for p in _PART.findall(path)]
    target: Any = doc
    for part in parts[:-1]:
        target = target[part]
    if value is DELETE:
        del target[parts[-1]]
    elif isinstance(target, list) and parts[-1] == len(target):
        target.append(value)
    else:
        target[parts[-1]] = value


def _load(kind: str, edits: dict[str, Any]) -> Manifests:
    doc = copy.deepcopy(BASES[kind])
    for path, value in edits.items():
        _edit(doc, path, value)
    return load_text(yaml.safe_dump([*COMPANIONS, doc], sort_keys=False), "case.yaml", env={})


def _problems(kind: str, edits: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        _load(kind, edits)
    return [(p.field, p.rule) for p in caught.value.problems]


def _account(kind: str, edits: dict[str, Any]) -> Any:
    """The edited manifest's account ("acct"), typed loosely: each test knows which kind it built."""
    account = _load(kind, edits).account("acct")
    assert account is not None
    return account


@pytest.mark.parametrize("kind", sorted(BASES))
def test_base_manifest_is_valid(kind: str) -> None:
    _load(kind, {})


CASES: list[tuple[str, str, dict[str, Any], str, str]] = [
    # names and common fields
    ("account-name-uppercase", "openai", {"name": "Acct_1"}, "name", "lowercase letters, digits or hyphens"),
    ("account-name-too-short", "openai", {"name": "ab"}, "name", "3-32"),
    (
        "integration-name-digit-first",
        "openai",
        {"integrations[0].name": "4o"},
        "integrations[0].name",
        "not starting with a digit",
    ),
    ("integration-name-too-short", "openai", {"integrations[0].name": "a"}, "integrations[0].name", "2-62"),
    (
        "unknown-field-is-reported",
        "openai",
        {"integrations[0].modle_id": "x"},
        "integrations[0].modle_id",
        "is not a known field",
    ),
    ("unknown-top-level-field", "openai", {"colaborators": []}, "colaborators", "is not a known field"),
    ("model-id-required", "openai", {"integrations[0].model_id": DELETE}, "integrations[0].model_id", "is required"),
    (
        "model-types-unknown-value",
        "openai",
        {"integrations[0].model_types": ["chat", "chatt"]},
        "integrations[0].model_types[1]",
        "must be one of chat, completion, embedding, rerank, image",
    ),
    (
        "model-types-empty",
        "openai",
        {"integrations[0].model_types": []},
        "integrations[0].model_types",
        "at least 1 item",
    ),
    (
        "model-types-duplicate",
        "openai",
        {"integrations[0].model_types": ["chat", "embedding", "chat"]},
        "integrations[0].model_types[2]",
        "duplicate",
    ),
    (
        "cost-negative",
        "openai",
        {"integrations[0].cost": {"input_per_million_tokens": -1, "output_per_million_tokens": 1}},
        "integrations[0].cost.input_per_million_tokens",
        "must be >= 0",
    ),
    (
        "cost-needs-both-prices",
        "openai",
        {"integrations[0].cost": {"input_per_million_tokens": 1}},
        "integrations[0].cost.output_per_million_tokens",
        "is required",
    ),
    (
        "header-value-line-break",
        "openai",
        {"integrations[0].headers": {"X-A": "a\r\nX-B: b"}},
        "integrations[0].headers.X-A",
        "line breaks",
    ),
    (
        "integration-type-must-match-account",
        "openai",
        {"integrations[0].type": "integration/model/groq"},
        "integrations[0].type",
        "must be integration/model/openai",
    ),
    (
        "integration-names-unique",
        "openai",
        {"integrations[1]": _model("openai")},
        "integrations[1].name",
        "duplicate integration name (same as integrations[0].name)",
    ),
    (
        "auth-unknown-type",
        "openai",
        {"auth_data": {"type": "oauth"}},
        "auth_data.type",
        "must be one of api-key, bearer-auth, header, aws, gcp-service-account",
    ),
    ("auth-type-required", "openai", {"auth_data": {"api_key": "k"}}, "auth_data.type", "is required"),
    ("auth-api-key-required", "openai", {"auth_data": {"type": "api-key"}}, "auth_data.api_key", "is required"),
    (
        "auth-api-key-not-empty",
        "openai",
        {"auth_data": {"type": "api-key", "api_key": ""}},
        "auth_data.api_key",
        "must not be empty",
    ),
    (
        "auth-kind-not-for-provider",
        "openai",
        {"auth_data": BASES["bedrock"]["auth_data"]},
        "auth_data.type",
        "must be one of api-key, bearer-auth, header for provider-account/openai",
    ),
    ("auth-required-for-cloud", "openai", {"auth_data": DELETE}, "auth_data", "is required"),
    ("base-url-must-be-http", "openai", {"base_url": "ftp://api.example.com"}, "base_url", "http:// or https://"),
    ("base-url-no-credentials", "openai", {"base_url": "https://u:p@api.example.com"}, "base_url", "credentials"),
    (
        "collaborator-subject-form",
        "openai",
        {"collaborators[0].subject": "group:ml"},
        "collaborators[0].subject",
        "must be user:<email>, team:<name> or virtualaccount:<name>",
    ),
    (
        "collaborator-user-needs-email",
        "openai",
        {"collaborators[0].subject": "user:bob"},
        "collaborators[0].subject",
        "must be user:<email>",
    ),
    (
        "collaborator-role",
        "openai",
        {"collaborators[0].role_id": "admin"},
        "collaborators[0].role_id",
        "must be one of provider-account-access, provider-account-manager",
    ),
    (
        "collaborator-team-declared",
        "openai",
        {"collaborators[0].subject": "team:ghosts"},
        "collaborators[0].subject",
        "team 'ghosts' is not declared",
    ),
    (
        "collaborator-virtual-account-declared",
        "openai",
        {"collaborators[0].subject": "virtual-account:ghost"},
        "collaborators[0].subject",
        "virtual account 'ghost' is not declared",
    ),
    (
        "collaborator-subjects-unique",
        "openai",
        {"collaborators[1]": {"subject": "team:ml", "role_id": "provider-account-manager"}},
        "collaborators[1].subject",
        "duplicate subject",
    ),
    # azure
    ("azure-base-url-required", "azure", {"base_url": DELETE}, "base_url", "is required"),
    (
        "azure-auth-api-key-only",
        "azure",
        {"auth_data": {"type": "bearer-auth", "bearer_token": "t"}},
        "auth_data.type",
        "must be api-key for provider-account/azure-openai",
    ),
    (
        "azure-integration-type",
        "azure",
        {"integrations[0].type": "integration/model/openai"},
        "integrations[0].type",
        "must be integration/model/azure-openai",
    ),
    (
        "azure-api-version-not-empty",
        "azure",
        {"integrations[0].api_version": ""},
        "integrations[0].api_version",
        "must not be empty",
    ),
    # bedrock and vertex
    (
        "bedrock-region-with-api-key",
        "bedrock",
        {"auth_data": {"type": "api-key", "api_key": "k"}},
        "region",
        "is required unless auth_data is type aws",
    ),
    ("bedrock-aws-auth-region", "bedrock", {"auth_data.region": DELETE}, "auth_data.region", "is required"),
    (
        "vertex-key-json-is-json",
        "vertex",
        {"auth_data.key_json": "not json"},
        "auth_data.key_json",
        "JSON text of a service-account key",
    ),
    (
        "vertex-project-with-bearer",
        "vertex",
        {"auth_data": {"type": "bearer-auth", "bearer_token": "t"}},
        "project_id",
        "is required unless auth_data is type gcp-service-account",
    ),
    # self-hosted and mock
    (
        "self-hosted-model-server",
        "self-hosted",
        {"integrations[0].model_server": "tgi"},
        "integrations[0].model_server",
        "must be openai-compatible",
    ),
    ("self-hosted-url-required", "self-hosted", {"integrations[0].url": DELETE}, "integrations[0].url", "is required"),
    (
        "self-hosted-hosted-model-name",
        "self-hosted",
        {"integrations[0].hosted_model_name": DELETE},
        "integrations[0].hosted_model_name",
        "is required",
    ),
    (
        "self-hosted-integration-auth-kind",
        "self-hosted",
        {"integrations[0].auth_data": {"type": "gcp-service-account", "key_json": "{}"}},
        "integrations[0].auth_data.type",
        "for a self-hosted model",
    ),
    (
        "mock-latency-non-negative",
        "mock",
        {"integrations[0].latency_ms": -1},
        "integrations[0].latency_ms",
        "must be >= 0",
    ),
    (
        "mock-latency-integer",
        "mock",
        {"integrations[0].latency_ms": "soon"},
        "integrations[0].latency_ms",
        "must be an integer",
    ),
    (
        "mock-integration-type",
        "mock",
        {"integrations[0].type": "integration/model/openai"},
        "integrations[0].type",
        "must be integration/model/mock",
    ),
    # custom endpoints
    (
        "custom-base-url-trailing-slash",
        "custom",
        {"integrations[0].base_url": "https://a.example.com/v1/"},
        "integrations[0].base_url",
        "must not end with a trailing slash",
    ),
    (
        "custom-base-url-scheme",
        "custom",
        {"integrations[0].base_url": "a.example.com"},
        "integrations[0].base_url",
        "http:// or https://",
    ),
    (
        "custom-base-url-no-query",
        "custom",
        {"integrations[0].base_url": "https://a.example.com/v1?x=1"},
        "integrations[0].base_url",
        "query string",
    ),
    ("custom-slug-required", "custom", {"slug": DELETE}, "slug", "is required when routing_type is set"),
    ("custom-slug-pattern", "custom", {"slug": "1pool"}, "slug", "not starting with a digit"),
    ("custom-slug-differs-from-endpoints", "custom", {"slug": "ep-a"}, "slug", "must differ from every endpoint"),
    (
        "custom-pool-needs-two",
        "custom",
        {"integrations": [_endpoint("ep-a", weight=100)]},
        "integrations",
        "routing_type weight needs at least 2 endpoints",
    ),
    (
        "custom-weight-required",
        "custom",
        {"integrations[1].loadbalancing_config": {"priority": 1}},
        "integrations[1].loadbalancing_config.weight",
        "is required when routing_type is weight",
    ),
    (
        "custom-lb-config-required",
        "custom",
        {"integrations[1].loadbalancing_config": DELETE},
        "integrations[1].loadbalancing_config",
        "is required when routing_type is weight",
    ),
    (
        "custom-weights-sum",
        "custom",
        {"integrations[1].loadbalancing_config.weight": 30},
        "integrations",
        "weights must sum to 100 (they sum to 90)",
    ),
    (
        "custom-weight-at-most-100",
        "custom",
        {"integrations[0].loadbalancing_config.weight": 101},
        "integrations[0].loadbalancing_config.weight",
        "must be <= 100",
    ),
    (
        "custom-priority-required",
        "custom-priority",
        {"integrations[0].loadbalancing_config": {"weight": 5}},
        "integrations[0].loadbalancing_config.priority",
        "is required when routing_type is priority",
    ),
    (
        "custom-priority-non-negative",
        "custom-priority",
        {"integrations[0].loadbalancing_config.priority": -1},
        "integrations[0].loadbalancing_config.priority",
        "must be >= 0",
    ),
    (
        "custom-fallback-codes",
        "custom",
        {"integrations[0].loadbalancing_config.fallback_status_codes": ["5xx"]},
        "integrations[0].loadbalancing_config.fallback_status_codes[0]",
        "HTTP status code",
    ),
    ("custom-routing-type", "custom", {"routing_type": "random"}, "routing_type", "must be one of weight, priority"),
    (
        "custom-endpoint-type",
        "custom",
        {"endpoint_type": "speech"},
        "endpoint_type",
        "must be one of azure-speech-service, other",
    ),
    (
        "custom-account-auth-header-only",
        "custom",
        {"auth_data": {"type": "api-key", "api_key": "k"}},
        "auth_data.type",
        "must be header",
    ),
    (
        "custom-endpoint-auth-header-only",
        "custom",
        {"integrations[0].auth_data": {"type": "bearer-auth"}},
        "integrations[0].auth_data.type",
        "must be header",
    ),
    (
        "custom-header-auth-needs-headers",
        "custom",
        {"auth_data": {"type": "header", "headers": {}}},
        "auth_data.headers",
        "at least 1",
    ),
    (
        "custom-authorized-subjects",
        "custom",
        {"integrations[0].authorized_subjects": ["bob"]},
        "integrations[0].authorized_subjects[0]",
        "must be user:<email>",
    ),
    (
        "custom-ca-certificates-pem",
        "custom",
        {"integrations[0].tls_settings": {"ca_certificates": "junk"}},
        "integrations[0].tls_settings.ca_certificates",
        "BEGIN CERTIFICATE",
    ),
    (
        "custom-endpoint-model-fields-unknown",
        "custom",
        {"integrations[0].model_types": ["chat"]},
        "integrations[0].model_types",
        "is not a known field",
    ),
    # virtual models
    (
        "virtual-weight-required",
        "virtual",
        {"integrations[0].routing_config.load_balance_targets[1].weight": DELETE},
        "integrations[0].routing_config.load_balance_targets[1].weight",
        "is required for weight-based-routing",
    ),
    (
        "virtual-weights-sum",
        "virtual",
        {"integrations[0].routing_config.load_balance_targets[1].weight": 20},
        "integrations[0].routing_config.load_balance_targets",
        "weights must sum to 100 (they sum to 90)",
    ),
    (
        "virtual-priority-required",
        "virtual",
        {
            "integrations[0].routing_config.type": "priority-based-routing",
            "integrations[0].routing_config.load_balance_targets[0].priority": 0,
        },
        "integrations[0].routing_config.load_balance_targets[1].priority",
        "is required for priority-based-routing",
    ),
    (
        "virtual-sla-cutoff-priority-only",
        "virtual",
        {"integrations[0].routing_config.load_balance_targets[0].sla_cutoff": {"time_per_output_token_ms": 30}},
        "integrations[0].routing_config.load_balance_targets[0].sla_cutoff",
        "only allowed with priority-based",
    ),
    (
        "virtual-strategy-type",
        "virtual",
        {"integrations[0].routing_config.type": "round-robin"},
        "integrations[0].routing_config.type",
        "must be one of weight-based-routing, latency-based-routing, priority-based-routing",
    ),
    (
        "virtual-targets-not-empty",
        "virtual",
        {"integrations[0].routing_config.load_balance_targets": []},
        "integrations[0].routing_config.load_balance_targets",
        "at least 1 item",
    ),
    (
        "virtual-target-form",
        "virtual",
        {"integrations[0].routing_config.load_balance_targets[0].target": "gpt-4o"},
        "integrations[0].routing_config.load_balance_targets[0].target",
        "must be account/integration",
    ),
    (
        "virtual-target-account-exists",
        "virtual",
        {"integrations[0].routing_config.load_balance_targets[0].target": "nowhere/gpt-4o"},
        "integrations[0].routing_config.load_balance_targets[0].target",
        "provider account 'nowhere' does not exist",
    ),
    (
        "virtual-target-integration-exists",
        "virtual",
        {"integrations[0].routing_config.load_balance_targets[0].target": "openai-main/gpt-5"},
        "integrations[0].routing_config.load_balance_targets[0].target",
        "has no integration 'gpt-5'",
    ),
    (
        "virtual-target-not-virtual",
        "virtual",
        {"integrations[0].routing_config.load_balance_targets[0].target": "group/chat"},
        "integrations[0].routing_config.load_balance_targets[0].target",
        "not another virtual model",
    ),
    (
        "virtual-target-not-custom-endpoint",
        "virtual",
        {"integrations[0].routing_config.load_balance_targets[0].target": "speech/tts"},
        "integrations[0].routing_config.load_balance_targets[0].target",
        "custom-endpoint account, not a model",
    ),
    (
        "virtual-target-serves-model-type",
        "virtual",
        {"integrations[0].routing_config.load_balance_targets[0].target": "openai-main/embed"},
        "integrations[0].routing_config.load_balance_targets[0].target",
        "does not serve chat",
    ),
    (
        "virtual-sticky-source",
        "virtual",
        {"integrations[0].routing_config.sticky_routing": {"session_identifiers": [{"key": "k", "source": "body"}]}},
        "integrations[0].routing_config.sticky_routing.session_identifiers[0].source",
        "must be one of headers, metadata",
    ),
    (
        "virtual-override-params-model",
        "virtual",
        {"integrations[0].routing_config.load_balance_targets[0].override_params": {"model": "x"}},
        "integrations[0].routing_config.load_balance_targets[0].override_params.model",
        "set by the gateway",
    ),
    (
        "virtual-retry-attempts",
        "virtual",
        {"integrations[0].routing_config.load_balance_targets[0].retry_config": {"attempts": -1}},
        "integrations[0].routing_config.load_balance_targets[0].retry_config.attempts",
        "must be >= 0",
    ),
    (
        "virtual-integration-type",
        "virtual",
        {"integrations[0].type": "integration/model/openai"},
        "integrations[0].type",
        "must be integration/model/virtual",
    ),
    (
        "virtual-has-no-auth",
        "virtual",
        {"auth_data": {"type": "api-key", "api_key": "k"}},
        "auth_data",
        "is not a known field",
    ),
    # teams and virtual accounts
    ("team-member-email", "team", {"members": ["x@example.com", "bob"]}, "members[1]", "must be an email address"),
    ("team-members-unique", "team", {"members": ["x@example.com", "X@Example.com"]}, "members[1]", "duplicate"),
    ("team-everyone-reserved", "team", {"name": "everyone"}, "name", "built in"),
    (
        "va-allowed-models-form",
        "va",
        {"allowed_models": ["gpt-4o"]},
        "allowed_models[0]",
        "must be account/integration or account/*",
    ),
    (
        "va-allowed-models-account-exists",
        "va",
        {"allowed_models": ["nowhere/*"]},
        "allowed_models[0]",
        "provider account 'nowhere' does not exist",
    ),
    (
        "va-allowed-models-integration-exists",
        "va",
        {"allowed_models": ["openai-main/gpt-5"]},
        "allowed_models[0]",
        "has no integration 'gpt-5'",
    ),
    (
        "va-allowed-models-not-endpoints",
        "va",
        {"allowed_models": ["speech/tts"]},
        "allowed_models[0]",
        "list it under allowed_endpoints",
    ),
    (
        "va-allowed-endpoints-exist",
        "va",
        {"allowed_endpoints": ["speech/stt"]},
        "allowed_endpoints[0]",
        "has no endpoint 'stt'",
    ),
    # rate limits and budgets
    ("rate-limit-positive", "ratelimit", {"rules[0].limit_to": 0}, "rules[0].limit_to", "must be > 0"),
    (
        "rate-limit-unit",
        "ratelimit",
        {"rules[0].unit": "cost_per_day"},
        "rules[0].unit",
        "must be one of requests_per_minute, requests_per_hour",
    ),
    ("rate-limit-ids-unique", "ratelimit", {"rules[1].id": "r1"}, "rules[1].id", "duplicate rule id"),
    ("rate-limit-id-pattern", "ratelimit", {"rules[1].id": "has space"}, "rules[1].id", "letters, digits"),
    (
        "rate-limit-applies-per-value",
        "ratelimit",
        {"rules[0].rate_limit_applies_per": ["team"]},
        "rules[0].rate_limit_applies_per[0]",
        "must be user, model, virtualaccount or metadata.<key>",
    ),
    (
        "rate-limit-applies-per-two",
        "ratelimit",
        {"rules[0].rate_limit_applies_per": ["user", "model", "metadata.app"]},
        "rules[0].rate_limit_applies_per",
        "at most two",
    ),
    (
        "rate-limit-when-subject",
        "ratelimit",
        {"rules[0].when.subjects": ["ml"]},
        "rules[0].when.subjects[0]",
        "must be user:<email>",
    ),
    (
        "rate-limit-when-model-exists",
        "ratelimit",
        {"rules[0].when.models": ["openai-main/gpt4"]},
        "rules[0].when.models[0]",
        "has no integration 'gpt4'",
    ),
    (
        "rate-limit-when-unknown-field",
        "ratelimit",
        {"rules[0].when.users": ["a"]},
        "rules[0].when.users",
        "is not a known field",
    ),
    (
        "budget-unit",
        "budget",
        {"rules[0].unit": "requests_per_day"},
        "rules[0].unit",
        "must be one of cost_per_day, cost_per_week, cost_per_month",
    ),
    ("budget-positive", "budget", {"rules[0].limit_to": -5}, "rules[0].limit_to", "must be > 0"),
    (
        "budget-audit-mode-bool",
        "budget",
        {"rules[0].audit_mode": "maybe"},
        "rules[0].audit_mode",
        "must be true or false",
    ),
    (
        "budget-applies-per",
        "budget",
        {"rules[0].budget_applies_per": ["user", "user"]},
        "rules[0].budget_applies_per[1]",
        "duplicate",
    ),
    # ngrok dialect
    (
        "ngrok-action-type",
        "ngrok",
        {"on_http_request[0].type": "rate-limit"},
        "on_http_request[0].type",
        "must be ai-gateway",
    ),
    (
        "ngrok-provider-id-required",
        "ngrok",
        {"on_http_request[0].config.providers[0].id": DELETE},
        "on_http_request[0].config.providers[0].id",
        "is required",
    ),
    (
        "ngrok-provider-id-no-colon",
        "ngrok",
        {"on_http_request[0].config.providers[0].id": "a:b"},
        "on_http_request[0].config.providers[0].id",
        "no ':'",
    ),
    (
        "ngrok-provider-ids-unique",
        "ngrok",
        {"on_http_request[0].config.providers[1].id_aliases": ["p1"]},
        "on_http_request[0].config.providers[1].id_aliases[0]",
        "duplicate provider id or alias (same as providers[0].id)",
    ),
    (
        "ngrok-model-ids-unique",
        "ngrok",
        {"on_http_request[0].config.providers[0].models[1]": {"id": "m"}},
        "on_http_request[0].config.providers[0].models[1].id",
        "duplicate model id or alias",
    ),
    (
        "ngrok-api-key-value",
        "ngrok",
        {"on_http_request[0].config.providers[1].api_keys[0]": {}},
        "on_http_request[0].config.providers[1].api_keys[0].value",
        "is required",
    ),
    (
        "ngrok-duration",
        "ngrok",
        {"on_http_request[0].config.total_timeout": "5 minutes"},
        "on_http_request[0].config.total_timeout",
        "must be a duration",
    ),
    (
        "ngrok-base-url",
        "ngrok",
        {"on_http_request[0].config.providers[0].base_url": "grpc://x"},
        "on_http_request[0].config.providers[0].base_url",
        "http:// or https://",
    ),
    (
        "ngrok-strategy-list",
        "ngrok",
        {"on_http_request[0].config.model_selection": {"strategy": "ai.models"}},
        "on_http_request[0].config.model_selection.strategy",
        "must be a list",
    ),
    (
        "ngrok-unknown-field",
        "ngrok",
        {"on_http_request[0].config.timeout": "1s"},
        "on_http_request[0].config.timeout",
        "is not a known field",
    ),
    ("ngrok-actions-not-empty", "ngrok", {"on_http_request": []}, "on_http_request", "at least 1 item"),
]


@pytest.mark.parametrize(("kind", "edits", "field", "rule"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule_is_reported_at_field(kind: str, edits: dict[str, Any], field: str, rule: str) -> None:
    problems = _problems(kind, edits)
    assert len(problems) == 1, problems
    assert problems[0][0] == field
    assert rule in problems[0][1]


def test_custom_endpoint_without_routing_type_ignores_pool_fields() -> None:
    account = _account("custom", {"routing_type": DELETE, "integrations[1].loadbalancing_config.weight": 1})
    assert not account.pooled


def test_custom_endpoint_defaults() -> None:
    account = _account("custom", {})
    endpoint = account.integrations[1]
    assert endpoint.tls_settings.reject_unauthorized is True
    assert endpoint.tls_settings.ca_certificates is None
    lb = endpoint.loadbalancing_config
    assert lb.fallback_status_codes == ("401", "403", "404", "408", "429", "500", "502", "503")
    assert lb.fallback_candidate is True
    assert endpoint.authorized_subjects is None


def test_virtual_target_defaults() -> None:
    account = _account("virtual", {})
    target = account.integrations[0].routing_config.load_balance_targets[0]
    assert target.fallback_status_codes == ("401", "403", "404", "429", "500", "502", "503")
    assert target.fallback_candidate is True
    assert target.retry_config is None


def test_self_hosted_url_defaults_to_account_base_url() -> None:
    account = _account("self-hosted", {"integrations[0].url": DELETE, "base_url": "http://vllm:8000/v1"})
    assert account.integrations[0].url == "http://vllm:8000/v1"


def test_status_codes_given_as_integers_become_strings() -> None:
    account = _account("custom", {"integrations[0].loadbalancing_config.fallback_status_codes": [429, 503]})
    lb = account.integrations[0].loadbalancing_config
    assert lb.fallback_status_codes == ("429", "503")


def test_provider_base_url_trailing_slash_is_stripped() -> None:
    account = _account("openai", {"base_url": "https://api.example.com/v1/"})
    assert account.base_url == "https://api.example.com/v1"


def test_virtual_account_subject_is_normalised() -> None:
    account = _account("openai", {"collaborators[0].subject": "virtual-account:bot"})
    assert account.collaborators[0].subject == "virtualaccount:bot"


def test_user_subject_email_is_lowercased() -> None:
    account = _account("openai", {"collaborators[0].subject": "user:Bob@Example.COM"})
    assert account.collaborators[0].subject == "user:bob@example.com"


def test_azure_api_version_defaults_and_unquoted_date_is_a_string() -> None:
    assert _account("azure", {}).api_version == "2024-10-21"
    text = yaml.safe_dump([*COMPANIONS, BASES["azure"]]).replace("name: acct", "name: acct\n  api_version: 2025-01-01")
    account: Any = load_text(text, env={}).account("acct")
    assert account.api_version == "2025-01-01"


def test_ngrok_durations_are_seconds_with_defaults() -> None:
    policy = _load("ngrok", {"on_http_request[0].config.per_request_timeout": "1m30s"}).ai_gateway_policies[0]
    assert policy.configs[0].per_request_timeout == 90.0
    assert policy.configs[0].total_timeout == 300.0
    assert _load("ngrok", {}).ai_gateway_policies[0].configs[0].per_request_timeout == 30.0


def test_rate_limit_applies_per_accepts_a_single_string() -> None:
    rules = _load("ratelimit", {"rules[0].rate_limit_applies_per": "user"}).rate_limit_configs[0].rules
    assert rules[0].rate_limit_applies_per == ("user",)
    assert rules[0].applies_per == ("user",)


def test_credentials_are_secret_strings() -> None:
    account = _account("openai", {"auth_data.api_key": "sk-very-secret"})
    assert "sk-very-secret" not in repr(account)
    assert account.auth_data.api_key.get_secret_value() == "sk-very-secret"


def test_models_are_frozen() -> None:
    account = _account("openai", {})
    with pytest.raises(ValueError):
        account.name = "other"
