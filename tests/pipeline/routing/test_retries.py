"""Retries of the same target: `retry_config`, the `x-tfy-retry-config` header, `Retry-After`, one deadline."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest

from tests.helpers.gateway_thread import GatewayThread
from tests.pipeline.routing.conftest import (
    ALICE,
    PRIORITY,
    Rig,
    applied,
    build_config,
    start_mocks,
    stop_mocks,
    t,
)
from tests.pipeline.routing.probe import ProbeMock

RETRY_HEADER = "x-tfy-retry-config"


def _gaps(received: list[float]) -> list[float]:
    return [later - earlier for earlier, later in zip(received, received[1:], strict=False)]


def test_retry_config_retries_the_same_target_on_its_status_codes(rig: Rig) -> None:
    rig.a.fail_next(500, count=2)
    raw = rig.chat("vmod/retry")
    assert raw.headers["x-tfy-resolved-model"] == "prov-a/retry"
    assert rig.counts() == (3, 0, 0)
    assert applied(raw.headers)["load_balancing"]["retries"] == 2


def test_retry_config_falls_back_once_its_attempts_are_spent(rig: Rig) -> None:
    rig.a.fail_next(500, count=10)
    raw = rig.chat("vmod/retry-exhausted")
    assert raw.headers["x-tfy-resolved-model"] == "prov-b/retry-exhausted"
    assert rig.counts() == (3, 1, 0)


def test_retry_config_does_not_retry_other_statuses(rig: Rig) -> None:
    rig.a.fail_next(503)  # retry_config lists only 500; 503 falls back at once
    raw = rig.chat("vmod/retry-codes")
    assert raw.headers["x-tfy-resolved-model"] == "prov-b/retry-codes"
    assert rig.counts() == (1, 1, 0)


def test_retry_config_waits_its_delay_between_tries(rig: Rig) -> None:
    rig.a.fail_next(503)
    rig.chat("vmod/retry-delay")  # delay: 400 ms
    received = [r.received_at for r in rig.a.requests_to("/chat/completions")]
    assert len(received) == 2
    assert _gaps(received)[0] >= 0.4


def test_retry_header_retries_a_plain_model(rig: Rig) -> None:
    rig.a.fail_next(500, count=2)
    raw = rig.chat("prov-a/plain-retry", headers={RETRY_HEADER: '{"attempts": 2, "onStatusCodes": [500]}'})
    assert raw.headers["x-tfy-resolved-model"] == "prov-a/plain-retry"
    assert rig.counts() == (3, 0, 0)


def test_plain_model_is_not_retried_without_the_header(rig: Rig) -> None:
    rig.a.fail_next(500)
    with pytest.raises(openai.InternalServerError):
        rig.chat("prov-a/plain-retry")
    assert rig.counts() == (1, 0, 0)


def test_retry_header_retries_only_its_status_codes(rig: Rig) -> None:
    rig.a.fail_next(503)
    with pytest.raises(openai.InternalServerError) as caught:
        rig.chat("prov-a/plain-retry-codes", headers={RETRY_HEADER: '{"attempts": 2, "onStatusCodes": [500]}'})
    assert caught.value.status_code == 503
    assert rig.counts() == (1, 0, 0)


def test_retry_header_overrides_a_targets_retry_config(rig: Rig) -> None:
    rig.a.fail_next(500, count=10)  # retry_config says 3 retries; the header says 1
    raw = rig.chat("vmod/retry-header", headers={RETRY_HEADER: '{"attempts": 1, "onStatusCodes": [500]}'})
    assert raw.headers["x-tfy-resolved-model"] == "prov-b/retry-header"
    assert rig.counts() == (2, 1, 0)


def test_retry_header_with_use_retry_after_waits_the_upstreams_retry_after(rig: Rig) -> None:
    rig.a.fail_next(429, headers={"Retry-After": "1"})
    header = '{"attempts": 1, "onStatusCodes": [429], "useRetryAfterHeader": true}'
    rig.chat("prov-a/retry-after", headers={RETRY_HEADER: header})
    received = [r.received_at for r in rig.a.requests_to("/chat/completions")]
    assert len(received) == 2
    assert _gaps(received)[0] >= 1.0


def test_retry_after_is_not_waited_unless_asked(rig: Rig) -> None:
    rig.a.fail_next(429, headers={"Retry-After": "2"})
    rig.chat("prov-a/retry-after-ignored", headers={RETRY_HEADER: '{"attempts": 1, "onStatusCodes": [429]}'})
    received = [r.received_at for r in rig.a.requests_to("/chat/completions")]
    assert len(received) == 2
    assert _gaps(received)[0] < 1.0


@pytest.mark.parametrize("value", ["not json", "[1]", '{"attempts": "two"}', '{"attempts": 1, "onStatusCodes": 5}'])
def test_malformed_retry_header_is_400(rig: Rig, value: str) -> None:
    with pytest.raises(openai.BadRequestError):
        rig.chat("prov-a/plain-retry", headers={RETRY_HEADER: value})
    assert rig.counts() == (0, 0, 0)


DEADLINE_SECONDS = 2.0
DEADLINE_SLACK = 0.4


@dataclass
class DeadlineRig:
    gateway: GatewayThread
    a: ProbeMock
    b: ProbeMock
    token: str


@pytest.fixture(scope="module")
def deadline_rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeadlineRig]:
    """A gateway whose overall request timeout (RELAYGATE_REQUEST_TIMEOUT) is 2 s."""
    mocks = start_mocks(2)
    a, b = mocks
    retry = {"attempts": 6, "delay": 0, "on_status_codes": ["500"]}
    virtual = {
        name: (PRIORITY, [t(f"prov-a/{name}", priority=0, retry_config=retry), t(f"prov-b/{name}", priority=1)])
        for name in ("deadline", "deadline-caller")
    }  # one each: failures cool prov-a/<name> down
    config = build_config({"prov-a": a.port, "prov-b": b.port}, virtual, identities=False)
    gateway = GatewayThread(
        Path(tmp_path_factory.mktemp("deadline")), config, env={"RELAYGATE_REQUEST_TIMEOUT": str(DEADLINE_SECONDS)}
    )
    try:
        gateway.start()
        yield DeadlineRig(gateway, a, b, gateway.create_token(user=ALICE))
    finally:
        gateway.stop()
        stop_mocks(mocks)


def _run_out_the_deadline(rig: DeadlineRig, model: str, headers: dict[str, str] | None = None) -> float:
    rig.a.reset()
    rig.b.reset()
    rig.a.delay_next(0.9, count=20)  # every try takes 0.9 s and fails with 500: the third try crosses 2 s
    rig.a.fail_next(500, count=20)
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        rig.gateway.client(rig.token).chat.completions.create(
            model=model, messages=[{"role": "user", "content": "x"}], extra_headers=headers or {}
        )
    elapsed = time.monotonic() - started
    assert caught.value.status_code in (500, 504)
    return elapsed


def test_overall_deadline_bounds_total_time_across_retries(deadline_rig: DeadlineRig) -> None:
    elapsed = _run_out_the_deadline(deadline_rig, "vmod/deadline")
    assert elapsed < DEADLINE_SECONDS + DEADLINE_SLACK, f"retries ran {elapsed:.2f}s against a 2 s deadline"
    # Retried until the deadline: the third try starts at ~1.8 s, unless a loaded machine's overhead
    # between tries already used the last 0.2 s.
    assert len(deadline_rig.a.requests_to("/chat/completions")) in (2, 3)
    assert not deadline_rig.b.requests, "nothing is left of the deadline for a fallback"


def test_overall_deadline_bounds_attempts_that_have_a_caller_timeout(deadline_rig: DeadlineRig) -> None:
    elapsed = _run_out_the_deadline(deadline_rig, "vmod/deadline-caller", {"x-tfy-request-timeout": "1500"})
    assert elapsed < DEADLINE_SECONDS + DEADLINE_SLACK, f"retries ran {elapsed:.2f}s against a 2 s deadline"
