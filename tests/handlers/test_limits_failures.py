"""Token and budget rules through a real `relaygate serve` when requests fail, and at their edges.

A request that fails without usage gives its whole estimate back (gateway and adapter 400s, upstream
4xx/5xx, an unreachable upstream, timeouts, streams failing before content, virtual models whose every
target fails, the Messages API); a request the gateway refuses itself before any upstream call takes
nothing; an estimate must fit in what is left; one that can never fit is a 400, not a 429. Every test
runs on both backends (in memory, and Redis under a fresh key prefix). Counters are observed from
outside, with a probe whose estimate is exactly a rule's whole limit: it is admitted only when
nothing at all is counted.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from redis import Redis

from relaygate.limits.estimate import estimate_tokens
from tests.helpers.gateway import HttpResult, free_port
from tests.helpers.gateway_thread import GatewayThread
from tests.helpers.manifests import ALICE, OPENAI_KEY
from tests.limits.conftest import REDIS_URL, redis_reachable
from tests.upstreams.anthropic_mock import AnthropicMock
from tests.upstreams.openai_mock import OpenAIMock

ANTHROPIC_KEY = "sk-ant-limits-test"
# Every failing request below estimates ~4,000 tokens and, at $1 per 1,000 output tokens, ~$4.
MAX_TOKENS = 4000
PROBE_BODY: dict[str, Any] = {"messages": [{"role": "user", "content": "probe"}], "max_tokens": 4000, "n": 5}
PROBE_TOKENS = estimate_tokens(PROBE_BODY).total  # 20,006: 6 input + 5 choices x 4,000
PROBE_DOLLARS = 20  # the probe's 20,000 output tokens at $1 per 1,000 (input is free)
PRICE = "cost: {input_per_million_tokens: 0, output_per_million_tokens: 1000}"
DIME = "cost: {input_per_million_tokens: 0, output_per_million_tokens: 10000}"  # $0.01 per output token


def _openai_account(name: str, port: int, key: str = OPENAI_KEY, extra: str = "") -> str:
    return f"""type: provider-account/openai
name: {name}
base_url: http://127.0.0.1:{port}/v1
auth_data: {{type: api-key, api_key: {key}}}
integrations:
  - {{name: gpt, type: integration/model/openai, model_id: gpt-4o, model_types: [chat], {PRICE}}}{extra}
---
"""


def _config(good: int, broken: int, unavailable: int, slow: int, anthropic: int) -> str:
    closed = free_port()
    small = "\n  - {name: small, type: integration/model/openai, model_id: gpt-4o-mini, model_types: [chat]}"
    return (
        _openai_account("good", good, extra=small)
        + _openai_account("badkey", good, key="sk-not-the-key")  # the upstream answers 401
        + _openai_account("unavailable", unavailable)  # answers 503
        + _openai_account("down", closed)  # nothing listens: 502
        + _openai_account("broken", broken)  # streams send an error event before any content
        + _openai_account("slow", slow)  # answers after the caller's timeout: 504
        + f"""type: provider-account/anthropic
name: anth
auth_data: {{type: api-key, api_key: {ANTHROPIC_KEY}}}
base_url: http://127.0.0.1:{anthropic}
integrations:
  - {{name: claude, type: integration/model/anthropic, model_id: claude-sonnet-4-5, model_types: [chat], {PRICE}}}
---
type: provider-account/anthropic
name: anthbad
auth_data: {{type: api-key, api_key: sk-ant-wrong}}
base_url: http://127.0.0.1:{anthropic}
integrations:
  - {{name: claude, type: integration/model/anthropic, model_id: claude-sonnet-4-5, model_types: [chat], {PRICE}}}
---
type: provider-account/mock
name: mock
integrations:
  - {{name: dime, type: integration/model/mock, model_id: echo-dime, model_types: [chat], {DIME}}}
