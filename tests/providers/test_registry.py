"""The provider registry: one complete row per kind, the config schema in step with it, no probing."""

from __future__ import annotations

import ast
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from genai_prices import data as price_data

import relaygate
from relaygate.config.schema import MANIFEST_MODELS, MODEL_ACCOUNTS_BY_KIND
from relaygate.config.schema_providers import manifest_type
from relaygate.providers.base import (
    ALL_OPERATIONS,
    MESSAGES,
    MESSAGES_COUNT_TOKENS,
    ConfiguresAuth,
    IntegrationOptions,
    RegionalBaseUrl,
    TokenCounter,
    token_counter,
)
from relaygate.providers.registry import ADAPTERS, OPENAI_SHAPED, PRICED, PROVIDERS, default_base_url, price_ids

PACKAGE = Path(relaygate.__file__).parent
NOT_MODEL_ACCOUNTS = {
    "provider-account/custom-endpoint",
    "provider-account/virtual-model",
    "provider-account/guardrail-config-group",
}
SERVABLE = ALL_OPERATIONS | {MESSAGES.name, MESSAGES_COUNT_TOKENS.name}
# Abilities adapters used to be probed for with getattr; they are Protocols and row fields now.
ABILITY_NAMES = {
    "count_tokens",
    "configure",
    "default_base_url",
    "integration_options",
    "operations",
    "max_choices",
    "base_url_version_suffixes",
}


def _kinds_of(predicate: type) -> set[str]:
    return {kind for kind, row in PROVIDERS.items() if isinstance(row.adapter, predicate)}


@pytest.mark.parametrize("kind", PROVIDERS)
def test_row_is_complete(kind: str) -> None:
    row = PROVIDERS[kind]
    assert row.kind == kind == row.adapter.kind
    assert row.title
    assert row.operations and row.operations <= SERVABLE
    assert row.max_choices >= 1
    assert all(suffix.startswith("/") for suffix in row.base_url_version_suffixes)


@pytest.mark.parametrize("kind", PROVIDERS)
def test_auth_scheme_is_one_compile_builds_unless_the_adapter_configures_its_own(kind: str) -> None:
    row = PROVIDERS[kind]
    if isinstance(row.adapter, ConfiguresAuth):
        assert row.auth not in ("api-key", "none")
    else:
        assert row.auth in ("bearer", "api-key", "none")


@pytest.mark.parametrize("kind", PROVIDERS)
def test_every_upstream_has_a_base_url_or_the_manifest_must_give_one(kind: str) -> None:
    row = PROVIDERS[kind]
    if row.endpoint != "account":
        assert row.base_url == ""
        return
    if isinstance(row.adapter, RegionalBaseUrl):
        assert row.base_url == ""  # derived from the account's region instead
        return
    if not row.base_url:
        assert MODEL_ACCOUNTS_BY_KIND[kind].model_fields["base_url"].is_required()
        return
    parts = urlsplit(row.base_url)
    assert parts.scheme == "https" or parts.hostname == "localhost", row.base_url
    assert not row.base_url.endswith("/")
    assert default_base_url(kind) == row.base_url


def test_price_ids_are_genai_prices_providers() -> None:
    known = {provider.id for provider in price_data.providers}
    for kind, row in PROVIDERS.items():
        assert set(row.price_ids) <= known, kind
        assert price_ids(kind) == row.price_ids
    assert PRICED == {kind for kind, row in PROVIDERS.items() if row.price_ids}
    assert price_ids("custom-endpoint") == ()


def test_derived_tables_follow_the_rows() -> None:
    assert ADAPTERS == {kind: row.adapter for kind, row in PROVIDERS.items()}
    assert OPENAI_SHAPED == {kind for kind, row in PROVIDERS.items() if row.openai_shaped}
    assert {"openai", "azure-openai", "groq", "mistral", "together", "self-hosted-model"} <= OPENAI_SHAPED


def test_abilities_are_protocols_the_adapters_satisfy() -> None:
    assert _kinds_of(TokenCounter) == {"aws-bedrock", "google-gemini", "google-vertex"}
    assert {kind for kind, adapter in ADAPTERS.items() if token_counter(adapter)} == _kinds_of(TokenCounter)
    assert _kinds_of(RegionalBaseUrl) == {"aws-bedrock", "google-vertex"}
    assert _kinds_of(ConfiguresAuth) == {"anthropic", "aws-bedrock", "google-gemini", "google-vertex", "cohere"}
    assert _kinds_of(IntegrationOptions) == {"azure-openai", "mock"}


def test_every_schema_account_kind_has_a_row_and_every_row_a_schema_account() -> None:
    schema_types = {name for name in MANIFEST_MODELS if name.startswith("provider-account/")} - NOT_MODEL_ACCOUNTS
    assert schema_types == {f"provider-account/{kind}" for kind in PROVIDERS}
    for kind, model in MODEL_ACCOUNTS_BY_KIND.items():
        assert manifest_type(model) == f"provider-account/{kind}"
        integration = model.model_fields["integrations"].annotation.__args__[0]  # type: ignore[union-attr]
        assert integration.model_fields["type"].annotation.__args__ == (f"integration/model/{kind}",)


@pytest.mark.parametrize("kind", [kind for kind, row in PROVIDERS.items() if row.endpoint == "account"])
def test_a_vendor_account_needs_a_key_exactly_when_its_row_says(kind: str) -> None:
    fields = MODEL_ACCOUNTS_BY_KIND[kind].model_fields
    assert fields["auth_data"].is_required() == PROVIDERS[kind].key_required


def _sources(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (PACKAGE / folder).rglob("*.py"))


def test_compile_has_no_provider_kind_branches() -> None:
    kinds = set(PROVIDERS) | {f"provider-account/{kind}" for kind in PROVIDERS}
    for path in sorted((PACKAGE / "config").glob("compile*.py")):
        literals = {
            node.value
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
        }
        assert not literals & kinds, f"{path.name} names provider kinds {sorted(literals & kinds)}"


def test_no_adapter_ability_is_probed_with_getattr() -> None:
    for path in _sources("providers", "config", "handlers"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "hasattr")
            ):
                name = node.args[1] if len(node.args) > 1 else None
                probed = name.value if isinstance(name, ast.Constant) else None
                assert probed not in ABILITY_NAMES, f"{path.relative_to(PACKAGE)}:{node.lineno} probes {probed}"
