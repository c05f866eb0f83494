"""Several `relaygate serve` processes behaving as one gateway: shared Redis, one PostgreSQL.

Replicas A and B (module-scoped) share the real Redis on 127.0.0.1:6379 under a key prefix of this
module's own (`RELAYGATE_LIMITS_KEY_PREFIX`) and one fresh PostgreSQL database, which also holds the
tokens every gateway here accepts. Each limit test has its own rule (its own Redis keys), so the
tests do not depend on each other's traffic. The outage test runs its own pair against a private
`redis-server` it can kill and restart; the workers tests run `serve --workers 2`.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
import redis

from relaygate.shared_state import COOLDOWN_PREFIX
from tests.helpers.gateway import GatewayProcess, free_port, run_cli, subprocess_env
from tests.helpers.manifests import ALICE, BOB
from tests.helpers.postgres import PostgresGateway
from tests.upstreams.recording_upstream import RecordingUpstream

REDIS_URL = "redis://127.0.0.1:6379/0"
RUN = secrets.token_hex(4)  # in account names: cooldown keys in the shared Redis are this module's own
POOL = f"pool-{RUN}"
LIMIT = 10  # the shared requests_per_minute limit and the shared $ budget
REQUEST_COST = 1.0  # "hello" with max_tokens 2 on mock/priced: 8 tokens at $0.125, estimated and actual
HELLO: list[Any] = [{"role": "user", "content": "hello"}]

MODELS = """\
type: provider-account/mock
name: mock
integrations:
  - {name: echo, type: integration/model/mock, model_id: echo-1, model_types: [chat]}
  - {name: slow, type: integration/model/mock, model_id: slow-1, model_types: [chat], latency_ms: 150}
  - {name: priced, type: integration/model/mock, model_id: priced-1, model_types: [chat], latency_ms: 150,
     cost: {input_per_million_tokens: 125000, output_per_million_tokens: 125000}}
"""
REPLICA_CONFIG = (
    MODELS
    + f"""---
type: gateway-rate-limiting-config
name: shared-limits
rules:
  - {{id: shared-rpm, when: {{models: [mock/slow]}}, limit_to: {LIMIT}, unit: requests_per_minute}}
---
type: gateway-budget-config
name: shared-budgets
rules:
  - {{id: shared-spend, when: {{models: [mock/priced]}}, limit_to: {LIMIT}, unit: cost_per_day}}
---
type: provider-account/custom-endpoint
name: {POOL}
routing_type: priority
slug: main
integrations:
  - {{type: integration/model/custom-endpoint, name: primary, base_url: "{{primary}}",
     loadbalancing_config: {{priority: 0}}}}
  - {{type: integration/model/custom-endpoint, name: backup, base_url: "{{backup}}",
     loadbalancing_config: {{priority: 1}}}}