---
type: provider-account/virtual-model
name: router
integrations:
  - name: all-fail
    type: integration/model/virtual
    model_types: [chat]
    routing_config:
      type: priority-based-routing
      load_balance_targets:
        - {{target: down/gpt, priority: 0}}
        - {{target: unavailable/gpt, priority: 1, fallback_status_codes: ["503"]}}
        - {{target: badkey/gpt, priority: 2}}
  - name: gold-only
    type: integration/model/virtual
    model_types: [chat]
    routing_config:
      type: weight-based-routing
      load_balance_targets:
        - {{target: good/gpt, weight: 100, metadata_match: {{tier: gold}}}}
---
type: gateway-rate-limiting-config
name: limits
rules:
  - {{id: shared-tph, when: {{metadata: {{suite: failures}}}}, limit_to: {PROBE_TOKENS}, unit: tokens_per_hour,
     rate_limit_applies_per: ['metadata.case']}}
  - {{id: small-tph, when: {{models: [good/small]}}, limit_to: 1000, unit: tokens_per_hour,
     rate_limit_applies_per: ['metadata.case']}}
  - {{id: gold-rpm, when: {{models: [router/gold-only]}}, limit_to: 1, unit: requests_per_minute,
     rate_limit_applies_per: ['metadata.case']}}
---
type: gateway-budget-config
name: budgets
rules:
  - {{id: shared-daily, when: {{metadata: {{suite: failures}}}}, limit_to: {PROBE_DOLLARS}, unit: cost_per_day,
     budget_applies_per: ['metadata.case']}}
  - {{id: dollar-a-day, when: {{models: [mock/dime]}}, limit_to: 1, unit: cost_per_day,
     budget_applies_per: ['metadata.case']}}
"""
    )


@dataclass
class Rig:
    gateway: GatewayThread
    token: str
    good: OpenAIMock
    broken: OpenAIMock
    slow: OpenAIMock
    anthropic: AnthropicMock
    redis_prefix: str | None

    def call(
        self,
        case: str,
        path: str,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
        *,
        suite: str = "failures",
        **metadata: str,
    ) -> HttpResult:
        """`suite: failures` puts the request under the shared-tph and shared-daily rules (in `case`'s bucket)."""
        tags = {"suite": suite, "case": case, **metadata}
        all_headers = {"x-tfy-metadata": json.dumps(tags), **(headers or {})}
        if path == "/api/llm/messages":
            all_headers["anthropic-version"] = "2023-06-01"
        return self.gateway.request("POST", path, token=self.token, json=body, headers=all_headers)

    def chat(self, case: str, model: str, headers: dict[str, str] | None = None, **fields: Any) -> HttpResult:
        body = {
            "model": model,
            "messages": [{"role": "user", "content": "hello there"}],
            "max_tokens": MAX_TOKENS,
            **fields,
        }
        return self.call(case, "/api/llm/chat/completions", body, headers)

    def probe_fits(self, case: str, wait: float = 5.0) -> bool:
        """Whether a request estimated at exactly the whole limits (tokens and dollars) is admitted; settles
        run right after each answer, so a refusal is retried briefly before it counts."""
        deadline = time.monotonic() + wait
        while True:
            answer = self.call(case, "/api/llm/chat/completions", {"model": "good/gpt", **PROBE_BODY})
            if answer.status == 200:
                return True
            assert answer.status == 429, answer.body[:300]  # refused by a limit, never anything else
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)


@pytest.fixture(scope="module", params=["memory", "redis"])
def rig(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    env: dict[str, str] = {}
    prefix = None
    if request.param == "redis":
        if not redis_reachable():
            pytest.skip("Redis is not reachable on 127.0.0.1:6379")
        prefix = f"rgtest-e2e:{secrets.token_hex(6)}:"
        env = {"RELAYGATE_REDIS_URL": REDIS_URL, "RELAYGATE_LIMITS_KEY_PREFIX": prefix}
    mocks = [OpenAIMock(OPENAI_KEY) for _ in range(4)]
    anthropic = AnthropicMock(ANTHROPIC_KEY)
    for mock in (*mocks, anthropic):
        mock.start_in_thread()
    good, broken, unavailable, slow = mocks
    gateway = GatewayThread(
        Path(tmp_path_factory.mktemp(f"limits-{request.param}")),
        _config(good.port, broken.port, unavailable.port, slow.port, anthropic.port),
        env=env,
    )
    try:
        gateway.start()
        unavailable.fail_next(503, count=1_000_000)
        yield Rig(gateway, gateway.create_token(user=ALICE), good, broken, slow, anthropic, prefix)
    finally:
        gateway.stop()
        for mock in (*mocks, anthropic):
            mock.stop_thread()
        if prefix is not None:
            client = Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=prefix + "*", count=1000))
            if keys:
                client.delete(*keys)
            client.close()


