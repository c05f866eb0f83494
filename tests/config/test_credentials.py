"""Credentials in manifests: `tfy-secret://tenant:group:key` references resolve like
`${secrets.get('group','key')}`, and credentials written as literals are warnings (path only, never the value)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from relaygate.config.compile import compile_manifests
from relaygate.config.loader import ConfigError, load_text
from relaygate.config.problems import Problem
from tests.helpers.gateway import run_cli, subprocess_env

SELF_HOSTED = """
type: provider-account/self-hosted-model
name: nvidia-external
integrations:
  - name: nemotron-nano
    type: integration/model/self-hosted-model
    hosted_model_name: nvidia/nemotron-3-nano-30b-a3b
    url: "https://integrate.api.nvidia.com/v1"
    model_server: "openai-compatible"
    model_types: ["chat"]
    auth_data:
      type: bearer-auth
      bearer_token: "{token}"
"""
REFERENCE = "tfy-secret://acme:nvidia:api-key"


def _problems(text: str, env: dict[str, str]) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        load_text(text, "gateway.yaml", env=env)
    return list(caught.value.problems)


def test_tfy_secret_reference_reads_the_group_key_variable() -> None:
    manifests = load_text(SELF_HOSTED.format(token=REFERENCE), env={"NVIDIA_API_KEY": "nvapi-real-secret"})
    target = compile_manifests(manifests).models["nvidia-external/nemotron-nano"]
    assert ("Authorization", "Bearer nvapi-real-secret") in target.headers
    assert b"nvapi-real-secret" in target.secrets  # scrubbed from upstream answers like any credential
    assert not manifests.warnings


def test_tfy_secret_resolves_exactly_like_secrets_get() -> None:
    env = {"MY_PROVIDER_API_KEY": "sk-same"}
    via_tfy = load_text(SELF_HOSTED.format(token="tfy-secret://t1:my-provider:api-key"), env=env)
    via_get = load_text(SELF_HOSTED.format(token="${secrets.get('my-provider','api-key')}"), env=env)
    tfy: Any = via_tfy.provider_accounts[0].integrations[0]
    get: Any = via_get.provider_accounts[0].integrations[0]
    assert tfy.auth_data.bearer_token.get_secret_value() == get.auth_data.bearer_token.get_secret_value() == "sk-same"


def test_missing_tfy_secret_names_manifest_field_and_variable() -> None:
    [problem] = _problems(SELF_HOSTED.format(token=REFERENCE), env={})
    assert problem.file == "gateway.yaml"
    assert problem.manifest == "provider-account/self-hosted-model nvidia-external"
    assert problem.field == "integrations[0].auth_data.bearer_token"
    assert "NVIDIA_API_KEY" in problem.rule and "not set" in problem.rule


def test_malformed_tfy_secret_is_a_problem() -> None:
    [problem] = _problems(SELF_HOSTED.format(token="tfy-secret://only-two:parts"), env={})
    assert problem.field == "integrations[0].auth_data.bearer_token"
    assert "tfy-secret://<tenant>:<group>:<key>" in problem.rule


def test_tfy_secret_in_a_header_value_resolves_too() -> None:
    text = """
type: provider-account/custom-endpoint
name: speech
auth_data: {type: header, headers: {Ocp-Apim-Subscription-Key: "tfy-secret://acme:speech:key"}}
integrations:
  - {type: integration/model/custom-endpoint, name: east, base_url: "https://east.example.com"}
"""
    snapshot = compile_manifests(load_text(text, env={"SPEECH_KEY": "speech-secret-1"}))
    assert ("Ocp-Apim-Subscription-Key", "speech-secret-1") in snapshot.proxies["speech"].endpoints["east"].headers


LITERALS = """
type: provider-account/openai
name: openai-main
auth_data: {type: api-key, api_key: sk-literal-value-123}
integrations:
  - name: gpt-4o
    type: integration/model/openai
    model_id: gpt-4o
    model_types: [chat]
    headers: {X-Api-Key: literal-header-secret, X-Env: prod, Authorization: "Bearer ${UPSTREAM_TOKEN}"}
---
type: provider-account/custom-endpoint
name: speech
auth_data: {type: header, headers: {Ocp-Apim-Subscription-Key: literal-subscription-key}}
integrations:
  - {type: integration/model/custom-endpoint, name: east, base_url: "https://east.example.com"}
---
on_http_request:
  - type: ai-gateway
    config:
      providers:
        - {id: openai, api_keys: [{value: "${OPENAI_API_KEY}"}, {value: sk-literal-ngrok-key}]}
"""
LITERAL_VALUES = ("sk-literal-value-123", "literal-header-secret", "literal-subscription-key", "sk-literal-ngrok-key")


def test_literal_credentials_are_warnings_with_their_paths() -> None:
    manifests = load_text(LITERALS, "gateway.yaml", env={"UPSTREAM_TOKEN": "t", "OPENAI_API_KEY": "k"})
    found = {(w.manifest, w.field) for w in manifests.warnings}
    assert found == {
        ("provider-account/openai openai-main", "auth_data.api_key"),
        ("provider-account/openai openai-main", "integrations[0].headers.X-Api-Key"),
        ("provider-account/custom-endpoint speech", "auth_data.headers.Ocp-Apim-Subscription-Key"),
        ("ai-gateway gateway#3", "on_http_request[0].config.providers[0].api_keys[1].value"),
    }
    text = "\n".join(str(w) for w in manifests.warnings)
    assert "literal credential" in text
    assert not any(value in text for value in LITERAL_VALUES)


def test_check_prints_literal_credential_warnings_and_still_passes(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(LITERALS)
    result = run_cli("check", "-f", str(path), env=subprocess_env(UPSTREAM_TOKEN="t", OPENAI_API_KEY="k"))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    warnings = [line for line in output.splitlines() if line.startswith("warning:") and "literal credential" in line]
    assert len(warnings) == 4, output
    assert any("auth_data.api_key" in line for line in warnings)
    assert not any(value in output for value in LITERAL_VALUES), output
