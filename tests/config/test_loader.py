"""Loading manifests from files: layout, secret references, problem collection, all or nothing."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from relaygate.config.loader import ConfigError, load_path, load_text, secret_env_name
from relaygate.config.problems import Problem
from relaygate.config.schema import MANIFEST_MODELS, Manifests

FIXTURES = Path(__file__).parent.parent / "fixtures" / "config"
VALID_ENV = {
    name: f"secret-{name.lower()}"
    for name in (
        "OPENAI_API_KEY AZURE_API_KEY ANTHROPIC_API_KEY AWS_SECRET_ACCESS_KEY GEMINI_API_KEY COHERE_API_KEY "
        "MISTRAL_API_KEY GROQ_API_KEY TOGETHER_API_KEY NVIDIA_API_KEY UPSTREAM_TOKEN AZURE_SPEECH_KEY_A "
        "DEEPSEEK_API_KEY FIREWORKS_API_KEY OPENROUTER_API_KEY XAI_API_KEY PERPLEXITY_API_KEY CEREBRAS_API_KEY "
        "MY_PROVIDER_TOKEN MY_PROVIDER_API_KEY"
    ).split()
}
VALID_ENV["GCP_KEY_JSON"] = json.dumps({"type": "service_account", "project_id": "demo"})

OPENAI = """
type: provider-account/openai
name: {name}
auth_data: {{type: api-key, api_key: "{key}"}}
integrations:
  - {{name: gpt-4o, type: integration/model/openai, model_id: gpt-4o, model_types: [chat]}}
"""


def _openai(name: str = "openai-main", key: str = "sk-test") -> str:
    return OPENAI.format(name=name, key=key)


def _api_key(manifests: Manifests) -> str:
    """The first account's api key, as the compiler would read it."""
    account: Any = manifests.provider_accounts[0]
    return str(account.auth_data.api_key.get_secret_value())


def _problems(text: str, env: dict[str, str] | None = None) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        load_text(text, "test.yaml", env=env or {})
    return list(caught.value.problems)


# --- layout ------------------------------------------------------------------------------------------


def test_valid_directory_loads_every_manifest_kind() -> None:
    manifests = load_path(FIXTURES / "valid", env=VALID_ENV)
    kinds: set[str] = {a.type for a in manifests.provider_accounts}
    kinds |= {
        m.type
        for group in (
            manifests.teams,
            manifests.virtual_accounts,
            manifests.rate_limit_configs,
            manifests.budget_configs,
            manifests.ai_gateway_policies,
            manifests.observability_configs,
            manifests.admin_configs,
            manifests.guardrail_groups,
            manifests.guardrails_configs,
            manifests.cache_configs,
            manifests.mcp_servers,
            manifests.virtual_mcp_servers,
        )
        for m in group
    }
    assert kinds == set(MANIFEST_MODELS) | {"ai-gateway"}


def test_directory_reads_yaml_files_in_sorted_order_only() -> None:
    manifests = load_path(str(FIXTURES / "valid"), env=VALID_ENV)
    assert [Path(s).name for s in manifests.sources] == [
        "10-cloud.yaml",
        "20-local.yaml",
        "30-custom-endpoints.yaml",
        "40-virtual-models.yaml",
        "50-governance.yaml",
        "60-ngrok.yml",
        "70-observability.yaml",
        "80-admin.yaml",
        "90-guardrails-cache.yaml",
        "95-mcp.yaml",
    ]


def test_directory_order_decides_manifest_order(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text(_openai("first-by-name"))
    (tmp_path / "a.yml").write_text(_openai("zz-second"))
    (tmp_path / ".hidden.yaml").write_text("not: [valid")
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "c.yaml").write_text("not: [valid")
    manifests = load_path(tmp_path, env={})
    assert [a.name for a in manifests.provider_accounts] == ["zz-second", "first-by-name"]
    assert manifests.sources == (str(tmp_path / "a.yml"), str(tmp_path / "b.yaml"))


def test_single_file_path_loads(tmp_path: Path) -> None:
    path = tmp_path / "one.yaml"
    path.write_text(_openai())
    assert load_path(path, env={}).sources == (str(path),)