# Each failure: how to send it, and the statuses the caller may see (never a 429: nothing is left counted).
# A virtual model tries all three targets (each status falls back); cooldowns change their order, so
# the last one tried, whose status the caller gets, varies.
Failure = Callable[[Rig, str], HttpResult]
ALL_FAIL = {401, 502, 503}
MESSAGES_BODY = {"model": "anth/claude", "max_tokens": MAX_TOKENS, "messages": [{"role": "user", "content": "hi"}]}
FAILURES: dict[str, tuple[Failure, set[int]]] = {
    # refused by the gateway before reserving: Anthropic returns one choice
    "n_on_anthropic": (lambda rig, case: rig.chat(case, "anth/claude", n=3), {400}),
    # refused by the Anthropic adapter while building the upstream request (after routing)
    "adapter_400": (lambda rig, case: rig.chat(case, "anth/claude", logprobs=True), {400}),
    "upstream_401": (lambda rig, case: rig.chat(case, "badkey/gpt"), {401}),
    "upstream_401_stream": (lambda rig, case: rig.chat(case, "badkey/gpt", stream=True), {401}),
    "upstream_503": (lambda rig, case: rig.chat(case, "unavailable/gpt"), {503}),
    "unreachable": (lambda rig, case: rig.chat(case, "down/gpt"), {502}),
    "unreachable_stream": (lambda rig, case: rig.chat(case, "down/gpt", stream=True), {502}),
    "stream_error_before_content": (lambda rig, case: rig.chat(case, "broken/gpt", stream=True), {502}),
    "timeout": (lambda rig, case: rig.chat(case, "slow/gpt", headers={"x-tfy-request-timeout": "150"}), {504}),
    "every_fallback_fails": (lambda rig, case: rig.chat(case, "router/all-fail"), ALL_FAIL),
    "every_fallback_fails_stream": (lambda rig, case: rig.chat(case, "router/all-fail", stream=True), ALL_FAIL),
    "messages_upstream_401": (
        lambda rig, case: rig.call(case, "/api/llm/messages", {**MESSAGES_BODY, "model": "anthbad/claude"}),
        {401},
    ),
    "responses_unreachable": (
        lambda rig, case: rig.call(
            case, "/api/llm/responses", {"model": "down/gpt", "input": "hello there", "max_output_tokens": MAX_TOKENS}
        ),
        {502},
    ),
    "messages_stream_error_before_content": (
        lambda rig, case: rig.call(case, "/api/llm/messages", {**MESSAGES_BODY, "stream": True}),
        {529},
    ),
}


def _arm(rig: Rig, kind: str, count: int) -> None:
    """Inject the upstream behaviour a failure needs for its next `count` requests."""
    if kind == "stream_error_before_content":
        rig.broken.fail_stream_after(0, count=count)
    elif kind == "timeout":
        rig.slow.delay_next(1.0, count=count)
    elif kind == "messages_stream_error_before_content":
        rig.anthropic.fail_stream_after(0, count=count)


@pytest.mark.parametrize("kind", list(FAILURES))
def test_a_failed_request_gives_its_whole_estimate_back(rig: Rig, kind: str) -> None:
    send, statuses = FAILURES[kind]
    case = f"one-{kind}"
    _arm(rig, kind, 6)
    for _ in range(6):  # ~4,000 tokens and ~$4 each: without the refund, 6 fill the 20,006 tokens and $20
        answer = send(rig, case)
        assert answer.status in statuses, answer.body[:300]
    assert rig.probe_fits(case), f"{kind}: the failed requests' estimates are still counted"


