"""Compiling the ngrok `ai-gateway` dialect: URL rules, built-in providers, keys, headers, CEL, refusals."""

from __future__ import annotations

from relaygate.config.compile_ngrok import internal_host_matcher, is_loopback
from relaygate.routing.ngrok import FALLBACK_STATUS_CODES, plan
from tests.ngrok.policy_builder import compile_text, gateway


def policy(providers: str, extra: str = "") -> str:
    return f"""
on_http_request:
  - type: ai-gateway
    config:
{extra}      providers:
{providers}"""


def test_external_http_base_url_is_refused_naming_the_field() -> None:
    compiled, problems = compile_text(policy("        - {id: remote, base_url: 'http://api.example.com/v1'}\n"))
    assert compiled is None
    assert [p.field for p in problems] == ["on_http_request[0].config.providers[0].base_url"]
    assert "https://" in problems[0].rule
    assert problems[0].manifest == "ai-gateway policy#1"


def test_external_https_base_url_is_accepted() -> None:
    g = gateway(policy("        - {id: remote, base_url: 'https://api.example.com/v1/'}\n"))
    assert g.providers["remote"].base_url == "https://api.example.com/v1"
    assert g.providers["remote"].kind == "self-hosted-model"


def test_loopback_http_is_allowed_without_any_allow_list() -> None:
    g = gateway(
        policy(
            "        - {id: a, base_url: 'http://127.0.0.1:8000/v1'}\n"
            "        - {id: b, base_url: 'http://localhost:8000'}\n"
            "        - {id: c, base_url: 'http://[::1]:8000'}\n"
        )
    )
    assert [p.id for p in g.provider_order] == ["a", "b", "c"]


def test_internal_host_from_the_allow_list_may_use_http() -> None:
    text = policy(
        "        - {id: svc, base_url: 'http://gpu-box.corp/v1'}\n"
        "        - {id: lan, base_url: 'http://10.1.2.3:8000/v1'}\n"
    )
    refused, problems = compile_text(text)
    assert refused is None and len(problems) == 2
    allowed = gateway(text, internal_host=internal_host_matcher(["*.corp", "10.0.0.0/8"]))
    assert allowed.providers["svc"].base_url == "http://gpu-box.corp/v1"


def test_ngrok_internal_endpoints_may_use_http_without_any_setting() -> None:
    # The reference: "HTTP URLs are only allowed for ngrok .internal endpoints".
    g = gateway(
        policy(
            "        - {id: svc, base_url: 'http://my-service.internal/v1'}\n"
            "        - {id: gpu, base_url: 'http://inference-1.internal:8000'}\n"
            "        - {id: tls, base_url: 'https://my-service.internal'}\n"
        )
    )
    assert [p.base_url for p in g.provider_order] == [
        "http://my-service.internal/v1",
        "http://inference-1.internal:8000",
        "https://my-service.internal",
    ]


def test_http_names_that_only_look_internal_are_refused() -> None:
    for url in ("http://my-service.internal.example.com/v1", "http://internal/v1", "http://x.internalx"):
        compiled, problems = compile_text(policy(f"        - {{id: svc, base_url: '{url}'}}\n"))
        assert compiled is None, url
        assert "https://" in problems[0].rule and ".internal" in problems[0].rule


def test_internal_host_matcher_forms() -> None:
    allowed = internal_host_matcher(["gpu-box", ".corp", "192.168.0.0/16", "fd00::/8"])
    assert allowed("gpu-box") and allowed("a.b.corp") and allowed("192.168.4.2") and allowed("[fd00::1]")
    assert not allowed("corp.example.com") and not allowed("8.8.8.8") and not allowed("gpu-box.evil.com")
    assert is_loopback("127.8.0.1") and is_loopback("app.localhost") and not is_loopback("localhost.example.com")


def test_known_provider_without_base_url_uses_its_public_default() -> None:
    g = gateway(
        policy("        - {id: openai}\n        - {id: groq}\n        - {id: mistral}\n        - {id: together}\n")
    )
    assert g.providers["openai"].base_url == "https://api.openai.com/v1"
    assert g.providers["groq"].base_url == "https://api.groq.com/openai/v1"
    assert g.providers["mistral"].base_url == "https://api.mistral.ai/v1"
    assert g.providers["together"].base_url == "https://api.together.xyz/v1"
    assert g.providers["openai"].kind == "openai"


def test_unknown_provider_without_base_url_is_a_problem() -> None:
    compiled, problems = compile_text(policy("        - {id: openai}\n        - {id: my-provider}\n"))
    assert compiled is None
    assert [p.field for p in problems] == ["on_http_request[0].config.providers[1].base_url"]
    assert "my-provider" in problems[0].rule and "is required" in problems[0].rule