"""
)


def _redis_up(url: str = REDIS_URL) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except (redis.RedisError, OSError):
        return False


pytestmark = pytest.mark.skipif(not _redis_up(), reason="Redis is not reachable on 127.0.0.1:6379")


def _drop_keys(pattern: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        names = list(client.scan_iter(match=pattern, count=1000))
        if names:
            client.delete(*names)
    finally:
        client.close()


def _env(redis_url: str | None, prefix: str | None = None, **extra: str) -> dict[str, str]:
    env = dict(extra)
    if redis_url:
        env["RELAYGATE_REDIS_URL"] = redis_url
    if prefix:
        env["RELAYGATE_LIMITS_KEY_PREFIX"] = prefix
    return env


def _start_all(gateways: Sequence[GatewayProcess]) -> None:
    with ThreadPoolExecutor(len(gateways)) as pool:
        list(pool.map(lambda gateway: gateway.start(), gateways))


# -- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prefix() -> Iterator[str]:
    value = f"rgtest-replicas:{RUN}:"
    yield value
    _drop_keys(value + "*")
    _drop_keys(f"{COOLDOWN_PREFIX}*{POOL}*")


@pytest.fixture(scope="module")
def pool_upstreams() -> Iterator[tuple[RecordingUpstream, RecordingUpstream]]:
    with RecordingUpstream("primary").running() as primary, RecordingUpstream("backup").running() as backup:
        yield primary, backup


@dataclass
class Replicas:
    a: GatewayProcess
    b: GatewayProcess
    token: str  # alice, in the shared PostgreSQL: every gateway of this module accepts it
    database_url: str
    prefix: str


@pytest.fixture(scope="module")
def replicas(
    pg_database: str,
    prefix: str,
    pool_upstreams: tuple[RecordingUpstream, RecordingUpstream],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Replicas]:
    root = tmp_path_factory.mktemp("replicas")
    primary, backup = pool_upstreams
    config = REPLICA_CONFIG.replace("{primary}", primary.url).replace("{backup}", backup.url)
    # Two failures within a minute cool a pool endpoint for 5 s (short: the key expires soon after).
    env = _env(REDIS_URL, prefix, RELAYGATE_COOLDOWN_THRESHOLD="2", RELAYGATE_COOLDOWN_SECONDS="5")
    gateways = [PostgresGateway(root / name, config, pg_database, env=env) for name in ("a", "b")]
    try:
        _start_all(gateways)
        yield Replicas(gateways[0], gateways[1], gateways[0].create_token(user=ALICE), pg_database, prefix)
    finally:
        for gateway in gateways:
            gateway.stop()


# -- helpers ------------------------------------------------------------------------------------------


@dataclass
class BurstOutcome:
    status: int
    headers: Any
    body: dict[str, Any]
    replica: int


async def _chat(client: openai.AsyncOpenAI, replica: int, **kwargs: Any) -> BurstOutcome:
    try:
        raw = await client.chat.completions.with_raw_response.create(messages=HELLO, **kwargs)
    except openai.APIStatusError as exc:
        body = exc.body if isinstance(exc.body, dict) else {}
        return BurstOutcome(exc.status_code, exc.response.headers, body, replica)
    return BurstOutcome(raw.status_code, raw.headers, json.loads(raw.text), replica)


def burst(gateways: list[GatewayProcess], token: str, count: int, **kwargs: Any) -> list[BurstOutcome]:
    """`count` chat requests at once, spread round-robin over the gateways, with the async OpenAI SDK."""

    async def run() -> list[BurstOutcome]:
        clients = [gateway.async_client(token) for gateway in gateways]
        try:
            return await asyncio.gather(
                *(_chat(clients[i % len(clients)], i % len(clients), **kwargs) for i in range(count))
            )
        finally:
            for client in clients:
                await client.close()

    return asyncio.run(run())


# -- shared limits and budgets ------------------------------------------------------------------------


def test_requests_per_minute_admits_exactly_n_across_both_replicas(replicas: Replicas) -> None:
    outcomes = burst([replicas.a, replicas.b], replicas.token, 4 * LIMIT, model="mock/slow")
    ok = [o for o in outcomes if o.status == 200]
    refused = [o for o in outcomes if o.status != 200]
    # Each replica got 2N requests: alone, each would have admitted N.
    assert len(ok) == LIMIT, sorted(o.status for o in outcomes)
    assert {o.status for o in refused} == {429}
    for outcome in refused:
        assert outcome.body["type"] == "rate_limit_exceeded" and "shared-rpm" in outcome.body["message"]
        assert 1 <= int(outcome.headers["retry-after"]) <= 60
        assert json.loads(outcome.headers["x-tfy-applied-configurations"])["rate_limit"] == {
            "rule_ids": ["shared-rpm"],
            "refused": True,
        }
    assert {o.replica for o in refused} == {0, 1}  # both replicas enforce the one shared count


def test_budget_is_not_overshot_beyond_one_request_per_replica(replicas: Replicas) -> None:
    outcomes = burst([replicas.a, replicas.b], replicas.token, 4 * LIMIT, model="mock/priced", max_tokens=2)
    ok = [o for o in outcomes if o.status == 200]
    spent = sum(o.body["usage"]["total_tokens"] * 0.125 for o in ok)
    assert all(o.body["usage"]["total_tokens"] * 0.125 == REQUEST_COST for o in ok)
    # Separate counters would have let each replica spend the whole budget ($20 in all).
    assert LIMIT <= spent <= LIMIT + 2 * REQUEST_COST, spent
    refused = [o for o in outcomes if o.status != 200]
    assert refused and {o.status for o in refused} == {429}
    for outcome in refused:
        assert outcome.body["type"] == "budget_exceeded" and "shared-spend" in outcome.body["message"]
        assert outcome.headers["retry-after"]
    assert {o.replica for o in refused} == {0, 1}


# -- cooldown and revocation --------------------------------------------------------------------------


def _wait_for_shared_cooldown(endpoint: str, timeout: float = 5.0) -> None:
    """The cooldown key is written in the same pipeline as the publish: once it exists, the event is out."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        deadline = time.monotonic() + timeout
        while not list(client.scan_iter(match=f"{COOLDOWN_PREFIX}*{POOL}/{endpoint}")):
            assert time.monotonic() < deadline, f"no shared cooldown for {POOL}/{endpoint} in Redis"
            time.sleep(0.02)
    finally:
        client.close()


