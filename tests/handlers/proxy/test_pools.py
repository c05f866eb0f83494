"""Load-balanced pools at `/proxy-api/{account}/{slug}/...`: weight and priority routing, fallback,
cooldown, body replay and access, against recording upstreams that answer as each test says.

Every scenario has its own account, so cooldown state never leaks between tests. The gateway runs
with a short cooldown (`COOLDOWN_SECONDS`) and window (`WINDOW_SECONDS`) so recovery is observable.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
import pytest

from tests.handlers.proxy.conftest import start_gateway
from tests.handlers.proxy.wire import WireAnswer, send
from tests.helpers.gateway import free_port
from tests.helpers.gateway_thread import GatewayThread
from tests.upstreams.recording_upstream import RecordingUpstream

COOLDOWN_SECONDS = 1.5
WINDOW_SECONDS = 1.0
DEFAULT_FALLBACK_CODES = [401, 403, 404, 408, 429, 500, 502, 503]


def pair(account: str, slug: str, first: str, second: str, *, extra: str = "", first_lb: str = "") -> str:
    """A priority pool: endpoint `primary` (priority 0) then `backup` (priority 1)."""
    return f"""\
type: provider-account/custom-endpoint
name: {account}
routing_type: priority
slug: {slug}
{extra}integrations:
  - type: integration/model/custom-endpoint
    name: primary
    base_url: "{first}"
    loadbalancing_config: {{priority: 0{first_lb}}}
  - type: integration/model/custom-endpoint
    name: backup
    base_url: "{second}"
    loadbalancing_config: {{priority: 1}}
"""


def config(a: str, b: str, c: str, closed: str) -> str:
    docs = [
        f"""\
type: provider-account/custom-endpoint
name: weighted
routing_type: weight
slug: mix
integrations:
  - {{type: integration/model/custom-endpoint, name: heavy, base_url: "{a}", loadbalancing_config: {{weight: 70}}}}
  - {{type: integration/model/custom-endpoint, name: light, base_url: "{b}", loadbalancing_config: {{weight: 30}}}}
""",
        pair("prio", "main", a, b),
        pair("codes", "main", a, b),
        pair("custom-codes", "main", a, b, first_lb=', fallback_status_codes: ["418"]'),
        pair("netfail", "main", closed, b),
        pair("dropper", "main", a, b),
        pair("slow", "main", a, b),
        pair("outside", "main", a, b),
        pair("cool", "main", a, b),
        pair("coollast", "main", a, b),
        pair("patient", "main", a, b),
        pair("allcool", "main", a, b),
        pair("cooledlog", "main", a, b),
        pair("window", "main", a, b),
        pair("cool429", "main", a, b),
        pair("replay", "main", a, b),
        pair("bigbody", "main", a, b),
        f"""\
type: provider-account/custom-endpoint
name: nofb
routing_type: priority
slug: main
integrations:
  - {{type: integration/model/custom-endpoint, name: primary, base_url: "{a}", loadbalancing_config: {{priority: 0}}}}
  - type: integration/model/custom-endpoint
    name: reserved
    base_url: "{c}"
    loadbalancing_config: {{priority: 1, fallback_candidate: false}}
  - {{type: integration/model/custom-endpoint, name: backup, base_url: "{b}", loadbalancing_config: {{priority: 2}}}}
""",
        f"""\
type: provider-account/custom-endpoint
name: guarded
routing_type: priority
slug: pool
collaborators:
  - {{subject: "user:alice@example.com", role_id: provider-account-access}}
  - {{subject: "user:carol@example.com", role_id: provider-account-access}}
integrations:
  - type: integration/model/custom-endpoint
    name: first
    base_url: "{a}"
    loadbalancing_config: {{priority: 0}}
    authorized_subjects: ["user:carol@example.com", "user:dave@example.com"]
  - type: integration/model/custom-endpoint
    name: second
    base_url: "{b}"
    loadbalancing_config: {{priority: 1}}
""",
        """\
