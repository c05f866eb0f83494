"""WARNING lines for upstream trouble, produced by real failing upstreams (a closed port, a 500):
failed attempts, fallbacks, cooldowns and refused reloads name the target and the reason, never a
secret; repeats are rate-limited per target."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from relaygate.context import RequestContext
from relaygate.observe.upstream_warnings import UpstreamWarnings
from relaygate.routing.router import AttemptRecord
from tests.conftest import GatewayFactory
from tests.helpers.gateway import GatewayHandle, free_port, token_secret_of
from tests.helpers.log_records import log_record
from tests.helpers.manifests import ALICE, MOCK_ONLY, OPENAI_ACCOUNT, OPENAI_KEY, UNREACHABLE_ACCOUNT
from tests.upstreams.openai_mock import OpenAIMock
from tests.upstreams.recording_upstream import RecordingUpstream

MESSAGES: list[Any] = [{"role": "user", "content": "warn me"}]


def pool(name: str, first: str) -> str:
    return f"""\
type: provider-account/custom-endpoint
name: {name}
routing_type: priority
slug: main
integrations:
  - type: integration/model/custom-endpoint
    name: primary
    base_url: "{first}"
    loadbalancing_config: {{priority: 0}}
  - type: integration/model/custom-endpoint
    name: backup
    base_url: "{{rec_url}}"
    loadbalancing_config: {{priority: 1}}