def test_cooldown_started_on_one_replica_is_honoured_by_the_other(
    replicas: Replicas, pool_upstreams: tuple[RecordingUpstream, RecordingUpstream]
) -> None:
    primary, backup = pool_upstreams
    primary.reset()
    backup.reset()
    primary.answer(503)
    path = f"/proxy-api/{POOL}/main/cool"
    try:
        for _ in range(2):  # threshold 2: replica A cools `primary`
            answer = replicas.a.request("GET", path, token=replicas.token)
            assert answer.status == 200 and answer.json()["upstream"] == "backup"
        assert primary.count == 2
        _wait_for_shared_cooldown("primary")
        time.sleep(0.5)  # the event reaches B's subscriber (milliseconds; slack for a loaded machine)
        # B never saw `primary` fail: only the shared cooldown can make it try `backup` first.
        answer = replicas.b.request("GET", path, token=replicas.token)
        assert answer.status == 200 and answer.json()["upstream"] == "backup"
        assert primary.count == 2, "replica B tried the endpoint replica A had cooled"
    finally:
        primary.answer(200)


def _chat_status(gateway: GatewayProcess, token: str) -> int:
    return gateway.request(
        "POST", "/api/llm/chat/completions", token=token, json={"model": "mock/echo", "messages": HELLO}
    ).status


def test_revocation_published_through_redis_is_honoured_by_both_replicas_at_once(replicas: Replicas) -> None:
    for _ in range(2):  # twice: a revocation poll landing in the gap by chance cannot pass this
        token = replicas.a.create_token(user=BOB)
        assert _chat_status(replicas.a, token) == 200
        assert _chat_status(replicas.b, token) == 200  # cached by both for the 10 s token-cache TTL
        token_id = "rg-" + token[3:15]
        revoked = run_cli(
            "tokens",
            "revoke",
            "--database-url",
            replicas.database_url,
            "--redis-url",
            REDIS_URL,
            token_id,
            env=subprocess_env(),
        )
        assert revoked.returncode == 0, revoked.stderr
        done = time.monotonic()
        # At once (the very next request, give or take a loaded event loop), not within the 1 s store
        # poll: that poll would land inside this quarter second for all four checks only by chance.
        pending = {"a": replicas.a, "b": replicas.b}
        while pending and time.monotonic() - done < 0.25:
            for name, gateway in list(pending.items()):
                if _chat_status(gateway, token) == 401:
                    del pending[name]
            time.sleep(0.01)
        assert not pending, f"revoked token still accepted after 0.25 s by {sorted(pending)}"


# -- Redis going away under running gateways ------------------------------------------------------------


class RedisServer:
    """A private `redis-server` on a free port that a test may kill and restart (no persistence)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = open(self.root / f"redis-{self.port}.log", "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 10
        while not _redis_up(self.url):
            assert self.process.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not answer"
            time.sleep(0.02)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


OUTAGE_CONFIG = (
    MODELS
    + """---
