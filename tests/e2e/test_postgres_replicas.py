"""Two `relaygate serve` replicas sharing one PostgreSQL: tokens, revocations and request logs.

Both processes get `--database-url postgresql://...` for a database of this module's own; tokens are
minted and revoked with the CLI against the same URL, as an operator would.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from tests.helpers.gateway import GatewayProcess, HttpResult, run_cli, subprocess_env
from tests.helpers.manifests import ALICE, BOB, MOCK_ONLY
from tests.helpers.postgres import PostgresGateway

CHAT = "/api/llm/chat/completions"
BODY = {"model": "mock/echo", "messages": [{"role": "user", "content": "hello from a replica"}]}


@pytest.fixture(scope="module")
def replicas(
    pg_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GatewayProcess, GatewayProcess]]:
    root = tmp_path_factory.mktemp("replicas")
    started: list[GatewayProcess] = []
    try:
        started += [PostgresGateway(root / name, MOCK_ONLY, pg_database) for name in ("a", "b")]
        with ThreadPoolExecutor(2) as pool:  # started together: both migrate the empty database at once
            list(pool.map(lambda gateway: gateway.start(), started))
        yield started[0], started[1]
    finally:
        for gateway in started:
            gateway.stop()


def chat(gateway: GatewayProcess, token: str, request_id: str | None = None) -> HttpResult:
    headers = {"x-request-id": request_id} if request_id else None
    return gateway.request("POST", CHAT, token=token, json=BODY, headers=headers)


def test_token_created_with_cli_works_on_both_replicas(replicas: tuple[GatewayProcess, GatewayProcess]) -> None:
    a, b = replicas
    token = a.create_token(user=ALICE)
    assert chat(a, token).status == 200
    assert chat(b, token).status == 200


def test_unknown_token_is_401_on_both_replicas(replicas: tuple[GatewayProcess, GatewayProcess]) -> None:
    a, b = replicas
    token = a.create_token(user=ALICE)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    other_id = "rg-zzzzzzzzzzzz-" + token[16:]
    for gateway in (a, b):
        assert chat(gateway, forged).status == 401
        assert chat(gateway, other_id).status == 401


def test_revocation_reaches_the_other_replica_within_a_second(replicas: tuple[GatewayProcess, GatewayProcess]) -> None:
    a, b = replicas
    token = a.create_token(user=BOB)
    assert chat(a, token).status == 200
    assert chat(b, token).status == 200  # now cached on both, for the 10 s cache TTL
    a.revoke_token(token)
    revoked_at = time.monotonic()
    pending = {"a": a, "b": b}
    took: dict[str, float] = {}
    while pending and time.monotonic() - revoked_at < 5.0:
        for name, gateway in list(pending.items()):
            if chat(gateway, token).status == 401:
                took[name] = time.monotonic() - revoked_at
                del pending[name]
        time.sleep(0.05)
    assert not pending, f"still accepted after 5 s by {sorted(pending)}"
    assert max(took.values()) < 2.0, took  # one poll interval (1 s) plus slack, far below the TTL


def test_request_logs_from_both_replicas_land_in_postgres(
    replicas: tuple[GatewayProcess, GatewayProcess], pg_database: str
) -> None:
    a, b = replicas
    token = a.create_token(user=ALICE)
    ids = {"a": f"pg-a-{uuid.uuid4().hex[:12]}", "b": f"pg-b-{uuid.uuid4().hex[:12]}"}
    assert chat(a, token, ids["a"]).status == 200
    assert chat(b, token, ids["b"]).status == 200
    row_a = a.wait_for_log(ids["a"])  # `relaygate logs --json --database-url postgresql://...`
    row_b = b.wait_for_log(ids["b"])
    assert row_a["subject"] == row_b["subject"] == f"user:{ALICE}"
    assert row_a["requested_model"] == "mock/echo" and row_a["status"] == 200
    with psycopg.connect(pg_database) as conn:
        stored = {
            r[0]
            for r in conn.execute(
                "SELECT request_id FROM request_logs WHERE request_id = ANY(%s)", (list(ids.values()),)
            )
        }
    assert stored == set(ids.values())
    table = run_cli("logs", "--database-url", pg_database, "--limit", "100", env=subprocess_env())
    assert table.returncode == 0, table.stderr
    assert ids["a"] in table.stdout and ids["b"] in table.stdout


def test_tokens_list_shows_tokens_from_the_shared_store(replicas: tuple[GatewayProcess, GatewayProcess]) -> None:
    a, b = replicas
    token = b.create_token(user=ALICE, name="from-b")
    listing = a.list_tokens()
    assert f"rg-{token[3:15]}" in listing and "from-b" in listing
