"""What routing reports back: `x-tfy-resolved-model`, `x-tfy-applied-configurations`, `server-timing`."""

from __future__ import annotations

import re

from tests.pipeline.routing.conftest import MESSAGES, Rig, applied


def _attempt_entries(server_timing: str) -> list[str]:
    return re.findall(r"attempt-(\d+);", server_timing)


def test_resolved_model_names_the_target_that_answered(rig: Rig) -> None:
    rig.a.fail_next(503)
    raw = rig.chat("vmod/hdr-resolved")
    assert raw.headers["x-tfy-resolved-model"] == "prov-b/hdr-resolved"
    assert raw.parse().model == "vmod/hdr-resolved"  # the name the caller used
    assert raw.headers["x-tfy-provider-model"] == "hdr-resolved-on-b"  # the answering provider's own id


def test_applied_configurations_report_virtual_model_strategy_targets_and_counts(rig: Rig) -> None:
    rig.a.fail_next(500, count=2)  # retry_config: 1 retry on 500, then fall back
    raw = rig.chat("vmod/hdr-applied")
    balancing = applied(raw.headers)["load_balancing"]
    assert balancing["virtual_model"] == "vmod/hdr-applied"
    assert balancing["strategy"] == "priority"
    assert balancing["targets_tried"] == ["prov-a/hdr-applied", "prov-a/hdr-applied", "prov-b/hdr-applied"]
    assert balancing["retries"] == 1
    assert balancing["fallbacks"] == 1
    assert rig.counts() == (2, 1, 0)


def test_applied_configurations_on_a_stream(rig: Rig) -> None:
    rig.a.fail_next(503)
    raw = rig.client().chat.completions.with_raw_response.create(
        model="vmod/hdr-stream", messages=MESSAGES, stream=True
    )
    list(raw.parse())
    balancing = applied(raw.headers)["load_balancing"]
    assert balancing["targets_tried"] == ["prov-a/hdr-stream", "prov-b/hdr-stream"]
    assert balancing["fallbacks"] == 1
    assert raw.headers["x-tfy-resolved-model"] == "prov-b/hdr-stream"


def test_server_timing_has_one_attempt_entry_per_attempt(rig: Rig) -> None:
    rig.a.fail_next(503)
    raw = rig.chat("vmod/hdr-timing")
    timing = raw.headers["server-timing"]
    assert _attempt_entries(timing) == ["1", "2"], timing
    assert "prov-a/hdr-timing 503" in timing and "prov-b/hdr-timing 200" in timing


def test_server_timing_has_no_attempt_entries_for_a_single_attempt(rig: Rig) -> None:
    timing = rig.chat("prov-a/hdr-single").headers["server-timing"]
    assert "total;dur=" in timing
    assert _attempt_entries(timing) == [], timing


def test_log_row_names_the_virtual_model_the_answering_target_and_the_route(rig: Rig) -> None:
    rig.a.fail_next(503)
    raw = rig.chat("vmod/log-row")
    row = rig.gateway.wait_for_log(raw.headers["x-request-id"])
    assert row["requested_model"] == "vmod/log-row"
    assert row["resolved_model"] == "prov-b/log-row"
    assert row["status"] == 200
    routing = row["extra"]["routing"]
    assert routing["targets_tried"] == ["prov-a/log-row", "prov-b/log-row"]
    assert routing["fallbacks"] == 1