def test_manifests_know_the_file_of_each_manifest(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(_openai())
    (tmp_path / "b.yaml").write_text("type: team\nname: ml\n")
    manifests = load_path(tmp_path, env={})
    assert manifests.file_of(manifests.teams[0]) == str(tmp_path / "b.yaml")
    assert manifests.file_of(manifests.provider_accounts[0]) == str(tmp_path / "a.yaml")


def test_empty_directory_is_an_empty_config_with_a_warning(tmp_path: Path) -> None:
    manifests = load_path(tmp_path, env={})
    assert dataclasses.replace(manifests, warnings=()) == Manifests()
    assert [(w.file, w.rule) for w in manifests.warnings] == [
        (str(tmp_path), "holds no manifests: the gateway has nothing to serve")
    ]


def test_missing_path_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_path(tmp_path / "nope", env={})
    assert "no such file or directory" in str(caught.value)


def test_file_that_is_not_utf8_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_bytes(b"name: \xff\xfe")
    with pytest.raises(ConfigError) as caught:
        load_path(tmp_path, env={})
    assert str(caught.value) == f"{tmp_path / 'bad.yaml'}: -: -: is not UTF-8 text"


def test_list_form_file_holds_several_manifests() -> None:
    text = "- type: team\n  name: ml\n- type: team\n  name: ops\n"
    assert [t.name for t in load_text(text, env={}).teams] == ["ml", "ops"]


def test_multi_document_file_mixes_lists_and_skips_empty_documents() -> None:
    text = "---\n" + _openai("one-acct") + "---\n---\n- {type: team, name: ml}\n- {type: team, name: ops}\n---\n"
    manifests = load_text(text, env={})
    assert [a.name for a in manifests.provider_accounts] == ["one-acct"]
    assert [t.name for t in manifests.teams] == ["ml", "ops"]


def test_load_text_names_its_source() -> None:
    assert load_text("{type: team, name: ml}", "inline.yaml", env={}).sources == ("inline.yaml",)


def test_ngrok_document_gets_identity_from_file_stem_and_position() -> None:
    text = "type: team\nname: ml\n---\non_http_request: [{type: ai-gateway}]\n"
    policy = load_text(text, "gateway/policy.yaml", env={}).ai_gateway_policies[0]
    assert policy.identity == ("ai-gateway", "policy#2")


def test_manifests_container_is_frozen() -> None:
    manifests = load_text(_openai(), env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        manifests.teams = ()  # type: ignore[misc]


# --- secret references -------------------------------------------------------------------------------


def test_env_reference_is_resolved() -> None:
    assert _api_key(load_text(_openai(key="${OPENAI_KEY}"), env={"OPENAI_KEY": "sk-live"})) == "sk-live"


def test_env_default_is_used_when_unset_or_empty() -> None:
    for env in ({}, {"OPENAI_KEY": ""}):
        assert _api_key(load_text(_openai(key="${OPENAI_KEY:-sk-default}"), env=env)) == "sk-default"


def test_env_default_may_be_empty_for_optional_text() -> None:
    text = "type: team\nname: ml${SUFFIX:-}\n"
    assert load_text(text, env={}).teams[0].name == "ml"


def test_secrets_get_reads_upper_cased_group_key_variable() -> None:
    assert secret_env_name("my-provider", "api.key") == "MY_PROVIDER_API_KEY"
    text = _openai(key="${secrets.get('my-provider', 'api-key')}")
    assert _api_key(load_text(text, env={"MY_PROVIDER_API_KEY": "sk-grouped"})) == "sk-grouped"


def test_reference_inside_a_longer_string_is_resolved() -> None:
    text = (
        "type: provider-account/custom-endpoint\nname: api\nauth_data: {type: header, headers: "
        "{Authorization: 'Bearer ${TOKEN}'}}\n"
    )
    account: Any = load_text(text, env={"TOKEN": "t0k"}).provider_accounts[0]
    assert account.auth_data.headers["Authorization"].get_secret_value() == "Bearer t0k"


def test_dollar_dollar_brace_is_a_literal() -> None:
    text = _openai(key="$${NOT_A_REF}")
    assert _api_key(load_text(text, env={})) == "${NOT_A_REF}"


def test_missing_reference_names_manifest_and_field() -> None:
    [problem] = _problems(_openai(key="${OPENAI_KEY}"))
    assert str(problem) == (
        "test.yaml: provider-account/openai openai-main: auth_data.api_key: references ${OPENAI_KEY}, which is not set"
    )


def test_missing_secrets_get_reference_names_the_variable() -> None:
    [problem] = _problems(_openai(key="${secrets.get('openai', 'api-key')}"))
    assert problem.field == "auth_data.api_key"
    assert "environment variable OPENAI_API_KEY" in problem.rule


def test_malformed_reference_is_a_problem() -> None:
    [problem] = _problems(_openai(key="${not valid}"))
    assert problem.field == "auth_data.api_key"
    assert "malformed reference" in problem.rule


def test_interpolated_value_cannot_inject_yaml() -> None:
    text = "type: team\nname: ml\nmembers: ['${MEMBER}']\n"
    [problem] = _problems(text, env={"MEMBER": "a@example.com']\nextra: [x"})
    assert problem.field == "members[0]"


def test_keys_are_not_interpolated() -> None:
    text = _openai() + '\n  - {name: "b-${X}", type: integration/model/openai, model_id: m, model_types: [chat]}'
    manifests = load_text(text.replace("name: gpt-4o", 'name: "a-${X}"'), env={"X": "1"})
    assert [i.name for i in manifests.provider_accounts[0].integrations] == ["a-1", "b-1"]
    [problem] = _problems("type: team\nname: ml\n${X}: 1\n", env={"X": "members"})
    assert problem.field == "${X}" and "not a known field" in problem.rule


def test_environment_defaults_to_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAYGATE_TEST_KEY", "from-process")
    assert _api_key(load_text(_openai(key="${RELAYGATE_TEST_KEY}"))) == "from-process"


def test_numbers_can_come_from_references() -> None:
    text = (
        "type: gateway-rate-limiting-config\nname: rl\nrules:\n"
        "  - {id: r, limit_to: '${LIMIT}', unit: requests_per_minute}\n"
    )
    assert load_text(text, env={"LIMIT": "42"}).rate_limit_configs[0].rules[0].limit_to == 42


SECRET = "sk-SUPER-SECRET-value-123"


def test_secrets_never_appear_in_problems() -> None:
    text = """
type: provider-account/openai
name: openai-main
base_url: "${S}"
auth_data: {type: api-key, api_key: "${S}"}
integrations:
  - {name: gpt-4o, type: integration/model/openai, model_id: gpt-4o, model_types: ["${S}"],
     headers: {X-A: "${NL}"}, cost: {input_per_million_tokens: "${S}", output_per_million_tokens: 1}}
---
type: provider-account/google-vertex
name: vertex
auth_data: {type: gcp-service-account, key_json: "${S}"}
---
type: provider-account/mock
name: mock-acct
integrations: [{name: echo, type: integration/model/mock, model_id: e, model_types: [chat]}]
---
type: provider-account/virtual-model
name: group
integrations:
  - name: chat
    type: integration/model/virtual
    model_types: [chat]
    routing_config:
      type: latency-based-routing
      load_balance_targets: [{target: "mock-acct/${S}"}]
"""
    with pytest.raises(ConfigError) as caught:
        load_text(text, env={"S": SECRET, "NL": f"{SECRET}\r\nX: y"})
    fields = {p.field for p in caught.value.problems}
    assert "integrations[0].routing_config.load_balance_targets[0].target" in fields  # its rule names the target
    assert {"base_url", "integrations[0].headers.X-A", "auth_data.key_json"} <= fields
    assert SECRET not in str(caught.value)
    assert "has no integration '***'" in str(caught.value)


def test_alias_bomb_is_refused_without_expanding() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 12)]
    [problem] = _problems("type: team\nname: ml\n" + "\n".join(lines) + "\n")
    assert "more than 100000 values" in problem.rule


