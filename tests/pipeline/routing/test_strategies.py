"""Which target a virtual model picks: weights, priorities, sticky sessions, latency, metadata_match."""

from __future__ import annotations

import openai
import pytest

from tests.pipeline.routing.conftest import Rig, model_id

# ~300 is enough to see the split; 600 keeps +-5 points beyond 3 standard deviations (flake < 0.3%).
WEIGHT_REQUESTS = 600


def test_weight_based_80_20_split_within_5_points(rig: Rig) -> None:
    client = rig.client()
    for _ in range(WEIGHT_REQUESTS):
        client.chat.completions.create(model="vmod/weight", messages=[{"role": "user", "content": "w"}])
    a, b, c = rig.counts()
    assert a + b == WEIGHT_REQUESTS and c == 0
    share = 100.0 * a / WEIGHT_REQUESTS
    assert 75.0 <= share <= 85.0, f"prov-a got {share:.1f}% of traffic, configured 80%"


def test_priority_based_sends_everything_to_priority_0_while_healthy(rig: Rig) -> None:
    for _ in range(20):
        assert rig.chat("vmod/priority").headers["x-tfy-resolved-model"] == "prov-a/priority"
    assert rig.counts() == (20, 0, 0)


def test_priority_target_over_its_sla_cutoff_goes_after_its_backup(rig: Rig) -> None:
    rig.a.delay_next(0.1)  # ~100 ms over a few output tokens: far above the 5 ms/token cutoff
    assert rig.chat("vmod/sla").headers["x-tfy-resolved-model"] == "prov-a/sla"
    assert rig.chat("vmod/sla").headers["x-tfy-resolved-model"] == "prov-b/sla"
    assert rig.counts() == (1, 1, 0)


def test_upstream_always_receives_the_targets_provider_model_id(rig: Rig) -> None:
    for _ in range(20):
        rig.chat("vmod/model-id")
    a_models = {r.json["model"] for r in rig.a.requests_to("/chat/completions")}
    b_models = {r.json["model"] for r in rig.b.requests_to("/chat/completions")}
    assert a_models <= {model_id("prov-a/model-id")} and b_models <= {model_id("prov-b/model-id")}
    assert a_models and b_models, "a 50/50 split over 20 requests used only one target"


def test_sticky_session_keeps_hitting_the_same_target(rig: Rig) -> None:
    resolved = {
        rig.chat("vmod/sticky", headers={"X-Session-Id": "session-42"}).headers["x-tfy-resolved-model"]
        for _ in range(20)
    }
    assert len(resolved) == 1, resolved
    a, b, _ = rig.counts()
    assert sorted((a, b)) == [0, 20]


def test_sticky_session_from_metadata_keeps_hitting_the_same_target(rig: Rig) -> None:
    metadata = {"x-tfy-metadata": '{"conversation": "c-7"}'}
    resolved = {rig.chat("vmod/sticky-meta", headers=metadata).headers["x-tfy-resolved-model"] for _ in range(20)}
    assert len(resolved) == 1, resolved


def test_sessions_without_an_identifier_still_spread_over_targets(rig: Rig) -> None:
    for _ in range(20):
        rig.chat("vmod/sticky")
    a, b, _ = rig.counts()
    assert a > 0 and b > 0, (a, b)


def _latency_warm_up(rig: Rig, model: str, stream: bool) -> None:
    """Until both targets have at least 3 measured answers (unmeasured targets go first)."""
    client = rig.client()
    for _ in range(12):
        a, b, _ = rig.counts()
        if a >= 3 and b >= 3:
            return
        _latency_call(client, model, stream)
    raise AssertionError(f"latency warm-up did not measure both targets: {rig.counts()}")


def _latency_call(client: openai.OpenAI, model: str, stream: bool) -> None:
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "one two three four"}]
    if stream:
        for _ in client.chat.completions.create(model=model, messages=messages, stream=True):
            pass
    else:
        client.chat.completions.create(model=model, messages=messages)


def test_latency_based_prefers_the_fast_target_after_warm_up(rig: Rig) -> None:
    rig.a.delay_next(0.15, count=1000)  # prov-a answers slowly, prov-b at once
    _latency_warm_up(rig, "vmod/latency", stream=False)
    before = rig.counts()
    client = rig.client()
    for _ in range(20):
        _latency_call(client, "vmod/latency", stream=False)
    a, b, _ = (n - m for n, m in zip(rig.counts(), before, strict=True))
    assert b >= 18, f"after warm-up the fast target got {b} of 20 (slow one: {a})"


def test_latency_based_measures_streams_per_output_token(rig: Rig) -> None:
    rig.a.chunk_delay = 0.04  # prov-a streams slowly, prov-b at once
    _latency_warm_up(rig, "vmod/latency-stream", stream=True)
    before = rig.counts()
    client = rig.client()
    for _ in range(20):
        _latency_call(client, "vmod/latency-stream", stream=True)
    a, b, _ = (n - m for n, m in zip(rig.counts(), before, strict=True))
    assert b >= 18, f"after warm-up the fast target got {b} of 20 (slow one: {a})"


def test_metadata_match_target_is_used_when_metadata_matches(rig: Rig) -> None:
    raw = rig.chat("vmod/metadata", headers={"x-tfy-metadata": '{"region": "eu", "app": "x"}'})
    assert raw.headers["x-tfy-resolved-model"] == "prov-a/metadata"
    assert rig.counts() == (1, 0, 0)


@pytest.mark.parametrize("metadata", [None, '{"region": "us"}', '{"app": "x"}'])
def test_metadata_match_target_is_skipped_when_metadata_differs(rig: Rig, metadata: str | None) -> None:
    raw = rig.chat("vmod/metadata", headers={"x-tfy-metadata": metadata} if metadata else None)
    assert raw.headers["x-tfy-resolved-model"] == "prov-b/metadata"
    assert rig.counts() == (0, 1, 0)


def test_no_target_matching_metadata_is_a_400(rig: Rig) -> None:
    with pytest.raises(openai.BadRequestError):
        rig.chat("vmod/metadata-only", headers={"x-tfy-metadata": '{"region": "us"}'})
    assert rig.counts() == (0, 0, 0)


def test_latency_of_a_fallback_answer_excludes_the_failed_attempt(rig: Rig) -> None:
    rig.a.delay_next(0.3, count=5)  # prov-a first fails slowly (404: falls back, no cooldown)...
    rig.a.fail_next(404, count=5)
    rig.a.delay_next(0.06, count=1000)  # ...then both targets answer equally fast
    rig.b.delay_next(0.06, count=1000)
    client = rig.client()
    for _ in range(5):  # prov-b is measured, partly on answers given after prov-a's slow failures
        _latency_call(client, "vmod/latency-fallback", stream=False)
    assert rig.counts()[0] > 0 and rig.counts()[1] == 5
    for _ in range(3):  # prov-a, still unmeasured, goes first and is measured
        _latency_call(client, "vmod/latency-fallback", stream=False)
    before = rig.counts()
    for _ in range(20):
        _latency_call(client, "vmod/latency-fallback", stream=False)
    a, b, _ = (n - m for n, m in zip(rig.counts(), before, strict=True))
    assert b >= 3, f"prov-b got {b} of 20: its speed was measured with prov-a's failed attempts included"
