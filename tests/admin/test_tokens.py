"""The tokens API end to end: a created token authenticates a chat call, a revoked one gets 401
within ~2 s, a rotated one keeps working until its grace period ends; roles decide who may manage
which token; no answer ever carries a secret other than the one just created; cookie sessions need
the CSRF header on writes."""

from __future__ import annotations

import os
import time
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest

from relaygate.shared_state import CHANNEL
from tests.conftest import GatewayFactory
from tests.helpers import manifests
from tests.helpers.gateway import GatewayHandle
from tests.helpers.redis_check import redis_answers

CONFIG = manifests.ADMIN_ROLES
HELLO = [{"role": "user", "content": "hi"}]
API = "/api/admin/v1"


@pytest.fixture
def gateway(gateway_factory: GatewayFactory) -> GatewayHandle:
    return gateway_factory(CONFIG)


def post(gateway: GatewayHandle, path: str, token: str | None, body: Any, **kw: Any) -> Any:
    return gateway.request("POST", API + path, token=token, json=body, **kw)


def listing(gateway: GatewayHandle, token: str, **params: Any) -> Any:
    query = urlencode(params)
    return gateway.request("GET", API + "/tokens" + (f"?{query}" if query else ""), token=token)


def chat_status(gateway: GatewayHandle, token: str) -> int:
    answer = gateway.request(
        "POST", "/api/llm/chat/completions", token=token, json={"model": "mock/echo", "messages": HELLO}
    )
    return answer.status


def wait_status(gateway: GatewayHandle, token: str, want: int, within: float) -> float:
    started = time.monotonic()
    while True:
        status = chat_status(gateway, token)
        if status == want:
            return time.monotonic() - started
        assert time.monotonic() - started < within, f"still {status} after {within}s"
        time.sleep(0.1)


def test_create_authenticates_revoke_refuses_within_two_seconds(gateway: GatewayHandle) -> None:
    alice = gateway.create_token(user="alice@example.com")
    created = post(
        gateway,
        "/tokens",
        alice,
        {"user": "bob@example.com", "name": "laptop", "expires_in": "30d", "metadata": {"env": "dev"}},
    )
    assert created.status == 201, created.body
    secret = created.json()["token"]
    record = created.json()["record"]
    assert secret.startswith("rg-") and secret.startswith(record["id"] + "-")
    assert record["owner_name"] == "bob@example.com" and record["name"] == "laptop"
    assert record["metadata"] == {"env": "dev"} and record["status"] == "active" and record["expires_at"]
    assert chat_status(gateway, secret) == 200

    listed = listing(gateway, alice)
    assert listed.status == 200
    assert secret not in listed.body.decode() and secret.split("-", 2)[2] not in listed.body.decode()
    row = next(r for r in listed.json()["data"] if r["id"] == record["id"])
    assert row["name"] == "laptop" and row["owner_name"] == "bob@example.com" and "secret_hash" not in row

    revoked = post(gateway, "/tokens/revoke", alice, {"id": record["id"]})
    assert revoked.status == 200, revoked.body
    assert revoked.json()["record"]["status"] == "revoked" and revoked.json()["record"]["revoked_at"]
    assert wait_status(gateway, secret, 401, within=2.0) < 2.0
    assert post(gateway, "/tokens/revoke", alice, {"id": "rg-zzzzzzzzzzzz"}).status == 404