def test_a_thousand_mixed_failures_leave_every_counter_at_zero(rig: Rig) -> None:
    case = "thousand"
    quick = [kind for kind in FAILURES if kind != "timeout"]
    # Interleaved; every 50th a timeout (each waits for the caller's 150 ms timeout, so only 20 of them).
    plan = ["timeout" if i % 50 == 25 else quick[i % len(quick)] for i in range(1000)]
    for kind in set(plan):
        _arm(rig, kind, plan.count(kind))
    for kind in plan:
        send, statuses = FAILURES[kind]
        answer = send(rig, case)
        assert answer.status in statuses, (kind, answer.status, answer.body[:300])
    assert rig.probe_fits(case)
    if rig.redis_prefix is not None:  # and in Redis itself: the probe's settled usage is all there is
        _assert_redis_counts_only_the_probe(rig.redis_prefix, case)


def _assert_redis_counts_only_the_probe(prefix: str, case: str) -> None:
    client = Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        bucket = f"{len(case)}={case}"
        [tokens_key] = [k for k in client.scan_iter(match=f"{prefix}rl:shared-tph:*") if k.endswith(bucket)]
        [dollars_key] = [k for k in client.scan_iter(match=f"{prefix}bg:shared-daily:*") if bucket in k]
        assert 0 < int(client.hget(tokens_key, "tot") or 0) < 100  # the probe's actual usage: a few tokens
        assert 0 <= float(client.get(dollars_key) or 0) < 0.1
    finally:
        client.close()


@pytest.mark.parametrize(
    "fields", [{"max_tokens": 1_000_000_000}, {"n": 50, "max_tokens": None}, {"n": 1_000_000_000, "max_tokens": None}]
)
def test_a_request_that_can_never_fit_a_fresh_bucket_is_a_400_and_never_sent(rig: Rig, fields: dict[str, Any]) -> None:
    case = f"never-{secrets.token_hex(4)}"
    body = {"model": "good/small", "messages": [{"role": "user", "content": "hello there"}], **fields}
    body = {k: v for k, v in body.items() if v is not None}
    before = len(rig.good.requests)
    answer = rig.call(case, "/api/llm/chat/completions", body, suite="edges")
    assert answer.status == 400, answer.body[:300]
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "exceeds_limit"
    assert "never fit" in error["message"] and "'small-tph'" in error["message"]
    assert "1,000 tokens per hour" in error["message"] and "max_tokens" in error["message"]
    assert answer.headers.get("retry-after") is None
    assert json.loads(answer.headers["x-tfy-applied-configurations"]) == {
        "rate_limit": {"rule_ids": ["small-tph"], "refused": True}
    }
    assert answer.headers["x-request-id"]
    assert len(rig.good.requests) == before  # nothing went upstream
    # It took nothing: a request that fits the whole fresh bucket still gets in.
    fits = rig.call(
        case,
        "/api/llm/chat/completions",
        {"model": "good/small", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 993},
        suite="edges",
    )
    assert fits.status == 200, fits.body[:300]


def test_the_openai_sdk_sees_a_bad_request_it_should_not_retry(rig: Rig) -> None:
    client = rig.gateway.client(rig.token, max_retries=3)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="good/small", messages=[{"role": "user", "content": "hi"}], max_tokens=1_000_000_000
        )
    assert caught.value.code == "exceeds_limit"


def test_a_token_estimate_must_fit_in_what_is_left(rig: Rig) -> None:
    # 1,000 tokens an hour; "hello there" estimates 7 input tokens. 993 fills the bucket exactly.
    case = f"edge-{secrets.token_hex(4)}"

    def ask(max_tokens: int) -> HttpResult:
        return rig.call(
            case,
            "/api/llm/chat/completions",
            {"model": "good/small", "max_tokens": max_tokens, "messages": [{"role": "user", "content": "hello there"}]},
            suite="edges",
        )

    assert ask(993).status == 200  # settles to its actual usage (a few tokens)
    first = ask(993)  # 993 + 7 no longer fits beside the first call's usage: a 429 (it will fit later)
    assert first.status == 429 and first.json()["error"]["type"] == "rate_limit_exceeded"
    assert 1 <= int(first.headers["retry-after"]) <= 3600
    assert ask(900).status == 200  # smaller estimates still fit


