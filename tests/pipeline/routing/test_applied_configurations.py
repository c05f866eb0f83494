"""`x-tfy-applied-configurations`: the model configuration a virtual-model target applied and one entry
per fallback (from, to, and the status or error that caused it), in the header and in the log row."""

from __future__ import annotations

from tests.pipeline.routing.conftest import MESSAGES, Rig, applied


def test_model_configuration_names_override_params_and_header_names(rig: Rig) -> None:
    raw = rig.chat("vmod/applied-config", temperature=0.9)
    assert applied(raw.headers)["model_configuration"] == {
        "target": "prov-a/applied-config",
        "override_params": ["max_tokens", "temperature"],
        "headers_override": {"set": ["X-Route-Tag"], "remove": ["x-drop-me"]},
    }
    assert "secret-tag-value" not in raw.headers["x-tfy-applied-configurations"]  # names, never values
    assert rig.a.last("/chat/completions").header("X-Route-Tag") == "secret-tag-value"


def test_existing_keys_stay_as_they_were(rig: Rig) -> None:
    balancing = applied(rig.chat("vmod/applied-config").headers)["load_balancing"]
    assert balancing["virtual_model"] == "vmod/applied-config" and balancing["strategy"] == "priority"
    assert balancing["targets_tried"] == ["prov-a/applied-config"]
    assert (balancing["fallbacks"], balancing["retries"]) == (0, 0)


def test_a_fallback_entry_says_from_to_and_the_status(rig: Rig) -> None:
    rig.a.fail_next(503)
    report = applied(rig.chat("vmod/applied-fallback").headers)
    assert report["fallback"] == [{"from": "prov-a/applied-fallback", "to": "prov-b/applied-fallback", "status": 503}]
    assert "model_configuration" not in report  # the answering target (prov-b) changed nothing
    assert report["load_balancing"]["fallbacks"] == 1


def test_a_fallback_after_a_network_error_names_the_error(rig: Rig) -> None:
    report = applied(rig.chat("vmod/applied-network").headers)
    assert report["fallback"] == [
        {"from": "prov-dead/applied-network", "to": "prov-b/applied-network", "error": "upstream_error"}
    ]
    assert report["model_configuration"] == {"target": "prov-b/applied-network", "override_params": ["top_p"]}


def test_no_fallback_no_fallback_entry(rig: Rig) -> None:
    assert "fallback" not in applied(rig.chat("vmod/applied-fallback").headers)


def test_a_stream_reports_its_fallback_too(rig: Rig) -> None:
    rig.a.fail_next(500)
    raw = rig.client().chat.completions.with_raw_response.create(
        model="vmod/applied-stream", messages=MESSAGES, stream=True
    )
    list(raw.parse())
    assert applied(raw.headers)["fallback"] == [
        {"from": "prov-a/applied-stream", "to": "prov-b/applied-stream", "status": 500}
    ]


def test_the_log_row_keeps_both(rig: Rig) -> None:
    rig.a.fail_next(503)
    raw = rig.chat("vmod/applied-fallback")
    row = rig.gateway.wait_for_log(raw.headers["x-request-id"])
    assert row["extra"]["fallback"] == [
        {"from": "prov-a/applied-fallback", "to": "prov-b/applied-fallback", "status": 503}
    ]
    raw = rig.chat("vmod/applied-config")
    row = rig.gateway.wait_for_log(raw.headers["x-request-id"])
    assert row["extra"]["model_configuration"]["override_params"] == ["max_tokens", "temperature"]
