"""Name resolution and failover order of the ngrok dialect (no strategies involved)."""

from __future__ import annotations

import pytest

from relaygate.errors import BadRequest
from relaygate.routing import ngrok
from relaygate.routing.ngrok import MAX_BODY_MODELS, take_body_models
from relaygate.runtime.ngrok import NgrokGateway
from tests.ngrok.policy_builder import gateway, route_keys

CONFIG = """
on_http_request:
  - type: ai-gateway
    config:
      {flags}
      providers:
        - id: inference-1
          id_aliases: [inf1]
          base_url: http://127.0.0.1:8001/v1
          api_keys: [{value: key-1a}, {value: key-1b}]
          models:
            - {id: llama3, id_aliases: [llama]}
            - {id: "llama3:8b"}
        - id: inference-2
          base_url: http://127.0.0.1:8002/v1
          models:
            - {id: mistral}
            - {id: llama3-instruct, id_aliases: [llama3]}
        - id: openai
          id_aliases: [oai]
          base_url: https://api.openai.com/v1
          api_keys: [{value: sk-one}, {value: sk-two}]
          models: [{id: gpt-4o, id_aliases: [best]}]
"""


def build(flags: str = "") -> NgrokGateway:
    return gateway(CONFIG.replace("{flags}", flags))


def plan(g: NgrokGateway, requested: str, body: list[str] | None = None) -> list[str]:
    return route_keys(ngrok.plan(g, requested, body, {}))


def test_provider_and_model_id() -> None:
    assert plan(build(), "inference-2:mistral") == ["ngrok:inference-2:mistral:0"]


def test_provider_alias_and_model_alias() -> None:
    assert plan(build(), "inf1:llama") == ["ngrok:inference-1:llama3:0", "ngrok:inference-1:llama3:1"]
    assert plan(build(), "oai:best") == ["ngrok:openai:gpt-4o:0", "ngrok:openai:gpt-4o:1"]


def test_bare_alias_resolves_to_its_model() -> None:
    assert plan(build(), "best") == ["ngrok:openai:gpt-4o:0", "ngrok:openai:gpt-4o:1"]


def test_bare_id_served_by_several_providers_tries_all_in_config_order() -> None:
    # inference-1 serves llama3 by id, inference-2 by alias (its model id is llama3-instruct).
    assert plan(build(), "llama3") == [
        "ngrok:inference-1:llama3:0",
        "ngrok:inference-1:llama3:1",
        "ngrok:inference-2:llama3-instruct:0",
    ]


def test_upstream_model_id_is_the_configured_id_not_the_alias() -> None:
    routes = ngrok.plan(build(), "llama3", None, {})
    assert [r.payload.target.model_id for r in routes] == ["llama3", "llama3", "llama3-instruct"]
    assert [r.name for r in routes] == ["inference-1:llama3", "inference-1:llama3", "inference-2:llama3-instruct"]


def test_model_id_containing_a_colon_resolves_bare_and_qualified() -> None:
    assert plan(build(), "llama3:8b") == ["ngrok:inference-1:llama3:8b:0", "ngrok:inference-1:llama3:8b:1"]
    assert plan(build(), "inference-1:llama3:8b") == plan(build(), "llama3:8b")


def test_failover_order_is_keys_then_providers_then_models() -> None:
    keys = plan(build(), "llama3", ["llama3", "best"])
    assert keys == [
        "ngrok:inference-1:llama3:0",
        "ngrok:inference-1:llama3:1",  # keys of the first provider
        "ngrok:inference-2:llama3-instruct:0",  # next provider serving the model
        "ngrok:openai:gpt-4o:0",
        "ngrok:openai:gpt-4o:1",
    ]  # next model


def test_body_models_list_is_tried_in_order() -> None:
    assert plan(build(), "inference-2:mistral", ["inference-2:mistral", "oai:gpt-4o"]) == [
        "ngrok:inference-2:mistral:0",
        "ngrok:openai:gpt-4o:0",
        "ngrok:openai:gpt-4o:1",
    ]


def test_request_model_goes_first_when_not_in_the_body_list() -> None:
    assert plan(build(), "mistral", ["best"]) == [
        "ngrok:inference-2:mistral:0",
        "ngrok:openai:gpt-4o:0",
        "ngrok:openai:gpt-4o:1",
    ]