"""


CONFIG = "---\n".join(
    [
        OPENAI_ACCOUNT,
        UNREACHABLE_ACCOUNT,
        pool("netpool", "http://127.0.0.1:{closed_port}"),
        pool("errpool", "{bad_url}"),
        pool("coolpool", "http://127.0.0.1:{closed_port}"),
    ]
)


@pytest.fixture
def upstreams() -> Iterator[tuple[OpenAIMock, RecordingUpstream, RecordingUpstream]]:
    with (
        OpenAIMock(OPENAI_KEY).running() as mock,
        RecordingUpstream("rec").running() as rec,
        RecordingUpstream("bad").running() as bad,
    ):
        bad.answer(500)
        yield mock, rec, bad


@pytest.fixture
def gateway(
    gateway_factory: GatewayFactory, upstreams: tuple[OpenAIMock, RecordingUpstream, RecordingUpstream]
) -> GatewayHandle:
    mock, rec, bad = upstreams
    return gateway_factory(
        CONFIG,
        env={"RELAYGATE_COOLDOWN_THRESHOLD": "2"},
        port=mock.port,
        closed_port=free_port(),
        rec_url=rec.url,
        bad_url=bad.url,
    )


def warnings_in(gateway: GatewayHandle, pattern: str, wait: float = 5.0) -> list[str]:
    """The WARNING lines matching `pattern`, once there is one (recorders run after the answer is sent)."""
    deadline = time.monotonic() + wait
    while True:
        lines = [line for line in gateway.output().splitlines() if " WARNING " in line and re.search(pattern, line)]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.02)


def chat(gateway: GatewayHandle, token: str, model: str, request_id: str) -> int:
    body = {"model": model, "messages": MESSAGES}
    headers = {"x-request-id": request_id}
    status = gateway.request("POST", "/api/llm/chat/completions", token=token, json=body, headers=headers).status
    gateway.wait_for_log(request_id)  # its row is queued just before the recorders run: they have run
    return status


def proxied(gateway: GatewayHandle, token: str, account: str, request_id: str) -> int:
    path = f"/proxy-api/{account}/main/anything?key={token}"
    status = gateway.request("GET", path, token=token, headers={"x-request-id": request_id}).status
    gateway.wait_for_log(request_id)
    return status


def test_upstream_500_is_logged_with_target_status_and_request_id(
    gateway: GatewayHandle, upstreams: tuple[OpenAIMock, RecordingUpstream, RecordingUpstream]
) -> None:
    upstreams[0].fail_next(500, message=f"boom {OPENAI_KEY}")
    token = gateway.create_token(user=ALICE)
    assert chat(gateway, token, "openai-main/gpt-4o", "warn-500") == 500
    lines = warnings_in(gateway, "upstream attempt failed")
    assert len(lines) == 1, gateway.output()
    assert "target=openai-main/gpt-4o status 500" in lines[0] and "request warn-500" in lines[0]
    assert OPENAI_KEY not in gateway.output() and token_secret_of(token) not in gateway.output()


def test_closed_port_is_logged_as_an_attempt_without_response(gateway: GatewayHandle) -> None:
    token = gateway.create_token(user=ALICE)
    assert chat(gateway, token, "unreachable/gpt-4o", "warn-closed") >= 500
    lines = warnings_in(gateway, "upstream attempt failed: target=unreachable/gpt-4o")
    assert len(lines) == 1 and "(no response)" in lines[0] and "request warn-closed" in lines[0], gateway.output()


def test_fallback_from_a_closed_port_is_logged_with_both_targets_and_the_cause(gateway: GatewayHandle) -> None:
    token = gateway.create_token(user=ALICE)
    assert proxied(gateway, token, "netpool", "warn-fb-net") == 200
    lines = warnings_in(gateway, "upstream fallback")
    assert len(lines) == 1, gateway.output()
    assert "netpool/primary -> netpool/backup because of" in lines[0] and "(no response)" in lines[0]
    assert "request warn-fb-net" in lines[0]
    assert token_secret_of(token) not in gateway.output()


def test_fallback_from_a_500_is_logged_with_its_status(gateway: GatewayHandle) -> None:
    token = gateway.create_token(user=ALICE)
    assert proxied(gateway, token, "errpool", "warn-fb-500") == 200
    (failure,) = warnings_in(gateway, "upstream attempt failed: target=errpool/primary")
    assert "status 500" in failure and "then: fallback" in failure
    (fallback,) = warnings_in(gateway, "upstream fallback")
    assert "errpool/primary -> errpool/backup because of status 500 (request warn-fb-500)" in fallback


def test_repeated_failures_of_one_target_are_logged_once_per_interval(gateway: GatewayHandle) -> None:
    token = gateway.create_token(user=ALICE)
    for n in range(4):
        assert chat(gateway, token, "unreachable/gpt-4o", f"warn-repeat-{n}") >= 500
    assert len(warnings_in(gateway, "upstream attempt failed: target=unreachable/gpt-4o")) == 1


def test_target_entering_cooldown_is_logged_with_key_failures_and_until(gateway: GatewayHandle) -> None:
    token = gateway.create_token(user=ALICE)
    for n in range(3):  # the second failure cools the primary; the third request finds it cooled
        assert proxied(gateway, token, "coolpool", f"warn-cool-{n}") == 200
    lines = warnings_in(gateway, "target cooled down")
    assert len(lines) == 1, gateway.output()
    assert re.search(
        r"target cooled down: proxy:coolpool/primary after 2 upstream failure\(s\) within 60s; "
        r"tried last for 30\.0s, until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
        lines[0],
    ), lines[0]


def test_refused_reload_is_logged_with_its_reason(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(MOCK_ONLY)
    gateway.write_config(MOCK_ONLY.replace("name: mock\n", "name: Not A Valid Name!\n"))
    deadline = time.monotonic() + 5
    refused: list[str] = []
    while not refused and time.monotonic() < deadline:
        refused = [line for line in gateway.output().splitlines() if "config change refused" in line]
        time.sleep(0.05)
    assert refused and " ERROR relaygate.config: " in refused[0], gateway.output()
    assert "must be 3-32 lowercase letters" in gateway.output().split("config change refused", 1)[1]


# -- the recorder on its own: its clock walks the interval ------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _ctx(request_id: str, *attempts: AttemptRecord) -> RequestContext:
    ctx = RequestContext(request_id, "POST", "/x")
    ctx.attempts = attempts
    return ctx


def test_the_next_line_after_the_interval_counts_the_ones_held_back(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING", "relaygate")
    clock = Clock()
    warn = UpstreamWarnings(interval=30.0, clock=clock)
    failing = AttemptRecord("acct/m", 503, None, 5.0, False, outcome="error")
    for n in range(4):
        warn(_ctx(f"r{n}", failing), log_record(n))
    clock.now += 30.0
    warn(_ctx("r-late", failing), log_record(9))
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "request r-late" in messages[1] and "(3 more like it since the last such line, not logged)" in messages[1]


def test_successes_client_errors_and_retries_that_succeed_are_not_warned(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING", "relaygate")
    warn = UpstreamWarnings()
    warn(_ctx("ok", AttemptRecord("acct/m", 200, None, 1.0, False)), log_record(1))
    client_error = AttemptRecord("acct/m", 400, "invalid_request_error", 1.0, False, outcome="error")
    warn(_ctx("bad-request", client_error), log_record(2))
    warn(_ctx("none"), log_record(3))
    assert caplog.records == []
