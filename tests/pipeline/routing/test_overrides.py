"""What a virtual model changes on the way to a target: `override_params`, `headers_override`, model id."""

from __future__ import annotations

from tests.pipeline.routing.conftest import Rig, model_id


def test_override_params_replace_the_callers_values_upstream(rig: Rig) -> None:
    rig.chat("vmod/overrides", temperature=0.9)
    body = rig.a.last("/chat/completions").json
    assert body["temperature"] == 0.2
    assert body["max_tokens"] == 512


def test_override_params_keep_the_rest_of_the_body(rig: Rig) -> None:
    rig.chat("vmod/overrides", top_p=0.5, messages=[{"role": "user", "content": "keep me"}])
    body = rig.a.last("/chat/completions").json
    assert body["top_p"] == 0.5
    assert body["messages"] == [{"role": "user", "content": "keep me"}]


def test_headers_override_set_reaches_the_upstream(rig: Rig) -> None:
    rig.chat("vmod/overrides")
    recorded = rig.a.last("/chat/completions")
    assert recorded.header("X-Route-Tag") == "blue"
    assert recorded.header("Authorization") == "Bearer sk-prov-a-key"


def test_headers_override_remove_drops_an_integration_header(rig: Rig) -> None:
    rig.chat("vmod/overrides")
    recorded = rig.a.last("/chat/completions")
    assert recorded.header("X-Drop-Me") is None
    assert recorded.header("X-Keep-Me") == "kept"


def test_upstream_receives_the_targets_provider_model_id(rig: Rig) -> None:
    rig.chat("vmod/overrides")
    assert rig.a.last("/chat/completions").json["model"] == model_id("prov-a/overrides")


def test_one_targets_overrides_do_not_follow_the_request_to_its_fallback(rig: Rig) -> None:
    rig.a.fail_next(503)
    rig.chat("vmod/override-fallback", temperature=0.9)
    assert rig.a.last("/chat/completions").json["temperature"] == 0.2
    fallback = rig.b.last("/chat/completions")
    assert fallback.json["temperature"] == 0.9
    assert "user" not in fallback.json
    assert fallback.json["model"] == model_id("prov-b/override-fallback")
    assert fallback.header("X-Route-Tag") is None