def test_request_model_keeps_its_place_when_already_in_the_body_list() -> None:
    assert plan(build(), "mistral", ["best", "mistral"]) == [
        "ngrok:openai:gpt-4o:0",
        "ngrok:openai:gpt-4o:1",
        "ngrok:inference-2:mistral:0",
    ]


def test_the_same_model_named_twice_is_tried_once() -> None:
    assert plan(build(), "gpt-4o", ["openai:gpt-4o", "best", "oai:best"]) == [
        "ngrok:openai:gpt-4o:0",
        "ngrok:openai:gpt-4o:1",
    ]


def test_unknown_names_in_the_body_list_are_skipped() -> None:
    assert plan(build(), "nope", ["also-nope", "mistral"]) == ["ngrok:inference-2:mistral:0"]


def test_unknown_model_with_known_provider_passes_through() -> None:
    routes = ngrok.plan(build(), "openai:gpt-4o-mini", None, {})
    assert route_keys(routes) == ["ngrok:openai:gpt-4o-mini:0", "ngrok:openai:gpt-4o-mini:1"]
    target = routes[0].payload.target
    assert target.model_id == "gpt-4o-mini" and target.base_url == "https://api.openai.com/v1"
    assert dict(target.headers) == {"Authorization": "Bearer sk-one"}


def test_unknown_model_on_a_custom_provider_passes_through() -> None:
    assert plan(build(), "inference-2:qwen2") == ["ngrok:inference-2:qwen2:0"]


def test_bare_unlisted_id_goes_to_known_providers_whose_catalog_lists_it() -> None:
    assert plan(build(), "gpt-4o-mini") == ["ngrok:openai:gpt-4o-mini:0", "ngrok:openai:gpt-4o-mini:1"]
    assert plan(build(), "totally-unknown-model") == []


def test_unconfigured_provider_prefix_is_never_routable() -> None:
    assert plan(build(), "groq:llama-3.1-8b-instant") == []
    assert plan(build(), "anthropic:claude-3-5-sonnet-latest") == []


def test_only_allow_configured_models_refuses_pass_through() -> None:
    g = build("only_allow_configured_models: true")
    assert plan(g, "openai:gpt-4o-mini") == []
    assert plan(g, "gpt-4o-mini") == []
    assert plan(g, "inference-2:qwen2") == []
    assert plan(g, "openai:gpt-4o") == ["ngrok:openai:gpt-4o:0", "ngrok:openai:gpt-4o:1"]


def test_only_allow_configured_models_filters_the_body_list() -> None:
    g = build("only_allow_configured_models: true")
    assert plan(g, "openai:gpt-4o-mini", ["openai:gpt-4o-mini", "mistral"]) == ["ngrok:inference-2:mistral:0"]


def test_only_allow_configured_providers_keeps_unconfigured_providers_out() -> None:
    g = build("only_allow_configured_providers: true")
    assert plan(g, "groq:llama-3.1-8b-instant") == []
    assert plan(g, "llama") == ["ngrok:inference-1:llama3:0", "ngrok:inference-1:llama3:1"]


def test_configured_model_names_are_listed() -> None:
    assert build().model_names == [
        "inference-1:llama3",
        "inference-1:llama3:8b",
        "inference-2:mistral",
        "inference-2:llama3-instruct",
        "openai:gpt-4o",
    ]


def test_prebuilt_routes_are_shared_between_requests() -> None:
    g = build()
    assert ngrok.plan(g, "best", None, {})[0] is ngrok.plan(g, "openai:gpt-4o", None, {})[0]


def test_take_body_models_removes_the_field() -> None:
    payload = {"model": "a", "models": ["b", "c"]}
    assert take_body_models(payload) == ["b", "c"] and payload == {"model": "a"}
    assert take_body_models({"model": "a"}) is None


@pytest.mark.parametrize("bad", ["b", [], [1], [""], ["m"] * (MAX_BODY_MODELS + 1)])
def test_take_body_models_rejects_a_malformed_list(bad: object) -> None:
    with pytest.raises(BadRequest):
        take_body_models({"model": "a", "models": bad})
