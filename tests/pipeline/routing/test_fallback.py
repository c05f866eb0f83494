"""Falling back to the next target: which statuses do, which don't, who may be fallen back to, cooldown."""

from __future__ import annotations

import openai
import pytest

from tests.pipeline.routing.conftest import Rig, model_id
from tests.upstreams.openai_mock import chat_reply


@pytest.mark.parametrize("status", [429, 500, 503])
def test_status_in_fallback_codes_falls_back_to_next_target(rig: Rig, status: int) -> None:
    rig.a.fail_next(status)
    raw = rig.chat(f"vmod/fb-{status}")
    assert raw.parse().choices[0].message.content == chat_reply([{"role": "user", "content": "route me please"}])
    assert raw.headers["x-tfy-resolved-model"] == f"prov-b/fb-{status}"
    assert rig.counts() == (1, 1, 0)
    assert rig.b.last("/chat/completions").json["model"] == model_id(f"prov-b/fb-{status}")


def test_status_outside_fallback_codes_goes_to_the_caller(rig: Rig) -> None:
    rig.a.fail_next(400, message="bad parameter from upstream")
    with pytest.raises(openai.BadRequestError) as caught:
        rig.chat("vmod/fb-400")
    assert caught.value.status_code == 400
    assert "bad parameter from upstream" in str(caught.value.body)
    assert rig.counts() == (1, 0, 0), "the backup must not be called for a status outside fallback_status_codes"


def test_network_error_falls_back_to_next_target(rig: Rig) -> None:
    raw = rig.chat("vmod/fb-network")
    assert raw.headers["x-tfy-resolved-model"] == "prov-b/fb-network"
    assert rig.counts() == (0, 1, 0)


def test_fallback_candidate_false_never_receives_fallback_traffic(rig: Rig) -> None:
    rig.a.fail_next(503)
    raw = rig.chat("vmod/fb-candidate")
    assert raw.headers["x-tfy-resolved-model"] == "prov-c/fb-candidate"
    assert rig.counts() == (1, 0, 1)


def test_fallback_candidate_false_still_serves_as_primary(rig: Rig) -> None:
    raw = rig.chat("vmod/fb-candidate-primary")
    assert raw.headers["x-tfy-resolved-model"] == "prov-a/fb-candidate-primary"
    assert rig.counts() == (1, 0, 0)


def test_two_failures_within_window_push_priority_target_last(rig: Rig) -> None:
    rig.a.fail_next(503, count=2)
    for _ in range(2):  # each fails over to the backup; the second failure cools prov-a down
        assert rig.chat("vmod/cooldown").headers["x-tfy-resolved-model"] == "prov-b/cooldown"
    assert rig.counts() == (2, 2, 0)
    raw = rig.chat("vmod/cooldown")
    assert raw.headers["x-tfy-resolved-model"] == "prov-b/cooldown"
    assert rig.counts() == (2, 3, 0), "the cooled-down priority-0 target was tried before its backup"


def test_cooled_target_is_still_tried_when_its_backup_fails(rig: Rig) -> None:
    rig.a.fail_next(503, count=2)
    for _ in range(2):  # prov-a cools down
        rig.chat("vmod/cooldown-last")
    rig.reset()
    rig.b.fail_next(503)
    raw = rig.chat("vmod/cooldown-last")  # cooled targets go last, never away
    assert raw.headers["x-tfy-resolved-model"] == "prov-a/cooldown-last"
    assert rig.counts() == (1, 1, 0)
