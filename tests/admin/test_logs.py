"""GET /logs, /logs/detail and /me/logs through HTTP: real requests through the mock model, real
tokens and roles. Lists never carry bodies; only admins read bodies; ordinary users see their own
rows and their teams' rows only; cursor pages cover every row exactly once."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest

from tests.conftest import GatewayFactory
from tests.helpers import manifests
from tests.helpers.gateway import GatewayHandle

CONFIG = manifests.ADMIN_ROLES
HELLO = [{"role": "user", "content": "hello log"}]
BODY_MARK = "hello log"


class Roles:
    def __init__(self, gateway: GatewayHandle) -> None:
        self.gateway = gateway
        self.alice = gateway.create_token(user="alice@example.com")  # admin
        self.sam = gateway.create_token(user="sam@example.com")  # viewer
        self.bob = gateway.create_token(user="bob@example.com")  # user, no team
        self.carol = gateway.create_token(user="carol@example.com")  # user in team ml
        self.dave = gateway.create_token(user="dave@example.com")  # user in team ml
        self.bot = gateway.create_token(virtual_account="bot")


@pytest.fixture
def gateway(gateway_factory: GatewayFactory) -> GatewayHandle:
    return gateway_factory(CONFIG)


@pytest.fixture
def roles(gateway: GatewayHandle) -> Roles:
    return Roles(gateway)


def chat(gateway: GatewayHandle, token: str, metadata: dict[str, str] | None = None, *, stream: bool = False) -> str:
    """One chat call through the mock model; its request id."""
    headers = {"x-tfy-metadata": orjson.dumps(metadata).decode()} if metadata else {}
    answer = gateway.request(
        "POST",
        "/api/llm/chat/completions",
        token=token,
        json={"model": "mock/echo", "messages": HELLO, "stream": stream},
        headers=headers,
    )
    assert answer.status == 200, answer.body
    request_id = answer.headers["x-request-id"]
    assert request_id
    return str(request_id)


def get(gateway: GatewayHandle, path: str, token: str, **params: Any) -> Any:
    query = urlencode(params, doseq=True)
    return gateway.request("GET", f"/api/admin/v1{path}" + (f"?{query}" if query else ""), token=token)


def wait_rows(gateway: GatewayHandle, token: str, count: int, **params: Any) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while True:
        answer = get(gateway, "/logs", token, limit=500, **params)
        assert answer.status == 200, answer.body
        rows: list[dict[str, Any]] = answer.json()["data"]
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def test_lists_never_carry_bodies_and_only_admins_read_them(gateway: GatewayHandle, roles: Roles) -> None:
    bob_id = chat(gateway, roles.bob)
    rows = wait_rows(gateway, roles.alice, 1)
    assert [r["request_id"] for r in rows] == [bob_id]
    row = rows[0]
    assert "request_body" not in row and "response_body" not in row and row["has_bodies"] is True
    assert row["user"] == "bob@example.com" and row["subject"] == "user:bob@example.com"
    assert row["token_id"].startswith("rg-") and row["resolved_model"] == "mock/echo"
    for token in (roles.alice, roles.sam):
        assert BODY_MARK not in get(gateway, "/logs", token).body.decode()

    admin = get(gateway, "/logs/detail", roles.alice, request_id=bob_id)
    assert admin.status == 200
    assert BODY_MARK in admin.json()["data"]["request_body"] and admin.json()["data"]["response_body"]
    viewer = get(gateway, "/logs/detail", roles.sam, request_id=bob_id)
    assert viewer.status == 200 and viewer.json()["data"]["request_id"] == bob_id
    assert "request_body" not in viewer.json()["data"] and BODY_MARK not in viewer.body.decode()
    own = get(gateway, "/logs/detail", roles.bob, request_id=bob_id)
    assert own.status == 200 and "request_body" not in own.json()["data"]
    assert get(gateway, "/logs/detail", roles.carol, request_id=bob_id).status == 404
    assert get(gateway, "/logs/detail", roles.alice, request_id="no-such-request").status == 404
    assert get(gateway, "/logs/detail", roles.alice).status == 400


def test_users_see_only_their_own_and_their_teams_rows(gateway: GatewayHandle, roles: Roles) -> None:
    ids = {
        "bob": chat(gateway, roles.bob),
        "carol": chat(gateway, roles.carol),
        "dave": chat(gateway, roles.dave),
        "alice": chat(gateway, roles.alice),
        "bot": chat(gateway, roles.bot),
    }
    assert len(wait_rows(gateway, roles.alice, 5)) == 5

    def seen(token: str, path: str = "/logs") -> set[str]:
        answer = get(gateway, path, token)
        assert answer.status == 200, answer.body
        return {r["request_id"] for r in answer.json()["data"]}

    assert seen(roles.bob) == {ids["bob"]} == seen(roles.bob, "/me/logs")
    assert seen(roles.carol) == {ids["carol"], ids["dave"]} == seen(roles.dave, "/me/logs")
    assert seen(roles.sam) == set(ids.values()) == seen(roles.alice)
    assert seen(roles.alice, "/me/logs") == {ids["alice"]}
    assert seen(roles.sam, "/me/logs") == set()
    # A user's filters cannot widen their view.
    assert seen_with(gateway, roles.bob, user="carol@example.com") == set()
    assert seen_with(gateway, roles.alice, user="carol@example.com") == {ids["carol"]}
    assert seen_with(gateway, roles.alice, virtual_account="bot") == {ids["bot"]}
    assert seen_with(gateway, roles.alice, team="ml") == {ids["carol"], ids["dave"]}
    for path in ("/logs", "/me/logs", "/logs/detail"):
        refused = get(gateway, path, roles.bot, request_id=ids["bot"])
        assert refused.status == 403 and refused.json()["error"]["code"] == "admin_forbidden"


def seen_with(gateway: GatewayHandle, token: str, **params: Any) -> set[str]:
    answer = get(gateway, "/logs", token, **params)
    assert answer.status == 200, answer.body
    return {r["request_id"] for r in answer.json()["data"]}


def test_metadata_and_other_filters(gateway: GatewayHandle, roles: Roles) -> None:
    billing = chat(gateway, roles.bob, {"app": "billing", "env": "prod"})
    search = chat(gateway, roles.bob, {"app": "search", "env": "prod"})
    streamed = chat(gateway, roles.carol, {"app": "billing", "env": "dev"}, stream=True)
    failed = gateway.request(
        "POST", "/api/llm/chat/completions", token=roles.bob, json={"model": "mock/nope", "messages": HELLO}
    )
    assert failed.status >= 400
    rows = wait_rows(gateway, roles.alice, 4)
    assert len(rows) == 4
    assert seen_with(gateway, roles.alice, **{"metadata.app": "billing"}) == {billing, streamed}
    assert seen_with(gateway, roles.alice, **{"metadata.app": "billing", "metadata.env": "prod"}) == {billing}
    assert seen_with(gateway, roles.alice, **{"metadata.app": "nothing"}) == set()
    assert seen_with(gateway, roles.alice, model="mock/echo") == {billing, search, streamed}
    assert seen_with(gateway, roles.alice, status_class="4xx") == {failed.headers["x-request-id"]}
    assert seen_with(gateway, roles.alice, streaming="true") == {streamed}
    assert seen_with(gateway, roles.alice, request_id=search) == {search}
    assert seen_with(gateway, roles.alice, provider="mock", min_tokens=1) == {billing, search, streamed}
    assert seen_with(gateway, roles.alice, max_latency_ms=0) == set()
    assert seen_with(gateway, roles.alice, end=time.time() - 3600) == set()
    assert seen_with(gateway, roles.carol, **{"metadata.app": "billing"}) == {streamed}
    token_id = next(r["token_id"] for r in rows if r["request_id"] == streamed)
    assert seen_with(gateway, roles.alice, token_id=token_id) == {streamed}


def test_cursor_pages_cover_every_row_exactly_once(gateway: GatewayHandle, roles: Roles) -> None:
    sent = {chat(gateway, roles.bob, {"n": str(i)}) for i in range(12)}
    assert len(wait_rows(gateway, roles.alice, 12)) == 12
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 5}
        if cursor:
            params["cursor"] = cursor
        answer = get(gateway, "/logs", roles.alice, **params)
        assert answer.status == 200, answer.body
        page = answer.json()
        pages += 1
        assert len(page["data"]) <= 5
        seen += [r["request_id"] for r in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 12 and set(seen) == sent
    times = [r["time"] for r in wait_rows(gateway, roles.alice, 12)]
    assert times == sorted(times, reverse=True)


def test_bad_parameters_are_400(gateway: GatewayHandle, roles: Roles) -> None:
    for params in (
        {"limit": 501},
        {"limit": 0},
        {"cursor": "garbage"},
        {"status_class": "6xx"},
        {"start": "yesterday"},
        {"min_latency_ms": "fast"},
        {"streaming": "maybe"},
        {"start": 2_000_000_000, "end": 1_000_000_000},
    ):
        answer = get(gateway, "/logs", roles.alice, **params)
        assert answer.status == 400, (params, answer.body)
        assert answer.json()["error"]["param"] in (*params, "start")
    assert get(gateway, "/logs", roles.alice, limit=500).status == 200


def test_openapi_lists_the_log_operations(gateway: GatewayHandle) -> None:
    paths = gateway.request("GET", "/api/admin/v1/openapi.json").json()["paths"]
    for path in ("/logs", "/logs/detail", "/logs/stream", "/me/logs"):
        assert "get" in paths[f"/api/admin/v1{path}"]
    assert "text/event-stream" in paths["/api/admin/v1/logs/stream"]["get"]["responses"]["200"]["content"]


def test_a_cursor_keeps_the_default_window_of_the_first_page(gateway: GatewayHandle, roles: Roles) -> None:
    for _ in range(3):
        chat(gateway, roles.bob)
    wait_rows(gateway, roles.alice, 3)
    first = get(gateway, "/logs", roles.alice, limit=1).json()
    from relaygate.observe.store.search import decode_cursor

    cursor = decode_cursor(first["next_cursor"])
    assert cursor is not None and cursor.start == pytest.approx(time.time() - 3600, abs=30)
    explicit = get(gateway, "/logs", roles.alice, limit=1, start=time.time() - 60).json()
    kept = decode_cursor(explicit["next_cursor"])
    assert kept is not None and kept.start is None  # the caller's own start travels in the query


def test_nul_characters_are_400_not_a_database_error(gateway: GatewayHandle, roles: Roles) -> None:
    for params in ({"model": "a\x00b"}, {"metadata.app": "x\x00"}, {"metadata.a\x00": "x"}):
        answer = get(gateway, "/logs", roles.alice, **params)
        assert answer.status == 400, answer.body


BOOTSTRAP = "bootstrap-secret-for-pg-tests"


def test_the_logs_and_tokens_api_on_postgresql(gateway_factory: GatewayFactory, pg_url: str) -> None:
    handle = gateway_factory(CONFIG, env={"RELAYGATE_ADMIN_TOKEN": BOOTSTRAP}, start=False)
    handle.serve_args = ["--database-url", pg_url]  # the last --database-url wins
    handle.start()
    served = handle._server.config.app.gateway  # type: ignore[attr-defined]
    assert type(served.log_store).__name__ == "PostgresLogStore"
    assert type(served.token_store).__name__ == "PostgresTokenStore"
    made = handle.request("POST", "/api/admin/v1/tokens", token=BOOTSTRAP, json={"user": "bob@example.com"})
    assert made.status == 201, made.body
    bob = made.json()["token"]
    ids = [chat(handle, bob, {"app": "pg", "n": str(i)}) for i in range(4)]
    rows = wait_rows(handle, BOOTSTRAP, 4)
    assert {r["request_id"] for r in rows} == set(ids)
    assert all("request_body" not in r for r in rows)
    assert seen_with(handle, BOOTSTRAP, **{"metadata.n": "2"}) == {ids[2]}
    assert seen_with(handle, bob, **{"metadata.app": "pg"}) == set(ids)
    pages, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = get(handle, "/logs", BOOTSTRAP, **params).json()
        pages += [r["request_id"] for r in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(pages) == sorted(ids)
    detail = get(handle, "/logs/detail", BOOTSTRAP, request_id=ids[0]).json()["data"]
    assert BODY_MARK in detail["request_body"]
    listed = get(handle, "/tokens", BOOTSTRAP).json()["data"]
    assert [r["owner_name"] for r in listed] == ["bob@example.com"]
    revoked = handle.request("POST", "/api/admin/v1/tokens/revoke", token=BOOTSTRAP, json={"id": listed[0]["id"]})
    assert revoked.status == 200 and revoked.json()["record"]["status"] == "revoked"
    assert handle.request("GET", "/api/admin/v1/whoami", token=bob).status == 401