type: virtual-account
name: va-endpoint
allowed_endpoints: [guarded/second]
---
type: virtual-account
name: va-slug
allowed_endpoints: [guarded/pool]
---
type: virtual-account
name: va-all
allowed_endpoints: ["guarded/*"]
""",
    ]
    return "---\n".join(docs)


@dataclass
class Pools:
    gateway: GatewayThread
    a: RecordingUpstream
    b: RecordingUpstream
    c: RecordingUpstream
    tokens: dict[str, str]

    def call(
        self,
        target: str,
        *,
        who: str = "alice",
        method: str = "GET",
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> WireAnswer:
        return send(self.gateway.port, method, target, token=self.tokens[who], body=body, headers=headers)

    def served_by(self, target: str, **options: object) -> str:
        answer = self.call(target, **options)  # type: ignore[arg-type]
        assert answer.status == 200, (answer.status, answer.body[:200])
        return str(answer.json()["upstream"])

    def reset(self) -> None:
        for upstream in (self.a, self.b, self.c):
            upstream.reset()


@pytest.fixture(scope="module")
def pools_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pools]:
    with (
        RecordingUpstream("a").running() as a,
        RecordingUpstream("b").running() as b,
        RecordingUpstream("c").running() as c,
    ):
        env = {
            "RELAYGATE_COOLDOWN_THRESHOLD": "3",
            "RELAYGATE_COOLDOWN_WINDOW_SECONDS": str(WINDOW_SECONDS),
            "RELAYGATE_COOLDOWN_SECONDS": str(COOLDOWN_SECONDS),
        }
        gateway = start_gateway(
            tmp_path_factory.mktemp("pools"), config(a.url, b.url, c.url, f"http://127.0.0.1:{free_port()}"), env=env
        )
        try:
            tokens = {
                name: gateway.create_token(user=f"{name}@example.com") for name in ("alice", "bob", "carol", "dave")
            }
            tokens.update({va: gateway.create_token(virtual_account=va) for va in ("va-endpoint", "va-slug", "va-all")})
            yield Pools(gateway, a, b, c, tokens)
        finally:
            gateway.stop()


@pytest.fixture
def pools(pools_stack: Pools) -> Pools:
    pools_stack.reset()
    return pools_stack


# -- routing ----------------------------------------------------------------------------------------


def test_weight_routing_follows_the_configured_share(pools: Pools) -> None:
    total = 1000
    conn = http.client.HTTPConnection("127.0.0.1", pools.gateway.port, timeout=10)
    auth = {"Authorization": f"Bearer {pools.tokens['alice']}"}
    served: Counter[str] = Counter()
    try:
        for _ in range(total):
            conn.request("GET", "/proxy-api/weighted/mix/w", headers=auth)
            response = conn.getresponse()
            served[orjson.loads(response.read())["upstream"]] += 1
    finally:
        conn.close()
    assert abs(served["a"] * 100 / total - 70) <= 5, served
    assert served["a"] + served["b"] == total


def test_priority_routing_sends_everything_to_the_highest_priority(pools: Pools) -> None:
    assert {pools.served_by("/proxy-api/prio/main/p") for _ in range(20)} == {"a"}
    assert pools.b.count == 0


def test_endpoint_urls_keep_working_beside_the_slug(pools: Pools) -> None:
    assert pools.served_by("/proxy-api/prio/backup/p") == "b"
    assert pools.served_by("/proxy-api/prio/primary/p") == "a"
    assert pools.served_by("/proxy-api/prio/main/p") == "a"


def test_upstream_path_and_query_follow_the_slug(pools: Pools) -> None:
    pools.call("/proxy-api/prio/main/v1/items%2F7?q=1&r=%20")
    assert pools.a.last().target == "/v1/items%2F7?q=1&r=%20"


# -- fallback ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", DEFAULT_FALLBACK_CODES)
def test_default_fallback_status_falls_back(pools: Pools, status: int) -> None:
    pools.a.answer_next(status)
    assert pools.served_by("/proxy-api/codes/main/f") == "b"
    assert (pools.a.count, pools.b.count) == (1, 1)
    assert pools.served_by("/proxy-api/codes/main/f") == "a"  # one failure does not cool (and success resets)


@pytest.mark.parametrize("status", [400, 409, 422, 504])
def test_status_outside_the_list_goes_to_the_caller_at_once(pools: Pools, status: int) -> None:
    pools.a.answer_next(status)
    assert pools.call("/proxy-api/outside/main/f").status == status
    assert (pools.a.count, pools.b.count) == (1, 0)


def test_configured_fallback_status_codes_replace_the_default(pools: Pools) -> None:
    pools.a.answer_next(418)
    assert pools.served_by("/proxy-api/custom-codes/main/f") == "b"
    pools.a.answer_next(503)
    assert pools.call("/proxy-api/custom-codes/main/f").status == 503
    assert (pools.a.count, pools.b.count) == (2, 1)


def test_connection_refused_falls_back(pools: Pools) -> None:
    assert pools.served_by("/proxy-api/netfail/main/n") == "b"


def test_dropped_connection_falls_back(pools: Pools) -> None:
    pools.a.answer_next(drop=True)
    assert pools.served_by("/proxy-api/dropper/main/d", method="POST", body=b"once") == "b"
    assert pools.a.count == 1


def test_idempotent_request_dropped_again_after_the_clients_own_retry_falls_back(pools: Pools) -> None:
    # aiohttp resends an idempotent request once when a pooled connection drops; then the pool falls back.
    pools.a.answer_next(drop=True, count=2)
    assert pools.served_by("/proxy-api/dropper/main/d") == "b"
    assert pools.a.count == 2


def test_request_timeout_falls_back(pools: Pools) -> None:
    pools.a.answer_next(delay=3.0)
    started = time.monotonic()
    assert pools.served_by("/proxy-api/slow/main/t", headers={"x-tfy-request-timeout": "300"}) == "b"
    assert time.monotonic() - started < 2.0


def test_caller_set_timeouts_do_not_cool_the_endpoint(pools: Pools) -> None:
    pools.a.answer_next(delay=1.0, count=3)
    for _ in range(3):
        assert pools.served_by("/proxy-api/patient/main/t", headers={"x-tfy-request-timeout": "100"}) == "b"
    assert pools.served_by("/proxy-api/patient/main/t") == "a"


def test_fallback_candidate_false_never_receives_fallback(pools: Pools) -> None:
    pools.a.answer(503)
    assert pools.served_by("/proxy-api/nofb/main/x") == "b"
    pools.b.answer(503)
    assert pools.call("/proxy-api/nofb/main/x").status == 503
    assert pools.c.count == 0


def test_small_body_is_replayed_to_the_fallback_intact(pools: Pools) -> None:
    body = os.urandom(512 * 1024)
    pools.a.answer_next(503)
    answer = pools.call("/proxy-api/replay/main/upload", method="POST", body=body)
    assert answer.json()["upstream"] == "b"
    digest = hashlib.sha256(body).hexdigest()
    assert pools.a.last().body_sha256 == digest
    assert pools.b.last().body_sha256 == digest and pools.b.last().body_size == len(body)


def test_large_streamed_body_is_not_replayed(pools: Pools) -> None:
    body = os.urandom(3 << 20)
    pools.a.answer_next(503)
    answer = pools.call("/proxy-api/bigbody/main/upload", method="POST", body=body)
    assert answer.status == 503
    assert pools.b.count == 0
    assert pools.a.last().body_size == len(body)


# -- cooldown ---------------------------------------------------------------------------------------


def test_repeated_failures_cool_the_endpoint_and_it_recovers(pools: Pools) -> None:
    pools.a.answer(503)
    for _ in range(3):
        assert pools.served_by("/proxy-api/cool/main/c") == "b"
    assert pools.a.count == 3
    assert pools.served_by("/proxy-api/cool/main/c") == "b"
    assert pools.a.count == 3  # cooled: not tried while the backup answers
    pools.a.answer(200)
    time.sleep(COOLDOWN_SECONDS + 0.2)
    assert pools.served_by("/proxy-api/cool/main/c") == "a"


def test_cooled_endpoint_is_tried_last_not_skipped(pools: Pools) -> None:
    pools.a.answer(503)
    for _ in range(3):
        pools.call("/proxy-api/coollast/main/c")
    pools.a.answer(200)
    pools.b.answer(503)
    before = (pools.a.count, pools.b.count)
    assert pools.served_by("/proxy-api/coollast/main/c") == "a"
    assert (pools.a.count, pools.b.count) == (before[0] + 1, before[1] + 1)  # the healthy backup went first
    assert pools.b.last().at < pools.a.last().at


def test_all_cooled_endpoints_are_still_tried(pools: Pools) -> None:
    pools.a.answer(503)
    pools.b.answer(503)
    for _ in range(3):
        assert pools.call("/proxy-api/allcool/main/c").status == 503
    pools.a.answer(200)
    pools.b.answer(200)
    before = (pools.a.count, pools.b.count)
    assert pools.served_by("/proxy-api/allcool/main/c") == "a"
    assert (pools.a.count, pools.b.count) == (before[0] + 1, before[1])


def test_log_row_says_when_a_cooled_endpoint_served(pools: Pools) -> None:
    pools.a.answer(503)
    pools.b.answer(503)
    for _ in range(3):
        pools.call("/proxy-api/cooledlog/main/c")
    pools.a.answer(200)
    answer = pools.call("/proxy-api/cooledlog/main/c")
    assert answer.status == 200
    row = pools.gateway.wait_for_log(answer.header("x-request-id") or "")
    assert row["extra"]["custom_proxy_target_was_cooled_down"] is True
    assert row["extra"]["loadbalance_final_target"] == "primary"


def test_failures_outside_the_window_do_not_cool(pools: Pools) -> None:
    pools.a.answer_next(503, count=2)
    for _ in range(2):
        assert pools.served_by("/proxy-api/window/main/c") == "b"
    time.sleep(WINDOW_SECONDS + 0.2)
    pools.a.answer_next(503)
    assert pools.served_by("/proxy-api/window/main/c") == "b"
    assert pools.served_by("/proxy-api/window/main/c") == "a"


def test_429_with_retry_after_cools_at_once(pools: Pools) -> None:
    pools.a.answer_next(429, headers={"Retry-After": "30"})
    assert pools.served_by("/proxy-api/cool429/main/r") == "b"
    assert pools.served_by("/proxy-api/cool429/main/r") == "b"
    assert pools.a.count == 1


# -- access -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "target", "status"),
    [
        ("alice", "/proxy-api/guarded/pool/x", 200),  # collaborator: slug checks the account only
        ("alice", "/proxy-api/guarded/first/x", 403),  # not in first's authorized_subjects
        ("alice", "/proxy-api/guarded/second/x", 200),
        ("carol", "/proxy-api/guarded/first/x", 200),
        ("bob", "/proxy-api/guarded/pool/x", 403),  # not a collaborator
        ("bob", "/proxy-api/guarded/second/x", 403),
        ("dave", "/proxy-api/guarded/first/x", 403),  # authorized_subjects narrows the account's access
        ("va-endpoint", "/proxy-api/guarded/second/x", 200),
        ("va-endpoint", "/proxy-api/guarded/pool/x", 403),
        ("va-slug", "/proxy-api/guarded/pool/x", 200),
        ("va-slug", "/proxy-api/guarded/second/x", 403),
        ("va-all", "/proxy-api/guarded/pool/x", 200),
        ("va-all", "/proxy-api/guarded/second/x", 200),
    ],
)
def test_access(pools: Pools, who: str, target: str, status: int) -> None:
    answer = pools.call(target, who=who)
    assert answer.status == status, answer.body[:300]
    if status == 403:
        assert pools.a.count + pools.b.count == 0


def test_slug_url_ignores_authorized_subjects_of_the_serving_endpoint(pools: Pools) -> None:
    assert pools.served_by("/proxy-api/guarded/pool/x") == "a"  # `first` served alice via the slug