def test_sequential_calls_never_spend_past_a_daily_budget(rig: Rig) -> None:
    # $1 a day; each call costs $0.14 (14 output tokens at $0.01, input free), estimated exactly so.
    case = f"dime-{secrets.token_hex(4)}"
    words = " ".join(["word"] * 14)  # the mock model answers as many output tokens as the prompt has words
    spent, answers = 0.0, []
    for _ in range(12):
        answer = rig.call(
            case,
            "/api/llm/chat/completions",
            {"model": "mock/dime", "max_tokens": 14, "messages": [{"role": "user", "content": words}]},
            suite="edges",
        )
        answers.append(answer.status)
        if answer.status != 200:
            break
        assert answer.json()["usage"]["completion_tokens"] == 14
        spent += 0.14
    assert answers == [200] * 7 + [429]  # $0.98; an 8th would make $1.12
    assert round(spent, 2) == 0.98
    refused = rig.call(
        case,
        "/api/llm/chat/completions",
        {"model": "mock/dime", "max_tokens": 2, "messages": [{"role": "user", "content": "two words"}]},
        suite="edges",
    )
    assert refused.status == 200  # $0.02 still fits in the $0.02 left: exactly $1 spent
    last = rig.call(
        case,
        "/api/llm/chat/completions",
        {"model": "mock/dime", "max_tokens": 1, "messages": [{"role": "user", "content": "one"}]},
        suite="edges",
    )
    assert last.status == 429 and last.json()["error"]["type"] == "budget_exceeded"


def test_a_budget_refuses_a_call_it_can_never_afford_with_400(rig: Rig) -> None:
    case = f"dear-{secrets.token_hex(4)}"
    answer = rig.call(
        case,
        "/api/llm/chat/completions",
        {"model": "mock/dime", "max_tokens": 101, "messages": [{"role": "user", "content": "hi"}]},
        suite="edges",
    )
    assert answer.status == 400, answer.body[:300]
    error = answer.json()["error"]
    assert error["code"] == "exceeds_limit" and "budget 'dollar-a-day'" in error["message"]
    assert "$1.01" in error["message"] and "$1 per day" in error["message"]
    assert json.loads(answer.headers["x-tfy-applied-configurations"]) == {
        "budget": {"rule_ids": ["dollar-a-day"], "refused": True}
    }


def test_n_on_a_model_that_returns_one_choice_is_refused_before_reserving(rig: Rig) -> None:
    case = f"choices-{secrets.token_hex(4)}"
    before = len(rig.anthropic.requests)
    answer = rig.chat(case, "anth/claude", n=2)
    assert answer.status == 400
    error = answer.json()["error"]
    assert error["param"] == "n" and "anth/claude" in error["message"] and "one choice" in error["message"]
    assert len(rig.anthropic.requests) == before
    assert rig.probe_fits(case, wait=0.0)  # no settle to wait for: nothing was ever reserved


def test_a_request_routing_refuses_takes_nothing_from_any_rule(rig: Rig) -> None:
    # router/gold-only serves only `tier: gold` requests, under a limit of 1 request a minute. Routing
    # refusals come before the reservation: they use up nothing, and the one allowed request still gets in.
    case = f"gold-{secrets.token_hex(4)}"
    body = {"model": "router/gold-only", "messages": [{"role": "user", "content": "hi"}]}
    for _ in range(3):
        refused = rig.call(case, "/api/llm/chat/completions", body, suite="edges", tier="silver")
        assert refused.status == 400 and refused.json()["error"]["code"] == "no_eligible_target", refused.body[:300]
    assert rig.call(case, "/api/llm/chat/completions", body, suite="edges", tier="gold").status == 200
    limited = rig.call(case, "/api/llm/chat/completions", body, suite="edges", tier="gold")
    assert limited.status == 429 and "gold-rpm" in limited.json()["error"]["message"]