def test_rotate_keeps_the_old_token_until_the_grace_period_ends(gateway: GatewayHandle) -> None:
    alice = gateway.create_token(user="alice@example.com")
    old = post(gateway, "/tokens", alice, {"user": "bob@example.com", "name": "ci", "metadata": {"k": "v"}}).json()
    old_secret = old["token"]
    assert chat_status(gateway, old_secret) == 200
    rotated = post(gateway, "/tokens/rotate", alice, {"id": old["record"]["id"], "grace_seconds": 2})
    assert rotated.status == 201, rotated.body
    new = rotated.json()
    assert new["record"]["id"] != old["record"]["id"]
    assert (new["record"]["name"], new["record"]["subject"], new["record"]["metadata"]) == (
        "ci",
        "user:bob@example.com",
        {"k": "v"},
    )
    assert new["previous"]["id"] == old["record"]["id"]
    assert new["previous"]["expires_at"] == pytest.approx(time.time() + 2, abs=1.5)
    assert chat_status(gateway, new["token"]) == 200
    assert chat_status(gateway, old_secret) == 200  # within the grace period
    wait_status(gateway, old_secret, 401, within=5.0)
    assert chat_status(gateway, new["token"]) == 200
    # Rotating without grace ends the old token at once; an inactive token cannot be rotated.
    again = post(gateway, "/tokens/rotate", alice, {"id": new["record"]["id"], "grace_seconds": 0})
    assert again.status == 201
    assert chat_status(gateway, new["token"]) == 401
    assert post(gateway, "/tokens/rotate", alice, {"id": new["record"]["id"]}).status == 400
    assert (
        post(gateway, "/tokens/rotate", alice, {"id": again.json()["record"]["id"], "grace_seconds": -1}).status == 400
    )


def test_roles_decide_whose_tokens_a_caller_manages(gateway: GatewayHandle) -> None:
    alice = gateway.create_token(user="alice@example.com")
    sam = gateway.create_token(user="sam@example.com")  # viewer
    bob = gateway.create_token(user="bob@example.com")
    carol = gateway.create_token(user="carol@example.com", name="carol-cli")
    bot = gateway.create_token(virtual_account="bot")

    mine = post(gateway, "/tokens", bob, {"user": "bob@example.com", "name": "own"})
    assert mine.status == 201
    assert post(gateway, "/tokens", bob, {"user": "carol@example.com"}).status == 403
    assert post(gateway, "/tokens", bob, {"virtual_account": "bot"}).status == 403
    assert post(gateway, "/tokens", sam, {"user": "bob@example.com"}).status == 403
    assert post(gateway, "/tokens", bot, {"user": "bob@example.com"}).status == 403
    va = post(gateway, "/tokens", alice, {"virtual_account": "bot", "name": "deploy"})
    assert va.status == 201 and va.json()["record"]["kind"] == "virtual-account"
    assert va.json()["record"]["owner_name"] == "bot"
    unknown = post(gateway, "/tokens", alice, {"virtual_account": "ghost"})
    assert unknown.status == 400 and unknown.json()["error"]["code"] == "unknown_virtual_account"
    assert post(gateway, "/tokens", alice, {"user": "x@example.com", "virtual_account": "bot"}).status == 400
    assert post(gateway, "/tokens", alice, {"user": "not-an-email"}).status == 400
    assert post(gateway, "/tokens", alice, {"user": "x@example.com", "name": "a\x00b"}).status == 400
    assert post(gateway, "/tokens", alice, {"user": "x@example.com", "metadata": {"k": 1}}).status == 400
    assert post(gateway, "/tokens", alice, {"user": "x@example.com", "expires_at": 1000}).status == 400
    assert post(gateway, "/tokens", alice, {"user": "x@example.com", "expires_in": "9" * 30 + "w"}).status == 400
    assert post(gateway, "/tokens", alice, {"user": "x@example.com", "expires_in": "soon"}).status == 400

    bob_view = listing(gateway, bob)
    assert bob_view.status == 200
    assert {r["owner_name"] for r in bob_view.json()["data"]} == {"bob@example.com"}
    assert len(bob_view.json()["data"]) == 2
    viewer_view = listing(gateway, sam).json()["data"]
    assert {"alice@example.com", "bob@example.com", "carol@example.com", "bot"} <= {
        r["owner_name"] for r in viewer_view
    }
    for text in (listing(gateway, sam).body.decode(), listing(gateway, alice).body.decode()):
        for secret in (alice, sam, bob, carol, bot, mine.json()["token"], va.json()["token"]):
            assert secret not in text
    assert {r["owner_name"] for r in listing(gateway, alice, team="ml").json()["data"]} == {"carol@example.com"}
    assert next(r for r in listing(gateway, alice, team="ml").json()["data"])["teams"] == ["ml"]
    assert {r["name"] for r in listing(gateway, alice, virtual_account="bot").json()["data"]} == {None, "deploy"}
    assert {r["owner_name"] for r in listing(gateway, alice, owner="bob@example.com").json()["data"]} == {
        "bob@example.com"
    }

    carol_id = next(r["id"] for r in viewer_view if r["name"] == "carol-cli")
    assert post(gateway, "/tokens/revoke", bob, {"id": carol_id}).status == 404
    assert post(gateway, "/tokens/rotate", bob, {"id": carol_id}).status == 404
    assert post(gateway, "/tokens/revoke", sam, {"id": carol_id}).status == 404
    assert post(gateway, "/tokens/revoke", bob, {"id": mine.json()["record"]["id"]}).status == 200
    revoked = listing(gateway, alice, revoked="true").json()["data"]
    assert [r["id"] for r in revoked] == [mine.json()["record"]["id"]]
    assert all(r["status"] != "revoked" for r in listing(gateway, alice, revoked="false").json()["data"])