def test_ai_gateway_as_a_type_explains_the_dialect() -> None:
    [problem] = _problems("type: ai-gateway\nname: x\n")
    assert "on_http_request" in problem.rule


# --- problems ----------------------------------------------------------------------------------------


def test_problems_in_several_files_are_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        load_path(FIXTURES / "invalid", env={})
    base = FIXTURES / "invalid"
    assert str(caught.value).splitlines() == [
        f"{base / 'a-accounts.yaml'}: provider-account/openai openai-main: auth_data.api_key: "
        "references ${MISSING_KEY}, which is not set",
        f"{base / 'a-accounts.yaml'}: provider-account/openai openai-main: integrations[0].model_types[1]: "
        "must be one of chat, completion, embedding, rerank, image, audio_transcription, audio_translation, "
        "text_to_speech, moderation, responses",
        f"{base / 'a-accounts.yaml'}: provider-account/anthropic Bad_Name: name: "
        "must be 3-32 lowercase letters, digits or hyphens (^[a-z0-9-]{3,32}$)",
        f"{base / 'b-broken.yaml'}: -: line 3, column 10: invalid YAML: mapping values are not allowed here",
        f"{base / 'c-refs.yaml'}: provider-acount/openai typo: type: "
        "is not a known manifest type (did you mean provider-account/openai?)",
        f"{base / 'c-refs.yaml'}: provider-account/virtual-model group: "
        "integrations[0].routing_config.load_balance_targets[1].target: provider account 'ghost' does not exist",
    ]