def test_disabled_provider_is_skipped_entirely() -> None:
    g = gateway(
        policy(
            "        - {id: dormant, base_url: 'http://api.example.com', disabled: true,\n"
            "           models: [{id: llama3}]}\n        - {id: live, base_url: 'https://x.example.com'}\n"
        )
    )
    assert "dormant" not in g.providers
    assert plan(g, "dormant:llama3", None, {}) == [] and plan(g, "llama3", None, {}) == []


def test_each_api_key_is_its_own_target_with_bearer_auth_and_config_headers() -> None:
    g = gateway(
        policy(
            "        - id: openai\n          api_keys: [{value: sk-first-key}, {value: sk-second-key}]\n"
            "          models: [{id: gpt-4o}]\n",
            extra="      headers: {X-Custom-Auth: tok-123456, authorization: overridden}\n",
        )
    )
    routes = plan(g, "openai:gpt-4o", None, {})
    headers = [dict(r.payload.target.headers) for r in routes]
    assert headers == [
        {"X-Custom-Auth": "tok-123456", "Authorization": "Bearer sk-first-key"},
        {"X-Custom-Auth": "tok-123456", "Authorization": "Bearer sk-second-key"},
    ]
    secrets = routes[0].payload.target.secrets
    assert set(secrets) == {b"sk-first-key", b"sk-second-key", b"tok-123456", b"overridden"}
    assert all(r.fallback_status_codes == FALLBACK_STATUS_CODES and r.fallback_candidate for r in routes)
    assert {401, 403, 429} <= FALLBACK_STATUS_CODES


def test_keyless_provider_has_one_target_without_authorization() -> None:
    g = gateway(policy("        - {id: local, base_url: 'http://127.0.0.1:9/v1', models: [{id: llama3}]}\n"))
    (route,) = plan(g, "local:llama3", None, {})
    assert route.key == "ngrok:local:llama3:0" and route.name == "local:llama3"
    assert route.payload.target.headers == () and route.payload.target.secrets == ()


def test_target_names_provider_and_model_for_logs_and_access() -> None:
    g = gateway(policy("        - {id: openai, base_url: 'https://api.openai.com/v1', models: [{id: gpt-4o}]}\n"))
    target = plan(g, "gpt-4o", None, {})[0].payload.target
    assert (target.name, target.account, target.model_id, target.provider) == (
        "openai:gpt-4o",
        "openai",
        "gpt-4o",
        "openai",
    )
    assert "chat" in target.model_types and "embedding" in target.model_types
    assert target.price is not None  # known provider: the public price table applies


def test_timeouts_are_seconds_with_defaults() -> None:
    assert (
        gateway(policy("        - {id: openai}\n")).per_request_timeout,
        gateway(policy("        - {id: openai}\n")).total_timeout,
    ) == (30.0, 300.0)
    g = gateway(policy("        - {id: openai}\n", extra="      per_request_timeout: 120s\n      total_timeout: 5m\n"))
    assert (g.per_request_timeout, g.total_timeout) == (120.0, 300.0)


def test_invalid_cel_is_a_problem_with_the_strategy_index() -> None:
    extra = (
        '      model_selection:\n        strategy:\n          - "ai.models"\n'
        "          - \"ai.models.filter(m, m.provider_id == 'x'\"\n"
    )
    compiled, problems = compile_text(policy("        - {id: openai}\n", extra=extra))
    assert compiled is None
    assert [p.field for p in problems] == ["on_http_request[0].config.model_selection.strategy[1]"]
    assert "not valid CEL" in problems[0].rule


def test_unknown_cel_function_is_a_problem() -> None:
    extra = '      model_selection:\n        strategy: ["ai.models.shuffle()"]\n'
    _, problems = compile_text(policy("        - {id: openai}\n", extra=extra))
    assert [p.field for p in problems] == ["on_http_request[0].config.model_selection.strategy[0]"]
    assert "shuffle" in problems[0].rule


def test_a_second_ai_gateway_document_is_refused() -> None:
    one = policy("        - {id: openai}\n")
    _, problems = compile_text(one + "---" + one)
    assert [(p.manifest, p.field) for p in problems] == [("ai-gateway policy#2", "on_http_request[0]")]
    assert "only one ai-gateway action" in problems[0].rule and "policy#1" in problems[0].rule


def test_a_second_action_in_one_document_is_refused() -> None:
    text = policy("        - {id: openai}\n") + "  - type: ai-gateway\n    config: {providers: [{id: groq}]}\n"
    _, problems = compile_text(text)
    assert [p.field for p in problems] == ["on_http_request[1]"]


def test_no_ai_gateway_document_compiles_to_none() -> None:
    assert compile_text("type: team\nname: ml\nmembers: [a@example.com]\n") == (None, [])


def test_secret_references_resolve_from_the_environment() -> None:
    text = policy('        - id: openai\n          api_keys: [{value: "${OPENAI_API_KEY}"}]\n')
    g = gateway(text, env={"OPENAI_API_KEY": "sk-from-env"})
    assert dict(plan(g, "openai:gpt-4o", None, {})[0].payload.target.headers) == {"Authorization": "Bearer sk-from-env"}