def test_cursor_pages_cover_every_token_once(gateway: GatewayHandle) -> None:
    alice = gateway.create_token(user="alice@example.com")
    for i in range(9):
        assert post(gateway, "/tokens", alice, {"user": f"u{i}@example.com"}).status == 201
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 4}
        if cursor:
            params["cursor"] = cursor
        page = listing(gateway, alice, **params).json()
        seen += [r["id"] for r in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 10 == len(set(seen))
    assert listing(gateway, alice, limit=501).status == 400
    assert listing(gateway, alice, cursor="nope").status == 400


def test_cookie_session_writes_need_the_csrf_header(gateway: GatewayHandle) -> None:
    alice = gateway.create_token(user="alice@example.com")
    login = gateway.request("POST", API + "/session", json={"token": alice})
    assert login.status == 200
    cookie = login.headers["set-cookie"].split(";")[0]
    csrf = login.json()["csrf_token"]
    body = {"user": "bob@example.com"}
    refused = post(gateway, "/tokens", None, body, headers={"Cookie": cookie})
    assert refused.status == 403 and refused.json()["error"]["code"] == "csrf_failed"
    wrong = post(gateway, "/tokens", None, body, headers={"Cookie": cookie, "x-relaygate-csrf": csrf + "x"})
    assert wrong.status == 403
    accepted = post(gateway, "/tokens", None, body, headers={"Cookie": cookie, "x-relaygate-csrf": csrf})
    assert accepted.status == 201, accepted.body
    # Reads need no CSRF header.
    assert gateway.request("GET", API + "/tokens", headers={"Cookie": cookie}).status == 200


def test_cli_still_lists_and_revokes_tokens_made_by_the_api(gateway: GatewayHandle) -> None:
    alice = gateway.create_token(user="alice@example.com")
    made = post(gateway, "/tokens", alice, {"user": "bob@example.com", "name": "via-api"}).json()
    assert "via-api" in gateway.list_tokens()
    gateway.revoke_token(made["token"])
    assert wait_status(gateway, made["token"], 401, within=3.0) < 3.0


REDIS_URL = os.environ.get("RELAYGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.mark.skipif(not redis_answers(REDIS_URL), reason="Redis at 127.0.0.1:6379 is not reachable")
def test_revoke_is_announced_through_redis_and_refused_by_another_replica(gateway_factory: GatewayFactory) -> None:
    import redis

    env = {"RELAYGATE_REDIS_URL": REDIS_URL}
    one = gateway_factory(CONFIG, env=env)
    two = gateway_factory(CONFIG, env=env, start=False)
    two.db_path = one.db_path  # the same token store: two replicas
    two.start()
    alice = one.create_token(user="alice@example.com")
    made = post(one, "/tokens", alice, {"user": "bob@example.com"}).json()
    assert chat_status(two, made["token"]) == 200  # now cached on replica two
    listener = redis.Redis.from_url(REDIS_URL).pubsub()
    listener.subscribe(CHANNEL)
    try:
        assert listener.get_message(timeout=2)["type"] == "subscribe"  # type: ignore[index]
        assert post(one, "/tokens/revoke", alice, {"id": made["record"]["id"]}).status == 200
        message = listener.get_message(timeout=2)
        assert message is not None and orjson.loads(message["data"]) == {
            "t": "revoke",
            "id": made["record"]["id"][3:],
        }
    finally:
        listener.close()
    assert wait_status(two, made["token"], 401, within=2.0) < 2.0