def test_one_bad_file_refuses_the_whole_directory(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(_openai())
    (tmp_path / "b.yaml").write_text("type: team\nname: -bad\n")
    with pytest.raises(ConfigError):
        load_path(tmp_path, env={})


def test_yaml_syntax_error_reports_its_line() -> None:
    [problem] = _problems("type: team\nname: ml\nmembers: [a@example.com\nother: 1\n")
    assert problem.line == 4
    assert problem.field.startswith("line 4, column")
    assert problem.rule.startswith("invalid YAML:")


def test_documents_before_a_syntax_error_are_still_checked() -> None:
    problems = _problems("type: team\nname: -bad\n---\nkey: [unclosed\n")
    assert [p.field for p in problems][:1] == ["name"]
    assert problems[-1].rule.startswith("invalid YAML:")


def test_duplicate_yaml_key_is_reported_with_its_line() -> None:
    [problem] = _problems("type: team\nname: ml\nmembers: []\nname: ops\n")
    assert (problem.manifest, problem.field, problem.line) == ("team ops", "line 4", 4)
    assert "duplicate key 'name'" in problem.rule


def test_document_that_is_not_a_mapping_is_a_problem() -> None:
    [problem] = _problems("type: team\nname: ml\n---\njust text\n")
    assert (problem.manifest, problem.rule) == ("document #2", "must be a manifest (a mapping with type and name)")


def test_type_is_required() -> None:
    [problem] = _problems("name: ml\n")
    assert (problem.manifest, problem.field, problem.rule) == ("document #1", "type", "is required")


def test_unknown_type_without_close_match_lists_the_types() -> None:
    [problem] = _problems("type: gizmo\nname: ml\n")
    assert problem.field == "type"
    assert "must be one of provider-account/openai" in problem.rule


def test_manifest_without_name_is_labelled_by_position() -> None:
    [problem] = _problems("type: team\nname: ml\n---\ntype: team\nmembers: []\n")
    assert (problem.manifest, problem.field, problem.rule) == ("team (document #2)", "name", "is required")


def test_duplicate_identity_across_files_is_reported(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(_openai())
    (tmp_path / "b.yaml").write_text(_openai())
    with pytest.raises(ConfigError) as caught:
        load_path(tmp_path, env={})
    assert str(caught.value) == (
        f"{tmp_path / 'b.yaml'}: provider-account/openai openai-main: name: "
        f"duplicate provider-account/openai name (first defined in {tmp_path / 'a.yaml'})"
    )


def test_provider_account_names_are_unique_across_kinds() -> None:
    other = "type: provider-account/mock\nname: openai-main\n"
    [problem] = _problems(_openai() + "---\n" + other)
    assert (problem.manifest, problem.field) == ("provider-account/mock openai-main", "name")
    assert "already used by provider-account/openai" in problem.rule


def test_references_resolve_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("{type: virtual-account, name: bot, allowed_models: [openai-main/gpt-4o]}")
    (tmp_path / "b.yaml").write_text(_openai())
    assert load_path(tmp_path, env={}).virtual_accounts[0].allowed_models == ("openai-main/gpt-4o",)


def test_reference_to_a_refused_manifest_is_not_reported_again() -> None:
    va = "{type: virtual-account, name: bot, allowed_models: [openai-main/gpt-4o]}"
    problems = _problems(_openai(key="${UNSET}") + "---\n" + va)
    assert [p.manifest for p in problems] == ["provider-account/openai openai-main"]


def test_rule_ids_are_unique_across_configs_of_a_kind() -> None:
    text = (
        "- {type: gateway-budget-config, name: a, rules: [{id: r, limit_to: 1, unit: cost_per_day}]}\n"
        "- {type: gateway-budget-config, name: b, rules: [{id: r, limit_to: 1, unit: cost_per_day}]}\n"
        "- {type: gateway-rate-limiting-config, name: c, rules: [{id: r, limit_to: 1, unit: requests_per_day}]}\n"
    )
    [problem] = _problems(text)
    assert (problem.manifest, problem.field) == ("gateway-budget-config b", "rules[0].id")
    assert "already used by gateway-budget-config a" in problem.rule


def test_config_error_lists_one_problem_per_line() -> None:
    error = ConfigError(
        [
            Problem("f.yaml", "team ml", "members[0]", "must be an email address"),
            Problem("g.yaml", "-", "", "no such file"),
        ]
    )
    assert str(error) == "f.yaml: team ml: members[0]: must be an email address\ng.yaml: -: -: no such file"


def test_control_characters_are_a_yaml_problem_not_a_crash() -> None:
    with pytest.raises(ConfigError) as caught:
        load_text("type: team\nname: x\x94\n", "bad.yaml")
    assert [(p.field, p.line) for p in caught.value.problems] == [("line 2", 2)]
    assert "special characters" in caught.value.problems[0].rule