type: gateway-rate-limiting-config
name: outage-limits
rules:
  - {id: outage-rpm, when: {models: [mock/echo]}, limit_to: 3, unit: requests_per_minute}
"""
)


def test_redis_outage_follows_on_backend_error_and_limits_return_with_redis(
    replicas: Replicas, private_redis: RedisServer, tmp_path: Path
) -> None:
    allow, deny = (
        PostgresGateway(
            tmp_path / mode,
            OUTAGE_CONFIG,
            replicas.database_url,
            env=_env(private_redis.url, RELAYGATE_LIMITS_ON_BACKEND_ERROR=mode),
        )
        for mode in ("allow", "deny")
    )
    try:
        _start_all([allow, deny])
        token = replicas.token
        # Redis up: one shared limit of 3 over both gateways.
        assert [_chat_status(g, token) for g in (allow, deny, allow)] == [200, 200, 200]
        assert [_chat_status(g, token) for g in (allow, deny)] == [429, 429]

        private_redis.kill()
        for _ in range(3):
            assert _chat_status(allow, token) == 200  # over the limit, admitted unchecked (allow)
            refused = deny.request(
                "POST", "/api/llm/chat/completions", token=token, json={"model": "mock/echo", "messages": HELLO}
            )
            assert refused.status == 503, refused.body  # deny: never 429 (or 500)
            assert refused.json()["error"]["code"] == "limits_unavailable"
            assert int(refused.headers["retry-after"]) >= 1

        private_redis.start()  # same port, empty: the gateways reconnect by themselves
        deadline = time.monotonic() + 10
        while (status := _chat_status(deny, token)) != 200:
            assert status == 503 and time.monotonic() < deadline, status
            time.sleep(0.1)
        time.sleep(0.3)  # the allow gateway skips Redis for 0.25 s after its last failure (retry_interval)
        # Enforced again, shared again: 1 admitted above, 2 more, then 429 on both.
        statuses = [_chat_status(g, token) for g in (allow, deny, allow, deny)]
        assert statuses == [200, 200, 429, 429], statuses
    finally:
        for gateway in (allow, deny):
            gateway.stop()


# -- worker processes ---------------------------------------------------------------------------------


WORKERS_CONFIG = (
    MODELS
    + f"""---
type: gateway-rate-limiting-config
name: worker-limits
rules:
  - {{id: worker-rpm, when: {{models: [mock/slow]}}, limit_to: {LIMIT}, unit: requests_per_minute}}
"""
)


def _start_workers(root: Path, database_url: str, env: dict[str, str]) -> GatewayProcess:
    gateway = PostgresGateway(root, WORKERS_CONFIG, database_url, env=env)
    gateway.serve_args = ["--workers", "2"]
    gateway.start()
    deadline = time.monotonic() + 15  # /ready answered by one worker: wait for the second one too
    while gateway.output().count("Application startup complete") < 2:
        assert time.monotonic() < deadline, gateway.output()
        time.sleep(0.05)
    return gateway


def test_workers_share_a_limit_through_redis(replicas: Replicas, tmp_path: Path) -> None:
    gateway = _start_workers(
        tmp_path / "workers-redis", replicas.database_url, _env(REDIS_URL, replicas.prefix + "workers:")
    )
    try:
        outcomes = burst([gateway], replicas.token, 4 * LIMIT, model="mock/slow")
    finally:
        gateway.stop()
    assert sum(o.status == 200 for o in outcomes) == LIMIT
    assert {o.status for o in outcomes if o.status != 200} == {429}


def test_workers_without_redis_each_count_their_own_requests(replicas: Replicas, tmp_path: Path) -> None:
    # Documented behaviour: the memory backend is per process, so each worker admits up to N by itself.
    gateway = _start_workers(tmp_path / "workers-memory", replicas.database_url, {})
    try:
        outcomes = burst([gateway], replicas.token, 4 * LIMIT, model="mock/slow")
    finally:
        gateway.stop()
    admitted = sum(o.status == 200 for o in outcomes)
    assert LIMIT <= admitted <= 2 * LIMIT, admitted
    assert {o.status for o in outcomes if o.status != 200} <= {429}
